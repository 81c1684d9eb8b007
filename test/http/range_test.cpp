#include "http/range.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using kawipiko::http::byte_range;
using kawipiko::http::if_range_matches;
using kawipiko::http::parse_range;
using kawipiko::http::range_result;

namespace {

struct parsed {
  range_result result;
  std::vector<byte_range> ranges;
};

parsed parse(std::string_view header, std::uint64_t length) {
  std::array<byte_range, 16> out{};
  std::size_t count = 99;
  const auto result = parse_range(header, length, out, count);
  if (result != range_result::satisfiable) CHECK(count == 0);
  REQUIRE(count <= out.size());
  return {result,
          std::vector<byte_range>(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(count))};
}

struct range_case {
  std::string_view header;
  std::uint64_t length;
  range_result result;
  std::vector<byte_range> ranges;
};

std::string ranges_to_string(const std::vector<byte_range>& ranges) {
  std::string text;
  for (const auto& range : ranges) {
    text += std::to_string(range.first) + "-" + std::to_string(range.last) + " ";
  }
  return text;
}

}  // namespace

TEST_CASE("parse_range reads byte ranges, clips, drops and coalesces them", "[http][range]") {
  using r = range_result;
  constexpr std::uint64_t max = UINT64_MAX;
  const range_case cases[] = {
      {"bytes=0-0", 10, r::satisfiable, {{0, 0}}},
      {"bytes=-1", 10, r::satisfiable, {{9, 9}}},
      {"bytes=5-", 10, r::satisfiable, {{5, 9}}},
      {"bytes=0-", 10, r::satisfiable, {{0, 9}}},
      {"bytes=2-4", 10, r::satisfiable, {{2, 4}}},
      {"bytes=-20", 10, r::satisfiable, {{0, 9}}},
      {"bytes=-10", 10, r::satisfiable, {{0, 9}}},
      {"bytes=5-100", 10, r::satisfiable, {{5, 9}}},
      {"bytes=9-9", 10, r::satisfiable, {{9, 9}}},
      {"bytes=0-9999999999999999999", 10, r::satisfiable, {{0, 9}}},
      {"BYTES=1-2", 10, r::satisfiable, {{1, 2}}},
      {"Bytes=1-2", 10, r::satisfiable, {{1, 2}}},
      // Coalescing: overlapping and adjacent ranges merge, the rest are sorted.
      {"bytes=0-4,3-9", 10, r::satisfiable, {{0, 9}}},
      {"bytes=0-1,3-4", 10, r::satisfiable, {{0, 1}, {3, 4}}},
      {"bytes=0-1,2-3", 10, r::satisfiable, {{0, 3}}},
      {"bytes=3-4,0-1", 10, r::satisfiable, {{0, 1}, {3, 4}}},
      {"bytes=0-0,0-0,0-0", 10, r::satisfiable, {{0, 0}}},
      {"bytes=2-8,3-4", 10, r::satisfiable, {{2, 8}}},
      {"bytes=-2,0-1", 10, r::satisfiable, {{0, 1}, {8, 9}}},
      {"bytes=-5,0-4", 10, r::satisfiable, {{0, 9}}},
      {"bytes=0-1,5-6,1-5", 10, r::satisfiable, {{0, 6}}},
      // List syntax: whitespace and empty elements.
      {"bytes=0-1, 3-4", 10, r::satisfiable, {{0, 1}, {3, 4}}},
      {"bytes= 0-1 ,\t3-4 ", 10, r::satisfiable, {{0, 1}, {3, 4}}},
      {"bytes=,0-1,,", 10, r::satisfiable, {{0, 1}}},
      {"  bytes=0-1  ", 10, r::satisfiable, {{0, 1}}},
      // Unsatisfiable ranges are dropped; none left is 416.
      {"bytes=9-", 5, r::unsatisfiable, {}},
      {"bytes=5-", 5, r::unsatisfiable, {}},
      {"bytes=5-9", 5, r::unsatisfiable, {}},
      {"bytes=-0", 5, r::unsatisfiable, {}},
      {"bytes=-0,9-", 5, r::unsatisfiable, {}},
      {"bytes=9-,1-2", 5, r::satisfiable, {{1, 2}}},
      {"bytes=-0,-1", 5, r::satisfiable, {{4, 4}}},
      // An empty representation satisfies nothing.
      {"bytes=0-0", 0, r::unsatisfiable, {}},
      {"bytes=0-", 0, r::unsatisfiable, {}},
      {"bytes=-1", 0, r::unsatisfiable, {}},
      // Huge lengths do not overflow.
      {"bytes=-5", max, r::satisfiable, {{max - 5, max - 1}}},
      {"bytes=0-", max, r::satisfiable, {{0, max - 1}}},
      {"bytes=9999999999999999998-", max, r::satisfiable, {{9999999999999999998u, max - 1}}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.header, c.length);
    const auto result = parse(c.header, c.length);
    CHECK(result.result == c.result);
    CHECK(ranges_to_string(result.ranges) == ranges_to_string(c.ranges));
  }
}

