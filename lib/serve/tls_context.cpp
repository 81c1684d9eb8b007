#include "serve/tls_context.hpp"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cassert>
#include <chrono>
#include <climits>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

#include "base/error.hpp"
#include "base/mapped_file.hpp"
#include "http/syntax.hpp"
#include "serve/host_table.hpp"

namespace kawipiko::serve {

namespace {

// Owners of OpenSSL objects.
template <class T, void (*Free)(T*)>
struct openssl_free {
  void operator()(T* object) const noexcept { Free(object); }
};
template <class T, void (*Free)(T*)>
using openssl_ptr = std::unique_ptr<T, openssl_free<T, Free>>;
using bio_ptr = openssl_ptr<BIO, BIO_free_all>;
using x509_ptr = openssl_ptr<X509, X509_free>;
using pkey_ptr = openssl_ptr<EVP_PKEY, EVP_PKEY_free>;
using pkey_ctx_ptr = openssl_ptr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using kdf_ctx_ptr = openssl_ptr<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using bignum_ptr = openssl_ptr<BIGNUM, BN_free>;
using extension_ptr = openssl_ptr<X509_EXTENSION, X509_EXTENSION_free>;
using ssl_ctx_ptr = openssl_ptr<SSL_CTX, SSL_CTX_free>;

// Bytes OpenSSL allocated for us (PEM_read_bio's).
struct openssl_bytes_free {
  void operator()(void* bytes) const noexcept { OPENSSL_free(bytes); }
};
template <class T>
using openssl_bytes = std::unique_ptr<T, openssl_bytes_free>;

// The TLS 1.2 suites: ECDHE key exchange and AEAD ciphers only, AES-GCM first (hardware AES).
// TLS 1.3 keeps OpenSSL's default suites, which are all AEAD.
constexpr const char* tls12_suites =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* key_exchange_groups = "X25519:P-256:P-384";
constexpr long ticket_lifetime_seconds = 2 * 3600;  // the previous hour's key still opens one
// Clients use a ticket once (RFC 8446 §C.4), and browsers open several HTTP/1.1 connections.
constexpr std::size_t tickets_per_handshake = 2;
constexpr std::size_t max_pem_bytes = 1024 * 1024;  // a chain is a few KiB

constexpr std::string_view loading_certificate = "cannot load TLS certificate";
constexpr std::string_view loading_key = "cannot load TLS private key";

// The first error in OpenSSL's queue of this thread (the deepest cause), emptying the queue.
std::string openssl_reason() {
  const unsigned long error = ERR_peek_error();
  ERR_clear_error();
  if (error == 0) return "unknown OpenSSL error";
  const char* reason = ERR_reason_error_string(error);
  return reason != nullptr ? reason : "OpenSSL error " + std::to_string(ERR_GET_REASON(error));
}

// ---- PEM files ----

struct certificate {
  x509_ptr leaf;
  std::vector<x509_ptr> chain;  // issuers, leaf's first
  pkey_ptr key;
};

struct pem_contents {
  std::vector<x509_ptr> certificates;  // in file order
  pkey_ptr key;
};

// One block of a PEM file: "-----BEGIN <label>-----", its header lines and its decoded bytes.
struct pem_block {
  openssl_bytes<char> label;
  openssl_bytes<char> headers;
  openssl_bytes<unsigned char> bytes;
  long size = 0;
};

// The file read into memory (not mapped: a file rewritten in place while mapped would fault).
base::mapped_file read_whole_file(const std::string& path, std::string_view what) {
  try {
    return base::mapped_file(path, base::mapped_file::mode::in_memory);
  } catch (const std::system_error& e) {
    base::throw_error(what, path, e.code().message());
  } catch (const std::runtime_error&) {  // mapped_file's one other refusal
    base::throw_error(what, path, "not a regular file");
  }
}

// The next block of `in`; nullopt at its end. Text between blocks is skipped, as OpenSSL does.
std::optional<pem_block> next_block(BIO* in, std::string_view what, const std::string& path) {
  char* label = nullptr;
  char* headers = nullptr;
  unsigned char* bytes = nullptr;
  long size = 0;
  ERR_clear_error();
  const int read = PEM_read_bio(in, &label, &headers, &bytes, &size);
  pem_block block{openssl_bytes<char>(label), openssl_bytes<char>(headers),
                  openssl_bytes<unsigned char>(bytes), size};
  if (read == 1) return block;
  const unsigned long error = ERR_peek_last_error();
  if (ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE) {
    ERR_clear_error();  // no further block
    return std::nullopt;
  }
  base::throw_error(what, path, openssl_reason());
}

bool is_encrypted_key(std::string_view label, std::string_view headers) {
  return label == "ENCRYPTED PRIVATE KEY" ||  // PKCS #8
         (label.ends_with("PRIVATE KEY") && headers.find("ENCRYPTED") != std::string_view::npos);
}

void add_block(pem_contents& contents, const pem_block& block, std::string_view what,
               const std::string& path) {
  const std::string_view label(block.label.get());
  const unsigned char* at = block.bytes.get();
  if (label == PEM_STRING_X509) {
    x509_ptr found(d2i_X509(nullptr, &at, block.size));
    if (!found) base::throw_error(what, path, "broken certificate: " + openssl_reason());
    contents.certificates.push_back(std::move(found));
  } else if (is_encrypted_key(label, block.headers ? block.headers.get() : "")) {
    // The server starts unattended: nobody to ask for a pass phrase.
    base::throw_error(what, path, "the private key is encrypted");
  } else if (label.ends_with("PRIVATE KEY")) {  // PKCS #8, or "EC PRIVATE KEY" and the like
    if (contents.key) base::throw_error(what, path, "more than one private key");
    contents.key.reset(d2i_AutoPrivateKey(nullptr, &at, block.size));
    if (!contents.key) base::throw_error(what, path, "broken private key: " + openssl_reason());
  }
  // Other blocks ("EC PARAMETERS" before a key, say) hold nothing a server needs.
}

// The certificates and the private key of a PEM file, in any order.
pem_contents read_pem(const std::string& path, std::string_view what) {
  const base::mapped_file file = read_whole_file(path, what);
  if (file.size() > max_pem_bytes) base::throw_error(what, path, "larger than 1 MiB");
  pem_contents contents;
  if (file.size() == 0) return contents;
  const bio_ptr in(BIO_new_mem_buf(file.bytes().data(), static_cast<int>(file.size())));
  if (!in) base::throw_error(what, path, openssl_reason());
  while (const auto block = next_block(in.get(), what, path)) {
    add_block(contents, *block, what, path);
  }
  return contents;
}

// The first certificate is the leaf, the others its chain.
certificate split_chain(std::vector<x509_ptr> certificates, pkey_ptr key) {
  certificate out{std::move(certificates.front()), {}, std::move(key)};
  for (auto it = std::next(certificates.begin()); it != certificates.end(); ++it) {
    out.chain.push_back(std::move(*it));
  }
  return out;
}

bool key_matches(const certificate& cert) {
  const bool matches = X509_check_private_key(cert.leaf.get(), cert.key.get()) == 1;
  ERR_clear_error();
  return matches;
}

certificate load_bundle(const std::string& path) {
  pem_contents contents = read_pem(path, loading_certificate);
  if (contents.certificates.empty()) {
    base::throw_error(loading_certificate, path, "no certificate found");
  }
  if (!contents.key) base::throw_error(loading_certificate, path, "no private key found");
  certificate cert = split_chain(std::move(contents.certificates), std::move(contents.key));
  if (!key_matches(cert)) {
    throw std::runtime_error("TLS private key in " + base::quote(path) +
                             " does not match its certificate");
  }
  return cert;
}

certificate load_pair(const std::string& public_pem, const std::string& private_pem) {
  pem_contents chain = read_pem(public_pem, loading_certificate);
  if (chain.certificates.empty()) {
    base::throw_error(loading_certificate, public_pem, "no certificate found");
  }
  pem_contents secret = read_pem(private_pem, loading_key);
  if (!secret.key) base::throw_error(loading_key, private_pem, "no private key found");
  certificate cert = split_chain(std::move(chain.certificates), std::move(secret.key));
  if (!key_matches(cert)) {
    throw std::runtime_error("TLS private key " + base::quote(private_pem) +
                             " does not match certificate " + base::quote(public_pem));
  }
  return cert;
}

// ---- the self-signed certificate ----

[[noreturn]] void fail_self_signed() {
  throw std::runtime_error("cannot make the self-signed TLS certificate: " + openssl_reason());
}

pkey_ptr make_p256_key() {
  const pkey_ctx_ptr context(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (!context || EVP_PKEY_keygen_init(context.get()) != 1 ||
      EVP_PKEY_CTX_set_group_name(context.get(), "P-256") != 1 ||
      EVP_PKEY_generate(context.get(), &key) != 1) {
    fail_self_signed();
  }
  return pkey_ptr(key);
}

// A random positive 127-bit serial (RFC 5280 §4.1.2.2: at most 20 bytes, unpredictable), valid
// from an hour ago (clocks that lag) for 30 days.
void set_serial_and_validity(X509* cert) {
  std::array<unsigned char, 16> serial{};
  if (RAND_bytes(serial.data(), static_cast<int>(serial.size())) != 1) fail_self_signed();
  serial[0] = static_cast<unsigned char>((serial[0] & 0x7f) | 0x40);
  const bignum_ptr number(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  std::time_t now = std::time(nullptr);
  if (!number || BN_to_ASN1_INTEGER(number.get(), X509_get_serialNumber(cert)) == nullptr ||
      X509_time_adj_ex(X509_getm_notBefore(cert), 0, -3600, &now) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert), 30, 0, &now) == nullptr) {
    fail_self_signed();
  }
}

void add_extensions(X509* cert) {
  const std::pair<int, const char*> extensions[] = {
      {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, "serverAuth"},
  };
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    const extension_ptr extension(X509V3_EXT_nconf_nid(nullptr, &context, nid, value));
    if (!extension || X509_add_ext(cert, extension.get(), -1) != 1) fail_self_signed();
  }
}

certificate make_self_signed() {
  certificate out{x509_ptr(X509_new()), {}, make_p256_key()};
  X509* cert = out.leaf.get();
  if (cert == nullptr || X509_set_version(cert, X509_VERSION_3) != 1) fail_self_signed();
  set_serial_and_validity(cert);
  X509_NAME* name = X509_get_subject_name(cert);
  const auto* common_name = reinterpret_cast<const unsigned char*>("localhost");
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, common_name, -1, -1, 0) != 1 ||
      X509_set_issuer_name(cert, name) != 1 || X509_set_pubkey(cert, out.key.get()) != 1) {
    fail_self_signed();
  }
  add_extensions(cert);
  if (X509_sign(cert, out.key.get(), EVP_sha256()) <= 0) fail_self_signed();
  return out;
}

