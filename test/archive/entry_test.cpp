#include "archive/entry.hpp"

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "archive/schema.hpp"
#include "cdb/cdb_test_support.hpp"
#include "cdb/reader.hpp"

namespace archive = kawipiko::archive;
namespace schema = kawipiko::archive::schema;
using archive::encoding;

namespace {

// A CDB image whose one record holds the body "0123456789", and a reader over it.
struct body_image {
  std::vector<std::uint32_t> positions;
  std::vector<std::byte> image =
      kawipiko::cdb::test::build_image({{"body:x:identity", "0123456789"}}, &positions);
  kawipiko::cdb::reader db{image};
  std::uint32_t position = positions.at(0);
};

// A spec for `block`, whose 304 prefix ends before Content-Type, whose partial prefix ends before
// Content-Length, and whose ETag (when the block starts with one) runs to the end of its line.
archive::variant_spec spec_for(encoding coding, std::uint32_t position, std::uint32_t length,
                               std::string block) {
  const std::size_t length_304 = block.find("Content-Type");
  const std::size_t length_partial = block.find("Content-Length");
  const std::size_t etag =
      block.starts_with("ETag: ") ? block.find("\r\n") - schema::etag_header_prefix : 0;
  return {coding, position, length, std::move(block), length_304, length_partial, etag};
}

// Three variants of the body: identity (all of it), gzip and br (parts of it, as stand-ins).
std::vector<archive::variant_spec> three_variants(std::uint32_t position) {
  return {spec_for(encoding::identity, position, 10,
                   "ETag: \"id\"\r\nVary: Accept-Encoding\r\nContent-Type: text/plain\r\n"
                   "Content-Length: 10\r\n"),
          spec_for(encoding::gzip, position + 2, 3,
                   "ETag: \"gz\"\r\nVary: Accept-Encoding\r\nContent-Type: text/plain\r\n"
                   "Content-Encoding: gzip\r\nContent-Length: 3\r\n"),
          spec_for(encoding::br, position + 5, 5,
                   "Vary: Accept-Encoding\r\nContent-Type: text/plain\r\n"
                   "Content-Encoding: br\r\nContent-Length: 5\r\n")};
}

std::string encode(unsigned status, const std::vector<archive::variant_spec>& specs) {
  return archive::encode_entry(status, specs.data(), specs.size());
}

// Where `field` of variant `v`'s descriptor starts in an encoded entry.
std::size_t at(std::size_t v, const schema::entry_field& field) {
  return schema::entry_head_size + v * schema::descriptor_size + field.offset;
}

// `value` with `field` of variant `v` rewritten to `number` (in hex, as the encoder writes it).
std::string with_number(std::string value, std::size_t v, const schema::entry_field& field,
                        std::uint64_t number) {
  for (std::size_t i = field.width; i-- > 0;) {
    value[at(v, field) + i] = "0123456789abcdef"[number % 16];
    number /= 16;
  }
  REQUIRE(number == 0);
  return value;
}

// Decodes a one-variant entry of `block` over `image`'s body and says whether it is well-formed.
bool is_well_formed_block(const body_image& image, unsigned status, const std::string& block,
                          std::size_t length_304, std::size_t partial, std::size_t etag,
                          std::uint32_t body_length = 10) {
  const archive::variant_spec spec{encoding::identity, image.position, body_length, block,
                                   length_304,         partial,        etag};
  const std::string value = archive::encode_entry(status, &spec, 1);  // the entry's views
  archive::entry entry;
  REQUIRE(archive::decode_entry(value, image.db, entry));
  return archive::is_well_formed(entry);
}

}  // namespace

TEST_CASE("an entry is encoded in the layout schema.hpp documents", "[archive]") {
  const std::vector<archive::variant_spec> specs = {
      {encoding::identity, 0x1234abcd, 10, "ETag: \"abc\"\r\nContent-Length: 10\r\n", 13, 13, 5},
      {encoding::gzip, 0xff, 3, "Content-Encoding: gzip\r\nContent-Length: 3\r\n", 0, 24, 0}};
  CHECK(encode(404, specs) ==
        "404 2 00\n"
        "identity 1234abcd 0000000a 0021 000d 000d 05\n"
        "gzip     000000ff 00000003 002b 0000 0018 00\n"
        "ETag: \"abc\"\r\nContent-Length: 10\r\n"
        "Content-Encoding: gzip\r\nContent-Length: 3\r\n");
}

