#include "archive/redirect_matcher.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "http/syntax.hpp"
#include "http/target.hpp"

namespace kawipiko::archive {

namespace {

namespace syntax = http::syntax;
using detail::matcher_areas;

// ---- the format (redirect_matcher.hpp) ----------------------------------------------------------

constexpr std::string_view magic = "KWRM";
constexpr std::uint32_t format_version = 1;
constexpr std::size_t header_numbers = 9;  // after the magic: the version, 7 counts, strings size
constexpr std::size_t header_size = magic.size() + 4 * header_numbers;

// Numbers per record, by area.
constexpr std::size_t rule_numbers = 11;
constexpr std::size_t node_numbers = 5;
constexpr std::size_t slot_numbers = 5;
constexpr std::size_t segment_numbers = 3;
constexpr std::size_t condition_numbers = 5;
constexpr std::size_t part_numbers = 4;

constexpr std::uint32_t flag_force = 1;
constexpr std::uint32_t flag_trailing_slash = 2;
constexpr std::uint32_t flag_keeps_query = 4;
constexpr std::uint32_t known_flags = flag_force | flag_trailing_slash | flag_keeps_query;

constexpr std::uint32_t empty_slot = 0xffffffff;
constexpr std::uint32_t condition_equals = 0;
constexpr std::uint32_t condition_binds = 1;
constexpr std::uint32_t part_literal = 0;
constexpr std::uint32_t part_capture = 1;
constexpr std::uint32_t part_query_capture = 2;

static_assert(static_cast<std::uint32_t>(segment_kind::literal) == 0 &&
              static_cast<std::uint32_t>(segment_kind::placeholder) == 1 &&
              static_cast<std::uint32_t>(segment_kind::splat) == 2);

constexpr bool is_allowed_status(std::uint32_t status) noexcept {
  switch (status) {
    case 200:
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
    case 404:
      return true;
    default:
      return false;
  }
}

std::uint32_t load(const std::byte* at) noexcept {
  return std::to_integer<std::uint32_t>(at[0]) | std::to_integer<std::uint32_t>(at[1]) << 8 |
         std::to_integer<std::uint32_t>(at[2]) << 16 | std::to_integer<std::uint32_t>(at[3]) << 24;
}

// Number `n` of record `index` in an area of `numbers`-number records.
std::uint32_t number(const std::byte* area, std::size_t numbers, std::uint32_t index,
                     std::size_t n) noexcept {
  return load(area + (std::size_t{index} * numbers + n) * 4);
}

// FNV-1a (32 bits) over the parent's 4 bytes, little-endian, then the segment's.
std::uint32_t edge_hash(std::uint32_t parent, std::string_view segment) noexcept {
  std::uint32_t hash = 2166136261U;
  const auto mix = [&hash](unsigned char byte) { hash = (hash ^ byte) * 16777619U; };
  for (unsigned shift = 0; shift < 32; shift += 8) mix(static_cast<unsigned char>(parent >> shift));
  for (const char c : segment) mix(static_cast<unsigned char>(c));
  return hash;
}

// The root's edge to a host's own root: the host after a byte no path segment holds (controls
// are refused in patterns and in normalized paths).
constexpr char host_edge_mark = '\x01';

std::string host_edge(std::string_view host) {
  return std::string(1, host_edge_mark).append(host);
}

std::string_view string_at(const matcher_areas& areas, std::uint32_t offset,
                           std::uint32_t size) noexcept {
  return {reinterpret_cast<const char*>(areas.strings) + offset, size};
}

struct rule_record {
  std::uint32_t line, status, flags;
  std::uint32_t segment_first, segment_count;
  std::uint32_t condition_first, condition_count;
  std::uint32_t part_first, part_count;
  std::uint32_t host_offset, host_size;
};

rule_record load_rule(const matcher_areas& areas, std::uint32_t index) noexcept {
  const auto at = [&](std::size_t n) { return number(areas.rules, rule_numbers, index, n); };
  return {at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7), at(8), at(9), at(10)};
}

// A rule's segments as match_path reads them, straight from the blob.
struct segment_view {
  segment_kind kind;
  std::string_view text;
};

class blob_segments {
 public:
  blob_segments(const matcher_areas& areas, const rule_record& rule) noexcept
      : areas_(areas), first_(rule.segment_first), count_(rule.segment_count) {}
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  segment_view operator[](std::size_t i) const noexcept {
    const auto index = static_cast<std::uint32_t>(first_ + i);
    return {static_cast<segment_kind>(number(areas_.segments, segment_numbers, index, 0)),
            string_at(areas_, number(areas_.segments, segment_numbers, index, 1),
                      number(areas_.segments, segment_numbers, index, 2))};
  }

