// Fuzz target: archive::reader on a valid archive with bytes changed. Three archives of the
// fixture site are built once: one without host folders, one with them (schema 4), and one with
// `_redirects` and `_headers` (entries of every redirect status and flag, and the rules blobs);
// the input says how to damage a copy of each:
//   [truncate] (offset:3 bytes little-endian, value:1 byte)...
// The first byte, when its high bit is set, cuts the image to (byte & 0x7f)/128 of its size; each
// 4-byte group then sets the byte at offset (modulo the size) to value. Opening may throw
// std::runtime_error only; then every key the intact archive listed (kawipiko:paths) and a few it
// does not have are looked up, with find and find_fallback (under each key's host with host
// folders), and every record that looks like an entry is decoded. Every entry handed out must be
// coherent and point inside the image. Each site's rules blobs ("rules:<host>",
// "forced-rules:<host>") are opened as the server opens them (refused with std::runtime_error
// only), and one that is accepted is asked about every key's path: whatever it answers is safe
// in a Location header. The seeds named hosts-* aim at the archive of host folders, rules-* at
// the one with rules.

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
#include "archive/redirect_matcher.hpp"
#include "archive/schema.hpp"
#include "fuzz_support.hpp"

namespace archive = kawipiko::archive;
namespace schema = kawipiko::archive::schema;
using kawipiko::fuzz::is_inside;

namespace {

struct original {
  std::string image;               // the intact archive
  std::vector<std::string> paths;  // the keys its kawipiko:paths lists, and a few missing ones
};
original originals[3];  // without host folders, with them, with rules

// The records area of `image`, which `reader` reads.
std::span<const std::byte> records_of(std::span<const std::byte> image,
                                      const archive::reader& reader) {
  const auto& db = reader.database();
  return image.subspan(db.records_begin(), db.records_end() - db.records_begin());
}

void check_entry(const archive::entry& entry, std::span<const std::byte> records) {
  KAWIPIKO_FUZZ_CHECK(entry.status <= 999);
  KAWIPIKO_FUZZ_CHECK((entry.flags & ~schema::entry_flags::known) == 0);
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

// `key` looked up, and its path's fallback: with host folders, under the host in front of it.
void look_up(const archive::reader& reader, std::span<const std::byte> records,
             std::string_view key) {
  archive::entry entry;
  if (reader.find(key, entry) == archive::lookup_status::found) check_entry(entry, records);
  entry = {};
  const auto slash = reader.has_host_folders() ? key.find('/') : 0;
  if (slash == std::string_view::npos) return;
  const auto host = key.substr(0, slash);
  if (reader.find_fallback(host, key.substr(slash), entry) == archive::lookup_status::found) {
    check_entry(entry, records);
  }
}

// The rules blob under `key`, opened as the server opens it; if it is accepted, every path is
// matched against it, on the host and a domain-level rule's, with and without a query.
void match_rules(const archive::reader& reader, const std::string& key,
                 const std::vector<std::string>& paths) {
  std::error_code error;
  const auto blob = reader.database().find(key, error);
  if (!blob || error) return;
  std::optional<archive::redirect_matcher> matcher;
  try {
    matcher.emplace(std::as_bytes(std::span(blob->data(), blob->size())));
  } catch (const std::runtime_error&) {
    return;  // refused at open, and the archive with it
  }
  archive::redirect_match match;
  for (const auto& path : paths) {
    const auto slash = path.find('/');
    if (slash == std::string::npos) continue;
    for (const std::string_view host : {"a.test", "old.test"}) {
      for (const std::string_view query : {"", "id=7&x"}) {
        if (!matcher->match({host, std::string_view(path).substr(slash), query}, match)) continue;
        KAWIPIKO_FUZZ_CHECK(!match.target.empty());
        for (const char c : match.target) KAWIPIKO_FUZZ_CHECK(c > 0x20 && c < 0x7f);
      }
    }
  }
}

// The intact archive of the fixture, and the keys to look up in it.
original make_original(bool host_folders, bool rules = false) {
  const kawipiko::fuzz::fixture_archive fixture(host_folders, rules);
  original made{fixture.bytes(), {}};
  const archive::reader reader(std::as_bytes(std::span<const char>(made.image)));
  KAWIPIKO_FUZZ_CHECK(reader.has_host_folders() == host_folders);
  std::error_code error;
  const auto listing = reader.database().find(schema::paths_key, error);
  KAWIPIKO_FUZZ_CHECK(listing && !error);
  for (std::string_view rest = *listing; !rest.empty();) {
    const std::size_t end = rest.find('\n');
    if (end != 0) made.paths.emplace_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  KAWIPIKO_FUZZ_CHECK(made.paths.size() >= 8);
  for (const auto& path : made.paths) {
    archive::entry entry;
    KAWIPIKO_FUZZ_CHECK(reader.find(path, entry) == archive::lookup_status::found);
  }
  std::vector<std::string> hosts{""};
  if (host_folders) hosts.assign(reader.hosts().begin(), reader.hosts().end());
  for (const auto& host : hosts) {
    for (const char* missing :
         {"/", "/nope", "/app/x", "/app/a/b/c", "/deep/a/b/c/d/e", "/deep/a/", "/docs/missing/",
          "/news/2024/x", "/files/a/b", "/store", "/shell/x"}) {
      made.paths.push_back(host + missing);
    }
  }
  return made;
}

// Damages a copy of `intact` as the input says (see the top), opens it and looks every key up.
void damage_and_read(const original& intact, const std::uint8_t* data, std::size_t size) {
  // A heap copy of exactly the image's size, so that ASan sees a read past its end.
  const auto& original = intact.image;
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
    return;  // refused at open: what a server does with a damaged archive
  }
  const auto records = records_of(image, *reader);
  KAWIPIKO_FUZZ_CHECK(is_inside(reader->meta_value("fallback-depth"), records));
  for (const auto host : reader->hosts()) KAWIPIKO_FUZZ_CHECK(is_inside(host, records));
  for (const auto& path : intact.paths) look_up(*reader, records, path);

  // Every record keyed like an entry, as --index-paths decodes them.
  std::error_code error;
  reader->database().for_each(
      [&](std::string_view key, std::string_view value, std::size_t) {
        if (!schema::is_path_key(key) && !key.starts_with(schema::fallback_prefix)) return;
        archive::entry entry;
        if (archive::decode_entry(value, reader->database(), entry)) check_entry(entry, records);
      },
      error);
  const std::vector<std::string_view> whole{std::string_view{}};
  for (const auto host : reader->has_host_folders() ? reader->hosts() : whole) {
    match_rules(*reader, schema::rules_key(host), intact.paths);
    match_rules(*reader, schema::forced_rules_key(host), intact.paths);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  originals[0] = make_original(false);
  originals[1] = make_original(true);
  originals[2] = make_original(false, true);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (const auto& intact : originals) damage_and_read(intact, data, size);
  return 0;
}
