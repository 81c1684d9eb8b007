#include "archive/pipeline.hpp"

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "archive/builder.hpp"
#include "archive/compress.hpp"
#include "archive/digest.hpp"
#include "archive/reader.hpp"
#include "archive/schema.hpp"
#include "base/mapped_file.hpp"
#include "cdb/cdb_test_support.hpp"
#include "support/temp_folder.hpp"

namespace archive = kawipiko::archive;
using archive::encoding;
using kawipiko::test::compressible_text;
using kawipiko::test::temp_folder;

namespace {

archive::build_options options_with(unsigned jobs) {
  archive::build_options options;
  options.codecs = {{encoding::gzip, 6}, {encoding::br, 5}};
  options.jobs = jobs;
  return options;
}

// `size` seeded random bytes: no codec shrinks them by the tenth a variant must save.
std::string noise_of(std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string bytes(size, '\0');
  for (auto& byte : bytes) byte = static_cast<char>(random());
  return bytes;
}

// A generated item (no file behind it).
archive::work_item generated(std::string path, std::string content) {
  const std::uint64_t size = content.size();
  return {std::move(path), {}, std::move(content), size};
}

// Takes every result in order, releasing each, as the builder does.
std::vector<archive::work_result> run(const std::vector<archive::work_item>& items,
                                      const archive::build_options& options,
                                      const archive::reader* previous = nullptr,
                                      const archive::build_hooks& hooks = {}) {
  archive::pipeline workers(items, options, previous, hooks);
  std::vector<archive::work_result> results;
  for (std::size_t index = 0; index < items.size(); ++index) {
    results.push_back(workers.take(index));
    workers.release(index, items[index].size);
  }
  return results;
}

}  // namespace

TEST_CASE("results come in item order, the same whatever the number of jobs", "[archive]") {
  temp_folder sources;
  std::vector<archive::work_item> items;
  for (unsigned i = 0; i < 40; ++i) {
    // Sizes vary so that workers finish out of order; every third item is read from a file.
    const std::string content = compressible_text(100 + (i * 7919) % 20000, i);
    const std::string name = "page" + std::to_string(i) + ".html";
    if (i % 3 == 0) {
      const auto file = sources.write(name, content);
      items.push_back({"/" + name, file.string(), {}, content.size()});
    } else {
      items.push_back(generated("/" + name, content));
    }
  }
  const auto expected = run(items, options_with(1));
  REQUIRE(expected.size() == items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    INFO("item " << i);
    const auto& result = expected[i];
    REQUIRE_FALSE(result.error);
    CHECK(result.content.size() == items[i].size);
    CHECK(result.hash == archive::sha256_hex(result.content));
    CHECK(result.etag == result.hash.substr(0, 32));
    CHECK(result.type.value == "text/html; charset=utf-8");
    REQUIRE(result.coded.size() == 2);
    CHECK(result.coded[0].setting.codec == encoding::gzip);  // in the options' order
    CHECK(result.coded[1].setting.codec == encoding::br);
  }
  for (const unsigned jobs : {2U, 3U, 8U}) {
    const auto results = run(items, options_with(jobs));
    REQUIRE(results.size() == expected.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      INFO("jobs " << jobs << ", item " << i);
      REQUIRE_FALSE(results[i].error);
      CHECK(results[i].content == expected[i].content);
      CHECK(results[i].hash == expected[i].hash);
      REQUIRE(results[i].coded.size() == expected[i].coded.size());
      for (std::size_t c = 0; c < results[i].coded.size(); ++c) {
        CHECK(results[i].coded[c].kept == expected[i].coded[c].kept);
        CHECK(results[i].coded[c].data() == expected[i].coded[c].data());
        CHECK(results[i].coded[c].etag == expected[i].coded[c].etag);
      }
    }
  }
}

TEST_CASE("compressed variants decode to the content and those not worth it are dropped",
          "[archive]") {
  const std::string text = compressible_text(5000, 3);
  const std::string noise = noise_of(5000, 1);
  const std::vector<archive::work_item> items = {
      generated("/text.txt", text), generated("/noise.txt", noise), generated("/tiny.txt", "small"),
      generated("/photo.png", text)};
  const auto results = run(items, options_with(2));

  REQUIRE(results[0].coded.size() == 2);
  for (const auto& coded : results[0].coded) {
    CHECK(coded.kept);
    CHECK_FALSE(coded.reused);
    CHECK(coded.data().size() < text.size());
    CHECK(archive::decompress(coded.setting.codec, coded.data(), text.size()) == text);
    CHECK(coded.etag == archive::sha256_hex(coded.data()).substr(0, 32));
  }
  REQUIRE(results[1].coded.size() == 2);
  for (const auto& coded : results[1].coded) {
    CHECK_FALSE(coded.kept);
    CHECK(coded.data().empty());
  }
  CHECK(results[2].coded.empty());  // too small to be worth trying
  CHECK(results[3].coded.empty());  // a type that is not compressed
  CHECK(results[3].type.value == "image/png");
}

