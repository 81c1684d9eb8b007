#pragma once
// A connection's byte pipe, below the protocol: read what is there, write gathered bytes, wait
// for either on the worker's io_context, shut down. Plain TCP here; TLS offers the same
// interface, so a protocol never knows which one it runs over.
//
// Reads and writes are non-blocking calls made when the socket is ready; the waits are Asio's
// (async_wait), so the io_context stays the worker's only event loop and an idle connection
// holds no buffer: the bytes are read into the worker's buffer only once they are there.

#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <cstddef>
#include <span>
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

class tcp_transport {
 public:
  explicit tcp_transport(boost::asio::ip::tcp::socket socket) noexcept
      : socket_(std::move(socket)) {}

  [[nodiscard]] io_result read(std::span<char> into) noexcept {
    ssize_t got;
    do {
      got = ::recv(socket_.native_handle(), into.data(), into.size(), 0);
    } while (got < 0 && errno == EINTR);
    if (got > 0) return {io_status::done, static_cast<std::size_t>(got)};
    if (got == 0) return {io_status::end};
    return {errno == EAGAIN || errno == EWOULDBLOCK ? io_status::would_block : io_status::failed};
  }

  // One writev of as many parts as the kernel takes (at most IOV_MAX per call).
  [[nodiscard]] io_result write(std::span<const iovec> parts) noexcept {
    const auto count = static_cast<int>(std::min<std::size_t>(parts.size(), IOV_MAX));
    ssize_t sent;
    do {
      sent = ::writev(socket_.native_handle(), parts.data(), count);
    } while (sent < 0 && errno == EINTR);
    if (sent >= 0) return {io_status::done, static_cast<std::size_t>(sent)};
    return {errno == EAGAIN || errno == EWOULDBLOCK ? io_status::would_block : io_status::failed};
  }

  // `handler(error_code)` once the socket is readable (or has an error, or was closed).
  template <class Handler>
  void wait_readable(Handler&& handler) {
    socket_.async_wait(boost::asio::ip::tcp::socket::wait_read, std::forward<Handler>(handler));
  }
  template <class Handler>
  void wait_writable(Handler&& handler) {
    socket_.async_wait(boost::asio::ip::tcp::socket::wait_write, std::forward<Handler>(handler));
  }

  // No more bytes from us; what was written still goes out.
  void shutdown_send() noexcept { ::shutdown(socket_.native_handle(), SHUT_WR); }

  // Closes the socket; a pending wait completes with operation_aborted.
  void close() noexcept {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace kawipiko::serve
