#include "cdb/writer.hpp"

#include <sys/mman.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "cdb/reader.hpp"
#include "cdb_test_support.hpp"

namespace cdb = kawipiko::cdb;
using cdb::test::entry;

namespace {

// Owns a FILE* for the length of a test.
struct file_closer {
  std::FILE* file;
  ~file_closer() {
    if (file != nullptr) std::fclose(file);
  }
};

std::uint64_t file_size(std::FILE* file) {
  REQUIRE(std::fflush(file) == 0);
  REQUIRE(std::fseek(file, 0, SEEK_END) == 0);
  const long size = std::ftell(file);
  REQUIRE(size >= 0);
  return static_cast<std::uint64_t>(size);
}

// Every record of the finished image in `file`, in file order.
std::vector<entry> read_records(std::FILE* file) {
  std::vector<std::byte> image(file_size(file));
  std::rewind(file);
  REQUIRE(std::fread(image.data(), 1, image.size(), file) == image.size());
  std::vector<entry> records;
  std::error_code error;
  cdb::reader(image).for_each(
      [&](std::string_view key, std::string_view value, std::size_t) {
        records.push_back({std::string(key), std::string(value)});
      },
      error);
  REQUIRE_FALSE(error);
  return records;
}

// Writes `entries` with our writer to `path`.
void write_archive(const std::filesystem::path& path, const std::vector<entry>& entries) {
  const file_closer out{std::fopen(path.c_str(), "wb")};
  REQUIRE(out.file != nullptr);
  cdb::writer writer(out.file, path.string());
  for (const entry& e : entries) writer.add(e.key, e.value);
  writer.finish();
}

}  // namespace

TEST_CASE("records written by the writer are found and walked in order by the reader", "[cdb]") {
  const std::vector<entry> entries = cdb::test::sample_entries(5489, 3000);
  std::vector<std::uint32_t> positions;
  const std::vector<std::byte> image = cdb::test::build_image(entries, &positions);
  REQUIRE(positions.size() == entries.size());
  const cdb::reader reader(image);

  // find returns the first value stored under a key (duplicates are in the sample).
  std::unordered_map<std::string, std::string> first;
  for (const entry& e : entries) first.emplace(e.key, e.value);
  REQUIRE(first.size() < entries.size());
  std::error_code error;
  for (const auto& [key, value] : first) {
    const auto found = reader.find(key, error);
    CHECK_FALSE(error);
    REQUIRE(found);
    CHECK(*found == value);
  }
  CHECK(reader.find("", error) == "value of the empty key");
  CHECK(reader.find("empty value", error) == "");
  CHECK(reader.find(std::string("nul\0in key", 10), error) == std::string("nul\0in\0value", 12));
  CHECK(reader.find("/index.html", error) == "<!doctype html>\n<p>hello</p>\n");
  CHECK_FALSE(reader.find("nul", error));
  CHECK_FALSE(reader.find("/index.htm", error));
  CHECK_FALSE(error);

  // The walk sees every record in the order of addition, values where add() said they are.
  std::size_t index = 0;
  reader.for_each(
      [&](std::string_view key, std::string_view value, std::size_t value_position) {
        REQUIRE(index < entries.size());
        CHECK(key == entries[index].key);
        CHECK(value == entries[index].value);
        CHECK(value_position == positions[index]);
        CHECK(reader.slice(positions[index], entries[index].value.size()) == value);
        ++index;
      },
      error);
  CHECK_FALSE(error);
  CHECK(index == entries.size());
}

TEST_CASE("an archive with no records is a 2048-byte header that finds nothing", "[cdb]") {
  const std::vector<std::byte> image = cdb::test::build_image({});
  REQUIRE(image.size() == 2048);
  const cdb::reader reader(image);
  CHECK(reader.records_end() == 2048);
  std::error_code error;
  CHECK_FALSE(reader.find("", error));
  std::size_t visits = 0;
  reader.for_each([&](auto&&...) { ++visits; }, error);
  CHECK(visits == 0);
  CHECK_FALSE(error);
}

