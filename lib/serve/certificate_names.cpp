#include "serve/certificate_names.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <tuple>

#include "serve/host_table.hpp"

namespace kawipiko::serve {

namespace {

// inet_pton of `text` (which needs a terminating NUL, so it is copied) into `bytes`: 4 or 16
// bytes written, 0 if it is not an address of `family`.
std::size_t parse_address(int family, std::string_view text, char (&bytes)[16]) noexcept {
  std::array<char, INET6_ADDRSTRLEN> copy{};
  if (text.empty() || text.size() >= copy.size()) return 0;
  std::memcpy(copy.data(), text.data(), text.size());
  if (::inet_pton(family, copy.data(), bytes) != 1) return 0;
  return family == AF_INET ? 4 : 16;
}

bool is_ipv4_text(std::string_view text) noexcept {
  return !text.empty() && text.find_first_not_of("0123456789.") == std::string_view::npos;
}

}  // namespace

void certificate_table::add(const certificate_names& names) {
  const std::size_t certificate = count_++;
  for (const auto& written : names.dns) {
    std::array<char, 256> room{};
    auto name = normalized_host(written, room);
    const bool wildcard = name.starts_with("*.");
    if (wildcard) name.remove_prefix(2);
    // "f*.example.com" and the like (RFC 6125 allows them, browsers do not) cover nothing.
    if (name.empty() || name.find('*') != std::string_view::npos) continue;
    entries_.push_back({wildcard ? kind::wildcard : kind::exact, std::string(name), certificate});
  }
  for (const auto& text : names.addresses) {
    char bytes[16];
    const int family = text.find(':') == std::string::npos ? AF_INET : AF_INET6;
    const std::size_t size = parse_address(family, text, bytes);
    if (size > 0) entries_.push_back({kind::address, std::string(bytes, size), certificate});
  }
  std::sort(entries_.begin(), entries_.end(), [](const entry& a, const entry& b) {
    return std::tie(a.what, a.key, a.certificate) < std::tie(b.what, b.key, b.certificate);
  });
}

certificate_table::probe certificate_table::probe_of(std::string_view host,
                                                     char (&buffer)[16]) noexcept {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    const auto size = parse_address(AF_INET6, host.substr(1, host.size() - 2), buffer);
    return {kind::address, {buffer, size}, {}};
  }
  if (is_ipv4_text(host)) {
    const auto size = parse_address(AF_INET, host, buffer);
    if (size > 0) return {kind::address, {buffer, size}, {}};
  }
  // A wildcard stands for the first label only: "a.example.com" is under "*.example.com",
  // "a.b.example.com" and "example.com" are not.
  const auto dot = host.find('.');
  const bool has_parent = dot != std::string_view::npos && dot > 0 && dot + 1 < host.size();
  return {kind::exact, host, has_parent ? host.substr(dot + 1) : std::string_view()};
}

std::pair<const certificate_table::entry*, const certificate_table::entry*>
certificate_table::entries(kind what, std::string_view key) const noexcept {
  using sort_key = std::pair<kind, std::string_view>;
  const auto before = [](const entry& e, const sort_key& k) { return sort_key(e.what, e.key) < k; };
  const auto after = [](const sort_key& k, const entry& e) { return k < sort_key(e.what, e.key); };
  const sort_key wanted{what, key};
  const entry* const end = entries_.data() + entries_.size();
  const entry* first = std::lower_bound(entries_.data(), end, wanted, before);
  return {first, std::upper_bound(first, end, wanted, after)};
}

std::size_t certificate_table::find(std::string_view host) const noexcept {
  char buffer[16];
  const auto p = probe_of(host, buffer);
  if (p.key.empty()) return none;
  if (const auto [first, last] = entries(p.what, p.key); first != last) return first->certificate;
  if (p.parent.empty()) return none;
  const auto [first, last] = entries(kind::wildcard, p.parent);
  return first != last ? first->certificate : none;
}

bool certificate_table::covers(std::size_t index, std::string_view host) const noexcept {
  char buffer[16];
  const auto p = probe_of(host, buffer);
  if (p.key.empty()) return false;
  const auto holds = [index](std::pair<const entry*, const entry*> range) {
    return std::any_of(range.first, range.second,
                       [index](const entry& e) { return e.certificate == index; });
  };
  return holds(entries(p.what, p.key)) ||
         (!p.parent.empty() && holds(entries(kind::wildcard, p.parent)));
}

}  // namespace kawipiko::serve
