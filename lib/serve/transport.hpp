#pragma once
// A connection's byte pipe, below the protocol: read what comes, write gathered bytes, wait for
// the socket to take more, shut down. Plain TCP here; TLS offers the same interface, so a
// protocol never knows which one it runs over. Every wait is an Asio operation on the worker's
// io_context, the thread's only event loop.

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>
#include <utility>

namespace kawipiko::serve {

enum class io_status {
  done,         // `bytes` were read or written
  would_block,  // nothing now: wait for readiness
  end,          // the peer finished sending (reads only)
  failed,       // reset, broken pipe, …: routine for a network, the connection ends
};

struct io_result {
  io_status status;
  std::size_t bytes = 0;
};

using coarse_clock = std::chrono::steady_clock;

// The time for deadlines and for TLS record sizes: the coarse monotonic clock (a few
// milliseconds of resolution, a vDSO read), precise enough for a sweep every 250 ms and cheap
// enough to read on every request. Defined in worker.cpp.
[[nodiscard]] coarse_clock::time_point coarse_now() noexcept;

// A connection's peer as accept gave it, kept small (the address, without the port) and made
// text only for the access log.
class peer_address {
 public:
  static constexpr std::size_t text_room = INET6_ADDRSTRLEN;

  peer_address() noexcept = default;
  explicit peer_address(const sockaddr_storage& from) noexcept {
    if (from.ss_family == AF_INET) {
      family_ = AF_INET;
      std::memcpy(bytes_.data(), &reinterpret_cast<const sockaddr_in&>(from).sin_addr, 4);
    } else if (from.ss_family == AF_INET6) {
      family_ = AF_INET6;
      std::memcpy(bytes_.data(), &reinterpret_cast<const sockaddr_in6&>(from).sin6_addr, 16);
    }
  }

  friend bool operator==(const peer_address&, const peer_address&) = default;

  // "192.0.2.1", "2001:db8::1", in `room`; empty when unknown.
  [[nodiscard]] std::string_view text(std::array<char, text_room>& room) const noexcept {
    if (family_ == 0 || ::inet_ntop(family_, bytes_.data(), room.data(), text_room) == nullptr) {
      return {};
    }
    return room.data();
  }

 private:
  std::array<unsigned char, 16> bytes_{};
  unsigned char family_ = 0;  // AF_INET, AF_INET6, or 0: unknown
};

// A connection's socket: bound to the worker's io_context by type, so that it and every
// operation on it carry a plain pointer rather than a type-erased executor (an idle connection
// is an Asio socket and one pending read: their size is most of what it costs).
using socket_type =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

// The socket calls themselves, non-blocking, retried on EINTR.
[[nodiscard]] inline io_result receive_now(int fd, std::span<char> into) noexcept {
  ssize_t got;
  do {
    got = ::recv(fd, into.data(), into.size(), 0);
  } while (got < 0 && errno == EINTR);
  if (got > 0) return {io_status::done, static_cast<std::size_t>(got)};
  if (got == 0) return {io_status::end};
  return {errno == EAGAIN || errno == EWOULDBLOCK ? io_status::would_block : io_status::failed};
}

// One writev of as many parts as one call takes (IOV_MAX).
[[nodiscard]] inline io_result send_now(int fd, std::span<const iovec> parts) noexcept {
  const auto count = static_cast<int>(std::min<std::size_t>(parts.size(), IOV_MAX));
  ssize_t sent;
  do {
    sent = ::writev(fd, parts.data(), count);
  } while (sent < 0 && errno == EINTR);
  if (sent >= 0) return {io_status::done, static_cast<std::size_t>(sent)};
  return {errno == EAGAIN || errno == EWOULDBLOCK ? io_status::would_block : io_status::failed};
}

// Bytes written to the socket that the peer has not acknowledged yet (SIOCOUTQ), or 0.
[[nodiscard]] inline std::size_t queued_bytes(int fd) noexcept {
  int queued = 0;
  if (::ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0) return 0;
  return static_cast<std::size_t>(queued);
}

// A socket of the worker's io_context whose reads land in a buffer the worker shares among its
// connections, so an idle connection holds no buffer and a read costs one recv once the bytes
// are there: the read is an Asio async_read_some whose buffer is decided when the kernel is
// asked (read_target below). The transports are built on it.
class socket_channel {
 public:
  socket_channel(std::span<char> shared, socket_type socket) noexcept
      : socket_(std::move(socket)), shared_(shared) {}
  socket_channel(socket_channel&&) = delete;  // read_target and pending handlers point at it

