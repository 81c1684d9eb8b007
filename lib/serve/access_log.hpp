#pragma once
// The access log (--access-log): one line per answered request, malformed ones included, in the
// "combined" format of Apache and nginx (which log analysers such as GoAccess read) or as one
// JSON object a line. Each serving thread formats its lines into a buffer of its own
// (access_log_buffer) and hands a full one, or one older than a second, to the one writer thread
// of its process (access_log_writer) through a short queue: a lock per buffer, never per
// request, and never a wait on the disk: while the queue is full, new buffers are dropped and
// their lines counted. SIGUSR1 reopens the file (logrotate's postrotate).

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/unique_fd.hpp"
#include "serve/date_line.hpp"
#include "serve/metrics.hpp"
#include "serve/options.hpp"

namespace kawipiko::serve {

// What one line says; views valid for the call. An empty view is written "-".
struct access_entry {
  std::string_view client;  // the peer's address
  std::string_view method, target, protocol, host, referer, user_agent;
  unsigned status = 0;
  std::uint64_t bytes = 0;  // of the body
  std::string_view encoding;
  std::int64_t duration_us = 0;  // json only
  std::uint64_t generation = 0;  // of the archive that answered; 0: none (json: null)
};

// The most a line can take: every field is cut to a bound (the target to 2,048 bytes, the user
// agent to 512, the referer to 1,024, the host to 256, the method to 32) before escaping, which
// at most sextuples a byte (JSON's \u00XX).
inline constexpr std::size_t max_line_bytes = 26 * 1024;

// The time field's text (strftime, UTC): "10/Oct/2000:13:55:36 +0000" in combined,
// "2000-10-10T13:55:36Z" (RFC 3339) in json.
[[nodiscard]] const char* time_format(access_log_format format) noexcept;

// Writes the line for `e`, its newline included, at `out`, which has room for max_line_bytes;
// returns its size. `time` is the time field (time_format). In combined, '"', '\' and bytes
// below 0x20 or from 0x7f are written \xHH (as nginx's escape=default); in json, strings are
// JSON-escaped and bytes that are not UTF-8 written \u00HH: no field can end the line or the
// string it is in.
std::size_t format_line(access_log_format format, const access_entry& e, std::string_view time,
                        char* out) noexcept;

// Lines on their way to the file.
struct log_chunk {
  static constexpr std::size_t capacity = 64 * 1024;
  std::unique_ptr<char[]> bytes;
  std::size_t size = 0;
  std::size_t lines = 0;
};

class access_log_writer {
 public:
  // Chunks the queue holds at most: past them new ones are dropped.
  static constexpr std::size_t max_queued = 64;

  // Opens `path` for appending (created 0644 if missing), or takes stdout for "-". Throws
  // std::system_error naming the file.
  access_log_writer(std::string path, access_log_format format);
  // stop().
  ~access_log_writer();
  access_log_writer(const access_log_writer&) = delete;
  access_log_writer& operator=(const access_log_writer&) = delete;

  [[nodiscard]] access_log_format format() const noexcept { return format_; }

  // Starts the writer thread, in the process that serves. `counters`: where dropped lines are
  // counted for /metrics too (may be empty).
  void start(std::optional<process_counters> counters);

  // From a serving thread: queues `chunk`'s lines and leaves an empty chunk in its place, or,
  // past max_queued chunks, drops and counts them and empties `chunk`. Never waits on I/O.
  void hand_over(log_chunk& chunk) noexcept;

  // Thread-safe (SIGUSR1): the file is opened anew under its name, so that a renamed log is let
  // go; one that cannot be opened keeps the current one (a warning). Nothing for stdout. Done by
  // the writer thread if it runs, else at once.
  void reopen() noexcept;

  // Writes what is queued and ends the writer thread. A destination that takes nothing (a full
  // pipe) is given 2 s, then the rest is counted as dropped.
  void stop() noexcept;

  // Counts `lines` as dropped (any thread).
  void drop(std::uint64_t lines) noexcept;
  // Lines dropped so far.
  [[nodiscard]] std::uint64_t dropped() const noexcept {
    return dropped_.load(std::memory_order_relaxed);
  }

 private:
  void run();
  void write_chunk(const log_chunk& chunk);
  void reopen_now() noexcept;
  void report(bool at_end);

  std::string path_;
  access_log_format format_;
  base::unique_fd fd_;
  bool is_socket_ = false;  // written with send(MSG_DONTWAIT): its description may be shared
  std::optional<process_counters> counters_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::array<log_chunk, max_queued> ring_;  // the queue: queued_count_ chunks from ring_head_
  std::size_t ring_head_ = 0;
  std::size_t queued_count_ = 0;
  std::vector<log_chunk> spare_;  // emptied chunks, for the serving threads
  bool reopen_wanted_ = false;
  std::atomic<bool> stopping_{false};
  std::chrono::steady_clock::time_point give_up_at_{};  // set before stopping_
  std::atomic<std::uint64_t> dropped_{0};
  std::thread thread_;
  // The writer thread's: what was last reported on stderr (at most once a minute).
  std::uint64_t reported_ = 0;
  int write_error_ = 0;
  std::chrono::steady_clock::time_point next_report_{};
};

// One serving thread's lines: formatted into a chunk of its own, handed to the writer when it
// is full, when it is more than a second old (sweep), and at the end (flush).
class access_log_buffer {
 public:
  explicit access_log_buffer(access_log_writer& writer);

  void add(const access_entry& e) noexcept;
  // From the worker's sweep: hands over a chunk whose first line is a second old or more.
  void sweep(std::chrono::steady_clock::time_point now) noexcept;
  void flush() noexcept;

 private:
  access_log_writer& writer_;
  access_log_format format_;
  log_chunk chunk_;
  std::chrono::steady_clock::time_point first_line_{};
  date_line time_;  // the time field, formatted once a second
};

}  // namespace kawipiko::serve
