#include "serve/tls_context.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/certificates.hpp"
#include "support/temp_folder.hpp"

namespace serve = kawipiko::serve;
namespace fs = std::filesystem;
using kawipiko::test::chained_pair;
using kawipiko::test::der_sha256;
using kawipiko::test::file_fingerprint;
using kawipiko::test::make_chained_pair;
using kawipiko::test::make_named_pair;
using kawipiko::test::make_pair;
using kawipiko::test::openssl;
using kawipiko::test::pem_pair;
using kawipiko::test::read_file;
using kawipiko::test::shell_quoted;
using kawipiko::test::temp_folder;

namespace {

using ssl_ptr = std::unique_ptr<SSL, decltype(&SSL_free)>;
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
using session_ptr = std::unique_ptr<SSL_SESSION, decltype(&SSL_SESSION_free)>;

const std::vector<std::string> http1{"http/1.1"};

serve::ticket_master master_of(unsigned char fill) {
  serve::ticket_master master{};
  master.fill(fill);
  return master;
}

serve::tls_settings pair_settings(const pem_pair& pair) {
  serve::tls_settings settings;
  settings.bind_tls = "127.0.0.1:0";
  settings.certificates = {{{}, pair.certificate.string(), pair.key.string()}};
  return settings;
}

serve::tls_settings bundle_settings(const fs::path& bundle) {
  serve::tls_settings settings;
  settings.bind_tls = "127.0.0.1:0";
  settings.certificates = {{bundle.string(), {}, {}}};
  return settings;
}

serve::tls_settings self_signed_settings() {
  serve::tls_settings settings;
  settings.bind_tls = "127.0.0.1:0";
  settings.self_signed = true;
  return settings;
}

// ---- certificates ----

const X509* leaf_of(const serve::tls_context& context) {
  return SSL_CTX_get0_certificate(context.current().get());
}

// ---- handshakes in memory ----

struct client_config {
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string tls12_suites;       // empty: OpenSSL's default
  std::string groups;             // empty: OpenSSL's default
  std::string alpn;               // wire format; empty: no ALPN
  const X509* trusted = nullptr;  // verify the server's certificate against it
};

ssl_ctx_ptr make_client(const client_config& config = {}) {
  ssl_ctx_ptr context(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  REQUIRE(context != nullptr);
  REQUIRE(SSL_CTX_set_min_proto_version(context.get(), config.min_version) == 1);
  REQUIRE(SSL_CTX_set_max_proto_version(context.get(), config.max_version) == 1);
  if (!config.tls12_suites.empty()) {
    REQUIRE(SSL_CTX_set_cipher_list(context.get(), config.tls12_suites.c_str()) == 1);
  }
  if (!config.groups.empty()) {
    REQUIRE(SSL_CTX_set1_groups_list(context.get(), config.groups.c_str()) == 1);
  }
  if (!config.alpn.empty()) {
    const auto* wire = reinterpret_cast<const unsigned char*>(config.alpn.data());
    REQUIRE(SSL_CTX_set_alpn_protos(context.get(), wire,
                                    static_cast<unsigned int>(config.alpn.size())) == 0);
  }
  if (config.trusted != nullptr) {
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
    REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(context.get()),
                                const_cast<X509*>(config.trusted)) == 1);
  }
  return context;
}

// A client and a server joined by a BIO pair.
struct tls_pair {
  ssl_ptr client{nullptr, SSL_free};
  ssl_ptr server{nullptr, SSL_free};
  int server_reason = 0;  // why the server refused, as an SSL_R_* reason
};

// `server_name`: the SNI the client sends and the name it checks (if it verifies); null: none.
tls_pair connect(SSL_CTX* server_context, SSL_CTX* client_context, SSL_SESSION* resume = nullptr,
                 const char* server_name = "localhost") {
  tls_pair pair{ssl_ptr(SSL_new(client_context), SSL_free),
                ssl_ptr(SSL_new(server_context), SSL_free)};
  REQUIRE(pair.client != nullptr);
  REQUIRE(pair.server != nullptr);
  BIO* client_end = nullptr;
  BIO* server_end = nullptr;
  REQUIRE(BIO_new_bio_pair(&client_end, 0, &server_end, 0) == 1);
  SSL_set_bio(pair.client.get(), client_end, client_end);
  SSL_set_bio(pair.server.get(), server_end, server_end);
  SSL_set_connect_state(pair.client.get());
  SSL_set_accept_state(pair.server.get());
  if (server_name != nullptr) {
    REQUIRE(SSL_ctrl(pair.client.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(server_name)) == 1);
    REQUIRE(SSL_set1_host(pair.client.get(), server_name) == 1);
  }
  if (resume != nullptr) REQUIRE(SSL_set_session(pair.client.get(), resume) == 1);
  return pair;
}

