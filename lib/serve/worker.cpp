#include "serve/worker.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <boost/asio/ip/v6_only.hpp>
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

constexpr std::size_t read_buffer_size = 64 * 1024;
constexpr auto sweep_interval = std::chrono::milliseconds(250);
constexpr auto linger_time = std::chrono::seconds(2);
constexpr std::size_t linger_bytes = 1 << 20;  // discarded at most while lingering

std::string_view method_name(method m) {
  switch (m) {
    case method::get:
      return "GET";
    case method::head:
      return "HEAD";
    case method::other:
      return "OTHER";
  }
  return "?";
}

}  // namespace

// One connection. Lives in its worker's list; at most one wait (read or write readiness) is
// outstanding at a time, and the session deletes itself once that wait has come back after it
// was closed.
class session {
 public:
  session* previous = nullptr;  // the worker's list
  session* next = nullptr;

  session(worker& w, tcp::socket socket) : worker_(w), socket_(std::move(socket)) {
    fd_ = socket_.native_handle();
    deadline_ = clock_type::now() + w.options_.limits.idle_timeout;
  }

  void start() { wait_readable(); }

  // Timeouts and draining, from the worker's sweep.
  void check(clock_type::time_point now) {
    if (closed_) return;
    if (worker_.options_.limits.timeouts && now >= deadline_) return close();
    if (worker_.draining_ && state_ == state::idle && in_.empty()) close();
  }

