#pragma once
// Host names as virtual hosts are given: "example.com", or "*.example.com" for any name under
// example.com (at any depth), not example.com itself. The one definition of that grammar for the
// server's --host and the archiver's host folders; names are folded to lower case.

#include <optional>
#include <string>
#include <string_view>

namespace kawipiko::http {

struct host_pattern {
  std::string name;       // lower case, no trailing dot; for a wildcard, what follows "*."
  bool wildcard = false;  // "*.name"

  // "example.com" or "*.example.com": as archive keys and `kawipiko:hosts` spell it.
  [[nodiscard]] std::string text() const { return wildcard ? "*." + name : name; }
};

// `text` as a pattern: dot-separated labels of letters, digits, '-' and '_' (an IP address is a
// name too), at most 253 bytes, after an optional "*." and without one trailing dot; empty if
// `text` is not one.
[[nodiscard]] std::optional<host_pattern> parse_host_pattern(std::string_view text);

// Whether `host` (lower case, no port, no trailing dot) is one `pattern` stands for.
[[nodiscard]] bool matches(const host_pattern& pattern, std::string_view host) noexcept;

}  // namespace kawipiko::http
