#pragma once
// The small pieces of HTTP syntax (RFC 9110 §5.6) that the header parsers, the archive's
// header-block check, request targets and the rules files share: optional whitespace, tokens,
// control bytes, hex digits, ASCII case folding (the one place each is written: no locale on
// these paths).

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

// A control byte (0x00-0x1F, 0x7F): never valid raw in a field value or a URL.
[[nodiscard]] constexpr bool is_control(unsigned char c) noexcept {
  return c < 0x20 || c == 0x7f;
}

// The value of a hex digit in either case, or -1 (percent-escapes).
[[nodiscard]] constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether `text[at]` starts a percent-escape: '%' and two hex digits. `at` < text.size().
[[nodiscard]] constexpr bool is_escape_at(std::string_view text, std::size_t at) noexcept {
  return text[at] == '%' && text.size() - at >= 3 && hex_value(text[at + 1]) >= 0 &&
         hex_value(text[at + 2]) >= 0;
}

// The byte the escape at `text[at]` stands for (is_escape_at must hold).
[[nodiscard]] constexpr unsigned char escaped_byte(std::string_view text, std::size_t at) noexcept {
  return static_cast<unsigned char>(hex_value(text[at + 1]) * 16 + hex_value(text[at + 2]));
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
