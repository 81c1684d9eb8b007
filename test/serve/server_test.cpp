#include "serve/server.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>

#include "base/error.hpp"

namespace serve = kawipiko::serve;
using kawipiko::base::invalid_option;

namespace {

serve::options valid_options() {
  serve::options opts;
  opts.archive = "site.cdb";
  return opts;
}

}  // namespace

TEST_CASE("bind addresses parse as <ip>:<port>, IPv6 in brackets", "[serve]") {
  CHECK(serve::parse_bind("127.0.0.1:8080").port() == 8080);
  CHECK(serve::parse_bind("0.0.0.0:0").port() == 0);
  const auto v6 = serve::parse_bind("[::1]:443");
  CHECK(v6.address().is_v6());
  CHECK(v6.port() == 443);
  for (const std::string text : {"nowhere", "127.0.0.1", ":80", "127.0.0.1:", "127.0.0.1:99999",
                                 "127.0.0.1:8o", "[::1:80", "localhost:80"}) {
    INFO(text);
    CHECK_THROWS_MATCHES(serve::parse_bind(text), invalid_option,
                         Catch::Message("invalid --bind '" + text + "' (expected <ip>:<port>)"));
  }
}

TEST_CASE("the default options with an archive are valid", "[serve]") {
  CHECK_NOTHROW(serve::validate(valid_options()));
}

TEST_CASE("options out of range are refused with a message naming the flag", "[serve]") {
  auto opts = valid_options();
  SECTION("no archive") {
    opts.archive.clear();
    CHECK_THROWS_MATCHES(serve::validate(opts), invalid_option,
                         Catch::Message("--archive or --host is required"));
  }
  SECTION("a profile with several processes") {
    opts.profile_mem = "heap";
    opts.processes = 2;
    CHECK_THROWS_MATCHES(serve::validate(opts), invalid_option,
                         Catch::Message("--profile-cpu and --profile-mem need --processes 1"));
  }
  SECTION("threads") {
    for (const unsigned threads : {0u, 1025u}) {
      opts.threads = threads;
      CHECK_THROWS_MATCHES(serve::validate(opts), invalid_option,
                           Catch::Message("--threads must be 1 to 1024"));
    }
    opts.threads = 1024;
    CHECK_NOTHROW(serve::validate(opts));
  }
  SECTION("processes") {
    for (const unsigned processes : {0u, 1025u}) {
      opts.processes = processes;
      CHECK_THROWS_MATCHES(serve::validate(opts), invalid_option,
                           Catch::Message("--processes must be 1 to 1024"));
    }
  }
  SECTION("header limit") {
    for (const std::size_t bytes : {std::size_t{255}, std::size_t{61441}}) {
      opts.limits.header_bytes = bytes;
      CHECK_THROWS_MATCHES(serve::validate(opts), invalid_option,
                           Catch::Message("--header-limit must be 256 to 61440"));
    }
    opts.limits.header_bytes = 256;
    CHECK_NOTHROW(serve::validate(opts));
  }
  SECTION("timeouts: more than 0, at most a day") {
    using std::chrono::milliseconds;
    for (const milliseconds bad : {milliseconds(0), milliseconds(-1), milliseconds(86'400'001)}) {
      opts.limits.write_timeout = bad;
      CHECK_THROWS_MATCHES(
          serve::validate(opts), invalid_option,
          Catch::Message("--write-timeout must be more than 0 and at most 86400 seconds"));
    }
    opts.limits.write_timeout = milliseconds(1);
    opts.limits.shutdown_grace = milliseconds(86'400'000);
    CHECK_NOTHROW(serve::validate(opts));
    opts.limits.shutdown_grace = milliseconds(0);
    CHECK_THROWS_WITH(serve::validate(opts), Catch::StartsWith("--shutdown-grace must be"));
  }
  SECTION("bind") {
    opts.bind = "nowhere";
    CHECK_THROWS_AS(serve::validate(opts), invalid_option);
  }
}

TEST_CASE("run refuses invalid options before opening anything", "[serve]") {
  auto opts = valid_options();
  opts.archive = "/nonexistent/kawipiko-server-test.cdb";
  opts.threads = 0;
  CHECK_THROWS_AS(serve::run(opts), invalid_option);
  CHECK_THROWS_AS(serve::run(opts), std::invalid_argument);  // what callers outside app/ catch
}

namespace {

serve::options tls_options() {
  auto opts = valid_options();
  opts.tls.bind_tls = "127.0.0.1:8443";
  opts.tls.self_signed = true;
  return opts;
}

void refuses(const serve::options& opts, const std::string& message) {
  CHECK_THROWS_MATCHES(serve::validate(opts), invalid_option, Catch::Message(message));
}

}  // namespace

TEST_CASE("a TLS listener with one certificate source is valid, besides --bind or alone",
          "[serve]") {
  auto opts = tls_options();
  CHECK_NOTHROW(serve::validate(opts));
  opts.bind.clear();  // TLS only
  CHECK_NOTHROW(serve::validate(opts));
  opts.tls.self_signed = false;
  opts.tls.certificates = {{"site.pem", {}, {}}};
  CHECK_NOTHROW(serve::validate(opts));
  opts.tls.certificates = {{{}, "site.crt", "site.key"}};
  opts.tls.hsts = true;
  CHECK_NOTHROW(serve::validate(opts));
  opts.bind = "127.0.0.1:8080";
  opts.tls.https_redirect = true;
  CHECK_NOTHROW(serve::validate(opts));
  opts.bind = "127.0.0.1:0";
  opts.tls.bind_tls = "127.0.0.1:0";  // two ephemeral ports
  CHECK_NOTHROW(serve::validate(opts));
}

