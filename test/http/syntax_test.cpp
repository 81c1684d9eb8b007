#include "http/syntax.hpp"

#include <catch2/catch.hpp>
#include <string_view>

namespace syntax = kawipiko::http::syntax;

TEST_CASE("trim removes spaces and tabs at both ends only", "[http][syntax]") {
  CHECK(syntax::trim(" \t a b \t") == "a b");
  CHECK(syntax::trim("\t\t").empty());
  CHECK(syntax::trim("\r\na\r\n") == "\r\na\r\n");
}

TEST_CASE("token characters are letters, digits and RFC 9110's punctuation", "[http][syntax]") {
  for (const char c : std::string_view("azAZ09!#$%&'*+-.^_`|~")) CHECK(syntax::is_token_char(c));
  for (const char c : std::string_view(" \t\"(),/:;<=>?@[\\]{}\x7f\x80")) {
    CAPTURE(c);
    CHECK_FALSE(syntax::is_token_char(c));
  }
  CHECK_FALSE(syntax::is_token_char('\0'));
}

TEST_CASE("case folding touches ASCII letters only", "[http][syntax]") {
  CHECK(syntax::to_lower('A') == 'a');
  CHECK(syntax::to_lower('Z') == 'z');
  CHECK(syntax::to_lower('a') == 'a');
  CHECK(syntax::to_lower('@') == '@');
  CHECK(syntax::to_lower('[') == '[');
  CHECK(syntax::to_lower('\xc3') == '\xc3');
}

TEST_CASE("iequals and istarts_with compare ignoring ASCII case", "[http][syntax]") {
  CHECK(syntax::iequals("GZip", "gzip"));
  CHECK(syntax::iequals("gzip", "GZIP"));
  CHECK(syntax::iequals("", ""));
  CHECK_FALSE(syntax::iequals("gzip", "gzi"));
  CHECK_FALSE(syntax::iequals("gzip", "gzir"));
  CHECK_FALSE(syntax::iequals("caf\xc3\xa9", "CAF\xc3\x89"));  // no folding beyond ASCII

  CHECK(syntax::istarts_with("HTTPS://host", "https://"));
  CHECK(syntax::istarts_with("bytes=0-1", "BYTES="));
  CHECK(syntax::istarts_with("abc", ""));
  CHECK_FALSE(syntax::istarts_with("http", "http://"));
  CHECK_FALSE(syntax::istarts_with("httpx://", "http://"));
}

TEST_CASE("control bytes are 0x00 to 0x1f and 0x7f, nothing else", "[http][syntax]") {
  for (unsigned c = 0; c < 256; ++c) {
    INFO(c);
    CHECK(syntax::is_control(static_cast<unsigned char>(c)) == (c < 0x20 || c == 0x7f));
  }
}

TEST_CASE("hex digits read in either case, anything else is -1", "[http][syntax]") {
  CHECK(syntax::hex_value('0') == 0);
  CHECK(syntax::hex_value('9') == 9);
  CHECK(syntax::hex_value('a') == 10);
  CHECK(syntax::hex_value('F') == 15);
  CHECK(syntax::hex_value('g') == -1);
  CHECK(syntax::hex_value('G') == -1);
  CHECK(syntax::hex_value('/') == -1);
  CHECK(syntax::hex_value(':') == -1);
  CHECK(syntax::hex_value('@') == -1);
  CHECK(syntax::hex_value('`') == -1);
}

TEST_CASE("a percent-escape is '%' and two hex digits, read as the byte they spell",
          "[http][syntax]") {
  CHECK(syntax::is_escape_at("%41", 0));
  CHECK(syntax::escaped_byte("%41", 0) == 'A');
  CHECK(syntax::is_escape_at("a%2fb", 1));
  CHECK(syntax::escaped_byte("a%2fb", 1) == '/');
  CHECK(syntax::escaped_byte("%C3", 0) == 0xc3);
  CHECK_FALSE(syntax::is_escape_at("%41", 1));  // not a '%'
  CHECK_FALSE(syntax::is_escape_at("%4", 0));   // cut short
  CHECK_FALSE(syntax::is_escape_at("a%", 1));
  CHECK_FALSE(syntax::is_escape_at("%g1", 0));
  CHECK_FALSE(syntax::is_escape_at("%1g", 0));
}
