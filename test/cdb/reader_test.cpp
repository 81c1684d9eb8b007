#include "cdb/reader.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "cdb/hash.hpp"
#include "cdb_test_support.hpp"

namespace cdb = kawipiko::cdb;
using cdb::test::entry;

namespace {

// Hand-crafted images: a byte vector with little-endian uint32 stores.
class image_builder {
 public:
  explicit image_builder(std::size_t size) : bytes_(size) {}

  void put_u32(std::size_t position, std::uint32_t value) {
    for (std::size_t i = 0; i < 4; ++i) {
      bytes_.at(position + i) = static_cast<std::byte>(value >> (8 * i));
    }
  }
  void put_bytes(std::size_t position, std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
      bytes_.at(position + i) = static_cast<std::byte>(text[i]);
    }
  }
  // Points every one of the 256 tables at `position`, with no slots.
  void empty_tables_at(std::uint32_t position) {
    for (std::uint32_t table = 0; table < 256; ++table) set_table(table, position, 0);
  }
  void set_table(std::uint32_t table, std::uint32_t position, std::uint32_t slots) {
    put_u32(table * 8, position);
    put_u32(table * 8 + 4, slots);
  }
  // Writes a record at `position` and returns the position after it.
  std::size_t put_record(std::size_t position, std::string_view key, std::string_view value) {
    put_u32(position, static_cast<std::uint32_t>(key.size()));
    put_u32(position + 4, static_cast<std::uint32_t>(value.size()));
    put_bytes(position + 8, key);
    put_bytes(position + 8 + key.size(), value);
    return position + 8 + key.size() + value.size();
  }
  [[nodiscard]] const std::vector<std::byte>& bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

bool lies_inside(std::string_view view, std::span<const std::byte> image) {
  const auto* begin = reinterpret_cast<const char*>(image.data());
  return view.data() >= begin && view.size() <= image.size() &&
         view.data() - begin <= static_cast<std::ptrdiff_t>(image.size() - view.size());
}

// Opens `image` and runs every kind of query on it. Returns false when the constructor refused
// the image. Whatever the image holds, an answer must be a view inside the image and an error
// must come from the cdb category; under ASan/UBSan any stray read fails the run.
bool exercise(const std::vector<std::byte>& image, const std::vector<entry>& entries) {
  std::optional<cdb::reader> opened;
  try {
    opened.emplace(image);
  } catch (const std::runtime_error&) {
    return false;
  }
  const cdb::reader& reader = *opened;
  std::error_code error;
  std::size_t inside = 0;
  std::size_t answers = 0;
  const auto check_answer = [&](const std::optional<std::string_view>& found) {
    if (found) {
      ++answers;
      if (lies_inside(*found, image)) ++inside;
    }
    if (error) CHECK(error.category() == cdb::category());
  };
  for (const entry& e : entries) check_answer(reader.find(e.key, error));
  check_answer(reader.find("a key that was never stored", error));
  reader.for_each(
      [&](std::string_view key, std::string_view value, std::size_t value_position) {
        answers += 2;
        if (lies_inside(key, image)) ++inside;
        if (lies_inside(value, image)) ++inside;
        const auto again = reader.slice(value_position, value.size());
        if (again && again->data() == value.data()) ++inside;
        ++answers;
      },
      error);
  if (error) CHECK(error.category() == cdb::category());
  CHECK(inside == answers);
  return true;
}

// A copy of the first `size` bytes in its own allocation, so that ASan sees a read past its end.
std::vector<std::byte> prefix(const std::vector<std::byte>& image, std::size_t size) {
  return {image.begin(), image.begin() + static_cast<std::ptrdiff_t>(size)};
}

std::uint32_t load_u32(const std::vector<std::byte>& image, std::size_t position) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    value |= static_cast<std::uint32_t>(image.at(position + i)) << (8 * i);
  }
  return value;
}

}  // namespace

