#pragma once
// One serving thread: its own io_context, its own SO_REUSEPORT listening socket, and the
// connections it accepted. Nothing is shared with other workers but the immutable site and a
// process-wide connection counter.
//
// Connections hold no buffer while idle: a worker waits for readability, reads into its own
// buffer, answers every complete request in it with one writev, and keeps only the bytes of an
// unfinished request (or of an unfinished write) with the connection. Timeouts are checked by
// one coarse sweep per worker, not by a timer per connection.

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
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

  void do_accept();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);
  void do_sweep();
  void on_sweep(const boost::system::error_code& ec);
  void begin_drain();
  void remember(session& s) noexcept;
  void forget(session& s) noexcept;

  const options& options_;
  std::atomic<std::size_t>& connections_;
  std::size_t max_connections_;
  boost::asio::io_context io_{1};
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer accept_timer_;
  handler handler_;
  output output_;
  date_line date_;
  std::vector<char> read_buffer_;
  session* sessions_ = nullptr;  // a doubly linked list through the sessions themselves
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::chrono::steady_clock::time_point next_accept_warning_{};  // accept errors: one line per 10 s
};

}  // namespace kawipiko::serve
