#pragma once
// One serving thread: its io_context (the thread's only event loop: sockets, timers and stop()
// all go through it), its own SO_REUSEPORT listening socket (or, under socket activation, its own
// descriptor of the one passed socket), and the connections it accepted.
// Nothing is shared with other workers but the immutable site and a process-wide connection
// counter. Deadlines are checked by one sweep per worker every 250 ms, not by a timer per
// connection.

#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "serve/access_log.hpp"
#include "serve/connection.hpp"
#include "serve/date_line.hpp"
#include "serve/handler.hpp"
#include "serve/metrics.hpp"
#include "serve/options.hpp"
#include "serve/output.hpp"
#include "serve/request_log.hpp"
#include "serve/site.hpp"
#include "serve/site_source.hpp"
#include "serve/tls_transport.hpp"

namespace kawipiko::serve {

// Where a TLS listener takes the context of each new connection. Certificates are reloaded on
// SIGHUP: a connection keeps the context it started with (its SSL object holds a reference).
using tls_context_source = std::function<std::shared_ptr<SSL_CTX>()>;

// One listening socket of a worker: plain HTTP or TLS, and how its answers look.
struct listener_spec {
  boost::asio::ip::tcp::endpoint endpoint;
  bool tls = false;
  answer_settings answers;
  // A listening socket passed by the service manager (socket activation), bound to `endpoint`:
  // the worker accepts from a duplicate of it instead of binding its own. -1: none.
  int passed_fd = -1;
};

// What a worker records of its answers besides sending them; each may be off.
struct worker_recording {
  access_log_writer* access_log = nullptr;  // the process's, whose writer thread runs
  std::optional<thread_counters> counters;  // this thread's
};

class worker final : connection_owner {
 public:
  // Binds (SO_REUSEPORT) and listens on each endpoint, or takes a duplicate of its passed
  // socket; `tls` gives the TLS listeners their context (it may be empty when there is none).
  // Throws std::system_error naming the address.
  worker(site_source& source, const options& opts, std::span<const listener_spec> listeners,
         std::atomic<std::size_t>& connections, tls_context_source tls = {},
         const worker_recording& recording = {});
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // Runs the io_context until stop() has drained the connections (or the grace ran out).
  void run();
  // Thread-safe: stop accepting, close idle connections, let in-flight responses finish within
  // the shutdown grace, then return from run().
  void stop();

  // Where listener `index` (in the constructor's order) listens: the port, if it was 0.
  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint(std::size_t index = 0) const;

  // Lowers the per-process connection cap (options' --max-connections) to `cap`; call before
  // run(). The server uses it to keep connections within the descriptor limit.
  void limit_connections(std::size_t cap) noexcept {
    max_connections_ = std::min(max_connections_, cap);
  }

 private:
  using connection_list = boost::intrusive::list<connection_base>;

  struct listener {
    listener(boost::asio::ip::tcp::acceptor socket, const listener_spec& spec, const site_set& s,
             const options& opts, output& out, date_line& date, std::span<char> buffer,
             connection_owner& owner)
        : acceptor(std::move(socket)),
          protocol(spec.endpoint.protocol()),
          tls(spec.tls),
          answers(s, spec.answers),
          context{{answers, opts}, out, date, buffer, owner} {}

    boost::asio::ip::tcp::acceptor acceptor;
    boost::asio::ip::tcp protocol;  // of the connections it accepts
    bool tls;
    handler answers;
    connection_context context;  // what its connections are lent
  };

  void do_accept(listener& l);
  void on_acceptable(listener& l, const boost::system::error_code& ec);
  void back_off_accepting(int error);
  void admit(listener& l, int fd, const peer_address& peer);
  template <class Transport, class... Args>
  void start_connection(connection_context& context, const peer_address& peer, Args&&... args);
  void do_sweep();
  void on_sweep();
  void begin_drain();
  void on_done(connection_base& c) noexcept override;
  void refresh_site();
  void cut_overdue(coarse_clock::time_point now);

  const options& options_;
  site_source& source_;
  std::uint64_t seen_generation_;
  // The generations this worker has answered from, the live one last; an older one goes once
  // nothing of it waits to be sent.
  std::list<site_hold> holds_;
  std::atomic<std::size_t>& process_connections_;  // every worker's, for the cap
  std::size_t max_connections_;
  // One thread runs it and nothing else touches it (stop() wakes it through stop_signal_), so
  // Asio's locking is off, in the scheduler as in the reactor.
  boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE};
  boost::asio::posix::stream_descriptor stop_signal_;  // an eventfd, which it owns
  const int stop_fd_;  // the same eventfd, for stop() to write to from another thread
  std::vector<std::unique_ptr<listener>> listeners_;
  tls_context_source tls_;
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer accept_timer_;
  output output_;
  date_line date_;
  std::vector<char> read_buffer_;
  std::unique_ptr<tls_buffers> tls_buffers_;   // with a TLS listener only
  std::unique_ptr<access_log_buffer> access_;  // with --access-log
  std::optional<thread_counters> counters_;    // with --metrics-bind
  answer_records records_;                     // both, for the protocols
  connection_list connections_;                // owned: deleted when done, or with the worker
  bool draining_ = false;
  coarse_clock::time_point drain_deadline_{};
  coarse_clock::time_point next_accept_warning_{};  // accept errors: one line per 10 s
};

}  // namespace kawipiko::serve
