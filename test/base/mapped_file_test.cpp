#include "base/mapped_file.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using kawipiko::base::mapped_file;

namespace {
std::string as_string(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
}  // namespace

TEST_CASE("a mapped file shows the file's bytes in both modes, even after it is replaced",
          "[base]") {
  const auto path = fs::temp_directory_path() / "kawipiko-mapped-file-test.bin";
  { std::ofstream(path, std::ios::binary) << "hello, archive"; }
  for (const auto how : {mapped_file::mode::mmap, mapped_file::mode::in_memory}) {
    mapped_file file(path.string(), how);
    CHECK(file.size() == 14);
    file.preload();
    // Replace the file by rename, as a deploy does: the old view must not change.
    const auto next = path.string() + ".next";
    { std::ofstream(next, std::ios::binary) << "another content!!"; }
    fs::rename(next, path);
    CHECK(as_string(file.bytes()) == "hello, archive");
    mapped_file moved = std::move(file);
    CHECK(as_string(moved.bytes()) == "hello, archive");
    { std::ofstream(path, std::ios::binary) << "hello, archive"; }
  }
  fs::remove(path);
}

TEST_CASE("opening a missing file or a folder throws a message naming it", "[base]") {
  CHECK_THROWS_WITH(mapped_file("/nonexistent/kawipiko.cdb"),
                    Catch::StartsWith("cannot open '/nonexistent/kawipiko.cdb'"));
  CHECK_THROWS_WITH(mapped_file(fs::temp_directory_path().string()),
                    Catch::StartsWith("not a regular file"));
}

TEST_CASE("an empty file maps to an empty view", "[base]") {
  const auto path = fs::temp_directory_path() / "kawipiko-mapped-file-empty.bin";
  { std::ofstream(path, std::ios::binary); }
  mapped_file file(path.string());
  CHECK(file.size() == 0);
  CHECK(file.bytes().empty());
  fs::remove(path);
}