 private:
  const matcher_areas& areas_;
  std::uint32_t first_;
  std::uint32_t count_;
};

// ---- writing ------------------------------------------------------------------------------------

void put(std::vector<std::byte>& out, std::uint32_t value) {
  for (unsigned shift = 0; shift < 32; shift += 8) {
    out.push_back(static_cast<std::byte>((value >> shift) & 0xffU));
  }
}

std::uint32_t count_of(std::size_t size) {
  if (size > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("redirect rules: more than 4 Gi records or bytes");
  }
  return static_cast<std::uint32_t>(size);
}

// Collects the areas rule by rule, then lays them out.
class matcher_writer {
 public:
  void add(const redirect_rule& rule) {
    const auto index = count_of(rule_count_++);
    const auto segment_first = count_of(segments_.size() / segment_numbers);
    for (const auto& segment : rule.from.segments) {
      segments_.push_back(static_cast<std::uint32_t>(segment.kind));
      add_string(segments_, segment.text);
    }
    const auto condition_first = count_of(conditions_.size() / condition_numbers);
    for (const auto& condition : rule.query) {
      conditions_.push_back(condition.binds ? condition_binds : condition_equals);
      add_string(conditions_, condition.name);
      add_string(conditions_, condition.value);
    }
    const auto part_first = count_of(parts_.size() / part_numbers);
    add_parts(rule);
    const std::uint32_t flags = (rule.force ? flag_force : 0) |
                                (rule.from.trailing_slash ? flag_trailing_slash : 0) |
                                (rule.keeps_query() ? flag_keeps_query : 0);
    for (const std::uint32_t value :
         {count_of(rule.line), static_cast<std::uint32_t>(rule.status), flags, segment_first,
          count_of(rule.from.segments.size()), condition_first, count_of(rule.query.size()),
          part_first, count_of(parts_.size() / part_numbers - part_first)}) {
      rules_.push_back(value);
    }
    add_string(rules_, rule.host);
    place(rule, index);
  }

  [[nodiscard]] std::vector<std::byte> finish() const;

 private:
  void add_parts(const redirect_rule& rule) {
    const auto names = capture_names(rule);
    for (const auto& part : split_target(rule.to)) {
      if (!part.is_placeholder) {
        parts_.insert(parts_.end(), {part_literal, 0});
        add_string(parts_, part.text);
        continue;
      }
      const auto found = std::find(names.begin(), names.end(), part.text);
      if (found == names.end()) {
        throw std::invalid_argument("redirect rule on line " + std::to_string(rule.line) +
                                    ": ':" + part.text + "' is not bound");
      }
      parts_.insert(parts_.end(), {part.in_query ? part_query_capture : part_capture,
                                   count_of(static_cast<std::size_t>(found - names.begin()))});
      parts_.insert(parts_.end(), {0, 0});
    }
  }

  // Lists a rule at the node its segments lead to, from the root or, for a domain-level rule,
  // from its host's node; a placeholder by the node's placeholder edge. Among the node's "ends"
  // when the pattern ends there, among its "below" when a splat or the trie's depth cuts it.
  void place(const redirect_rule& rule, std::uint32_t index) {
    const path_pattern& from = rule.from;
    std::uint32_t node = rule.host.empty() ? 0 : literal_child(0, host_edge(rule.host));
    for (std::size_t depth = 0; depth < from.segments.size(); ++depth) {
      const auto& segment = from.segments[depth];
      if (segment.kind == segment_kind::splat || depth == max_trie_depth) {
        nodes_[node].below.push_back(index);
        return;
      }
      node = segment.kind == segment_kind::placeholder ? placeholder_child(node)
                                                       : literal_child(node, segment.text);
    }
    nodes_[node].ends.push_back(index);
  }

  std::uint32_t new_node() {
    nodes_.emplace_back();
    return count_of(nodes_.size() - 1);
  }

  std::uint32_t literal_child(std::uint32_t node, const std::string& segment) {
    const auto [at, added] = edges_.try_emplace({node, segment}, 0);
    if (added) {
      at->second = new_node();
      intern(segment);  // the edge's slot names it
    }
    return at->second;
  }

  std::uint32_t placeholder_child(std::uint32_t node) {
    if (nodes_[node].placeholder == 0) {
      const std::uint32_t child = new_node();
      nodes_[node].placeholder = child;
    }
    return nodes_[node].placeholder;
  }

  // Appends the (offset, size) of `text` in the strings area.
  void add_string(std::vector<std::uint32_t>& area, std::string_view text) {
    area.insert(area.end(), {intern(text), count_of(text.size())});
  }

