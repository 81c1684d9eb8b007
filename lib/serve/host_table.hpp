#pragma once
// Virtual hosts: which site answers a request, by the name it was sent to (HTTP/1.1's Host field
// or absolute-form authority, HTTP/2's :authority). Names match case-insensitively, without the
// port and without a trailing dot; "*.example.com" stands for any name under example.com (at any
// depth), not example.com itself.

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "serve/site.hpp"

namespace kawipiko::serve {

struct host_pattern {
  std::string name;       // lower case, no trailing dot; for a wildcard, what follows "*."
  bool wildcard = false;  // "*.name"
};

// "example.com" or "*.example.com" (letters, digits, '-', '.', '_' in dot-separated labels; an
// IP address is a name too). Throws base::invalid_option naming `text` if it is not one.
[[nodiscard]] host_pattern parse_host_pattern(std::string_view text);

// Whether `host` (as normalized_host gives it) is one `pattern` stands for.
[[nodiscard]] bool matches(const host_pattern& pattern, std::string_view host) noexcept;

// The name in a Host field value or an authority: without userinfo or port, lower case, without
// a trailing dot, in `room`; empty if it does not fit. No allocation.
[[nodiscard]] std::string_view normalized_host(std::string_view host,
                                               std::array<char, 256>& room) noexcept;

// The sites of one generation: a default one (--archive; may be none) and one per --host.
struct site_set {
  struct host {
    host_pattern pattern;
    std::shared_ptr<const site> answers;
  };
  std::shared_ptr<const site> fallback;
  std::vector<host> hosts;

  // The site for `name` (normalized): an exact name first, then the wildcard with the longest
  // name, then the default; null when none (421).
  [[nodiscard]] const site* find(std::string_view name) const noexcept {
    return at(find_host(name));
  }
  // The same choice as a place: the index in `hosts`, or -1 for the default.
  [[nodiscard]] int find_host(std::string_view name) const noexcept;
  // The site at that place; null for -1 without a default.
  [[nodiscard]] const site* at(int place) const noexcept {
    return place < 0 ? fallback.get() : hosts[static_cast<std::size_t>(place)].answers.get();
  }
};

}  // namespace kawipiko::serve
