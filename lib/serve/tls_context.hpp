#pragma once
// Everything TLS needs around a connection: the OpenSSL server contexts (protocol versions, suites,
// ALPN), one per certificate (from PEM files, or one made at start for localhost), the choice
// among them by SNI, session tickets whose keys every thread and process of one server share, and
// the certificates' reload on SIGHUP. The TLS transport takes current() for each new connection;
// it never configures OpenSSL itself.

#include <openssl/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "serve/certificate_names.hpp"
#include "serve/options.hpp"

namespace kawipiko::serve {

// The secret every session-ticket key is derived from: made once at start, before any fork, so
// that every process of the server derives the same keys without talking to the others.
using ticket_master = std::array<unsigned char, 32>;

// 32 bytes from OpenSSL's random generator. Throws std::runtime_error if it has none to give.
[[nodiscard]] ticket_master make_ticket_master();

// The session-ticket keys of one master, one per hour: HKDF-SHA256(master, "kawipiko ticket
// <hour>"), hours counted from the Unix epoch by the wall clock the processes share. New tickets
// take the current hour's key; the previous hour's still opens tickets, so a ticket lives one to
// two hours. Thread-safe: the derived keys are cached under a lock.
class ticket_keys {
 public:
  struct key {
    std::array<unsigned char, 16> name;  // sent in the clear with the ticket
    std::array<unsigned char, 32> aes;   // AES-256-CBC
    std::array<unsigned char, 32> hmac;  // HMAC-SHA256
  };
  struct lookup {
    key found;
    bool renew;  // the previous hour's key: the client should get a new ticket
  };

  // Whole hours since the Unix epoch: hour_now, or a test's clock.
  using hour_clock = std::int64_t (*)() noexcept;

  // Throws std::runtime_error if OpenSSL lacks HKDF or AES-256-CBC.
  explicit ticket_keys(const ticket_master& master, hour_clock clock = &hour_now);
  ~ticket_keys();
  ticket_keys(const ticket_keys&) = delete;
  ticket_keys& operator=(const ticket_keys&) = delete;

  // Whole hours since the Unix epoch, now, by the system clock.
  [[nodiscard]] static std::int64_t hour_now() noexcept;
  // The hour by this object's clock: the one whose key seals new tickets.
  [[nodiscard]] std::int64_t hour() const noexcept { return clock_(); }

  // The key of `hour`; nullopt only if OpenSSL fails to derive it.
  [[nodiscard]] std::optional<key> for_hour(std::int64_t hour) const noexcept;

  // The key named `name` when it is `hour`: the hour's own or the previous hour's; nullopt for
  // any other name (a ticket of another server, or too old).
  [[nodiscard]] std::optional<lookup> find(std::span<const unsigned char, 16> name,
                                           std::int64_t hour) const noexcept;

  // The cipher tickets are sealed with, fetched once.
  [[nodiscard]] const EVP_CIPHER* cipher() const noexcept { return cipher_.get(); }

 private:
  struct cached {
    std::int64_t hour = std::numeric_limits<std::int64_t>::min();
    key value{};
  };

  ticket_master master_;
  hour_clock clock_;
  std::unique_ptr<EVP_KDF, void (*)(EVP_KDF*)> hkdf_;
  std::unique_ptr<EVP_CIPHER, void (*)(EVP_CIPHER*)> cipher_;
  mutable std::mutex mutex_;
  mutable std::array<cached, 2> cache_{};  // the two hours last asked for
};

// The server side of TLS for one listener. Built once at start, before any fork (each process
// then holds a copy with the same ticket master); current() and reload() may then run on any
// threads at once.
class tls_context {
 public:
  // What the start-up and reload lines say of a certificate.
  struct certificate_info {
    std::string source;              // the file it came from, or "self-signed"
    std::vector<std::string> names;  // DNS names (lower case), then IP addresses
    std::string fingerprint;         // SHA-256 of its DER, "AA:BB:…:FF"
  };

  // Loads the certificates that `settings` names, in their order (the first is the default), or
  // makes the self-signed one (as serve::validate checks, one or the other). One SSL_CTX per
  // certificate, all configured alike; SNI moves a connection from the default one to the one
  // whose names cover the name asked for (certificate_table::find). `alpn`: the protocols ALPN
  // may choose, in the server's order of preference; a client that offers none of them, or no
  // ALPN at all, goes on without one and speaks HTTP/1.1. Throws std::runtime_error with one line
  // naming the file and what is wrong with it ("cannot load TLS certificate 'x.pem': no
  // certificate found").
  tls_context(const tls_settings& settings, std::vector<std::string> alpn,
              const ticket_master& master);
  // The same with ticket keys of the caller's (contexts sharing them, a test's clock).
  tls_context(const tls_settings& settings, std::vector<std::string> alpn,
              std::shared_ptr<const ticket_keys> tickets);
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  // The default certificate's context, for a new connection: pass it to SSL_new, which takes a
  // reference of its own, so the returned pointer may go right after. It holds the contexts of
  // the other certificates of the same load. An SSL_CTX lives as long as any SSL made from it
  // (OpenSSL counts them), so a reload never pulls one from under an open connection.
  // Thread-safe, one atomic load.
  [[nodiscard]] std::shared_ptr<SSL_CTX> current() const noexcept;

  // Re-reads every certificate's files into new contexts configured as the first (same ticket
  // master, same ALPN list), which then serve new connections; open ones go on with theirs. All
  // or nothing: if one fails, the current ones all stay and this throws std::runtime_error with
  // the one-line reason naming the file, for the caller to log. Nothing to re-read for a
  // self-signed certificate: a no-op. One reload at a time (the signal thread's).
  void reload();

  // The SHA-256 fingerprint of the default certificate new connections get, "AA:BB:…:FF".
  [[nodiscard]] std::string fingerprint() const;
  // The certificates new connections may get, the default first.
  [[nodiscard]] std::vector<certificate_info> certificates() const;
  // Whether that certificate is the one --tls-self-signed made at start.
  [[nodiscard]] bool is_self_signed() const noexcept { return settings_.self_signed; }

 private:
  tls_settings settings_;
  std::string alpn_;  // wire format: length-prefixed names
  std::shared_ptr<const ticket_keys> tickets_;
  std::atomic<std::shared_ptr<SSL_CTX>> current_;
};

// The certificate a TLS connection got, once its handshake has chosen it; null for an SSL that
// is not of a tls_context. Valid as long as the SSL's context. No allocation, no lock.
[[nodiscard]] const served_certificate* served_certificate_of(const SSL* ssl) noexcept;

// The context the server builds at start: nullptr without --bind-tls, else one with a fresh
// ticket master. Throws as tls_context's constructor does.
[[nodiscard]] std::unique_ptr<tls_context> make_tls_context(const tls_settings& settings,
                                                            std::vector<std::string> alpn);

}  // namespace kawipiko::serve