TEST_CASE("an error surfaces with the item at fault, naming its file", "[archive][errors]") {
  temp_folder sources;
  std::vector<archive::work_item> items;
  for (int i = 0; i < 3; ++i) items.push_back(generated("/ok.txt", compressible_text(3000, 1)));
  const auto grown = sources.write("grown.txt", "longer than the walk saw");

  SECTION("a file that is gone") {
    items.push_back({"/gone.txt", (sources / "gone.txt").string(), {}, 10});
  }
  SECTION("a file whose size changed since the walk") {
    items.push_back({"/grown.txt", grown.string(), {}, 4});
  }
  const std::string faulty = items.back().file;
  for (int i = 0; i < 4; ++i) items.push_back(generated("/after.txt", "after"));

  const archive::build_options options = options_with(3);
  const archive::build_hooks hooks;
  archive::pipeline workers(items, options, nullptr, hooks);
  for (std::size_t index = 0; index < 3; ++index) {
    const auto result = workers.take(index);
    CHECK_FALSE(result.error);
    workers.release(index, items[index].size);
  }
  const auto result = workers.take(3);
  REQUIRE(result.error);
  CHECK_THROWS_WITH(std::rethrow_exception(result.error), Catch::Contains(faulty));
}

TEST_CASE("a cancelled run reports the interruption as the item's error", "[archive][errors]") {
  const std::vector<archive::work_item> items = {generated("/a.txt", compressible_text(3000, 1))};
  const archive::build_options options = options_with(1);
  archive::build_hooks hooks;
  hooks.cancelled = [] { return true; };
  archive::pipeline workers(items, options, nullptr, hooks);
  const auto result = workers.take(0);
  REQUIRE(result.error);
  CHECK_THROWS_WITH(std::rethrow_exception(result.error), "interrupted");
}

TEST_CASE("variants of the same content and setting are reused from the previous archive",
          "[archive]") {
  temp_folder sources, out;
  const std::string text = compressible_text(8000, 5);
  const std::string noise = noise_of(2000, 2);
  sources.write("text.txt", text);
  sources.write("noise.txt", noise);
  archive::build_options options = options_with(2);
  options.sources = sources.str();
  options.archive = (out / "site.cdb").string();
  archive::build(options);
  const kawipiko::base::mapped_file file(options.archive);
  const archive::reader previous(file.bytes());

  const std::vector<archive::work_item> items = {generated("/renamed.txt", text),
                                                 generated("/noise.txt", noise),
                                                 generated("/changed.txt", text + "!")};
  const auto results = run(items, options, &previous);
  const auto image = file.bytes();
  const auto* const image_begin = reinterpret_cast<const char*>(image.data());

  REQUIRE(results[0].coded.size() == 2);
  for (const auto& coded : results[0].coded) {
    CHECK(coded.reused);
    CHECK(coded.kept);
    CHECK(coded.bytes.empty());  // a view into the previous archive, not a copy
    CHECK(coded.data().data() >= image_begin);
    CHECK(coded.data().data() + coded.data().size() <= image_begin + image.size());
    CHECK(archive::decompress(coded.setting.codec, coded.data(), text.size()) == text);
    CHECK(coded.etag == archive::sha256_hex(coded.data()).substr(0, 32));
  }
  REQUIRE(results[1].coded.size() == 2);
  for (const auto& coded : results[1].coded) {
    CHECK(coded.reused);  // the skip mark: known not to be worth it
    CHECK_FALSE(coded.kept);
  }
  REQUIRE(results[2].coded.size() == 2);
  for (const auto& coded : results[2].coded) CHECK_FALSE(coded.reused);

  SECTION("a different level is compressed afresh") {
    archive::build_options other = options;
    other.codecs = {{encoding::gzip, 1}};
    const auto fresh = run(items, other, &previous);
    REQUIRE(fresh[0].coded.size() == 1);
    CHECK_FALSE(fresh[0].coded[0].reused);
  }
}

TEST_CASE("a previous variant that does not decode to the content is not reused",
          "[archive][corrupt]") {
  const std::string text = compressible_text(3000, 9);
  const std::string hash = archive::sha256_hex(text);
  namespace schema = archive::schema;
  const auto image = kawipiko::cdb::test::build_image(
      {{std::string(schema::schema_key), std::string(schema::schema_value)},
       {schema::body_key(hash, "gzip-6"), "not gzip at all"},
       {schema::body_key(hash, "br-5"), archive::compress(encoding::br, 5, text + "?")}});
  const archive::reader previous(image);
  const auto results = run({generated("/a.txt", text)}, options_with(1), &previous);
  REQUIRE(results[0].coded.size() == 2);
  for (const auto& coded : results[0].coded) {
    INFO(token(coded.setting.codec));
    CHECK_FALSE(coded.reused);
    CHECK(coded.kept);
    CHECK(archive::decompress(coded.setting.codec, coded.data(), text.size()) == text);
  }
}
