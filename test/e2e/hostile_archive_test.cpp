// Hostile archives against the real server: a valid archive truncated at its structural
// boundaries and at random points, and with random bytes flipped. Each must be refused at open
// with one line and exit 1, or served with every answer a proper HTTP response (500 for a bad
// record) and a clean exit on SIGTERM: never a crash, a hang or a dropped connection. CI runs
// this under ASan and UBSan, which turn any out-of-bounds read into a crash.

#include <catch2/catch.hpp>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using kawipiko::test::client;
using kawipiko::test::compressible_text;
using kawipiko::test::read_file;
using kawipiko::test::run;
using kawipiko::test::server_process;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;

const std::vector<std::string> probes = {
    "/",           "/index.html", "/index",     "/docs",         "/docs/",
    "/docs/a.css", "/app/x/y",    "/private/z", "/missing.html", "/img.png"};

struct outcome {
  bool refused = false;
  std::set<unsigned> statuses;
};

// Serves `archive` and asks every probe (with brotli and a range, to walk the variants).
outcome try_serve(const fs::path& archive) {
  outcome result;
  try {
    server_process server(binary,
                          {"serve", "--archive", archive.string(), "--bind", "127.0.0.1:0"});
    client c(server.port());
    for (const auto& path : probes) {
      const auto response = c.request("GET " + path +
                                      " HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br, gzip\r\n"
                                      "Range: bytes=0-3,10-20\r\n\r\n");
      result.statuses.insert(response.status);
    }
    const int code = server.stop();
    INFO(server.errors());
    CHECK(code == 0);
  } catch (const std::runtime_error& e) {
    const std::string text = e.what();
    if (text.rfind("server did not start (exit 1)", 0) != 0) {
      FAIL_CHECK("neither refused cleanly nor served: " << text);
      return result;
    }
    result.refused = true;
    // One line naming the file.
    const auto err = text.substr(text.find("stderr: '") + 9);
    CHECK(err.rfind("kawipiko serve: error: ", 0) == 0);
    CHECK(err.find(archive.string()) != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
  return result;
}

}  // namespace

TEST_CASE("truncated and bit-flipped archives are refused at open or served, never a crash",
          "[e2e][serve][net][corrupt][hostile]") {
  temp_folder folder;
  folder.write("src/index.html", compressible_text(6000, 1));
  folder.write("src/docs/index.html", "docs");
  folder.write("src/docs/a.css", compressible_text(3000, 2));
  folder.write("src/app/_wildcard.html", "spa");
  folder.write("src/private/_404.html", "not here");
  folder.write("src/img.png", std::string(500, '\x89'));
  const auto good = folder / "good.cdb";
  REQUIRE(run(binary + " archive --quiet --compress brotli,gzip --compress-level 1 --sources '" +
                  (folder / "src").string() + "' --archive '" + good.string() + "'",
              folder.path())
              .exit_code == 0);
  const std::string image = read_file(good);
  const auto variant = folder / "variant.cdb";
  const std::set<unsigned> allowed = {200, 206, 304, 308, 404, 416, 500};

  std::size_t refused = 0, served = 0;
  const auto check = [&](const std::string& bytes) {
    { std::ofstream(variant, std::ios::binary) << bytes; }
    const auto result = try_serve(variant);
    if (result.refused) {
      ++refused;
      return;
    }
    ++served;
    for (const auto status : result.statuses) {
      INFO(status);
      CHECK(allowed.contains(status));
    }
  };

  // Truncations: inside the header, at its end, at the end of the records (the lowest table
  // position), inside the tables, and at random points; then at every record's start and at
  // every table's start.
  const auto u32 = [&](std::size_t at) {
    std::uint32_t value = 0;
    for (int b = 3; b >= 0; --b) {
      value = (value << 8) | static_cast<unsigned char>(image[at + static_cast<std::size_t>(b)]);
    }
    return value;
  };
  std::uint32_t records_end = static_cast<std::uint32_t>(image.size());
  std::set<std::size_t> table_starts;
  for (std::size_t table = 0; table < 256; ++table) {
    records_end = std::min(records_end, u32(table * 8));
    if (u32(table * 8 + 4) != 0) table_starts.insert(u32(table * 8));
  }
  std::vector<std::size_t> record_starts;
  for (std::size_t at = 2048; at < records_end; at += 8 + u32(at) + u32(at + 4)) {
    record_starts.push_back(at);
  }
  REQUIRE(record_starts.size() > 10);
  REQUIRE(table_starts.size() > 10);
  std::vector<std::size_t> cuts = {0,
                                   1,
                                   1024,
                                   2047,
                                   2048,
                                   2049,
                                   records_end - 1,
                                   records_end,
                                   records_end + 8,
                                   image.size() - 8,
                                   image.size() - 1};
  std::mt19937 random(2024);
  for (int i = 0; i < 20; ++i) cuts.push_back(random() % image.size());
  for (const auto cut : cuts) check(image.substr(0, cut));
  for (const auto cut : record_starts) {
    check(image.substr(0, cut));      // at the boundary
    check(image.substr(0, cut + 1));  // one byte into the record's lengths
  }
  for (const auto cut : table_starts) check(image.substr(0, cut));
  // Flipped bytes: one to four at seeded random places, anywhere in the file.
  for (int round = 0; round < 150; ++round) {
    std::string damaged = image;
    const int flips = 1 + static_cast<int>(random() % 4);
    for (int f = 0; f < flips; ++f) {
      damaged[random() % damaged.size()] ^= static_cast<char>(1 + random() % 255);
    }
    check(damaged);
  }
  std::printf(
      "%zu truncations (%zu record starts, twice; %zu table starts), 150 flip variants: %zu "
      "refused at open, %zu served\n",
      cuts.size() + 2 * record_starts.size() + table_starts.size(), record_starts.size(),
      table_starts.size(), refused, served);
  INFO("refused " << refused << ", served " << served);
  CHECK(refused > 0);
  CHECK(served > 0);
}
