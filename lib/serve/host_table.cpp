#include "serve/host_table.hpp"

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <utility>

#include "archive/schema.hpp"
#include "base/error.hpp"
#include "http/syntax.hpp"

namespace kawipiko::serve {

http::host_pattern parse_host_option(std::string_view text) {
  auto pattern = http::parse_host_pattern(text);
  if (!pattern) {
    throw base::invalid_option("--host: '" + std::string(text) +
                               "' is not a host name (example.com or *.example.com)");
  }
  return std::move(*pattern);
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
  for (std::size_t i = 0; i < host.size(); ++i) room[i] = http::syntax::to_lower(host[i]);
  return {room.data(), host.size()};
}

int site_set::find_host(std::string_view name) const noexcept {
  int best = -1;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const auto& h = hosts[i];
    if (!http::matches(h.pattern, name)) continue;
    if (!h.pattern.wildcard) return static_cast<int>(i);
    if (best < 0 ||
        h.pattern.name.size() > hosts[static_cast<std::size_t>(best)].pattern.name.size()) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

bool site_set::overdue(std::chrono::steady_clock::time_point now) const noexcept {
  if (fallback && fallback->archive().overdue(now)) return true;
  for (const auto& h : hosts) {
    if (h.answers && h.answers->archive().overdue(now)) return true;
  }
  return false;
}

site_set sites_of(const std::shared_ptr<const site_archive>& archive, int from) {
  site_set sites;
  const auto& reader = archive->reader();
  if (!reader.has_host_folders()) {
    sites.fallback = std::make_shared<const site>(archive, std::string_view{});
    return sites;
  }
  if (reader.hosts().empty()) {
    base::throw_error("cannot serve", archive->path(), "it has host folders but no host");
  }
  for (const auto host : reader.hosts()) {
    auto answers = std::make_shared<const site>(archive, host);
    if (host == archive::schema::default_host) {
      sites.fallback = std::move(answers);
      continue;
    }
    // The reader checked every name: it parses.
    sites.hosts.push_back({*http::parse_host_pattern(host), std::move(answers), from});
  }
  return sites;
}

site_set replaced(const site_set& sites, int from, site_set part) {
  site_set next;
  next.fallback = from < 0 ? std::move(part.fallback) : sites.fallback;
  for (const auto& h : sites.hosts) {
    if (h.from != from) next.hosts.push_back(h);
  }
  for (auto& h : part.hosts) {
    h.from = from;
    next.hosts.push_back(std::move(h));
  }
  // Each --host's in order, then --archive's: the order find() breaks ties by.
  const auto rank = [](const site_set::host& h) { return h.from < 0 ? INT_MAX : h.from; };
  std::stable_sort(
      next.hosts.begin(), next.hosts.end(),
      [&](const site_set::host& a, const site_set::host& b) { return rank(a) < rank(b); });
  return next;
}

}  // namespace kawipiko::serve