// A certificate and the file to name in messages about it.
struct loaded_certificate {
  certificate cert;
  std::string source;
};

// The certificates the settings name, in their order. Throws, naming the file, at the first
// that does not load.
std::vector<loaded_certificate> load_certificates(const tls_settings& settings) {
  std::vector<loaded_certificate> loaded;
  if (settings.self_signed) {
    loaded.push_back({make_self_signed(), "self-signed"});
    return loaded;
  }
  for (const auto& files : settings.certificates) {
    if (!files.bundle.empty()) {
      loaded.push_back({load_bundle(files.bundle), files.bundle});
      continue;
    }
    assert(!files.public_pem.empty() && !files.private_pem.empty());  // serve::validate
    loaded.push_back({load_pair(files.public_pem, files.private_pem), files.public_pem});
  }
  assert(!loaded.empty());  // serve::validate
  return loaded;
}

// ---- the names a certificate is for ----

// An ASN.1 string's bytes as text; nullopt if it holds a NUL (a name forged to fool a client
// that stops there).
std::optional<std::string> text_of(const ASN1_STRING* string) {
  const auto* bytes = reinterpret_cast<const char*>(ASN1_STRING_get0_data(string));
  const std::string text(bytes, static_cast<std::size_t>(ASN1_STRING_length(string)));
  if (text.find('\0') != std::string::npos) return std::nullopt;
  std::string lower;
  for (const char c : text) lower += http::syntax::to_lower(c);
  return lower;
}

