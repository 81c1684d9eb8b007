#pragma once
// The archive's key layout: the only place it is defined (README.rst copies it for users).
// An archive is a standard djb CDB file; keys and values are plain enough that `cdb -d` shows
// them readably.
//
// Keys
//   kawipiko:schema          "kawipiko-archive/1" (one site), or "kawipiko-archive/2" (host
//                            folders, below): the server refuses any other value
//   kawipiko:meta            "name=value" lines: settings and counts of the build
//   kawipiko:paths           every request path that has an entry, one per line, sorted
//                            (left out with --exclude-file-listing)
//   /<request path>          an entry: everything needed to answer GET/HEAD for that path
//                            (files, folder indexes "/docs/", aliases "/about", redirects)
//   fallback:/<folder>/      an entry answering paths under that folder that have none of their
//                            own: a `_wildcard.*` file (200) or a `_404.html`/`404.html` (404);
//                            the server walks up from the deepest folder
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
// Entry value ("200 2\n" then one descriptor line per variant, then the header blocks):
//   <status:3 digits> <variant count:1 digit>\n
//   per variant, fixed width (45 bytes):
//   <coding:8, space padded> <body position:8 hex> <body length:8 hex> <block length:4 hex>
//   <304 length:4 hex> <partial length:4 hex> <etag length:2 hex>\n
//   then the variants' header blocks, concatenated in descriptor order.
// Variants are ordered identity, gzip, br; identity is always present. Each header block is
// "Name: value\r\n" lines, in this order so that prefixes serve each kind of response:
//   ETag, Cache-Control, Vary                   -> the first <304 length> bytes (304 responses)
//   Content-Type, Content-Encoding              -> the first <partial length> bytes (206)
//   Content-Length                              -> the whole block (200, 404)
// The ETag value (quotes included) is <etag length> bytes at offset 6 ("ETag: " is 6 bytes).
// Redirects (status 308) have one identity variant with an empty body and a block that holds
// Location, Cache-Control and "Content-Length: 0"; their 304/partial lengths are 0.
// Numbers in hex are lower case. Body positions lie inside the CDB records area; the reader
// checks every one against it.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace kawipiko::archive::schema {

inline constexpr std::string_view schema_key = "kawipiko:schema";
inline constexpr std::string_view schema_value = "kawipiko-archive/1";
inline constexpr std::string_view schema_value_hosts = "kawipiko-archive/2";  // host folders
inline constexpr std::string_view meta_key = "kawipiko:meta";
inline constexpr std::string_view paths_key = "kawipiko:paths";
inline constexpr std::string_view hosts_key = "kawipiko:hosts";
inline constexpr std::string_view default_host = "_default";  // the host folder for the rest
inline constexpr std::string_view fallback_prefix = "fallback:";
inline constexpr std::string_view body_prefix = "body:";
inline constexpr std::string_view skip_prefix = "skip:";

// One fixed-width field of an entry's head or of a variant descriptor: `width` bytes at `offset`
// in its line, followed by one separator byte (a space, or '\n' after the line's last field).
// The encoder and the decoder (entry.cpp) both work from the tables below.
struct entry_field {
  std::string_view name;  // as the layout above calls it
  std::size_t offset;
  std::size_t width;
};

// The head: decimal digits.
namespace head {
inline constexpr entry_field status{"status", 0, 3};
inline constexpr entry_field variant_count{"variant count", 4, 1};
inline constexpr entry_field fields[] = {status, variant_count};
}  // namespace head

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

inline constexpr std::size_t entry_head_size = line_size(head::fields);        // "200 3\n"
inline constexpr std::size_t descriptor_size = line_size(descriptor::fields);  // one variant line
static_assert(is_packed(head::fields) && entry_head_size == 6);
static_assert(is_packed(descriptor::fields) && descriptor_size == 45);
inline constexpr std::size_t max_variants = 3;        // identity, gzip, br
inline constexpr std::size_t etag_header_prefix = 6;  // "ETag: "
inline constexpr std::size_t max_block_size = max_hex(descriptor::block_length);  // 0xffff

// Whether `key` is a path entry's ("/docs/", or "example.com/docs/" with host folders): the
// other keys hold no '/' but the fallbacks'.
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

}  // namespace kawipiko::archive::schema
