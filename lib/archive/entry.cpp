#include "archive/entry.hpp"

#include <cassert>
#include <span>
#include <stdexcept>
#include <utility>

#include "archive/schema.hpp"
#include "http/etag.hpp"
#include "http/syntax.hpp"

namespace kawipiko::archive {

namespace {

namespace descriptor = schema::descriptor;
using schema::entry_field;

constexpr std::string_view digits = "0123456789abcdef";

// The value of digit `c` (0-9, then lower-case a-f), or 16 for any other byte.
unsigned digit_value(char c) noexcept {
  if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
  return 16;
}

// Parses the `field` of `line` as exactly field.width digits of `base` (10 or 16); false on any
// other byte.
bool parse_number(std::string_view line, const entry_field& field, unsigned base,
                  std::uint64_t& out) noexcept {
  std::uint64_t value = 0;
  for (const char c : line.substr(field.offset, field.width)) {
    const unsigned digit = digit_value(c);
    if (digit >= base) return false;
    value = value * base + digit;
  }
  out = value;
  return true;
}

// Writes `value` into the `field` of `line` as field.width digits of `base`, zero padded; false
// if it needs more.
bool put_number(std::string& line, const entry_field& field, unsigned base,
                std::uint64_t value) noexcept {
  for (std::size_t i = field.width; i-- > 0;) {
    line[field.offset + i] = digits[value % base];
    value /= base;
  }
  return value == 0;
}

// Whether each field of `fields` is followed by its separator in `line`.
bool has_separators(std::string_view line, std::span<const entry_field> fields) noexcept {
  for (const auto& field : fields) {
    const char expected = &field == &fields.back() ? '\n' : ' ';
    if (line[field.offset + field.width] != expected) return false;
  }
  return true;
}

// A line of `size` bytes whose fields are still blank: spaces, and the final '\n'.
std::string blank_line(std::size_t size) {
  std::string line(size, ' ');
  line.back() = '\n';
  return line;
}

bool parse_coding(std::string_view line, encoding& out) noexcept {
  const auto field = line.substr(descriptor::coding.offset, descriptor::coding.width);
  for (const encoding candidate : {encoding::identity, encoding::gzip, encoding::br}) {
    const auto name = token(candidate);
    if (field.starts_with(name) && field.find_first_not_of(' ', name.size()) == field.npos) {
      out = candidate;
      return true;
    }
  }
  return false;
}

// The numbers of one descriptor line, as stored.
struct descriptor_numbers {
  std::uint64_t body_position = 0, body_length = 0, block_length = 0, length_304 = 0,
                length_partial = 0, etag_length = 0;
};

bool parse_descriptor(std::string_view line, encoding& coding, descriptor_numbers& out) noexcept {
  return has_separators(line, descriptor::fields) && parse_coding(line, coding) &&
         parse_number(line, descriptor::body_position, 16, out.body_position) &&
         parse_number(line, descriptor::body_length, 16, out.body_length) &&
         parse_number(line, descriptor::block_length, 16, out.block_length) &&
         parse_number(line, descriptor::length_304, 16, out.length_304) &&
         parse_number(line, descriptor::length_partial, 16, out.length_partial) &&
         parse_number(line, descriptor::etag_length, 16, out.etag_length);
}

// Parses the head "SSS N FF\n" (or a legacy "SSS N\n") of `value`: the status, a variant count
// in 1..max_variants and known flags; `size` is the head's.
bool parse_head(std::string_view value, unsigned& status, std::size_t& count, unsigned& flags,
                std::size_t& size) noexcept {
  namespace head = schema::head;
  std::uint64_t parsed_status = 0, parsed_count = 0, parsed_flags = 0;
  if (value.size() < schema::legacy_head_size) return false;
  const bool legacy = value[head::variant_count.offset + head::variant_count.width] == '\n';
  if (legacy) {
    if (!has_separators(value, head::legacy_fields)) return false;
  } else if (value.size() < schema::entry_head_size || !has_separators(value, head::fields) ||
             !parse_number(value, head::flags, 16, parsed_flags)) {
    return false;
  }
  if (!parse_number(value, head::status, 10, parsed_status) ||
      !parse_number(value, head::variant_count, 10, parsed_count)) {
    return false;
  }
  if (parsed_count < 1 || parsed_count > schema::max_variants) return false;
  if ((parsed_flags & ~std::uint64_t{schema::entry_flags::known}) != 0) return false;
  status = static_cast<unsigned>(parsed_status);
  count = static_cast<std::size_t>(parsed_count);
  flags = static_cast<unsigned>(parsed_flags);
  if (legacy && status == 308) flags = schema::entry_flags::keeps_query;
  size = legacy ? schema::legacy_head_size : schema::entry_head_size;
  return true;
}

// Fills `out` from one descriptor's numbers, its block starting at `block_at` in `value`.
bool decode_variant(std::string_view value, std::size_t block_at, const descriptor_numbers& n,
                    const cdb::reader& db, variant& out) noexcept {
  // The block must lie inside the value; the prefixes inside the block.
  if (value.size() - block_at < n.block_length) return false;
  if (n.length_304 > n.block_length || n.length_partial > n.block_length ||
      n.length_304 > n.length_partial) {
    return false;
  }
  const auto prefix = schema::etag_header_prefix;
  if (n.etag_length != 0 && (n.block_length < prefix || n.block_length - prefix < n.etag_length)) {
    return false;
  }
  out.block = value.substr(block_at, static_cast<std::size_t>(n.block_length));
  out.length_304 = static_cast<std::size_t>(n.length_304);
  out.length_partial = static_cast<std::size_t>(n.length_partial);
  out.etag = n.etag_length == 0 ? std::string_view{}
                                : out.block.substr(prefix, static_cast<std::size_t>(n.etag_length));
  // The body must lie inside the records area of the archive.
  if (n.body_length == 0) {
    out.body = {};
    return true;
  }
  const auto body = db.slice(n.body_position, n.body_length);
  if (!body) return false;
  out.body = *body;
  return true;
}

// One descriptor line for `spec`. Throws std::length_error if a number does not fit its field.
std::string descriptor_line(const variant_spec& spec) {
  std::string line = blank_line(schema::descriptor_size);
  const auto name = token(spec.coding);
  assert(name.size() <= descriptor::coding.width);
  line.replace(descriptor::coding.offset, name.size(), name);
  const std::pair<const entry_field&, std::uint64_t> numbers[] = {
      {descriptor::body_position, spec.body_position},
      {descriptor::body_length, spec.body_length},
      {descriptor::block_length, spec.block.size()},
      {descriptor::length_304, spec.length_304},
      {descriptor::length_partial, spec.length_partial},
      {descriptor::etag_length, spec.etag_length}};
  for (const auto& [field, number] : numbers) {
    if (!put_number(line, field, 16, number)) {
      throw std::length_error("entry: " + std::string(field.name) + " too large");
    }
  }
  return line;
}

}  // namespace

bool decode_entry(std::string_view value, const cdb::reader& db, entry& out) noexcept {
  unsigned status = 0, flags = 0;
  std::size_t count = 0, head_size = 0;
  if (!parse_head(value, status, count, flags, head_size)) return false;
  // Descriptors must fit before the blocks start.
  if ((value.size() - head_size) / schema::descriptor_size < count) return false;
  std::size_t block_at = head_size + count * schema::descriptor_size;

  out.status = status;
  out.flags = flags;
  out.count = count;
  for (std::size_t v = 0; v < count; ++v) {
    const std::size_t at = head_size + v * schema::descriptor_size;
    descriptor_numbers numbers;
    auto& variant = out.variants[v];
    if (!parse_descriptor(value.substr(at, schema::descriptor_size), variant.coding, numbers) ||
        !decode_variant(value, block_at, numbers, db, variant)) {
      return false;
    }
    block_at += variant.block.size();
  }
  return block_at == value.size();
}

bool is_redirect_status(unsigned status) noexcept {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

namespace {

bool is_well_formed(const variant& v, unsigned status) noexcept {
  const std::string_view block = v.block;
  const auto ends_line = [&](std::size_t length) {
    return length == 0 || (length >= 2 && block.substr(length - 2, 2) == "\r\n");
  };
  if (!ends_line(v.length_304) || !ends_line(v.length_partial)) return false;
  bool has_length = false;
  std::size_t at = 0, line_number = 0;
  while (at < block.size()) {
    const auto end = block.find("\r\n", at);
    if (end == std::string_view::npos) return false;
    const auto line = block.substr(at, end - at);
    const auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return false;
    for (std::size_t i = 0; i < colon; ++i) {
      if (!http::syntax::is_token_char(line[i])) return false;
    }
    const auto name = line.substr(0, colon);
    const auto value = line.substr(colon + 1);
    for (const char ch : value) {
      const auto c = static_cast<unsigned char>(ch);
      if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    if (is_redirect_status(status) && line_number == 0 && name != "Location") return false;
    if (name == "Content-Length") {
      if (value.size() < 2 || value.size() > 21 || value[0] != ' ') return false;
      std::uint64_t number = 0;
      for (const char digit : value.substr(1)) {
        if (digit < '0' || digit > '9') return false;
        number = number * 10 + static_cast<std::uint64_t>(digit - '0');
      }
      if (number != v.body.size()) return false;
      has_length = true;
    }
    at = end + 2;
    ++line_number;
  }
  if (!has_length) return false;
  if (!v.etag.empty()) {
    if (!http::is_strong_etag(v.etag)) return false;
    if (block.substr(0, 6) != "ETag: ") return false;
  }
  return true;
}

}  // namespace

bool is_well_formed(const entry& e) noexcept {
  const bool redirect = is_redirect_status(e.status);
  if (!redirect && e.status != 200 && e.status != 404) return false;
  if (!redirect && (e.flags & schema::entry_flags::keeps_query) != 0) return false;
  for (std::size_t i = 0; i < e.count; ++i) {
    if (!is_well_formed(e.variants[i], e.status)) return false;
  }
  return true;
}

std::string encode_entry(unsigned status, const variant_spec* variants, std::size_t count,
                         unsigned flags) {
  std::string out = blank_line(schema::entry_head_size);
  if (count == 0 || count > schema::max_variants || (flags & ~schema::entry_flags::known) != 0 ||
      !put_number(out, schema::head::status, 10, status) ||
      !put_number(out, schema::head::variant_count, 10, count) ||
      !put_number(out, schema::head::flags, 16, flags)) {
    throw std::invalid_argument("entry: bad status, variant count or flags");
  }
  for (std::size_t v = 0; v < count; ++v) {
    const auto& spec = variants[v];
    if (spec.block.size() > schema::max_block_size ||
        spec.etag_length > schema::max_hex(descriptor::etag_length)) {
      throw std::length_error("entry: header block too large");
    }
    out += descriptor_line(spec);
  }
  for (std::size_t v = 0; v < count; ++v) out += variants[v].block;
  return out;
}

}  // namespace kawipiko::archive
