#pragma once
// `_headers`, in the format Netlify and Cloudflare Pages share, parsed into blocks for the
// archiver; and the headers those blocks give one path, which the builder writes into that
// path's stored header blocks.
//
// A block is a path line, not indented: a pattern (rule_syntax.hpp: "/a", "/a/", "/:lang/x",
// "/docs/*"), maybe with an "https://host" prefix; then indented lines (spaces or tabs), each
// `Name: value` or `! Name`. Blank lines and lines whose first non-blank byte is '#' are skipped.
//
// For a path, every block that matches it applies, in file order. Its `! Name` lines remove that
// header as earlier blocks gave it (Cloudflare Pages), and the server's default of that name;
// then its `Name: value` lines add: a name given before gets ", value" appended (Netlify), in the
// place it first had. Exceptions, where a list would not be valid: the later value replaces for
// Content-Type, X-Frame-Options, X-Content-Type-Options, Strict-Transport-Security,
// Access-Control-Allow-Origin and Location; Set-Cookie stays one line per value.
//
// Refused, with the file and line (rules_error): a header line before any path line, a line
// that is neither, a name that is not a token, a name the server owns (Content-Length,
// Content-Encoding, Content-Range, Transfer-Encoding, Connection, Date, ETag, Vary, and
// Keep-Alive, Upgrade, TE, Trailer, Accept-Ranges), a value with a control byte other than a tab
// (CR, LF, NUL...), and a value, given or combined, longer than max_value_size.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "archive/rule_syntax.hpp"

namespace kawipiko::archive {

// The longest header value `_headers` may give (one line's, or several combined): 8 KiB, well
// under the archive's 64 KiB per header block and any client's header limits.
inline constexpr std::size_t max_value_size = 8 * 1024;

// Whether a `_headers` value for `name` replaces a header the server or the archiver writes by
// default (Cache-Control, Content-Type, and the security headers X-Content-Type-Options,
// Referrer-Policy, X-Frame-Options, Strict-Transport-Security): the builder then leaves its own
// out. Any case.
[[nodiscard]] bool replaces_default(std::string_view name) noexcept;

struct header_field {
  std::string name;  // as written
  std::string value;
};

struct header_block {
  std::size_t line = 0;  // of the path line
  std::string host;      // lower case; empty: any host
  path_pattern path;
  std::vector<header_field> fields;   // `Name: value`, in order
  std::vector<std::string> removals;  // `! Name`, in order
};

// What the blocks give one path.
struct path_headers {
  std::vector<header_field> fields;           // in the order names first appeared
  std::vector<std::string> removed_defaults;  // removed defaults (replaces_default) no block
                                              // gave again: the builder leaves them out too
  std::vector<std::size_t> lines;             // the path lines of the blocks that matched
};

class header_rules {
 public:
  header_rules() = default;
  // Parses a whole `_headers` text; `file` names it in errors. Throws rules_error for the first
  // line at fault.
  header_rules(std::string_view text, std::string_view file);

  [[nodiscard]] const std::vector<header_block>& blocks() const noexcept { return blocks_; }

  // The headers for a request `path` (normalized) on `host` (empty: blocks with a host do not
  // apply). Throws rules_error, naming the path line of the block at fault, when a combined
  // value passes max_value_size.
  [[nodiscard]] path_headers for_path(std::string_view path, std::string_view host = {}) const;

 private:
  std::string file_;
  std::vector<header_block> blocks_;
};

}  // namespace kawipiko::archive