enum class step { done, waiting, failed };

step advance(SSL* ssl) {
  ERR_clear_error();
  const int result = SSL_do_handshake(ssl);
  if (result == 1) return step::done;
  const int error = SSL_get_error(ssl, result);
  return error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE ? step::waiting
                                                                       : step::failed;
}

// Runs both sides until they are done or one fails; true when both are done. The client then
// reads what the server sent after its handshake (TLS 1.3's tickets).
bool handshake(tls_pair& pair) {
  for (int round = 0; round < 20; ++round) {
    const step client = advance(pair.client.get());
    if (client == step::failed) return false;
    const step server = advance(pair.server.get());
    if (server == step::failed) {
      pair.server_reason = ERR_GET_REASON(ERR_peek_error());
      ERR_clear_error();
      return false;
    }
    if (client == step::done && server == step::done) {
      char byte;
      CHECK(SSL_read(pair.client.get(), &byte, 1) <= 0);  // no data: only the tickets
      ERR_clear_error();
      return true;
    }
  }
  return false;
}

// Both sides send close_notify: a client forgets a session whose connection ended without it.
void close(tls_pair& pair) {
  SSL_shutdown(pair.client.get());
  SSL_shutdown(pair.server.get());
}

std::string chosen_alpn(const SSL* ssl) {
  const unsigned char* name = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(ssl, &name, &size);
  return name == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(name), size);
}

std::string peer_fingerprint(const SSL* client) {
  const X509* cert = SSL_get0_peer_certificate(client);
  REQUIRE(cert != nullptr);
  return der_sha256(cert);
}

// A handshake with `client`; the session the client keeps (with its ticket).
session_ptr full_handshake(SSL_CTX* server_context, SSL_CTX* client_context) {
  tls_pair pair = connect(server_context, client_context);
  REQUIRE(handshake(pair));
  CHECK(SSL_session_reused(pair.server.get()) == 0);
  session_ptr session(SSL_get1_session(pair.client.get()), SSL_SESSION_free);
  REQUIRE(session != nullptr);
  REQUIRE(SSL_SESSION_is_resumable(session.get()) == 1);
  REQUIRE(SSL_SESSION_has_ticket(session.get()) == 1);
  close(pair);
  return session;
}

struct resumption {
  bool reused;
  session_ptr session;  // what the client keeps afterwards
};

resumption resume(SSL_CTX* server_context, SSL_CTX* client_context, SSL_SESSION* session) {
  tls_pair pair = connect(server_context, client_context, session);
  REQUIRE(handshake(pair));
  close(pair);
  return {SSL_session_reused(pair.server.get()) == 1,
          session_ptr(SSL_get1_session(pair.client.get()), SSL_SESSION_free)};
}

bool resumes(SSL_CTX* server_context, SSL_CTX* client_context, SSL_SESSION* session) {
  return resume(server_context, client_context, session).reused;
}

std::string ticket_of(const SSL_SESSION* session) {
  const unsigned char* ticket = nullptr;
  std::size_t size = 0;
  SSL_SESSION_get0_ticket(session, &ticket, &size);
  return {reinterpret_cast<const char*>(ticket), size};
}

// The hour of the ticket keys a test makes, which it moves on by hand.
std::atomic<std::int64_t> test_hour{0};
std::int64_t test_clock() noexcept {
  return test_hour.load();
}

}  // namespace

TEST_CASE("a self-signed context has a P-256 certificate for localhost, valid for 30 days",
          "[serve][tls]") {
  const serve::tls_context context(self_signed_settings(), http1, master_of(1));
  CHECK(context.is_self_signed());
  X509* cert = const_cast<X509*>(leaf_of(context));
  REQUIRE(cert != nullptr);

  EVP_PKEY* key = X509_get0_pubkey(cert);
  REQUIRE(key != nullptr);
  CHECK(EVP_PKEY_get_base_id(key) == EVP_PKEY_EC);
  char group[64] = {};
  REQUIRE(EVP_PKEY_get_group_name(key, group, sizeof group, nullptr) == 1);
  CHECK(OBJ_txt2nid(group) == NID_X9_62_prime256v1);
  CHECK(X509_get_signature_nid(cert) == NID_ecdsa_with_SHA256);
  CHECK(X509_verify(cert, key) == 1);  // signed by its own key

  CHECK(X509_check_host(cert, "localhost", 0, 0, nullptr) == 1);
  CHECK(X509_check_ip_asc(cert, "127.0.0.1", 0) == 1);
  CHECK(X509_check_ip_asc(cert, "::1", 0) == 1);
  CHECK(X509_check_host(cert, "example.com", 0, 0, nullptr) == 0);
  CHECK(X509_check_ip_asc(cert, "127.0.0.2", 0) == 0);

  CHECK((X509_get_extension_flags(cert) & EXFLAG_BCONS) != 0);
  CHECK(X509_check_ca(cert) == 0);  // basicConstraints CA:FALSE
  CHECK(X509_get_key_usage(cert) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_get_extended_key_usage(cert) == XKU_SSL_SERVER);

  int days = 0;
  int seconds = 0;
  REQUIRE(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert), X509_get0_notAfter(cert)) ==
          1);
  CHECK(days == 30);
  CHECK(seconds == 3600);  // from an hour ago
  CHECK(X509_cmp_current_time(X509_get0_notBefore(cert)) < 0);
  CHECK(X509_cmp_current_time(X509_get0_notAfter(cert)) > 0);

  const serve::tls_context other(self_signed_settings(), http1, master_of(1));
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  CHECK(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(leaf_of(other))) != 0);  // random
  CHECK(ASN1_INTEGER_get_int64(nullptr, serial) == 0);  // too large for 64 bits: 16 bytes
}

