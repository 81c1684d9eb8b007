#include "archive/entry.hpp"

#include <cstdio>
#include <stdexcept>

#include "archive/schema.hpp"
#include "http/etag.hpp"
#include "http/syntax.hpp"

namespace kawipiko::archive {

namespace {

// Parses exactly `digits` lower-case hex digits at text[at]; false on any other byte.
bool parse_hex(std::string_view text, std::size_t at, std::size_t digits,
               std::uint64_t& out) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const char c = text[at + i];
    unsigned nibble;
    if (c >= '0' && c <= '9') {
      nibble = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      nibble = static_cast<unsigned>(c - 'a' + 10);
    } else {
      return false;
    }
    value = (value << 4) | nibble;
  }
  out = value;
  return true;
}

bool parse_coding(std::string_view field, encoding& out) noexcept {
  if (field == "identity") {
    out = encoding::identity;
  } else if (field == "gzip    ") {
    out = encoding::gzip;
  } else if (field == "br      ") {
    out = encoding::br;
  } else {
    return false;
  }
  return true;
}

}  // namespace

bool decode_entry(std::string_view value, const cdb::reader& db, entry& out) noexcept {
  using namespace schema;
  // Head: "SSS N\n".
  if (value.size() < entry_head_size || value[3] != ' ' || value[5] != '\n') return false;
  unsigned status = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    if (value[i] < '0' || value[i] > '9') return false;
    status = status * 10 + static_cast<unsigned>(value[i] - '0');
  }
  if (value[4] < '1' || value[4] > '0' + static_cast<int>(max_variants)) return false;
  const auto count = static_cast<std::size_t>(value[4] - '0');
  // Descriptors must fit before the blocks start.
  if ((value.size() - entry_head_size) / descriptor_size < count) return false;
  std::size_t block_at = entry_head_size + count * descriptor_size;

  out.status = status;
  out.count = count;
  for (std::size_t v = 0; v < count; ++v) {
    const std::size_t at = entry_head_size + v * descriptor_size;
    const std::string_view line = value.substr(at, descriptor_size);
    if (line[8] != ' ' || line[17] != ' ' || line[26] != ' ' || line[31] != ' ' ||
        line[36] != ' ' || line[41] != ' ' || line[44] != '\n') {
      return false;
    }
    auto& variant = out.variants[v];
    std::uint64_t position = 0, length = 0, block = 0, l304 = 0, lpartial = 0, etag = 0;
    if (!parse_coding(line.substr(0, 8), variant.coding) || !parse_hex(line, 9, 8, position) ||
        !parse_hex(line, 18, 8, length) || !parse_hex(line, 27, 4, block) ||
        !parse_hex(line, 32, 4, l304) || !parse_hex(line, 37, 4, lpartial) ||
        !parse_hex(line, 42, 2, etag)) {
      return false;
    }
    // The block must lie inside the value; the prefixes inside the block.
    if (value.size() - block_at < block) return false;
    if (l304 > block || lpartial > block || l304 > lpartial) return false;
    if (etag != 0 && (block < etag_header_prefix || block - etag_header_prefix < etag)) {
      return false;
    }
    variant.block = value.substr(block_at, static_cast<std::size_t>(block));
    variant.length_304 = static_cast<std::size_t>(l304);
    variant.length_partial = static_cast<std::size_t>(lpartial);
    variant.etag = etag == 0
                       ? std::string_view{}
                       : variant.block.substr(etag_header_prefix, static_cast<std::size_t>(etag));
    block_at += static_cast<std::size_t>(block);
    // The body must lie inside the records area of the archive.
    if (length == 0) {
      variant.body = {};
    } else {
      const auto body = db.slice(position, length);
      if (!body) return false;
      variant.body = *body;
    }
  }
  return block_at == value.size();
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
    if (status == 308 && line_number == 0 && name != "Location") return false;
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
  if (e.status != 200 && e.status != 308 && e.status != 404) return false;
  for (std::size_t i = 0; i < e.count; ++i) {
    if (!is_well_formed(e.variants[i], e.status)) return false;
  }
  return true;
}

std::string encode_entry(unsigned status, const variant_spec* variants, std::size_t count) {
  using namespace schema;
  if (status > 999 || count == 0 || count > max_variants) {
    throw std::invalid_argument("entry: bad status or variant count");
  }
  std::string out;
  char line[64];
  std::snprintf(line, sizeof line, "%03u %zu\n", status, count);
  out += line;
  for (std::size_t v = 0; v < count; ++v) {
    const auto& spec = variants[v];
    if (spec.block.size() > max_block_size || spec.etag_length > 0xff) {
      throw std::length_error("entry: header block too large");
    }
    std::snprintf(line, sizeof line, "%-8s %08x %08x %04zx %04zx %04zx %02zx\n",
                  std::string(token(spec.coding)).c_str(), spec.body_position, spec.body_length,
                  spec.block.size(), spec.length_304, spec.length_partial, spec.etag_length);
    out += line;
  }
  for (std::size_t v = 0; v < count; ++v) out += variants[v].block;
  return out;
}

}  // namespace kawipiko::archive
