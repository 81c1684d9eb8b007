#pragma once
// `_redirects`, in the format Netlify, Cloudflare Pages and GitLab Pages share, parsed into rules
// for the archiver. Which rules become entries and which are matched at serve time, and the
// matcher itself, are redirect_matcher.hpp's.
//
// One rule per line; blank lines and lines starting with '#' are skipped, and a word starting
// with '#' ends a line. Words are separated by spaces or tabs:
//   from [name=value]... to [status[!]] [condition]...
// - from: a path pattern (rule_syntax.hpp: "/a", "/a/", "/news/:year/*"), or one with a host,
//   "https://old.example.com/*" (a domain-level rule: the builder decides whether it may be used).
// - name=value: a query condition: the request's query must hold the parameter `name`, with the
//   value `value`, or with any value when it is ":placeholder" (which binds it). Names and values
//   are compared percent-decoded; '+' is not read as a space. A rule with query conditions does
//   not pass the request's query on; other redirects do, unless `to` has a query of its own.
// - to: a path ("/blog/:year-:slug.html") or an absolute http(s) URL. ":name" substitutes what
//   `from` bound (":splat" the splat); a name is a letter or '_' then letters, digits and '_',
//   taken whole (":slug.html" substitutes "slug"). Placeholders may not stand in the host.
// - status: 301 (the default), 302, 303, 307 or 308 redirect; 200 serves `to`'s content under
//   `from`'s URL; 404 serves `to`'s content with status 404. A final '!' forces the rule: it then
//   applies even where a file exists at `from`.
// - conditions after the status (Netlify's `Country=`, `Language=`, `Role=`, `Cookie=`) need a
//   visitor's location, language, identity or cookies, which a static server does not have: they
//   are refused by name, and so is any other `Name=value` there.
// Refused, with the file and line (rules_error): an unknown status, a `to` that is neither a
// path nor an http(s) URL, a 200 or 404 to an absolute URL (that would be a proxy), a `to` using a
// placeholder `from` does not bind, a malformed line or pattern, and a redirect loop visible
// statically: a plain `from` redirecting to itself, or plain rules redirecting in a cycle.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "archive/rule_syntax.hpp"

namespace kawipiko::archive {

struct query_condition {
  std::string name;   // decoded
  std::string value;  // binds: the placeholder's name; otherwise the decoded value required
  bool binds = false;
};

struct redirect_rule {
  std::size_t line = 0;
  std::string host;  // a domain-level rule's host, lower case; empty: any host
  path_pattern from;
  std::vector<query_condition> query;
  // As written, with the bytes that are not safe in a Location header percent-encoded (existing
  // escapes are kept); ":name" placeholders in it stand as written.
  std::string to;
  unsigned status = 301;
  bool force = false;

  [[nodiscard]] bool is_redirect() const noexcept { return status != 200 && status != 404; }
  // `to` is an http(s) URL rather than a path.
  [[nodiscard]] bool is_absolute() const noexcept;
  // No host, no query condition and a literal `from`: the rule answers fixed paths.
  [[nodiscard]] bool is_plain() const noexcept;
  // Whether the request's query is appended to a redirect's Location: `to` has no '?' nor '#',
  // and the rule has no query condition (one that matches on the query uses what it needs, as
  // Netlify does).
  [[nodiscard]] bool keeps_query() const noexcept;
};

// Parses a whole `_redirects` text; `file` names it in errors. Rules are in file order (the first
// that matches wins). Throws rules_error for the first line at fault.
[[nodiscard]] std::vector<redirect_rule> parse_redirects(std::string_view text,
                                                         std::string_view file);

// The request paths a plain rule answers: its path, and the slashed one when `from` ends in '/'
// ("/a/" answers "/a" and "/a/"; "/" answers "/").
[[nodiscard]] std::vector<std::string> plain_paths(const redirect_rule& rule);

// A piece of a rule's `to`: literal text, or a placeholder to substitute.
struct target_part {
  bool is_placeholder = false;
  std::string text;       // the literal text, or the placeholder's name ("splat" for '*')
  bool in_query = false;  // after the first '?' or '#' of `to`: substituted values are encoded so
                          // that they stay one parameter value
};

// Splits a `to` into its literal text and its ":name" placeholders.
[[nodiscard]] std::vector<target_part> split_target(std::string_view to);

// Appends `text` to `out` with every byte that is not safe raw in a Location header
// percent-encoded: controls, space, bytes >= 0x80 and '"', '<', '>', '\\', '^', '`', '{', '|',
// '}'; a '%' starting a valid escape is kept, any other '%' is encoded. Used on `to` and on the
// query a redirect keeps.
void append_url_safe(std::string& out, std::string_view text);

// Appends "%XX" (upper-case hex) for the byte `c`.
void append_escape(std::string& out, unsigned char c);

// Whether append_url_safe keeps the byte `c` raw (a '%' only when it starts an escape).
[[nodiscard]] bool is_url_safe(unsigned char c) noexcept;

// The name a rule's captures are known by in `to`, in capture order: `from`'s placeholders and
// splat ("splat") in segment order, then the query conditions that bind.
[[nodiscard]] std::vector<std::string> capture_names(const redirect_rule& rule);

}  // namespace kawipiko::archive
