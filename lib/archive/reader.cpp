#include "archive/reader.hpp"

#include <array>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <string>

#include "archive/schema.hpp"

namespace kawipiko::archive {

namespace {

// The longest key a fallback probe builds; longer request paths walk up from a shorter prefix.
constexpr std::size_t max_fallback_key = 4096;

}  // namespace

reader::reader(std::span<const std::byte> image) : db_(image) {
  std::error_code error;
  const auto schema = db_.find(schema::schema_key, error);
  if (error) throw std::runtime_error("corrupt archive: " + error.message());
  if (!schema) throw std::runtime_error("not a kawipiko archive (no schema key)");
  if (*schema != schema::schema_value) {
    std::string found(schema->substr(0, 64));
    for (auto& c : found) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    throw std::runtime_error("unsupported archive schema '" + found + "' (this version reads '" +
                             std::string(schema::schema_value) + "')");
  }
  const auto meta = db_.find(schema::meta_key, error);
  if (error) throw std::runtime_error("corrupt archive: " + error.message());
  if (meta) meta_ = *meta;
  const auto depth = meta_value("fallback-depth");
  std::size_t parsed = 0;
  if (!depth.empty()) {
    const auto [end, ec] = std::from_chars(depth.data(), depth.data() + depth.size(), parsed);
    if (ec != std::errc{} || end != depth.data() + depth.size() || parsed > max_fallback_key) {
      throw std::runtime_error("corrupt archive: bad fallback-depth in meta");
    }
  }
  fallback_depth_ = parsed;
}

std::string_view reader::meta_value(std::string_view name) const noexcept {
  std::string_view rest = meta_;
  while (!rest.empty()) {
    const auto end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == '=') {
      return line.substr(name.size() + 1);
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return {};
}

lookup_status reader::find(std::string_view path, entry& out) const noexcept {
  std::error_code error;
  const auto value = db_.find(path, error);
  if (error) return lookup_status::corrupt;
  if (!value) return lookup_status::not_found;
  return decode_entry(*value, db_, out) ? lookup_status::found : lookup_status::corrupt;
}

lookup_status reader::find_fallback(std::string_view path, entry& out) const noexcept {
  if (fallback_depth_ == 0 || path.empty() || path.front() != '/') return lookup_status::not_found;
  // Folder levels: "/" is level 0, "/a/" level 1... The deepest candidate is the folder holding
  // `path` (all of it when it ends with '/'), capped at the deepest level that has a fallback.
  std::size_t end = path.rfind('/') + 1;  // length of the holding folder's path
  std::size_t level = 0;
  for (std::size_t i = 1; i < end; ++i) {
    if (path[i] == '/') ++level;
  }
  while (level + 1 > fallback_depth_) {
    end = path.rfind('/', end - 2) + 1;
    --level;
  }
  std::array<char, max_fallback_key + 16> key{};
  const auto prefix = schema::fallback_prefix;
  std::memcpy(key.data(), prefix.data(), prefix.size());
  while (true) {
    if (end <= max_fallback_key) {
      std::memcpy(key.data() + prefix.size(), path.data(), end);
      const auto status = find(std::string_view(key.data(), prefix.size() + end), out);
      if (status != lookup_status::not_found) return status;
    }
    if (end == 1) return lookup_status::not_found;
    end = path.rfind('/', end - 2) + 1;
  }
}

}  // namespace kawipiko::archive
