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
