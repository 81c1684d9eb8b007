#include "serve/certificate_names.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace serve = kawipiko::serve;

namespace {

constexpr auto none = serve::certificate_table::none;

// A table of certificates with these DNS names, one vector per certificate.
serve::certificate_table table_of(const std::vector<std::vector<std::string>>& certificates) {
  serve::certificate_table table;
  for (const auto& dns : certificates) table.add({dns, {}});
  return table;
}

}  // namespace

TEST_CASE("a wildcard covers exactly one label under its name, not the name itself nor deeper",
          "[serve][tls]") {
  const auto table = table_of({{"*.example.com"}});
  CHECK(table.find("a.example.com") == 0);
  CHECK(table.find("www-2.example.com") == 0);
  CHECK(table.find("example.com") == none);
  CHECK(table.find("a.b.example.com") == none);
  CHECK(table.find(".example.com") == none);
  CHECK(table.find("aexample.com") == none);
  CHECK(table.find("a.example.org") == none);
  CHECK(table.covers(0, "a.example.com"));
  CHECK_FALSE(table.covers(0, "a.b.example.com"));
}

TEST_CASE("names match as written in the certificate, without case and a trailing dot",
          "[serve][tls]") {
  const auto table = table_of({{"Example.COM.", "*.Sub.Example.com"}});
  CHECK(table.find("example.com") == 0);
  CHECK(table.find("x.sub.example.com") == 0);
  CHECK(table.find("www.example.com") == none);
  CHECK(table.size() == 1);
}

TEST_CASE("a name that is neither plain nor a one-label wildcard covers nothing", "[serve][tls]") {
  const auto table = table_of({{"f*.example.com", "*", "*.", "a.*.example.com", ""}});
  CHECK(table.find("foo.example.com") == none);
  CHECK(table.find("a.b.example.com") == none);
  CHECK(table.find("a.example.com") == none);
  CHECK(table.find("example.com") == none);
}

TEST_CASE("the certificate with the name itself wins over a wildcard, the first over later ones",
          "[serve][tls]") {
  const auto table = table_of({{"a.test"}, {"*.b.test", "a.test"}, {"x.b.test"}, {"*.b.test"}});
  CHECK(table.size() == 4);
  CHECK(table.find("a.test") == 0);    // also certificate 1's: the first wins
  CHECK(table.find("y.b.test") == 1);  // the first wildcard
  CHECK(table.find("x.b.test") == 2);  // its own name, over the earlier wildcard
  CHECK(table.find("other.test") == none);
  CHECK(table.covers(1, "a.test"));
  CHECK(table.covers(1, "x.b.test"));
  CHECK(table.covers(3, "x.b.test"));
  CHECK_FALSE(table.covers(0, "x.b.test"));
  CHECK_FALSE(table.covers(2, "y.b.test"));
}

TEST_CASE("an IP address covers that address, however IPv6 spells it, and never a name",
          "[serve][tls]") {
  serve::certificate_table table;
  table.add({{"192.0.2.9"}, {"192.0.2.1", "2001:db8::1", "not an address"}});
  CHECK(table.find("192.0.2.1") == 0);
  CHECK(table.find("[2001:db8::1]") == 0);
  CHECK(table.find("[2001:DB8:0:0::1]") == 0);
  CHECK(table.find("[2001:db8::2]") == none);
  CHECK(table.find("192.0.2.2") == none);
  // A dNSName that reads like an address is not one (RFC 6125 §6.2.1).
  CHECK(table.find("192.0.2.9") == none);
  CHECK(table.find("[]") == none);
}

TEST_CASE(
    "a host is misdirected when the connection's certificate does not cover it and another does, "
    "never with one certificate",
    "[serve][tls]") {
  const auto two = table_of({{"a.test"}, {"*.b.test"}});
  CHECK(two.is_misdirected(0, "x.b.test"));
  CHECK(two.is_misdirected(1, "a.test"));
  CHECK_FALSE(two.is_misdirected(0, "a.test"));
  CHECK_FALSE(two.is_misdirected(1, "x.b.test"));
  CHECK_FALSE(two.is_misdirected(0, "other.test"));  // no certificate covers it: served
  CHECK_FALSE(two.is_misdirected(1, ""));

  const auto one = table_of({{"a.test"}});
  CHECK_FALSE(one.is_misdirected(0, "x.b.test"));
  CHECK_FALSE(one.is_misdirected(0, "a.test"));
}
