#include "serve/site.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "archive/schema.hpp"
#include "base/error.hpp"

namespace kawipiko::serve {

namespace {

// The longest key a site builds: a host ("*." and a 253-byte name) in front of the longest path
// the handler normalizes (handler.hpp: 8 KiB).
constexpr std::size_t max_key = 256 + 8192;

base::mapped_file open_file(const options& opts) {
  const auto how = opts.in_memory || opts.index_content ? base::mapped_file::mode::in_memory
                                                        : base::mapped_file::mode::leased_mmap;
  base::mapped_file file(opts.archive, how);
  if (opts.preload) file.preload();
  return file;
}

archive::reader open_reader(const base::mapped_file& file) {
  try {
    return archive::reader(file.bytes());
  } catch (const std::exception& e) {
    base::throw_error("cannot serve", file.path(), e.what());
  }
}

// Whether `key` holds a site's rules ("rules:<host>", "forced-rules:<host>").
bool is_rules_key(std::string_view key) noexcept {
  return key.starts_with(archive::schema::rules_prefix) ||
         key.starts_with(archive::schema::forced_rules_prefix);
}

// The matcher of the blob under `key`, if there is one; a corrupt blob refuses the archive.
std::optional<archive::redirect_matcher> matcher_at(const archive::reader& reader,
                                                    const std::string& path,
                                                    const std::string& key) {
  std::error_code error;
  const auto blob = reader.database().find(key, error);
  if (error) base::throw_error("cannot read", path, error.message());
  if (!blob) return std::nullopt;
  try {
    return archive::redirect_matcher(std::as_bytes(std::span(blob->data(), blob->size())));
  } catch (const std::exception& e) {
    base::throw_error("cannot serve", path, e.what());
  }
}

// The archive of a site that is all of it: one without host folders.
std::shared_ptr<const site_archive> whole_archive(const options& opts, std::uint64_t generation) {
  auto archive = std::make_shared<const site_archive>(opts, generation);
  if (archive->reader().has_host_folders()) {
    throw std::runtime_error(base::quote(opts.archive) +
                             " has host folders; give it with --archive");
  }
  return archive;
}

}  // namespace

site_archive::site_archive(const options& opts, std::uint64_t generation)
    : file_(open_file(opts)), reader_(open_reader(file_)), generation_(generation) {
  // Every entry is decoded and its header blocks checked once, now: the hot path then sends
  // blocks as they are (and HTTP/2 the lines split here). A malformed one is remembered and
  // answered with a 500 (and left out of the index), as the one bad record it is; the rest of the
  // archive is served. The walk skips the bodies (archive::reader::for_each_entry): an entry
  // stored among them was not checked, and is answered with a 500 too.
  const bool indexing = opts.index_paths || opts.index_content;
  // The build's identity: a digest of every entry (its header blocks hold the bodies' strong
  // ETags, content hashes), taken on the way; a few MB, not the whole image.
  const std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> digest(EVP_MD_CTX_new(),
                                                                  EVP_MD_CTX_free);
  if (!digest || EVP_DigestInit_ex(digest.get(), EVP_sha256(), nullptr) != 1) {
    base::throw_error("cannot digest", file_.path(), "no SHA-256");
  }
  std::vector<std::string_view> blocks;  // split into lines once all are known
  std::error_code error;
  const std::size_t entries_begin = reader_.for_each_entry(
      [&](std::string_view key, std::string_view value) {
        const bool is_rules = is_rules_key(key);
        EVP_DigestUpdate(digest.get(), key.data(), key.size());
        EVP_DigestUpdate(digest.get(), value.data(), value.size());
        if (is_rules) return;
        archive::entry entry;
        if (!archive::decode_entry(value, reader_.database(), entry)) return;  // 500 on lookup
        if (!archive::is_well_formed(entry)) {
          malformed_.insert(entry.variants[0].block.data());
          return;
        }
        for (std::size_t v = 0; v < entry.count; ++v) blocks.push_back(entry.variants[v].block);
        if (indexing && archive::schema::is_path_key(key)) {
          index_.try_emplace(key, entry);  // the first record wins
        }
      },
      error);
  if (error) base::throw_error("cannot read", file_.path(), error.message());
  lists_.add_all(blocks);
  unseen_before_ = reinterpret_cast<const char*>(file_.bytes().data()) + entries_begin;
  open_rules();
  unsigned char sum[EVP_MAX_MD_SIZE];
  unsigned int sum_size = 0;
  EVP_DigestFinal_ex(digest.get(), sum, &sum_size);
  static constexpr char hex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < 8 && i < sum_size; ++i) {
    build_id_ += hex[sum[i] >> 4];
    build_id_ += hex[sum[i] & 15];
  }
}

void site_archive::open_rules() {
  const std::vector<std::string_view> whole{std::string_view{}};
  for (const auto host : reader_.has_host_folders() ? reader_.hosts() : whole) {
    site_rules rules{matcher_at(reader_, file_.path(), archive::schema::rules_key(host)),
                     matcher_at(reader_, file_.path(), archive::schema::forced_rules_key(host))};
    if (rules.patterns || rules.forced) rules_.emplace(host, std::move(rules));
  }
}

const site_rules* site_archive::rules_of(std::string_view host) const noexcept {
  const auto found = rules_.find(host);
  return found == rules_.end() ? nullptr : &found->second;
}

archive::lookup_status site_archive::checked(archive::lookup_status status,
                                             const archive::entry& e) const noexcept {
  if (status != archive::lookup_status::found) return status;
  const char* const at = e.variants[0].block.data();
  if (at < unseen_before_ || (!malformed_.empty() && malformed_.contains(at))) {
    return archive::lookup_status::corrupt;
  }
  return status;
}

archive::lookup_status site_archive::find_fallback(std::string_view host, std::string_view path,
                                                   archive::entry& out) const noexcept {
  return checked(reader_.find_fallback(host, path, out), out);
}

archive::lookup_status site_archive::find(std::string_view key,
                                          archive::entry& out) const noexcept {
  if (!index_.empty()) {
    const auto found = index_.find(key);
    if (found == index_.end()) {
      // Not indexed: missing, or a corrupt record the index left out; the archive says which.
      return checked(reader_.find(key, out), out);
    }
    out = found->second;
    return archive::lookup_status::found;
  }
  return checked(reader_.find(key, out), out);
}

site::site(const options& opts, std::uint64_t generation)
    : site(whole_archive(opts, generation), {}) {}

site::site(std::shared_ptr<const site_archive> archive, std::string_view host)
    : archive_(std::move(archive)), host_(host), rules_(archive_->rules_of(host_)) {}

archive::lookup_status site::find(std::string_view path, archive::entry& out) const noexcept {
  if (host_.empty()) return archive_->find(path, out);
  // The key is the host, then the path: built here, so that a lookup stays one probe.
  std::array<char, max_key> key;  // only the bytes written are read
  if (host_.size() + path.size() > key.size()) return archive::lookup_status::not_found;
  std::memcpy(key.data(), host_.data(), host_.size());
  std::memcpy(key.data() + host_.size(), path.data(), path.size());
  return archive_->find(std::string_view(key.data(), host_.size() + path.size()), out);
}

}  // namespace kawipiko::serve