TEST_CASE("a reader refuses an image shorter than the 2048-byte header", "[cdb][corrupt]") {
  for (const std::size_t size : {0UL, 1UL, 8UL, 2047UL}) {
    const std::vector<std::byte> image(size);
    CHECK_THROWS_WITH(cdb::reader(image), Catch::Contains("shorter than the 2048-byte header"));
  }
}

TEST_CASE("a reader refuses a header whose tables overlap it or run past the image",
          "[cdb][corrupt]") {
  image_builder image(4096);
  image.empty_tables_at(4096);

  SECTION("a table inside the header") {
    image.set_table(7, 2040, 1);
    CHECK_THROWS_WITH(cdb::reader(image.bytes()), Catch::Contains("table 7 starts inside"));
  }
  SECTION("a table starting past the end") {
    image.set_table(9, 4097, 0);
    CHECK_THROWS_WITH(cdb::reader(image.bytes()), Catch::Contains("table 9 starts past the end"));
  }
  SECTION("a table whose slots run past the end") {
    image.set_table(200, 4096 - 16, 3);
    CHECK_THROWS_WITH(cdb::reader(image.bytes()), Catch::Contains("table 200 runs past the end"));
  }
  SECTION("a slot count whose size in bytes overflows 32 bits") {
    image.set_table(255, 2048, 0xFFFFFFFF);
    CHECK_THROWS_WITH(cdb::reader(image.bytes()), Catch::Contains("table 255 runs past the end"));
  }
  SECTION("a table position of 2^32 - 1") {
    image.set_table(0, 0xFFFFFFFF, 0);
    CHECK_THROWS_AS(cdb::reader(image.bytes()), std::runtime_error);
  }
  SECTION("tables that end exactly at the image's end are accepted") {
    image.set_table(3, 4096 - 16, 2);
    CHECK_NOTHROW(cdb::reader(image.bytes()));
  }
}

TEST_CASE("an image whose tables are all empty holds no lookups and ends its records at them",
          "[cdb]") {
  image_builder image(2048 + 64);
  image.empty_tables_at(2048 + 64);
  const std::size_t end = image.put_record(2048, "key", "value");
  const cdb::reader reader(image.bytes());
  CHECK(reader.records_begin() == 2048);
  CHECK(reader.records_end() == 2048 + 64);

  std::error_code error = cdb::errc::bad_table;
  CHECK_FALSE(reader.find("key", error));
  CHECK_FALSE(error);  // cleared on entry

  // The walk reads the one record, then meets zeros: records of empty key and value up to the
  // end, each 8 bytes.
  std::vector<std::string> keys;
  reader.for_each(
      [&](std::string_view key, std::string_view, std::size_t) { keys.emplace_back(key); }, error);
  CHECK_FALSE(error);
  REQUIRE(keys.size() == 1 + (2048 + 64 - end) / 8);
  CHECK(keys.front() == "key");
}

TEST_CASE("the records area ends at the lowest table position", "[cdb]") {
  image_builder image(3000);
  image.empty_tables_at(3000);
  image.set_table(17, 2500, 0);
  image.set_table(18, 2600, 50);
  CHECK(cdb::reader(image.bytes()).records_end() == 2500);
}

