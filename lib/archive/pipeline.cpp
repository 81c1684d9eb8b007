#include "archive/pipeline.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "archive/digest.hpp"
#include "archive/schema.hpp"
#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace kawipiko::archive {

namespace {

using base::throw_errno;
using base::throw_error;

// A compressed variant is kept only when it saves at least a tenth of the identity size and at
// least this many bytes: below that, the extra variant (and Vary) buys nothing.
constexpr std::size_t min_saving = 64;

// How many files may be read and compressed ahead of the writer, and how many bytes of content
// they may hold at most, so that memory stays bounded on large trees.
constexpr std::size_t window_per_job = 4;
constexpr std::uint64_t window_bytes = 512ull << 20;

// Reads a whole file, checking that it still has the size the walk saw.
std::string read_file(const std::string& file, std::uint64_t expected) {
  const base::unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno(errno, "cannot open", file);
  std::string content;
  content.resize(static_cast<std::size_t>(expected));
  std::size_t done = 0;
  bool changed = false;
  while (true) {
    if (done == content.size()) {
      // One more read must hit the end, else the file grew.
      char probe;
      const ssize_t extra = ::read(fd.get(), &probe, 1);
      if (extra < 0 && errno == EINTR) continue;
      if (extra < 0) throw_errno(errno, "cannot read", file);
      changed = extra > 0;
      break;
    }
    const ssize_t got = ::read(fd.get(), content.data() + done, content.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw_errno(errno, "cannot read", file);
    if (got == 0) {
      changed = true;
      break;
    }
    done += static_cast<std::size_t>(got);
  }
  if (changed) throw_error("file changed size while being read", file);
  return content;
}

// The first 128 bits of the SHA-256 of `bytes`, in hex: a variant's strong ETag.
std::string etag_of(std::string_view bytes) {
  return sha256_hex(bytes).substr(0, 32);
}

}  // namespace

std::string setting_name(const codec_setting& s) {
  return std::string(token(s.codec)) + "-" + std::to_string(s.level);
}

pipeline::pipeline(const std::vector<work_item>& items, const build_options& options,
                   const reader* previous, const build_hooks& hooks)
    : items_(items), options_(options), previous_(previous), hooks_(hooks), results_(items.size()) {
  unsigned jobs = options.jobs;
  if (jobs == 0) jobs = std::max(1u, std::thread::hardware_concurrency());
  window_ = std::max<std::size_t>(window_per_job * jobs, 8);
  for (unsigned i = 0; i < jobs; ++i) workers_.emplace_back([this] { work(); });
}

pipeline::~pipeline() {
  stop();
  for (auto& worker : workers_) worker.join();
}

work_result pipeline::take(std::size_t index) {
  std::unique_lock lock(mutex_);
  done_changed_.wait(lock, [&] { return results_[index].has_value(); });
  work_result result = std::move(*results_[index]);
  results_[index].reset();
  return result;
}

void pipeline::release(std::size_t index, std::uint64_t bytes) {
  {
    std::lock_guard lock(mutex_);
    written_ = index + 1;
    bytes_in_flight_ -= bytes;
  }
  window_changed_.notify_all();
}

void pipeline::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  window_changed_.notify_all();
}

void pipeline::work() {
  while (true) {
    std::size_t index;
    {
      std::unique_lock lock(mutex_);
      window_changed_.wait(lock, [&] {
        if (stopping_ || next_ >= items_.size()) return true;
        const bool in_window = next_ < written_ + window_;
        // Always let the item the writer waits for through, whatever its size.
        const bool fits =
            bytes_in_flight_ == 0 || bytes_in_flight_ + items_[next_].size <= window_bytes;
        return in_window && fits;
      });
      if (stopping_ || next_ >= items_.size()) return;
      index = next_++;
      bytes_in_flight_ += items_[index].size;
    }
    work_result result;
    try {
      result = process(items_[index]);
    } catch (...) {
      result.error = std::current_exception();
      stop();
    }
    {
      std::lock_guard lock(mutex_);
      results_[index] = std::move(result);
    }
    done_changed_.notify_all();
  }
}

bool pipeline::cancelled() const {
  return hooks_.cancelled && hooks_.cancelled();
}

work_result pipeline::process(const work_item& item) const {
  work_result result;
  result.content = item.file.empty() ? item.content : read_file(item.file, item.size);
  result.hash = sha256_hex(result.content);
  result.etag = result.hash.substr(0, 32);
  result.type = http::content_type_for(
      item.path, std::string_view(result.content)
                     .substr(0, std::min<std::size_t>(1024, result.content.size())));
  if (!result.type.compressible || result.content.size() <= min_saving) return result;
  for (const auto& setting : options_.codecs) {
    if (setting.codec == encoding::identity) continue;
    if (cancelled()) throw std::runtime_error("interrupted");
    coded_body coded;
    coded.setting = setting;
    const std::string name = setting_name(setting);
    if (previous_ != nullptr && reuse_from_previous(result, name, coded)) {
      result.coded.push_back(std::move(coded));
      continue;
    }
    coded.bytes = compress(setting.codec, setting.level, result.content);
    const std::size_t size = result.content.size();
    coded.kept = coded.bytes.size() + min_saving <= size && coded.bytes.size() <= size - size / 10;
    if (coded.kept) {
      coded.etag = etag_of(coded.bytes);
    } else {
      coded.bytes.clear();
    }
    result.coded.push_back(std::move(coded));
  }
  return result;
}

// A variant (or a "not worth it" mark) of the same content and setting in the previous
// archive. Reused bytes are decoded and compared first: a damaged old archive must not leak
// into the new one.
bool pipeline::reuse_from_previous(const work_result& result, const std::string& name,
                                   coded_body& coded) const {
  const auto& db = previous_->database();
  std::error_code error;
  if (db.find(schema::skip_key(result.hash, name), error)) {
    coded.kept = false;
    coded.reused = true;
    return true;
  }
  const auto old = db.find(schema::body_key(result.hash, name), error);
  if (!old || error) return false;
  const auto decoded = decompress(coded.setting.codec, *old, result.content.size());
  if (!decoded || *decoded != result.content) return false;
  coded.kept = true;
  coded.reused = true;
  coded.view = *old;
  coded.etag = etag_of(*old);
  return true;
}

}  // namespace kawipiko::archive