TEST_CASE("entries round-trip through encode and decode, every field of every variant",
          "[archive]") {
  const body_image image;
  const auto specs = three_variants(image.position);
  for (const unsigned status : {200U, 308U, 404U}) {
    archive::entry entry;
    const std::string value = encode(status, specs);  // the entry's views point into it
    REQUIRE(archive::decode_entry(value, image.db, entry));
    CHECK(entry.status == status);
    REQUIRE(entry.count == 3);
    const char* const bodies[] = {"0123456789", "234", "56789"};
    const char* const etags[] = {"\"id\"", "\"gz\"", ""};
    for (std::size_t v = 0; v < 3; ++v) {
      INFO("variant " << v);
      const auto& variant = entry.variants[v];
      CHECK(variant.coding == specs[v].coding);
      CHECK(variant.body == bodies[v]);
      CHECK(variant.block == specs[v].block);
      CHECK(variant.length_304 == specs[v].length_304);
      CHECK(variant.length_partial == specs[v].length_partial);
      CHECK(variant.etag == etags[v]);
    }
  }
}

TEST_CASE("an empty body decodes to an empty view wherever its position points", "[archive]") {
  const body_image image;
  const archive::variant_spec spec{
      encoding::identity, 0xffffffff, 0, "Location: /a/\r\nContent-Length: 0\r\n", 0, 0, 0};
  archive::entry entry;
  const std::string value = archive::encode_entry(308, &spec, 1);  // the entry's views point in it
  REQUIRE(archive::decode_entry(value, image.db, entry));
  CHECK(entry.variants[0].body.empty());
  CHECK(archive::is_well_formed(entry));
}

TEST_CASE("a byte that is not its field's digit or separator is refused, in every field",
          "[archive][corrupt]") {
  const body_image image;
  const std::string good = encode(200, three_variants(image.position));
  archive::entry entry;
  REQUIRE(archive::decode_entry(good, image.db, entry));
  // Neither a decimal nor a lower-case hex digit, nor a letter of a coding's token.
  const std::string strangers = std::string("gGAF /:X\xff") + '\0';
  const auto refuses_each_byte = [&](std::size_t start, const schema::entry_field& field) {
    for (std::size_t i = 0; i < field.width; ++i) {
      for (const char stranger : strangers) {
        std::string damaged = good;
        if (damaged[start + field.offset + i] == stranger) continue;  // a coding's padding
        damaged[start + field.offset + i] = stranger;
        INFO(field.name << " byte " << i << " set to " << static_cast<int>(stranger));
        CHECK_FALSE(archive::decode_entry(damaged, image.db, entry));
      }
    }
    std::string damaged = good;
    damaged[start + field.offset + field.width] = 'x';
    INFO("separator after " << field.name);
    CHECK_FALSE(archive::decode_entry(damaged, image.db, entry));
  };
  for (const auto& field : schema::head::fields) refuses_each_byte(0, field);
  for (std::size_t v = 0; v < 3; ++v) {
    for (const auto& field : schema::descriptor::fields) {
      refuses_each_byte(schema::entry_head_size + v * schema::descriptor_size, field);
    }
  }
}

TEST_CASE("a variant count outside 1..3 or past the descriptors is refused", "[archive][corrupt]") {
  const body_image image;
  const std::string good = encode(200, three_variants(image.position));
  archive::entry entry;
  for (const char count : {'0', '4', '9'}) {
    std::string damaged = good;
    damaged[schema::head::variant_count.offset] = count;
    INFO("count " << count);
    CHECK_FALSE(archive::decode_entry(damaged, image.db, entry));
  }
  // Two variants claimed: the third descriptor would be read as header blocks.
  std::string fewer = good;
  fewer[schema::head::variant_count.offset] = '2';
  CHECK_FALSE(archive::decode_entry(fewer, image.db, entry));
  // Only the head: no room for the descriptor it announces.
  CHECK_FALSE(archive::decode_entry("200 1\n", image.db, entry));
}

