#include "serve/worker.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <boost/asio/ip/v6_only.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "base/error.hpp"
#include "serve/transport.hpp"

namespace kawipiko::serve {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t read_buffer_size = 64 * 1024;
constexpr auto sweep_interval = std::chrono::milliseconds(250);
constexpr int accepts_per_round = 64;  // then the open connections get a turn
constexpr auto accept_back_off = std::chrono::milliseconds(50);

}  // namespace

coarse_clock::time_point coarse_now() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return coarse_clock::time_point(std::chrono::duration_cast<coarse_clock::duration>(
      std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec)));
}

namespace {

// A listening socket for `endpoint`, SO_REUSEPORT so that every worker has its own.
tcp::acceptor listen_on(net::io_context& io, const tcp::endpoint& endpoint) {
  const std::string where = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  tcp::acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) base::throw_errno(ec.value(), "cannot open a socket for", where);
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  const int on = 1;
  if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
    base::throw_errno(errno, "cannot set SO_REUSEPORT on", where);
  }
  if (endpoint.address().is_v6()) acceptor.set_option(net::ip::v6_only(true), ec);
  acceptor.bind(endpoint, ec);
  if (ec) base::throw_errno(ec.value(), "cannot bind", where);
  acceptor.listen(4096, ec);
  if (ec) base::throw_errno(ec.value(), "cannot listen on", where);
  acceptor.non_blocking(true, ec);
  if (ec) base::throw_errno(ec.value(), "cannot make non-blocking the socket of", where);
  return acceptor;
}

// The passed socket of `spec`, through a descriptor of this worker's own. Every worker (and,
// with --processes, every process) accepts from the one queue of the passed socket: SO_REUSEPORT
// would need a socket each. Each registers its own descriptor with its own loop, so that closing
// it (begin_drain) touches no other worker's, and the socket itself stays with the process (and
// with the service manager, whose copy keeps the queue across a restart).
tcp::acceptor adopt_passed(net::io_context& io, const listener_spec& spec) {
  const std::string where = std::to_string(spec.passed_fd);
  const int own = ::fcntl(spec.passed_fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) base::throw_errno(errno, "cannot duplicate the passed socket", where);
  tcp::acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.assign(spec.endpoint.protocol(), own, ec);
  if (ec) {
    ::close(own);
    base::throw_errno(ec.value(), "cannot take the passed socket", where);
  }
  acceptor.non_blocking(true, ec);
  if (ec) base::throw_errno(ec.value(), "cannot make non-blocking the passed socket", where);
  return acceptor;
}

int make_stop_fd() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) base::throw_errno(errno, "cannot make an eventfd for", "a worker");
  return fd;
}

}  // namespace

worker::worker(site_source& source, const options& opts, std::span<const listener_spec> listeners,
               std::atomic<std::size_t>& connections, tls_context_source tls,
               const worker_recording& recording)
    : options_(opts),
      source_(source),
      seen_generation_(source.generation()),
      holds_{site_hold{source.current(), 0}},
      process_connections_(connections),
      max_connections_(opts.limits.connections != 0 ? opts.limits.connections : SIZE_MAX),
      stop_signal_(io_, make_stop_fd()),
      stop_fd_(stop_signal_.native_handle()),
      tls_(std::move(tls)),
      sweep_timer_(io_),
      accept_timer_(io_),
      read_buffer_(read_buffer_size),
      counters_(recording.counters) {
  if (recording.access_log != nullptr) {
    access_ = std::make_unique<access_log_buffer>(*recording.access_log);
    records_.access = access_.get();
    records_.timed = recording.access_log->format() == access_log_format::json;
  }
  if (counters_) records_.counters = &*counters_;
  const bool records = access_ || counters_;
  connection_owner& owner = *this;
  auto& live = holds_.back();
  for (const auto& spec : listeners) {
    auto acceptor = spec.passed_fd >= 0 ? adopt_passed(io_, spec) : listen_on(io_, spec.endpoint);
    listeners_.push_back(std::make_unique<listener>(std::move(acceptor), spec, *live.generation,
                                                    opts, output_, date_, read_buffer_, owner));
    listeners_.back()->context.http.live = &live;
    if (records) listeners_.back()->context.http.records = &records_;
    if (spec.tls && !tls_buffers_) tls_buffers_ = std::make_unique<tls_buffers>();
  }
}

worker::~worker() {
  // Pending waits die with the io_context without running; the connections go first.
  connections_.clear_and_dispose([this](connection_base* c) {
    process_connections_.fetch_sub(1, std::memory_order_relaxed);
    if (counters_) counters_->closed(c->secure());
    delete c;
  });
}

tcp::endpoint worker::local_endpoint(std::size_t index) const {
  return listeners_.at(index)->acceptor.local_endpoint();
}

void worker::run() {
  for (auto& l : listeners_) do_accept(*l);
  do_sweep();
  stop_signal_.async_wait(net::posix::stream_descriptor::wait_read,
                          [this](const boost::system::error_code& ec) {
                            if (!ec) begin_drain();
                          });
  io_.run();
  if (access_) access_->flush();
}

// From another thread: a write to the eventfd, which the loop waits for like any socket, rather
// than a post, which would need the scheduler's lock on every operation.
void worker::stop() {
  const std::uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
}

void worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  for (auto& l : listeners_) l->context.http.draining = true;
  drain_deadline_ = coarse_now() + options_.limits.shutdown_grace;
  boost::system::error_code ignored;
  for (auto& l : listeners_) l->acceptor.close(ignored);
  accept_timer_.cancel();
  on_sweep();  // closes the idle connections now
}

// ---- accepting ----------------------------------------------------------------------------------

