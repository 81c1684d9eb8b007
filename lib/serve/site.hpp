#pragma once
// The archives a server answers from, and the sites in them. A site_archive is one opened archive:
// the file (mapped or in memory), its validated reader, the optional in-memory path index, its
// header blocks as HTTP/2 header lists, and its sites' `_redirects` matchers. A site is what one
// host is answered from: the whole of an archive, or (host folders) one host's part of it, whose
// keys have that host in front; the sites of one archive share it. Both are immutable once built
// and shared by every thread.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "archive/reader.hpp"
#include "archive/redirect_matcher.hpp"
#include "base/mapped_file.hpp"
#include "serve/header_lists.hpp"
#include "serve/options.hpp"

namespace kawipiko::serve {

// A site's `_redirects` rules matched at serve time (schema.hpp: "rules:<host>" and
// "forced-rules:<host>"), checked when the archive is opened; views into it.
struct site_rules {
  std::optional<archive::redirect_matcher> patterns;  // tried when a path has no entry
  std::optional<archive::redirect_matcher> forced;    // tried first on entries flagged for them
};

class site_archive {
 public:
  // Opens, validates and (as the options say) preloads and indexes opts.archive, and checks the
  // rule blobs of its sites. Throws std::runtime_error / std::system_error with a one-line
  // message naming the file (a corrupt rules blob refuses the whole archive).
  // `generation`: which load of its archive this is (1 at start, then one more per reload).
  explicit site_archive(const options& opts, std::uint64_t generation = 1);

  // The entry stored under `key` (a normalized request path, with host folders its host in
  // front), or for find_fallback the wildcard or error page of `host` that covers `path`.
  // `corrupt` for a record that cannot be decoded or whose header block failed the check at open
  // (answered with a 500). Thread-safe, no allocation.
  [[nodiscard]] archive::lookup_status find(std::string_view key,
                                            archive::entry& out) const noexcept;
  [[nodiscard]] archive::lookup_status find_fallback(std::string_view host, std::string_view path,
                                                     archive::entry& out) const noexcept;

  [[nodiscard]] const std::string& path() const noexcept { return file_.path(); }
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
  // The serve-time rules of the site of `host` (empty: the whole archive's), or null when it has
  // none.
  [[nodiscard]] const site_rules* rules_of(std::string_view host) const noexcept;

  // A writer waits on this mapping's lease, and the kernel breaks the lease itself after
  // lease-break-time: whatever still sends from the mapping by `when` is cut then (the worker's
  // sweep closes those connections), so that no thread is reading a page the writer may take
  // away (SIGBUS). Set once, from the main thread; read by every worker.
  void release_by(std::chrono::steady_clock::time_point when) const noexcept {
    release_by_.store(when.time_since_epoch().count(), std::memory_order_relaxed);
  }
  [[nodiscard]] bool overdue(std::chrono::steady_clock::time_point now) const noexcept {
    return now.time_since_epoch().count() >= release_by_.load(std::memory_order_relaxed);
  }

 private:
  base::mapped_file file_;
  archive::reader reader_;
  [[nodiscard]] archive::lookup_status checked(archive::lookup_status status,
                                               const archive::entry& e) const noexcept;
  void open_rules();

  std::unordered_map<std::string_view, archive::entry> index_;  // by key
  // Malformed entries, by where their first block starts (stable for the image's lifetime).
  std::unordered_set<const char*> malformed_;
  // Where the entries the open checked begin in the image: one found before was not checked.
  const char* unseen_before_ = nullptr;
  header_lists lists_;
  std::map<std::string, site_rules, std::less<>> rules_;  // by host; only sites that have some
  std::string build_id_;
  std::uint64_t generation_;
  mutable std::atomic<std::chrono::steady_clock::rep> release_by_{
      std::chrono::steady_clock::time_point::max().time_since_epoch().count()};
};

class site {
 public:
  // Opens opts.archive as one site, the whole of it. Throws as site_archive does, and for an
  // archive of host folders ("'x.cdb' has host folders; give it with --archive"), whose sites
  // host_table.hpp's sites_of gives.
  explicit site(const options& opts, std::uint64_t generation = 1);
  // The site of `host` in `archive`: one of its reader().hosts(), or empty for the whole of an
  // archive without host folders.
  site(std::shared_ptr<const site_archive> archive, std::string_view host);

  // The entry for `path` (a normalized request path), or the wildcard or error page that covers
  // it; as site_archive's, within this site's host. Thread-safe, no allocation.
  [[nodiscard]] archive::lookup_status find(std::string_view path,
                                            archive::entry& out) const noexcept;
  [[nodiscard]] archive::lookup_status find_fallback(std::string_view path,
                                                     archive::entry& out) const noexcept {
    return archive_->find_fallback(host_, path, out);
  }

  [[nodiscard]] const site_archive& archive() const noexcept { return *archive_; }
  // The host whose site this is ("example.com", "*.example.com", "_default"), or empty.
  [[nodiscard]] const std::string& host() const noexcept { return host_; }
  [[nodiscard]] const header_lists& lists() const noexcept { return archive_->lists(); }
  // The site's pattern rules, tried when a path has no entry, and its forced rules, tried first
  // on entries flagged for them; null when it has none.
  [[nodiscard]] const archive::redirect_matcher* rules() const noexcept {
    return rules_ != nullptr && rules_->patterns ? &*rules_->patterns : nullptr;
  }
  [[nodiscard]] const archive::redirect_matcher* forced_rules() const noexcept {
    return rules_ != nullptr && rules_->forced ? &*rules_->forced : nullptr;
  }
  // Which load of its archive this is (site_archive::generation).
  [[nodiscard]] std::uint64_t generation() const noexcept { return archive_->generation(); }

 private:
  std::shared_ptr<const site_archive> archive_;
  std::string host_;  // in front of every key of this site; empty for a whole archive
  const site_rules* rules_ = nullptr;
};

}  // namespace kawipiko::serve
