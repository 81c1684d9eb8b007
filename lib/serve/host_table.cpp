#include "serve/host_table.hpp"

#include "base/error.hpp"

namespace kawipiko::serve {

namespace {

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Dot-separated labels of name characters, none empty.
bool is_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 253) return false;
  bool label_empty = true;
  for (const char c : name) {
    if (c == '.') {
      if (label_empty) return false;
      label_empty = true;
    } else if (is_name_char(c)) {
      label_empty = false;
    } else {
      return false;
    }
  }
  return !label_empty;
}

}  // namespace

host_pattern parse_host_pattern(std::string_view text) {
  host_pattern pattern;
  auto rest = text;
  if (rest.starts_with("*.")) {
    pattern.wildcard = true;
    rest.remove_prefix(2);
  }
  if (rest.ends_with('.')) rest.remove_suffix(1);
  for (const char c : rest) pattern.name += lower(c);
  if (!is_name(pattern.name)) {
    throw base::invalid_option("--host: '" + std::string(text) +
                               "' is not a host name (example.com or *.example.com)");
  }
  return pattern;
}

bool matches(const host_pattern& pattern, std::string_view host) noexcept {
  if (!pattern.wildcard) return host == pattern.name;
  return host.size() > pattern.name.size() + 1 && host.ends_with(pattern.name) &&
         host[host.size() - pattern.name.size() - 1] == '.';
}

std::string_view normalized_host(std::string_view host, std::array<char, 256>& room) noexcept {
  const auto at = host.rfind('@');  // userinfo, in an absolute-form authority
  if (at != std::string_view::npos) host.remove_prefix(at + 1);
  if (host.starts_with('[')) {  // an IPv6 literal: up to its bracket
    const auto close = host.find(']');
    host = close == std::string_view::npos ? host : host.substr(0, close + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  if (host.ends_with('.')) host.remove_suffix(1);
  if (host.size() > room.size()) return {};
  for (std::size_t i = 0; i < host.size(); ++i) room[i] = lower(host[i]);
  return {room.data(), host.size()};
}

int site_set::find_host(std::string_view name) const noexcept {
  int best = -1;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const auto& h = hosts[i];
    if (!matches(h.pattern, name)) continue;
    if (!h.pattern.wildcard) return static_cast<int>(i);
    if (best < 0 ||
        h.pattern.name.size() > hosts[static_cast<std::size_t>(best)].pattern.name.size()) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

}  // namespace kawipiko::serve
