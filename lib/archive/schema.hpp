#pragma once
// The archive's key layout: the only place it is defined (README.rst copies it for users).
// An archive is a standard djb CDB file; keys and values are plain enough that `cdb -d` shows
// them readably.
//
// Keys
//   kawipiko:schema          "kawipiko-archive/3" (one site), or "kawipiko-archive/4" (host
//                            folders, below); the server also reads the schemas before the
//                            entry head had its flags, "kawipiko-archive/1" and "/2" (their
//                            heads are "SSS N\n"; a 308 of theirs keeps the request's query), and
//                            refuses any other value. Servers older than schema 3 refuse these:
//                            they would answer a rule's status with a 500 and ignore the flags
//   kawipiko:meta            "name=value" lines: settings and counts of the build
//   kawipiko:paths           every request path that has an entry, one per line, sorted
//                            (left out with --exclude-file-listing)
//   /<request path>          an entry: everything needed to answer GET/HEAD for that path
//                            (files, folder indexes "/docs/", aliases "/about", redirects)
//   fallback:/<folder>/      an entry answering paths under that folder that have none of their
//                            own: a `_wildcard.*` file (200) or a `_404.html`/`404.html` (404);
//                            the server walks up from the deepest folder
//   rules:<host>             the site's `_redirects` pattern rules (those no entry answers),
//                            compiled for the serve-time matcher (redirect_matcher.hpp gives the
//                            bytes); <host> is empty for one site, the host folder's name with
//                            host folders. Absent when the site has none. The server tries them
//                            after a path's lookup misses, before the fallbacks
//   forced-rules:<host>      the site's forced rules (`!`), in the same format, when one of them
//                            has a host or a query condition, so that no entry can hold its
//                            answer: entries flagged "forced rules" try these first (below)
//   body:<sha256>:<coding>   a body, stored once per distinct content: <sha256> is the hex
//                            SHA-256 of the source file; <coding> is "identity", "gzip-<level>"
//                            or "br-<level>". Entries point at bodies by file position, so a
//                            request costs one lookup; the keys exist for rebuilds (a rebuild
//                            reuses compressed bodies whose source hash and setting match)
//   skip:<sha256>:<coding>   empty: that compression was tried and not worth keeping
//
// Host folders (schema 2, `kawipiko archive --host-folders`): each top-level folder of the
// sources is the site of one host, "example.com" or "*.example.com" (lower case), or "_default"
// for hosts that match none. Each host's keys are the ones above with the host in front of the
// path: "<host>/<request path>" ("example.com/docs/") and "fallback:<host>/<folder>/"; the
// `kawipiko:paths` lines are those keys; bodies and skip marks stay as they are, shared by every
// host (one content is stored once whichever hosts publish it). Redirect Locations stay paths
// within the host. One more key:
//   kawipiko:hosts           the hosts, one per line, sorted as their keys are (bytewise by
//                            "<host>/", so that `kawipiko:paths` stays sorted); "_default"
//                            among them when that folder exists
// fallback-depth in the meta is the deepest of every host's.
//
// Entry value ("200 2 00\n" then one descriptor line per variant, then the header blocks):
//   <status:3 digits> <variant count:1 digit> <flags:2 hex>\n
// Statuses: 200 (a file, or a rewrite serving a file's variants), 404 (an error page, or a 404
// rewrite), 301, 302, 303, 307, 308 (redirects). Flags, or-ed:
//   01  keeps the query: a redirect whose Location gets "?<the request's query>" appended (slash
//       redirects, and rules whose `to` has no query of its own)
//   02  forced rules: an archived path that a forced rule with a host or a query condition may
//       answer instead; the server tries the site's forced-rules blob first
//   10, 20, 40, 80  the path's `_headers` give their own X-Content-Type-Options,
//       Referrer-Policy, X-Frame-Options, Strict-Transport-Security (or remove it): the server
//       leaves its default of that header out
//   per variant, fixed width (45 bytes):
//   <coding:8, space padded> <body position:8 hex> <body length:8 hex> <block length:4 hex>
//   <304 length:4 hex> <partial length:4 hex> <etag length:2 hex>\n
//   then the variants' header blocks, concatenated in descriptor order.
// Variants are ordered identity, gzip, br; identity is always present. Each header block is
// "Name: value\r\n" lines, in this order so that prefixes serve each kind of response:
//   ETag, Cache-Control, Vary, `_headers` lines -> the first <304 length> bytes (304 responses)
//   Content-Type, Content-Encoding              -> the first <partial length> bytes (206)
//   Content-Length                              -> the whole block (200, 404)
// The ETag value (quotes included) is <etag length> bytes at offset 6 ("ETag: " is 6 bytes).
// A `_headers` Cache-Control or Content-Type takes the place of the archive's line (a removed one
// leaves it out); its other lines come after Vary, in the order the blocks gave their names.
// Redirects have one identity variant with an empty body and a block that holds Location first,
// then Cache-Control (the archive's, for 301 and 308 only), the `_headers` lines and
// "Content-Length: 0"; their 304/partial lengths are 0.
// Numbers in hex are lower case. Body positions lie inside the CDB records area; the reader
// checks every one against it.
//
// Record order: the schema key (and kawipiko:hosts), then every body and skip mark, then the
// entries, kawipiko:paths and kawipiko:meta (an entry holds its bodies' positions, so they come
// first). The server relies on it: it checks only the entries after the last body
// (reader::for_each_entry) and answers one found before it as corrupt.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace kawipiko::archive::schema {

