#include "serve/worker.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "base/error.hpp"
#include "serve/parser.hpp"

namespace kawipiko::serve {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

// The time for a connection's deadline. Deadlines are checked by a sweep every 250 ms, so the
// coarse clock (a few milliseconds of resolution, no time-stamp counter read) is precise enough,
// and it is read on every request. Same epoch as steady_clock (CLOCK_MONOTONIC) on Linux.
clock_type::time_point coarse_now() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return clock_type::time_point(std::chrono::duration_cast<clock_type::duration>(
      std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec)));
}

constexpr std::size_t read_buffer_size = 64 * 1024;
constexpr auto sweep_interval = std::chrono::milliseconds(250);
constexpr auto linger_time = std::chrono::seconds(2);
constexpr std::size_t linger_bytes = 1 << 20;  // discarded at most while lingering

constexpr int accepts_per_round = 64;  // then the open connections get a turn
// The io_context's timers and stop() are served at least this often (the loop's longest sleep).
constexpr auto asio_turn = std::chrono::milliseconds(20);

int make_epoll() {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) base::throw_errno(errno, "cannot create an epoll set for", "connections");
  return fd;
}

std::string_view method_name(method m) {
  switch (m) {
    case method::get:
      return "GET";
    case method::head:
      return "HEAD";
    case method::other:
      return "OTHER";
    case method::unknown:
      return "UNKNOWN";
  }
  return "?";
}

}  // namespace

// One connection: a non-blocking socket in its worker's epoll set (edge-triggered, for input
// and output alike, registered once). It remembers the edges it was told of: `readable_` until a
// recv finds the socket empty, `writable_` until a write is cut short. Lives in its worker's
// list; once closed, the worker deletes it after the current round of events.
class session {
 public:
  session* previous = nullptr;  // the worker's list (then its list of the closed)
  session* next = nullptr;
  session* again = nullptr;  // the worker's queue of sessions with input left to read
  bool queued = false;

