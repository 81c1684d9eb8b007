#include "archive/reader.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <random>
#include <string>

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

TEST_CASE("entries round-trip through encode and decode", "[archive]") {
  temp_folder scratch;
  const std::string body = "0123456789";
  // The body record comes first: its value sits at 2048 + 8 + key length.
  const std::string key = "body:x:identity";
  const auto image = cdb_image(
      {{std::string(schema::schema_key), std::string(schema::schema_value)}, {key, body}}, scratch);
  const archive::reader reader(bytes_of(image));
  const auto position = static_cast<std::uint32_t>(image.find(body));

  archive::variant_spec specs[2] = {
      {archive::encoding::identity, position, 10,
       "ETag: \"abc\"\r\nVary: Accept-Encoding\r\nContent-Type: text/plain\r\nContent-Length: "
       "10\r\n",
       36, 62, 5},
      {archive::encoding::br, position + 2, 3,
       "ETag: \"def\"\r\nContent-Type: text/plain\r\nContent-Encoding: br\r\nContent-Length: 3\r\n",
       13, 61, 5}};
  const std::string value = archive::encode_entry(200, specs, 2);
  CHECK(value.substr(0, 6) == "200 2\n");

  archive::entry entry;
  REQUIRE(archive::decode_entry(value, reader.database(), entry));
  CHECK(entry.status == 200);
  REQUIRE(entry.count == 2);
  CHECK(entry.variants[0].body == body);
  CHECK(entry.variants[0].etag == "\"abc\"");
  CHECK(entry.variants[0].block.substr(0, entry.variants[0].length_304) ==
        "ETag: \"abc\"\r\nVary: Accept-Encoding\r\n");
  CHECK(entry.variants[1].coding == archive::encoding::br);
  CHECK(entry.variants[1].body == "234");
  CHECK(entry.variants[1].block.substr(entry.variants[1].length_partial) ==
        "Content-Length: 3\r\n");

  SECTION("every truncation and bad byte is refused, never read past") {
    for (std::size_t cut = 0; cut < value.size(); ++cut) {
      CHECK_FALSE(archive::decode_entry(value.substr(0, cut), reader.database(), entry));
    }
    std::mt19937 random(11);
    for (int round = 0; round < 2000; ++round) {
      std::string damaged = value;
      damaged[random() % damaged.size()] = static_cast<char>(random() % 256);
      if (archive::decode_entry(damaged, reader.database(), entry)) {
        for (std::size_t v = 0; v < entry.count; ++v) {
          // Whatever decodes must lie inside the image and the value.
          const auto& variant = entry.variants[v];
          if (!variant.body.empty()) {
            CHECK(variant.body.data() >= image.data());
            CHECK(variant.body.data() + variant.body.size() <= image.data() + image.size());
          }
          CHECK(variant.length_304 <= variant.block.size());
        }
      }
    }
  }
  SECTION("a body outside the records area is refused") {
    specs[0].body_position = static_cast<std::uint32_t>(image.size() - 4);
    CHECK_FALSE(
        archive::decode_entry(archive::encode_entry(200, specs, 1), reader.database(), entry));
    specs[0].body_position = 100;  // inside the header
    CHECK_FALSE(
        archive::decode_entry(archive::encode_entry(200, specs, 1), reader.database(), entry));
  }
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
  temp_folder sources, out;
  sources.write("index.html", compressible_text(3000, 1));
  sources.write("docs/a.css", compressible_text(500, 2));
  sources.write("docs/_404.html", "missing");
  archive::build_options options;
  options.sources = sources.str();
  options.archive = (out / "site.cdb").string();
  options.codecs = {{archive::encoding::gzip, 1}};
  archive::build(options);
  const std::string good = read_file(options.archive);
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

TEST_CASE("header blocks are checked for well-formed HTTP lines and a true Content-Length",
          "[archive][corrupt]") {
  temp_folder scratch;
  const std::string body = "0123456789";
  const auto image = cdb_image(
      {{std::string(schema::schema_key), std::string(schema::schema_value)}, {"body", body}},
      scratch);
  const archive::reader reader(bytes_of(image));
  const auto position = static_cast<std::uint32_t>(image.find(body));
  const auto decode = [&](unsigned status, const std::string& block, std::size_t l304,
                          std::size_t partial, std::size_t etag) {
    archive::variant_spec spec{
        archive::encoding::identity, position, 10, block, l304, partial, etag};
    const std::string value = archive::encode_entry(status, &spec, 1);  // the entry's views
    archive::entry entry;
    REQUIRE(archive::decode_entry(value, reader.database(), entry));
    return archive::is_well_formed(entry);
  };
  const std::string good = "ETag: \"abc\"\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n";
  CHECK(decode(200, good, 13, 39, 5));
  CHECK_FALSE(decode(200, "ETag: \"abc\"\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n", 13,
                     39, 5));
  CHECK_FALSE(decode(200, "ETag: \"abc\"\r\nContent(Type: text/plain\r\nContent-Length: 10\r\n", 13,
                     39, 5));
  CHECK_FALSE(decode(200, "ETag: \"abc\"\r\nContent-Type: te\nxt/plain\r\nContent-Length: 10\r\n",
                     13, 40, 5));
  CHECK_FALSE(decode(200, "ETag: \"abc\"\r\nContent-Type: text/plain\r\n", 13, 39, 5));
  CHECK_FALSE(decode(200, good, 12, 39, 5));  // a prefix that ends inside a line
  CHECK_FALSE(decode(200, "ETag: \"a c\"\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n", 13,
                     39, 5));
  CHECK_FALSE(decode(299, good, 13, 39, 5));
}