TEST_CASE("lengths that do not fit the value or their block are refused", "[archive][corrupt]") {
  namespace descriptor = schema::descriptor;
  const body_image image;
  const auto specs = three_variants(image.position);
  const std::string good = encode(200, specs);
  archive::entry entry;
  REQUIRE(archive::decode_entry(good, image.db, entry));
  const std::size_t block = specs[0].block.size();

  SECTION("blocks that run past the value or leave bytes after it") {
    CHECK_FALSE(archive::decode_entry(
        with_number(good, 2, descriptor::block_length, specs[2].block.size() + 1), image.db,
        entry));
    CHECK_FALSE(archive::decode_entry(
        with_number(good, 2, descriptor::block_length, specs[2].block.size() - 1), image.db,
        entry));
    CHECK_FALSE(archive::decode_entry(good + "x", image.db, entry));
    CHECK_FALSE(archive::decode_entry(good.substr(0, good.size() - 1), image.db, entry));
  }
  SECTION("prefixes longer than their block, or a 304 prefix longer than the partial one") {
    CHECK_FALSE(archive::decode_entry(
        with_number(good, 0, descriptor::length_304, specs[0].length_partial + 2), image.db,
        entry));
    CHECK_FALSE(archive::decode_entry(with_number(good, 0, descriptor::length_partial, block + 1),
                                      image.db, entry));
    CHECK(archive::decode_entry(with_number(good, 0, descriptor::length_partial, block), image.db,
                                entry));
  }
  SECTION("an ETag that runs past its block") {
    const std::size_t room = block - schema::etag_header_prefix;
    CHECK(archive::decode_entry(with_number(good, 0, descriptor::etag_length, room), image.db,
                                entry));
    CHECK_FALSE(archive::decode_entry(with_number(good, 0, descriptor::etag_length, room + 1),
                                      image.db, entry));
    // A block shorter than "ETag: " cannot hold one at all.
    const archive::variant_spec tiny{encoding::identity, image.position, 0, "A:\r\n", 0, 0, 0};
    const std::string short_block = archive::encode_entry(200, &tiny, 1);
    CHECK_FALSE(archive::decode_entry(with_number(short_block, 0, descriptor::etag_length, 1),
                                      image.db, entry));
  }
}

TEST_CASE("every truncation and bad byte is refused or decodes inside the image and the value",
          "[archive][corrupt]") {
  const body_image image;
  const std::string value = encode(200, three_variants(image.position));
  archive::entry entry;
  for (std::size_t cut = 0; cut < value.size(); ++cut) {
    CHECK_FALSE(archive::decode_entry(value.substr(0, cut), image.db, entry));
  }
  const auto* const image_begin = reinterpret_cast<const char*>(image.image.data());
  const auto* const image_end = image_begin + image.image.size();
  std::mt19937 random(11);
  for (int round = 0; round < 2000; ++round) {
    std::string damaged = value;
    damaged[random() % damaged.size()] = static_cast<char>(random() % 256);
    if (!archive::decode_entry(damaged, image.db, entry)) continue;
    for (std::size_t v = 0; v < entry.count; ++v) {
      const auto& variant = entry.variants[v];
      if (!variant.body.empty()) {
        CHECK(variant.body.data() >= image_begin);
        CHECK(variant.body.data() + variant.body.size() <= image_end);
      }
      CHECK(variant.block.data() >= damaged.data());
      CHECK(variant.block.data() + variant.block.size() <= damaged.data() + damaged.size());
      CHECK(variant.length_304 <= variant.length_partial);
      CHECK(variant.length_partial <= variant.block.size());
    }
  }
}

TEST_CASE("a body outside the records area is refused", "[archive][corrupt]") {
  const body_image image;
  const auto records_end = static_cast<std::uint32_t>(image.db.records_end());
  const auto decodes = [&](std::uint32_t position, std::uint32_t length) {
    const archive::variant_spec spec{
        encoding::identity, position, length, "Content-Length: 0\r\n", 0, 0, 0};
    archive::entry entry;
    return archive::decode_entry(archive::encode_entry(200, &spec, 1), image.db, entry);
  };
  CHECK(decodes(image.position, 10));
  CHECK(decodes(records_end - 1, 1));  // the last byte of the records area
  CHECK_FALSE(decodes(records_end - 1, 2));
  CHECK_FALSE(decodes(records_end, 1));
  CHECK_FALSE(decodes(static_cast<std::uint32_t>(image.image.size() - 4), 4));  // in the tables
  CHECK_FALSE(decodes(100, 10));                                                // in the header
  CHECK_FALSE(decodes(0xffffffff, 0xffffffff));
}

