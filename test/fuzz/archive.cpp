// Fuzz target: archive::reader on a valid archive with bytes changed. The archive of the fixture
// site is built once; the input says how to damage a copy of it:
//   [truncate] (offset:3 bytes little-endian, value:1 byte)...
// The first byte, when its high bit is set, cuts the image to (byte & 0x7f)/128 of its size; each
// 4-byte group then sets the byte at offset (modulo the size) to value. Opening may throw
// std::runtime_error only; then every path the intact archive listed (kawipiko:paths) and a few it
// does not have are looked up, with find and find_fallback, and every record that looks like an
// entry is decoded. Every entry handed out must be coherent and point inside the image.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "archive/entry.hpp"
#include "archive/reader.hpp"
#include "archive/schema.hpp"
#include "fuzz_support.hpp"

namespace archive = kawipiko::archive;
namespace schema = kawipiko::archive::schema;
using kawipiko::fuzz::is_inside;

namespace {

std::string original;            // the intact archive
std::vector<std::string> paths;  // what its kawipiko:paths lists, and a few missing ones

// The records area of `image`, which `reader` reads.
std::span<const std::byte> records_of(std::span<const std::byte> image,
                                      const archive::reader& reader) {
  const auto& db = reader.database();
  return image.subspan(db.records_begin(), db.records_end() - db.records_begin());
}

void check_entry(const archive::entry& entry, std::span<const std::byte> records) {
  KAWIPIKO_FUZZ_CHECK(entry.status <= 999);
  KAWIPIKO_FUZZ_CHECK(entry.count >= 1 && entry.count <= schema::max_variants);
  for (std::size_t i = 0; i < entry.count; ++i) {
    const auto& v = entry.variants[i];
    KAWIPIKO_FUZZ_CHECK(is_inside(v.body, records));
    KAWIPIKO_FUZZ_CHECK(is_inside(v.block, records));
    KAWIPIKO_FUZZ_CHECK(v.length_304 <= v.length_partial && v.length_partial <= v.block.size());
    KAWIPIKO_FUZZ_CHECK(is_inside(v.etag, v.block));
    if (!v.etag.empty()) KAWIPIKO_FUZZ_CHECK(v.etag.data() == v.block.data() + 6);
  }
}

void look_up(const archive::reader& reader, std::span<const std::byte> records,
             std::string_view path) {
  archive::entry entry;
  if (reader.find(path, entry) == archive::lookup_status::found) check_entry(entry, records);
  entry = {};
  if (reader.find_fallback(path, entry) == archive::lookup_status::found) {
    check_entry(entry, records);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const kawipiko::fuzz::fixture_archive fixture;
  original = fixture.bytes();
  const archive::reader reader(std::as_bytes(std::span<const char>(original)));
  std::error_code error;
  const auto listing = reader.database().find(schema::paths_key, error);
  KAWIPIKO_FUZZ_CHECK(listing && !error);
  for (std::string_view rest = *listing; !rest.empty();) {
    const std::size_t end = rest.find('\n');
    if (end != 0) paths.emplace_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  KAWIPIKO_FUZZ_CHECK(paths.size() >= 8);
  for (const auto& path : paths) {
    archive::entry entry;
    KAWIPIKO_FUZZ_CHECK(reader.find(path, entry) == archive::lookup_status::found);
  }
  for (const char* missing :
       {"/", "/nope", "/app/x", "/app/a/b/c", "/deep/a/b/c/d/e", "/deep/a/", "/docs/missing/"}) {
    paths.emplace_back(missing);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A heap copy of exactly the image's size, so that ASan sees a read past its end.
  std::size_t image_size = original.size();
  std::size_t at = 0;
  if (size > 0 && (data[0] & 0x80U) != 0) {
    image_size = image_size * (data[0] & 0x7fU) / 128;
    at = 1;
  }
  std::vector<std::byte> image(reinterpret_cast<const std::byte*>(original.data()),
                               reinterpret_cast<const std::byte*>(original.data()) + image_size);
  for (; image_size > 0 && size - at >= 4; at += 4) {
    const std::size_t offset =
        data[at] | (std::size_t{data[at + 1]} << 8) | (std::size_t{data[at + 2]} << 16);
    image[offset % image_size] = std::byte{data[at + 3]};
  }

  std::optional<archive::reader> reader;
  try {
    reader.emplace(image);
  } catch (const std::runtime_error&) {
    return 0;  // refused at open: what a server does with a damaged archive
  }
  const auto records = records_of(image, *reader);
  KAWIPIKO_FUZZ_CHECK(is_inside(reader->meta_value("fallback-depth"), records));
  for (const auto& path : paths) look_up(*reader, records, path);

  // Every record keyed like an entry, as --index-paths decodes them.
  std::error_code error;
  reader->database().for_each(
      [&](std::string_view key, std::string_view value, std::size_t) {
        if (!key.starts_with('/') && !key.starts_with(schema::fallback_prefix)) return;
        archive::entry entry;
        if (archive::decode_entry(value, reader->database(), entry)) check_entry(entry, records);
      },
      error);
  return 0;
}
