#include "archive/reader.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "archive/builder.hpp"
#include "archive/entry.hpp"
#include "archive/schema.hpp"
#include "base/mapped_file.hpp"
#include "cdb/writer.hpp"
#include "support/temp_folder.hpp"

namespace archive = kawipiko::archive;
namespace schema = kawipiko::archive::schema;
using kawipiko::test::compressible_text;
using kawipiko::test::read_file;
using kawipiko::test::temp_folder;

namespace {

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A CDB image holding `records` (key, value) in order.
std::string cdb_image(const std::vector<std::pair<std::string, std::string>>& records,
                      const temp_folder& scratch) {
  const auto file = scratch / "image.cdb";
  std::FILE* out = std::fopen(file.c_str(), "wb");
  REQUIRE(out != nullptr);
  {
    kawipiko::cdb::writer writer(out, file.string());
    for (const auto& [key, value] : records) writer.add(key, value);
    writer.finish();
  }
  std::fclose(out);
  return read_file(file);
}

// A small site (a page, a folder with a stylesheet and a 404 page) added to `sources`, archived
// with gzip into `out`: the archive's bytes.
std::string small_site(const temp_folder& sources, const temp_folder& out) {
  sources.write("index.html", compressible_text(3000, 1));
  sources.write("docs/a.css", compressible_text(500, 2));
  sources.write("docs/_404.html", "missing");
  archive::build_options options;
  options.sources = sources.str();
  options.archive = (out / "site.cdb").string();
  options.codecs = {{archive::encoding::gzip, 1}};
  archive::build(options);
  return read_file(options.archive);
}

}  // namespace

TEST_CASE("the reader refuses what is not a kawipiko archive, saying why", "[archive][corrupt]") {
  temp_folder scratch;
  CHECK_THROWS_WITH(archive::reader(bytes_of("short")),
                    Catch::Contains("cdb") || Catch::Contains("2048"));
  const auto plain = cdb_image({{"key", "value"}}, scratch);
  CHECK_THROWS_WITH(archive::reader(bytes_of(plain)), "not a kawipiko archive (no schema key)");
  const auto future = cdb_image({{std::string(schema::schema_key), "kawipiko-archive/9"}}, scratch);
  CHECK_THROWS_WITH(archive::reader(bytes_of(future)),
                    Catch::Contains("unsupported archive schema 'kawipiko-archive/9'"));
  const auto bad_meta =
      cdb_image({{std::string(schema::schema_key), std::string(schema::schema_value)},
                 {std::string(schema::meta_key), "fallback-depth=x\n"}},
                scratch);
  CHECK_THROWS_WITH(archive::reader(bytes_of(bad_meta)), Catch::Contains("fallback-depth"));
}

TEST_CASE("a corrupt entry is reported as corrupt, not as missing", "[archive][corrupt]") {
  temp_folder scratch;
  const auto image =
      cdb_image({{std::string(schema::schema_key), std::string(schema::schema_value)},
                 {"/page.html", "200 1\ngarbage"}},
                scratch);
  const archive::reader reader(bytes_of(image));
  archive::entry entry;
  CHECK(reader.find("/page.html", entry) == archive::lookup_status::corrupt);
  CHECK(reader.find("/other.html", entry) == archive::lookup_status::not_found);
}

TEST_CASE("every byte flipped in a built archive gives an error or an answer, never a crash",
          "[archive][corrupt]") {
  const temp_folder sources, out;
  const std::string good = small_site(sources, out);
  const std::vector<std::string> paths = {"/",           "/index.html",  "/index",
                                          "/docs/a.css", "/docs/a.css/", "/docs"};
  std::mt19937 random(3);
  std::size_t opened = 0, refused = 0;
  for (int round = 0; round < 600; ++round) {
    std::string damaged = good;
    for (int flips = 0; flips < 4; ++flips) {
      damaged[random() % damaged.size()] ^= static_cast<char>(1 + random() % 255);
    }
    try {
      const archive::reader reader(bytes_of(damaged));
      ++opened;
      archive::entry entry;
      for (const auto& path : paths) {
        if (reader.find(path, entry) == archive::lookup_status::found) {
          for (std::size_t v = 0; v < entry.count; ++v) {
            const auto& body = entry.variants[v].body;
            if (!body.empty()) {
              CHECK(body.data() + body.size() <= damaged.data() + damaged.size());
            }
          }
        }
      }
      (void)reader.find_fallback("/docs/x/y", entry);
    } catch (const std::runtime_error&) {
      ++refused;
    }
  }
  CHECK(opened + refused == 600);
  CHECK(opened > 0);
}