inline constexpr std::string_view schema_key = "kawipiko:schema";
inline constexpr std::string_view schema_value = "kawipiko-archive/3";
inline constexpr std::string_view schema_value_hosts = "kawipiko-archive/4";  // host folders
// Read, no longer written: entries without flags.
inline constexpr std::string_view legacy_schema_value = "kawipiko-archive/1";
inline constexpr std::string_view legacy_schema_value_hosts = "kawipiko-archive/2";
inline constexpr std::string_view meta_key = "kawipiko:meta";
inline constexpr std::string_view paths_key = "kawipiko:paths";
inline constexpr std::string_view hosts_key = "kawipiko:hosts";
inline constexpr std::string_view default_host = "_default";  // the host folder for the rest
inline constexpr std::string_view fallback_prefix = "fallback:";
inline constexpr std::string_view body_prefix = "body:";
inline constexpr std::string_view skip_prefix = "skip:";
inline constexpr std::string_view rules_prefix = "rules:";
inline constexpr std::string_view forced_rules_prefix = "forced-rules:";

// One fixed-width field of an entry's head or of a variant descriptor: `width` bytes at `offset`
// in its line, followed by one separator byte (a space, or '\n' after the line's last field).
// The encoder and the decoder (entry.cpp) both work from the tables below.
struct entry_field {
  std::string_view name;  // as the layout above calls it
  std::size_t offset;
  std::size_t width;
};

// The head: decimal digits, then the flags in hex. Schemas 1 and 2 have the first two only.
namespace head {
inline constexpr entry_field status{"status", 0, 3};
inline constexpr entry_field variant_count{"variant count", 4, 1};
inline constexpr entry_field flags{"flags", 6, 2};
inline constexpr entry_field fields[] = {status, variant_count, flags};
inline constexpr entry_field legacy_fields[] = {status, variant_count};
}  // namespace head

// The head's flags (above).
namespace entry_flags {
inline constexpr unsigned keeps_query = 0x01;
inline constexpr unsigned forced_rules = 0x02;
inline constexpr unsigned own_content_type_options = 0x10;
inline constexpr unsigned own_referrer_policy = 0x20;
inline constexpr unsigned own_frame_options = 0x40;
inline constexpr unsigned own_hsts = 0x80;
inline constexpr unsigned own_security = 0xf0;  // the four above
inline constexpr unsigned known = keeps_query | forced_rules | own_security;
}  // namespace entry_flags

// A variant descriptor: the coding token, space padded; then lower-case hex, zero padded.
namespace descriptor {
inline constexpr entry_field coding{"coding", 0, 8};
inline constexpr entry_field body_position{"body position", 9, 8};
inline constexpr entry_field body_length{"body length", 18, 8};
inline constexpr entry_field block_length{"block length", 27, 4};
inline constexpr entry_field length_304{"304 length", 32, 4};
inline constexpr entry_field length_partial{"partial length", 37, 4};
inline constexpr entry_field etag_length{"etag length", 42, 2};
inline constexpr entry_field fields[] = {coding,     body_position,  body_length, block_length,
                                         length_304, length_partial, etag_length};
}  // namespace descriptor

// The size of a line made of `fields`: up to its last field's separator.
[[nodiscard]] constexpr std::size_t line_size(std::span<const entry_field> fields) {
  return fields.back().offset + fields.back().width + 1;
}
// Whether `fields` start at 0 and follow each other with exactly one separator between them.
[[nodiscard]] constexpr bool is_packed(std::span<const entry_field> fields) {
  std::size_t next = 0;
  for (const auto& field : fields) {
    if (field.offset != next || field.width == 0) return false;
    next = field.offset + field.width + 1;
  }
  return true;
}
// The largest number a hex field holds.
[[nodiscard]] constexpr std::uint64_t max_hex(const entry_field& field) {
  return (std::uint64_t{1} << (4 * field.width)) - 1;
}

inline constexpr std::size_t entry_head_size = line_size(head::fields);          // "200 3 00\n"
inline constexpr std::size_t legacy_head_size = line_size(head::legacy_fields);  // "200 3\n"
inline constexpr std::size_t descriptor_size = line_size(descriptor::fields);    // one variant
static_assert(is_packed(head::fields) && entry_head_size == 9);
static_assert(is_packed(head::legacy_fields) && legacy_head_size == 6);
static_assert(is_packed(descriptor::fields) && descriptor_size == 45);
inline constexpr std::size_t max_variants = 3;        // identity, gzip, br
inline constexpr std::size_t etag_header_prefix = 6;  // "ETag: "
inline constexpr std::size_t max_block_size = max_hex(descriptor::block_length);  // 0xffff

// Whether `key` is a path entry's ("/docs/", or "example.com/docs/" with host folders): the
// other keys hold no '/' but the fallbacks' (a host, in the rules keys, has none).
[[nodiscard]] constexpr bool is_path_key(std::string_view key) noexcept {
  return key.find('/') != std::string_view::npos && !key.starts_with(fallback_prefix);
}

// "body:<hash>:<coding>" and "skip:<hash>:<coding>".
[[nodiscard]] inline std::string body_key(std::string_view hash, std::string_view coding) {
  return std::string(body_prefix).append(hash).append(":").append(coding);
}
[[nodiscard]] inline std::string skip_key(std::string_view hash, std::string_view coding) {
  return std::string(skip_prefix).append(hash).append(":").append(coding);
}
// "rules:<host>" and "forced-rules:<host>" (the host empty for one site).
[[nodiscard]] inline std::string rules_key(std::string_view host) {
  return std::string(rules_prefix).append(host);
}
[[nodiscard]] inline std::string forced_rules_key(std::string_view host) {
  return std::string(forced_rules_prefix).append(host);
}

}  // namespace kawipiko::archive::schema
