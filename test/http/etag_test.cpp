#include "http/etag.hpp"

#include <catch2/catch.hpp>
#include <cstddef>
#include <string_view>

using kawipiko::http::if_match;
using kawipiko::http::if_none_match;

namespace {

struct case_ {
  std::string_view header;
  bool matches;
};

// Checks `matches(header, "\"abc\"")` for each case.
template <std::size_t N>
void check_against_abc(bool (*matches)(std::string_view, std::string_view) noexcept,
                       const case_ (&cases)[N]) {
  for (const auto& c : cases) {
    CAPTURE(c.header);
    CHECK(matches(c.header, "\"abc\"") == c.matches);
  }
}

}  // namespace

TEST_CASE("if_none_match compares entity-tag lists weakly", "[http][etag]") {
  constexpr case_ cases[] = {
      {"*", true},
      {" * ", true},
      {"\"abc\"", true},
      {"W/\"abc\"", true},
      {"  \"abc\"  ", true},
      {"\"xyz\", \"abc\"", true},
      {"\"xyz\",\"abc\"", true},
      {"\"xyz\" ,\t W/\"abc\" ", true},
      {", ,\"abc\",", true},
      {"\"xyz\"", false},
      {"\"ABC\"", false},
      {"\"abc \"", false},
      {"\"ab\"", false},
      {"\"abcd\"", false},
      {"", false},
      {"W/\"xyz\", \"x,y\"", false},
      {"\"x,\"abc\"", false},  // "x," then junk: malformed, skipped to the next comma
      // A comma inside the quotes belongs to the tag.
      {"\"a,b\", \"abc\"", true},
      // Malformed elements are skipped, the valid ones still count.
      {"abc", false},
      {"abc, \"abc\"", true},
      {"W/abc, \"abc\"", true},
      {"w/\"abc\"", false},
      {"w/\"abc\", \"abc\"", true},
      {"\"a b\", \"abc\"", true},
      {"\"abc\"x", false},
      {"\"abc\"x, \"abc\"", true},
      {"\"abc", false},
      {"\"xyz\", \"abc", false},
      {"*, \"xyz\"", false},
      {"*, \"abc\"", true},
      {"\"\x01\", \"abc\"", true},
      {"\"abc\x01\"", false},
  };
  check_against_abc(if_none_match, cases);
}

TEST_CASE("if_none_match treats a weak stored tag like its strong form", "[http][etag]") {
  CHECK(if_none_match("\"abc\"", "W/\"abc\""));
  CHECK(if_none_match("W/\"abc\"", "W/\"abc\""));
  CHECK_FALSE(if_none_match("\"abd\"", "W/\"abc\""));
}

TEST_CASE("if_none_match never matches an invalid or missing stored tag except with *",
          "[http][etag]") {
  CHECK(if_none_match("*", ""));
  CHECK_FALSE(if_none_match("\"\"", ""));
  CHECK_FALSE(if_none_match("abc", "abc"));
  CHECK(if_none_match("\"\"", "\"\""));
}

TEST_CASE("is_strong_etag accepts a quoted opaque-tag of visible bytes and nothing else",
          "[http][etag]") {
  using kawipiko::http::is_strong_etag;
  for (const std::string_view tag :
       {"\"\"", "\"abc\"", "\"a,b\"", "\"!#~\"", "\"caf\xc3\xa9\"", "\"\x80\xff\""}) {
    CAPTURE(tag);
    CHECK(is_strong_etag(tag));
  }
  for (const std::string_view tag :
       {"", "\"", "abc", "\"abc", "abc\"", "W/\"abc\"", "\"a b\"", "\"a\tb\"", "\"a\"b\"",
        "\"a\x7f\"", "\"a\x01\"", " \"abc\""}) {
    CAPTURE(tag);
    CHECK_FALSE(is_strong_etag(tag));
  }
}

TEST_CASE("if_match compares entity-tag lists strongly: a weak element never matches",
          "[http][etag]") {
  constexpr case_ cases[] = {
      {"*", true},
      {" * ", true},
      {"\"abc\"", true},
      {"  \"abc\"  ", true},
      {"\"xyz\", \"abc\"", true},
      {"\"xyz\" ,\t \"abc\" ", true},
      {", ,\"abc\",", true},
      {"\"a,b\", \"abc\"", true},
      {"W/\"abc\"", false},  // weak: never equal under strong comparison
      {"W/\"abc\", \"xyz\"", false},
      {"W/\"abc\", \"abc\"", true},
      {"\"xyz\"", false},
      {"\"ABC\"", false},
      {"\"ab\"", false},
      {"", false},
      {"abc", false},
      {"abc, \"abc\"", true},
      {"w/\"abc\"", false},
      {"\"abc\"x", false},
      {"\"abc", false},
      {"*, \"xyz\"", false},
      {"*, \"abc\"", true},
  };
  check_against_abc(if_match, cases);
}

TEST_CASE("if_match never matches a weak, invalid or missing stored tag except with *",
          "[http][etag]") {
  CHECK(if_match("*", ""));
  CHECK(if_match("*", "W/\"abc\""));
  CHECK_FALSE(if_match("\"\"", ""));
  CHECK_FALSE(if_match("\"abc\"", ""));
  CHECK_FALSE(if_match("\"abc\"", "W/\"abc\""));
  CHECK_FALSE(if_match("W/\"abc\"", "W/\"abc\""));
  CHECK_FALSE(if_match("abc", "abc"));
  CHECK(if_match("\"\"", "\"\""));
}
