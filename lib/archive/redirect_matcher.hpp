#pragma once
// The `_redirects` rules that are matched at serve time, compiled into bytes the archive holds
// (compile_matcher, archive side) and matched in place over them (redirect_matcher, serve side):
// no copy and no allocation on a miss, and a miss touches only the rules that could match,
// found by walking a trie of path segments. Also which rules need it (classify_rules).
//
// Byte format. Every number is a little-endian uint32; the areas follow one another in the order
// below with no gap, and the blob ends where the last ends. A string is (offset, size) into the
// strings area; a range is (first, count) into an area.
//   header      "KWRM", then: version (1), and the counts of rules, nodes, slots, lists,
//               segments, conditions, parts, and the strings area's size in bytes (40 bytes)
//   rules       11 numbers each, in rule order: source line; status (200, 301, 302, 303, 307,
//               308, 404); flags (1 force, 2 trailing slash, 4 keeps the query); segments range;
//               conditions range; parts range; host string (empty: any host)
//   nodes       5 numbers each: the child by the placeholder edge (0: none; the root, node 0,
//               is nobody's child); the range of lists of the rules whose pattern ends at the
//               node ("ends"); the range of those cut at it by a splat or the trie's depth
//               ("below")
//   slots       5 numbers each: the edges of the trie in an open-addressing table: hash; parent
//               node (0xffffffff: an empty slot); child node; the segment's string. The count is
//               a power of two greater than the number of edges; an edge (parent, segment) sits
//               at hash & (count - 1) or the first free slot after it (wrapping), where hash is
//               32-bit FNV-1a over the parent's 4 bytes (little-endian) then the segment's
//   lists       1 number each: a rule index; each node's range is strictly increasing
//   segments    3 numbers each: kind (0 literal, 1 placeholder, 2 splat: the last one only);
//               string (the decoded literal, or the placeholder's name)
//   conditions  5 numbers each: kind (0 the value must equal, 1 any value, captured); name
//               string; value string
//   parts       4 numbers each, the pieces of `to`: kind (0 literal, 1 a capture before `to`'s
//               first '?' or '#', 2 a capture after it); the capture's index
//               (captures are the segments' placeholders and splat in order, then the binding
//               conditions in order); the literal's string
//   strings     bytes
// The trie has an edge per literal segment and one per node for any placeholder; a host has its
// own root, the root's child by the edge "\x01<host>". A rule is listed at the node its segments
// lead to from the root or its host's root (up to a splat, or max_trie_depth of them). A lookup
// walks the trie along its path's segments, from the root and the roots of its host (as sent in
// lower case, and without its port), by each matching literal edge and by placeholder edges,
// and tries only the rules listed at the nodes it reaches ("below" lists, and "ends" where the
// path ends), merged in rule order; the first that matches wins. So a miss touches only the
// rules whose host and literal segments all fit the request, wherever their placeholders are.
// A walk that meets more than 16 nodes at one depth or 64 lists (only rules written to defeat
// the trie do) tries every rule in order instead: slower, still right, still no allocation.
//
// The reader checks all of it before use: sizes, ranges, kinds, statuses, flags, every string
// inside the strings area, each list sorted and inside the rules, every edge between existing
// nodes and in a slot its hash allows, a splat only last, capture indexes below the rule's
// captures, literal parts safe in a Location header and a target that starts as a path (or, for
// a redirect, an http(s) URL). So a corrupt blob is refused when opened, and one it accepts is
// matched without further checks.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "archive/redirect_rules.hpp"

namespace kawipiko::archive {

// The deepest trie node: a rule's segments past it are compared when it is tried.
inline constexpr std::size_t max_trie_depth = 16;

// How the builder treats a rule.
enum class rule_kind : std::uint8_t {
  plain,    // answers fixed paths (plain_paths): compiled into entries at archive time
  pattern,  // matched at serve time, in rule order, with the other pattern rules
};

// Classifies each rule. A plain rule (redirect_rule::is_plain) is `pattern` when an earlier
// pattern rule can match one of its paths, whatever the host and query: an entry would otherwise
// answer before the rule that comes first. Throws std::bad_alloc only.
[[nodiscard]] std::vector<rule_kind> classify_rules(std::span<const redirect_rule> rules);

// Compiles `rules` (in order: the first that matches wins) into the byte format above. Throws
// std::length_error when the strings pass 4 GiB, std::invalid_argument for a rule that
// parse_redirects would have refused (a `to` using a name `from` does not bind).
[[nodiscard]] std::vector<std::byte> compile_matcher(std::span<const redirect_rule> rules);

struct redirect_request {
  std::string_view host;   // the Host value as received (any case, maybe a port); may be empty
  std::string_view path;   // normalized (http::normalize_target): decoded, starts with '/'
  std::string_view query;  // the raw query, without '?'; may be empty
};

struct redirect_match {
  std::uint32_t rule = 0;  // index in the compiled rules
  std::uint32_t line = 0;  // in the source file
  unsigned status = 0;
  bool force = false;
  // For a redirect, the Location: `to` with the captured values substituted, percent-encoded
  // so that each stays what it was (a splat keeps its '/'; a value after '?' cannot add a
  // parameter), then the request's query when the rule keeps it. For a 200 or 404, the path to
  // serve, in the same encoded form (the caller normalizes it). Safe in a header: no byte below
  // 0x21 nor above 0x7e. The caller bounds its length.
  std::string target;
};

namespace detail {
// Where the areas of a checked blob start, and how many records each holds.
struct matcher_areas {
  std::uint32_t rule_count = 0;
  std::uint32_t node_count = 0;
  std::uint32_t slot_count = 0;
  std::uint32_t list_count = 0;
  std::uint32_t segment_count = 0;
  std::uint32_t condition_count = 0;
  std::uint32_t part_count = 0;
  std::uint32_t string_size = 0;
  const std::byte* rules = nullptr;
  const std::byte* nodes = nullptr;
  const std::byte* slots = nullptr;
  const std::byte* lists = nullptr;
  const std::byte* segments = nullptr;
  const std::byte* conditions = nullptr;
  const std::byte* parts = nullptr;
  const std::byte* strings = nullptr;
  bool has_hosts = false;  // some edge leaves the root for a host's root
};
}  // namespace detail

class redirect_matcher {
 public:
  // Checks `blob` fully and keeps views into it (it must outlive the matcher). Throws
  // std::runtime_error "corrupt redirect rules: <what is wrong>" if it is not a matcher this
  // version wrote.
  explicit redirect_matcher(std::span<const std::byte> blob);

  [[nodiscard]] std::size_t size() const noexcept { return areas_.rule_count; }

  // Finds the first rule matching `request`: its path, its host if the rule has one, its query
  // conditions. On a match fills `out` (its target's capacity is reused) and returns true.
  // A miss allocates nothing and leaves `out` alone. Throws std::bad_alloc only. Thread-safe.
  bool match(const redirect_request& request, redirect_match& out) const;

  // The index of the first rule whose path pattern matches `path`, and whose host is `host` if
  // it names one, whatever its query conditions (classify_rules, and the builder's question
  // "which rule could apply here"). No allocation.
  [[nodiscard]] std::optional<std::uint32_t> first_path_match(
      std::string_view path, std::string_view host = {}) const noexcept;

 private:
  detail::matcher_areas areas_;
};

}  // namespace kawipiko::archive
