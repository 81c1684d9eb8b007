#pragma once
// Helpers shared by the cdb tests: sample records, building an image with our writer, files in a
// temporary folder, and running Debian's tinycdb `cdb` command.

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cdb/writer.hpp"

namespace kawipiko::cdb::test {

struct entry {
  std::string key;
  std::string value;
  bool operator==(const entry&) const = default;
};

inline std::span<const std::byte> as_bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

// Records that exercise the edge cases (empty key, empty value, NUL and newline bytes, duplicate
// keys) followed by `random_count` random ones from a generator seeded with `seed`.
inline std::vector<entry> sample_entries(std::uint32_t seed, std::size_t random_count) {
  using namespace std::string_literals;
  std::vector<entry> entries = {
      {"", "value of the empty key"},           {"empty value", ""},
      {"", "second value of the empty key"},    {"/index.html", "<!doctype html>\n<p>hello</p>\n"},
      {"nul\0in key"s, "nul\0in\0value"s},      {"nul\0in key"s + "\0"s, "a key one NUL longer"},
      {"line\nbreak", "+1,2:a->b\n\n"},         {"/index.html", "the second /index.html"},
      {"/index.html", "the third /index.html"}, {"\xff\xfe high bytes", "\x80\x81\x82"},
  };
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> key_length(0, 24);
  std::uniform_int_distribution<std::size_t> value_length(0, 300);
  const auto random_string = [&](std::size_t length) {
    std::string text(length, '\0');
    for (char& c : text) c = static_cast<char>(static_cast<unsigned char>(byte(random)));
    return text;
  };
  for (std::size_t i = 0; i < random_count; ++i) {
    // A counter in the key keeps most keys distinct; some random keys may still collide, which
    // the tests handle by expecting the first value.
    std::string key = random_string(key_length(random)) + std::to_string(i % 1000);
    entries.push_back({std::move(key), random_string(value_length(random))});
  }
  return entries;
}

// An in-memory cdb image written by our writer from `entries`; `value_positions` (if given)
// receives what add() returned for each entry.
inline std::vector<std::byte> build_image(const std::vector<entry>& entries,
                                          std::vector<std::uint32_t>* value_positions = nullptr) {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  std::vector<std::byte> image;
  try {
    writer out(file, "test image");
    for (const entry& e : entries) {
      const std::uint32_t position = out.add(e.key, e.value);
      if (value_positions != nullptr) value_positions->push_back(position);
    }
    out.finish();
    const long size = std::ftell(file);
    REQUIRE(size >= 2048);
    image.resize(static_cast<std::size_t>(size));
    std::rewind(file);
    REQUIRE(std::fread(image.data(), 1, image.size(), file) == image.size());
  } catch (...) {
    std::fclose(file);
    throw;
  }
  std::fclose(file);
  return image;
}

// A fresh folder under the system's temporary folder, removed with its content at scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kawipiko-cdb-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("cannot create a temp dir");
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  REQUIRE(out.good());
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Quotes `text` for /bin/sh (single quotes; an inner quote becomes '\'').
inline std::string shell_quote(std::string_view text) {
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  quoted += '\'';
  return quoted;
}

struct command_result {
  int status;  // as returned by pclose: 0 on success
  std::string output;
};

// Runs `command` with /bin/sh and returns its exit status and standard output, byte for byte.
inline command_result run_command(const std::string& command) {
  std::FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, got);
  return {pclose(pipe), std::move(output)};
}

// Fails the test (rather than skipping it) when tinycdb is missing: the set-up installs it.
inline void require_tinycdb() {
  if (std::system("command -v cdb >/dev/null 2>&1") != 0) {
    FAIL("the `cdb` command is missing: install Debian's tinycdb (apt-get install tinycdb)");
  }
}

// `entries` in tinycdb's native input format: "+klen,vlen:key->value\n" per record, then "\n".
inline std::string cdbmake_text(const std::vector<entry>& entries) {
  std::string text;
  for (const entry& e : entries) {
    text += '+' + std::to_string(e.key.size()) + ',' + std::to_string(e.value.size()) + ':';
    text += e.key;
    text += "->";
    text += e.value;
    text += '\n';
  }
  text += '\n';
  return text;
}

}  // namespace kawipiko::cdb::test
