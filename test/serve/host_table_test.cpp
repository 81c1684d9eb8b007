#include "serve/host_table.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <string>

#include "base/error.hpp"

namespace serve = kawipiko::serve;

namespace {

std::string normalized(std::string_view host) {
  std::array<char, 256> room{};
  return std::string(serve::normalized_host(host, room));
}

}  // namespace

TEST_CASE("host patterns are names or *.names, folded to lower case without a trailing dot",
          "[serve][hosts]") {
  const auto exact = serve::parse_host_pattern("Example.COM.");
  CHECK(exact.name == "example.com");
  CHECK_FALSE(exact.wildcard);
  const auto any = serve::parse_host_pattern("*.example.com");
  CHECK(any.name == "example.com");
  CHECK(any.wildcard);
  CHECK(serve::parse_host_pattern("127.0.0.1").name == "127.0.0.1");
  for (const char* bad : {"", "*", "*.", "a..b", ".a", "a b", "a/b", "a:80", "*.*.a", "é.com"}) {
    INFO(bad);
    CHECK_THROWS_AS(serve::parse_host_pattern(bad), kawipiko::base::invalid_option);
  }
}

TEST_CASE("a request's host is matched without port, case or trailing dot", "[serve][hosts]") {
  CHECK(normalized("Example.COM:8080") == "example.com");
  CHECK(normalized("example.com.") == "example.com");
  CHECK(normalized("user@example.com:443") == "example.com");
  CHECK(normalized("[::1]:8080") == "[::1]");
  CHECK(normalized("") == "");
  CHECK(normalized(std::string(300, 'a')) == "");  // too long to be a name: matches nothing
  const auto exact = serve::parse_host_pattern("example.com");
  const auto any = serve::parse_host_pattern("*.example.com");
  CHECK(serve::matches(exact, "example.com"));
  CHECK_FALSE(serve::matches(exact, "www.example.com"));
  CHECK(serve::matches(any, "www.example.com"));
  CHECK(serve::matches(any, "a.b.example.com"));
  CHECK_FALSE(serve::matches(any, "example.com"));
  CHECK_FALSE(serve::matches(any, "badexample.com"));
}

TEST_CASE(
    "an exact name wins over wildcards, the longest wildcard over shorter ones, then the "
    "default, without a default an unknown host has no site",
    "[serve][hosts]") {
  // The sites are only compared by address here: none is opened.
  const auto* a = reinterpret_cast<const serve::site*>(0x10);
  const auto* b = reinterpret_cast<const serve::site*>(0x20);
  const auto* c = reinterpret_cast<const serve::site*>(0x30);
  const auto* d = reinterpret_cast<const serve::site*>(0x40);
  const auto unowned = [](const serve::site* s) {
    return std::shared_ptr<const serve::site>(std::shared_ptr<const serve::site>(), s);
  };
  serve::site_set sites;
  sites.hosts.push_back({serve::parse_host_pattern("*.example.com"), unowned(a)});
  sites.hosts.push_back({serve::parse_host_pattern("*.blog.example.com"), unowned(b)});
  sites.hosts.push_back({serve::parse_host_pattern("www.blog.example.com"), unowned(c)});
  CHECK(sites.find("shop.example.com") == a);
  CHECK(sites.find("x.blog.example.com") == b);
  CHECK(sites.find("www.blog.example.com") == c);
  CHECK(sites.find("other.org") == nullptr);
  CHECK(sites.find("example.com") == nullptr);
  sites.fallback = unowned(d);
  CHECK(sites.find("other.org") == d);
}