TEST_CASE("header blocks are checked for well-formed HTTP lines and a true Content-Length",
          "[archive][corrupt]") {
  const body_image image;
  const std::string good = "ETag: \"abc\"\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n";
  // `good` with `from` replaced by `to`; its prefixes still end after the first and second lines.
  const auto good_but = [&](std::string_view from, std::string_view to, unsigned status = 200) {
    std::string block = good;
    block.replace(block.find(from), from.size(), to);
    const std::size_t first = block.find("\r\n") + 2;
    const std::size_t second = block.find("\r\n", first) + 2;
    return is_well_formed_block(image, status, block, first, second, 5);
  };
  CHECK(good_but("", ""));
  CHECK(good_but("", "", 404));
  CHECK(good_but("text/plain", "a\tb"));  // a tab is allowed in a value
  CHECK(is_well_formed_block(image, 200, "Content-Length: 10\r\n", 0, 0, 0));

  SECTION("Content-Length: present, a number, the body's size") {
    CHECK_FALSE(good_but("10", "11"));
    CHECK_FALSE(good_but("Content-Length: 10\r\n", ""));
    CHECK_FALSE(good_but(": 10", ":10"));
    CHECK_FALSE(good_but("10", "1x"));
  }
  SECTION("lines: a token name, a colon, no control byte, CRLF") {
    CHECK_FALSE(good_but("Content-Type", "Content(Type"));
    CHECK_FALSE(good_but("Content-Type", ""));
    CHECK_FALSE(good_but("Content-Type:", "Content-Type"));
    CHECK_FALSE(good_but("text/plain", "te\nxt/plain"));
    CHECK_FALSE(good_but("text/plain", "\x7f"));
    CHECK_FALSE(is_well_formed_block(image, 200, "Content-Length: 10", 0, 0, 0));
  }
  SECTION("prefixes end on line boundaries") {
    CHECK_FALSE(is_well_formed_block(image, 200, good, 12, 39, 5));
    CHECK_FALSE(is_well_formed_block(image, 200, good, 13, 38, 5));
  }
  SECTION("the ETag is a quoted strong tag at the start of the block") {
    CHECK_FALSE(good_but("\"abc\"", "\"a c\""));
    CHECK_FALSE(good_but("\"abc\"", "xabcx"));
    CHECK_FALSE(good_but("ETag", "XTag"));
  }
  SECTION("statuses: 200, 404, and 308 with Location first and no body") {
    CHECK_FALSE(good_but("", "", 299));
    CHECK(is_well_formed_block(image, 308, "Location: /a/\r\nContent-Length: 0\r\n", 0, 0, 0, 0));
    CHECK_FALSE(is_well_formed_block(
        image, 308, "Cache-Control: x\r\nLocation: /a/\r\nContent-Length: 0\r\n", 0, 0, 0, 0));
  }
}

TEST_CASE("every variant of an entry is checked", "[archive][corrupt]") {
  const body_image image;
  auto specs = three_variants(image.position);
  archive::entry entry;
  const std::string good = encode(200, specs);  // the entry's views point into it
  REQUIRE(archive::decode_entry(good, image.db, entry));
  CHECK(archive::is_well_formed(entry));
  specs[2].block.replace(specs[2].block.find("Content-Length: 5"), 17, "Content-Length: 6");
  const std::string bad = encode(200, specs);
  REQUIRE(archive::decode_entry(bad, image.db, entry));
  CHECK_FALSE(archive::is_well_formed(entry));
}

TEST_CASE("the encoder refuses what its fields cannot hold", "[archive][errors]") {
  const body_image image;
  auto specs = three_variants(image.position);
  CHECK_THROWS_AS(encode(1000, specs), std::invalid_argument);
  CHECK_THROWS_AS(archive::encode_entry(200, specs.data(), 0), std::invalid_argument);
  specs.push_back(specs[0]);
  CHECK_THROWS_AS(encode(200, specs), std::invalid_argument);  // 4 variants
  specs.pop_back();
  SECTION("a block past 0xffff bytes") {
    specs[1].block.resize(schema::max_block_size + 1, 'x');
    CHECK_THROWS_AS(encode(200, specs), std::length_error);
    specs[1].block.resize(schema::max_block_size);
    CHECK_NOTHROW(encode(200, specs));
  }
  SECTION("an ETag past 0xff bytes") {
    specs[0].etag_length = 0x100;
    CHECK_THROWS_AS(encode(200, specs), std::length_error);
  }
  SECTION("a prefix past the 4 hex digits of its field") {
    specs[0].length_304 = 0x10000;
    CHECK_THROWS_WITH(encode(200, specs), Catch::Contains("304 length"));
  }
}

