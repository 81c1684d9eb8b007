#pragma once
// TLS over a socket_channel: OpenSSL driven directly, through a BIO of our own, so that records
// are read from and written to the worker's shared buffers and an idle connection holds no
// buffer (only its SSL object, whose record buffers OpenSSL releases while idle). The same
// interface as tcp_transport: the connection and the protocol above never know which one they
// run over.
//
// Why not Asio's ssl::stream: its write_some encrypts one buffer of the sequence at a time, so a
// response's small pieces (status line, Date, header block) would go out as tiny records of
// their own; here a batch's pieces are gathered into full-size records (see write()).

#include <openssl/ssl.h>
#include <sys/uio.h>

#include <boost/asio/post.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "serve/transport.hpp"

namespace kawipiko::serve {

// A worker's scratch for its TLS connections, used by one connection at a time and left empty
// between two steps of any connection.
struct tls_buffers {
  std::vector<char> cipher_in = std::vector<char>(64 * 1024);    // records read from a socket
  std::vector<char> cipher_out = std::vector<char>(128 * 1024);  // records to write
  std::vector<char> staging = std::vector<char>(16 * 1024);      // small pieces of a record
  std::size_t out_used = 0;
};

class tls_transport {
 public:
  static constexpr bool has_handshake = true;

  // `plain`: the worker's read buffer, where decrypted bytes go. Throws std::bad_alloc if OpenSSL
  // cannot make the connection's objects.
  tls_transport(std::span<char> plain, boost::asio::ip::tcp::socket socket, SSL_CTX* context,
                tls_buffers& buffers);
  ~tls_transport();
  tls_transport(tls_transport&&) = delete;

  // Reads and decrypts what comes next into plain[offset, …), going through the handshake first;
  // then `handler(error_code, n)`. The end of the peer's data (close_notify or the socket's end)
  // is boost::asio::error::eof; a failed handshake or a bad record another error.
  template <class Handler>
  void read(std::size_t offset, Handler&& handler) {
    offset_ = offset;
    if (has_buffered_input()) {
      // Bytes are there already (decrypted, or records read with the last ones): no wait.
      boost::asio::post(channel_.executor(), [this, h = std::forward<Handler>(handler)]() mutable {
        deliver(decrypt(), std::move(h));
      });
      return;
    }
    channel_.read(0, [this, h = std::forward<Handler>(handler)](const boost::system::error_code& ec,
                                                                std::size_t n) mutable {
      if (ec) return h(ec, std::size_t{0});
      take_records(n);
      deliver(decrypt(), std::move(h));
    });
  }

  // Encrypts `parts` into full-size records and sends them. `done`: every record went out and
  // `bytes` is the plaintext taken; `would_block`: `bytes` were taken but some records wait for
  // the socket (wait_writable, then write the rest, which may be nothing).
  [[nodiscard]] io_result write(std::span<const iovec> parts) noexcept;

  template <class Handler>
  void wait_writable(Handler&& handler) {
    channel_.wait_writable(std::forward<Handler>(handler));
  }

  // close_notify, then no more bytes from us.
  void shutdown_send() noexcept;

  void close() noexcept { channel_.close(); }

  // The protocol the client and the server agreed on by ALPN ("http/1.1", "h2"), or empty.
  [[nodiscard]] std::string_view alpn() const noexcept;

 private:
  enum class outcome { data, again, end, failed };
  struct step {
    outcome what;
    std::size_t bytes = 0;
  };

  template <class Handler>
  void deliver(step s, Handler&& h) {
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

  [[nodiscard]] bool has_buffered_input() const noexcept;
  void take_records(std::size_t n) noexcept;
  step decrypt() noexcept;
  void keep_unread() noexcept;
  bool encrypt(const char* data, std::size_t size) noexcept;
  bool flush() noexcept;

  // The BIO's side.
  friend struct tls_bio;
  int bio_read(char* into, int size) noexcept;
  void bio_write(const char* data, std::size_t size) noexcept;

  socket_channel channel_;
  std::span<char> plain_;
  tls_buffers& buffers_;
  SSL* ssl_ = nullptr;
  std::size_t offset_ = 0;
  std::string_view input_;  // records not yet read by OpenSSL: in cipher_in or in unread_
  std::string unread_;      // an incomplete record kept between two reads
  std::string unsent_;      // records the socket did not take yet
  bool starved_ = false;    // OpenSSL wants more than input_ holds: wait for the socket
};

}  // namespace kawipiko::serve
