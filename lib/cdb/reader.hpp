#pragma once
// A read-only, validated view over a djb CDB image (usually a mapped file). The image is treated
// as hostile: every position and length read from it is checked against the image's bounds
// before use, so a truncated or corrupted file gives an error, never an out-of-bounds read.
// The format is described in format.hpp.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cdb/format.hpp"

namespace kawipiko::cdb {

// Errors a lookup or an iteration can report about the image.
enum class errc {
  ok = 0,
  truncated,   // like bad_record, but the position or length runs past the image's end
  bad_table,   // a hash table lies outside the image or overlaps the header (the
               // constructor throws for these, so find() never sets it), or overlaps another
               // table (only slot_positions() checks that)
  bad_record,  // a record lies outside [records_begin(), records_end()), or its
               // key/value lengths run past records_end()
};
const std::error_category& category() noexcept;
std::error_code make_error_code(errc e) noexcept;

class reader {
 public:
  // Validates the header (image at least format::header_size bytes; each table inside the image,
  // after the header). Throws std::runtime_error with a one-line reason on a malformed header (the
  // reason does not name the file: the caller adds that). The image must outlive the reader; the
  // reader is immutable and safe to share between threads.
  explicit reader(std::span<const std::byte> image);

  // The first value stored under `key`, or nullopt when there is none. `error` is cleared on
  // entry; a corrupt slot or record met on the way sets it and returns nullopt. At most `slots`
  // probes, no allocation; noexcept. The view points into the image.
  [[nodiscard]] std::optional<std::string_view> find(std::string_view key,
                                                     std::error_code& error) const noexcept;

  // Byte range where records may lie: [records_begin(), records_end()), i.e. from the end of the
  // header to the first hash table. Values referenced by position are validated against it.
  [[nodiscard]] std::size_t records_begin() const noexcept { return format::header_size; }
  [[nodiscard]] std::size_t records_end() const noexcept { return records_end_; }

  // The bytes [position, position + length) if they lie inside the records area, else nullopt.
  [[nodiscard]] std::optional<std::string_view> slice(std::uint64_t position,
                                                      std::uint64_t length) const noexcept;

  // Iterates over every record in file order from `from` (a record's start; by default the
  // first record). `visit(key, value, position_of_value)` returns void. `error` is cleared on
  // entry; a record running past records_end() stops the walk and sets it. Exceptions from
  // `visit` propagate.
  template <class Visit>
  void for_each(Visit&& visit, std::error_code& error,
                std::size_t from = format::header_size) const;

  struct record {
    std::string_view key;
    std::string_view value;
    std::size_t value_position;
    std::size_t next;  // position of the next record
  };
  // The record starting at `position`, checked as find() checks it; nullopt with `error` set
  // when it is malformed. No allocation.
  [[nodiscard]] std::optional<record> record_at(std::size_t position,
                                                std::error_code& error) const noexcept;

  // The record positions the hash tables' slots hold (every record a lookup can reach), sorted,
  // without duplicates; those outside the records area left out. Reads the tables only, not the
  // records. `error` is cleared on entry, set to bad_table (and nothing returned) when the
  // tables overlap each other.
  [[nodiscard]] std::vector<std::uint32_t> slot_positions(std::error_code& error) const;

 private:
  std::span<const std::byte> image_;
  std::size_t records_end_ = format::header_size;
};

template <class Visit>
void reader::for_each(Visit&& visit, std::error_code& error, std::size_t from) const {
  error = {};
  std::size_t position = from;
  while (position < records_end_) {
    const auto current = record_at(position, error);
    if (!current) return;
    visit(current->key, current->value, current->value_position);
    position = current->next;
  }
}

}  // namespace kawipiko::cdb

template <>
struct std::is_error_code_enum<kawipiko::cdb::errc> : std::true_type {};
