#pragma once
// The small pieces of HTTP syntax (RFC 9110 §5.6) that the header parsers and the archive's
// header-block check share: optional whitespace, tokens, ASCII case folding (the one place it is
// written: no locale on these paths).

#include <cstddef>
#include <string_view>

namespace kawipiko::http::syntax {

// OWS: a space or a horizontal tab.
[[nodiscard]] constexpr bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

// `text` without leading and trailing OWS.
[[nodiscard]] constexpr std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
  return text;
}

// tchar: ALPHA / DIGIT / one of "!#$%&'*+-.^_`|~".
[[nodiscard]] constexpr bool is_token_char(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  constexpr std::string_view others = "!#$%&'*+-.^_`|~";
  return others.find(c) != std::string_view::npos;
}

// ASCII lower case; other bytes unchanged.
[[nodiscard]] constexpr char to_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Whether `a` and `b` are equal ignoring ASCII case (tokens, schemes, units).
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

// Whether `text` starts with `prefix` ignoring ASCII case.
[[nodiscard]] constexpr bool istarts_with(std::string_view text, std::string_view prefix) noexcept {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

}  // namespace kawipiko::http::syntax