  // Where `text` is in the strings area, storing each distinct text once.
  std::uint32_t intern(std::string_view text) {
    const auto [at, added] = interned_.try_emplace(std::string(text), 0);
    if (added) {
      at->second = count_of(strings_.size());
      strings_ += text;
      count_of(strings_.size());
    }
    return at->second;
  }

  void put_slots(std::vector<std::byte>& out, std::uint32_t slot_count) const;

  std::size_t rule_count_ = 0;
  std::vector<std::uint32_t> rules_, segments_, conditions_, parts_;
  struct trie_node {
    std::uint32_t placeholder =
        0;  // the child by a placeholder edge; 0: none (the root's no child)
    std::vector<std::uint32_t> ends;   // rules whose pattern ends here
    std::vector<std::uint32_t> below;  // rules cut here by a splat or the trie's depth
  };
  std::vector<trie_node> nodes_{1};                                       // the root first
  std::map<std::pair<std::uint32_t, std::string>, std::uint32_t> edges_;  // -> child node
  std::string strings_;
  std::unordered_map<std::string, std::uint32_t> interned_;  // text -> its offset
};

void matcher_writer::put_slots(std::vector<std::byte>& out, std::uint32_t slot_count) const {
  std::vector<std::array<std::uint32_t, slot_numbers>> slots(
      slot_count, std::array<std::uint32_t, slot_numbers>{0, empty_slot, 0, 0, 0});
  for (const auto& [edge, child] : edges_) {
    const auto& [parent, segment] = edge;
    const std::uint32_t hash = edge_hash(parent, segment);
    std::uint32_t slot = hash & (slot_count - 1);
    while (slots[slot][1] != empty_slot) slot = (slot + 1) & (slot_count - 1);
    slots[slot] = {hash, parent, child, interned_.at(segment), count_of(segment.size())};
  }
  for (const auto& slot : slots) {
    for (const auto value : slot) put(out, value);
  }
}

std::vector<std::byte> matcher_writer::finish() const {
  std::uint32_t slot_count = 1;
  while (slot_count <= 2 * edges_.size()) slot_count *= 2;
  std::size_t list_count = 0;
  for (const auto& n : nodes_) list_count += n.ends.size() + n.below.size();
  std::vector<std::byte> out;
  for (const char c : magic) out.push_back(static_cast<std::byte>(c));
  for (const std::size_t value :
       {std::size_t{format_version}, rule_count_, nodes_.size(), std::size_t{slot_count},
        list_count, segments_.size() / segment_numbers, conditions_.size() / condition_numbers,
        parts_.size() / part_numbers, strings_.size()}) {
    put(out, count_of(value));
  }
  for (const auto value : rules_) put(out, value);
  std::uint32_t list_first = 0;
  for (const auto& n : nodes_) {
    put(out, n.placeholder);
    for (const auto* list : {&n.ends, &n.below}) {
      put(out, list_first);
      put(out, count_of(list->size()));
      list_first += count_of(list->size());
    }
  }
  put_slots(out, slot_count);
  for (const auto& n : nodes_) {
    for (const auto* list : {&n.ends, &n.below}) {
      for (const auto rule : *list) put(out, rule);
    }
  }
  for (const auto* area : {&segments_, &conditions_, &parts_}) {
    for (const auto value : *area) put(out, value);
  }
  for (const char c : strings_) out.push_back(static_cast<std::byte>(c));
  return out;
}

// ---- checking -----------------------------------------------------------------------------------

[[noreturn]] void corrupt(const std::string& what) {
  throw std::runtime_error("corrupt redirect rules: " + what);
}

// Whether [first, first + count) lies inside [0, total): written so that it cannot overflow.
bool is_range(std::uint32_t first, std::uint32_t count, std::uint32_t total) noexcept {
  return first <= total && count <= total - first;
}

void check_string(const matcher_areas& areas, std::uint32_t offset, std::uint32_t size,
                  const char* what) {
  if (!is_range(offset, size, areas.string_size)) corrupt(std::string(what) + " outside strings");
}

// Reads the header, checks that the areas it announces fill the blob exactly, and says where
// each starts.
matcher_areas read_header(std::span<const std::byte> blob) {
  if (blob.size() < header_size) corrupt("shorter than its header");
  if (!std::equal(magic.begin(), magic.end(), blob.begin(),
                  [](char c, std::byte b) { return static_cast<std::byte>(c) == b; })) {
    corrupt("no magic");
  }
  const std::byte* at = blob.data() + magic.size();
  const auto next = [&at] {
    const std::uint32_t value = load(at);
    at += 4;
    return value;
  };
  if (next() != format_version) corrupt("unknown version");
  matcher_areas areas;
  for (auto* count :
       {&areas.rule_count, &areas.node_count, &areas.slot_count, &areas.list_count,
        &areas.segment_count, &areas.condition_count, &areas.part_count, &areas.string_size}) {
    *count = next();
  }
  // Each product fits in 64 bits: a count is below 2^32, a record below 64 bytes.
  const std::pair<const std::byte**, std::uint64_t> layout[] = {
      {&areas.rules, std::uint64_t{areas.rule_count} * rule_numbers * 4},
      {&areas.nodes, std::uint64_t{areas.node_count} * node_numbers * 4},
      {&areas.slots, std::uint64_t{areas.slot_count} * slot_numbers * 4},
      {&areas.lists, std::uint64_t{areas.list_count} * 4},
      {&areas.segments, std::uint64_t{areas.segment_count} * segment_numbers * 4},
      {&areas.conditions, std::uint64_t{areas.condition_count} * condition_numbers * 4},
      {&areas.parts, std::uint64_t{areas.part_count} * part_numbers * 4},
      {&areas.strings, std::uint64_t{areas.string_size}},
  };
  std::uint64_t offset = header_size;
  for (const auto& [start, size] : layout) {
    if (size > blob.size() - offset) corrupt("areas pass the end");
    *start = blob.data() + offset;
    offset += size;
  }
  if (offset != blob.size()) corrupt("bytes after the last area");
  return areas;
}

// The segments of a rule: kinds, strings, a splat only last. Returns how many capture.
std::size_t check_segments(const matcher_areas& areas, const rule_record& rule) {
  if (!is_range(rule.segment_first, rule.segment_count, areas.segment_count)) {
    corrupt("segments outside their area");
  }
  if (rule.segment_count > max_pattern_segments) corrupt("too many segments");
  std::size_t captures = 0;
  for (std::uint32_t i = 0; i < rule.segment_count; ++i) {
    const std::uint32_t index = rule.segment_first + i;
    const std::uint32_t kind = number(areas.segments, segment_numbers, index, 0);
    const std::uint32_t offset = number(areas.segments, segment_numbers, index, 1);
    const std::uint32_t size = number(areas.segments, segment_numbers, index, 2);
    check_string(areas, offset, size, "a segment");
    if (kind > static_cast<std::uint32_t>(segment_kind::splat)) corrupt("unknown segment kind");
    if (kind == static_cast<std::uint32_t>(segment_kind::splat) && i + 1 != rule.segment_count) {
      corrupt("a splat before the last segment");
    }
    const std::string_view text = string_at(areas, offset, size);
    if (kind == static_cast<std::uint32_t>(segment_kind::literal) &&
        (text.empty() || text.find('/') != std::string_view::npos)) {
      corrupt("a literal segment that is empty or holds '/'");
    }
    if (kind != static_cast<std::uint32_t>(segment_kind::literal)) ++captures;
  }
  return captures;
}

// The conditions of a rule. Returns how many capture.
std::size_t check_conditions(const matcher_areas& areas, const rule_record& rule) {
  if (!is_range(rule.condition_first, rule.condition_count, areas.condition_count)) {
    corrupt("conditions outside their area");
  }
  std::size_t captures = 0;
  for (std::uint32_t i = 0; i < rule.condition_count; ++i) {
    const std::uint32_t index = rule.condition_first + i;
    const std::uint32_t kind = number(areas.conditions, condition_numbers, index, 0);
    if (kind != condition_equals && kind != condition_binds) corrupt("unknown condition kind");
    check_string(areas, number(areas.conditions, condition_numbers, index, 1),
                 number(areas.conditions, condition_numbers, index, 2), "a condition's name");
    check_string(areas, number(areas.conditions, condition_numbers, index, 3),
                 number(areas.conditions, condition_numbers, index, 4), "a condition's value");
    if (kind == condition_binds) ++captures;
  }
  return captures;
}

// Whether an absolute target's host ends ('/', '?' or '#' after the scheme's "//") before its
// first capture, or the target has none.
bool has_authority_end(const matcher_areas& areas, const rule_record& rule, std::size_t from) {
  for (std::uint32_t i = 0; i < rule.part_count; ++i) {
    const std::uint32_t index = rule.part_first + i;
    if (number(areas.parts, part_numbers, index, 0) != part_literal) return false;
    const std::string_view text = string_at(areas, number(areas.parts, part_numbers, index, 2),
                                            number(areas.parts, part_numbers, index, 3));
    if (text.find_first_of("/?#", i == 0 ? from : 0) != std::string_view::npos) return true;
  }
  return true;
}

// The pieces of a rule's `to`: literals safe in a Location header, starting like a path (or, for
// a redirect, an http(s) URL); captures below `captures`.
void check_parts(const matcher_areas& areas, const rule_record& rule, std::size_t captures) {
  if (!is_range(rule.part_first, rule.part_count, areas.part_count)) {
    corrupt("target parts outside their area");
  }
  for (std::uint32_t i = 0; i < rule.part_count; ++i) {
    const std::uint32_t index = rule.part_first + i;
    const std::uint32_t kind = number(areas.parts, part_numbers, index, 0);
    const std::uint32_t capture = number(areas.parts, part_numbers, index, 1);
    const std::uint32_t offset = number(areas.parts, part_numbers, index, 2);
    const std::uint32_t size = number(areas.parts, part_numbers, index, 3);
    check_string(areas, offset, size, "a target part");
    if (kind == part_literal) {
      const std::string_view text = string_at(areas, offset, size);
      if (!std::all_of(text.begin(), text.end(),
                       [](char c) { return is_url_safe(static_cast<unsigned char>(c)); })) {
        corrupt("a target byte unsafe in a header");
      }
    } else if (kind != part_capture && kind != part_query_capture) {
      corrupt("unknown target part kind");
    } else if (capture >= captures) {
      corrupt("a target capture the rule does not make");
    }
  }
  const bool is_redirect = rule.status != 200 && rule.status != 404;
  const std::string_view first =
      rule.part_count == 0 || number(areas.parts, part_numbers, rule.part_first, 0) != part_literal
          ? std::string_view{}
          : string_at(areas, number(areas.parts, part_numbers, rule.part_first, 2),
                      number(areas.parts, part_numbers, rule.part_first, 3));
  const bool is_path = first.starts_with('/') && !first.starts_with("//");
  const std::size_t scheme = syntax::istarts_with(first, "http://")    ? 7
                             : syntax::istarts_with(first, "https://") ? 8
                                                                       : 0;
  if (!is_path && !(is_redirect && scheme != 0)) corrupt("a target that is not a path or a URL");
  if (scheme != 0 && !has_authority_end(areas, rule, scheme)) {
    corrupt("a capture in a target's host");
  }
}

void check_rule(const matcher_areas& areas, std::uint32_t index) {
  const rule_record rule = load_rule(areas, index);
  if (!is_allowed_status(rule.status)) corrupt("an unknown status");
  if ((rule.flags & ~known_flags) != 0) corrupt("unknown flags");
  check_string(areas, rule.host_offset, rule.host_size, "a host");
  const std::string_view host = string_at(areas, rule.host_offset, rule.host_size);
  if (!std::all_of(host.begin(), host.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == ':';
      })) {
    corrupt("a host with bytes a host name does not have");
  }
  const std::size_t captures = check_segments(areas, rule) + check_conditions(areas, rule);
  if (captures > max_captures) corrupt("too many captures");
  check_parts(areas, rule, captures);
}

