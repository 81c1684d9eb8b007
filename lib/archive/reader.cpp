#include "archive/reader.hpp"

#include <array>
#include <charconv>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "archive/schema.hpp"
#include "http/host.hpp"

namespace kawipiko::archive {

namespace {

// The longest key a fallback probe builds; longer request paths walk up from a shorter prefix.
constexpr std::size_t max_fallback_key = 4096;
// The longest host a key holds: "*." and a 253-byte name.
constexpr std::size_t max_host = 255;

// Archive bytes for a one-line message: cut short, control bytes as '?'.
std::string printable(std::string_view text) {
  std::string shown(text.substr(0, 64));
  for (auto& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return shown;
}

// The value under `key`, if any; a damaged table is an error.
std::optional<std::string_view> value_of(const cdb::reader& db, std::string_view key) {
  std::error_code error;
  const auto value = db.find(key, error);
  if (error) throw std::runtime_error("corrupt archive: " + error.message());
  return value;
}

// A host as the archiver writes it: "_default", or a pattern in its own (lower-case) spelling.
bool is_host_line(std::string_view line) {
  if (line == schema::default_host) return true;
  const auto pattern = http::parse_host_pattern(line);
  return pattern && pattern->text() == line;
}

// The `kawipiko:hosts` lines, each checked, in strictly increasing key order (no duplicates).
std::vector<std::string_view> parse_hosts(std::string_view text) {
  std::vector<std::string_view> hosts;
  while (!text.empty()) {
    const auto end = text.find('\n');
    if (end == std::string_view::npos) {
      throw std::runtime_error("corrupt archive: kawipiko:hosts does not end with a newline");
    }
    const auto line = text.substr(0, end);
    if (!is_host_line(line)) {
      throw std::runtime_error("corrupt archive: bad host '" + printable(line) +
                               "' in kawipiko:hosts");
    }
    if (!hosts.empty() && std::string(hosts.back()) + '/' >= std::string(line) + '/') {
      throw std::runtime_error("corrupt archive: kawipiko:hosts is not sorted");
    }
    hosts.push_back(line);
    text.remove_prefix(end + 1);
  }
  return hosts;
}

}  // namespace

reader::reader(std::span<const std::byte> image) : db_(image) {
  const auto schema = value_of(db_, schema::schema_key);
  if (!schema) throw std::runtime_error("not a kawipiko archive (no schema key)");
  host_folders_ =
      *schema == schema::schema_value_hosts || *schema == schema::legacy_schema_value_hosts;
  if (*schema != schema::schema_value && *schema != schema::legacy_schema_value && !host_folders_) {
    throw std::runtime_error("unsupported archive schema '" + printable(*schema) +
                             "' (this version reads '" + std::string(schema::legacy_schema_value) +
                             "' to '" + std::string(schema::schema_value_hosts) + "')");
  }
  if (host_folders_) {
    const auto hosts = value_of(db_, schema::hosts_key);
    if (!hosts) throw std::runtime_error("corrupt archive: host folders but no kawipiko:hosts");
    hosts_ = parse_hosts(*hosts);
  }
  if (const auto meta = value_of(db_, schema::meta_key)) meta_ = *meta;
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

std::size_t reader::entries_begin(const std::vector<std::uint32_t>& slots) const noexcept {
  std::error_code error;
  for (auto at = slots.rbegin(); at != slots.rend(); ++at) {
    const auto record = db_.record_at(*at, error);
    // A slot that points at no record: for_each_entry's walk finds it if it lies after the
    // bodies; before them, it is never an entry.
    if (!record) continue;
    if (record->key.starts_with(schema::body_prefix) ||
        record->key.starts_with(schema::skip_prefix)) {
      return record->next;
    }
  }
  return db_.records_begin();
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

lookup_status reader::find(std::string_view key, entry& out) const noexcept {
  std::error_code error;
  const auto value = db_.find(key, error);
  if (error) return lookup_status::corrupt;
  if (!value) return lookup_status::not_found;
  return decode_entry(*value, db_, out) ? lookup_status::found : lookup_status::corrupt;
}

lookup_status reader::find_fallback(std::string_view host, std::string_view path,
                                    entry& out) const noexcept {
  if (fallback_depth_ == 0 || path.empty() || path.front() != '/' || host.size() > max_host) {
    return lookup_status::not_found;
  }
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
  // "fallback:" + host + folder.
  std::array<char, max_fallback_key + max_host + 16> key{};
  const auto prefix = schema::fallback_prefix;
  std::memcpy(key.data(), prefix.data(), prefix.size());
  if (!host.empty()) std::memcpy(key.data() + prefix.size(), host.data(), host.size());
  const std::size_t head = prefix.size() + host.size();
  while (true) {
    if (end <= max_fallback_key) {
      std::memcpy(key.data() + head, path.data(), end);
      const auto status = find(std::string_view(key.data(), head + end), out);
      if (status != lookup_status::not_found) return status;
    }
    if (end == 1) return lookup_status::not_found;
    end = path.rfind('/', end - 2) + 1;
  }
}

}  // namespace kawipiko::archive