TEST_CASE("a reader finds every record that tinycdb wrote, in tinycdb's order", "[cdb][interop]") {
  cdb::test::require_tinycdb();
  const cdb::test::temp_dir dir;
  const std::vector<entry> entries = cdb::test::sample_entries(20240601, 2000);
  cdb::test::write_file(dir.path() / "input", cdb::test::cdbmake_text(entries));
  const auto database = dir.path() / "tiny.cdb";
  const auto made =
      cdb::test::run_command("cdb -c -t - " + cdb::test::shell_quote(database.string()) + " " +
                             cdb::test::shell_quote((dir.path() / "input").string()));
  REQUIRE(made.status == 0);

  const std::string file = cdb::test::read_file(database);
  const cdb::reader reader(cdb::test::as_bytes(file));

  std::unordered_map<std::string, std::string> first;
  for (const entry& e : entries) first.emplace(e.key, e.value);
  std::error_code error;
  for (const auto& [key, value] : first) {
    const auto found = reader.find(key, error);
    CHECK_FALSE(error);
    REQUIRE(found);
    CHECK(*found == value);
  }
  CHECK_FALSE(reader.find("not in the database", error));
  CHECK_FALSE(error);

  std::size_t index = 0;
  reader.for_each(
      [&](std::string_view key, std::string_view value, std::size_t) {
        REQUIRE(index < entries.size());
        CHECK(key == entries[index].key);
        CHECK(value == entries[index].value);
        ++index;
      },
      error);
  CHECK_FALSE(error);
  CHECK(index == entries.size());
}

TEST_CASE("find stops after probing every slot of a table that has no empty slot",
          "[cdb][corrupt]") {
  // One record ("other") and, in the table the key "wanted" hashes to, 64 slots that all point
  // at it: a reader that probes until it meets an empty slot would never stop.
  const std::uint32_t wanted_hash = cdb::hash("wanted");
  const std::uint32_t table = wanted_hash & 0xffU;
  image_builder image(2048 + 32 + 64 * 8);
  const std::size_t end = image.put_record(2048, "other", "value");
  REQUIRE(end <= 2048 + 32);
  image.empty_tables_at(2048 + 32 + 64 * 8);
  image.set_table(table, 2048 + 32, 64);

  SECTION("every slot has the key's hash: each probe compares the key and moves on") {
    for (std::size_t slot = 0; slot < 64; ++slot) {
      image.put_u32(2048 + 32 + slot * 8, wanted_hash);
      image.put_u32(2048 + 32 + slot * 8 + 4, 2048);
    }
    const cdb::reader reader(image.bytes());
    std::error_code error;
    CHECK_FALSE(reader.find("wanted", error));
    CHECK_FALSE(error);
  }
  SECTION("no slot has the key's hash") {
    for (std::size_t slot = 0; slot < 64; ++slot) {
      image.put_u32(2048 + 32 + slot * 8, wanted_hash + 1);
      image.put_u32(2048 + 32 + slot * 8 + 4, 2048);
    }
    const cdb::reader reader(image.bytes());
    std::error_code error;
    CHECK_FALSE(reader.find("wanted", error));
    CHECK_FALSE(error);
  }
}

TEST_CASE("find reports a slot that points outside the records area", "[cdb][corrupt]") {
  const std::uint32_t key_hash = cdb::hash("key");
  image_builder image(2048 + 32 + 16);
  image.put_record(2048, "key", "value");
  image.empty_tables_at(2048 + 32 + 16);
  image.set_table(key_hash & 0xffU, 2048 + 32, 2);
  const std::size_t slot = (key_hash >> 8) % 2;
  image.put_u32(2048 + 32 + slot * 8, key_hash);

  const auto find_with_record_at = [&](std::uint32_t position) {
    image.put_u32(2048 + 32 + slot * 8 + 4, position);
    const cdb::reader reader(image.bytes());
    std::error_code error;
    const auto found = reader.find("key", error);
    CHECK_FALSE(found);
    return error;
  };
  CHECK(find_with_record_at(1) == cdb::errc::bad_record);              // inside the header
  CHECK(find_with_record_at(2047) == cdb::errc::bad_record);           // the header's last bytes
  CHECK(find_with_record_at(2048 + 32) == cdb::errc::bad_record);      // the table itself
  CHECK(find_with_record_at(2048 + 32 + 16) == cdb::errc::truncated);  // the image's end
  CHECK(find_with_record_at(0xFFFFFFFF) == cdb::errc::truncated);

  // And the well-placed record is found, which shows the slot above is the one probed.
  image.put_u32(2048 + 32 + slot * 8 + 4, 2048);
  std::error_code error;
  CHECK(cdb::reader(image.bytes()).find("key", error) == "value");
}