// One of a node's lists: inside the lists area, strictly increasing, naming existing rules.
void check_list(const matcher_areas& areas, std::uint32_t first, std::uint32_t count) {
  if (!is_range(first, count, areas.list_count)) corrupt("a node's rules outside the lists");
  std::uint32_t previous = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint32_t rule = load(areas.lists + std::size_t{first + i} * 4);
    if (rule >= areas.rule_count) corrupt("a listed rule that does not exist");
    if (i > 0 && rule <= previous) corrupt("a node's rules out of order");
    previous = rule;
  }
}

void check_nodes(const matcher_areas& areas) {
  if (areas.node_count == 0) corrupt("no root node");
  for (std::uint32_t node = 0; node < areas.node_count; ++node) {
    const auto at = [&](std::size_t n) { return number(areas.nodes, node_numbers, node, n); };
    if (at(0) >= areas.node_count) corrupt("a placeholder edge to a node that does not exist");
    check_list(areas, at(1), at(2));
    check_list(areas, at(3), at(4));
  }
}

// Each edge must be where a lookup finds it: no free slot between its hash's slot and its own.
// Notes whether there are host roots, which lookups then look for.
// `run` counts the taken slots in a row up to the current one; starting after a free slot (the
// table always has one) makes it exact even where the run wraps.
void check_slots(matcher_areas& areas) {
  const std::uint32_t count = areas.slot_count;
  if (count == 0 || (count & (count - 1)) != 0) corrupt("slot count not a power of two");
  const auto parent_of = [&](std::uint32_t slot) {
    return number(areas.slots, slot_numbers, slot, 1);
  };
  std::uint32_t free_slot = 0;
  while (free_slot < count && parent_of(free_slot) != empty_slot) ++free_slot;
  if (free_slot == count) corrupt("no free slot");
  std::uint32_t run = 0;
  for (std::uint32_t step = 1; step <= count; ++step) {
    const std::uint32_t slot = (free_slot + step) & (count - 1);
    const std::uint32_t parent = parent_of(slot);
    if (parent == empty_slot) {
      run = 0;
      continue;
    }
    ++run;
    const std::uint32_t hash = number(areas.slots, slot_numbers, slot, 0);
    const std::uint32_t child = number(areas.slots, slot_numbers, slot, 2);
    const std::uint32_t offset = number(areas.slots, slot_numbers, slot, 3);
    const std::uint32_t size = number(areas.slots, slot_numbers, slot, 4);
    check_string(areas, offset, size, "an edge's segment");
    if (parent >= areas.node_count || child >= areas.node_count || child == 0) {
      corrupt("an edge between nodes that do not exist");
    }
    const std::string_view text = string_at(areas, offset, size);
    if (hash != edge_hash(parent, text)) corrupt("an edge's hash");
    if (parent == 0 && text.starts_with(host_edge_mark)) areas.has_hosts = true;
    if (((slot - hash) & (count - 1)) >= run) corrupt("an edge out of its hash's reach");
  }
}