TEST_CASE("the fingerprint is the SHA-256 of the certificate's DER in colon-separated hex",
          "[serve][tls]") {
  const serve::tls_context context(self_signed_settings(), http1, master_of(1));
  const std::string fingerprint = context.fingerprint();
  CHECK(fingerprint.size() == 32 * 3 - 1);
  CHECK(fingerprint == der_sha256(leaf_of(context)));
}

TEST_CASE(
    "a bundle with the chain and the key in any order loads, its first certificate as the "
    "leaf",
    "[serve][tls]") {
  const temp_folder folder;
  const chained_pair files = make_chained_pair(folder);
  const std::string leaf = read_file(files.leaf.certificate);
  const std::string ca = read_file(files.ca);
  const std::string key = read_file(files.leaf.key);
  const std::string bundles[] = {key + leaf + ca, leaf + ca + key, leaf + key + ca};
  const std::string& bundle = bundles[GENERATE(0, 1, 2)];
  const auto path = folder.write("bundle.pem", bundle);

  const serve::tls_context context(bundle_settings(path), http1, master_of(1));
  CHECK_FALSE(context.is_self_signed());
  CHECK(context.fingerprint() == file_fingerprint(files.leaf.certificate));
  STACK_OF(X509)* chain = nullptr;
  REQUIRE(SSL_CTX_get0_chain_certs(context.current().get(), &chain) == 1);
  REQUIRE(sk_X509_num(chain) == 1);
  CHECK(der_sha256(sk_X509_value(chain, 0)) == file_fingerprint(files.ca));
}

TEST_CASE("a public certificate with its private key loads", "[serve][tls]") {
  const temp_folder folder;
  const pem_pair pair = make_pair(folder, "site");
  const serve::tls_context context(pair_settings(pair), http1, master_of(1));
  CHECK(context.fingerprint() == file_fingerprint(pair.certificate));
}

