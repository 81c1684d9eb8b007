#pragma once
// Virtual hosts: which site answers a request, by the name it was sent to (HTTP/1.1's Host field
// or absolute-form authority, HTTP/2's :authority). Names match case-insensitively, without the
// port and without a trailing dot; "*.example.com" stands for any name under example.com (at any
// depth), not example.com itself (http/host.hpp). The sites come from --host options and from
// the host folders of archives.

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/host.hpp"
#include "serve/site.hpp"

namespace kawipiko::serve {

// A --host name: "example.com" or "*.example.com". Throws base::invalid_option naming `text` if
// it is not one.
[[nodiscard]] http::host_pattern parse_host_option(std::string_view text);

// The name in a Host field value or an authority: without userinfo or port, lower case, without
// a trailing dot, in `room`; empty if it does not fit. No allocation.
[[nodiscard]] std::string_view normalized_host(std::string_view host,
                                               std::array<char, 256>& room) noexcept;

// The sites of one generation: a default one (may be none) and one per host name.
struct site_set {
  struct host {
    http::host_pattern pattern;
    std::shared_ptr<const site> answers;
    // Which archive of the server brought it (server.cpp's slots): -1 for --archive, else the
    // index of its --host. A reload replaces what one archive brought (replaced()).
    int from = -1;
  };
  std::shared_ptr<const site> fallback;
  std::vector<host> hosts;  // those of each --host in order, then those of --archive

  // The site for `name` (normalized): an exact name first, then the wildcard with the longest
  // name, then the default; null when none (421). Of two equal names, a --host one wins.
  [[nodiscard]] const site* find(std::string_view name) const noexcept {
    return at(find_host(name));
  }
  // The same choice as a place: the index in `hosts`, or -1 for the default.
  [[nodiscard]] int find_host(std::string_view name) const noexcept;
  // The site at that place; null for -1 without a default.
  [[nodiscard]] const site* at(int place) const noexcept {
    return place < 0 ? fallback.get() : hosts[static_cast<std::size_t>(place)].answers.get();
  }
  // Whether one of its sites must no longer be sent from (site::release_by).
  [[nodiscard]] bool overdue(std::chrono::steady_clock::time_point now) const noexcept;
};

// The sites of `archive`, brought by `from`: with host folders one per host and its `_default`
// one as the default; otherwise the whole archive as the default. Throws std::runtime_error
// naming the file for an archive of host folders that has none.
[[nodiscard]] site_set sites_of(const std::shared_ptr<const site_archive>& archive, int from);

// `sites` with what `from` brought replaced by `part` (its hosts, and for --archive its
// default), every other site kept; hosts stay in site_set's order.
[[nodiscard]] site_set replaced(const site_set& sites, int from, site_set part);

}  // namespace kawipiko::serve