TEST_CASE("projected_size counts the records and the tables that finish will write", "[cdb]") {
  std::FILE* file = std::tmpfile();
  const file_closer closer{file};
  REQUIRE(file != nullptr);
  cdb::writer writer(file, "projected");
  CHECK(writer.projected_size() == 2048);
  writer.add("ab", "cde");
  CHECK(writer.projected_size() == 2048 + 8 + 5 + 16);
  writer.add("", "");
  CHECK(writer.projected_size() == 2048 + 8 + 5 + 16 + 8 + 16);
  const std::uint64_t projected = writer.projected_size();
  writer.finish();
  CHECK(file_size(file) == projected);
  CHECK(read_records(file) == std::vector<entry>{{"ab", "cde"}, {"", ""}});
}

TEST_CASE("the writer refuses a record that would take the archive past its limit, unwritten",
          "[cdb]") {
  std::FILE* file = std::tmpfile();
  const file_closer closer{file};
  REQUIRE(file != nullptr);
  // With a limit of 2048 + 100, the first record (cost: 8 + key + value + 16 for its slots) fits
  // exactly when key + value is 76 bytes.
  cdb::writer writer(file, "small.cdb", 2048 + 100);
  const std::string value(70, 'v');

  SECTION("a record that fits exactly is accepted and the file ends at the limit") {
    writer.add("abcdef", value);
    CHECK(writer.projected_size() == 2048 + 100);
    writer.finish();
    CHECK(file_size(file) == 2048 + 100);
  }
  SECTION("one byte more is refused before anything of the record is written") {
    CHECK_THROWS_WITH(writer.add("abcdefg", value),
                      Catch::Contains("'small.cdb'") &&
                          Catch::Contains("would exceed the 4 GiB limit of the cdb format"));
    CHECK(file_size(file) == 2048);
    // Nothing was written: the writer still makes a valid archive of what it accepted, and only
    // of that.
    writer.add("small", "fits");
    writer.finish();
    CHECK(read_records(file) == std::vector<entry>{{"small", "fits"}});
  }
  SECTION("the tables of earlier records count against the limit") {
    // 3 empty records cost 3 * 24 = 72 bytes; a fourth needs 24 more of the remaining 28, a
    // fifth would need 24 of the remaining 4.
    for (int i = 0; i < 4; ++i) writer.add("", "");
    CHECK(writer.projected_size() == 2048 + 96);
    CHECK_THROWS_AS(writer.add("", ""), std::runtime_error);
    CHECK(file_size(file) == 2048 + 4 * 8);
  }
  SECTION("a limit below the header's size refuses every record") {
    std::FILE* other = std::tmpfile();
    const file_closer other_closer{other};
    REQUIRE(other != nullptr);
    cdb::writer tiny(other, "tiny.cdb", 100);
    CHECK_THROWS_AS(tiny.add("", ""), std::runtime_error);
    CHECK(file_size(other) == 2048);
  }
}

TEST_CASE("the default limit refuses a record that would pass 4 GiB - 1, before reading it",
          "[cdb]") {
  CHECK(cdb::format::max_size == 0xFFFFFFFFU);
  // 4 GiB of address space mapped to zeros, never touched: the writer must refuse before it
  // reads a byte of the value, so the test writes nothing big.
  constexpr std::size_t huge = std::size_t{1} << 32;
  void* zeros = mmap(nullptr, huge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(zeros != MAP_FAILED);
  const std::string_view space(static_cast<const char*>(zeros), huge);

  std::FILE* file = std::tmpfile();
  const file_closer closer{file};
  REQUIRE(file != nullptr);
  // A limit above the format's is treated as the format's.
  for (const std::uint64_t limit : {cdb::format::max_size, std::uint64_t{UINT64_MAX}}) {
    cdb::writer writer(file, "big.cdb", limit);
    // Header, record head, a 1-byte key and the record's two slots leave this much for a value:
    const std::size_t largest_value = 0xFFFFFFFF - 2048 - 8 - 1 - 16;
    CHECK_THROWS_WITH(writer.add("k", space.substr(0, largest_value + 1)),
                      Catch::Contains("would exceed the 4 GiB limit"));
    CHECK_THROWS_AS(writer.add(space, ""), std::runtime_error);  // a key of 2^32 bytes
    CHECK(writer.projected_size() == 2048);
    CHECK(file_size(file) == 2048);
    std::rewind(file);
  }
  munmap(zeros, huge);
}

TEST_CASE("a write error is reported as a system error naming the file", "[cdb]") {
  std::FILE* full = std::fopen("/dev/full", "wb");
  if (full == nullptr) FAIL("cannot open /dev/full");
  const file_closer closer{full};
  // /dev/full accepts the buffered bytes and fails them with ENOSPC at the latest at finish().
  const auto write_everything = [&] {
    cdb::writer writer(full, "full.cdb");
    for (int i = 0; i < 1000; ++i) writer.add("key " + std::to_string(i), std::string(100, 'x'));
    writer.finish();
  };
  try {
    write_everything();
    FAIL("no error from writing to /dev/full");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_space_on_device);
    CHECK_THAT(e.what(), Catch::Contains("'full.cdb'"));
  }
}

