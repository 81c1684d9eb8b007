#pragma once
// Byte-range requests (RFC 9110 §14): the Range header against a representation of known
// length, and If-Range. Run per request: noexcept, no allocation.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace kawipiko::http {

// An inclusive byte range [first, last] of a representation; first <= last < length.
struct byte_range {
  std::uint64_t first;
  std::uint64_t last;

  friend bool operator==(const byte_range&, const byte_range&) = default;
};

enum class range_result {
  none,           // no header, another unit, or a syntax error (RFC: ignore it): serve 200
  satisfiable,    // `count` ranges in `out`: serve 206
  unsatisfiable,  // no range overlaps the representation: serve 416
  too_many,       // more satisfiable ranges than `out` holds: serve 200 with the whole body
};

// Parses the Range value `header` for a representation of `length` bytes.
//
// - Syntax: "bytes=" (unit case-insensitive, no whitespace around '=') then a comma-separated
//   list of "a-b", "a-" and "-n", whitespace tolerated around the commas, empty elements allowed,
//   at least one range. Numbers are 1 to 19 digits (more, or a value above 2^64-1, is invalid).
//   "a-b" with a > b is invalid. Any invalid element makes the whole header invalid: none.
// - Semantics: b >= length is clipped to length - 1; "a-" is [a, length - 1]; "-n" is the last
//   min(n, length) bytes. A range with a >= length, "-0", and every range when length is 0, is
//   unsatisfiable and dropped. Nothing left: unsatisfiable.
// - More than out.size() satisfiable ranges, counted as the client sent them (before
//   coalescing): too_many. Many ranges are a denial-of-service sign (RFC 9110 §14.2) and the cap
//   keeps the work in `out`, with no allocation.
// - The kept ranges are sorted by first byte and overlapping or adjacent ones are merged; `out`
//   holds the result, `count` its size (0 unless satisfiable). Contents of `out` past `count`
//   are unspecified.
[[nodiscard]] range_result parse_range(std::string_view header, std::uint64_t length,
                                       std::span<byte_range> out, std::size_t& count) noexcept;

// Whether a range request guarded by If-Range value `if_range` may be answered with a part:
// true only when it is a strong entity-tag byte-equal to `strong_etag` (RFC 9110 §13.1.5 requires
// the strong comparison). A date, a weak tag or anything malformed gives false: serve the whole
// representation with 200 (the archive has no Last-Modified to compare a date with).
[[nodiscard]] bool if_range_matches(std::string_view if_range,
                                    std::string_view strong_etag) noexcept;

}  // namespace kawipiko::http
