// End-to-end tests of HTTP/2 against hostile clients: each case of test/e2e/h2_probe.py (a
// crafted client on Debian's python3-hyperframe and python3-hpack, one subcommand per attack)
// against the real `kawipiko serve`, over h2c and over TLS, while an HTTP/1.1 client and an h2
// client are served throughout. The probe judges the server's answer by RFC 9113 and exits 0
// when it is what the RFC requires; the test asserts that, the probe's own account of what
// happened (printed with the failure), and that the other clients never saw a failure.

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

using namespace std::chrono_literals;
using kawipiko::test::archive_sources;
using kawipiko::test::client;
using kawipiko::test::command_result;
using kawipiko::test::random_bytes;
using kawipiko::test::request;
using kawipiko::test::serve_args;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;
// Debian's python, which python3-h2 and its parts are installed for.
const std::string python = "/usr/bin/python3";
const std::string probe = std::string(KAWIPIKO_TEST_SOURCE_DIR) + "/e2e/h2_probe.py";

// A site with a page large enough to need several windows (zero-window) and a small one.
struct hostile_site {
  temp_folder folder;
  std::string large = random_bytes(300'000, 5);
  std::filesystem::path archive;

  hostile_site() {
    folder.write("src/index.html", "home");
    folder.write("src/large.bin", large);
    archive = archive_sources(binary, folder);
  }
};

// An HTTP/1.1 keep-alive client asking for "/" until told to stop; counts its answers and
// failures (any status other than 200, a timeout, a closed connection).
class bystander {
 public:
  explicit bystander(unsigned short port)
      : thread_([this, port] {
          try {
            client c(port);
            do {  // at least once, however short the attack
              if (c.request(request("/")).status == 200) {
                ++served_;
              } else {
                ++failed_;
              }
              std::this_thread::sleep_for(20ms);
            } while (!stop_);
          } catch (const std::exception&) {
            ++failed_;
          }
        }) {}
  ~bystander() { (void)finish(); }
  bystander(const bystander&) = delete;
  bystander& operator=(const bystander&) = delete;

  // Stops and returns {served, failed}.
  std::pair<int, int> finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return {served_.load(), failed_.load()};
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> served_{0}, failed_{0};
  std::thread thread_;
};

command_result run_probe(const std::string& which, unsigned short port, bool tls,
                         const std::string& path, const temp_folder& scratch) {
  std::string command = "timeout 120 " + python + " " + shell_quoted(probe) + " " + which +
                        " --host 127.0.0.1 --port " + std::to_string(port) + " --path " + path;
  if (tls) command += " --tls";
  return kawipiko::test::run(command, scratch.path());
}

}  // namespace

TEST_CASE("every hostile HTTP/2 client gets the error RFC 9113 names while others are served",
          "[e2e][serve][http2][net][hostile][slow]") {
  const hostile_site s;
  server_process server(binary,
                        serve_args(s.archive, {"--bind-tls", "127.0.0.1:0", "--tls-self-signed"}));
  const std::vector<std::string> cases = {
      "rapid-reset",    "continuation-flood",  "hpack-bomb",       "settings-flood",
      "ping-flood",     "zero-window",         "too-many-streams", "bad-pseudo",
      "uppercase-name", "connection-specific", "get-with-body",
  };
  for (const bool tls : {false, true}) {
    for (const auto& which : cases) {
      DYNAMIC_SECTION(which << (tls ? " over TLS" : " over h2c")) {
        bystander plain(server.port());
        const auto got = run_probe(which, tls ? server.tls_port() : server.port(), tls,
                                   which == "zero-window" ? "/large.bin" : "/", s.folder);
        INFO("probe: " << got.out << got.err);
        CHECK(got.exit_code == 0);
        CHECK(got.out.find("\"pass\": true") != std::string::npos);
        const auto [served, failed] = plain.finish();
        CHECK(failed == 0);
        CHECK(served > 0);
      }
    }
  }
  CHECK(server.stop() == 0);
}
