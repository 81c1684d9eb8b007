#include "http/etag.hpp"

#include <cstddef>

#include "http/syntax.hpp"

namespace kawipiko::http {
namespace {

using syntax::is_ows;
using syntax::trim;

constexpr std::string_view without_weak_prefix(std::string_view tag) noexcept {
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag;
}

enum class comparison { weak, strong };

// Whether the entity-tag list `header` holds `wanted` (a strong tag) under `how`. The one reading
// of the list grammar for both preconditions.
bool list_holds(std::string_view header, std::string_view wanted, comparison how) noexcept {
  // Walks the list by hand rather than splitting on ',': a comma is a valid etagc.
  std::size_t i = 0;
  while (i < header.size()) {
    if (header[i] == ',' || is_ows(header[i])) {
      ++i;
      continue;
    }
    const bool is_weak = header.substr(i).starts_with("W/");
    if (is_weak) i += 2;
    bool is_valid = false;
    std::string_view tag;
    if (i < header.size() && header[i] == '"') {
      const std::size_t close = header.find('"', i + 1);
      if (close == std::string_view::npos) return false;  // unterminated: nothing more to read
      tag = header.substr(i, close + 1 - i);
      i = close + 1;
      while (i < header.size() && is_ows(header[i])) ++i;
      is_valid = is_strong_etag(tag) && (i == header.size() || header[i] == ',');
    }
    if (!is_valid) {  // skip the rest of the malformed element
      i = header.find(',', i);
      if (i == std::string_view::npos) break;
      continue;
    }
    if (tag == wanted && (how == comparison::weak || !is_weak)) return true;
  }
  return false;
}

}  // namespace

bool is_strong_etag(std::string_view tag) noexcept {
  if (tag.size() < 2 || tag.front() != '"' || tag.back() != '"') return false;
  for (const char ch : tag.substr(1, tag.size() - 2)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c == '"' || c == 0x7f) return false;
  }
  return true;
}

bool if_none_match(std::string_view header, std::string_view etag) noexcept {
  header = trim(header);
  if (header == "*") return true;
  const std::string_view wanted = without_weak_prefix(etag);
  return is_strong_etag(wanted) && list_holds(header, wanted, comparison::weak);
}

bool if_match(std::string_view header, std::string_view etag) noexcept {
  header = trim(header);
  if (header == "*") return true;
  // A weak stored tag fails is_strong_etag: it can never match strongly.
  return is_strong_etag(etag) && list_holds(header, etag, comparison::strong);
}

}  // namespace kawipiko::http