  // Reads what comes into the shared buffer at `offset` (the bytes before it are the caller's);
  // then `handler(error_code, n)` with the bytes at shared[offset, offset + n).
  template <class Handler>
  void read(std::size_t offset, Handler&& handler) {
    offset_ = offset;
    starting_ = true;
    socket_.async_read_some(read_target(*this),
                            [this, h = std::forward<Handler>(handler)](
                                const boost::system::error_code& ec, std::size_t n) mutable {
                              h(ec, ec ? n : landed(n));
                            });
    starting_ = false;
  }

  // `handler(error_code)` once the socket takes more (or has an error, or was closed).
  template <class Handler>
  void wait_writable(Handler&& handler) {
    socket_.async_wait(socket_type::wait_write, std::forward<Handler>(handler));
  }

  [[nodiscard]] int fd() noexcept { return socket_.native_handle(); }
  [[nodiscard]] auto executor() noexcept { return socket_.get_executor(); }
  [[nodiscard]] std::span<char> shared() const noexcept { return shared_; }

  // Closes the socket; a pending read or wait completes with operation_aborted.
  void close() noexcept {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  // A buffer sequence of one buffer, chosen each time Asio walks it. Asio walks it when the read
  // starts, and may then try a recv at once (its epoll reactor does whenever the socket had an
  // edge since it was last found empty); such a read completes later, after other connections
  // may have read into the shared buffer, so it lands in this connection's own byte. Asio walks
  // it again each time the socket is reported readable, and that read completes at once, before
  // any other read of the worker: it may use the shared buffer. (Boost 1.81's epoll reactor:
  // epoll_reactor::start_op and descriptor_state::perform_io; the tests over real sockets cover
  // both ways in.) So a request costs one recv, or two when it was there already.
  class read_target {
   public:
    explicit read_target(socket_channel& c) noexcept : channel_(&c) {}
    [[nodiscard]] const boost::asio::mutable_buffer* begin() const noexcept {
      return &channel_->resolve();
    }
    [[nodiscard]] const boost::asio::mutable_buffer* end() const noexcept {
      return &channel_->target_ + 1;
    }

   private:
    socket_channel* channel_;
  };

  const boost::asio::mutable_buffer& resolve() noexcept {
    target_ = starting_
                  ? boost::asio::mutable_buffer(&landing_, 1)
                  : boost::asio::mutable_buffer(shared_.data() + offset_, shared_.size() - offset_);
    return target_;
  }

  // A read that landed in the connection's byte: moved to the shared buffer, with what else
  // has come since.
  std::size_t landed(std::size_t n) noexcept {
    if (target_.data() != &landing_ || n == 0) return n;
    shared_[offset_] = landing_;
    const auto more = receive_now(socket_.native_handle(), shared_.subspan(offset_ + 1));
    return more.status == io_status::done ? 1 + more.bytes : 1;
  }

  socket_type socket_;
  std::span<char> shared_;
  boost::asio::mutable_buffer target_;
  std::size_t offset_ = 0;
  bool starting_ = false;
  char landing_ = 0;
};

// Plain TCP: the channel's reads, one writev per batch.
class tcp_transport {
 public:
  static constexpr bool has_handshake = false;

  tcp_transport(std::span<char> shared, socket_type socket) noexcept
      : channel_(shared, std::move(socket)) {}

  template <class Handler>
  void read(std::size_t offset, Handler&& handler) {
    channel_.read(offset, std::forward<Handler>(handler));
  }

  // Sends what the socket takes now: `done` with the bytes taken, `would_block` with none.
  [[nodiscard]] io_result write(std::span<const iovec> parts) noexcept {
    return send_now(channel_.fd(), parts);
  }

  template <class Handler>
  void wait_writable(Handler&& handler) {
    channel_.wait_writable(std::forward<Handler>(handler));
  }

  // No more bytes from us; what was written still goes out.
  void shutdown_send() noexcept { ::shutdown(channel_.fd(), SHUT_WR); }

  // What the kernel still holds of what was written (a slow reader drains it).
  [[nodiscard]] std::size_t queued() noexcept { return queued_bytes(channel_.fd()); }

  // No ALPN over plain TCP: the protocol is told by the first bytes.
  [[nodiscard]] static std::string_view alpn() noexcept { return {}; }

  void close() noexcept { channel_.close(); }

 private:
  socket_channel channel_;
};

}  // namespace kawipiko::serve
