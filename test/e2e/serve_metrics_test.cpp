// End-to-end tests of --metrics-bind: a real scrape after known traffic, checked by Debian's
// promtool (package prometheus: missing, the test fails) and against the traffic sent, with one
// process and with several; reloads and TLS handshakes counted; /healthz, and /readyz while
// serving and while draining; the start errors of the flag.

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>
#include <thread>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"
#include "support/tls_client.hpp"

using kawipiko::test::client;
using kawipiko::test::request;
using kawipiko::test::run;
using kawipiko::test::serve_args;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::site;
using kawipiko::test::temp_folder;
using kawipiko::test::tls_client;
using namespace std::chrono_literals;

namespace {

const std::string binary = KAWIPIKO_BINARY;

// The port of "… (metrics on 127.0.0.1:<port>)" in the start-up line, 0 if none.
unsigned short metrics_port(const server_process& server) {
  const auto& line = server.startup_line();
  if (line.find(" (metrics on ") == std::string::npos) return 0;
  return static_cast<unsigned short>(std::stoul(line.substr(line.rfind(':') + 1)));
}

kawipiko::test::http_response get(unsigned short port, std::string_view path) {
  client c(port);
  return c.request("GET " + std::string(path) + " HTTP/1.1\r\nHost: m\r\n\r\n");
}

std::string scrape(unsigned short port) {
  const auto got = get(port, "/metrics");
  REQUIRE(got.status == 200);
  return got.body;
}

// The sum of the samples of `name` whose labels hold every one of `labels` (`code="4xx"`…).
std::uint64_t sum(const std::string& text, std::string_view name,
                  std::initializer_list<std::string_view> labels = {}) {
  std::uint64_t total = 0;
  for (std::size_t at = 0; at < text.size();) {
    const auto end = text.find('\n', at);
    const auto line = std::string_view(text).substr(at, end - at);
    at = end == std::string::npos ? text.size() : end + 1;
    if (!line.starts_with(name) ||
        (line.size() > name.size() && line[name.size()] != '{' && line[name.size()] != ' ')) {
      continue;
    }
    bool wanted = true;
    for (const auto label : labels) wanted = wanted && line.find(label) != std::string_view::npos;
    if (wanted) total += std::stoull(std::string(line.substr(line.rfind(' ') + 1)));
  }
  return total;
}

// promtool's verdict on `text` (its exit code 0 and nothing said), as a message when it is not.
std::string promtool_problems(const std::string& text) {
  temp_folder scratch;
  const auto file = scratch.write("metrics.txt", text);
  const auto checked = run("promtool check metrics < " + shell_quoted(file), scratch.path());
  if (checked.exit_code == 127) return "promtool is missing: install Debian's prometheus";
  if (checked.exit_code != 0 || !checked.out.empty() || !checked.err.empty()) {
    return "promtool: exit " + std::to_string(checked.exit_code) + ": " + checked.out + checked.err;
  }
  return {};
}

// Waits (bounded) until `path` on the metrics port answers `status`.
bool answers_within(unsigned short port, std::string_view path, unsigned status,
                    std::chrono::milliseconds bound = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (get(port, path).status == status) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

bool logs_within(const server_process& server, const std::string& text) {
  for (int i = 0; i < 250; ++i) {
    if (server.errors().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

TEST_CASE("a scrape after traffic passes promtool and counts the requests sent",
          "[e2e][serve][net][metrics]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--metrics-bind", "127.0.0.1:0"}));
  const auto port = metrics_port(server);
  REQUIRE(port != 0);
  {
    client c(server.port());
    for (int i = 0; i < 4; ++i) CHECK(c.request(request("/hello.txt")).status == 200);
    for (int i = 0; i < 2; ++i) CHECK(c.request(request("/missing")).status == 404);
  }
  {
    client c(server.port());
    CHECK(c.request(request("/", "Accept-Encoding: gzip\r\n")).status == 200);
  }
  const auto text = scrape(port);
  CHECK(promtool_problems(text).empty());
  INFO(text);
  CHECK(sum(text, "kawipiko_requests_total") == 7);
  CHECK(sum(text, "kawipiko_requests_total", {"code=\"4xx\""}) == 2);
  CHECK(sum(text, "kawipiko_requests_total",
            {"code=\"2xx\"", "host=\"_default\"", "protocol=\"HTTP/1.1\"", "method=\"GET\""}) == 5);
  CHECK(sum(text, "kawipiko_requests_total", {"encoding=\"gzip\""}) == 1);
  CHECK(sum(text, "kawipiko_connections_accepted_total", {"transport=\"tcp\""}) == 2);
  CHECK(sum(text, "kawipiko_response_body_bytes_total") > 4 * 5);
  const auto build = server.startup_line().substr(server.startup_line().find("build ") + 6, 16);
  CHECK(sum(text, "kawipiko_archive_info", {"build=\"" + build + "\""}) == 1);
  CHECK(sum(text, "kawipiko_archive_generation") == 1);
  CHECK(sum(text, "kawipiko_access_log_dropped_lines_total") == 0);
}

TEST_CASE("with several processes one scrape sums them all", "[e2e][serve][net][metrics]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--processes", "2", "--threads", "2",
                                                       "--metrics-bind", "127.0.0.1:0"}));
  const auto port = metrics_port(server);
  REQUIRE(port != 0);
  CHECK(get(port, "/readyz").status == 200);
  for (int i = 0; i < 30; ++i) {
    client c(server.port());
    CHECK(c.request(request(i % 3 == 0 ? "/missing" : "/hello.txt")).status ==
          (i % 3 == 0 ? 404u : 200u));
  }
  const auto text = scrape(port);
  CHECK(promtool_problems(text).empty());
  CHECK(sum(text, "kawipiko_requests_total") == 30);
  CHECK(sum(text, "kawipiko_requests_total", {"code=\"4xx\""}) == 10);
  CHECK(sum(text, "kawipiko_connections_accepted_total") == 30);
  CHECK(sum(text, "kawipiko_archive_info") == 1);  // both processes serve the same build
  CHECK(sum(text, "kawipiko_archive_generation") == 1);
}

