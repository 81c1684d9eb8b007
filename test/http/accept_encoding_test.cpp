#include "http/accept_encoding.hpp"

#include <catch2/catch.hpp>
#include <string_view>

using kawipiko::http::coding;
using kawipiko::http::encoding_set;
using kawipiko::http::pick_encoding;

namespace {

constexpr encoding_set all{true, true, true};
constexpr encoding_set identity_gzip{true, true, false};
constexpr encoding_set identity_br{true, false, true};
constexpr encoding_set identity_only{true, false, false};
constexpr encoding_set compressed_only{false, true, true};
constexpr encoding_set nothing{false, false, false};

struct pick_case {
  std::string_view header;
  encoding_set available;
  coding expected;
};

}  // namespace

TEST_CASE("pick_encoding without an Accept-Encoding header prefers identity",
          "[http][accept_encoding]") {
  CHECK(pick_encoding("", false, all) == coding::identity);
  CHECK(pick_encoding("br", false, all) == coding::identity);  // value ignored when absent
  CHECK(pick_encoding("", false, compressed_only) == coding::br);
  CHECK(pick_encoding("", false, {false, true, false}) == coding::gzip);
  CHECK(pick_encoding("", false, nothing) == coding::none);
}

TEST_CASE("pick_encoding follows RFC 9110 weights, wildcards and tie-breaks",
          "[http][accept_encoding]") {
  constexpr pick_case cases[] = {
      // RFC 9110 §12.5.3 examples.
      {"compress, gzip", all, coding::gzip},
      {"", all, coding::identity},
      {"*", all, coding::br},
      {"compress;q=0.5, gzip;q=1.0", all, coding::gzip},
      {"gzip;q=1.0, identity; q=0.5, *;q=0", all, coding::gzip},
      {"gzip;q=1.0, identity; q=0.5, *;q=0", identity_br, coding::identity},
      // Empty or blank: identity only.
      {"", compressed_only, coding::none},
      {" \t ", all, coding::identity},
      {" , ,", all, coding::identity},
      // Exclusions.
      {"gzip;q=0, *", all, coding::br},
      {"gzip;q=0, *", identity_gzip, coding::identity},
      {"gzip;q=0", identity_gzip, coding::identity},
      {"identity;q=0", identity_only, coding::none},
      {"identity;q=0", all, coding::none},
      {"identity;q=0, gzip", all, coding::gzip},
      {"*;q=0", all, coding::none},
      {"*;q=0", identity_only, coding::none},
      {"*;q=0, identity", all, coding::identity},
      {"*;q=0, gzip", all, coding::gzip},
      {"*;q=0, gzip", identity_br, coding::none},
      {"br", identity_gzip, coding::identity},
      // Weights and ties.
      {"br;q=0.5, gzip;q=0.8", all, coding::gzip},
      {"br;q=0.5, gzip;q=0.8", identity_br, coding::br},
      {"br;q=0.5, gzip;q=0.8", identity_only, coding::identity},
      {"gzip, br", all, coding::br},
      {"gzip, br", identity_gzip, coding::gzip},
      {"gzip;q=1, br;q=0.999", all, coding::gzip},
      {"br;q=0.001", all, coding::br},
      {"br;q=0.001, identity", all, coding::identity},
      {"identity;q=0.5, gzip;q=0", all, coding::identity},
      {"*;q=0.5, br;q=0.4", all, coding::gzip},
      {"*;q=0.5, br;q=0.4", identity_br, coding::identity},
      {"gzip;q=0, gzip;q=0.5", identity_gzip, coding::gzip},
      {"gzip;q=0.5, gzip;q=0", identity_gzip, coding::gzip},
      {"gzip;q=0.", identity_gzip, coding::identity},
      {"gzip;q=1.000", identity_gzip, coding::gzip},
      {"deflate, zstd", all, coding::identity},
      {"gzip", nothing, coding::none},
      // Names: x-gzip and any case.
      {"x-gzip", all, coding::gzip},
      {"X-GZIP", identity_gzip, coding::gzip},
      {"GZIP;Q=0.5, BR;Q=0.4", all, coding::gzip},
      {"Identity;q=0, Br", identity_br, coding::br},
      // Whitespace.
      {" gzip ; q = 0.5 ,\tbr;q=0.4 ", all, coding::gzip},
      {"gzip,br", all, coding::br},
      // Malformed elements are ignored (the coding counts as not named).
      {"gzip;q=2", identity_gzip, coding::identity},
      {"gzip;q=1.5", identity_gzip, coding::identity},
      {"gzip;q=0.1234", identity_gzip, coding::identity},
      {"gzip;q=abc", identity_gzip, coding::identity},
      {"gzip;q=", identity_gzip, coding::identity},
      {"gzip;q=.5", identity_gzip, coding::identity},
      {"gzip;q=-0", identity_gzip, coding::identity},
      {"gzip;", identity_gzip, coding::identity},
      {"gzip;level=1", identity_gzip, coding::identity},
      {"gzip;q=0.5;x=1", identity_gzip, coding::identity},
      {"gzip junk", identity_gzip, coding::identity},
      {"gz ip", identity_gzip, coding::identity},
      {"identity;q=zero", identity_only, coding::identity},
      {"*;q=O", all, coding::identity},
      {"gzip;q=abc, br", all, coding::br},
      {"gzip;q=2, br;q=0.1", identity_gzip, coding::identity},
  };
  for (const auto& c : cases) {
    CAPTURE(c.header, c.available.identity, c.available.gzip, c.available.br);
    CHECK(pick_encoding(c.header, true, c.available) == c.expected);
  }
}
