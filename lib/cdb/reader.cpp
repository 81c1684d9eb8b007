#include "cdb/reader.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cdb/hash.hpp"

namespace kawipiko::cdb {

namespace {

using format::header_entry_size;
using format::header_size;
using format::record_header_size;
using format::slot_size;
using format::table_count;

class error_category_impl final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "cdb"; }

  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::ok:
        return "success";
      case errc::truncated:
        return "a position or length points past the end of the cdb image";
      case errc::bad_table:
        return "a cdb hash table lies outside the image or overlaps the header or another table";
      case errc::bad_record:
        return "a cdb record lies outside the records area";
    }
    return "unknown cdb error";
  }
};

// Little-endian uint32 at `position`; the caller has checked that 4 bytes are there.
std::uint32_t load_u32(std::span<const std::byte> image, std::size_t position) noexcept {
  const std::byte* p = image.data() + position;
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

std::string_view view(std::span<const std::byte> image, std::size_t position,
                      std::size_t length) noexcept {
  return {reinterpret_cast<const char*>(image.data() + position), length};
}

[[noreturn]] void throw_bad_header(std::string reason) {
  throw std::runtime_error("not a valid cdb image: " + reason);
}

}  // namespace

const std::error_category& category() noexcept {
  static const error_category_impl instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

reader::reader(std::span<const std::byte> image) : image_(image) {
  const std::size_t size = image_.size();
  // The header must be there before any of its entries is read.
  if (size < header_size) {
    throw_bad_header(std::to_string(size) + " bytes, shorter than the " +
                     std::to_string(header_size) + "-byte header");
  }
  std::size_t lowest_table = size;
  for (std::size_t table = 0; table < table_count; ++table) {
    const std::size_t position = load_u32(image_, table * header_entry_size);
    const std::size_t slots = load_u32(image_, table * header_entry_size + 4);
    // A table may not overlap the header (records and tables follow it).
    if (position < header_size) {
      throw_bad_header("hash table " + std::to_string(table) + " starts inside the header");
    }
    // A table's start must lie inside the image (an empty table may sit exactly at its end).
    if (position > size) {
      throw_bad_header("hash table " + std::to_string(table) + " starts past the end (" +
                       std::to_string(size) + " bytes)");
    }
    // Its slots must fit in what follows; the division keeps slots * 8 from overflowing.
    if (slots > (size - position) / slot_size) {
      throw_bad_header("hash table " + std::to_string(table) + " runs past the end (" +
                       std::to_string(size) + " bytes)");
    }
    lowest_table = std::min(lowest_table, position);
  }
  // Writers place every table, empty ones included, after the last record, so the lowest table
  // position is where the records end.
  records_end_ = lowest_table;
}

std::optional<reader::record> reader::record_at(std::size_t position,
                                                std::error_code& error) const noexcept {
  // The caller's position is trusted only after this check: records live after the header and
  // before the first table. (records_end_ <= image size, checked at construction.)
  if (position < header_size || position >= records_end_) {
    error = position >= image_.size() ? errc::truncated : errc::bad_record;
    return std::nullopt;
  }
  // From here on position < records_end_ <= image size: both subtractions are safe.
  std::size_t room = records_end_ - position;
  std::size_t image_room = image_.size() - position;
  // A record that does not fit is "truncated" if it runs past the image, "bad" otherwise.
  const auto fail = [&](std::size_t needed) {
    error = needed > image_room ? errc::truncated : errc::bad_record;
    return std::nullopt;
  };
  // The record header (two lengths) must fit before the records end.
  if (room < record_header_size) return fail(record_header_size);
  const std::size_t key_length = load_u32(image_, position);
  const std::size_t value_length = load_u32(image_, position + 4);
  room -= record_header_size;
  image_room -= record_header_size;
  // The key must fit in the rest of the records area...
  if (key_length > room) return fail(key_length);
  room -= key_length;
  image_room -= key_length;
  // ...and the value after it.
  if (value_length > room) return fail(value_length);
  const std::size_t key_position = position + record_header_size;
  const std::size_t value_position = key_position + key_length;
  return record{view(image_, key_position, key_length), view(image_, value_position, value_length),
                value_position, value_position + value_length};
}

std::optional<std::string_view> reader::find(std::string_view key,
                                             std::error_code& error) const noexcept {
  error = {};
  const std::uint32_t key_hash = hash(key);
  const std::size_t entry = (key_hash & 0xffU) * header_entry_size;
  // Both numbers were validated at construction: the table lies inside the image.
  const std::size_t table_position = load_u32(image_, entry);
  const std::size_t slots = load_u32(image_, entry + 4);
  if (slots == 0) return std::nullopt;

  std::size_t slot = (key_hash >> 8) % slots;
  // At most `slots` probes: a corrupt table with no empty slot cannot loop forever.
  for (std::size_t probes = 0; probes < slots; ++probes) {
    const std::size_t slot_position = table_position + slot * slot_size;
    const std::uint32_t slot_hash = load_u32(image_, slot_position);
    const std::size_t record_position = load_u32(image_, slot_position + 4);
    if (record_position == 0) return std::nullopt;  // an empty slot ends the chain
    if (slot_hash == key_hash) {
      const auto found = record_at(record_position, error);
      if (!found) return std::nullopt;
      if (found->key == key) return found->value;
    }
    if (++slot == slots) slot = 0;
  }
  return std::nullopt;
}

std::vector<std::uint32_t> reader::slot_positions(std::error_code& error) const {
  error = {};
  std::size_t total = 0;
  for (std::size_t table = 0; table < table_count; ++table) {
    total += load_u32(image_, table * header_entry_size + 4);
  }
  // Tables lie one after the other after the records: more slots than fit there means some
  // overlap, and reading them all could take 256 passes over the image.
  if (total > (image_.size() - records_end_) / slot_size) {
    error = errc::bad_table;
    return {};
  }
  std::vector<std::uint32_t> positions;
  positions.reserve(total / 2);  // writers fill half of each table
  for (std::size_t table = 0; table < table_count; ++table) {
    // Both numbers were validated at construction: the table lies inside the image.
    const std::size_t table_position = load_u32(image_, table * header_entry_size);
    const std::size_t slots = load_u32(image_, table * header_entry_size + 4);
    for (std::size_t slot = 0; slot < slots; ++slot) {
      const std::uint32_t position = load_u32(image_, table_position + slot * slot_size + 4);
      // 0 is an empty slot; anything else outside the records area is no record (find() fails
      // on it as bad_record).
      if (position >= header_size && position < records_end_) positions.push_back(position);
    }
  }
  std::sort(positions.begin(), positions.end());
  positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
  return positions;
}

std::optional<std::string_view> reader::slice(std::uint64_t position,
                                              std::uint64_t length) const noexcept {
  // The range must start inside the records area...
  if (position < records_begin() || position > records_end_) return std::nullopt;
  // ...and end inside it; subtracting keeps position + length from overflowing.
  if (length > records_end_ - position) return std::nullopt;
  return view(image_, static_cast<std::size_t>(position), static_cast<std::size_t>(length));
}

}  // namespace kawipiko::cdb
