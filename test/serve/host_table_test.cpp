#include "serve/host_table.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "base/error.hpp"
#include "serve/site.hpp"
#include "support/site_fixture.hpp"
#include "support/temp_folder.hpp"

namespace archive = kawipiko::archive;
namespace serve = kawipiko::serve;
using kawipiko::test::temp_folder;

namespace {

std::string normalized(std::string_view host) {
  std::array<char, 256> room{};
  return std::string(serve::normalized_host(host, room));
}

// A site compared by address only: never opened.
std::shared_ptr<const serve::site> unowned(std::uintptr_t address) {
  return {std::shared_ptr<const serve::site>(), reinterpret_cast<const serve::site*>(address)};
}

// Host folders a.test/, *.b.test/ and (unless `without_default`) _default/, archived and opened.
std::shared_ptr<const serve::site_archive> host_folders(const temp_folder& folder,
                                                        bool without_default = false) {
  folder.write("src/a.test/index.html", "a");
  folder.write("src/a.test/only-a.txt", "only a");
  folder.write("src/a.test/_404.html", "a's 404");
  folder.write("src/*.b.test/index.html", "b");
  if (!without_default) folder.write("src/_default/index.html", "default");
  return std::make_shared<const serve::site_archive>(
      kawipiko::test::archived_options(folder, {}, true));
}

// The identity body `s` answers `path` with (its entry or fallback), or "" when it has none.
std::string body_of(const serve::site* s, std::string_view path) {
  REQUIRE(s != nullptr);
  archive::entry entry;
  auto status = s->find(path, entry);
  if (status == archive::lookup_status::not_found) status = s->find_fallback(path, entry);
  REQUIRE(status != archive::lookup_status::corrupt);
  if (status == archive::lookup_status::not_found) return {};
  return std::string(entry.variants[0].body);
}

}  // namespace

TEST_CASE("a --host name that is not a host name is refused as an option", "[serve][hosts]") {
  CHECK(serve::parse_host_option("*.Example.com").text() == "*.example.com");
  CHECK_THROWS_WITH(serve::parse_host_option("a b"),
                    "--host: 'a b' is not a host name (example.com or *.example.com)");
  CHECK_THROWS_AS(serve::parse_host_option("a:80"), kawipiko::base::invalid_option);
}

TEST_CASE("a request's host is matched without port, case or trailing dot", "[serve][hosts]") {
  CHECK(normalized("Example.COM:8080") == "example.com");
  CHECK(normalized("example.com.") == "example.com");
  CHECK(normalized("user@example.com:443") == "example.com");
  CHECK(normalized("[::1]:8080") == "[::1]");
  CHECK(normalized("") == "");
  CHECK(normalized(std::string(300, 'a')) == "");  // too long to be a name: matches nothing
}

TEST_CASE(
    "an exact name wins over wildcards, the longest wildcard over shorter ones, then the "
    "default, without a default an unknown host has no site",
    "[serve][hosts]") {
  serve::site_set sites;
  sites.hosts.push_back({serve::parse_host_option("*.example.com"), unowned(0x10)});
  sites.hosts.push_back({serve::parse_host_option("*.blog.example.com"), unowned(0x20)});
  sites.hosts.push_back({serve::parse_host_option("www.blog.example.com"), unowned(0x30)});
  CHECK(sites.find("shop.example.com") == unowned(0x10).get());
  CHECK(sites.find("x.blog.example.com") == unowned(0x20).get());
  CHECK(sites.find("www.blog.example.com") == unowned(0x30).get());
  CHECK(sites.find("other.org") == nullptr);
  CHECK(sites.find("example.com") == nullptr);
  sites.fallback = unowned(0x40);
  CHECK(sites.find("other.org") == unowned(0x40).get());
}

TEST_CASE("an archive without host folders is one site, the default", "[serve][hosts]") {
  const temp_folder folder;
  folder.write("src/index.html", "whole");
  const auto sites = serve::sites_of(
      std::make_shared<const serve::site_archive>(kawipiko::test::archived_options(folder, {})),
      -1);
  CHECK(sites.hosts.empty());
  REQUIRE(sites.fallback);
  CHECK(sites.fallback->host().empty());
  CHECK(body_of(sites.find("any.org"), "/") == "whole");
}