TEST_CASE("certificate files that cannot serve are refused with one line naming the file",
          "[serve][tls]") {
  const temp_folder folder;
  const pem_pair one = make_pair(folder, "one");
  const pem_pair two = make_pair(folder, "two");
  const auto quoted = [](const fs::path& path) { return "'" + path.string() + "'"; };
  const auto refusal = [](const serve::tls_settings& settings) {
    try {
      const serve::tls_context context(settings, http1, master_of(1));
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("(loaded)");
  };

  SECTION("a key that is not the certificate's") {
    CHECK(refusal(pair_settings({one.certificate, two.key})) ==
          "TLS private key " + quoted(two.key) + " does not match certificate " +
              quoted(one.certificate));
    const auto bundle = folder.write("mixed.pem", read_file(one.certificate) + read_file(two.key));
    CHECK(refusal(bundle_settings(bundle)) ==
          "TLS private key in " + quoted(bundle) + " does not match its certificate");
  }
  SECTION("an empty file, a missing one") {
    const auto empty = folder.write("empty.pem", "");
    CHECK(refusal(bundle_settings(empty)) ==
          "cannot load TLS certificate " + quoted(empty) + ": no certificate found");
    CHECK(refusal(pair_settings({empty, one.key})) ==
          "cannot load TLS certificate " + quoted(empty) + ": no certificate found");
    const auto missing = folder / "missing.pem";
    CHECK(refusal(bundle_settings(missing)) ==
          "cannot load TLS certificate " + quoted(missing) + ": No such file or directory");
    CHECK(refusal(pair_settings({one.certificate, missing})) ==
          "cannot load TLS private key " + quoted(missing) + ": No such file or directory");
    CHECK(refusal(bundle_settings(folder.path())) ==
          "cannot load TLS certificate " + quoted(folder.path()) + ": not a regular file");
  }
  SECTION("a file with only a key, or only a certificate") {
    CHECK(refusal(bundle_settings(one.key)) ==
          "cannot load TLS certificate " + quoted(one.key) + ": no certificate found");
    CHECK(refusal(pair_settings({one.key, one.key})) ==
          "cannot load TLS certificate " + quoted(one.key) + ": no certificate found");
    CHECK(refusal(bundle_settings(one.certificate)) ==
          "cannot load TLS certificate " + quoted(one.certificate) + ": no private key found");
    CHECK(refusal(pair_settings({one.certificate, one.certificate})) ==
          "cannot load TLS private key " + quoted(one.certificate) + ": no private key found");
  }
  SECTION("an encrypted key, two keys, a broken block") {
    const auto encrypted = folder / "encrypted.key";
    openssl("pkey -aes-128-cbc -passout pass:secret -in " + shell_quoted(one.key) + " -out " +
                shell_quoted(encrypted),
            folder);
    CHECK(refusal(pair_settings({one.certificate, encrypted})) ==
          "cannot load TLS private key " + quoted(encrypted) + ": the private key is encrypted");
    const auto two_keys = folder.write(
        "two-keys.pem", read_file(one.certificate) + read_file(one.key) + read_file(two.key));
    CHECK(refusal(bundle_settings(two_keys)) ==
          "cannot load TLS certificate " + quoted(two_keys) + ": more than one private key");
    const auto broken = folder.write(
        "broken.pem", "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n");
    CHECK_THAT(refusal(bundle_settings(broken)),
               Catch::StartsWith("cannot load TLS certificate " + quoted(broken) + ": "));
  }
}

TEST_CASE("a TLS 1.3 handshake verifies for localhost, reads the server name and chooses ALPN",
          "[serve][tls]") {
  const serve::tls_context context(self_signed_settings(), http1, master_of(1));
  client_config config;
  config.trusted = leaf_of(context);

  SECTION("http/1.1 when offered") {
    config.alpn = std::string("\x02h2\x08http/1.1", 12);
    const auto client = make_client(config);
    tls_pair pair = connect(context.current().get(), client.get());
    REQUIRE(handshake(pair));
    CHECK(SSL_version(pair.server.get()) == TLS1_3_VERSION);
    CHECK(SSL_get_verify_result(pair.client.get()) == X509_V_OK);
    CHECK(chosen_alpn(pair.server.get()) == "http/1.1");
    CHECK(chosen_alpn(pair.client.get()) == "http/1.1");
    const char* name = SSL_get_servername(pair.server.get(), TLSEXT_NAMETYPE_host_name);
    REQUIRE(name != nullptr);
    CHECK(std::string(name) == "localhost");
  }
  SECTION("nothing when the client offers no ALPN, or only protocols the server does not know") {
    for (const std::string& offered : {std::string(), std::string("\x02h2\x03h3x", 7)}) {
      config.alpn = offered;
      const auto client = make_client(config);
      tls_pair pair = connect(context.current().get(), client.get());
      REQUIRE(handshake(pair));
      CHECK(chosen_alpn(pair.server.get()).empty());
      CHECK(chosen_alpn(pair.client.get()).empty());
    }
  }
  SECTION("the server's preference over the client's order") {
    const serve::tls_context both(self_signed_settings(), {"h2", "http/1.1"}, master_of(1));
    config.trusted = leaf_of(both);
    config.alpn = std::string("\x08http/1.1\x02h2", 12);
    const auto client = make_client(config);
    tls_pair pair = connect(both.current().get(), client.get());
    REQUIRE(handshake(pair));
    CHECK(chosen_alpn(pair.server.get()) == "h2");
  }
}

TEST_CASE("a client limited to TLS 1.1 is refused", "[serve][tls]") {
  const serve::tls_context context(self_signed_settings(), http1, master_of(1));
  client_config config;
  config.min_version = config.max_version = TLS1_1_VERSION;
  config.tls12_suites = "DEFAULT:@SECLEVEL=0";  // OpenSSL 3 itself refuses TLS 1.1 above level 0
  const auto client = make_client(config);
  tls_pair pair = connect(context.current().get(), client.get());
  CHECK_FALSE(handshake(pair));
  CHECK(pair.server_reason == SSL_R_UNSUPPORTED_PROTOCOL);
}

TEST_CASE("TLS 1.2 takes ECDHE with AEAD suites only, for ECDSA and RSA certificates",
          "[serve][tls]") {
  const temp_folder folder;
  const serve::tls_context ecdsa(self_signed_settings(), http1, master_of(1));
  const serve::tls_context rsa(pair_settings(make_pair(folder, "rsa", "rsa:2048")), http1,
                               master_of(1));
  struct offer {
    const serve::tls_context& server;
    const char* suite;
    bool accepted;
  };
  const offer offers[] = {
      {ecdsa, "ECDHE-ECDSA-AES128-GCM-SHA256", true},
      {ecdsa, "ECDHE-ECDSA-AES256-GCM-SHA384", true},
      {ecdsa, "ECDHE-ECDSA-CHACHA20-POLY1305", true},
      {ecdsa, "ECDHE-ECDSA-AES128-SHA256", false},  // no AEAD
      {ecdsa, "ECDHE-ECDSA-AES256-SHA", false},
      {rsa, "ECDHE-RSA-AES128-GCM-SHA256", true},
      {rsa, "ECDHE-RSA-CHACHA20-POLY1305", true},
      {rsa, "ECDHE-RSA-AES128-SHA256", false},
      {rsa, "AES128-SHA256", false},  // no ECDHE
      {rsa, "AES128-GCM-SHA256", false},
      {rsa, "DHE-RSA-AES128-GCM-SHA256", false},
  };
  for (const offer& o : offers) {
    INFO(o.suite);
    client_config config;
    config.max_version = TLS1_2_VERSION;
    config.tls12_suites = std::string(o.suite) + ":@SECLEVEL=0";
    const auto client = make_client(config);
    tls_pair pair = connect(o.server.current().get(), client.get());
    if (o.accepted) {
      REQUIRE(handshake(pair));
      CHECK(SSL_version(pair.server.get()) == TLS1_2_VERSION);
      CHECK(std::string(SSL_CIPHER_get_name(SSL_get_current_cipher(pair.server.get()))) == o.suite);
    } else {
      CHECK_FALSE(handshake(pair));
      CHECK(pair.server_reason == SSL_R_NO_SHARED_CIPHER);
    }
  }
}

TEST_CASE("key exchange takes X25519, P-256 or P-384", "[serve][tls]") {
  const serve::tls_context context(self_signed_settings(), http1, master_of(1));
  client_config config;
  for (const char* group : {"X25519", "P-256", "P-384"}) {
    INFO(group);
    config.groups = group;
    const auto client = make_client(config);
    tls_pair pair = connect(context.current().get(), client.get());
    CHECK(handshake(pair));
  }
  config.groups = "P-521:X448";
  const auto client = make_client(config);
  tls_pair pair = connect(context.current().get(), client.get());
  CHECK_FALSE(handshake(pair));
  CHECK(pair.server_reason != 0);
}

TEST_CASE(
    "the context refuses renegotiation and compression, keeps no session cache and holds "
    "no buffers for idle connections",
    "[serve][tls]") {
  const serve::tls_context context(self_signed_settings(), http1, master_of(1));
  SSL_CTX* ssl_context = context.current().get();
  const auto options = SSL_CTX_get_options(ssl_context);
  CHECK((options & SSL_OP_NO_RENEGOTIATION) != 0);
  CHECK((options & SSL_OP_NO_COMPRESSION) != 0);
  CHECK((options & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0);
  CHECK((options & SSL_OP_NO_TICKET) == 0);
  CHECK((SSL_CTX_get_mode(ssl_context) & SSL_MODE_RELEASE_BUFFERS) != 0);
  CHECK(SSL_CTX_get_session_cache_mode(ssl_context) == SSL_SESS_CACHE_OFF);
  CHECK(SSL_CTX_get_min_proto_version(ssl_context) == TLS1_2_VERSION);
  CHECK(SSL_CTX_get_max_proto_version(ssl_context) == TLS1_3_VERSION);
  CHECK(SSL_CTX_get_timeout(ssl_context) <= 2 * 3600);
  CHECK(SSL_CTX_get_num_tickets(ssl_context) >= 1);
}

TEST_CASE("a session ticket resumes on another context with the same master, not with another",
          "[serve][tls]") {
  const temp_folder folder;
  const pem_pair pair = make_pair(folder, "site");
  const serve::tls_context first(pair_settings(pair), http1, master_of(1));
  const serve::tls_context same_master(pair_settings(pair), http1, master_of(1));
  const serve::tls_context other_master(pair_settings(pair), http1, master_of(2));
  client_config config;
  config.max_version = GENERATE(TLS1_2_VERSION, TLS1_3_VERSION);
  INFO("version " << config.max_version);
  const auto client = make_client(config);

  const session_ptr session = full_handshake(first.current().get(), client.get());
  CHECK(resumes(first.current().get(), client.get(), session.get()));
  CHECK(resumes(same_master.current().get(), client.get(), session.get()));
  CHECK_FALSE(resumes(other_master.current().get(), client.get(), session.get()));
}

TEST_CASE(
    "ticket keys are one per hour of a master, the previous hour's still accepted and "
    "renewed",
    "[serve][tls]") {
  const serve::ticket_keys keys(master_of(1));
  const serve::ticket_keys same(master_of(1));
  const serve::ticket_keys other(master_of(2));
  const std::int64_t hour = serve::ticket_keys::hour_now();
  const auto now = keys.for_hour(hour);
  const auto next = keys.for_hour(hour + 1);
  REQUIRE(now);
  REQUIRE(next);
  const auto same_now = same.for_hour(hour);
  REQUIRE(same_now);
  CHECK(same_now->name == now->name);
  CHECK(same_now->aes == now->aes);
  CHECK(same_now->hmac == now->hmac);
  CHECK(next->name != now->name);
  CHECK(next->aes != now->aes);
  CHECK(other.for_hour(hour)->name != now->name);
  CHECK(now->aes != now->hmac);

  const auto current = keys.find(now->name, hour);
  REQUIRE(current);
  CHECK_FALSE(current->renew);
  CHECK(current->found.aes == now->aes);
  const auto previous = keys.find(now->name, hour + 1);
  REQUIRE(previous);
  CHECK(previous->renew);
  CHECK(previous->found.hmac == now->hmac);
  CHECK_FALSE(keys.find(now->name, hour + 2));    // too old
  CHECK_FALSE(keys.find(next->name, hour));       // not yet
  CHECK_FALSE(other.find(now->name, hour));       // another server's
  CHECK(keys.for_hour(hour)->name == now->name);  // after the cache moved on
}

TEST_CASE("a ticket resumes in its hour and the next, where it is renewed, and not later",
          "[serve][tls]") {
  const temp_folder folder;
  test_hour = 500'000;
  const auto keys = std::make_shared<const serve::ticket_keys>(master_of(3), &test_clock);
  const serve::tls_context context(pair_settings(make_pair(folder, "site")), http1, keys);
  SSL_CTX* server = context.current().get();
  client_config config;
  config.max_version = GENERATE(TLS1_2_VERSION, TLS1_3_VERSION);
  INFO("version " << config.max_version);
  const auto client = make_client(config);
  const session_ptr issued = full_handshake(server, client.get());

  const resumption same_hour = resume(server, client.get(), issued.get());
  CHECK(same_hour.reused);
  // TLS 1.2 sends a new ticket only to renew one (TLS 1.3 always does).
  if (config.max_version == TLS1_2_VERSION) {
    CHECK(ticket_of(same_hour.session.get()) == ticket_of(issued.get()));
  }
  test_hour = 500'001;
  const resumption next_hour = resume(server, client.get(), issued.get());
  CHECK(next_hour.reused);
  CHECK(ticket_of(next_hour.session.get()) != ticket_of(issued.get()));
  test_hour = 500'002;
  CHECK_FALSE(resumes(server, client.get(), issued.get()));
  CHECK(resumes(server, client.get(), next_hour.session.get()));  // the renewed one
}

TEST_CASE(
    "reload keeps the certificate when the new files are broken and switches to a good new "
    "pair, while earlier connections keep theirs",
    "[serve][tls]") {
  const temp_folder folder;
  const pem_pair one = make_pair(folder, "one");
  const pem_pair two = make_pair(folder, "two");
  const pem_pair live{folder.write("live.crt", read_file(one.certificate)),
                      folder.write("live.key", read_file(one.key))};
  serve::tls_context context(pair_settings(live), http1, master_of(1));
  const std::string first = file_fingerprint(one.certificate);
  REQUIRE(context.fingerprint() == first);
  const auto client = make_client();
  tls_pair before = connect(context.current().get(), client.get());
  const session_ptr session = full_handshake(context.current().get(), client.get());
  const std::weak_ptr<SSL_CTX> old_context = context.current();

  folder.write("live.key", read_file(two.key));  // the certificate is still one's
  CHECK_THROWS_MATCHES(
      context.reload(), std::runtime_error,
      Catch::Message("TLS private key '" + live.key.string() + "' does not match certificate '" +
                     live.certificate.string() + "'"));
  CHECK(context.fingerprint() == first);
  fs::remove(live.certificate);
  CHECK_THROWS_MATCHES(context.reload(), std::runtime_error,
                       Catch::Message("cannot load TLS certificate '" + live.certificate.string() +
                                      "': No such file or directory"));
  CHECK(context.fingerprint() == first);
  CHECK(context.current() == old_context.lock());

  folder.write("live.crt", read_file(two.certificate));
  REQUIRE_NOTHROW(context.reload());
  CHECK(context.fingerprint() == file_fingerprint(two.certificate));
  CHECK(old_context.expired());  // only the earlier connection holds it, through OpenSSL
  tls_pair after = connect(context.current().get(), client.get());
  REQUIRE(handshake(after));
  CHECK(peer_fingerprint(after.client.get()) == file_fingerprint(two.certificate));

  REQUIRE(handshake(before));
  CHECK(peer_fingerprint(before.client.get()) == first);
  CHECK(resumes(context.current().get(), client.get(), session.get()));  // same ticket keys
}

TEST_CASE("reload of a self-signed certificate keeps it", "[serve][tls]") {
  serve::tls_context context(self_signed_settings(), http1, master_of(1));
  const std::string before = context.fingerprint();
  REQUIRE_NOTHROW(context.reload());
  CHECK(context.fingerprint() == before);
}

TEST_CASE("current() gives a usable context while another thread reloads", "[serve][tls]") {
  const temp_folder folder;
  const pem_pair pair = make_pair(folder, "site");
  serve::tls_context context(pair_settings(pair), http1, master_of(1));
  std::atomic<bool> reloading{true};
  std::thread reloader([&] {
    for (int i = 0; i < 20; ++i) context.reload();
    reloading = false;
  });
  std::size_t taken = 0;
  bool all_usable = true;
  while (reloading || taken < 100) {
    const ssl_ptr ssl(SSL_new(context.current().get()), SSL_free);
    all_usable = all_usable && ssl != nullptr && SSL_get_certificate(ssl.get()) != nullptr;
    ++taken;
  }
  reloader.join();
  CHECK(all_usable);
}

TEST_CASE("make_tls_context builds a context only for a TLS listener", "[serve][tls]") {
  serve::tls_settings settings = self_signed_settings();
  const auto context = serve::make_tls_context(settings, http1);
  REQUIRE(context != nullptr);
  CHECK(context->is_self_signed());
  settings.bind_tls.clear();
  settings.self_signed = false;
  CHECK(serve::make_tls_context(settings, http1) == nullptr);
}

namespace {

serve::certificate_files pair_files(const pem_pair& pair) {
  return {{}, pair.certificate.string(), pair.key.string()};
}

// Certificates for a.test, *.b.test (as a bundle) and x.b.test, given in that order.
struct named_certificates {
  temp_folder folder;
  pem_pair a = make_named_pair(folder, "a", "a.test", "DNS:a.test");
  pem_pair b = make_named_pair(folder, "b", "b.test", "DNS:*.b.test");
  pem_pair x = make_named_pair(folder, "x", "x.test", "DNS:x.b.test");
  fs::path b_bundle = folder.write("b.pem", read_file(b.certificate) + read_file(b.key));

  [[nodiscard]] serve::tls_settings settings() const {
    serve::tls_settings settings;
    settings.bind_tls = "127.0.0.1:0";
    settings.certificates = {pair_files(a), {b_bundle.string(), {}, {}}, pair_files(x)};
    return settings;
  }
};

std::vector<std::string> fingerprints(const serve::tls_context& context) {
  std::vector<std::string> prints;
  for (const auto& info : context.certificates()) prints.push_back(info.fingerprint);
  return prints;
}

}  // namespace

TEST_CASE(
    "a certificate's names are its subjectAltName DNS names and addresses in lower case, its CN "
    "only without DNS names",
    "[serve][tls]") {
  const temp_folder folder;
  const auto both = make_named_pair(folder, "both", "ignored.test",
                                    "DNS:A.Test,DNS:*.B.test,IP:192.0.2.1,IP:2001:DB8::1");
  const auto cn_only = make_named_pair(folder, "cn", "Only.Test", "");
  const auto cn_and_address = make_named_pair(folder, "address", "cn.test", "IP:127.0.0.1");
  serve::tls_settings settings = pair_settings(both);
  settings.certificates.push_back(pair_files(cn_only));
  settings.certificates.push_back(pair_files(cn_and_address));
  const serve::tls_context context(settings, http1, master_of(1));

  const auto described = context.certificates();
  REQUIRE(described.size() == 3);
  CHECK(described[0].source == both.certificate.string());
  CHECK(described[0].names ==
        std::vector<std::string>{"a.test", "*.b.test", "192.0.2.1", "2001:db8::1"});
  CHECK(described[0].fingerprint == file_fingerprint(both.certificate));
  CHECK(described[1].names == std::vector<std::string>{"only.test"});
  CHECK(described[1].fingerprint == file_fingerprint(cn_only.certificate));
  CHECK(described[2].names == std::vector<std::string>{"cn.test", "127.0.0.1"});
  CHECK(context.fingerprint() == file_fingerprint(both.certificate));  // the first: the default

  const serve::tls_context self_signed(self_signed_settings(), http1, master_of(1));
  const auto made = self_signed.certificates();
  REQUIRE(made.size() == 1);
  CHECK(made[0].source == "self-signed");
  CHECK(made[0].names == std::vector<std::string>{"localhost", "127.0.0.1", "::1"});
  CHECK(made[0].fingerprint == self_signed.fingerprint());
}

TEST_CASE(
    "SNI picks the certificate whose names cover the name asked for, its own name first, without "
    "SNI or a match the first",
    "[serve][tls]") {
  const named_certificates files;
  const serve::tls_context context(files.settings(), {"h2", "http/1.1"}, master_of(1));
  client_config config;
  config.alpn = std::string("\x08http/1.1\x02h2", 12);
  const auto client = make_client(config);
  struct expectation {
    const char* asked;  // null: no SNI
    const pem_pair& gets;
    std::size_t index;
  };
  const expectation expectations[] = {
      {"a.test", files.a, 0},     {"y.b.test", files.b, 1}, {"Y.B.Test", files.b, 1},
      {"x.b.test", files.x, 2},   {"b.test", files.a, 0},   {"a.x.b.test", files.a, 0},
      {"other.test", files.a, 0}, {nullptr, files.a, 0},
  };
  for (const auto& e : expectations) {
    INFO("SNI " << (e.asked != nullptr ? e.asked : "(none)"));
    tls_pair pair = connect(context.current().get(), client.get(), nullptr, e.asked);
    REQUIRE(handshake(pair));
    CHECK(peer_fingerprint(pair.client.get()) == file_fingerprint(e.gets.certificate));
    const serve::served_certificate* served = serve::served_certificate_of(pair.server.get());
    REQUIRE(served != nullptr);
    CHECK(served->index == e.index);
    CHECK(served->table->size() == 3);
    CHECK(chosen_alpn(pair.server.get()) == "h2");  // every context is configured alike
    CHECK(SSL_version(pair.server.get()) == TLS1_3_VERSION);
  }
}

TEST_CASE(
    "a session of a connection that got another certificate than the default resumes, on this "
    "context and on another with the same master",
    "[serve][tls]") {
  const named_certificates files;
  const serve::tls_context context(files.settings(), http1, master_of(1));
  const serve::tls_context other_process(files.settings(), http1, master_of(1));
  client_config config;
  config.max_version = GENERATE(TLS1_2_VERSION, TLS1_3_VERSION);
  INFO("version " << config.max_version);
  const auto client = make_client(config);

  tls_pair first = connect(context.current().get(), client.get(), nullptr, "x.b.test");
  REQUIRE(handshake(first));
  REQUIRE(serve::served_certificate_of(first.server.get())->index == 2);
  const session_ptr session(SSL_get1_session(first.client.get()), SSL_SESSION_free);
  REQUIRE(session != nullptr);
  close(first);
  for (const serve::tls_context* server : {&context, &other_process}) {
    tls_pair again = connect(server->current().get(), client.get(), session.get(), "x.b.test");
    REQUIRE(handshake(again));
    CHECK(SSL_session_reused(again.server.get()) == 1);
    CHECK(serve::served_certificate_of(again.server.get())->index == 2);
    close(again);
  }
}

TEST_CASE(
    "several certificates load and reload all or nothing, a key that is not its certificate's "
    "named",
    "[serve][tls]") {
  const named_certificates files;
  const auto& folder = files.folder;
  const auto quoted = [](const fs::path& path) { return "'" + path.string() + "'"; };

  serve::tls_settings mismatched = files.settings();
  mismatched.certificates[2].private_pem = files.a.key.string();
  CHECK_THROWS_MATCHES(
      serve::tls_context(mismatched, http1, master_of(1)), std::runtime_error,
      Catch::Message("TLS private key " + quoted(files.a.key) + " does not match certificate " +
                     quoted(files.x.certificate)));

  const pem_pair live_a{folder.write("live-a.crt", read_file(files.a.certificate)),
                        folder.write("live-a.key", read_file(files.a.key))};
  const pem_pair live_b{folder.write("live-b.crt", read_file(files.b.certificate)),
                        folder.write("live-b.key", read_file(files.b.key))};
  serve::tls_settings settings = pair_settings(live_a);
  settings.certificates.push_back(pair_files(live_b));
  serve::tls_context context(settings, http1, master_of(1));
  const std::vector<std::string> before = {file_fingerprint(files.a.certificate),
                                           file_fingerprint(files.b.certificate)};
  REQUIRE(fingerprints(context) == before);

  // The first renewed, the second broken: neither changes.
  folder.write("live-a.crt", read_file(files.x.certificate));
  folder.write("live-a.key", read_file(files.x.key));
  folder.write("live-b.key", read_file(files.a.key));
  CHECK_THROWS_MATCHES(context.reload(), std::runtime_error,
                       Catch::Message("TLS private key " + quoted(live_b.key) +
                                      " does not match certificate " + quoted(live_b.certificate)));
  CHECK(fingerprints(context) == before);

  folder.write("live-b.key", read_file(files.b.key));
  REQUIRE_NOTHROW(context.reload());
  CHECK(fingerprints(context) == std::vector<std::string>{file_fingerprint(files.x.certificate),
                                                          file_fingerprint(files.b.certificate)});
}
