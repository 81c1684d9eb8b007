#include "http/host.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace http = kawipiko::http;

namespace {

http::host_pattern pattern(std::string_view text) {
  const auto parsed = http::parse_host_pattern(text);
  INFO(text);
  REQUIRE(parsed);
  return *parsed;
}

}  // namespace

TEST_CASE("host patterns are names or *.names, folded to lower case without a trailing dot",
          "[http][hosts]") {
  const auto exact = pattern("Example.COM.");
  CHECK(exact.name == "example.com");
  CHECK_FALSE(exact.wildcard);
  CHECK(exact.text() == "example.com");
  const auto any = pattern("*.Example.com");
  CHECK(any.name == "example.com");
  CHECK(any.wildcard);
  CHECK(any.text() == "*.example.com");
  CHECK(pattern("127.0.0.1").name == "127.0.0.1");
  CHECK(pattern("_dmarc.example.com").name == "_dmarc.example.com");
  CHECK(pattern(std::string(253, 'a')).name.size() == 253);
  for (const char* bad : {"", "*", "*.", "a..b", ".a", "a b", "a/b", "a:80", "*.*.a", "é.com",
                          "a.b..", ".well-known"}) {
    INFO(bad);
    CHECK_FALSE(http::parse_host_pattern(bad));
  }
  CHECK_FALSE(http::parse_host_pattern(std::string(254, 'a')));
}

TEST_CASE("a pattern matches its name, a wildcard only the names under it", "[http][hosts]") {
  const auto exact = pattern("example.com");
  const auto any = pattern("*.example.com");
  CHECK(http::matches(exact, "example.com"));
  CHECK_FALSE(http::matches(exact, "www.example.com"));
  CHECK(http::matches(any, "www.example.com"));
  CHECK(http::matches(any, "a.b.example.com"));
  CHECK_FALSE(http::matches(any, "example.com"));
  CHECK_FALSE(http::matches(any, "badexample.com"));
  CHECK_FALSE(http::matches(any, ".example.com"));
}