// Waits for the listener to be readable, then takes what is waiting (up to accepts_per_round).
void worker::do_accept(listener& l) {
  l.acceptor.async_wait(tcp::acceptor::wait_read,
                        [this, &l](const boost::system::error_code& ec) { on_acceptable(l, ec); });
}

void worker::on_acceptable(listener& l, const boost::system::error_code& ec) {
  if (ec || draining_) return;  // closed by begin_drain
  // The peer's address only for the access log.
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  auto* const from = access_ ? reinterpret_cast<sockaddr*>(&address) : nullptr;
  for (int i = 0; i < accepts_per_round; ++i) {
    length = sizeof address;
    const int fd = ::accept4(l.acceptor.native_handle(), from, from != nullptr ? &length : nullptr,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      admit(l, fd, from != nullptr ? peer_address(address) : peer_address());
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      return back_off_accepting(errno);
    }
    // The connection failed already (ECONNABORTED, EPROTO...): the next one.
  }
  do_accept(l);
}

// Out of descriptors or memory: back off a moment instead of spinning on accept. Waiting clients
// stay in the listen backlog and are served once descriptors are free again (as nginx does),
// rather than being accepted only to be closed. The operator gets one line per 10 s per thread,
// so a flood cannot flood the log too. (The connection cap normally keeps the server within its
// descriptor limit: see serve_process.)
void worker::back_off_accepting(int error) {
  const auto now = coarse_now();
  if (now >= next_accept_warning_) {
    next_accept_warning_ = now + std::chrono::seconds(10);
    std::fprintf(stderr, "kawipiko serve: warning: accept failed: %s; retrying every 50 ms\n",
                 std::strerror(error));
  }
  accept_timer_.expires_after(accept_back_off);
  accept_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || draining_) return;
    for (auto& l : listeners_) do_accept(*l);
  });
}

// A new connection, within the per-process cap (over it: closed at once).
void worker::admit(listener& l, int fd, const peer_address& peer) {
  if (process_connections_.fetch_add(1, std::memory_order_relaxed) >= max_connections_) {
    process_connections_.fetch_sub(1, std::memory_order_relaxed);
    ::close(fd);
    return;
  }
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  boost::system::error_code ec;
  socket_type socket(io_.get_executor());
  socket.assign(l.protocol, fd, ec);
  if (ec) {
    ::close(fd);
    process_connections_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  if (counters_) counters_->accepted(l.tls);
  try {
    if (l.tls) {
      start_connection<tls_transport>(l.context, peer, std::move(socket), tls_().get(),
                                      *tls_buffers_, records_.counters);
    } else {
      start_connection<tcp_transport>(l.context, peer, std::move(socket));
    }
  } catch (const std::bad_alloc&) {
    process_connections_.fetch_sub(1, std::memory_order_relaxed);  // the socket closes itself
    if (counters_) counters_->closed(l.tls);
  }
}

template <class Transport, class... Args>
void worker::start_connection(connection_context& context, const peer_address& peer,
                              Args&&... args) {
  auto c = std::make_unique<connection<Transport>>(context, peer, std::forward<Args>(args)...);
  auto& started = *c;
  connections_.push_back(*c.release());
  started.start();
}

void worker::on_done(connection_base& c) noexcept {
  connections_.erase(connections_.iterator_to(c));
  process_connections_.fetch_sub(1, std::memory_order_relaxed);
  if (counters_) counters_->closed(c.secure());
  delete &c;
  if (draining_ && connections_.empty()) io_.stop();
}

// ---- deadlines ----------------------------------------------------------------------------------

void worker::do_sweep() {
  sweep_timer_.expires_after(sweep_interval);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec == net::error::operation_aborted) return;
    on_sweep();
    do_sweep();
  });
}

// A reload's new generation is taken here, between batches: the next request of every
// connection is answered from it (within a sweep, 250 ms, of the reload).
void worker::refresh_site() {
  const auto generation = source_.generation();
  if (generation != seen_generation_) {
    seen_generation_ = generation;
    auto& live = holds_.emplace_back(site_hold{source_.current(), 0});
    for (auto& l : listeners_) {
      l->answers.use(*live.generation);
      l->context.http.live = &live;
    }
  }
  for (auto it = holds_.begin(); std::next(it) != holds_.end();) {
    it = it->users == 0 ? holds_.erase(it) : std::next(it);
  }
}

// An old generation whose mapping a writer waits for (site::release_by) may not be sent from
// past its deadline: the connections still sending from it, slow readers all, are closed, and
// the generation goes with them before the kernel lets the writer change the file.
void worker::cut_overdue(coarse_clock::time_point now) {
  for (auto hold = holds_.begin(); std::next(hold) != holds_.end(); ++hold) {
    if (hold->users == 0 || !hold->generation->overdue(now)) continue;
    std::size_t cut = 0;
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto& c = *it++;  // close() may delete `c`
      if (!c.sends_from(*hold)) continue;
      c.close();
      ++cut;
    }
    if (cut == 0) continue;  // closed at the last sweep, not yet deleted
    std::fprintf(stderr,
                 "kawipiko serve: closed %zu connection(s) still sending from an archive being "
                 "written in place (its lease runs out)\n",
                 cut);
  }
}

void worker::on_sweep() {
  refresh_site();
  const auto now = coarse_now();
  cut_overdue(now);
  if (access_) access_->sweep(now);
  const bool give_up = draining_ && now >= drain_deadline_;
  for (auto it = connections_.begin(); it != connections_.end();) {
    auto& c = *it++;  // check() or close() may delete `c`
    if (give_up) {
      c.close();
    } else {
      c.check(now);
    }
  }
  if (draining_ && connections_.empty()) io_.stop();
}

}  // namespace kawipiko::serve
