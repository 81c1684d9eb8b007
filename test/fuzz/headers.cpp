// Fuzz target: the request header values the handler interprets: http::pick_encoding
// (Accept-Encoding), http::parse_range (Range), http::if_range_matches (If-Range),
// http::if_match (If-Match) and http::if_none_match (If-None-Match). The input is text lines:
//   <header value>
//   <representation length, decimal> (optional: several fixed lengths are always tried too)
//   <the resource's ETag>             (optional: "\"abc\"" otherwise)
// Every function gets the header value, so one seed serves all five.
//
// Checked: parse_range's ranges are sorted, disjoint and not adjacent, inside the length, at most
// out.size() of them, and the answer agrees with a larger and a one-slot output; pick_encoding
// picks an available coding (or none), does not depend on the order of the list, and keeps its
// pick when other codings are taken away; the ETag functions match only what the contract allows
// and always match the resource's own tag.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "http/accept_encoding.hpp"
#include "http/etag.hpp"
#include "http/range.hpp"

using kawipiko::fuzz::parse_decimal;

namespace http = kawipiko::http;

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// opaque-tag = DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text.
bool is_opaque_tag(std::string_view tag) {
  if (tag.size() < 2 || tag.front() != '"' || tag.back() != '"') return false;
  for (const char ch : tag.substr(1, tag.size() - 2)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c == '"' || c == 0x7f) return false;
  }
  return true;
}

template <std::size_t Slots>
struct ranges {
  http::range_result result;
  std::array<http::byte_range, Slots> out;
  std::size_t count;
};

template <std::size_t Slots>
ranges<Slots> parse(std::string_view header, std::uint64_t length) {
  ranges<Slots> r{};
  r.count = 12345;
  r.result = http::parse_range(header, length, r.out, r.count);
  if (r.result != http::range_result::satisfiable) {
    KAWIPIKO_FUZZ_CHECK(r.count == 0);
    return r;
  }
  KAWIPIKO_FUZZ_CHECK(r.count >= 1 && r.count <= Slots);
  for (std::size_t i = 0; i < r.count; ++i) {
    const auto& range = r.out[i];
    KAWIPIKO_FUZZ_CHECK(range.first <= range.last && range.last < length);
    // Sorted, and neither overlapping nor adjacent (those are merged).
    if (i > 0) KAWIPIKO_FUZZ_CHECK(range.first > r.out[i - 1].last + 1);
  }
  return r;
}

void check_range(std::string_view header, std::uint64_t length) {
  const auto sixteen = parse<16>(header, length);
  const auto many = parse<64>(header, length);
  const auto one = parse<1>(header, length);
  using http::range_result;
  switch (sixteen.result) {
    case range_result::none:
    case range_result::unsatisfiable:
      KAWIPIKO_FUZZ_CHECK(many.result == sixteen.result && one.result == sixteen.result);
      break;
    case range_result::satisfiable:
      KAWIPIKO_FUZZ_CHECK(many.result == range_result::satisfiable && many.count == sixteen.count);
      KAWIPIKO_FUZZ_CHECK(
          std::equal(sixteen.out.begin(), sixteen.out.begin() + sixteen.count, many.out.begin()));
      KAWIPIKO_FUZZ_CHECK(one.result == range_result::satisfiable ||
                          one.result == range_result::too_many);
      if (one.result == range_result::satisfiable) {
        KAWIPIKO_FUZZ_CHECK(sixteen.count == 1 && one.out[0] == sixteen.out[0]);
      }
      break;
    case range_result::too_many:
      KAWIPIKO_FUZZ_CHECK(many.result == range_result::satisfiable ||
                          many.result == range_result::too_many);
      KAWIPIKO_FUZZ_CHECK(one.result == range_result::too_many);
      break;
  }
  if (length == 0) KAWIPIKO_FUZZ_CHECK(sixteen.result != range_result::satisfiable);
}

http::encoding_set set_of(unsigned bits) {
  return {(bits & 1U) != 0, (bits & 2U) != 0, (bits & 4U) != 0};
}

bool is_available(http::coding c, http::encoding_set set) {
  switch (c) {
    case http::coding::identity:
      return set.identity;
    case http::coding::gzip:
      return set.gzip;
    case http::coding::br:
      return set.br;
    case http::coding::none:
      return true;
  }
  return false;
}

unsigned bit_of(http::coding c) {
  return c == http::coding::identity ? 1U : c == http::coding::gzip ? 2U : 4U;
}