// The last (most specific, RFC 6125 §6.4.4) common name of the subject, if any.
std::optional<std::string> common_name(const X509* cert) {
  const X509_NAME* subject = X509_get_subject_name(cert);
  int at = -1;
  for (int next; (next = X509_NAME_get_index_by_NID(subject, NID_commonName, at)) >= 0;) at = next;
  if (at < 0) return std::nullopt;
  return text_of(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
}

std::string address_text(const ASN1_OCTET_STRING* address) {
  char text[INET6_ADDRSTRLEN] = {};
  const int size = ASN1_STRING_length(address);
  const int family = size == 4 ? AF_INET : AF_INET6;
  if ((size != 4 && size != 16) ||
      ::inet_ntop(family, ASN1_STRING_get0_data(address), text, sizeof text) == nullptr) {
    return {};
  }
  return text;
}

// subjectAltName's dNSName and iPAddress entries, lower case; the subject's CN stands in for
// the DNS names only when there are none (RFC 6125 §6.4.4).
certificate_names names_of(const X509* cert) {
  certificate_names names;
  const auto free_names = [](GENERAL_NAMES* list) { GENERAL_NAMES_free(list); };
  const std::unique_ptr<GENERAL_NAMES, decltype(free_names)> alt_names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)),
      free_names);
  for (int i = 0; alt_names && i < sk_GENERAL_NAME_num(alt_names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(alt_names.get(), i);
    if (name->type == GEN_DNS) {
      if (auto text = text_of(name->d.dNSName)) names.dns.push_back(std::move(*text));
    } else if (name->type == GEN_IPADD) {
      if (auto text = address_text(name->d.iPAddress); !text.empty()) {
        names.addresses.push_back(std::move(text));
      }
    }
  }
  ERR_clear_error();  // X509_get_ext_d2i's, for a certificate without the extension
  if (names.dns.empty()) {
    if (auto cn = common_name(cert)) names.dns.push_back(std::move(*cn));
  }
  return names;
}