  session(worker& w, int fd) : worker_(w), fd_(fd) {
    deadline_ = coarse_now() + w.options_.limits.idle_timeout;
  }
  ~session() {
    if (fd_ >= 0) ::close(fd_);
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // Joins the worker's epoll set; the registration reports input that is there already.
  [[nodiscard]] bool start() {
    epoll_event event{};
    event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    event.data.ptr = this;
    return ::epoll_ctl(worker_.epoll_fd_, EPOLL_CTL_ADD, fd_, &event) == 0;
  }

  [[nodiscard]] bool closed() const noexcept { return closed_; }

  // What epoll reported for the socket.
  void on_event(std::uint32_t events) {
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) readable_ = true;
    // The end of the input may have come with the last bytes, before the recv that took them:
    // then no later edge announces it, so the session reads until recv says so.
    if ((events & (EPOLLRDHUP | EPOLLHUP)) != 0) hung_up_ = true;
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) writable_ = true;
    resume();
  }

  // Goes on with what the socket allows: the unfinished write first, then input.
  void resume() {
    if (closed_) return;
    if (state_ == state::writing) {
      if (writable_) on_writable();
      return;
    }
    if (readable_) on_readable();
  }

  // Timeouts and draining, from the worker's sweep.
  void check(clock_type::time_point now) {
    if (closed_) return;
    if (worker_.options_.limits.timeouts && now >= deadline_) return close();
    if (worker_.draining_ && state_ == state::idle && in_.empty()) close();
  }

  // Closes the socket (which leaves the epoll set with it); the worker deletes the session
  // after the current round of events.
  void close() {
    if (closed_) return;
    closed_ = true;
    ::close(fd_);
    fd_ = -1;
    worker_.bury(*this);
  }

 private:
  enum class state { idle, reading, writing, lingering };

  // Input is awaited. An edge that came while a write waited, or a read that filled the whole
  // buffer, leaves `readable_` set: then the session queues itself to read again after the
  // others had their turn. Otherwise the next edge brings it back.
  //
  // This is why connections are not Asio sockets: Asio's reactor drops edges that come while
  // no read is queued, so each read it starts first tries recv at once, and after a response
  // that recv almost always fails with EAGAIN, as the client has not sent its next request yet
  // (strace under wrk: 27,484 of 57,382 recv calls for 29,896 responses). A plain Asio
  // readiness wait instead costs an epoll_ctl each (measured: 35,551 for 35,552 requests).
  void wait_readable() {
    if (readable_) worker_.read_again(*this);
  }

  void on_readable() {
    if (state_ == state::lingering) return linger();
    auto& buffer = worker_.read_buffer_;
    const std::size_t kept = in_.size();
    std::memcpy(buffer.data(), in_.data(), kept);
    const std::size_t room = buffer.size() - kept;
    const ssize_t got = ::recv(fd_, buffer.data() + kept, room, 0);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        readable_ = false;
        return;
      }
      if (errno == EINTR) return wait_readable();
      return close();  // reset and friends: routine, not logged
    }
    if (got == 0) {
      // The client is done sending: answer what is complete, then close.
      readable_ = false;
      peer_done_ = true;
      if (kept == 0) return close();
    } else {
      // Short: the socket is empty now, but for the end of the input if it came already.
      readable_ = static_cast<std::size_t>(got) == room || hung_up_;
    }
    if (kept == 0) {
      // The first bytes of a request: the header timeout starts now.
      state_ = state::reading;
      deadline_ = coarse_now() + worker_.options_.limits.header_timeout;
    }
    answer({buffer.data(), kept + static_cast<std::size_t>(got)});
  }

  // Answers every complete request at the start of `input` into one batch and writes it.
  void answer(std::string_view input) {
    auto& out = worker_.output_;
    auto& limits = worker_.options_.limits;
    out.clear();
    std::size_t offset = 0;
    const auto date = worker_.date_.get();
    while (offset < input.size() && !closing_ && out.has_room_for_response()) {
      request req;
      const auto started = worker_.options_.debug ? clock_type::now() : clock_type::time_point{};
      const auto parsed = parse_request(input.substr(offset), limits.header_bytes, req);
      if (parsed.status == parse_status::need_more) break;
      response_info info;
      if (parsed.status == parse_status::complete) {
        ++requests_;
        const bool last = requests_ >= limits.requests_per_connection || worker_.draining_;
        info = worker_.handler_.respond(
            req, last ? connection_end::close : connection_end::as_requested, date, out);
        offset += parsed.consumed;
      } else {
        info = worker_.handler_.respond_error(refusal_status(parsed.status), body_mode::with_body,
                                              connection_end::close, date, out);
        offset = input.size();
      }
      if (info.close) closing_ = true;
      if (info.corrupt) {
        std::fprintf(stderr, "kawipiko serve: error: corrupt archive record for '%.*s'\n",
                     static_cast<int>(std::min<std::size_t>(req.target.size(), 200)),
                     req.target.data());
      }
      if (worker_.options_.debug) log(req, parsed.status, info, started);
    }
    const auto rest = input.substr(offset);
    if (closing_ || rest.empty()) {
      in_.clear();
    } else if (rest.data() != in_.data()) {
      in_.assign(rest);
    }
    if (peer_done_ && !closing_) {
      // What is left can never complete.
      closing_ = true;
      in_.clear();
    }
    more_buffered_ = !closing_ && !in_.empty() && !out.has_room_for_response();
    if (out.empty()) {
      if (closing_) return finish();
      if (in_.empty()) become_idle();
      return wait_readable();
    }
    write(out.parts());
  }

  void become_idle() {
    state_ = state::idle;
    deadline_ = coarse_now() + worker_.options_.limits.idle_timeout;
  }

  // Sends `parts`; what the socket does not take now is kept (made-up text copied out of the
  // worker's scratch area, archive bytes by reference) and sent when it becomes writable.
  //
  // One writev, bodies included, rather than sendfile(2) for large bodies: measured here on
  // loopback (wrk, 5 s runs, server pinned to one core), sendfile from the archive file above
  // 32 KiB cost more CPU per python-docs page (23.5 vs 21.3 us) and halved the throughput of a
  // 10 MiB file (2.0 vs 4.6 GB/s, nginx with sendfile: 2.0), though it used a third of the CPU
  // on that file; from 1 KiB on, python-docs pages at 1,024 connections cost 24.5 vs 23.4 us
  // and gzip pages at 16 cost 5.8 vs 6.1 us but gave fewer requests/s (the client then copies
  // from cold page-cache pages). Revisit for real NICs, where the copy it saves matters more.
  void write(std::span<const iovec> parts) {
    std::size_t total = 0;
    for (const auto& p : parts) total += p.iov_len;
    ssize_t sent = 0;
    do {
      sent = ::writev(fd_, parts.data(), static_cast<int>(parts.size()));
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return close();
      sent = 0;
    }
    if (static_cast<std::size_t>(sent) == total) return written();
    keep_unsent(parts, static_cast<std::size_t>(sent));
    state_ = state::writing;
    writable_ = false;  // cut short: the socket's buffer is full; the EPOLLOUT edge comes back
    deadline_ = coarse_now() + worker_.options_.limits.write_timeout;
  }

  void keep_unsent(std::span<const iovec> parts, std::size_t sent) {
    // First pass: the text to copy, so that pointers into it stay valid.
    std::size_t skip = sent, text = 0;
    for (const auto& p : parts) {
      const std::size_t drop = std::min(skip, p.iov_len);
      skip -= drop;
      if (p.iov_len > drop && worker_.output_.in_scratch(p.iov_base)) text += p.iov_len - drop;
    }
    std::string copied;
    copied.reserve(text);
    std::vector<iovec> pending;
    pending.reserve(parts.size());
    skip = sent;
    for (const auto& p : parts) {
      const std::size_t drop = std::min(skip, p.iov_len);
      skip -= drop;
      if (p.iov_len == drop) continue;
      const char* from = static_cast<const char*>(p.iov_base) + drop;
      const std::size_t size = p.iov_len - drop;
      if (worker_.output_.in_scratch(p.iov_base)) {
        const std::size_t at = copied.size();
        copied.append(from, size);
        pending.push_back({copied.data() + at, size});
      } else {
        pending.push_back({const_cast<char*>(from), size});
      }
    }
    pending_text_ = std::move(copied);
    pending_ = std::move(pending);
  }

  void on_writable() {
    std::size_t total = 0;
    for (const auto& p : pending_) total += p.iov_len;
    const std::size_t count = std::min<std::size_t>(pending_.size(), 1024);
    ssize_t sent = 0;
    do {
      sent = ::writev(fd_, pending_.data(), static_cast<int>(count));
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return close();
      writable_ = false;  // a stale edge: wait for the next
      return;
    }
    if (static_cast<std::size_t>(sent) == total) {
      pending_.clear();
      pending_text_.clear();
      return written();
    }
    // Progress: drop what went out and wait again, with a fresh write deadline.
    std::size_t skip = static_cast<std::size_t>(sent);
    std::size_t first = 0;
    while (skip > 0 && skip >= pending_[first].iov_len) skip -= pending_[first++].iov_len;
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(first));
    if (skip > 0) {
      pending_[0].iov_base = static_cast<char*>(pending_[0].iov_base) + skip;
      pending_[0].iov_len -= skip;
    }
    writable_ = false;  // cut short again
    deadline_ = coarse_now() + worker_.options_.limits.write_timeout;
  }

  // The batch is out.
  void written() {
    if (closing_) return finish();
    if (more_buffered_) {
      // The batch was full: answer what is still buffered before reading more.
      auto& buffer = worker_.read_buffer_;
      const std::size_t kept = in_.size();
      std::memcpy(buffer.data(), in_.data(), kept);
      return answer({buffer.data(), kept});
    }
    if (in_.empty()) {
      become_idle();
    } else {
      state_ = state::reading;
    }
    wait_readable();
  }

  // Half-closes and reads (and drops) what the client still sends for a moment, so that the
  // last response is not destroyed by a reset.
  void finish() {
    ::shutdown(fd_, SHUT_WR);
    state_ = state::lingering;
    deadline_ = coarse_now() + linger_time;
    wait_readable();
  }

  void linger() {
    auto& buffer = worker_.read_buffer_;
    while (lingered_ <= linger_bytes) {
      const ssize_t got = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (got == 0) return close();
      if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          readable_ = false;
          return;
        }
        if (errno == EINTR) return wait_readable();
        return close();
      }
      lingered_ += static_cast<std::size_t>(got);
    }
    close();
  }

  void log(const request& req, parse_status parsed, const response_info& info,
           clock_type::time_point started) {
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started).count();
    const auto target = parsed == parse_status::complete ? req.target : std::string_view("-");
    std::fprintf(stderr, "[debug] %s %.*s %u %s %llu %lldus\n",
                 parsed == parse_status::complete ? method_name(req.verb).data() : "-",
                 static_cast<int>(std::min<std::size_t>(target.size(), 1024)), target.data(),
                 info.status, archive::token(info.coding).data(),
                 static_cast<unsigned long long>(info.body_bytes), static_cast<long long>(micros));
  }

  worker& worker_;
  int fd_ = -1;
  state state_ = state::idle;
  clock_type::time_point deadline_;
  std::string in_;              // an unfinished request's bytes
  std::vector<iovec> pending_;  // an unfinished write
  std::string pending_text_;
  std::size_t requests_ = 0;
  std::size_t lingered_ = 0;
  bool readable_ = false;  // an input edge came and the socket may not be empty
  bool writable_ = false;  // an output edge came since the last write was cut short
  bool hung_up_ = false;   // the peer's end of input (or a hang-up) was reported
  bool closed_ = false;
  bool closing_ = false;  // close once the current batch is written
  bool peer_done_ = false;
  bool more_buffered_ = false;
};

