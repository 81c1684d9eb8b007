#pragma once
// Which of a TLS listener's certificates covers a host name: the names each certificate is for,
// and a small table built once per load in which SNI picks a certificate and the handler checks
// a request's host against the certificate its connection got (421). No OpenSSL here:
// tls_context reads the names out of the certificates.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kawipiko::serve {

// The names one certificate is for, as read from it.
struct certificate_names {
  // subjectAltName dNSName entries, or the subject's CN when there are none: "example.com", or
  // "*.example.com" for any one label under example.com (RFC 6125 §6.4.3).
  std::vector<std::string> dns;
  // subjectAltName iPAddress entries, as text: "192.0.2.1", "2001:db8::1".
  std::vector<std::string> addresses;
};

// The names of every certificate of one load, certificate 0 first (the default).
class certificate_table {
 public:
  static constexpr std::size_t none = SIZE_MAX;

  // Adds the next certificate (number size()). DNS names are matched without case and without a
  // trailing dot; a name that is neither a plain name nor "*." and a plain name, and an address
  // that does not parse, cover nothing.
  void add(const certificate_names& names);

  [[nodiscard]] std::size_t size() const noexcept { return count_; }

  // The certificate for `host` (lower case, no port, no trailing dot, an IPv6 address in
  // brackets: normalized_host's form): one with the name itself first, then one with a wildcard
  // for it; of several, the first added. `none` when no certificate covers it. No allocation.
  [[nodiscard]] std::size_t find(std::string_view host) const noexcept;

  // Whether certificate `index` covers `host` (normalized as for find).
  [[nodiscard]] bool covers(std::size_t index, std::string_view host) const noexcept;

  // Whether a request for `host` on a connection that got certificate `index` is misdirected
  // (421): that certificate does not cover it and another one does. A host that no certificate
  // covers is not: it is served as before (see handler.cpp). Always false with one certificate.
  [[nodiscard]] bool is_misdirected(std::size_t index, std::string_view host) const noexcept {
    return count_ > 1 && !covers(index, host) && find(host) != none;
  }

 private:
  enum class kind : std::uint8_t { exact, wildcard, address };
  struct entry {
    kind what;
    std::string key;  // the name; for a wildcard what follows "*."; an address's bytes
    std::size_t certificate;
  };
  // What `host` is looked up under: its exact name (or address bytes) and, for a name, the
  // parent that a wildcard would be for; `buffer` holds the bytes of an address.
  struct probe {
    kind what;
    std::string_view key;
    std::string_view parent;  // empty: no wildcard can cover it
  };
  [[nodiscard]] static probe probe_of(std::string_view host, char (&buffer)[16]) noexcept;
  // The entries of `what` and `key`, the lowest certificate first.
  [[nodiscard]] std::pair<const entry*, const entry*> entries(kind what,
                                                              std::string_view key) const noexcept;

  std::vector<entry> entries_;  // sorted by kind, key, then certificate
  std::size_t count_ = 0;
};

// What a TLS connection tells the handler: the table of its listener's certificates at the time
// of its handshake, and which of them it got. Lives as long as the connection's SSL_CTX.
struct served_certificate {
  const certificate_table* table;
  std::size_t index;
};

}  // namespace kawipiko::serve
