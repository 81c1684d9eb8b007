#include "http/utf8.hpp"

#include <catch2/catch.hpp>
#include <string_view>

using kawipiko::http::decode_utf8;
using kawipiko::http::utf8_status;

TEST_CASE("decode_utf8 reads one sequence of one to four bytes", "[http][utf8]") {
  struct expectation {
    std::string_view bytes;
    char32_t code;
    std::size_t size;
  };
  for (const auto& [bytes, code, size] : {
           expectation{"a", U'a', 1},
           expectation{std::string_view("\0", 1), 0, 1},
           expectation{"\x7f", 0x7f, 1},
           expectation{"\xc2\x80", 0x80, 2},
           expectation{"\xc3\xa9z", 0xe9, 2},
           expectation{"\xdf\xbf", 0x7ff, 2},
           expectation{"\xe0\xa0\x80", 0x800, 3},
           expectation{"\xed\x9f\xbf", 0xd7ff, 3},
           expectation{"\xee\x80\x80", 0xe000, 3},
           expectation{"\xef\xbf\xbf", 0xffff, 3},
           expectation{"\xf0\x90\x80\x80", 0x10000, 4},
           expectation{"\xf4\x8f\xbf\xbf", 0x10ffff, 4},
       }) {
    CAPTURE(bytes);
    const auto sequence = decode_utf8(bytes);
    CHECK(sequence.status == utf8_status::valid);
    CHECK(sequence.code == code);
    CHECK(sequence.size == size);
  }
}

TEST_CASE("decode_utf8 refuses overlongs, surrogates, values past U+10FFFF and stray bytes",
          "[http][utf8]") {
  for (const std::string_view bytes :
       {"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xed\xa0\x80",
        "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xc3\x41", "\xe2\x82\x41",
        "\xf0\x9f\x98\xc0"}) {
    CAPTURE(bytes);
    CHECK(decode_utf8(bytes).status == utf8_status::invalid);
  }
}

TEST_CASE("decode_utf8 tells a sequence cut by the end from a broken one", "[http][utf8]") {
  for (const std::string_view bytes : {"\xc3", "\xe2\x82", "\xf0\x9f", "\xf0\x9f\x98"}) {
    CAPTURE(bytes);
    CHECK(decode_utf8(bytes).status == utf8_status::truncated);
  }
  // What is there must already be a valid start.
  CHECK(decode_utf8("\xe0\x80").status == utf8_status::invalid);
  CHECK(decode_utf8("\xf4\x90").status == utf8_status::invalid);
}
