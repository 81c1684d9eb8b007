#pragma once
// UTF-8 decoding (RFC 3629), one sequence at a time, for the two places that judge bytes as
// text: the archiver's file names (published as paths) and the content sniff of files whose type
// the extension does not give. Each caller applies its own rule on controls to the code points.
// Here, the lowest module that needs it (archive depends on http). Allocates nothing.

#include <cstddef>
#include <string_view>

namespace kawipiko::http {

enum class utf8_status {
  valid,      // `code` holds the code point, `size` bytes were read
  invalid,    // not a shortest-form sequence of a scalar value (overlong, surrogate, > U+10FFFF)
  truncated,  // the bytes end inside a sequence whose bytes so far are a valid start
};

struct utf8_sequence {
  utf8_status status;
  char32_t code;     // when valid
  std::size_t size;  // bytes read (when valid, the sequence's length)
};

// Decodes the sequence at the start of `bytes`, which must not be empty.
[[nodiscard]] constexpr utf8_sequence decode_utf8(std::string_view bytes) noexcept {
  const auto lead = static_cast<unsigned char>(bytes[0]);
  if (lead < 0x80) return {utf8_status::valid, lead, 1};
  std::size_t size = 0;
  char32_t code = 0;
  // The allowed range of the second byte excludes overlongs (E0, F0), surrogates (ED) and code
  // points above U+10FFFF (F4); later continuation bytes are always 80..BF.
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    size = 2;
    code = lead & 0x1fu;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    size = 3;
    code = lead & 0x0fu;
    if (lead == 0xe0) second_min = 0xa0;
    if (lead == 0xed) second_max = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    size = 4;
    code = lead & 0x07u;
    if (lead == 0xf0) second_min = 0x90;
    if (lead == 0xf4) second_max = 0x8f;
  } else {
    return {utf8_status::invalid, 0, 1};  // a lone continuation byte, C0/C1, or F5..FF
  }
  for (std::size_t k = 1; k < size; ++k) {
    if (k == bytes.size()) return {utf8_status::truncated, 0, k};
    const auto next = static_cast<unsigned char>(bytes[k]);
    const unsigned char low = k == 1 ? second_min : 0x80;
    const unsigned char high = k == 1 ? second_max : 0xbf;
    if (next < low || next > high) return {utf8_status::invalid, 0, k};
    code = (code << 6) | (next & 0x3fu);
  }
  return {utf8_status::valid, code, size};
}

}  // namespace kawipiko::http