TEST_CASE("a record whose lengths run past the records area is an error, not a read",
          "[cdb][corrupt]") {
  const std::uint32_t key_hash = cdb::hash("key");
  image_builder image(2048 + 32 + 16);
  image.put_record(2048, "key", "value");
  image.empty_tables_at(2048 + 32 + 16);
  image.set_table(key_hash & 0xffU, 2048 + 32, 2);
  const std::size_t slot = (key_hash >> 8) % 2;
  image.put_u32(2048 + 32 + slot * 8, key_hash);
  image.put_u32(2048 + 32 + slot * 8 + 4, 2048);

  const auto find_with_lengths = [&](std::uint32_t key_length, std::uint32_t value_length) {
    image.put_u32(2048, key_length);
    image.put_u32(2052, value_length);
    const cdb::reader reader(image.bytes());
    std::error_code error;
    const auto found = reader.find("key", error);
    if (error) CHECK_FALSE(found);
    return error;
  };
  CHECK(find_with_lengths(32, 0) == cdb::errc::bad_record);         // the key runs into the table
  CHECK(find_with_lengths(3, 22) == cdb::errc::bad_record);         // one byte too many
  CHECK(find_with_lengths(0xFFFFFFFF, 0) == cdb::errc::truncated);  // past the image, too
  CHECK(find_with_lengths(3, 0xFFFFFFFF) == cdb::errc::truncated);
  CHECK_FALSE(find_with_lengths(3, 21));  // exactly fits the records area
  {
    std::error_code error;
    const auto found = cdb::reader(image.bytes()).find("key", error);
    REQUIRE(found);
    CHECK(found->size() == 21);
  }

  SECTION("for_each stops at the bad record with an error") {
    image.put_u32(2048, 3);
    image.put_u32(2052, 22);
    std::size_t visits = 0;
    std::error_code error;
    cdb::reader(image.bytes())
        .for_each([&](std::string_view, std::string_view, std::size_t) { ++visits; }, error);
    CHECK(visits == 0);
    CHECK(error == cdb::errc::bad_record);
  }
  SECTION("with no tables to stop it, a record running past the image is truncated") {
    image_builder bare(2048 + 16);
    bare.empty_tables_at(2048 + 16);
    bare.put_u32(2048, 4);
    bare.put_u32(2052, 5);
    std::error_code error;
    cdb::reader(bare.bytes()).for_each([](auto&&...) {}, error);
    CHECK(error == cdb::errc::truncated);
  }
}

TEST_CASE("slot_positions gives every record's start once, in file order, from the tables",
          "[cdb]") {
  const std::vector<entry> entries = cdb::test::sample_entries(7, 300);
  std::vector<std::uint32_t> values;
  const auto image = cdb::test::build_image(entries, &values);
  const cdb::reader reader(image);
  std::vector<std::uint32_t> starts;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    starts.push_back(values[i] - static_cast<std::uint32_t>(8 + entries[i].key.size()));
  }
  std::error_code error = cdb::errc::bad_record;
  CHECK(reader.slot_positions(error) == starts);  // the writer writes records in order
  CHECK_FALSE(error);

  // for_each from one of them walks the rest.
  std::vector<std::string> keys;
  reader.for_each(
      [&](std::string_view key, std::string_view, std::size_t) { keys.emplace_back(key); }, error,
      starts[100]);
  CHECK_FALSE(error);
  REQUIRE(keys.size() == entries.size() - 100);
  CHECK(keys.front() == entries[100].key);
  CHECK(keys.back() == entries.back().key);
  const auto record = reader.record_at(starts[5], error);
  REQUIRE(record);
  CHECK(record->key == entries[5].key);
  CHECK(record->value == entries[5].value);
  CHECK(record->next == starts[6]);
}

