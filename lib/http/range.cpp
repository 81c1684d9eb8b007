#include "http/range.hpp"

#include <algorithm>
#include <limits>

#include "http/etag.hpp"
#include "http/syntax.hpp"

namespace kawipiko::http {
namespace {

using syntax::trim;

// 1 to 19 decimal digits. 19 nines is below 2^64 - 1, so the cap alone rules out overflow.
constexpr bool parse_number(std::string_view text, std::uint64_t& value) noexcept {
  if (text.empty() || text.size() > 19) return false;
  value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

enum class spec { invalid, dropped, kept };

// One non-empty range-spec (RFC 9110 §14.1.1) against `length`: invalid syntax, unsatisfiable
// (dropped), or satisfiable with `range` clipped to the representation.
constexpr spec read_spec(std::string_view text, std::uint64_t length, byte_range& range) noexcept {
  const std::size_t dash = text.find('-');
  if (dash == std::string_view::npos) return spec::invalid;
  const std::string_view first_text = text.substr(0, dash);
  const std::string_view last_text = text.substr(dash + 1);

  if (first_text.empty()) {  // suffix-range "-n"
    std::uint64_t suffix = 0;
    if (!parse_number(last_text, suffix)) return spec::invalid;
    if (suffix == 0 || length == 0) return spec::dropped;
    range = {length - std::min(suffix, length), length - 1};
    return spec::kept;
  }

  std::uint64_t first = 0;
  std::uint64_t last = std::numeric_limits<std::uint64_t>::max();  // "a-": to the end
  if (!parse_number(first_text, first)) return spec::invalid;
  if (!last_text.empty() && !parse_number(last_text, last)) return spec::invalid;
  if (first > last) return spec::invalid;
  if (first >= length) return spec::dropped;  // also every range when length is 0
  range = {first, std::min(last, length - 1)};
  return spec::kept;
}

}  // namespace

range_result parse_range(std::string_view header, std::uint64_t length, std::span<byte_range> out,
                         std::size_t& count) noexcept {
  count = 0;
  header = trim(header);
  constexpr std::string_view unit = "bytes=";
  if (!syntax::istarts_with(header, unit)) return range_result::none;
  header.remove_prefix(unit.size());

  std::size_t specs = 0;  // non-empty elements
  std::size_t kept = 0;   // satisfiable ones, possibly more than out.size()
  while (true) {
    const std::size_t comma = header.find(',');
    const std::string_view element = trim(header.substr(0, comma));
    if (!element.empty()) {
      ++specs;
      byte_range range{};
      const spec result = read_spec(element, length, range);
      if (result == spec::invalid) return range_result::none;
      if (result == spec::kept) {
        if (kept < out.size()) out[kept] = range;
        ++kept;
      }
    }
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  if (specs == 0) return range_result::none;
  if (kept > out.size()) return range_result::too_many;
  if (kept == 0) return range_result::unsatisfiable;

  const auto ranges = out.first(kept);
  std::sort(ranges.begin(), ranges.end(), [](const byte_range& a, const byte_range& b) {
    return a.first < b.first || (a.first == b.first && a.last < b.last);
  });
  std::size_t merged = 0;
  for (const byte_range& range : ranges) {
    // last < length <= 2^64 - 1, so last + 1 cannot overflow.
    if (merged > 0 && range.first <= out[merged - 1].last + 1) {
      out[merged - 1].last = std::max(out[merged - 1].last, range.last);
    } else {
      out[merged++] = range;
    }
  }
  count = merged;
  return range_result::satisfiable;
}

bool if_range_matches(std::string_view if_range, std::string_view strong_etag) noexcept {
  if_range = trim(if_range);
  return is_strong_etag(if_range) && if_range == strong_etag;
}

}  // namespace kawipiko::http
