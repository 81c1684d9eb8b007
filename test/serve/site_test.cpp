#include "serve/site.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "serve/options.hpp"
#include "support/site_fixture.hpp"
#include "support/temp_folder.hpp"

namespace archive = kawipiko::archive;
namespace serve = kawipiko::serve;
using kawipiko::test::temp_folder;

namespace {

// The sources under `folder`/src archived (with host folders if asked), as options to open it.
serve::options archived(const temp_folder& folder, bool host_folders, bool index_paths = false) {
  auto opts = kawipiko::test::archived_options(folder, {}, host_folders);
  opts.index_paths = index_paths;
  return opts;
}

std::string body(const serve::site& s, std::string_view path) {
  archive::entry entry;
  INFO(path);
  REQUIRE(s.find(path, entry) == archive::lookup_status::found);
  return std::string(entry.variants[0].body);
}

bool has(const serve::site& s, std::string_view path) {
  archive::entry entry;
  const auto status = s.find(path, entry);
  REQUIRE(status != archive::lookup_status::corrupt);
  return status == archive::lookup_status::found;
}

}  // namespace

TEST_CASE("a site opened from options is the whole archive, and one of host folders is refused",
          "[serve][site]") {
  const temp_folder whole, hosts;
  whole.write("src/index.html", "whole");
  const serve::site site(archived(whole, false));
  CHECK(site.host().empty());
  CHECK(body(site, "/") == "whole");
  CHECK(site.archive().reader().hosts().empty());

  hosts.write("src/a.test/index.html", "a");
  const auto opts = archived(hosts, true);
  CHECK_THROWS_WITH(serve::site(opts),
                    "'" + opts.archive + "' has host folders; give it with --archive");
}

TEST_CASE("a host's site looks its paths up under its host, with or without the path index",
          "[serve][site]") {
  for (const bool indexed : {false, true}) {
    INFO("indexed " << indexed);
    const temp_folder folder;
    folder.write("src/a.test/index.html", "a");
    folder.write("src/a.test/app/_wildcard.html", "a's app");
    folder.write("src/b.test/index.html", "b");
    folder.write("src/b.test/only-b.txt", "only b");
    const auto archive =
        std::make_shared<const serve::site_archive>(archived(folder, true, indexed));
    CHECK((archive->indexed() > 0) == indexed);
    const serve::site a(archive, "a.test"), b(archive, "b.test");
    CHECK(body(a, "/") == "a");
    CHECK(body(b, "/") == "b");
    CHECK(body(b, "/only-b.txt") == "only b");
    CHECK_FALSE(has(a, "/only-b.txt"));
    archive::entry entry;
    REQUIRE(a.find_fallback("/app/deep/link", entry) == archive::lookup_status::found);
    CHECK(entry.variants[0].body == "a's app");
    CHECK(b.find_fallback("/app/deep/link", entry) == archive::lookup_status::not_found);
    // A path too long for the key buffer is simply not there.
    CHECK_FALSE(has(a, "/" + std::string(9000, 'x')));
  }
}
