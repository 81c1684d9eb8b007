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
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace kawipiko::serve {

struct header_line {
  std::string_view name;   // lower case
  std::string_view value;  // without the spaces around it
  const char* end;         // where the line ends in the block, after its CRLF
  bool last;               // the block's last line
};

class header_lists {
 public:
  // Adds the lines of `block`, well-formed "Name: value\r\n" lines (archive::is_well_formed),
  // which must outlive this object.
  void add(std::string_view block);

  // The lines `lines` spans: a block added here or a run of its whole lines. Empty when
  // `lines` does not start a line of an added block. No allocation.
  [[nodiscard]] std::span<const header_line> find(std::string_view lines) const noexcept;

  [[nodiscard]] std::size_t size() const noexcept { return lines_.size(); }

 private:
  std::string_view lower(std::string_view name);

  std::vector<header_line> lines_;                         // block after block
  std::unordered_map<const char*, std::uint32_t> starts_;  // where a line starts -> its index
  std::unordered_set<std::string> names_;                  // lower-case names not known below
};

}  // namespace kawipiko::serve
