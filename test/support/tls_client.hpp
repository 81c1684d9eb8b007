#pragma once
// Test support for TLS servers: a blocking HTTP/1.1 client over OpenSSL on support's raw client
// (so every read and write is bounded by its timeout), which can offer ALPN and tell what the
// handshake gave: the ALPN choice and the server's certificate; and what `openssl s_client` says
// of a handshake.

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <csignal>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/certificates.hpp"
#include "support/server_process.hpp"

namespace kawipiko::test {

struct tls_client_settings {
  std::vector<std::string> alpn;          // offered in this order; none: no ALPN extension
  std::string server_name = "localhost";  // SNI
};

// A TLS connection to 127.0.0.1:`port` that verifies nothing (tests compare fingerprints
// instead), TLS 1.2 or 1.3.
class tls_client {
 public:
  // Connects and completes the handshake. Throws std::runtime_error if the connection or the
  // handshake fails or times out.
  explicit tls_client(unsigned short port, const tls_client_settings& settings = {},
                      milliseconds timeout = default_bound)
      : tcp_(port, timeout),
        context_(SSL_CTX_new(TLS_client_method()), SSL_CTX_free),
        ssl_(nullptr, SSL_free) {
    // OpenSSL writes with write(2): a server that went away must be an error, not SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    if (!context_) throw std::runtime_error("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(context_.get(), TLS1_2_VERSION);
    ssl_.reset(SSL_new(context_.get()));
    if (!ssl_ || SSL_set_fd(ssl_.get(), tcp_.fd()) != 1) throw std::runtime_error("SSL_new failed");
    // SSL_set_tlsext_host_name, without its macro's C cast.
    SSL_ctrl(ssl_.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(settings.server_name.c_str()));
    std::string wire;
    for (const auto& name : settings.alpn) wire += static_cast<char>(name.size()) + name;
    if (!wire.empty() &&
        SSL_set_alpn_protos(ssl_.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size())) != 0) {
      throw std::runtime_error("SSL_set_alpn_protos failed");
    }
    ERR_clear_error();
    if (SSL_connect(ssl_.get()) != 1) throw std::runtime_error("TLS handshake failed");
  }
  tls_client(const tls_client&) = delete;
  tls_client& operator=(const tls_client&) = delete;

  // Sends all of `bytes`. Throws std::runtime_error on error or timeout.
  void send(std::string_view bytes) {
    ERR_clear_error();
    std::size_t written = 0;
    if (!bytes.empty() && SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &written) != 1) {
      throw std::runtime_error("TLS write failed");
    }
  }

  // Reads one response as client::read_response does.
  http_response read_response(bool head_request = false) {
    return take_response(
        buffer_, [this] { return receive(); }, head_request);
  }

  // Reads one response as read_response does, as a slow reader: at most `chunk` bytes at a time,
  // after a `pause` each, so that the server finds the socket full and must wait for it.
  http_response read_response_slowly(std::size_t chunk, milliseconds pause) {
    return take_response(buffer_, [this, chunk, pause] {
      std::this_thread::sleep_for(pause);
      return receive(chunk);
    });
  }

  http_response request(std::string_view bytes, bool head_request = false) {
    send(bytes);
    return read_response(head_request);
  }

  // The protocol ALPN chose, or "" when none was.
  [[nodiscard]] std::string alpn() const {
    const unsigned char* name = nullptr;
    unsigned int size = 0;
    SSL_get0_alpn_selected(ssl_.get(), &name, &size);
    return name == nullptr ? "" : std::string(reinterpret_cast<const char*>(name), size);
  }
  // The SHA-256 fingerprint of the certificate the server presented, "AA:BB:…".
  [[nodiscard]] std::string peer_fingerprint() const {
    const X509* cert = SSL_get0_peer_certificate(ssl_.get());
    if (cert == nullptr) throw std::runtime_error("no peer certificate");
    return der_sha256(cert);
  }
  [[nodiscard]] int fd() const { return tcp_.fd(); }

 private:
  // One read of at most `most` bytes into the buffer: true if bytes came, false at the end of the
  // stream (close_notify or not). Throws std::runtime_error on timeout.
  bool receive(std::size_t most = 65536) {
    char chunk[65536];
    std::size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(ssl_.get(), chunk, std::min(most, sizeof chunk), &got) == 1) {
      buffer_.append(chunk, got);
      return true;
    }
    const int error = SSL_get_error(ssl_.get(), 0);
    if (error == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      throw std::runtime_error("TLS receive timed out");
    }
    return false;
  }

  client tcp_;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context_;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_;
  std::string buffer_;
};

// `openssl s_client`'s summary of the handshake: "New, TLSv1.3, Cipher is …" or "Reused, …";
// "" if none.
inline std::string handshake_line(const std::string& output) {
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("New, ", 0) == 0 || line.rfind("Reused, ", 0) == 0) return line;
  }
  return "";
}

}  // namespace kawipiko::test
