#include "cdb/writer.hpp"

#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <utility>

#include "base/error.hpp"
#include "cdb/hash.hpp"

namespace kawipiko::cdb {

namespace {

using format::header_entry_size;
using format::header_size;
using format::record_header_size;
using format::slot_size;
using format::table_count;

// Each record gets two slots in its table (tables are half full, as cdbmake builds them).
constexpr std::uint64_t table_bytes_per_record = 2 * slot_size;

// Writes `value` little-endian at `out`, byte by byte: the host's order does not matter.
void store_u32(unsigned char* out, std::uint32_t value) noexcept {
  out[0] = static_cast<unsigned char>(value);
  out[1] = static_cast<unsigned char>(value >> 8);
  out[2] = static_cast<unsigned char>(value >> 16);
  out[3] = static_cast<unsigned char>(value >> 24);
}

[[noreturn]] void throw_too_large(const std::string& name) {
  base::throw_error("cannot add a record to", name,
                    "the archive would exceed the 4 GiB limit of the cdb format");
}

}  // namespace

writer::writer(std::FILE* file, std::string name, std::uint64_t limit)
    : file_(file), name_(std::move(name)), limit_(std::min(limit, format::max_size)) {
  assert(file_ != nullptr);
  // The header is written last (it needs the tables' positions); zeros hold its place.
  const std::array<unsigned char, header_size> zeros{};
  write_bytes(zeros.data(), zeros.size());
}

std::uint64_t writer::projected_size() const noexcept {
  return position_ + table_bytes_per_record * slots_.size();
}

std::uint32_t writer::add(std::string_view key, std::string_view value) {
  assert(!finished_);
  // Every check happens before the first byte of the record is written. Each length is compared
  // with what is left under the limit, by subtraction, so no sum can overflow; projected_size()
  // <= limit_ <= format::max_size holds between calls.
  // (A test's limit may be below the header's size: then nothing is left.)
  const std::uint64_t projected = projected_size();
  const std::uint64_t left = limit_ > projected ? limit_ - projected : 0;
  const std::uint64_t record_cost = record_header_size + table_bytes_per_record;
  if (record_cost > left || key.size() > left - record_cost) throw_too_large(name_);
  if (value.size() > left - record_cost - key.size()) throw_too_large(name_);

  // The checks above bound every number below by limit_ <= format::max_size: the casts are exact.
  const auto record_position = static_cast<std::uint32_t>(position_);
  std::array<unsigned char, record_header_size> head{};
  store_u32(head.data(), static_cast<std::uint32_t>(key.size()));
  store_u32(head.data() + 4, static_cast<std::uint32_t>(value.size()));
  write_bytes(head.data(), head.size());
  write_bytes(key.data(), key.size());
  write_bytes(value.data(), value.size());

  slots_.push_back({hash(key), record_position});
  const std::uint64_t value_position = position_ + record_header_size + key.size();
  position_ = value_position + value.size();
  return static_cast<std::uint32_t>(value_position);
}

void writer::finish() {
  assert(!finished_);
  // add() kept projected_size() <= limit_ <= format::max_size, so every table position fits a
  // uint32.
  assert(slots_.empty() || projected_size() <= limit_);

  // Group the slots by table (low 8 bits of the hash), keeping the order of addition inside each
  // table: that order is what makes a lookup find the first of duplicate keys first.
  std::array<std::size_t, table_count> counts{};
  for (const slot& s : slots_) ++counts[s.hash & 0xffU];
  std::array<std::size_t, table_count> starts{};
  for (std::size_t table = 1; table < table_count; ++table) {
    starts[table] = starts[table - 1] + counts[table - 1];
  }
  std::vector<slot> grouped(slots_.size());
  {
    std::array<std::size_t, table_count> next = starts;
    for (const slot& s : slots_) grouped[next[s.hash & 0xffU]++] = s;
  }

  std::array<unsigned char, header_size> header{};
  std::vector<slot> table_slots;
  std::vector<unsigned char> table_bytes;
  for (std::size_t table = 0; table < table_count; ++table) {
    // cdb(5): a table of 2 * count slots, each entry placed at (hash >> 8) % slots or the next
    // free slot after it, wrapping. Position 0 marks a free slot (no record starts there).
    const std::size_t length = 2 * counts[table];
    store_u32(header.data() + table * header_entry_size, static_cast<std::uint32_t>(position_));
    store_u32(header.data() + table * header_entry_size + 4, static_cast<std::uint32_t>(length));
    if (length == 0) continue;

    table_slots.assign(length, slot{0, 0});
    for (std::size_t i = starts[table]; i < starts[table] + counts[table]; ++i) {
      const slot& s = grouped[i];
      std::size_t where = (s.hash >> 8) % length;
      while (table_slots[where].position != 0) where = where + 1 == length ? 0 : where + 1;
      table_slots[where] = s;
    }
    table_bytes.resize(length * slot_size);
    for (std::size_t i = 0; i < length; ++i) {
      store_u32(table_bytes.data() + i * slot_size, table_slots[i].hash);
      store_u32(table_bytes.data() + i * slot_size + 4, table_slots[i].position);
    }
    write_bytes(table_bytes.data(), table_bytes.size());
    position_ += table_bytes.size();
  }

  const std::uint64_t end = position_;
  seek(0);
  write_bytes(header.data(), header.size());
  seek(end);
  errno = 0;
  if (std::fflush(file_) != 0) base::throw_errno(errno != 0 ? errno : EIO, "cannot write", name_);
  finished_ = true;
}

void writer::write_bytes(const void* data, std::size_t size) {
  if (size == 0) return;
  errno = 0;
  if (std::fwrite(data, 1, size, file_) != size) {
    base::throw_errno(errno != 0 ? errno : EIO, "cannot write", name_);
  }
}

void writer::seek(std::uint64_t position) {
  // position <= format::max_size, which any off_t holds.
  if (fseeko(file_, static_cast<off_t>(position), SEEK_SET) != 0) {
    base::throw_errno(errno, "cannot seek in", name_);
  }
}

}  // namespace kawipiko::cdb