TEST_CASE("parse_range ignores headers it cannot read", "[http][range]") {
  constexpr std::string_view headers[] = {
      "",
      "bytes",
      "bytes=",
      "bytes=,",
      "bytes= , ",
      "items=0-1",
      "bytes 0-1",
      "bytes =0-1",
      "bytes=abc",
      "bytes=0",
      "bytes=-",
      "bytes=--1",
      "bytes=1-2-3",
      "bytes=0 -1",
      "bytes=0- 1",
      "bytes=+1-2",
      "bytes=0x1-2",
      "bytes=5-4",
      "bytes=9-8",  // invalid even though 9 is past the end
      "bytes=0-1;x",
      "bytes=0-1,abc",  // one bad element spoils the whole header
      "bytes=abc,0-1",
      "bytes=99999999999999999999-",
      "bytes=0-99999999999999999999",
      "bytes=-99999999999999999999",
      "bytes=00000000000000000001-",
  };
  for (const auto header : headers) {
    CAPTURE(header);
    CHECK(parse(header, 10).result == range_result::none);
  }
}

TEST_CASE("parse_range caps the number of ranges a client may ask for", "[http][range]") {
  std::string header = "bytes=";
  for (int i = 0; i < 16; ++i) header += std::to_string(i * 2) + "-" + std::to_string(i * 2) + ",";
  const auto sixteen = parse(header, 100);
  CHECK(sixteen.result == range_result::satisfiable);
  CHECK(sixteen.ranges.size() == 16);

  header += "40-40";
  CHECK(parse(header, 100).result == range_result::too_many);
  // Counted before coalescing.
  CHECK(parse("bytes=0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0", 100)
            .result == range_result::too_many);
  // Unsatisfiable ones are not counted, but a syntax error still wins.
  CHECK(parse(header + ",200-,300-", 100).result == range_result::too_many);
  CHECK(parse(header + ",x", 100).result == range_result::none);

  std::array<byte_range, 2> small{};
  std::size_t count = 0;
  CHECK(parse_range("bytes=0-0,2-2,4-4", 10, small, count) == range_result::too_many);
  CHECK(count == 0);
  CHECK(parse_range("bytes=0-0,2-2,99-", 10, small, count) == range_result::satisfiable);
  CHECK(count == 2);
  CHECK(parse_range("bytes=0-0", 10, std::span<byte_range>(), count) == range_result::too_many);
}

TEST_CASE("if_range_matches accepts only an equal strong entity-tag", "[http][range]") {
  struct if_range_case {
    std::string_view if_range;
    bool matches;
  };
  constexpr if_range_case cases[] = {
      {"\"abc\"", true},
      {" \"abc\" ", true},
      {"\"abd\"", false},
      {"\"ABC\"", false},
      {"W/\"abc\"", false},
      {"abc", false},
      {"\"abc", false},
      {"", false},
      {"Wed, 21 Oct 2015 07:28:00 GMT", false},
      {"\"abc\", \"abc\"", false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.if_range);
    CHECK(if_range_matches(c.if_range, "\"abc\"") == c.matches);
  }
  CHECK_FALSE(if_range_matches("W/\"abc\"", "W/\"abc\""));
  CHECK_FALSE(if_range_matches("\"\"", ""));
  CHECK(if_range_matches("\"\"", "\"\""));
}