std::string sha256_fingerprint(const X509* cert) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (cert == nullptr || X509_digest(cert, EVP_sha256(), digest.data(), &size) != 1) {
    throw std::runtime_error("cannot take the TLS certificate's fingerprint: " + openssl_reason());
  }
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string text;
  for (unsigned int i = 0; i < size; ++i) {
    if (i > 0) text += ':';
    text += hex[digest[i] >> 4];
    text += hex[digest[i] & 0xf];
  }
  return text;
}

// ---- what the callbacks need ----

// Every certificate of one load: the names, the contexts (one per certificate, configured
// alike), what the log lines say of them. Shared by the states of those contexts.
struct certificate_set {
  certificate_table table;
  std::vector<SSL_CTX*> contexts;  // by certificate; the default's state owns the others
  std::vector<tls_context::certificate_info> described;
};

// Owned by the SSL_CTX it serves (its ex_data, freed with it), so that it lives exactly as long as
// the context and every connection made from it, past a reload and past the tls_context. A
// connection holds the default context (it was made from it) and the one SNI chose.
struct context_state {
  std::shared_ptr<const ticket_keys> tickets;
  std::string alpn;  // wire format, server's order of preference
  std::shared_ptr<const certificate_set> set;
  served_certificate served;  // this context's certificate, for the handler
  // The default context's: the others, which SNI may switch a connection to. Not the other way
  // round, which would be a cycle.
  std::vector<std::shared_ptr<SSL_CTX>> others;
};