TEST_CASE("slot_positions leaves out slots outside the records area and the same position twice",
          "[cdb][corrupt]") {
  image_builder image(2048 + 32 + 4 * 8);
  const std::size_t second = image.put_record(2048, "a", "1");
  REQUIRE(image.put_record(second, "b", "2") <= 2048 + 32);
  image.empty_tables_at(2048 + 32 + 4 * 8);
  image.set_table(3, 2048 + 32, 4);
  const std::uint32_t slots[] = {static_cast<std::uint32_t>(second), 2048 + 40, 2048,
                                 static_cast<std::uint32_t>(second)};
  for (std::size_t slot = 0; slot < 4; ++slot) image.put_u32(2048 + 32 + slot * 8 + 4, slots[slot]);
  std::error_code error;
  const auto positions = cdb::reader(image.bytes()).slot_positions(error);
  CHECK_FALSE(error);
  CHECK(positions == std::vector<std::uint32_t>{2048, static_cast<std::uint32_t>(second)});
}

TEST_CASE("slot_positions refuses tables that overlap each other", "[cdb][corrupt]") {
  // Two tables of 4 slots over the same 32 bytes: more slots than fit after the records.
  image_builder image(2048 + 16 + 4 * 8);
  REQUIRE(image.put_record(2048, "a", "1") <= 2048 + 16);
  image.empty_tables_at(2048 + 16 + 4 * 8);
  image.set_table(1, 2048 + 16, 4);
  image.set_table(2, 2048 + 16, 4);
  std::error_code error;
  CHECK(cdb::reader(image.bytes()).slot_positions(error).empty());
  CHECK(error == cdb::errc::bad_table);
}

TEST_CASE("slice returns a range only when it lies inside the records area", "[cdb]") {
  std::vector<std::uint32_t> positions;
  const std::vector<entry> entries = {{"a", "first value"}, {"b", "second"}};
  const auto image = cdb::test::build_image(entries, &positions);
  const cdb::reader reader(image);
  REQUIRE(reader.records_end() == 2048 + 8 + 1 + 11 + 8 + 1 + 6);

  CHECK(reader.slice(positions[0], 11) == "first value");
  CHECK(reader.slice(positions[1], 6) == "second");
  CHECK(reader.slice(positions[0], 0) == "");
  CHECK(reader.slice(reader.records_end(), 0) == "");
  CHECK(reader.slice(2048, reader.records_end() - 2048));
  CHECK_FALSE(reader.slice(2047, 1));                      // inside the header
  CHECK_FALSE(reader.slice(positions[1], 7));              // one byte into the tables
  CHECK_FALSE(reader.slice(reader.records_end() + 1, 0));  // past the records
  CHECK_FALSE(reader.slice(image.size() - 1, 1));          // in the tables
  CHECK_FALSE(reader.slice(positions[0], UINT64_MAX));     // no overflow of position + length
  CHECK_FALSE(reader.slice(UINT64_MAX, 1));
  CHECK_FALSE(reader.slice(UINT64_MAX - 2048 + 1, 2048));
}

TEST_CASE("a reader refuses a valid image truncated at any boundary", "[cdb][corrupt]") {
  const std::vector<entry> entries = cdb::test::sample_entries(7, 300);
  const std::vector<std::byte> image = cdb::test::build_image(entries);
  REQUIRE(exercise(image, entries));

  std::vector<std::size_t> cuts;
  for (std::size_t cut = 0; cut <= 2048; cut += 4) cuts.push_back(cut);  // every header number
  for (const std::size_t cut : {1UL, 3UL, 2047UL}) cuts.push_back(cut);
  {
    // Each record's start, the end of its head, the end of its key.
    std::size_t position = 2048;
    for (const entry& e : entries) {
      cuts.push_back(position);
      cuts.push_back(position + 4);
      cuts.push_back(position + 8);
      cuts.push_back(position + 8 + e.key.size());
      position += 8 + e.key.size() + e.value.size();
    }
    // Every slot of the tables, and half-way into the slot.
    for (; position < image.size(); position += 4) cuts.push_back(position);
  }
  for (std::size_t back = 1; back <= 300; ++back) cuts.push_back(image.size() - back);

  for (const std::size_t cut : cuts) {
    INFO("truncated to " << cut << " of " << image.size() << " bytes");
    // A standard writer puts its last table at the very end of the file, so any truncation
    // leaves a header entry pointing past the end: the reader must refuse at once.
    CHECK_FALSE(exercise(prefix(image, cut), entries));
  }
}