// ---- matching -----------------------------------------------------------------------------------

struct captured {
  std::array<std::string_view, max_captures> values{};
  std::size_t from_path = 0;  // values before this come from the path (decoded), after from
                              // the query (raw)
};

// Whether the raw (percent-encoded) `raw` decodes to `plain`.
bool decodes_to(std::string_view raw, std::string_view plain) noexcept {
  std::size_t j = 0;
  for (std::size_t i = 0; i < raw.size(); ++i, ++j) {
    unsigned char c = static_cast<unsigned char>(raw[i]);
    if (syntax::is_escape_at(raw, i)) {
      c = syntax::escaped_byte(raw, i);
      i += 2;
    }
    if (j == plain.size() || static_cast<unsigned char>(plain[j]) != c) return false;
  }
  return j == plain.size();
}

// The raw value of the first parameter of `query` whose name decodes to `name`.
std::optional<std::string_view> query_value(std::string_view query,
                                            std::string_view name) noexcept {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view parameter = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::size_t equals = parameter.find('=');
    if (!decodes_to(parameter.substr(0, equals), name)) continue;
    return equals == std::string_view::npos ? std::string_view{} : parameter.substr(equals + 1);
  }
  return std::nullopt;
}

bool conditions_hold(const matcher_areas& areas, const rule_record& rule, std::string_view query,
                     captured& found) noexcept {
  std::size_t next = found.from_path;
  for (std::uint32_t i = 0; i < rule.condition_count; ++i) {
    const std::uint32_t index = rule.condition_first + i;
    const auto at = [&](std::size_t n) {
      return number(areas.conditions, condition_numbers, index, n);
    };
    const auto value = query_value(query, string_at(areas, at(1), at(2)));
    if (!value) return false;
    if (at(0) == condition_binds) {
      found.values[next++] = *value;
    } else if (!decodes_to(*value, string_at(areas, at(3), at(4)))) {
      return false;
    }
  }
  return true;
}