void free_context_state(void*, void* state, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<context_state*>(state);
}

int context_state_index() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_context_state);
  return index;
}

context_state* state_of(const SSL_CTX* context) {
  return static_cast<context_state*>(SSL_CTX_get_ex_data(context, context_state_index()));
}

// The state of the context a connection uses now (the one SNI chose, once it has).
const context_state* context_state_of(const SSL* ssl) {
  return state_of(SSL_get_SSL_CTX(ssl));
}

// ---- ALPN ----

std::string alpn_wire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& protocol : protocols) {
    assert(!protocol.empty() && protocol.size() <= 255);  // RFC 7301 §3.1
    wire += static_cast<char>(protocol.size());
    wire += protocol;
  }
  return wire;
}

// Takes the first length-prefixed name off `list`; nullopt if the list is malformed.
std::optional<std::string_view> take_protocol(std::string_view& list) {
  const auto size = static_cast<unsigned char>(list.front());
  if (size == 0 || size >= list.size()) return std::nullopt;
  const std::string_view name = list.substr(1, size);
  list.remove_prefix(std::size_t{size} + 1);
  return name;
}

// The first of `ours` that `offered` holds, as a view into `offered`.
std::optional<std::string_view> choose_protocol(std::string_view ours, std::string_view offered) {
  while (!ours.empty()) {
    const auto wanted = take_protocol(ours);
    if (!wanted) break;
    for (auto theirs = offered; !theirs.empty();) {
      const auto candidate = take_protocol(theirs);
      if (!candidate) break;
      if (*candidate == *wanted) return candidate;
    }
  }
  return std::nullopt;
}

int select_alpn(SSL*, const unsigned char** chosen, unsigned char* chosen_size,
                const unsigned char* offered, unsigned int offered_size, void* state) {
  const auto match = choose_protocol(static_cast<const context_state*>(state)->alpn,
                                     {reinterpret_cast<const char*>(offered), offered_size});
  // None in common: the handshake goes on without ALPN and the client gets HTTP/1.1, as from a
  // server without ALPN, rather than RFC 7301 §3.2's no_application_protocol alert, so that a
  // client offering only protocols we do not know is still served.
  if (!match) return SSL_TLSEXT_ERR_NOACK;
  *chosen = reinterpret_cast<const unsigned char*>(match->data());  // OpenSSL copies it
  *chosen_size = static_cast<unsigned char>(match->size());
  return SSL_TLSEXT_ERR_OK;
}

// ---- SNI ----

// The certificate whose names cover the name the client asked for (certificate_table::find),
// else the default: the connection moves to that certificate's context, configured like the
// default one. OpenSSL calls this for every ClientHello, with or without SNI (the second one after
// a HelloRetryRequest finds the context chosen for the first: the same set, the same choice).
int choose_certificate(SSL* ssl, int*, void*) {
  const context_state* state = context_state_of(ssl);
  if (state == nullptr || state->set->contexts.size() < 2) return SSL_TLSEXT_ERR_OK;
  const certificate_set& set = *state->set;
  std::size_t index = certificate_table::none;
  if (const char* asked = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
    std::array<char, 256> room{};
    index = set.table.find(normalized_host(asked, room));
  }
  SSL_CTX* chosen = set.contexts[index == certificate_table::none ? 0 : index];
  if (chosen != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, chosen) == nullptr) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

// ---- session tickets ----

// Puts a ticket key into OpenSSL's cipher and MAC contexts.
bool use_ticket_key(ticket_keys::key& key, const EVP_CIPHER* cipher, const unsigned char* iv,
                    EVP_CIPHER_CTX* cipher_context, EVP_MAC_CTX* mac_context, bool seal) {
  char digest[] = "SHA256";
  const OSSL_PARAM mac_params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  const int keyed = seal ? EVP_EncryptInit_ex(cipher_context, cipher, nullptr, key.aes.data(), iv)
                         : EVP_DecryptInit_ex(cipher_context, cipher, nullptr, key.aes.data(), iv);
  const bool done = keyed == 1 && EVP_MAC_CTX_set_params(mac_context, mac_params) == 1;
  OPENSSL_cleanse(&key, sizeof key);  // the copy taken out of the cache
  return done;
}

