#pragma once
// One connection's TLS without I/O: OpenSSL driven through a BIO of our own. Records come in as
// bytes (take_records), plaintext goes out of decrypt(); plaintext goes in to write(), records go
// out through a record_sender. Records are read from and written to a worker's shared buffers, so
// an idle connection holds only its SSL object (whose record buffers OpenSSL releases while idle,
// SSL_MODE_RELEASE_BUFFERS). tls_transport runs it over a socket; tests and the fuzzer over
// memory.

#include <openssl/ssl.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "serve/certificate_names.hpp"
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

// Where a session's records go: the socket (tls_transport), or memory.
class record_sender {
 public:
  // As send_now: `done` with the bytes taken (maybe fewer than given), `would_block`, `failed`.
  virtual io_result send(std::span<const iovec> records) noexcept = 0;

 protected:
  ~record_sender() = default;
};

class tls_session {
 public:
  enum class outcome {
    data,    // `bytes` of plaintext were decrypted
    again,   // more records are needed (the handshake, or an incomplete record)
    end,     // the peer sent close_notify
    failed,  // a refused handshake or a bad record: the connection ends
  };
  struct step {
    outcome what;
    std::size_t bytes = 0;
  };

  // Throws std::bad_alloc if OpenSSL cannot make the connection's objects.
  tls_session(SSL_CTX* context, tls_buffers& buffers, record_sender& sender);
  ~tls_session();
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;

  // `records`: bytes read from the peer, valid until the next decrypt() returns (what it leaves
  // unread is kept).
  void take_records(std::string_view records) noexcept;
  // Whether decrypt() can make progress without more records: decrypted bytes wait in OpenSSL,
  // or whole records wait in what was taken.
  [[nodiscard]] bool has_buffered_input() const noexcept;
  // The handshake while it lasts, then application data into `into`. What the handshake or the
  // session has to say (handshake messages, tickets, alerts) is sent before it returns.
  step decrypt(std::span<char> into) noexcept;

  // Record sizes (plaintext bytes). A record is decrypted only once all of it has come, and a
  // fresh connection may send ~10 segments (~14 KB) before the first ACK: a full first record
  // would hold its first byte back by a round trip. So a connection starts with records that fit
  // one segment (1,369 + up to 29 bytes of TLS overhead <= 1,428, a segment's payload over IPv6
  // with TCP timestamps), then goes to full ones; after a second without writes (TCP's window
  // shrinks when idle) it starts small again. Measured with bench/tls-ttfb.sh: README, "TLS".
  static constexpr std::size_t small_record = 1369;
  static constexpr std::size_t full_record = 16 * 1024;  // at most (RFC 8446 §5.1)
  static constexpr int small_records = 16;
  static constexpr std::chrono::seconds idle_restart{1};

  // Encrypts `parts` into records and sends them: pieces are gathered up to a record's size (so a
  // response's small pieces go out with its first body bytes), small records first as above.
  // `now`: this write's time (coarse_now()), for the idle rule; a write that finds records still
  // waiting for the sender is not after an idle time. `done`: every record went out and `bytes`
  // is the plaintext taken; `would_block`: `bytes` were taken but some records wait for the
  // sender (call again, with the rest, which may be nothing, once it takes more).
  [[nodiscard]] io_result write(std::span<const iovec> parts,
                                std::chrono::steady_clock::time_point now) noexcept;

  // close_notify, sent as far as the sender takes it.
  void shutdown() noexcept;

  // The protocol the client and the server agreed on by ALPN ("http/1.1", "h2"), or empty.
  [[nodiscard]] std::string_view alpn() const noexcept;
  // The certificate the handshake chose (tls_context.hpp's served_certificate_of), or null.
  [[nodiscard]] const served_certificate* certificate() const noexcept;

  // The handshake has completed.
  [[nodiscard]] bool handshake_done() const noexcept { return SSL_is_init_finished(ssl_) == 1; }

 private:
  friend struct tls_bio;
  int bio_read(char* into, int size) noexcept;
  void bio_write(const char* data, std::size_t size) noexcept;
  void keep_unread() noexcept;
  [[nodiscard]] std::size_t record_size() const noexcept;
  bool encrypt(const char* data, std::size_t size) noexcept;
  bool flush() noexcept;
  io_result send(const char* data, std::size_t size) noexcept;

  tls_buffers& buffers_;
  record_sender& sender_;
  SSL* ssl_ = nullptr;
  std::string_view input_;  // records not yet read by OpenSSL: taken ones, or unread_
  std::string unread_;      // records kept between two takes (an incomplete one, or more)
  std::string unsent_;      // records the sender did not take yet
  std::chrono::steady_clock::time_point last_write_{};
  bool starved_ = false;                     // OpenSSL wants more than input_ holds
  std::uint8_t small_left_ = small_records;  // small records still to send
};

}  // namespace kawipiko::serve
