// End-to-end tests of several TLS certificates chosen by SNI: the real `kawipiko serve` with
// --host sites, a pair for a.test and a bundle for *.b.test, on 127.0.0.1 and ephemeral ports;
// `openssl s_client` for the certificate each name gets and for resumption, curl for the answers
// (421 for a name that another certificate covers, over HTTP/1.1 and HTTP/2), SIGHUP for the
// reload of every certificate, and the command line's refusals.

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "support/certificates.hpp"
#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"
#include "support/tls_client.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kawipiko::test::child_process;
using kawipiko::test::count_lines;
using kawipiko::test::file_fingerprint;
using kawipiko::test::handshake_line;
using kawipiko::test::make_named_pair;
using kawipiko::test::named_site;
using kawipiko::test::pem_pair;
using kawipiko::test::read_file;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::temp_folder;
using kawipiko::test::transcript;
using kawipiko::test::wait_for_lines;

namespace {

const std::string binary = KAWIPIKO_BINARY;

std::vector<std::string> plus(std::vector<std::string> flags,
                              const std::vector<std::string>& more) {
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

// The sites, the certificates (a pair for a.test, a bundle for *.b.test) and the flags that
// serve them on both listeners.
struct sni_sites {
  named_site fallback{"default site"}, a_site{"a site"}, b_site{"b site"};
  temp_folder folder;
  pem_pair a = make_named_pair(folder, "a", "a.test", "DNS:a.test");
  pem_pair b = make_named_pair(folder, "b", "b.test", "DNS:*.b.test");
  fs::path b_bundle = folder.write("b.pem", read_file(b.certificate) + read_file(b.key));

  [[nodiscard]] std::vector<std::string> pair_flags(const pem_pair& pair) const {
    return {"--tls-public", pair.certificate.string(), "--tls-private", pair.key.string()};
  }
  [[nodiscard]] std::vector<std::string> bundle_flags() const {
    return {"--tls-bundle", b_bundle.string()};
  }

  // `serve` of the three sites with the certificate flags `certificates`, then `extra`.
  [[nodiscard]] std::vector<std::string> args(const std::vector<std::string>& certificates,
                                              const std::vector<std::string>& extra = {}) const {
    const auto sites =
        kawipiko::test::serve_args(fallback.archive, {"--bind-tls", "127.0.0.1:0", "--host",
                                                      "a.test=" + a_site.archive.string(), "--host",
                                                      "*.b.test=" + b_site.archive.string()});
    return plus(plus(sites, certificates), extra);
  }

  // a.test's pair first (the default), then the bundle.
  [[nodiscard]] std::vector<std::string> a_first() const {
    return args(plus(pair_flags(a), bundle_flags()));
  }
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The subject and subjectAltName of the certificate `openssl s_client` gets from `port` when it
// asks for `name` (none: no SNI), as `openssl x509 -subject -ext subjectAltName` prints them.
std::string presented(unsigned short port, const std::optional<std::string>& name,
                      const temp_folder& folder) {
  const std::string sni = name ? "-servername " + *name : "-noservername";
  const auto result = kawipiko::test::run(
      "(timeout 30 openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " " + sni +
          " </dev/null 2>/dev/null | openssl x509 -noout -subject -ext subjectAltName)",
      folder.path());
  INFO(transcript(result));
  CHECK(result.exit_code == 0);
  return result.out;
}

const std::string a_presented =
    "subject=CN = a.test\nX509v3 Subject Alternative Name: \n"
    "    DNS:a.test\n";
const std::string b_presented =
    "subject=CN = b.test\nX509v3 Subject Alternative Name: \n"
    "    DNS:*.b.test\n";

// curl to https://`name`:port/ (resolved to 127.0.0.1, trusting `ca`) with `flags`: the body,
// then " <status> <HTTP version>".
std::string curl_tls(const server_process& server, const std::string& name, const fs::path& ca,
                     const std::string& flags, const temp_folder& folder) {
  const auto port = std::to_string(server.tls_port());
  const auto result = kawipiko::test::curl(
      "--cacert " + shell_quoted(ca) + " --resolve " + name + ":" + port + ":127.0.0.1 " + flags +
          " -w ' %{http_code} %{http_version}' https://" + name + ":" + port + "/",
      folder);
  INFO(transcript(result));
  CHECK(result.exit_code == 0);
  return result.out;
}

}  // namespace

TEST_CASE(
    "SNI gets the certificate whose names cover the name asked for, without SNI, or for a name "
    "none covers, the first given",
    "[e2e][serve][tls][net]") {
  const sni_sites s;
  {
    server_process server(binary, s.a_first());
    const auto port = server.tls_port();
    CHECK(presented(port, "a.test", s.folder) == a_presented);
    CHECK(presented(port, "x.b.test", s.folder) == b_presented);
    CHECK(presented(port, "X.B.TEST", s.folder) == b_presented);
    CHECK(presented(port, "a.x.b.test", s.folder) == a_presented);  // a wildcard is one label
    CHECK(presented(port, "other.test", s.folder) == a_presented);
    CHECK(presented(port, std::nullopt, s.folder) == a_presented);

    // One line per certificate after the start-up line: its file, names and fingerprint.
    const auto first = server.read_line(5s);
    const auto second = server.read_line(5s);
    REQUIRE(first);
    REQUIRE(second);
    CHECK(*first == "kawipiko serve: TLS certificate '" + s.a.certificate.string() +
                        "' for a.test (the default); SHA-256 fingerprint " +
                        file_fingerprint(s.a.certificate));
    CHECK(*second == "kawipiko serve: TLS certificate '" + s.b_bundle.string() +
                         "' for *.b.test; SHA-256 fingerprint " +
                         file_fingerprint(s.b.certificate));
    CHECK(server.stop() == 0);
  }
  {
    // The command line's order decides which is first, whichever flag comes first.
    server_process server(binary, s.args(plus(s.bundle_flags(), s.pair_flags(s.a))));
    CHECK(presented(server.tls_port(), std::nullopt, s.folder) == b_presented);
    CHECK(presented(server.tls_port(), "a.test", s.folder) == a_presented);
    CHECK(server.stop() == 0);
  }
}

TEST_CASE(
    "a host that the connection's certificate does not cover but another does gets 421 over "
    "HTTP/1.1 and HTTP/2, a host none covers gets the default site",
    "[e2e][serve][tls][net]") {
  const sni_sites s;
  server_process server(binary, s.a_first());
  const auto& scratch = s.folder;
  CHECK(curl_tls(server, "a.test", s.a.certificate, "", scratch) == "a site 200 2");
  CHECK(curl_tls(server, "a.test", s.a.certificate, "--http1.1", scratch) == "a site 200 1.1");
  CHECK(curl_tls(server, "x.b.test", s.b.certificate, "", scratch) == "b site 200 2");
  for (const std::string version : {"--http1.1", "--http2"}) {
    INFO(version);
    const std::string expected_version = version == "--http2" ? "2" : "1.1";
    // curl sends the Host field as HTTP/2's :authority.
    CHECK(curl_tls(server, "a.test", s.a.certificate, version + " -H 'Host: x.b.test'", scratch) ==
          "421 Misdirected Request\n 421 " + expected_version);
    CHECK(curl_tls(server, "x.b.test", s.b.certificate, version + " -H 'Host: A.Test:443'",
                   scratch) == "421 Misdirected Request\n 421 " + expected_version);
    CHECK(curl_tls(server, "a.test", s.a.certificate, version + " -H 'Host: other.test'",
                   scratch) == "default site 200 " + expected_version);
    CHECK(curl_tls(server, "x.b.test", s.b.certificate, version + " -H 'Host: y.b.test'",
                   scratch) == "b site 200 " + expected_version);
  }
  CHECK(server.stop() == 0);
}

TEST_CASE("a session resumes with SNI, for the default certificate and another, TLS 1.3 and 1.2",
          "[e2e][serve][tls][net]") {
  const sni_sites s;
  server_process server(binary, s.a_first());
  const auto port = std::to_string(server.tls_port());
  for (const std::string name : {"a.test", "x.b.test"}) {
    for (const std::string version : {"-tls1_3", "-tls1_2"}) {
      INFO(name << " " << version);
      // With a request on stdin, the tickets (sent before the answer) are in the file once
      // s_client has read the answer and the server closed.
      const auto request = s.folder.write(
          "request.txt", "GET / HTTP/1.1\r\nHost: " + name + "\r\nConnection: close\r\n\r\n");
      const auto session = s.folder / ("session-" + name + version + ".pem");
      const auto s_client = [&](const std::string& how) {
        return kawipiko::test::run("(timeout 30 openssl s_client -connect 127.0.0.1:" + port +
                                       " -servername " + name + " " + version + " " + how +
                                       " -ign_eof <" + shell_quoted(request) + ")",
                                   s.folder.path());
      };
      const auto first = s_client("-sess_out " + shell_quoted(session));
      INFO(transcript(first));
      REQUIRE(first.exit_code == 0);
      CHECK(handshake_line(first.out).rfind("New, ", 0) == 0);
      const auto again = s_client("-sess_in " + shell_quoted(session));
      INFO(transcript(again));
      REQUIRE(again.exit_code == 0);
      CHECK(handshake_line(again.out).rfind("Reused, ", 0) == 0);
      CHECK(contains(again.out, "\nHTTP/1.1 200 OK\r\n"));
      CHECK(contains(again.out, name == "a.test" ? "a site" : "b site"));
    }
  }
  CHECK(server.stop() == 0);
}

TEST_CASE(
    "SIGHUP reloads every certificate with a line each, one that does not load keeps them all",
    "[e2e][serve][tls][net]") {
  const sni_sites s;
  const pem_pair renewed =
      make_named_pair(s.folder, "renewed", "a.test", "DNS:a.test,DNS:www.a.test");
  const pem_pair live{s.folder.write("live.crt", read_file(s.a.certificate)),
                      s.folder.write("live.key", read_file(s.a.key))};
  server_process server(binary, s.args(plus(s.pair_flags(live), s.bundle_flags())));
  const auto port = server.tls_port();

  s.folder.write("live.crt", read_file(renewed.certificate));
  s.folder.write("live.key", read_file(renewed.key));
  REQUIRE(::kill(server.pid(), SIGHUP) == 0);
  const std::string reloaded = "kawipiko serve: TLS certificate reloaded (SHA-256 ";
  REQUIRE(wait_for_lines(server, reloaded, 2));
  CHECK(contains(server.errors(), reloaded + file_fingerprint(renewed.certificate) + "): '" +
                                      live.certificate.string() + "' for a.test, www.a.test\n"));
  CHECK(contains(server.errors(), reloaded + file_fingerprint(s.b.certificate) + "): '" +
                                      s.b_bundle.string() + "' for *.b.test\n"));
  CHECK(contains(presented(port, "www.a.test", s.folder), "DNS:a.test, DNS:www.a.test"));

  // The bundle broken: neither changes, and the line names the file.
  s.folder.write("b.pem", read_file(s.b.certificate) + read_file(s.a.key));
  s.folder.write("live.crt", read_file(s.a.certificate));
  s.folder.write("live.key", read_file(s.a.key));
  REQUIRE(::kill(server.pid(), SIGHUP) == 0);
  REQUIRE(wait_for_lines(server, "kawipiko serve: warning: ", 1));
  CHECK(contains(server.errors(), "kawipiko serve: warning: TLS private key in '" +
                                      s.b_bundle.string() +
                                      "' does not match its certificate; keeping the current "
                                      "certificates\n"));
  CHECK(count_lines(server.errors(), reloaded) == 2);
  CHECK(contains(presented(port, "www.a.test", s.folder), "DNS:a.test, DNS:www.a.test"));
  CHECK(presented(port, "x.b.test", s.folder) == b_presented);
  CHECK(server.stop() == 0);
}

TEST_CASE(
    "unequal --tls-public and --tls-private counts are a usage error naming the flags, a key "
    "that is not its certificate's stops the server naming the file",
    "[e2e][serve][tls]") {
  const sni_sites s;
  {
    child_process server(
        binary, s.args(plus(s.pair_flags(s.a), {"--tls-public", s.b.certificate.string()})));
    CHECK(server.wait_exit(10s) == 2);
    const auto errors = server.errors();
    INFO(errors);
    CHECK(contains(errors,
                   "kawipiko serve: error: --tls-public and --tls-private go in pairs, the n-th "
                   "with the n-th: 2 --tls-public, 1 --tls-private\n"));
    CHECK(contains(errors, "Try 'kawipiko serve --help'."));
  }
  {
    // The n-th public goes with the n-th private: b's certificate with a's key here.
    const std::vector<std::string> flags = {
        "--tls-public",  s.a.certificate.string(), "--tls-public",  s.b.certificate.string(),
        "--tls-private", s.a.key.string(),         "--tls-private", s.a.key.string()};
    child_process server(binary, s.args(flags));
    CHECK(server.wait_exit(10s) == 1);
    const auto errors = server.errors();
    INFO(errors);
    CHECK(errors == "kawipiko serve: error: TLS private key '" + s.a.key.string() +
                        "' does not match certificate '" + s.b.certificate.string() + "'\n");
    CHECK(!server.read_line(100ms));  // no start-up line
  }
  {
    child_process server(binary, s.args(s.pair_flags(s.a), {"--tls-self-signed"}));
    CHECK(server.wait_exit(10s) == 2);
    CHECK(contains(server.errors(),
                   "--tls-self-signed excludes --tls-bundle and --tls-public with --tls-private"));
  }
}