// SSL_CTX_set_tlsext_ticket_key_evp_cb's callback: seals a new ticket with the current hour's key
// (1), or opens one with the key its name picks: 1, or 2 for the previous hour's (OpenSSL then
// sends a fresh ticket); 0 for an unknown name (a full handshake), -1 on error.
int seal_or_open_ticket(SSL* ssl, unsigned char* name, unsigned char* iv,
                        EVP_CIPHER_CTX* cipher_context, EVP_MAC_CTX* mac_context, int seal) {
  const context_state* state = context_state_of(ssl);
  if (state == nullptr) return -1;
  const ticket_keys& keys = *state->tickets;
  const std::int64_t hour = keys.hour();
  if (seal == 1) {
    auto key = keys.for_hour(hour);
    if (!key || RAND_bytes(iv, EVP_CIPHER_get_iv_length(keys.cipher())) != 1) return -1;
    std::memcpy(name, key->name.data(), key->name.size());
    return use_ticket_key(*key, keys.cipher(), iv, cipher_context, mac_context, true) ? 1 : -1;
  }
  auto found = keys.find(std::span<const unsigned char, 16>(name, 16), hour);
  if (!found) return 0;
  const bool renew = found->renew;
  if (!use_ticket_key(found->found, keys.cipher(), iv, cipher_context, mac_context, false)) {
    return -1;
  }
  return renew ? 2 : 1;
}

std::optional<ticket_keys::key> derive_ticket_key(EVP_KDF* hkdf, const ticket_master& master,
                                                  std::int64_t hour) {
  const kdf_ctx_ptr context(EVP_KDF_CTX_new(hkdf));
  std::string info = "kawipiko ticket " + std::to_string(hour);
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      // OSSL_PARAM takes a mutable pointer; HKDF only reads the key.
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                        const_cast<unsigned char*>(master.data()), master.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end(),
  };
  ticket_keys::key key{};
  std::array<unsigned char, sizeof key.name + sizeof key.aes + sizeof key.hmac> bytes{};
  if (!context || EVP_KDF_derive(context.get(), bytes.data(), bytes.size(), params) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  std::memcpy(key.name.data(), bytes.data(), key.name.size());
  std::memcpy(key.aes.data(), bytes.data() + key.name.size(), key.aes.size());
  std::memcpy(key.hmac.data(), bytes.data() + key.name.size() + key.aes.size(), key.hmac.size());
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return key;
}

// ---- the SSL_CTX ----

// Versions, suites, groups and options: the same for every context.
void configure_protocol(SSL_CTX* context) {
  if (SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(context, tls12_suites) != 1 ||
      SSL_CTX_set1_groups_list(context, key_exchange_groups) != 1) {
    throw std::runtime_error("cannot configure TLS: " + openssl_reason());
  }
  // The server's order of suites, except that a client which puts ChaCha20 first (no hardware
  // AES) gets it.
  SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                   SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
  // Idle connections hold no record buffers (about 34 KiB each otherwise).
  SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS);
  // kTLS (SSL_OP_ENABLE_KTLS, then SSL_sendfile) would be set here, behind a run-time check that
  // the kernel has its tls module, which these machines' lacks; it needs OpenSSL's socket BIO,
  // so the transport's own BIOs would stay the fallback.
}

// Stateless resumption: the ticket carries the session, sealed with keys every process derives
// alike, so a client resumes on whichever worker it lands; no per-process session cache.
void configure_sessions(SSL_CTX* context) {
  static constexpr unsigned char id_context[] = "kawipiko";
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_timeout(context, ticket_lifetime_seconds);
  if (SSL_CTX_set_num_tickets(context, tickets_per_handshake) != 1 ||
      SSL_CTX_set_session_id_context(context, id_context, sizeof id_context - 1) != 1 ||
      SSL_CTX_set_tlsext_ticket_key_evp_cb(context, seal_or_open_ticket) != 1) {
    throw std::runtime_error("cannot configure TLS sessions: " + openssl_reason());
  }
}

