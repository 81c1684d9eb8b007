#pragma once
// Encoding and decoding of entry values (the format is written down in schema.hpp). The decoder
// runs once per request: it allocates nothing, throws nothing, and checks every length and body
// position against the archive before handing out views.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "archive/compress.hpp"
#include "cdb/reader.hpp"

namespace kawipiko::archive {

struct variant {
  encoding coding = encoding::identity;
  std::string_view body;           // inside the archive image
  std::string_view block;          // the whole header block ("Name: value\r\n" lines)
  std::size_t length_304 = 0;      // prefix of `block` for 304 responses
  std::size_t length_partial = 0;  // prefix of `block` for 206 responses (no Content-Length)
  std::string_view etag;           // the quoted strong ETag, or empty
};

struct entry {
  unsigned status = 0;    // 200, 404, or a redirect: 301, 302, 303, 307, 308
  unsigned flags = 0;     // schema::entry_flags
  std::size_t count = 0;  // variants in use
  std::array<variant, 3> variants{};
};

// Decodes `value` (an entry read from `db`) into `out`. False if the value is malformed, has a
// flag this version does not know, or a body lies outside the records area; `out` is then
// unspecified. Reads both heads: with flags (schemas 3 and 4) and without (1 and 2, whose 308s
// keep the query, as their slash redirects did).
[[nodiscard]] bool decode_entry(std::string_view value, const cdb::reader& db, entry& out) noexcept;

// Whether a decoded entry's header blocks are well-formed HTTP: every line "Name: value\r\n" with
// a token name and no control byte in the value, the 304 and partial prefixes ending on line
// boundaries, a quoted ETag, a Content-Length equal to the body's size (a redirect: 0 and a
// Location first), a known status, and the query flag on redirects only. The server checks every
// entry once, at open, so that a corrupt block is answered with a 500 and never sent. Allocates
// nothing.
[[nodiscard]] bool is_well_formed(const entry& e) noexcept;

// What the builder knows of one variant before it is encoded.
struct variant_spec {
  encoding coding;
  std::uint32_t body_position;
  std::uint32_t body_length;
  std::string block;  // header block, in the order schema.hpp requires
  std::size_t length_304;
  std::size_t length_partial;
  std::size_t etag_length;  // 0 when the block has no ETag
};

// Whether `status` is one an entry may hold as a redirect: 301, 302, 303, 307 or 308.
[[nodiscard]] bool is_redirect_status(unsigned status) noexcept;

// Encodes an entry (`flags`: schema::entry_flags). Throws std::length_error if a block passes
// schema::max_block_size, std::invalid_argument for a bad status, count or flag.
[[nodiscard]] std::string encode_entry(unsigned status, const variant_spec* variants,
                                       std::size_t count, unsigned flags = 0);

}  // namespace kawipiko::archive