TEST_CASE("TLS flags without --bind-tls are refused, naming the flag", "[serve]") {
  using setter = void (*)(serve::tls_settings&);
  const std::pair<setter, std::string> flags[] = {
      {[](serve::tls_settings& t) {
         t.certificates = {{"site.pem", {}, {}}};
       },
       "--tls-bundle needs --bind-tls"},
      {[](serve::tls_settings& t) {
         t.certificates = {{{}, "site.crt", {}}};
       },
       "--tls-public needs --bind-tls"},
      {[](serve::tls_settings& t) {
         t.certificates = {{{}, {}, "site.key"}};
       },
       "--tls-private needs --bind-tls"},
      {[](serve::tls_settings& t) { t.self_signed = true; }, "--tls-self-signed needs --bind-tls"},
      {[](serve::tls_settings& t) { t.hsts = true; }, "--security-headers-tls needs --bind-tls"},
      {[](serve::tls_settings& t) { t.https_redirect = true; },
       "--https-redirect needs --bind-tls"},
  };
  for (const auto& [set, message] : flags) {
    INFO(message);
    auto opts = valid_options();
    set(opts.tls);
    refuses(opts, message);
  }
}

TEST_CASE(
    "a TLS listener needs certificate files, each a bundle or a pair, or the self-signed one "
    "alone",
    "[serve]") {
  auto opts = tls_options();
  opts.tls.self_signed = false;
  refuses(opts,
          "--bind-tls needs a certificate: --tls-bundle, --tls-public with --tls-private, or "
          "--tls-self-signed");
  opts.tls.certificates = {{{}, "site.crt", {}}};
  refuses(opts, "--tls-public needs --tls-private");
  opts.tls.certificates = {{{}, {}, "site.key"}};
  refuses(opts, "--tls-private needs --tls-public");
  opts.tls.certificates = {{{}, "site.crt", "site.key"}};
  CHECK_NOTHROW(serve::validate(opts));
  opts.tls.certificates = {{"site.pem", "site.crt", "site.key"}};
  refuses(opts, "a TLS certificate is either --tls-bundle or --tls-public with --tls-private");

  // Several, bundles and pairs mixed; one pair short of its key is refused all the same.
  opts.tls.certificates = {{"a.pem", {}, {}}, {{}, "b.crt", "b.key"}, {"c.pem", {}, {}}};
  CHECK_NOTHROW(serve::validate(opts));
  opts.tls.certificates.push_back({{}, "d.crt", {}});
  refuses(opts, "--tls-public needs --tls-private");

  const std::string exclusive =
      "--tls-self-signed excludes --tls-bundle and --tls-public with --tls-private";
  opts.tls.self_signed = true;
  opts.tls.certificates = {{"site.pem", {}, {}}};
  refuses(opts, exclusive);
  opts.tls.certificates = {{{}, "site.crt", "site.key"}};
  refuses(opts, exclusive);
  opts.tls.certificates.clear();
  CHECK_NOTHROW(serve::validate(opts));
}

TEST_CASE(
    "listeners: at least one, each a valid address, two different ones, and both for "
    "--https-redirect",
    "[serve]") {
  auto opts = tls_options();
  SECTION("none") {
    opts = valid_options();
    opts.bind.clear();
    refuses(opts, "--bind or --bind-tls is required");
  }
  SECTION("an invalid --bind-tls") {
    opts.tls.bind_tls = "nowhere:443";
    refuses(opts, "invalid --bind-tls 'nowhere:443' (expected <ip>:<port>)");
  }
  SECTION("one address for both") {
    opts.tls.bind_tls = opts.bind;
    refuses(opts, "--bind and --bind-tls must be different addresses");
  }
  SECTION("--https-redirect without the plain listener") {
    opts.tls.https_redirect = true;
    CHECK_NOTHROW(serve::validate(opts));
    opts.bind.clear();
    refuses(opts, "--https-redirect needs --bind");
  }
}

TEST_CASE("passed sockets are the listeners: an https one needs a certificate, not --bind-tls",
          "[serve]") {
  auto opts = valid_options();
  opts.passed = {{3, false}, {4, true}};
  refuses(opts,
          "a passed 'https' socket needs a certificate: --tls-bundle, --tls-public with "
          "--tls-private, or --tls-self-signed");
  opts.tls.certificates = {{"site.pem", {}, {}}};
  CHECK_NOTHROW(serve::validate(opts));
  opts.tls.https_redirect = true;
  CHECK_NOTHROW(serve::validate(opts));
  opts.bind.clear();  // nothing to bind: the passed sockets are enough
  CHECK_NOTHROW(serve::validate(opts));
}

TEST_CASE("with passed sockets, TLS needs a passed https socket and a redirect an http one",
          "[serve]") {
  auto opts = valid_options();
  opts.passed = {{3, false}};
  opts.tls.certificates = {{"site.pem", {}, {}}};
  refuses(opts, "--tls-bundle needs a passed 'https' socket");
  opts.tls.certificates.clear();
  opts.tls.bind_tls = "127.0.0.1:8443";
  refuses(opts,
          "--bind-tls: socket activation passed no 'https' socket (the passed sockets take the "
          "place of --bind and --bind-tls)");
  opts.passed = {{4, true}};
  opts.tls.certificates = {{"site.pem", {}, {}}};
  opts.tls.https_redirect = true;
  refuses(opts, "--https-redirect needs a passed 'http' socket");
  opts.tls.https_redirect = false;
  CHECK_NOTHROW(serve::validate(opts));
  opts.tls.bind_tls = "nowhere";  // still a flag of the command line, checked as such
  refuses(opts, "invalid --bind-tls 'nowhere' (expected <ip>:<port>)");
}