// Hands `state` to the context, which frees it with itself.
context_state* attach_state(SSL_CTX* context, std::unique_ptr<context_state> state) {
  const int index = context_state_index();
  if (index < 0 || SSL_CTX_set_ex_data(context, index, state.get()) != 1) {
    throw std::runtime_error("cannot configure TLS: " + openssl_reason());
  }
  return state.release();
}

void install_certificate(SSL_CTX* context, const certificate& cert, const std::string& source) {
  const auto free_chain = [](STACK_OF(X509) * chain) { sk_X509_free(chain); };
  const std::unique_ptr<STACK_OF(X509), decltype(free_chain)> chain(sk_X509_new_null(), free_chain);
  bool ok = chain != nullptr;
  for (const auto& issuer : cert.chain) ok = ok && sk_X509_push(chain.get(), issuer.get()) > 0;
  // SSL_CTX_use_cert_and_key takes references of its own to the certificates and the key.
  if (!ok ||
      SSL_CTX_use_cert_and_key(context, cert.leaf.get(), cert.key.get(), chain.get(), 1) != 1 ||
      SSL_CTX_check_private_key(context) != 1) {
    throw std::runtime_error("cannot use TLS certificate " + base::quote(source) + ": " +
                             openssl_reason());
  }
}

std::shared_ptr<SSL_CTX> make_ssl_context(const loaded_certificate& loaded,
                                          std::unique_ptr<context_state> state) {
  ssl_ctx_ptr context(SSL_CTX_new(TLS_server_method()));
  if (!context) throw std::runtime_error("cannot make a TLS context: " + openssl_reason());
  context_state* attached = attach_state(context.get(), std::move(state));
  configure_protocol(context.get());
  configure_sessions(context.get());
  SSL_CTX_set_alpn_select_cb(context.get(), select_alpn, attached);
  // SSL_CTX_set_tlsext_servername_callback, without the macro's C cast.
  SSL_CTX_callback_ctrl(context.get(), SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                        reinterpret_cast<void (*)()>(choose_certificate));
  install_certificate(context.get(), loaded.cert, loaded.source);
  return {context.release(), SSL_CTX_free};
}

tls_context::certificate_info describe(const loaded_certificate& loaded,
                                       const certificate_names& names) {
  tls_context::certificate_info info{loaded.source, names.dns,
                                     sha256_fingerprint(loaded.cert.leaf.get())};
  info.names.insert(info.names.end(), names.addresses.begin(), names.addresses.end());
  return info;
}

// One context per certificate of `settings`, all configured alike (the same ticket keys, so that
// a ticket from any of them resumes on any), sharing one certificate_set; the default one (the
// first), which owns the others. Throws, naming the file, if any certificate does not load.
std::shared_ptr<SSL_CTX> make_contexts(const tls_settings& settings,
                                       const std::shared_ptr<const ticket_keys>& tickets,
                                       const std::string& alpn) {
  const auto loaded = load_certificates(settings);
  auto set = std::make_shared<certificate_set>();
  for (const auto& one : loaded) {
    const auto names = names_of(one.cert.leaf.get());
    set->table.add(names);
    set->described.push_back(describe(one, names));
  }
  std::vector<std::shared_ptr<SSL_CTX>> contexts;
  for (std::size_t i = 0; i < loaded.size(); ++i) {
    auto state = std::make_unique<context_state>(
        context_state{tickets, alpn, set, served_certificate{&set->table, i}, {}});
    contexts.push_back(make_ssl_context(loaded[i], std::move(state)));
    set->contexts.push_back(contexts.back().get());
  }
  auto first = std::move(contexts.front());
  state_of(first.get())
      ->others.assign(std::make_move_iterator(std::next(contexts.begin())),
                      std::make_move_iterator(contexts.end()));
  return first;
}

}  // namespace

