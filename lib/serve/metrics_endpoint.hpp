#pragma once
// The operations listener (--metrics-bind): GET /metrics (the counters of metrics.hpp), /healthz
// and /readyz for load balancers and orchestrators. A plain HTTP/1.1 listener served by a small
// thread of its own with a poll loop, never by the serving threads' loops, so a scrape costs
// serving nothing but the reads of the counters. One request per connection (Connection: close),
// at most 64 connections at once, each given 5 s.

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace kawipiko::serve {

// Where the server is in its life, as /readyz tells it.
enum class serving_state {
  starting,  // archives loading, listeners not all open yet: 503
  ready,     // every archive loaded, every listener open: 200
  draining,  // SIGTERM: finishing the answers under way: 503
};

// Writes the exposition text of the counters to the end of its argument.
using metrics_writer = std::function<void(std::string&)>;

// The whole answer (status line, fields, body) to a request whose header is `head` (up to and
// including its empty line): GET /metrics, /healthz (200 unless starting), /readyz; 404 for
// another path, 405 for another method, 400 for what is not an HTTP/1.x request line. The query
// is ignored. I/O-free.
[[nodiscard]] std::string answer_operations(std::string_view head, serving_state state,
                                            const metrics_writer& metrics);

class metrics_endpoint {
 public:
  static constexpr std::size_t max_clients = 64;

  // Binds and listens on `where` (port 0: one the kernel picks). Throws std::system_error naming
  // the address.
  metrics_endpoint(const boost::asio::ip::tcp::endpoint& where, metrics_writer metrics);
  // Stops the thread (if started) and closes every descriptor.
  ~metrics_endpoint();
  metrics_endpoint(const metrics_endpoint&) = delete;
  metrics_endpoint& operator=(const metrics_endpoint&) = delete;

  // Starts answering, on a thread of its own.
  void start();
  // Thread-safe.
  void set_state(serving_state state) noexcept { state_.store(state, std::memory_order_release); }
  [[nodiscard]] unsigned short port() const noexcept { return port_; }

  // In a child forked from this process, where the thread does not run: closes the descriptors
  // the child inherited (the listener, the clients being answered), so that they are the
  // parent's alone. Touches nothing else.
  void close_inherited() noexcept;

 private:
  struct client;
  void run();
  void accept_clients();
  bool read_some(client& c) const;
  static bool write_some(client& c);
  void finish(std::array<client, max_clients>& clients, std::size_t i) noexcept;

  int listener_ = -1;
  int stop_fd_ = -1;  // an eventfd: the destructor wakes the thread with it
  unsigned short port_ = 0;
  metrics_writer metrics_;
  std::atomic<serving_state> state_{serving_state::starting};
  // The clients' descriptors, -1 where none: what close_inherited() closes.
  std::array<std::atomic<int>, max_clients> client_fds_;
  std::thread thread_;
};

}  // namespace kawipiko::serve
