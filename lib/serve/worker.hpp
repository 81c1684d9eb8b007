#pragma once
// One serving thread: its own io_context, its own SO_REUSEPORT listening socket, and the
// connections it accepted. Nothing is shared with other workers but the immutable site and a
// process-wide connection counter.
//
// Connections hold no buffer while idle: a worker waits for readability, reads into its own
// buffer, answers every complete request in it with one writev, and keeps only the bytes of an
// unfinished request (or of an unfinished write) with the connection. Timeouts are checked by
// one coarse sweep per worker, not by a timer per connection.
//
// The loop is the worker's own epoll set: the listener (level-triggered) and the connections
// (edge-triggered, each registered once), so a round of events costs one epoll_wait and a
// request one recv and one writev (see session::wait_readable for why not Asio sockets). The
// io_context holds the timers (timeout sweep, accept back-off) and stop()'s request; the loop
// gives it a turn (poll) every few milliseconds.

#include <sys/epoll.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "serve/date_line.hpp"
#include "serve/handler.hpp"
#include "serve/options.hpp"
#include "serve/output.hpp"
#include "serve/site.hpp"

namespace kawipiko::serve {

class session;

class worker {
 public:
  // Binds (SO_REUSEPORT) and listens on `endpoint`. Throws std::system_error naming the address.
  worker(const site& s, const options& opts, const boost::asio::ip::tcp::endpoint& endpoint,
         std::atomic<std::size_t>& connections);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // Runs the event loop until stop() has drained the connections (or the grace ran out).
  void run();
  // Thread-safe: stop accepting, close idle connections, let in-flight responses finish within
  // the shutdown grace, then return from run().
  void stop();

  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Lowers the per-process connection cap (options' --max-connections) to `cap`; call before
  // run(). The server uses it to keep connections within the descriptor limit.
  void limit_connections(std::size_t cap) noexcept { max_connections_ = std::min(max_connections_, cap); }

 private:
  friend class session;

  void listen_for_connections(bool on);
  void on_acceptable();
  void turn(std::span<epoll_event> events, int ready);
  void read_again(session& s) noexcept;
  void bury(session& s) noexcept;
  void reap() noexcept;
  void do_sweep();
  void on_sweep(const boost::system::error_code& ec);
  void begin_drain();
  void remember(session& s) noexcept;
  void forget(session& s) noexcept;

  const options& options_;
  std::atomic<std::size_t>& connections_;
  std::size_t max_connections_;
  // One thread runs it; only posting (stop()) comes from another, so the reactor's per-socket
  // locking is off and the scheduler's stays on.
  boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  boost::asio::ip::tcp::acceptor acceptor_;
  int epoll_fd_ = -1;  // the loop: the listener and the connections
  std::atomic<bool> stop_requested_{false};
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer accept_timer_;
  handler handler_;
  output output_;
  date_line date_;
  std::vector<char> read_buffer_;
  session* sessions_ = nullptr;  // a doubly linked list through the sessions themselves
  session* closed_ = nullptr;    // closed, deleted after the current round (a list too)
  session* again_first_ = nullptr;  // sessions with input left to read, in order
  session* again_last_ = nullptr;
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::chrono::steady_clock::time_point next_accept_warning_{};  // accept errors: one line per 10 s
};

}  // namespace kawipiko::serve