bool rule_matches(const matcher_areas& areas, std::uint32_t index, const redirect_request& request,
                  bool ignore_query, captured& found) noexcept {
  const rule_record rule = load_rule(areas, index);
  const blob_segments segments(areas, rule);
  if (!match_path(segments, (rule.flags & flag_trailing_slash) != 0, request.path, found.values)) {
    return false;
  }
  if (rule.host_size != 0 &&
      !host_matches(string_at(areas, rule.host_offset, rule.host_size), request.host)) {
    return false;
  }
  if (ignore_query) return true;
  found.from_path = 0;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].kind != segment_kind::literal) ++found.from_path;
  }
  return conditions_hold(areas, rule, request.query, found);
}

std::optional<std::uint32_t> child_of(const matcher_areas& areas, std::uint32_t node,
                                      std::string_view segment) noexcept {
  const std::uint32_t mask = areas.slot_count - 1;
  const std::uint32_t hash = edge_hash(node, segment);
  // At most every slot once: the table has a free slot, but this bound does not rely on it.
  for (std::uint32_t probe = 0, slot = hash & mask; probe < areas.slot_count;
       ++probe, slot = (slot + 1) & mask) {
    const auto at = [&](std::size_t n) { return number(areas.slots, slot_numbers, slot, n); };
    if (at(1) == empty_slot) return std::nullopt;
    if (at(0) == hash && at(1) == node && string_at(areas, at(3), at(4)) == segment) return at(2);
  }
  return std::nullopt;
}