worker::worker(const site& s, const options& opts, const tcp::endpoint& endpoint,
               std::atomic<std::size_t>& connections)
    : options_(opts),
      connections_(connections),
      max_connections_(opts.limits.connections != 0 ? opts.limits.connections : SIZE_MAX),
      acceptor_(io_),
      epoll_fd_(make_epoll()),
      sweep_timer_(io_),
      accept_timer_(io_),
      handler_(s, opts.security_headers),
      read_buffer_(read_buffer_size) {
  const std::string where = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) base::throw_errno(ec.value(), "cannot open a socket for", where);
  acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  const int on = 1;
  if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
    base::throw_errno(errno, "cannot set SO_REUSEPORT on", where);
  }
  if (endpoint.address().is_v6()) acceptor_.set_option(net::ip::v6_only(true), ec);
  acceptor_.bind(endpoint, ec);
  if (ec) base::throw_errno(ec.value(), "cannot bind", where);
  acceptor_.listen(4096, ec);
  if (ec) base::throw_errno(ec.value(), "cannot listen on", where);
  acceptor_.non_blocking(true, ec);
  if (ec) base::throw_errno(ec.value(), "cannot make non-blocking the socket of", where);
}

worker::~worker() {
  // The queue of sessions to read again is dropped first: reap() keeps queued sessions.
  for (session* s = std::exchange(again_first_, nullptr); s != nullptr;) {
    s->queued = false;
    s = std::exchange(s->again, nullptr);
  }
  again_last_ = nullptr;
  while (sessions_ != nullptr) {
    session* s = sessions_;
    forget(*s);
    delete s;
  }
  reap();
  ::close(epoll_fd_);
}

