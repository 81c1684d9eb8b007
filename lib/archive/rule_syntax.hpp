#pragma once
// What `_redirects` and `_headers` (redirect_rules.hpp, header_rules.hpp) share: the error that
// names the file and the line, the path patterns both write (literal segments, `:placeholder`
// segments, a final `*`), the `https://host` prefix of a domain-level pattern, and matching a
// pattern against a request path. Parsing is the archiver's (cold, throws); matching runs at
// serve time too (redirect_matcher.hpp) and allocates nothing.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kawipiko::archive {

// A line of a rules file that the archiver refuses. what() is the one line users see:
// "'<file>' line <n>: <reason>".
class rules_error : public std::runtime_error {
 public:
  rules_error(std::string_view file, std::size_t line, std::string_view reason);

  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  [[nodiscard]] std::size_t line() const noexcept { return line_; }
  [[nodiscard]] const std::string& reason() const noexcept { return reason_; }

 private:
  std::string file_;
  std::size_t line_;
  std::string reason_;
};

// Calls `visit(line, number)` for each line of a rules file, numbered from 1, without its '\n'
// and a '\r' before it; a last line without '\n' counts.
template <class Visit>
void for_each_line(std::string_view text, Visit&& visit) {
  for (std::size_t number = 1; !text.empty(); ++number) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    visit(line, number);
  }
}

enum class segment_kind : std::uint8_t { literal, placeholder, splat };

struct pattern_segment {
  segment_kind kind = segment_kind::literal;
  std::string text;  // literal: the segment percent-decoded; placeholder: its name; splat: empty
};

// Bounds that keep a match's state on the stack: segments of one pattern, and the values one
// rule captures (its placeholders, its splat and, for redirects, its query bindings).
inline constexpr std::size_t max_pattern_segments = 64;
inline constexpr std::size_t max_captures = 16;

// A path pattern, as `from` and `_headers` path lines write it:
// - "/a/b" matches the path "/a/b" only; "/a/b/" (a trailing slash) matches "/a/b" and "/a/b/";
// - ":name" is a whole segment and matches any non-empty segment, binding it;
// - "*" is the whole last segment and matches the rest of the path, possibly empty, trailing
//   slash included: "/news/*" matches "/news", "/news/", "/news/a/b/" (binding "", "", "a/b/").
// Literal segments are compared with the request's decoded, normalized path (http/target.hpp),
// byte for byte: "%C3%A9" and a raw "é" in a pattern are the same segment.
struct path_pattern {
  std::vector<pattern_segment> segments;
  bool trailing_slash = false;  // written with a final '/' ("/" itself has one)

  // No placeholder and no splat: the pattern matches its own path (and the slashed one) only.
  [[nodiscard]] bool is_literal() const noexcept;
  // Placeholders plus the splat.
  [[nodiscard]] std::size_t capture_count() const noexcept;
  // The decoded path of a literal pattern without its trailing slash ("/" for the root).
  [[nodiscard]] std::string literal_path() const;
};

// The longest host (with its port) a domain-level pattern may name: a DNS name's 253 bytes and
// a port.
inline constexpr std::size_t max_host_size = 260;

// A pattern with the host of a domain-level rule.
struct located_pattern {
  std::string host;  // lower case, with its ":port" if written; empty: any host
  path_pattern path;
};

// Parses "/a/:b/*" or "http(s)://host[:port]/a/*" ("https://host" alone is its root). Throws
// rules_error naming `file` and `line`: no leading '/', an empty, "." or ".." segment, '*' that is
// not the whole last segment, a placeholder that is not a whole segment or a valid name (a
// letter or '_', then letters, digits, '_'), a name bound twice, ":splat" (the splat is "*"), a
// malformed percent-escape, an escaped '/' or control byte, '?' or '#', more than
// max_pattern_segments segments or max_captures captures, or a bad or too long host.
[[nodiscard]] located_pattern parse_located_pattern(std::string_view text, std::string_view file,
                                                    std::size_t line);

// `text` with its percent-escapes decoded; none if a '%' does not start one ("%4", "%zz").
[[nodiscard]] std::optional<std::string> percent_decode(std::string_view text);

// Whether `name` is a placeholder name: a letter or '_', then letters, digits or '_'.
[[nodiscard]] bool is_placeholder_name(std::string_view name) noexcept;

// `host` without its ":port": up to the last ':' that follows any ']' of an IPv6 literal.
[[nodiscard]] std::string_view host_without_port(std::string_view host) noexcept;

// Whether a request for `request_host` (a Host value: any case, maybe with ":port") is on
// `rule_host` (lower case): equal ignoring case, and a port is compared only if the rule names one.
[[nodiscard]] bool host_matches(std::string_view rule_host, std::string_view request_host) noexcept;

// Whether `path` (a normalized request path: it starts with '/') matches the pattern made of
// `segments` (any contiguous range whose elements have `kind` and a `text` comparable with a
// string_view) and `trailing_slash`. On a match, `captures` holds the captured values in segment
// order, as views into `path`; false when `captures` is too small. No allocation.
template <class Segments>
[[nodiscard]] bool match_path(const Segments& segments, bool trailing_slash, std::string_view path,
                              std::span<std::string_view> captures) noexcept {
  if (path.empty() || path.front() != '/') return false;
  std::size_t position = 1;
  std::size_t captured = 0;
  bool slash_after = true;  // whether the last segment consumed was followed by '/'
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const auto& segment = segments[i];
    if (captured == captures.size() && segment.kind != segment_kind::literal) return false;
    if (segment.kind == segment_kind::splat) {
      captures[captured] = path.substr(position);
      return true;  // the splat is the last segment
    }
    if (position >= path.size()) return false;
    const std::size_t slash = path.find('/', position);
    const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
    const std::string_view text = path.substr(position, end - position);
    if (text.empty()) return false;
    if (segment.kind == segment_kind::literal) {
      if (text != segment.text) return false;
    } else {
      captures[captured++] = text;
    }
    slash_after = end < path.size();
    position = slash_after ? end + 1 : end;
  }
  return position == path.size() && (!slash_after || trailing_slash);
}

// The same with a parsed pattern.
[[nodiscard]] inline bool match_path(const path_pattern& pattern, std::string_view path,
                                     std::span<std::string_view> captures) noexcept {
  return match_path(pattern.segments, pattern.trailing_slash, path, captures);
}

}  // namespace kawipiko::archive