// The forms of a request's host a rule may name: as sent, and without its port (empty when it
// has none).
std::array<std::string_view, 2> host_forms(std::string_view host) noexcept {
  const std::string_view bare = host_without_port(host);
  return {host, bare.size() == host.size() ? std::string_view{} : bare};
}

// The lists of rules a lookup tries, gathered by walking the trie; bounded, on the stack.
// When the walk meets more nodes or lists than it has room for (only rules written to defeat
// the trie can make it), it gives up and the lookup tries every rule in order instead.
class candidate_lists {
 public:
  explicit candidate_lists(const matcher_areas& areas) noexcept : areas_(areas) {}

  // Walks `path` from the root and, unless `host` is empty, from the roots of the host's
  // forms a rule may name; false when it ran out of room.
  bool gather(std::string_view path, std::string_view host) noexcept {
    std::array<std::uint32_t, max_walk_nodes> walk{0};
    std::size_t walk_size = 1;
    std::size_t position = 1;
    bool at_end = position >= path.size();
    if (!visit(0, at_end)) return false;
    std::array<char, 1 + max_host_size> edge{host_edge_mark};
    for (const auto form : areas_.has_hosts ? host_forms(host) : host_forms({})) {
      if (form.empty() || form.size() >= edge.size()) continue;
      std::transform(form.begin(), form.end(), edge.begin() + 1, syntax::to_lower);
      const auto root = child_of(areas_, 0, std::string_view(edge.data(), form.size() + 1));
      if (!root) continue;
      if (!visit(*root, at_end)) return false;
      walk[walk_size++] = *root;
    }
    for (std::size_t depth = 0; depth < max_trie_depth && !at_end; ++depth) {
      const std::size_t end = std::min(path.find('/', position), path.size());
      if (end == position) break;  // "/a/": the empty segment after a trailing slash
      const std::string_view segment = path.substr(position, end - position);
      position = end + 1;
      at_end = position >= path.size();
      std::array<std::uint32_t, max_walk_nodes> next{};
      std::size_t next_size = 0;
      for (std::size_t k = 0; k < walk_size; ++k) {
        const auto literal = child_of(areas_, walk[k], segment);
        const std::uint32_t placeholder = number(areas_.nodes, node_numbers, walk[k], 0);
        for (const std::uint32_t child : {literal.value_or(0), placeholder}) {
          if (child == 0) continue;
          if (next_size == next.size() || !visit(child, at_end)) return false;
          next[next_size++] = child;
        }
      }
      walk = next;
      walk_size = next_size;
      if (walk_size == 0) break;
    }
    return true;
  }

  // The next rule in rule order across the lists; none when all are done.
  std::optional<std::uint32_t> next() noexcept {
    std::size_t best = count_;
    std::uint32_t best_rule = std::numeric_limits<std::uint32_t>::max();
    for (std::size_t k = 0; k < count_; ++k) {
      if (lists_[k].left == 0) continue;
      const std::uint32_t rule = load(lists_[k].next);
      if (rule < best_rule) {
        best_rule = rule;
        best = k;
      }
    }
    if (best == count_) return std::nullopt;
    lists_[best].next += 4;
    --lists_[best].left;
    return best_rule;
  }

 private:
  static constexpr std::size_t max_walk_nodes = 16;
  static constexpr std::size_t max_lists = 64;

  // Adds the node's "below" list, and its "ends" list when the path ends there.
  bool visit(std::uint32_t node, bool at_end) noexcept {
    const auto at = [&](std::size_t n) { return number(areas_.nodes, node_numbers, node, n); };
    return (!at_end || add(at(1), at(2))) && add(at(3), at(4));
  }

  bool add(std::uint32_t first, std::uint32_t count) noexcept {
    if (count == 0) return true;
    if (count_ == lists_.size()) return false;
    lists_[count_++] = {areas_.lists + std::size_t{first} * 4, count};
    return true;
  }

  struct cursor {
    const std::byte* next;
    std::uint32_t left;
  };
  const matcher_areas& areas_;
  std::array<cursor, max_lists> lists_{};
  std::size_t count_ = 0;
};

