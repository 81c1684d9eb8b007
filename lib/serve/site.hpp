#pragma once
// The archive a server answers from: the file (mapped or in memory), its validated reader, the
// optional in-memory path index, and its header blocks as HTTP/2 header lists. Immutable once
// built and shared by every thread.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "archive/reader.hpp"
#include "base/mapped_file.hpp"
#include "serve/header_lists.hpp"
#include "serve/options.hpp"

namespace kawipiko::serve {

class site {
 public:
  // Opens, validates and (as the options say) preloads and indexes the archive. Throws
  // std::runtime_error / std::system_error with a one-line message naming the file.
  // `generation`: which load of its archive this is (1 at start, then one more per reload).
  explicit site(const options& opts, std::uint64_t generation = 1);

  // The entry stored for `path` (a normalized request path), or for find_fallback the wildcard
  // or error page that covers it. `corrupt` for a record that cannot be decoded or whose header
  // block failed the check at open (answered with a 500). Thread-safe, no allocation.
  [[nodiscard]] archive::lookup_status find(std::string_view path,
                                            archive::entry& out) const noexcept;
  [[nodiscard]] archive::lookup_status find_fallback(std::string_view path,
                                                     archive::entry& out) const noexcept;

  [[nodiscard]] std::size_t size() const noexcept { return file_.size(); }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return file_.bytes(); }
  // The lease guarding the mapping (base/mapped_file.hpp): its descriptor, or -1 in memory, and
  // why a mapping could not be leased (then the archive was read into memory), or empty.
  [[nodiscard]] int lease_fd() const noexcept { return file_.lease_fd(); }
  [[nodiscard]] const std::string& lease_refused() const noexcept { return file_.lease_refused(); }
  [[nodiscard]] std::size_t indexed() const noexcept { return index_.size(); }
  [[nodiscard]] const archive::reader& reader() const noexcept { return reader_; }
  // 16 hex digits naming the build: a SHA-256 of every entry (paths, header blocks, ETags),
  // so two archives of the same sources and settings have the same one.
  [[nodiscard]] const std::string& build_id() const noexcept { return build_id_; }
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }
  // Every well-formed block of the archive, split into lines once, for HTTP/2.
  [[nodiscard]] const header_lists& lists() const noexcept { return lists_; }

 private:
  base::mapped_file file_;
  archive::reader reader_;
  [[nodiscard]] archive::lookup_status checked(archive::lookup_status status,
                                               const archive::entry& e) const noexcept;

  std::unordered_map<std::string_view, archive::entry> index_;
  // Malformed entries, by where their value starts (stable for the image's lifetime).
  std::unordered_set<const char*> malformed_;
  header_lists lists_;
  std::string build_id_;
  std::uint64_t generation_;
};

}  // namespace kawipiko::serve
