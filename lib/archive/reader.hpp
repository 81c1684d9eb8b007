#pragma once
// The server's view of an archive: a validated CDB image whose schema key says it is ours, and
// lookups that turn a normalized request path into an entry (entry.hpp) with one CDB probe.
// Immutable after construction and safe to share between threads; the image must outlive it.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "archive/entry.hpp"
#include "cdb/reader.hpp"

namespace kawipiko::archive {

enum class lookup_status { found, not_found, corrupt };

class reader {
 public:
  // Throws std::runtime_error with a one-line reason if the image is not a CDB file, has no
  // schema key ("not a kawipiko archive") or another schema version.
  explicit reader(std::span<const std::byte> image);

  // The entry stored under `path` exactly. `corrupt` when the record or its bodies are malformed.
  [[nodiscard]] lookup_status find(std::string_view path, entry& out) const noexcept;

  // The fallback for a path that has no entry: the `fallback:` entry of its deepest folder that
  // has one, walking up to "/". At most one probe per folder level, bounded by the deepest
  // fallback the archive holds.
  [[nodiscard]] lookup_status find_fallback(std::string_view path, entry& out) const noexcept;

  // The value of one line of the `kawipiko:meta` text ("name=value" lines), or empty.
  [[nodiscard]] std::string_view meta_value(std::string_view name) const noexcept;

  [[nodiscard]] const cdb::reader& database() const noexcept { return db_; }

 private:
  cdb::reader db_;
  std::string_view meta_;           // the `kawipiko:meta` text
  std::size_t fallback_depth_ = 0;  // deepest folder level with a fallback, plus one; 0: none
};

}  // namespace kawipiko::archive