// The first rule, in rule order, that matches: among the rules listed at the nodes the path's
// walk reaches, or among all of them when the walk ran out of room. No allocation.
std::optional<std::uint32_t> find_rule(const matcher_areas& areas, const redirect_request& request,
                                       bool ignore_query, captured& found) noexcept {
  candidate_lists lists(areas);
  if (!lists.gather(request.path, request.host)) {
    for (std::uint32_t rule = 0; rule < areas.rule_count; ++rule) {
      if (rule_matches(areas, rule, request, ignore_query, found)) return rule;
    }
    return std::nullopt;
  }
  while (const auto rule = lists.next()) {
    if (rule_matches(areas, *rule, request, ignore_query, found)) return rule;
  }
  return std::nullopt;
}

// Appends a captured value: decoded first when it comes from the query, then encoded for where
// it goes, so that it stays one path piece or one parameter value. A '/' right after a '/' is
// encoded: "/:q" with q=%2Fexample.net must not become "//example.net", another host.
void append_capture(std::string& out, std::string_view value, bool from_query, bool in_query) {
  for (std::size_t i = 0; i < value.size(); ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    if (from_query && syntax::is_escape_at(value, i)) {
      c = syntax::escaped_byte(value, i);
      i += 2;
    }
    const bool splits_query = c == '&' || c == '=' || c == '+';
    const bool doubles_slash = c == '/' && !out.empty() && out.back() == '/';
    if (http::is_kept_by_encode_path(c) && !(in_query && splits_query) && !doubles_slash) {
      out += static_cast<char>(c);
    } else {
      append_escape(out, c);
    }
  }
}

void build_target(const matcher_areas& areas, const rule_record& rule,
                  const redirect_request& request, const captured& found, std::string& out) {
  out.clear();
  for (std::uint32_t i = 0; i < rule.part_count; ++i) {
    const std::uint32_t index = rule.part_first + i;
    const auto at = [&](std::size_t n) { return number(areas.parts, part_numbers, index, n); };
    if (at(0) == part_literal) {
      out += string_at(areas, at(2), at(3));
      continue;
    }
    const std::uint32_t capture = at(1);
    append_capture(out, found.values[capture], capture >= found.from_path,
                   at(0) == part_query_capture);
  }
  const bool is_redirect = rule.status != 200 && rule.status != 404;
  if (is_redirect && (rule.flags & flag_keeps_query) != 0 && !request.query.empty()) {
    out += '?';
    append_url_safe(out, request.query);
  }
}

}  // namespace

std::vector<std::byte> compile_matcher(std::span<const redirect_rule> rules) {
  matcher_writer writer;
  for (const auto& rule : rules) writer.add(rule);
  return writer.finish();
}

redirect_matcher::redirect_matcher(std::span<const std::byte> blob) : areas_(read_header(blob)) {
  for (std::uint32_t rule = 0; rule < areas_.rule_count; ++rule) check_rule(areas_, rule);
  check_nodes(areas_);
  check_slots(areas_);
}

bool redirect_matcher::match(const redirect_request& request, redirect_match& out) const {
  captured found;
  const auto rule = find_rule(areas_, request, false, found);
  if (!rule) return false;
  const rule_record record = load_rule(areas_, *rule);
  out.rule = *rule;
  out.line = record.line;
  out.status = record.status;
  out.force = (record.flags & flag_force) != 0;
  build_target(areas_, record, request, found, out.target);
  return true;
}

std::optional<std::uint32_t> redirect_matcher::first_path_match(
    std::string_view path, std::string_view host) const noexcept {
  captured found;
  return find_rule(areas_, {host, path, {}}, true, found);
}

std::vector<rule_kind> classify_rules(std::span<const redirect_rule> rules) {
  std::vector<redirect_rule> patterns;
  std::vector<std::size_t> pattern_index;  // by pattern: its index in `rules`
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].is_plain()) continue;
    patterns.push_back(rules[i]);
    patterns.back().host.clear();  // a domain-level rule moves plain rules on any host
    pattern_index.push_back(i);
  }
  const auto blob = compile_matcher(patterns);
  const redirect_matcher matcher(blob);
  // Plain rules moved to the matcher need not be looked at: whatever pattern moved one for "/a"
  // or "/a/" also matches a later plain rule's "/a", as no pattern matches "/a/" but not "/a".
  std::vector<rule_kind> kinds(rules.size(), rule_kind::pattern);
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (!rules[i].is_plain()) continue;
    const auto paths = plain_paths(rules[i]);
    const bool shadowed = std::any_of(paths.begin(), paths.end(), [&](const std::string& path) {
      const auto first = matcher.first_path_match(path);
      return first && pattern_index[*first] < i;
    });
    if (!shadowed) kinds[i] = rule_kind::plain;
  }
  return kinds;
}

}  // namespace kawipiko::archive
