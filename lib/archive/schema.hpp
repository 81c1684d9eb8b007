#pragma once
// The archive's key layout: the only place it is defined (README.rst copies it for users).
// An archive is a standard djb CDB file; keys and values are plain enough that `cdb -d` shows
// them readably.
//
// Keys
//   kawipiko:schema          "kawipiko-archive/1": the server refuses any other value
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
#include <string>
#include <string_view>

namespace kawipiko::archive::schema {

inline constexpr std::string_view schema_key = "kawipiko:schema";
inline constexpr std::string_view schema_value = "kawipiko-archive/1";
inline constexpr std::string_view meta_key = "kawipiko:meta";
inline constexpr std::string_view paths_key = "kawipiko:paths";
inline constexpr std::string_view fallback_prefix = "fallback:";
inline constexpr std::string_view body_prefix = "body:";
inline constexpr std::string_view skip_prefix = "skip:";

inline constexpr std::size_t entry_head_size = 6;   // "200 3\n"
inline constexpr std::size_t descriptor_size = 45;  // one variant line
inline constexpr std::size_t max_variants = 3;
inline constexpr std::size_t etag_header_prefix = 6;   // "ETag: "
inline constexpr std::size_t max_block_size = 0xffff;  // 4 hex digits

// "body:<hash>:<coding>" and "skip:<hash>:<coding>".
[[nodiscard]] inline std::string body_key(std::string_view hash, std::string_view coding) {
  return std::string(body_prefix).append(hash).append(":").append(coding);
}
[[nodiscard]] inline std::string skip_key(std::string_view hash, std::string_view coding) {
  return std::string(skip_prefix).append(hash).append(":").append(coding);
}

}  // namespace kawipiko::archive::schema