TEST_CASE("meta_value gives the value of the one meta line with that name", "[archive]") {
  temp_folder scratch;
  const auto image =
      cdb_image({{std::string(schema::schema_key), std::string(schema::schema_value)},
                 {std::string(schema::meta_key), "ab=2\na=1\nempty=\nfallback-depth=3"}},
                scratch);
  const archive::reader reader(bytes_of(image));
  CHECK(reader.meta_value("a") == "1");  // not the "ab" line before it
  CHECK(reader.meta_value("ab") == "2");
  CHECK(reader.meta_value("fallback-depth") == "3");  // the last line needs no newline
  CHECK(reader.meta_value("empty").empty());
  CHECK(reader.meta_value("missing").empty());
  CHECK(reader.meta_value("b").empty());
}

TEST_CASE("for_each_entry visits the entries after the last body, as a whole walk finds them",
          "[archive]") {
  const temp_folder sources, out;
  sources.write("app/_wildcard.html", "app");
  const std::string image = small_site(sources, out);
  const archive::reader reader(bytes_of(image));

  std::vector<std::string> walked;
  std::size_t last_body_end = 0;
  std::error_code error;
  reader.database().for_each(
      [&](std::string_view key, std::string_view value, std::size_t value_position) {
        if (key.starts_with(schema::body_prefix) || key.starts_with(schema::skip_prefix)) {
          last_body_end = value_position + value.size();
        } else if (schema::is_path_key(key) || key.starts_with(schema::fallback_prefix)) {
          walked.emplace_back(key);
        }
      },
      error);
  REQUIRE_FALSE(error);
  std::vector<std::string> visited;
  const auto begin = reader.for_each_entry(
      [&](std::string_view key, std::string_view) { visited.emplace_back(key); }, error);
  CHECK_FALSE(error);
  CHECK(begin == last_body_end);
  CHECK(visited == walked);
  CHECK(std::count(visited.begin(), visited.end(), "fallback:/app/") == 1);
}

TEST_CASE("for_each_entry skips an entry stored before a body and says where it began",
          "[archive][corrupt]") {
  temp_folder scratch;
  const std::string schema_value(schema::schema_value);
  const auto image = cdb_image({{std::string(schema::schema_key), schema_value},
                                {"/early.html", "200 1\ngarbage"},
                                {schema::body_key(std::string(64, 'a'), "identity"), "body"},
                                {"/late.html", "200 1\ngarbage"},
                                {std::string(schema::meta_key), "paths=2\n"}},
                               scratch);
  const archive::reader reader(bytes_of(image));
  std::vector<std::string> visited;
  std::error_code error;
  const auto begin = reader.for_each_entry(
      [&](std::string_view key, std::string_view) { visited.emplace_back(key); }, error);
  CHECK_FALSE(error);
  CHECK(visited == std::vector<std::string>{"/late.html"});
  CHECK(begin == image.find("/late.html") - 8);
}

TEST_CASE("for_each_entry reports a slot that points inside an entry's record",
          "[archive][corrupt]") {
  temp_folder scratch;
  auto image = cdb_image({{std::string(schema::schema_key), std::string(schema::schema_value)},
                          {schema::body_key(std::string(64, 'a'), "identity"), "body"},
                          {"/page.html", "200 1\ngarbage"}},
                         scratch);
  const auto u32 = [&](std::size_t at) {
    std::uint32_t value = 0;
    for (std::size_t b = 4; b-- > 0;)
      value = (value << 8) | static_cast<unsigned char>(image[at + b]);
    return value;
  };
  // The slot of /page.html's record, moved one byte into it.
  const auto record = static_cast<std::uint32_t>(image.find("/page.html") - 8);
  std::size_t moved = 0;
  for (std::size_t table = 0; table < 256; ++table) {
    for (std::uint32_t slot = 0; slot < u32(table * 8 + 4); ++slot) {
      const std::size_t at = u32(table * 8) + slot * 8 + 4;
      if (u32(at) == record) {
        for (std::size_t b = 0; b < 4; ++b)
          image[at + b] = static_cast<char>((record + 1) >> (8 * b));
        ++moved;
      }
    }
  }
  REQUIRE(moved == 1);
  const archive::reader reader(bytes_of(image));
  std::error_code error;
  (void)reader.for_each_entry([](std::string_view, std::string_view) {}, error);
  CHECK(error == kawipiko::cdb::errc::bad_record);
}
