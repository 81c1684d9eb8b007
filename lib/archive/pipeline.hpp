#pragma once
// The archiver's parallel stage (internal to lib/archive): worker threads read, hash and
// compress files (or take their compressed variants from the previous archive) ahead of the
// caller, who takes the results strictly in order and writes them. The window of work ahead is
// bounded in files and in bytes, so memory stays bounded on large trees, and the output order
// never depends on timing.

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "archive/builder.hpp"
#include "archive/reader.hpp"
#include "http/mime.hpp"

namespace kawipiko::archive {

struct work_item {
  std::string path;     // request path (names the content type)
  std::string file;     // filesystem path, or empty for generated content
  std::string content;  // generated content (folder listings)
  std::uint64_t size;
};

struct coded_body {
  codec_setting setting;
  bool kept = false;      // false: not worth it (a skip record is written)
  bool reused = false;    // taken from the previous archive
  std::string bytes;      // when kept and not reused
  std::string_view view;  // when reused: inside the previous archive's mapping
  std::string etag;       // 32 hex digits
  [[nodiscard]] std::string_view data() const { return reused ? view : bytes; }
};

struct work_result {
  std::string content;  // identity bytes
  std::string hash;     // hex SHA-256 of content
  std::string etag;     // identity ETag
  http::content_type type{};
  std::vector<coded_body> coded;
  std::exception_ptr error;
};

// "gzip-9", "br-11": a codec setting as the body keys name it.
[[nodiscard]] std::string setting_name(const codec_setting& s);

class pipeline {
 public:
  // Starts options.jobs workers (one per core when 0) over `items`. `previous` may be null.
  pipeline(const std::vector<work_item>& items, const build_options& options,
           const reader* previous, const build_hooks& hooks);
  // Stops and joins the workers (whatever is left undone is dropped).
  ~pipeline();
  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;

  // Blocks until item `index` is done and hands its result over; then call release(index).
  work_result take(std::size_t index);
  // The caller is done with item `index` (of `bytes` source bytes): the workers may run on.
  void release(std::size_t index, std::uint64_t bytes);
  void stop();

 private:
  void work();
  [[nodiscard]] bool cancelled() const;
  work_result process(const work_item& item) const;
  bool reuse_from_previous(const work_result& result, const std::string& name,
                           coded_body& coded) const;

  const std::vector<work_item>& items_;
  const build_options& options_;
  const reader* previous_;
  const build_hooks& hooks_;

  std::mutex mutex_;
  std::condition_variable window_changed_;
  std::condition_variable done_changed_;
  std::vector<std::optional<work_result>> results_;
  std::size_t next_ = 0;
  std::size_t written_ = 0;
  std::size_t window_ = 8;
  std::uint64_t bytes_in_flight_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace kawipiko::archive