TEST_CASE(
    "an archive of host folders is one site per host, _default the default, sharing one "
    "mapping, each answering only from its own folder",
    "[serve][hosts]") {
  const temp_folder folder;
  const auto shared = host_folders(folder);
  const auto sites = serve::sites_of(shared, -1);
  REQUIRE(sites.hosts.size() == 2);
  CHECK(sites.hosts[0].pattern.text() == "*.b.test");
  CHECK(sites.hosts[1].pattern.text() == "a.test");
  REQUIRE(sites.fallback);
  CHECK(sites.fallback->host() == "_default");
  for (const auto& h : sites.hosts) CHECK(&h.answers->archive() == shared.get());
  CHECK(&sites.fallback->archive() == shared.get());

  CHECK(body_of(sites.find("a.test"), "/") == "a");
  CHECK(body_of(sites.find("a.test"), "/only-a.txt") == "only a");
  CHECK(body_of(sites.find("x.y.b.test"), "/") == "b");
  CHECK(body_of(sites.find("other.org"), "/") == "default");
  // Nothing crosses hosts: a.test's files and its 404 page are a.test's alone.
  CHECK(body_of(sites.find("other.org"), "/only-a.txt").empty());
  CHECK(body_of(sites.find("x.b.test"), "/only-a.txt").empty());
  CHECK(body_of(sites.find("a.test"), "/missing") == "a's 404");
  CHECK(body_of(sites.find("other.org"), "/missing").empty());
  // The host is not a path: no site finds another's keys by its request path.
  CHECK(body_of(sites.find("other.org"), "a.test/").empty());
}

TEST_CASE("an archive of host folders without _default has no default site", "[serve][hosts]") {
  const temp_folder folder;
  const auto sites = serve::sites_of(host_folders(folder, true), -1);
  CHECK(sites.hosts.size() == 2);
  CHECK_FALSE(sites.fallback);
  CHECK(sites.find("other.org") == nullptr);
  CHECK(body_of(sites.find("a.test"), "/") == "a");
}

TEST_CASE(
    "replacing what one archive brought keeps the others' sites, each --host's first, then "
    "--archive's",
    "[serve][hosts]") {
  const auto host = [](std::string_view name, std::uintptr_t address) {
    return serve::site_set::host{serve::parse_host_option(name), unowned(address)};
  };
  serve::site_set archive_part;  // --archive with host folders a.test and b.test and a default
  archive_part.fallback = unowned(0x10);
  archive_part.hosts = {host("a.test", 0x11), host("b.test", 0x12)};
  serve::site_set host_part;  // --host a.test=...
  host_part.hosts = {host("a.test", 0x20)};

  auto sites = serve::replaced({}, -1, archive_part);
  sites = serve::replaced(sites, 0, host_part);
  REQUIRE(sites.hosts.size() == 3);
  CHECK(sites.hosts[0].from == 0);
  CHECK(sites.find("a.test") == unowned(0x20).get());  // the --host one wins
  CHECK(sites.find("b.test") == unowned(0x12).get());
  CHECK(sites.find("c.test") == unowned(0x10).get());

  // A reload of --archive that drops b.test, adds c.test and has no default.
  serve::site_set next;
  next.hosts = {host("c.test", 0x31)};
  sites = serve::replaced(sites, -1, next);
  REQUIRE(sites.hosts.size() == 2);
  CHECK(sites.find("a.test") == unowned(0x20).get());
  CHECK(sites.find("b.test") == nullptr);
  CHECK(sites.find("c.test") == unowned(0x31).get());
  // A reload of the --host keeps --archive's sites.
  sites = serve::replaced(sites, 0, {nullptr, {host("a.test", 0x21)}});
  CHECK(sites.find("a.test") == unowned(0x21).get());
  CHECK(sites.find("c.test") == unowned(0x31).get());
}