TEST_CASE("reloads done and refused are counted per archive with the live generation",
          "[e2e][serve][net][metrics]") {
  site s;
  server_process server(
      binary, serve_args(s.archive, {"--watch-disable", "--metrics-bind", "127.0.0.1:0"}));
  const auto port = metrics_port(server);
  REQUIRE(port != 0);
  const std::string archive = "archive=\"" + s.archive.string() + "\"";
  ::kill(server.pid(), SIGHUP);
  REQUIRE(logs_within(server, "reloaded: generation 2"));
  auto text = scrape(port);
  CHECK(sum(text, "kawipiko_archive_reloads_total", {archive, "result=\"done\""}) == 1);
  CHECK(sum(text, "kawipiko_archive_generation", {archive}) == 2);
  s.folder.write("garbage.cdb", "not an archive");
  std::filesystem::rename(s.folder.path() / "garbage.cdb", s.archive);
  ::kill(server.pid(), SIGHUP);
  REQUIRE(logs_within(server, "generation 2 goes on being served"));
  text = scrape(port);
  CHECK(sum(text, "kawipiko_archive_reloads_total", {archive, "result=\"refused\""}) == 1);
  CHECK(sum(text, "kawipiko_archive_generation", {archive}) == 2);
  CHECK(promtool_problems(text).empty());
}

TEST_CASE("TLS handshakes and refused handshakes are counted", "[e2e][serve][net][metrics][tls]") {
  site s;
  server_process server(binary,
                        serve_args(s.archive, {"--bind-tls", "127.0.0.1:0", "--tls-self-signed",
                                               "--metrics-bind", "127.0.0.1:0"}));
  const auto port = metrics_port(server);
  REQUIRE(port != 0);
  {
    tls_client c(server.tls_port());
    CHECK(c.request(request("/hello.txt")).status == 200);
  }
  {
    client plain(server.tls_port());  // plain HTTP on the TLS port: no ClientHello
    plain.send(request("/hello.txt"));
    CHECK(plain.closed_within());
  }
  const auto text = scrape(port);
  CHECK(sum(text, "kawipiko_tls_handshakes_total") == 1);
  CHECK(sum(text, "kawipiko_tls_handshake_failures_total") == 1);
  CHECK(sum(text, "kawipiko_connections_accepted_total", {"transport=\"tls\""}) == 2);
  CHECK(sum(text, "kawipiko_requests_total") == 1);
}

TEST_CASE("/readyz is 200 while serving and 503 while draining, /healthz stays 200",
          "[e2e][serve][net][metrics][slow]") {
  site s;
  server_process server(
      binary, serve_args(s.archive, {"--metrics-bind", "127.0.0.1:0", "--shutdown-grace", "5"}));
  const auto port = metrics_port(server);
  REQUIRE(port != 0);
  CHECK(get(port, "/readyz").status == 200);
  const auto health = get(port, "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  CHECK(get(port, "/nothing").status == 404);
  // A client that does not read keeps the server draining for the grace.
  client slow(server.port());
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += request("/");
  slow.send(batch);
  CHECK(slow.read_response().status == 200);
  ::kill(server.pid(), SIGTERM);
  CHECK(answers_within(port, "/readyz", 503));
  CHECK(get(port, "/readyz").body == "draining\n");
  CHECK(get(port, "/healthz").status == 200);
  CHECK(server.wait_exit(10s) == 0);
}

TEST_CASE("a metrics address that does not parse, or is the serving one, is a usage error",
          "[e2e][serve][errors]") {
  site s;
  temp_folder scratch;
  for (const std::string& args :
       {std::string("--metrics-bind nowhere"), std::string("--bind 127.0.0.1:18481 --metrics-bind "
                                                           "127.0.0.1:18481")}) {
    INFO(args);
    const auto result =
        run(binary + " serve --archive " + shell_quoted(s.archive) + " " + args, scratch.path());
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("--metrics-bind") != std::string::npos);
  }
}