TEST_CASE("a reader answers a valid image with flipped bytes with values or errors",
          "[cdb][corrupt]") {
  const std::vector<entry> entries = cdb::test::sample_entries(11, 300);
  const std::vector<std::byte> image = cdb::test::build_image(entries);
  const std::size_t first_table = load_u32(image, 0);
  REQUIRE(first_table < image.size());

  std::mt19937 random(42);
  std::uniform_int_distribution<int> flip(1, 255);
  std::uniform_int_distribution<int> flips_per_image(1, 4);
  struct region {
    const char* name;
    std::size_t begin;
    std::size_t end;
  };
  const region regions[] = {
      {"anywhere", 0, image.size()},
      {"the header", 0, 2048},
      {"the records", 2048, first_table},
      {"the tables", first_table, image.size()},
  };
  std::size_t refused = 0;
  for (const region& where : regions) {
    std::uniform_int_distribution<std::size_t> position(where.begin, where.end - 1);
    for (int variant = 0; variant < 1000; ++variant) {
      std::vector<std::byte> damaged = image;
      bool header_touched = false;
      const int flips = flips_per_image(random);
      std::string flipped;
      for (int i = 0; i < flips; ++i) {
        const std::size_t at = position(random);
        damaged[at] ^= static_cast<std::byte>(flip(random));
        header_touched = header_touched || at < 2048;
        flipped += ' ' + std::to_string(at);
      }
      INFO("flipped bytes in " << where.name << " at" << flipped);
      const bool accepted = exercise(damaged, entries);
      // Only the header is checked at construction: damage elsewhere shows up in lookups.
      if (!header_touched) CHECK(accepted);
      if (!accepted) ++refused;
    }
  }
  // Flipping header bytes must sometimes be caught at construction (this proves the test
  // reaches the header checks at all).
  CHECK(refused > 0);
}

TEST_CASE("a flipped byte inside a value changes that value only", "[cdb][corrupt]") {
  std::vector<entry> entries;
  for (int i = 0; i < 50; ++i) {
    entries.push_back({"key " + std::to_string(i), "value number " + std::to_string(i)});
  }
  std::vector<std::uint32_t> positions;
  const std::vector<std::byte> image = cdb::test::build_image(entries, &positions);
  std::vector<std::byte> damaged = image;
  damaged[positions[20] + 3] ^= std::byte{0x20};
  const cdb::reader reader(damaged);
  std::error_code error;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto found = reader.find(entries[i].key, error);
    CHECK_FALSE(error);
    REQUIRE(found);
    if (i == 20) {
      CHECK(*found == "valUe number 20");
    } else {
      CHECK(*found == entries[i].value);
    }
  }
}

TEST_CASE("the cdb error category is named cdb and describes errors in lower case", "[cdb]") {
  CHECK(std::string(cdb::category().name()) == "cdb");
  for (const cdb::errc e : {cdb::errc::truncated, cdb::errc::bad_table, cdb::errc::bad_record}) {
    const std::error_code code = e;
    CHECK(code.category() == cdb::category());
    const std::string message = code.message();
    CHECK_FALSE(message.empty());
    CHECK(
        std::none_of(message.begin(), message.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
  }
  CHECK_FALSE(std::error_code(cdb::errc::ok));
  CHECK(std::error_code(cdb::errc::truncated) != std::error_code(cdb::errc::bad_record));
}
