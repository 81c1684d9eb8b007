#pragma once
// TLS over a socket: a tls_session (the I/O-free TLS) whose records are read through a
// socket_channel into the worker's cipher_in buffer and sent to the socket. The same interface
// as tcp_transport: the connection and the protocol above never know which one they run over.
//
// Why not Asio's ssl::stream: its write_some encrypts one buffer of the sequence at a time, so a
// response's small pieces (status line, Date, header block) would go out as tiny records of
// their own; tls_session gathers a batch's pieces into full-size records.

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <cstddef>
#include <span>
#include <string_view>

#include "serve/metrics.hpp"
#include "serve/tls_session.hpp"
#include "serve/transport.hpp"

namespace kawipiko::serve {

class tls_transport final : record_sender {
 public:
  static constexpr bool has_handshake = true;

  // `plain`: the worker's read buffer, where decrypted bytes go. `counters`: where the handshake
  // is counted, or null. Throws std::bad_alloc if OpenSSL cannot make the connection's objects.
  tls_transport(std::span<char> plain, socket_type socket, SSL_CTX* context, tls_buffers& buffers,
                thread_counters* counters = nullptr)
      : channel_(buffers.cipher_in, std::move(socket)),
        plain_(plain),
        session_(context, buffers, *this),
        counters_(counters) {}
  tls_transport(tls_transport&&) = delete;

  // Reads and decrypts what comes next into plain[offset, …), going through the handshake first;
  // then `handler(error_code, n)`. The end of the peer's data (close_notify or the socket's end)
  // is boost::asio::error::eof; a failed handshake or a bad record another error.
  template <class Handler>
  void read(std::size_t offset, Handler&& handler) {
    offset_ = offset;
    if (session_.has_buffered_input()) {
      // Bytes are there already (decrypted, or records read with the last ones): no wait.
      boost::asio::post(channel_.executor(), [this, h = std::forward<Handler>(handler)]() mutable {
        deliver(decrypt(), std::move(h));
      });
      return;
    }
    channel_.read(0, [this, h = std::forward<Handler>(handler)](const boost::system::error_code& ec,
                                                                std::size_t n) mutable {
      if (ec) return h(ec, std::size_t{0});
      session_.take_records({channel_.shared().data(), n});
      deliver(decrypt(), std::move(h));
    });
  }

  [[nodiscard]] io_result write(std::span<const iovec> parts) noexcept {
    return session_.write(parts, coarse_now());
  }

  template <class Handler>
  void wait_writable(Handler&& handler) {
    channel_.wait_writable(std::forward<Handler>(handler));
  }

  // close_notify, then no more bytes from us.
  void shutdown_send() noexcept {
    session_.shutdown();
    ::shutdown(channel_.fd(), SHUT_WR);
  }

  void close() noexcept { channel_.close(); }

  // What the kernel still holds of the records written (a slow reader drains it).
  [[nodiscard]] std::size_t queued() noexcept { return queued_bytes(channel_.fd()); }

  // The protocol agreed on by ALPN, or empty: HTTP/2 will choose its protocol by it.
  [[nodiscard]] std::string_view alpn() const noexcept { return session_.alpn(); }

  // The certificate the handshake chose by SNI, for the handler's 421.
  [[nodiscard]] const served_certificate* certificate() const noexcept {
    return session_.certificate();
  }

 private:
  io_result send(std::span<const iovec> records) noexcept override {
    return send_now(channel_.fd(), records);
  }

  // The next plaintext; the handshake's end, or its refusal, is counted once.
  tls_session::step decrypt() noexcept {
    const auto s = session_.decrypt(plain_.subspan(offset_));
    if (counters_ != nullptr && !handshake_counted_) {
      if (session_.handshake_done()) {
        counters_->handshake(true);
        handshake_counted_ = true;
      } else if (s.what == tls_session::outcome::failed) {
        counters_->handshake(false);
        handshake_counted_ = true;
      }
    }
    return s;
  }

  template <class Handler>
  void deliver(tls_session::step s, Handler&& h) {
    using outcome = tls_session::outcome;
    switch (s.what) {
      case outcome::data:
        return h(boost::system::error_code(), s.bytes);
      case outcome::again:
        return read(offset_, std::forward<Handler>(h));
      case outcome::end:
        return h(boost::asio::error::eof, std::size_t{0});
      case outcome::failed:
        return h(boost::asio::error::connection_aborted, std::size_t{0});
    }
  }

  socket_channel channel_;
  std::span<char> plain_;
  tls_session session_;
  std::size_t offset_ = 0;
  thread_counters* counters_;
  bool handshake_counted_ = false;
};

}  // namespace kawipiko::serve
