#pragma once
// The `_redirects` and `_headers` of one site (the whole of the sources, or one host folder),
// compiled against the paths the site archives, for the builder (internal to lib/archive): which
// paths the rules answer and how, which archived paths forced rules take over, the pattern rules
// left for the serve-time matcher, and the lines, overrides and flags each path's `_headers` give
// its stored header blocks.
//
// Decisions (README.rst says them to users):
// - "A file exists at `from`" (shadowing) means the path has an entry of the archive's own: a
//   file, a folder index, an extension-less alias, or a slash redirect (which leads to one).
// - Plain rules (classify_rules) become entries of their own where no such entry is; the first
//   rule for a path wins. A 200 or 404 rewrite must name a file of the site (or a folder with an
//   index); one that does not is refused.
// - Forced rules replace the entries of the archived paths they match, computed here with the
//   matcher itself, unless one of them has a host or a query condition: then no entry can hold
//   the answer, and the archived paths any forced rule could match are flagged for the
//   serve-time forced rules instead (schema.hpp: the "forced rules" flag).
// - `_headers` apply by the request path an entry answers: a rewrite entry gets the headers of
//   its `from`, a fallback those of its own file. A host in a block's path line must be the
//   site's own (host folders): an entry is the same for every host that reaches the site.

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "archive/header_rules.hpp"
#include "archive/redirect_rules.hpp"

namespace kawipiko::archive {

// What answers one request path, before it is encoded as an entry.
struct route {
  unsigned status = 200;      // 200 or 404: `item`'s variants; otherwise a redirect
  std::size_t item = 0;       // the work item whose variants are served
  std::string location;       // a redirect's Location, safe in a header
  bool keeps_query = false;   // a redirect: the request's query is appended to the Location
  bool archived = false;      // the site's own (a file, index, alias, slash redirect): it
                              // shadows the rules that are not forced
  bool forced_rules = false;  // the serve-time forced rules are tried first
  std::size_t rule_line = 0;  // the `_redirects` line it comes from (flagged: the first
                              // forced rule that may answer it); 0: none

  [[nodiscard]] bool is_redirect() const noexcept { return status != 200 && status != 404; }
};

using route_map = std::map<std::string, route>;  // by request path

// What a path's `_headers` blocks give its stored header blocks.
struct compiled_headers {
  std::string lines;               // "Name: value\r\n" lines, other than the two below
  std::string location_line;       // a `Location`, kept out of redirect entries (theirs wins)
  bool has_cache_control = false;  // a Cache-Control of its own replaces the archive's
  std::string cache_control;
  bool has_content_type = false;  // likewise for Content-Type
  std::string content_type;
  bool drop_cache_control = false;  // `! Cache-Control`: none at all
  bool drop_content_type = false;
  unsigned flags = 0;                    // schema::entry_flags: the server defaults left out
  std::vector<std::size_t> block_lines;  // the path lines of the blocks that apply
};

// The matcher blobs a site's rules leave for the server (empty: none).
struct rule_blobs {
  std::vector<std::byte> patterns;  // schema: "rules:<host>"
  std::vector<std::byte> forced;    // schema: "forced-rules:<host>"
  std::size_t pattern_count = 0;
};

class site_rules {
 public:
  site_rules() = default;  // no rules files
  // Reads and parses the rules files of a site of `host` (empty: the one site of an archive);
  // an empty file name means that file is absent. Throws rules_error naming the file and the line,
  // and std::system_error when a file cannot be read.
  site_rules(const std::string& redirects_file, const std::string& headers_file,
             std::string_view host);

  // Applies the `_redirects` rules to `routes`, which holds the archived paths (`archived`),
  // as the decisions above say, and returns the pattern and forced rules for the server.
  // Throws rules_error for a rewrite whose target is not a file of the site and for a forced
  // redirect of a path to itself.
  rule_blobs apply_redirects(route_map& routes) const;

  // What the `_headers` blocks give `path`. Throws rules_error when a combined value grows too
  // long.
  [[nodiscard]] compiled_headers headers_for(std::string_view path) const;

  // The error for a path whose header block, with what its blocks add, passes 64 KiB.
  [[nodiscard]] rules_error oversized_block(std::string_view path,
                                            const compiled_headers& headers) const;

  [[nodiscard]] bool empty() const noexcept { return rules_.empty() && headers_.blocks().empty(); }

 private:
  route answer_of(const redirect_rule& rule, std::string_view target,
                  const route_map& archived) const;
  void fold_forced(route_map& routes, const route_map& archived) const;
  void flag_forced(route_map& routes) const;

  std::string redirects_file_;
  std::string headers_file_;
  std::string host_;
  std::vector<redirect_rule> rules_;
  header_rules headers_;
  std::vector<std::size_t> forced_;  // the forced rules' indexes in rules_
  bool conditional_forced_ = false;  // one of them has a host or a query condition
};

}  // namespace kawipiko::archive