ticket_master make_ticket_master() {
  ticket_master master{};
  if (RAND_bytes(master.data(), static_cast<int>(master.size())) != 1) {
    throw std::runtime_error("cannot make the TLS session-ticket secret: " + openssl_reason());
  }
  return master;
}

ticket_keys::ticket_keys(const ticket_master& master, hour_clock clock)
    : master_(master),
      clock_(clock),
      hkdf_(EVP_KDF_fetch(nullptr, "HKDF", nullptr), &EVP_KDF_free),
      cipher_(EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr), &EVP_CIPHER_free) {
  if (!hkdf_ || !cipher_) {
    throw std::runtime_error("cannot make TLS session-ticket keys: " + openssl_reason());
  }
}

ticket_keys::~ticket_keys() {
  OPENSSL_cleanse(master_.data(), master_.size());
  OPENSSL_cleanse(cache_.data(), sizeof cache_);
}

std::int64_t ticket_keys::hour_now() noexcept {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::floor<std::chrono::hours>(now).count();
}

std::optional<ticket_keys::key> ticket_keys::for_hour(std::int64_t hour) const noexcept {
  try {
    const std::lock_guard lock(mutex_);
    for (const auto& slot : cache_) {
      if (slot.hour == hour) return slot.value;
    }
    const auto derived = derive_ticket_key(hkdf_.get(), master_, hour);
    if (derived) {
      auto& oldest = cache_[0].hour < cache_[1].hour ? cache_[0] : cache_[1];
      oldest = {hour, *derived};
    }
    return derived;
  } catch (...) {  // a lock or an allocation that failed: no ticket this time
    return std::nullopt;
  }
}

std::optional<ticket_keys::lookup> ticket_keys::find(std::span<const unsigned char, 16> name,
                                                     std::int64_t hour) const noexcept {
  for (const bool previous : {false, true}) {
    const auto candidate = for_hour(previous ? hour - 1 : hour);
    if (candidate && CRYPTO_memcmp(candidate->name.data(), name.data(), name.size()) == 0) {
      return lookup{*candidate, previous};
    }
  }
  return std::nullopt;
}

tls_context::tls_context(const tls_settings& settings, std::vector<std::string> alpn,
                         const ticket_master& master)
    : tls_context(settings, std::move(alpn), std::make_shared<const ticket_keys>(master)) {}

tls_context::tls_context(const tls_settings& settings, std::vector<std::string> alpn,
                         std::shared_ptr<const ticket_keys> tickets)
    : settings_(settings), alpn_(alpn_wire(alpn)), tickets_(std::move(tickets)) {
  assert(tickets_ != nullptr);
  current_.store(make_contexts(settings_, tickets_, alpn_));
}

std::shared_ptr<SSL_CTX> tls_context::current() const noexcept {
  return current_.load(std::memory_order_acquire);
}

void tls_context::reload() {
  if (settings_.self_signed) return;
  auto next = make_contexts(settings_, tickets_, alpn_);
  current_.store(std::move(next), std::memory_order_release);
}

std::string tls_context::fingerprint() const {
  return sha256_fingerprint(SSL_CTX_get0_certificate(current().get()));
}

std::vector<tls_context::certificate_info> tls_context::certificates() const {
  return state_of(current().get())->set->described;
}

const served_certificate* served_certificate_of(const SSL* ssl) noexcept {
  const context_state* state = context_state_of(ssl);
  return state != nullptr ? &state->served : nullptr;
}

std::unique_ptr<tls_context> make_tls_context(const tls_settings& settings,
                                              std::vector<std::string> alpn) {
  if (settings.bind_tls.empty()) return nullptr;
  ticket_master master = make_ticket_master();
  auto context = std::make_unique<tls_context>(settings, std::move(alpn), master);
  OPENSSL_cleanse(master.data(), master.size());
  return context;
}

}  // namespace kawipiko::serve
