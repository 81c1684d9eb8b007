#pragma once
// The archive's header blocks as HTTP/2 header lists, derived once when the archive is opened
// (not per request, and not stored in the archive, so that every archive, old or new, serves
// over both protocols): for each line of each block its lower-case name and its value, a view
// into the archive. HTTP/2's writer finds the lines of a block, or of a run of whole lines in
// one (the 304 and 206 prefixes, the lines after a redirect's Location), by where they start.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace kawipiko::serve {

struct header_line {
  std::string_view name;   // lower case
  std::string_view value;  // without the spaces around it
  const char* start;       // where the line starts in the block
  std::uint32_t size;      // its bytes, CRLF included
  bool last;               // the block's last line
};

class header_lists {
 public:
  // Adds the lines of `block`, well-formed "Name: value\r\n" lines (archive::is_well_formed),
  // which must outlive this object. A block added before is not added again.
  void add(std::string_view block);
  // Adds every block of `blocks` as add() does, sizing the storage once for all their lines
  // first (an archive's tens of thousands of lines would otherwise grow it step by step).
  void add_all(std::span<const std::string_view> blocks);

  // The lines `lines` spans: a block added here or a run of its whole lines. Empty when
  // `lines` does not start a line of an added block. No allocation.
  [[nodiscard]] std::span<const header_line> find(std::string_view lines) const noexcept;

  [[nodiscard]] std::size_t size() const noexcept { return lines_.size(); }

 private:
  // One slot of the start table: the low 32 bits of a line's start (lines_ has the whole
  // pointer, which find() reads next anyway) and the line's index plus one, 0 for an empty slot.
  struct start_slot {
    std::uint32_t start_bits = 0;
    std::uint32_t line = 0;
  };

  std::string_view lower(std::string_view name);
  void reserve(std::size_t lines);
  // The slot of `start`, or the empty one where it would go; starts_ must not be empty.
  [[nodiscard]] std::size_t slot_of(const char* start) const noexcept;
  void insert(const char* start, std::uint32_t line);

  std::vector<header_line> lines_;  // block after block
  // Where a line starts -> its index: open addressing, a power-of-two size at most half full,
  // one allocation for all (a node per line made an open's allocations its largest cost).
  std::vector<start_slot> starts_;
  std::unordered_set<std::string> names_;  // lower-case names not known below
};

}  // namespace kawipiko::serve