  // Stops the connection; the outstanding wait (if any) completes with an error and then the
  // session is deleted.
  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    if (!waiting_) destroy();
  }

 private:
  enum class state { idle, reading, writing, lingering };

  void destroy() {
    worker_.forget(*this);
    delete this;
  }

  // Reads through Asio (into the connection's small first buffer) rather than waiting for
  // readiness: Asio's edge-triggered reactor only reports readiness that arrives while an
  // operation is queued, and its speculative receive skips the system call when no data came.
  void wait_readable() {
    waiting_ = true;
    socket_.async_receive(net::buffer(first_), [this](const boost::system::error_code& ec,
                                                      std::size_t n) { on_received(ec, n); });
  }

  // Only after a write returned EAGAIN, so that readiness cannot have been missed.
  void wait_writable() {
    waiting_ = true;
    socket_.async_wait(tcp::socket::wait_write,
                       [this](const boost::system::error_code& ec) { on_writable(ec); });
  }

  void on_received(const boost::system::error_code& ec, std::size_t got) {
    waiting_ = false;
    if (closed_) return destroy();
    if (ec && ec != net::error::eof) return close();  // reset and friends: routine, not logged
    if (state_ == state::lingering) {
      lingered_ += got;
      return ec ? close() : linger();
    }
    const std::size_t kept = in_.size();
    if (ec) {
      // The client is done sending: answer what is complete, then close.
      peer_done_ = true;
      if (kept == 0) return close();
    }
    auto& buffer = worker_.read_buffer_;
    std::memcpy(buffer.data(), in_.data(), kept);
    std::memcpy(buffer.data() + kept, first_.data(), got);
    std::size_t size = kept + got;
    if (got == first_.size()) {
      // The first buffer filled up: take the rest the socket holds now.
      const ssize_t more = ::recv(fd_, buffer.data() + size, buffer.size() - size, 0);
      if (more > 0) size += static_cast<std::size_t>(more);
      if (more == 0) peer_done_ = true;
    }
    if (kept == 0) {
      // The first bytes of a request: the header timeout starts now.
      state_ = state::reading;
      deadline_ = clock_type::now() + worker_.options_.limits.header_timeout;
    }
    answer({buffer.data(), size});
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
        info = worker_.handler_.respond(req, last, date, out);
        offset += parsed.consumed;
      } else {
        const unsigned status = parsed.status == parse_status::too_large  ? 431
                                : parsed.status == parse_status::has_body ? 413
                                                                          : 400;
        info = worker_.handler_.respond_error(status, false, true, date, out);
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
    deadline_ = clock_type::now() + worker_.options_.limits.idle_timeout;
  }

  // Sends `parts`; what the socket does not take now is kept (made-up text copied out of the
  // worker's scratch area, archive bytes by reference) and sent when it becomes writable.
  //
  // One writev, bodies included, rather than sendfile(2) for large bodies: measured here on
  // loopback (wrk, 5 s runs, server pinned to one core), sendfile from the archive file above
  // 32 KiB cost more CPU per python-docs page (23.5 vs 21.3 us) and halved the throughput of a
  // 10 MiB file (2.0 vs 4.6 GB/s, nginx with sendfile: 2.0), though it used a third of the CPU
  // on that file. Revisit for real NICs, where the copy it saves matters more.
  void write(std::span<const iovec> parts) {
    std::size_t total = 0;
    for (const auto& p : parts) total += p.iov_len;
    ssize_t sent = ::writev(fd_, parts.data(), static_cast<int>(parts.size()));
    if (sent < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return close();
      sent = 0;
    }
    if (static_cast<std::size_t>(sent) == total) return written();
    keep_unsent(parts, static_cast<std::size_t>(sent));
    state_ = state::writing;
    deadline_ = clock_type::now() + worker_.options_.limits.write_timeout;
    wait_writable();
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

  void on_writable(const boost::system::error_code& ec) {
    waiting_ = false;
    if (closed_ || ec) return closed_ ? destroy() : close();
    std::size_t total = 0;
    for (const auto& p : pending_) total += p.iov_len;
    const std::size_t count = std::min<std::size_t>(pending_.size(), 1024);
    const ssize_t sent = ::writev(fd_, pending_.data(), static_cast<int>(count));
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return wait_writable();
      return close();
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
    deadline_ = clock_type::now() + worker_.options_.limits.write_timeout;
    wait_writable();
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
    deadline_ = clock_type::now() + linger_time;
    wait_readable();
  }

  void linger() {
    auto& buffer = worker_.read_buffer_;
    while (lingered_ <= linger_bytes) {
      const ssize_t got = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (got == 0) return close();
      if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return wait_readable();
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
  tcp::socket socket_;
  int fd_ = -1;
  state state_ = state::idle;
  clock_type::time_point deadline_;
  std::array<char, 1024> first_{};  // what a read completes into; most requests fit
  std::string in_;                  // an unfinished request's bytes
  std::vector<iovec> pending_;      // an unfinished write
  std::string pending_text_;
  std::size_t requests_ = 0;
  std::size_t lingered_ = 0;
  bool waiting_ = false;
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
}

worker::~worker() {
  while (sessions_ != nullptr) {
    session* s = sessions_;
    forget(*s);
    delete s;
  }
}

tcp::endpoint worker::local_endpoint() const {
  return acceptor_.local_endpoint();
}

void worker::run() {
  do_accept();
  do_sweep();
  io_.run();
}

void worker::stop() {
  net::post(io_, [this] { begin_drain(); });
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

void worker::do_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void worker::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
  if (draining_) return;
  if (ec) {
    if (ec == net::error::operation_aborted) return;
    // Out of descriptors or memory: back off a moment instead of spinning on accept. Waiting
    // clients stay in the listen backlog and are served once descriptors are free again (as
    // nginx does), rather than being accepted only to be closed. The operator gets one line per
    // 10 s per thread, so a flood cannot flood the log too.
    const auto now = clock_type::now();
    if (now >= next_accept_warning_) {
      next_accept_warning_ = now + std::chrono::seconds(10);
      std::fprintf(stderr, "kawipiko serve: warning: accept failed: %s; retrying every 50 ms\n",
                   ec.message().c_str());
    }
    accept_timer_.expires_after(std::chrono::milliseconds(50));
    accept_timer_.async_wait([this](const boost::system::error_code& e) {
      if (!e && !draining_) do_accept();
    });
    return;
  }
  if (connections_.fetch_add(1, std::memory_order_relaxed) >= max_connections_) {
    connections_.fetch_sub(1, std::memory_order_relaxed);
    boost::system::error_code ignored;
    socket.close(ignored);  // over the cap: closed at once
    return do_accept();
  }
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.non_blocking(true, ignored);
  auto* s = new session(*this, std::move(socket));
  remember(*s);
  s->start();
  do_accept();
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
    session* next = s->next;  // check() may delete `s`
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
