#include "http/host.hpp"

#include "http/syntax.hpp"

namespace kawipiko::http {

namespace {

bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Dot-separated labels of name characters (lower case), none empty.
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

std::optional<host_pattern> parse_host_pattern(std::string_view text) {
  host_pattern pattern;
  if (text.starts_with("*.")) {
    pattern.wildcard = true;
    text.remove_prefix(2);
  }
  if (text.ends_with('.')) text.remove_suffix(1);
  for (const char c : text) pattern.name += syntax::to_lower(c);
  if (!is_name(pattern.name)) return std::nullopt;
  return pattern;
}

bool matches(const host_pattern& pattern, std::string_view host) noexcept {
  if (!pattern.wildcard) return host == pattern.name;
  return host.size() > pattern.name.size() + 1 && host.ends_with(pattern.name) &&
         host[host.size() - pattern.name.size() - 1] == '.';
}

}  // namespace kawipiko::http
