#pragma once
// Test support for serve::tls_session: a server session and an OpenSSL client joined by memory,
// past the handshake and the tickets. The client reads the session's records one at a time, so
// a test sees each record's plaintext size; the sender can stall, as a full socket does.

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "serve/options.hpp"
#include "serve/tls_context.hpp"
#include "serve/tls_session.hpp"

namespace kawipiko::test {

// Keeps the records a session sends; takes none while `stalled`.
struct memory_sender final : serve::record_sender {
  std::string sent;
  bool stalled = false;

  serve::io_result send(std::span<const iovec> records) noexcept override {
    if (stalled) return {serve::io_status::would_block};
    std::size_t taken = 0;
    for (const auto& r : records) {
      sent.append(static_cast<const char*>(r.iov_base), r.iov_len);
      taken += r.iov_len;
    }
    return {serve::io_status::done, taken};
  }
};

class tls_memory_pair {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // Throws std::runtime_error if the handshake does not complete.
  tls_memory_pair()
      : server_tls_(self_signed(), {"http/1.1"}, serve::make_ticket_master()),
        client_context_(SSL_CTX_new(TLS_client_method()), SSL_CTX_free),
        client_(SSL_new(client_context_.get()), SSL_free) {
    SSL_CTX_set_verify(client_context_.get(), SSL_VERIFY_NONE, nullptr);
    from_server_ = BIO_new(BIO_s_mem());
    to_server_ = BIO_new(BIO_s_mem());
    SSL_set_bio(client_.get(), from_server_, to_server_);
    SSL_set_connect_state(client_.get());
    for (int round = 0; round < 10 && SSL_is_init_finished(client_.get()) == 0; ++round) {
      (void)SSL_do_handshake(client_.get());
      pass_to_server();
    }
    // The client reads the server's tickets, which hold no application data.
    char byte = 0;
    std::size_t got = 0;
    if (SSL_is_init_finished(client_.get()) != 1 ||
        SSL_read_ex(client_.get(), &byte, 1, &got) == 1 ||
        SSL_get_error(client_.get(), 0) != SSL_ERROR_WANT_READ) {
      throw std::runtime_error("the TLS handshake in memory did not complete");
    }
  }

  // The session's write of `pieces`, as the transport calls it.
  serve::io_result write(const std::vector<std::string_view>& pieces, time_point now) {
    parts_.clear();
    for (auto p : pieces) parts_.push_back({const_cast<char*>(p.data()), p.size()});
    return session_.write(parts_, now);
  }

  // The plaintext size of each application-data record sent since the last call, in order;
  // `whole` (if given) gets their plaintext, appended. Throws std::runtime_error on a cut or
  // bad record.
  std::vector<std::size_t> read_records(std::string* whole = nullptr) {
    std::vector<std::size_t> sizes;
    std::string_view wire = sender_.sent;
    while (!wire.empty()) {
      const std::size_t size = wire.size() < 5 ? 0 : record_size(wire);
      if (size == 0 || wire.size() < size) throw std::runtime_error("a cut TLS record");
      BIO_write(from_server_, wire.data(), static_cast<int>(size));
      wire.remove_prefix(size);
      const std::size_t plain = read_plain(whole);
      if (plain > 0) sizes.push_back(plain);
    }
    sender_.sent.clear();
    return sizes;
  }

  memory_sender& sender() noexcept { return sender_; }

 private:
  static serve::tls_settings self_signed() {
    serve::tls_settings settings;
    settings.self_signed = true;
    return settings;
  }

  // A record's size, its 5-byte header included (RFC 8446 §5.1).
  static std::size_t record_size(std::string_view wire) noexcept {
    return 5 + static_cast<unsigned char>(wire[3]) * 256u + static_cast<unsigned char>(wire[4]);
  }

  // Decrypts what the client was given; returns the plaintext bytes.
  std::size_t read_plain(std::string* whole) {
    std::size_t plain = 0, got = 0;
    while (SSL_read_ex(client_.get(), chunk_, sizeof chunk_, &got) == 1) {
      plain += got;
      if (whole != nullptr) whole->append(chunk_, got);
    }
    if (SSL_get_error(client_.get(), 0) != SSL_ERROR_WANT_READ) {
      throw std::runtime_error("the client could not decrypt a record");
    }
    return plain;
  }

  void pass_to_server() {
    std::string records;
    char chunk[4096];
    int n;
    while ((n = BIO_read(to_server_, chunk, sizeof chunk)) > 0) {
      records.append(chunk, static_cast<std::size_t>(n));
    }
    session_.take_records(records);
    char plain[64];
    if (session_.decrypt(plain).what != serve::tls_session::outcome::again) {
      throw std::runtime_error("the server's handshake failed");
    }
    BIO_write(from_server_, sender_.sent.data(), static_cast<int>(sender_.sent.size()));
    sender_.sent.clear();
    ERR_clear_error();
  }

  serve::tls_context server_tls_;
  serve::tls_buffers buffers_;
  memory_sender sender_;
  serve::tls_session session_{server_tls_.current().get(), buffers_, sender_};
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> client_context_;
  std::unique_ptr<SSL, decltype(&SSL_free)> client_;
  BIO* from_server_ = nullptr;  // both owned by client_
  BIO* to_server_ = nullptr;
  std::vector<iovec> parts_;
  char chunk_[serve::tls_session::full_record];
};

}  // namespace kawipiko::test