void check_accept_encoding(std::string_view value) {
  // The list's elements in reverse order.
  std::vector<std::string_view> elements;
  for (std::string_view rest = value;;) {
    const std::size_t comma = rest.find(',');
    elements.push_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  std::string reversed;
  for (auto it = elements.rbegin(); it != elements.rend(); ++it) {
    if (it != elements.rbegin()) reversed += ',';
    reversed += *it;
  }

  std::array<http::coding, 8> picked{};
  for (unsigned bits = 0; bits < 8; ++bits) {
    const auto set = set_of(bits);
    const auto chosen = http::pick_encoding(value, true, set);
    picked[bits] = chosen;
    KAWIPIKO_FUZZ_CHECK(is_available(chosen, set));
    if (bits == 0) KAWIPIKO_FUZZ_CHECK(chosen == http::coding::none);
    KAWIPIKO_FUZZ_CHECK(http::pick_encoding(reversed, true, set) == chosen);
    // Without the header: identity first, then br, then gzip.
    const auto absent = http::pick_encoding(value, false, set);
    KAWIPIKO_FUZZ_CHECK(absent == (set.identity ? http::coding::identity
                                   : set.br     ? http::coding::br
                                   : set.gzip   ? http::coding::gzip
                                                : http::coding::none));
  }
  // Taking away codings that were not picked does not change the pick; when nothing was
  // acceptable, nothing in a smaller set is either.
  for (unsigned bits = 1; bits < 8; ++bits) {
    for (unsigned subset = bits; subset != 0; subset = (subset - 1) & bits) {
      if (picked[bits] == http::coding::none) {
        KAWIPIKO_FUZZ_CHECK(picked[subset] == http::coding::none);
      } else if ((subset & bit_of(picked[bits])) != 0) {
        KAWIPIKO_FUZZ_CHECK(picked[subset] == picked[bits]);
      }
    }
  }
}

void check_etags(std::string_view value, std::string_view etag) {
  const std::string_view bare = etag.starts_with("W/") ? etag.substr(2) : etag;
  const bool valid_tag = is_opaque_tag(bare);

  const bool none_match = http::if_none_match(value, etag);
  if (trim(value) == "*") KAWIPIKO_FUZZ_CHECK(none_match);
  if (none_match && trim(value) != "*") {
    KAWIPIKO_FUZZ_CHECK(valid_tag && value.find(bare) != std::string_view::npos);
  }
  if (valid_tag) {
    KAWIPIKO_FUZZ_CHECK(http::if_none_match(bare, etag));
    KAWIPIKO_FUZZ_CHECK(http::if_none_match("W/" + std::string(bare), etag));
    KAWIPIKO_FUZZ_CHECK(http::if_none_match("\"x\", " + std::string(bare) + " ,", etag));
  }

  // Strong comparison: a match is a weak match too, never of a weak tag or a weak element.
  const bool match = http::if_match(value, etag);
  if (trim(value) == "*") KAWIPIKO_FUZZ_CHECK(match);
  if (match) KAWIPIKO_FUZZ_CHECK(none_match);
  if (match && trim(value) != "*") {
    KAWIPIKO_FUZZ_CHECK(valid_tag && bare == etag && value.find(etag) != std::string_view::npos);
  }
  if (valid_tag && bare == etag) {
    KAWIPIKO_FUZZ_CHECK(http::if_match(etag, etag));
    KAWIPIKO_FUZZ_CHECK(http::if_match("\"x\", " + std::string(etag) + " ,", etag));
    KAWIPIKO_FUZZ_CHECK(!http::if_match("W/" + std::string(etag), etag));
  }

  const bool range_matches = http::if_range_matches(value, etag);
  if (range_matches) {
    KAWIPIKO_FUZZ_CHECK(trim(value) == etag && !etag.starts_with("W/") && valid_tag);
  }
  KAWIPIKO_FUZZ_CHECK(http::if_range_matches(etag, etag) == (valid_tag && bare == etag));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t first_break = input.find('\n');
  const std::string_view value = input.substr(0, first_break);
  std::string_view length_line;
  std::string_view etag = "\"abc\"";
  if (first_break != std::string_view::npos) {
    const std::string_view rest = input.substr(first_break + 1);
    const std::size_t second_break = rest.find('\n');
    length_line = rest.substr(0, second_break);
    if (second_break != std::string_view::npos) etag = rest.substr(second_break + 1);
  }

  constexpr auto max = std::numeric_limits<std::uint64_t>::max();
  for (const std::uint64_t length :
       {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{10}, std::uint64_t{1000}, max - 1, max}) {
    check_range(value, length);
  }
  std::uint64_t length = 0;
  if (parse_decimal(length_line, length)) check_range(value, length);

  check_accept_encoding(value);
  check_etags(value, etag);
  return 0;
}
