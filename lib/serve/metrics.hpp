#pragma once
// The server's counters, for /metrics (metrics_endpoint.hpp). Each serving thread counts its own
// answers and connections in integers that only it writes, and a scrape reads and sums them from
// another thread: no shared cache line and no locked instruction on the request path. They live
// in one shared anonymous mapping made before any fork, so that with --processes the
// supervisor, which answers the scrapes, sums the threads of every process. The text written is
// Prometheus' exposition format 0.0.4.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "serve/handler.hpp"

namespace kawipiko::serve {

// A number that one thread writes and others (other processes too) read. Relaxed: add() is a
// plain load, add and store, which costs what an integer increment does; a reader sees some
// recent value. add_shared() is for the rare counter that several threads add to.
class counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void add_shared(std::uint64_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  void set(std::uint64_t n) noexcept { value_.store(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> value_{0};
};
// Lock-free atomics are address-free, so they work in memory shared by processes.
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// The protocol of an answer, as the counters and the access log name it.
enum class wire_protocol : std::uint8_t { http10, http11, http2 };

// "HTTP/1.0", "HTTP/1.1", "HTTP/2.0".
[[nodiscard]] std::string_view protocol_name(wire_protocol p) noexcept;

// The counters of one serving thread: a view into a metrics_store, which must outlive it. Only
// that thread calls it.
class thread_counters {
 public:
  // An answer: `req` is null for a request that could not be parsed.
  void answered(wire_protocol protocol, const request* req, const response_info& info) noexcept;
  void accepted(bool tls) noexcept { base_[tls ? 1 : 0].add(); }
  void closed(bool tls) noexcept { base_[tls ? 3 : 2].add(); }
  // A TLS handshake that completed, or that OpenSSL refused.
  void handshake(bool completed) noexcept { base_[completed ? 4 : 5].add(); }

 private:
  friend class metrics_store;
  thread_counters(counter* base, std::size_t sites) noexcept : base_(base), sites_(sites) {}

  counter* base_;
  std::size_t sites_;
};

// What a serving process counts outside its threads: its access log's dropped lines, and the
// state of each of its archives. A view into a metrics_store, which must outlive it.
class process_counters {
 public:
  // From any thread of the process.
  void dropped_lines(std::uint64_t lines) noexcept { base_[0].add_shared(lines); }
  // From the process's main thread: archive `index` (in the store's order) is live at this
  // generation, size and build (16 hex digits).
  void archive_state(std::size_t index, std::uint64_t generation, std::uint64_t size,
                     std::string_view build) noexcept;
  void reload_done(std::size_t index) noexcept { archive(index)[3].add(); }
  void reload_refused(std::size_t index) noexcept { archive(index)[4].add(); }

 private:
  friend class metrics_store;
  explicit process_counters(counter* base) noexcept : base_(base) {}
  [[nodiscard]] counter* archive(std::size_t index) const noexcept { return base_ + 1 + index * 5; }

  counter* base_;
};

class metrics_store {
 public:
  // Room for `processes` x `threads` serving threads answering from the sites named `hosts`
  // (the --host patterns, in order) and a default one, and for the archives named `archives`
  // (paths, in the order the server keeps them). Throws std::system_error if the mapping fails.
  metrics_store(unsigned processes, unsigned threads, std::vector<std::string> hosts,
                std::vector<std::string> archives);
  ~metrics_store();
  metrics_store(const metrics_store&) = delete;
  metrics_store& operator=(const metrics_store&) = delete;

  [[nodiscard]] thread_counters thread(unsigned process, unsigned thread) const noexcept;
  [[nodiscard]] process_counters process(unsigned process) const noexcept;

  // Process `process` is gone (it died): its open connections are closed. Only while no process
  // runs in that slot.
  void forget_connections(unsigned process) noexcept;

  // The exposition text of every counter, summed over the processes and threads, into `out`.
  void write(std::string& out) const;

 private:
  [[nodiscard]] counter* process_base(unsigned process) const noexcept;
  [[nodiscard]] counter* thread_base(unsigned process, unsigned thread) const noexcept;
  [[nodiscard]] std::uint64_t sum_threads(std::size_t offset) const noexcept;
  void write_requests(std::string& out) const;
  void write_connections(std::string& out) const;
  void write_archives(std::string& out) const;

  unsigned processes_;
  unsigned threads_;
  std::vector<std::string> sites_;  // "_default", then the host patterns
  std::vector<std::string> archives_;
  std::size_t thread_size_;   // counters per thread
  std::size_t process_size_;  // counters per process, its threads included
  counter* counters_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace kawipiko::serve