TEST_CASE("the head's flags round-trip, and flags this version does not know are refused",
          "[archive]") {
  const body_image image;
  const auto specs = three_variants(image.position);
  namespace flags = schema::entry_flags;
  archive::entry entry;
  const std::string value = archive::encode_entry(200, specs.data(), specs.size(),
                                                  flags::forced_rules | flags::own_frame_options);
  CHECK(value.starts_with("200 3 42\n"));
  REQUIRE(archive::decode_entry(value, image.db, entry));
  CHECK(entry.flags == (flags::forced_rules | flags::own_frame_options));
  for (const char* unknown : {"04", "08", "0c"}) {
    std::string damaged = value;
    damaged.replace(schema::head::flags.offset, 2, unknown);
    INFO(unknown);
    CHECK_FALSE(archive::decode_entry(damaged, image.db, entry));
  }
  CHECK_THROWS_AS(archive::encode_entry(200, specs.data(), specs.size(), 0x04),
                  std::invalid_argument);
}

TEST_CASE("a legacy head without flags is read, its 308 keeping the query as before", "[archive]") {
  const body_image image;
  const archive::variant_spec spec{
      encoding::identity, 0, 0, "Location: /a/\r\nContent-Length: 0\r\n", 0, 0, 0};
  std::string value = archive::encode_entry(308, &spec, 1);
  value.erase(schema::legacy_head_size - 1, schema::entry_head_size - schema::legacy_head_size);
  REQUIRE(value.starts_with("308 1\nidentity "));
  archive::entry entry;
  REQUIRE(archive::decode_entry(value, image.db, entry));
  CHECK(entry.status == 308);
  CHECK(entry.flags == schema::entry_flags::keeps_query);
  CHECK(entry.variants[0].block == spec.block);
  CHECK(archive::is_well_formed(entry));
  const archive::variant_spec page{
      encoding::identity, image.position, 10, "Content-Length: 10\r\n", 0, 0, 0};
  value = archive::encode_entry(200, &page, 1);
  value.erase(schema::legacy_head_size - 1, schema::entry_head_size - schema::legacy_head_size);
  REQUIRE(archive::decode_entry(value, image.db, entry));
  CHECK(entry.flags == 0);
}

TEST_CASE(
    "every redirect status is well-formed with Location first, and the query flag only "
    "on redirects",
    "[archive]") {
  const body_image image;
  const archive::variant_spec redirect{
      encoding::identity,
      0,
      0,
      "Location: /a/\r\nX-Robots-Tag: none\r\nContent-Length: 0\r\n",
      0,
      0,
      0};
  archive::entry entry;
  for (const unsigned status : {301U, 302U, 303U, 307U, 308U}) {
    INFO(status);
    CHECK(archive::is_redirect_status(status));
    const std::string value =
        archive::encode_entry(status, &redirect, 1, schema::entry_flags::keeps_query);
    REQUIRE(archive::decode_entry(value, image.db, entry));
    CHECK(archive::is_well_formed(entry));
    auto moved = redirect;
    moved.block = "X-Robots-Tag: none\r\nLocation: /a/\r\nContent-Length: 0\r\n";
    const std::string late = archive::encode_entry(status, &moved, 1);
    REQUIRE(archive::decode_entry(late, image.db, entry));
    CHECK_FALSE(archive::is_well_formed(entry));
  }
  for (const unsigned status : {200U, 304U, 404U, 300U, 309U})
    CHECK_FALSE(archive::is_redirect_status(status));
  const archive::variant_spec page{
      encoding::identity, image.position, 10, "Content-Length: 10\r\n", 0, 0, 0};
  const std::string value = archive::encode_entry(200, &page, 1, schema::entry_flags::keeps_query);
  REQUIRE(archive::decode_entry(value, image.db, entry));
  CHECK_FALSE(archive::is_well_formed(entry));
}