tcp::endpoint worker::local_endpoint() const {
  return acceptor_.local_endpoint();
}

void worker::run() {
  listen_for_connections(true);
  do_sweep();
  const auto work = net::make_work_guard(io_);  // the loop below decides when it is over
  std::array<epoll_event, 256> events;
  auto next_asio_turn = coarse_now();
  while (!io_.stopped()) {
    const int sleep = again_first_ != nullptr ? 0 : static_cast<int>(asio_turn.count());
    const int ready = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), sleep);
    turn(events, ready);
    const auto now = coarse_now();
    if (now >= next_asio_turn || stop_requested_.load(std::memory_order_relaxed)) {
      io_.poll();
      next_asio_turn = now + asio_turn;
    }
  }
}

void worker::stop() {
  net::post(io_, [this] { begin_drain(); });
  stop_requested_.store(true, std::memory_order_relaxed);  // the loop polls io_ on its next round
}

void worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  drain_deadline_ = clock_type::now() + options_.limits.shutdown_grace;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_timer_.cancel();
  on_sweep({});  // closes the idle connections now
}

// The listener in the loop's epoll set (level-triggered), or out of it while accept backs off.
void worker::listen_for_connections(bool on) {
  epoll_event event{};
  event.events = on ? static_cast<std::uint32_t>(EPOLLIN) : 0U;
  event.data.ptr = nullptr;  // the listener; sessions are never null
  const int fd = acceptor_.native_handle();
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0 && errno == ENOENT) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }
}

