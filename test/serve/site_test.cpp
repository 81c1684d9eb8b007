#include "serve/site.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "archive/entry.hpp"
#include "archive/schema.hpp"
#include "cdb/writer.hpp"
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

// An entry of one identity variant: `block` and the body at `position`, `length` bytes long.
std::string entry_value(unsigned status, std::string block, std::uint32_t position = 0,
                        std::uint32_t length = 0) {
  const archive::variant_spec spec{
      archive::encoding::identity, position, length, std::move(block), 0, 0, 0};
  return archive::encode_entry(status, &spec, 1);
}

// An archive written record by record, not by the archiver: a redirect stored before the only
// body (where the archiver never puts an entry), then two entries of that body, one with a
// Content-Length that is not the body's.
std::string hand_made_archive(const temp_folder& folder) {
  namespace schema = archive::schema;
  const auto path = (folder / "hand-made.cdb").string();
  std::FILE* out = std::fopen(path.c_str(), "wb");
  REQUIRE(out != nullptr);
  {
    kawipiko::cdb::writer writer(out, path);
    writer.add(schema::schema_key, schema::schema_value);
    writer.add("/early", entry_value(308, "Location: /late.txt\r\nContent-Length: 0\r\n"));
    const auto body = writer.add(schema::body_key(std::string(64, 'a'), "identity"), "body");
    writer.add("/late.txt", entry_value(200, "Content-Length: 4\r\n", body, 4));
    writer.add("/bad.txt", entry_value(200, "Content-Length: 5\r\n", body, 4));
    writer.finish();
  }
  std::fclose(out);
  return path;
}

}  // namespace

TEST_CASE("an entry the open did not check, stored among the bodies, or a malformed one is corrupt",
          "[serve][site][corrupt]") {
  const temp_folder folder;
  serve::options opts;
  opts.archive = hand_made_archive(folder);
  for (const bool indexed : {false, true}) {
    INFO("indexed " << indexed);
    opts.index_paths = indexed;
    const serve::site site(opts);
    archive::entry entry;
    CHECK(site.find("/late.txt", entry) == archive::lookup_status::found);
    CHECK(entry.variants[0].body == "body");
    CHECK(site.lists().find(entry.variants[0].block).size() == 1);
    // Well-formed, but among the bodies, which the open skips: it was never checked.
    CHECK(site.find("/early", entry) == archive::lookup_status::corrupt);
    CHECK(site.find("/bad.txt", entry) == archive::lookup_status::corrupt);
    CHECK(site.lists().find(entry.variants[0].block).empty());
    CHECK(site.find("/missing", entry) == archive::lookup_status::not_found);
    CHECK(site.archive().indexed() == (indexed ? 1u : 0u));
  }
}

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

TEST_CASE("each site opens its own serve-time rules, and a corrupt blob refuses the archive",
          "[serve][site][rules]") {
  const temp_folder folder;
  folder.write("src/a.test/index.html", "a");
  folder.write("src/a.test/_redirects", "/blog/* /news/:splat 302\n");
  folder.write("src/b.test/index.html", "b");
  folder.write("src/b.test/_redirects", "https://old.b.test/* /:splat 301!\n");
  folder.write("src/c.test/index.html", "c");
  const auto opts = archived(folder, true);
  const auto whole = std::make_shared<const serve::site_archive>(opts);
  const serve::site a(whole, "a.test"), b(whole, "b.test"), c(whole, "c.test");
  REQUIRE(a.rules() != nullptr);
  CHECK(a.rules()->size() == 1);
  CHECK(a.forced_rules() == nullptr);
  REQUIRE(b.forced_rules() != nullptr);
  CHECK(b.forced_rules()->size() == 1);
  CHECK(c.rules() == nullptr);
  CHECK(c.forced_rules() == nullptr);

  // The blob's magic, damaged: the whole archive is refused, in one line.
  std::string image = kawipiko::test::read_file(opts.archive);
  const auto at = image.find("rules:a.testKWRM");
  REQUIRE(at != std::string::npos);
  image[at + 12] = 'X';
  auto damaged = opts;
  damaged.archive = folder.write("damaged.cdb", image).string();
  CHECK_THROWS_WITH(
      serve::site_archive(damaged),
      Catch::StartsWith("cannot serve '" + damaged.archive + "': corrupt redirect rules"));
}
