#include "archive/compress.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace archive = kawipiko::archive;
using archive::encoding;

namespace {

constexpr std::size_t unlimited = static_cast<std::size_t>(-1);

std::string random_bytes(std::size_t size, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string out(size, '\0');
  for (auto& c : out) c = static_cast<char>(static_cast<unsigned char>(byte(generator)));
  return out;
}

// A real web page if the Python docs are installed, else generated HTML-like text.
std::string html_sample() {
  std::ifstream file("/usr/share/doc/python3.11/html/index.html", std::ios::binary);
  if (file) {
    std::string content{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    if (!content.empty()) return content;
  }
  std::string out = "<!DOCTYPE html>\n<html><body>\n";
  for (int i = 0; i < 2000; ++i) {
    out += "<p class=\"item\">Item " + std::to_string(i) + ": the quick brown fox</p>\n";
  }
  return out + "</body></html>\n";
}

std::vector<std::pair<std::string, std::string>> sample_inputs() {
  return {
      {"empty", ""},
      {"one byte", "x"},
      {"random 100 KiB", random_bytes(100 * 1024, 20240601)},
      {"html", html_sample()},
      {"repetitive 1 MiB", std::string(1024 * 1024, 'a')},
  };
}

// A file under the system temp folder, removed when it goes out of scope.
class temp_file {
 public:
  explicit temp_file(const std::string& content) {
    std::string pattern = (std::filesystem::temp_directory_path() / "kawipiko-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    REQUIRE(fd >= 0);
    ::close(fd);
    path_ = pattern;
    std::ofstream out(path_, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    REQUIRE(out.good());
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  ~temp_file() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs `command` through the shell and returns its standard output and exit status.
std::pair<std::string, int> run(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[65536];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  const int status = ::pclose(pipe);
  return {out, status};
}

// Fails the test case when `name` is not on the PATH (cmake/install-deps.sh installs the tools).
void require_program(const std::string& name) {
  if (std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) != 0) {
    FAIL(name + " is missing (cmake/install-deps.sh installs it)");
  }
}

}  // namespace

TEST_CASE("tokens and levels are those of HTTP and of the codecs", "[archive][compress]") {
  CHECK(archive::token(encoding::identity) == "identity");
  CHECK(archive::token(encoding::gzip) == "gzip");
  CHECK(archive::token(encoding::br) == "br");

  CHECK(archive::default_level(encoding::gzip) == 9);
  CHECK(archive::default_level(encoding::br) == 11);
  CHECK(archive::default_level(encoding::identity) == 0);

  CHECK(archive::is_valid_level(encoding::identity, 0));
  CHECK_FALSE(archive::is_valid_level(encoding::identity, 1));
  CHECK_FALSE(archive::is_valid_level(encoding::gzip, 0));
  CHECK(archive::is_valid_level(encoding::gzip, 1));
  CHECK(archive::is_valid_level(encoding::gzip, 9));
  CHECK_FALSE(archive::is_valid_level(encoding::gzip, 10));
  CHECK_FALSE(archive::is_valid_level(encoding::br, -1));
  CHECK(archive::is_valid_level(encoding::br, 0));
  CHECK(archive::is_valid_level(encoding::br, 11));
  CHECK_FALSE(archive::is_valid_level(encoding::br, 12));
}

TEST_CASE("codec names are read as users write them, aliases included", "[archive][compress]") {
  for (const auto e : {encoding::identity, encoding::gzip, encoding::br}) {
    CHECK(archive::parse_codec_name(archive::codec_name(e)) == e);
  }
  CHECK(archive::codec_name(encoding::br) == "brotli");
  CHECK(archive::parse_codec_name("br") == encoding::br);
  CHECK(archive::parse_codec_name("none") == encoding::identity);
  CHECK_FALSE(archive::parse_codec_name("lzma").has_value());
  CHECK_FALSE(archive::parse_codec_name("").has_value());
  CHECK_FALSE(archive::parse_codec_name("GZIP").has_value());
}

TEST_CASE("gzip and brotli round-trip every input at several levels", "[archive][compress]") {
  const auto inputs = sample_inputs();
  for (const auto e : {encoding::gzip, encoding::br}) {
    for (const int level : {archive::default_level(e), 1, 5}) {
      for (const auto& [label, input] : inputs) {
        INFO(archive::token(e) << " level " << level << ": " << label);
        const std::string packed = archive::compress(e, level, input);
        const auto unpacked = archive::decompress(e, packed, input.size());
        REQUIRE(unpacked.has_value());
        CHECK(*unpacked == input);
      }
    }
  }
}

TEST_CASE("compression shrinks text and keeps incompressible data close to its size",
          "[archive][compress]") {
  const std::string html = html_sample();
  const std::string noise = random_bytes(100 * 1024, 7);
  for (const auto e : {encoding::gzip, encoding::br}) {
    INFO(archive::token(e));
    CHECK(archive::compress(e, archive::default_level(e), html).size() < html.size() / 2);
    CHECK(archive::compress(e, archive::default_level(e), noise).size() < noise.size() + 1024);
  }
}

TEST_CASE("identity is a copy both ways", "[archive][compress]") {
  CHECK(archive::compress(encoding::identity, 0, "abc") == "abc");
  CHECK(archive::decompress(encoding::identity, "abc", 3) == std::optional<std::string>("abc"));
  CHECK_FALSE(archive::decompress(encoding::identity, "abc", 2).has_value());
}

TEST_CASE("compression is deterministic and the gzip header is host-independent",
          "[archive][compress]") {
  const std::string html = html_sample();
  for (const auto e : {encoding::gzip, encoding::br}) {
    INFO(archive::token(e));
    CHECK(archive::compress(e, archive::default_level(e), html) ==
          archive::compress(e, archive::default_level(e), html));
  }

  for (const auto& input : {std::string(), html}) {
    const std::string gz = archive::compress(encoding::gzip, 9, input);
    REQUIRE(gz.size() >= 18);
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(gz[i]); };
    CHECK(byte(0) == 0x1f);  // magic
    CHECK(byte(1) == 0x8b);
    CHECK(byte(2) == 8);  // deflate
    CHECK(byte(3) == 0);  // flags: no name, comment, extra field or header CRC
    CHECK(byte(4) == 0);  // mtime
    CHECK(byte(5) == 0);
    CHECK(byte(6) == 0);
    CHECK(byte(7) == 0);
    CHECK(byte(9) == 255);  // OS: unknown
  }
}

TEST_CASE("gzip output decodes with the system gzip", "[archive][compress]") {
  require_program("gzip");
  for (const auto& [label, input] : sample_inputs()) {
    INFO(label);
    const temp_file packed(archive::compress(encoding::gzip, 9, input));
    const auto [output, status] = run("gzip -dc < '" + packed.path() + "'");
    CHECK(status == 0);
    CHECK(output == input);
  }
}

TEST_CASE("gzip and brotli decode what the system tools produce", "[archive][compress]") {
  const std::string html = html_sample();
  const temp_file plain(html);
  require_program("gzip");
  require_program("brotli");
  {
    const auto [packed, status] = run("gzip -9 -n -c < '" + plain.path() + "'");
    REQUIRE(status == 0);
    CHECK(archive::decompress(encoding::gzip, packed, unlimited) == html);
  }
  {
    const auto [packed, status] = run("brotli -c < '" + plain.path() + "'");
    REQUIRE(status == 0);
    CHECK(archive::decompress(encoding::br, packed, unlimited) == html);
  }
}

TEST_CASE("brotli output decodes with the brotli command", "[archive][compress]") {
  require_program("brotli");
  for (const auto& [label, input] : sample_inputs()) {
    INFO(label);
    const temp_file packed(archive::compress(encoding::br, 11, input));
    const auto [output, status] = run("brotli -dc < '" + packed.path() + "'");
    CHECK(status == 0);
    CHECK(output == input);
  }
}

TEST_CASE("decompress rejects truncated streams", "[archive][compress][corrupt]") {
  const std::string html = html_sample();
  for (const auto e : {encoding::gzip, encoding::br}) {
    for (const auto& input : {std::string(), std::string("x"), html}) {
      const std::string packed = archive::compress(e, archive::default_level(e), input);
      INFO(archive::token(e) << ", input of " << input.size() << " bytes, " << packed.size()
                             << " packed");
      CHECK_FALSE(archive::decompress(e, "", unlimited).has_value());
      // Every proper prefix for small streams; a spread of them for the larger one.
      const std::size_t step = packed.size() > 256 ? packed.size() / 97 : 1;
      for (std::size_t cut = 0; cut < packed.size(); cut += step) {
        INFO("cut at " << cut);
        CHECK_FALSE(
            archive::decompress(e, std::string_view(packed).substr(0, cut), unlimited).has_value());
      }
      CHECK_FALSE(
          archive::decompress(e, std::string_view(packed).substr(0, packed.size() - 1), unlimited)
              .has_value());
    }
  }
}

TEST_CASE("decompress rejects garbage and trailing bytes", "[archive][compress][corrupt]") {
  const std::string html = html_sample();
  const std::string noise = random_bytes(4096, 99);
  for (const auto e : {encoding::gzip, encoding::br}) {
    INFO(archive::token(e));
    CHECK_FALSE(archive::decompress(e, noise, unlimited).has_value());
    CHECK_FALSE(archive::decompress(e, html, unlimited).has_value());

    const std::string packed = archive::compress(e, archive::default_level(e), html);
    CHECK_FALSE(archive::decompress(e, packed + "x", unlimited).has_value());
    CHECK_FALSE(archive::decompress(e, packed + packed, unlimited).has_value());
    CHECK_FALSE(archive::decompress(e, packed + noise, unlimited).has_value());

    // A flipped byte in the middle of the stream: never UB, and never the original back.
    std::string flipped = packed;
    flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x5a);
    const auto result = archive::decompress(e, flipped, unlimited);
    CHECK((!result.has_value() || *result != html));
  }
  // gzip's trailer CRC catches a body that inflates cleanly into something else.
  std::string gz = archive::compress(encoding::gzip, 9, "hello, world");
  gz[gz.size() - 8] = static_cast<char>(gz[gz.size() - 8] ^ 1);
  CHECK_FALSE(archive::decompress(encoding::gzip, gz, unlimited).has_value());
}

TEST_CASE("decompress refuses output beyond max_output", "[archive][compress]") {
  const std::string big(3 * 1024 * 1024, 'z');  // expands far beyond one decode chunk
  for (const auto e : {encoding::gzip, encoding::br}) {
    INFO(archive::token(e));
    for (const auto& input : {std::string("hello"), big}) {
      const std::string packed = archive::compress(e, archive::default_level(e), input);
      CHECK(archive::decompress(e, packed, input.size()) == input);
      CHECK_FALSE(archive::decompress(e, packed, input.size() - 1).has_value());
      CHECK_FALSE(archive::decompress(e, packed, 0).has_value());
    }
    const std::string empty = archive::compress(e, archive::default_level(e), "");
    CHECK(archive::decompress(e, empty, 0) == std::string());
  }
}