TEST_CASE("tinycdb reads back exactly what the writer wrote", "[cdb][interop]") {
  cdb::test::require_tinycdb();
  const cdb::test::temp_dir dir;
  const std::vector<entry> entries = cdb::test::sample_entries(1234, 2000);
  const auto path = dir.path() / "ours.cdb";
  write_archive(path, entries);
  const std::string quoted = cdb::test::shell_quote(path.string());

  // cdb -d prints every record, in file order, in the native format: that is our input's text.
  const auto dump = cdb::test::run_command("cdb -d " + quoted);
  CHECK(dump.status == 0);
  CHECK(dump.output == cdb::test::cdbmake_text(entries));

  // cdb -q finds a key through the hash tables and prints every value stored under it.
  std::unordered_map<std::string, std::string> all_values;
  for (const entry& e : entries) all_values[e.key] += e.value;
  for (const std::string key : {"/index.html", "empty value", "line\nbreak"}) {
    const auto query =
        cdb::test::run_command("cdb -q -- " + quoted + " " + cdb::test::shell_quote(key));
    CHECK(query.status == 0);
    CHECK(query.output == all_values.at(key));
  }
  std::size_t checked = 0;
  for (const entry& e : entries) {
    // Command-line arguments cannot hold NUL bytes; check a few hundred of the others.
    if (e.key.empty() || e.key.find('\0') != std::string::npos || checked == 300) continue;
    const auto query =
        cdb::test::run_command("cdb -q -- " + quoted + " " + cdb::test::shell_quote(e.key));
    CHECK(query.status == 0);
    CHECK(query.output == all_values.at(e.key));
    ++checked;
  }
  CHECK(checked == 300);
  const auto missing = cdb::test::run_command("cdb -q -- " + quoted + " 'not a key'");
  CHECK(missing.status != 0);
  CHECK(missing.output.empty());
}

TEST_CASE("the writer and tinycdb make byte-identical files from the same records",
          "[cdb][interop]") {
  // Both follow cdbmake's construction (tables of 2 * count slots filled in order of addition),
  // so the same records in the same order give the same file.
  cdb::test::require_tinycdb();
  const cdb::test::temp_dir dir;
  const std::vector<entry> entries = cdb::test::sample_entries(99, 1000);
  write_archive(dir.path() / "ours.cdb", entries);
  cdb::test::write_file(dir.path() / "input", cdb::test::cdbmake_text(entries));
  const auto made = cdb::test::run_command(
      "cdb -c -t - " + cdb::test::shell_quote((dir.path() / "theirs.cdb").string()) + " " +
      cdb::test::shell_quote((dir.path() / "input").string()));
  REQUIRE(made.status == 0);
  const std::string ours = cdb::test::read_file(dir.path() / "ours.cdb");
  const std::string theirs = cdb::test::read_file(dir.path() / "theirs.cdb");
  CHECK(ours.size() == theirs.size());
  CHECK(ours == theirs);
}
