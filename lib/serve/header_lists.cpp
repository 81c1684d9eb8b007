#include "serve/header_lists.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "serve/response.hpp"

namespace kawipiko::serve {

namespace {

// The start table's first size: a power of two (slot_of masks with it), at least 2.
constexpr std::size_t min_slots = 1024;

// The names the archiver writes, whose lower-case forms need no copy.
constexpr std::array known_names = {
    field_name{"ETag", "etag"},
    field_name{"Cache-Control", "cache-control"},
    field_name{"Vary", "vary"},
    field_name{"Content-Type", "content-type"},
    field_name{"Content-Encoding", "content-encoding"},
    field_name{"Content-Length", "content-length"},
    field_name{"Location", "location"},
    field_name{"X-Content-Type-Options", "x-content-type-options"},
    field_name{"Referrer-Policy", "referrer-policy"},
    field_name{"X-Frame-Options", "x-frame-options"},
    field_name{"Strict-Transport-Security", "strict-transport-security"},
};

std::string_view trimmed(std::string_view value) noexcept {
  std::size_t first = 0, last = value.size();
  while (first < last && (value[first] == ' ' || value[first] == '\t')) ++first;
  while (last > first && (value[last - 1] == ' ' || value[last - 1] == '\t')) --last;
  return value.substr(first, last - first);
}

// Calls `take(name, value, start, size)` for each "Name: value\r\n" line of `block`.
template <class Take>
void each_line(std::string_view block, Take&& take) {
  const char* at = block.data();
  const char* const stop = block.data() + block.size();
  while (at < stop) {
    const auto left = static_cast<std::size_t>(stop - at);
    const auto* line_end = static_cast<const char*>(std::memchr(at, '\r', left));
    while (line_end != nullptr && (line_end + 1 == stop || line_end[1] != '\n')) {
      line_end = static_cast<const char*>(
          std::memchr(line_end + 1, '\r', static_cast<std::size_t>(stop - line_end - 1)));
    }
    const std::string_view line(
        at, line_end == nullptr ? left : static_cast<std::size_t>(line_end - at));
    const char* next = line_end == nullptr ? stop : line_end + 2;
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      take(line.substr(0, colon), trimmed(line.substr(colon + 1)), at,
           static_cast<std::uint32_t>(next - at));
    }
    at = next;
  }
}

std::size_t line_count(std::string_view block) noexcept {
  // A well-formed block's only '\n' bytes end its lines.
  return static_cast<std::size_t>(std::count(block.begin(), block.end(), '\n'));
}

std::uint32_t low_bits(const char* start) noexcept {
  return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(start));
}

}  // namespace

std::string_view header_lists::lower(std::string_view name) {
  for (const auto& known : known_names) {
    if (known.text == name) return known.lower;
  }
  std::string folded(name);
  std::transform(folded.begin(), folded.end(), folded.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return *names_.insert(std::move(folded)).first;  // a set's elements do not move
}

std::size_t header_lists::slot_of(const char* start) const noexcept {
  // Fibonacci hashing (the product's top bits, as many as the size needs), then linear probing,
  // which ends at `start`'s slot or at an empty one: the table is never full.
  const auto bits = static_cast<unsigned>(std::countr_zero(starts_.size()));
  const auto product = std::uint64_t{low_bits(start)} * std::uint64_t{0x9e3779b97f4a7c15};
  const std::size_t mask = starts_.size() - 1;
  auto at = static_cast<std::size_t>(product >> (64 - bits));
  while (starts_[at].line != 0 && (starts_[at].start_bits != low_bits(start) ||
                                   lines_[starts_[at].line - 1].start != start)) {
    at = (at + 1) & mask;
  }
  return at;
}

void header_lists::reserve(std::size_t lines) {
  lines_.reserve(lines);
  if (lines * 2 <= starts_.size()) return;
  std::vector<start_slot> old(std::bit_ceil(std::max(min_slots, lines * 2)));
  old.swap(starts_);
  for (const auto& slot : old) {
    if (slot.line != 0) starts_[slot_of(lines_[slot.line - 1].start)] = slot;
  }
}

void header_lists::insert(const char* start, std::uint32_t line) {
  if (lines_.size() * 2 > starts_.size()) reserve(std::max(lines_.capacity(), lines_.size() * 2));
  auto& slot = starts_[slot_of(start)];
  if (slot.line == 0) slot = {low_bits(start), line + 1};  // the first line wins
}

void header_lists::add(std::string_view block) {
  if (block.empty() || (!starts_.empty() && starts_[slot_of(block.data())].line != 0)) return;
  const auto first = lines_.size();
  each_line(block, [&](std::string_view name, std::string_view value, const char* start,
                       std::uint32_t size) {
    lines_.push_back({lower(name), value, start, size, false});
    insert(start, static_cast<std::uint32_t>(lines_.size() - 1));
  });
  if (lines_.size() > first) lines_.back().last = true;
}

void header_lists::add_all(std::span<const std::string_view> blocks) {
  std::size_t lines = lines_.size();
  for (const auto block : blocks) lines += line_count(block);
  reserve(lines);
  for (const auto block : blocks) add(block);
}

std::span<const header_line> header_lists::find(std::string_view lines) const noexcept {
  if (lines.empty() || starts_.empty()) return {};
  const auto& found = starts_[slot_of(lines.data())];
  if (found.line == 0) return {};
  const char* const stop = lines.data() + lines.size();
  std::size_t i = found.line - 1, count = 0;
  while (i + count < lines_.size() && lines_[i + count].start + lines_[i + count].size <= stop) {
    ++count;
    if (lines_[i + count - 1].last) break;
  }
  return std::span(lines_).subspan(i, count);
}

}  // namespace kawipiko::serve
