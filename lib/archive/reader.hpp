#pragma once
// The server's view of an archive: a validated CDB image whose schema key says it is ours, and
// lookups that turn a normalized request path into an entry (entry.hpp) with one CDB probe.
// An archive of host folders (schema 2) is read the same way: its keys carry the host in front
// of the path, and it lists its hosts. Immutable after construction and safe to share between
// threads; the image must outlive it.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "archive/entry.hpp"
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

 private:
  cdb::reader db_;
  std::string_view meta_;           // the `kawipiko:meta` text
  std::size_t fallback_depth_ = 0;  // deepest folder level with a fallback, plus one; 0: none
  bool host_folders_ = false;
  std::vector<std::string_view> hosts_;  // views into the `kawipiko:hosts` value
};

}  // namespace kawipiko::archive
