#pragma once
// Test support for TLS: certificates and keys made by the `openssl` command-line tool in a temp
// folder (self-signed, or a leaf signed by a CA of its own), read back with OpenSSL, and their
// SHA-256 fingerprints in the form servers and `openssl x509 -fingerprint` print.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "support/temp_folder.hpp"

namespace kawipiko::test {

using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

// Runs `openssl <arguments>` in `folder`. Throws std::runtime_error with its stderr if it fails.
inline void openssl(const std::string& arguments, const temp_folder& folder) {
  const auto result = run("openssl " + arguments, folder.path());
  if (result.exit_code != 0) {
    throw std::runtime_error("openssl " + arguments + " failed: " + result.err);
  }
}

struct pem_pair {
  fs::path certificate;
  fs::path key;
};

inline constexpr const char* p256_key = "ec -pkeyopt ec_paramgen_curve:P-256";
inline constexpr const char* rsa_key = "rsa:2048";

// The names every test certificate is for, so that clients that check them (curl) accept it.
inline constexpr const char* localhost_names = "-addext subjectAltName=DNS:localhost,IP:127.0.0.1";

// A self-signed ECDSA P-256 certificate whose subject is `common_name` and whose subjectAltName
// is `alt_names` ("DNS:a.test,IP:192.0.2.1"; empty: none), and its key, in two files:
// <name>.crt and <name>.key.
inline pem_pair make_named_pair(const temp_folder& folder, const std::string& name,
                                const std::string& common_name, const std::string& alt_names,
                                const std::string& key = p256_key) {
  pem_pair pair{folder / (name + ".crt"), folder / (name + ".key")};
  const std::string extension =
      alt_names.empty() ? "" : " -addext " + shell_quoted("subjectAltName=" + alt_names);
  openssl("req -x509 -newkey " + key + " -nodes -days 2 -subj " +
              shell_quoted("/CN=" + common_name) + extension + " -keyout " +
              shell_quoted(pair.key) + " -out " + shell_quoted(pair.certificate),
          folder);
  return pair;
}

// A self-signed certificate for localhost and its key (ECDSA P-256 unless told), in two files:
// <name>.crt and <name>.key.
inline pem_pair make_pair(const temp_folder& folder, const std::string& name,
                          const std::string& key = p256_key) {
  return make_named_pair(folder, name, "localhost", "DNS:localhost,IP:127.0.0.1", key);
}

// A leaf certificate for localhost signed by a CA of its own: the leaf's pair and the CA's
// certificate.
struct chained_pair {
  pem_pair leaf;
  fs::path ca;
};

inline chained_pair make_chained_pair(const temp_folder& folder) {
  const pem_pair ca{folder / "ca.crt", folder / "ca.key"};
  // A subject of its own: a CA named like its leaf would make the leaf look self-signed.
  openssl("req -x509 -newkey " + std::string(p256_key) +
              " -nodes -days 2 -subj '/CN=kawipiko test CA' -keyout " + shell_quoted(ca.key) +
              " -out " + shell_quoted(ca.certificate),
          folder);
  chained_pair out{{folder / "leaf.crt", folder / "leaf.key"}, ca.certificate};
  const auto request = folder / "leaf.csr";
  openssl("req -new -newkey " + std::string(p256_key) + " -nodes -subj /CN=localhost " +
              localhost_names + " -keyout " + shell_quoted(out.leaf.key) + " -out " +
              shell_quoted(request),
          folder);
  openssl("x509 -req -days 2 -set_serial 2 -copy_extensions copy -in " + shell_quoted(request) +
              " -CA " + shell_quoted(ca.certificate) + " -CAkey " + shell_quoted(ca.key) +
              " -out " + shell_quoted(out.leaf.certificate),
          folder);
  return out;
}

// SHA-256 of the certificate's DER, as "AA:BB:…". Throws std::runtime_error if OpenSSL fails.
inline std::string der_sha256(const X509* cert) {
  unsigned char* der = nullptr;
  const int size = i2d_X509(cert, &der);
  if (size <= 0) throw std::runtime_error("cannot encode a certificate");
  unsigned char digest[32];
  unsigned int digest_size = 0;
  const int digested =
      EVP_Digest(der, static_cast<std::size_t>(size), digest, &digest_size, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  if (digested != 1) throw std::runtime_error("cannot digest a certificate");
  std::string text;
  for (unsigned int i = 0; i < digest_size; ++i) {
    char pair[4];
    std::snprintf(pair, sizeof pair, i == 0 ? "%02X" : ":%02X", digest[i]);
    text += pair;
  }
  return text;
}

// The first certificate of a PEM file. Throws std::runtime_error if there is none.
inline x509_ptr read_certificate(const fs::path& file) {
  const std::string pem = read_file(file);
  const std::unique_ptr<BIO, decltype(&BIO_free)> in(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  x509_ptr cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr), X509_free);
  if (cert == nullptr) throw std::runtime_error("no certificate in " + file.string());
  return cert;
}

inline std::string file_fingerprint(const fs::path& file) {
  return der_sha256(read_certificate(file).get());
}

}  // namespace kawipiko::test
