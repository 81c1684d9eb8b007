#pragma once
// The server's view of an archive: a validated CDB image whose schema key says it is ours, and
// lookups that turn a normalized request path into an entry (entry.hpp) with one CDB probe.
// An archive of host folders (schema 2) is read the same way: its keys carry the host in front
// of the path, and it lists its hosts. Immutable after construction and safe to share between
// threads; the image must outlive it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "archive/entry.hpp"
#include "archive/schema.hpp"
#include "cdb/reader.hpp"

namespace kawipiko::archive {

enum class lookup_status { found, not_found, corrupt };

class reader {
 public:
  // Throws std::runtime_error with a one-line reason if the image is not a CDB file, has no
  // schema key ("not a kawipiko archive"), another schema version, or (host folders) a bad
  // list of hosts.
  explicit reader(std::span<const std::byte> image);

  // The entry stored under `key` exactly: a request path, or with host folders "<host><path>".
  // `corrupt` when the record or its bodies are malformed.
  [[nodiscard]] lookup_status find(std::string_view key, entry& out) const noexcept;

  // The fallback for a path that has no entry: the `fallback:` entry of its deepest folder that
  // has one, walking up to "/". At most one probe per folder level, bounded by the deepest
  // fallback the archive holds. With host folders, `host` (one of hosts()) is the site's.
  [[nodiscard]] lookup_status find_fallback(std::string_view path, entry& out) const noexcept {
    return find_fallback({}, path, out);
  }
  [[nodiscard]] lookup_status find_fallback(std::string_view host, std::string_view path,
                                            entry& out) const noexcept;

  // Whether the archive was built with host folders (schema 2), and its hosts as the
  // `kawipiko:hosts` key lists them ("_default" among them when it has that folder).
  [[nodiscard]] bool has_host_folders() const noexcept { return host_folders_; }
  [[nodiscard]] const std::vector<std::string_view>& hosts() const noexcept { return hosts_; }

  // The value of one line of the `kawipiko:meta` text ("name=value" lines), or empty.
  [[nodiscard]] std::string_view meta_value(std::string_view name) const noexcept;

  [[nodiscard]] const cdb::reader& database() const noexcept { return db_; }

  // Calls `visit(key, value)` for every entry record (path and fallback keys) and rules blob
  // (rules:, forced-rules:), in file order, from where the entries begin: the archiver writes
  // every body and skip mark before the first entry (an entry holds its bodies' positions), so
  // the walk reads the hash tables and the records after the last body, not the bodies. Returns
  // that position: a lookup that finds an entry whose value lies before it (in an archive the
  // archiver did not make) must treat it as corrupt, for the walk did not see it. Sets `error`
  // when a record from there on is malformed, or a slot from there on points at no record's
  // start (all that a lookup can reach from there was visited, then). Exceptions from `visit`
  // propagate.
  template <class Visit>
  std::size_t for_each_entry(Visit&& visit, std::error_code& error) const;

 private:
  // The end of the last body or skip record, reading records from the last one down; the first
  // record's position if there is none. `slots` as cdb::reader::slot_positions gives them.
  [[nodiscard]] std::size_t entries_begin(const std::vector<std::uint32_t>& slots) const noexcept;

  cdb::reader db_;
  std::string_view meta_;           // the `kawipiko:meta` text
  std::size_t fallback_depth_ = 0;  // deepest folder level with a fallback, plus one; 0: none
  bool host_folders_ = false;
  std::vector<std::string_view> hosts_;  // views into the `kawipiko:hosts` value
};

template <class Visit>
std::size_t reader::for_each_entry(Visit&& visit, std::error_code& error) const {
  const auto slots = db_.slot_positions(error);
  if (error) return db_.records_begin();
  const std::size_t begin = entries_begin(slots);
  // The slots not yet met, in file order: each must be the start of a record the walk visits.
  auto unmet = std::lower_bound(slots.begin(), slots.end(), begin);
  bool stray = false;
  db_.for_each(
      [&](std::string_view key, std::string_view value, std::size_t value_position) {
        const std::size_t start = value_position - key.size() - cdb::format::record_header_size;
        if (unmet != slots.end() && *unmet < start) stray = true;
        while (unmet != slots.end() && *unmet <= start) ++unmet;
        if (schema::is_path_key(key) || key.starts_with(schema::fallback_prefix) ||
            key.starts_with(schema::rules_prefix) || key.starts_with(schema::forced_rules_prefix)) {
          visit(key, value);
        }
      },
      error, begin);
  if (!error && (stray || unmet != slots.end())) error = cdb::errc::bad_record;
  return begin;
}

}  // namespace kawipiko::archive