// Takes the waiting connections, up to accepts_per_round, then waits again.
void worker::on_acceptable() {
  if (draining_) return;
  int error = 0;
  for (int i = 0; i < accepts_per_round && error == 0; ++i) {
    const int fd =
        ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        error = errno;
      }
      continue;  // the connection failed already (ECONNABORTED, EPROTO...): the next one
    }
    if (connections_.fetch_add(1, std::memory_order_relaxed) >= max_connections_) {
      connections_.fetch_sub(1, std::memory_order_relaxed);
      ::close(fd);  // over the cap: closed at once
      continue;
    }
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    auto* s = new session(*this, fd);
    remember(*s);
    if (!s->start()) s->close();
  }
  if (error == 0) return;
  // Out of descriptors or memory: back off a moment instead of spinning on accept. Waiting
  // clients stay in the listen backlog and are served once descriptors are free again (as
  // nginx does), rather than being accepted only to be closed. The operator gets one line per
  // 10 s per thread, so a flood cannot flood the log too. (The connection cap normally keeps
  // the server within its descriptor limit: see serve_process.)
  const auto now = clock_type::now();
  if (now >= next_accept_warning_) {
    next_accept_warning_ = now + std::chrono::seconds(10);
    std::fprintf(stderr, "kawipiko serve: warning: accept failed: %s; retrying every 50 ms\n",
                 std::strerror(error));
  }
  listen_for_connections(false);
  accept_timer_.expires_after(std::chrono::milliseconds(50));
  accept_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e && !draining_) listen_for_connections(true);
  });
}

// One round: the events, then one more turn for each session with input left, then the closed
// sessions are deleted.
void worker::turn(std::span<epoll_event> events, int ready) {
  for (int i = 0; i < ready; ++i) {
    const auto& event = events[static_cast<std::size_t>(i)];
    if (event.data.ptr == nullptr) {
      on_acceptable();
    } else {
      static_cast<session*>(event.data.ptr)->on_event(event.events);
    }
  }
  session* next = std::exchange(again_first_, nullptr);
  again_last_ = nullptr;
  while (next != nullptr) {
    session* s = next;
    next = std::exchange(s->again, nullptr);
    s->queued = false;
    s->resume();
  }
  reap();
}

void worker::read_again(session& s) noexcept {
  if (s.queued) return;
  s.queued = true;
  s.again = nullptr;
  if (again_last_ != nullptr) {
    again_last_->again = &s;
  } else {
    again_first_ = &s;
  }
  again_last_ = &s;
}

void worker::bury(session& s) noexcept {
  forget(s);
  s.next = closed_;
  closed_ = &s;
}

void worker::reap() noexcept {
  session** link = &closed_;
  while (*link != nullptr) {
    session* s = *link;
    if (s->queued) {  // still in the queue of this round: deleted in a later one
      link = &s->next;
      continue;
    }
    *link = s->next;
    delete s;
  }
}

void worker::do_sweep() {
  sweep_timer_.expires_after(sweep_interval);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec == net::error::operation_aborted) return;
    on_sweep(ec);
    do_sweep();
  });
}

void worker::on_sweep(const boost::system::error_code&) {
  const auto now = clock_type::now();
  for (session* s = sessions_; s != nullptr;) {
    session* next = s->next;  // check() may close `s`, which leaves the list
    s->check(now);
    s = next;
  }
  if (draining_) {
    if (now >= drain_deadline_) {
      for (session* s = sessions_; s != nullptr;) {
        session* next = s->next;
        s->close();
        s = next;
      }
    }
    if (sessions_ == nullptr) {
      sweep_timer_.cancel();
      io_.stop();
    }
  }
  reap();
}

void worker::remember(session& s) noexcept {
  s.next = sessions_;
  if (sessions_ != nullptr) sessions_->previous = &s;
  sessions_ = &s;
}

void worker::forget(session& s) noexcept {
  if (s.previous != nullptr) s.previous->next = s.next;
  if (s.next != nullptr) s.next->previous = s.previous;
  if (sessions_ == &s) sessions_ = s.next;
  s.previous = s.next = nullptr;
  connections_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace kawipiko::serve
