// End-to-end tests of `kawipiko serve`'s life: start-up with several threads and processes,
// refusals at start (usage errors exit 2, a bad archive exits 1, one line each), and the end on
// SIGTERM or SIGINT: the answer in flight finishes, idle connections close, a client that does
// not read is given --shutdown-grace, and the exit code is 0. (The process supervisor's own
// cases are in serve_operations_test.cpp.)

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

using kawipiko::test::client;
using kawipiko::test::count_lines;
using kawipiko::test::http_response;
using kawipiko::test::request;
using kawipiko::test::run;
using kawipiko::test::serve_args;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::site;
using kawipiko::test::temp_folder;
using namespace std::chrono_literals;

namespace {

const std::string binary = KAWIPIKO_BINARY;

// Sends 50 requests over separate connections; the number answered with 200.
std::size_t serve_fifty(const server_process& server) {
  std::size_t ok = 0;
  for (int i = 0; i < 50; ++i) {
    client c(server.port());
    ok += c.request(request(i % 2 ? "/hello.txt" : "/data.bin")).status == 200 ? 1u : 0u;
  }
  return ok;
}

}  // namespace

TEST_CASE("SIGTERM and SIGINT with an idle keep-alive connection exit 0", "[e2e][serve][net]") {
  site s;
  for (const int signal : {SIGTERM, SIGINT}) {
    INFO(signal);
    server_process server(binary, serve_args(s.archive));
    client c(server.port());
    CHECK(c.request(request("/hello.txt")).status == 200);
    CHECK(server.stop(signal) == 0);  // -1 if it had to be killed after 10 s
    CHECK(c.closed_within(2s));
    CHECK(c.buffered().empty());
  }
}

TEST_CASE("SIGTERM lets the answer in flight finish, ends the connection and exits 0",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += request("/");
  c.send(batch);
  CHECK(c.read_response().body == s.page);  // the server is busy with this connection now
  REQUIRE(::kill(server.pid(), SIGTERM) == 0);
  std::size_t answered = 1;
  http_response last;
  while (true) {
    last = c.read_response();  // throws on a cut answer
    CHECK(last.body == s.page);
    ++answered;
    if (last.has("Connection") || answered == 1000) break;
  }
  CHECK(answered < 1000);
  CHECK(last.field("Connection") == "close");
  CHECK(c.closed_within(10s));
  CHECK(c.buffered().empty());
  CHECK(server.wait_exit(10s) == std::optional<int>(0));
}

TEST_CASE("SIGTERM with a client that does not read exits 0 after --shutdown-grace",
          "[e2e][serve][net][slow]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--shutdown-grace", "1"}));
  client c(server.port());
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += request("/");
  c.send(batch);
  CHECK(c.read_response().body == s.page);
  // The write timeout (30 s) is far; the grace alone must end the wait.
  CHECK(server.stop(SIGTERM, 8s) == 0);
}

TEST_CASE("several threads serve and exit 0 on SIGTERM", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--threads", "2"}));
  CHECK(server.startup_line().find(" with 1 process x 2 threads on ") != std::string::npos);
  CHECK(serve_fifty(server) == 50);
  CHECK(server.stop() == 0);
  CHECK(server.errors().empty());
}

TEST_CASE("several processes serve and exit 0 on SIGTERM", "[e2e][serve][net]") {
  site s;
  for (const auto& extra : {std::vector<std::string>{"--processes", "2"},
                            std::vector<std::string>{"--processes", "2", "--threads", "2"}}) {
    INFO(extra.size());
    server_process server(binary, serve_args(s.archive, extra));
    CHECK(server.startup_line().find(" with 2 processes x ") != std::string::npos);
    CHECK(serve_fifty(server) == 50);
    CHECK(server.stop() == 0);
    CHECK(server.errors().empty());
  }
}

// The supervisor prints the start-up line only once every worker process listens.
TEST_CASE("with several processes the start-up line means the port accepts connections",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--processes", "2"}));
  client c(server.port());  // would throw "connect failed: Connection refused" if not listening
  CHECK(c.request(request("/hello.txt")).status == 200);
  CHECK(server.stop() == 0);
}

TEST_CASE("a file that is not a kawipiko archive is refused with one line and exit 1",
          "[e2e][serve][errors]") {
  temp_folder scratch;
  const auto junk = scratch.write("junk.cdb", "this is not a cdb file at all");
  const auto foreign = scratch / "foreign.cdb";
  REQUIRE(
      run("{ printf '+1,1:a->b\\n\\n' | cdb -c " + shell_quoted(foreign) + "; }", scratch.path())
          .exit_code == 0);
  for (const auto& file : {junk, foreign, scratch / "missing.cdb"}) {
    INFO(file);
    const auto result =
        run(binary + " serve --bind 127.0.0.1:0 --archive " + shell_quoted(file), scratch.path());
    CHECK(result.exit_code == 1);
    CHECK(count_lines(result.err, "") == 1);
    CHECK(result.err.rfind("kawipiko serve: error: ", 0) == 0);
    CHECK(result.err.find(file.filename().string()) != std::string::npos);
    CHECK(result.out.empty());
  }
  const auto result =
      run(binary + " serve --bind 127.0.0.1:0 --archive " + shell_quoted(foreign), scratch.path());
  CHECK(result.err.find("not a kawipiko archive") != std::string::npos);
}

TEST_CASE("serve usage errors exit 2 with a hint", "[e2e][serve][errors]") {
  temp_folder scratch;
  for (const std::string args :
       {"serve", "serve --no-such-flag", "serve --archive", "serve --archive x.cdb --threads 0",
        "serve --archive x.cdb --processes nope", "serve --archive x.cdb --bind nowhere",
        "serve --archive x.cdb --bind 127.0.0.1:99999", "serve --archive x.cdb --header-limit 10",
        "serve --archive x.cdb --idle-timeout 0", "serve --archive x.cdb --max-connections 0",
        "serve --archive x.cdb --archive-mmap --archive-inmem"}) {
    INFO(args);
    const auto result = run(binary + " " + args, scratch.path());
    CHECK(result.exit_code == 2);
    CHECK(result.err.rfind("kawipiko serve: error: ", 0) == 0);
    CHECK(result.err.find("Try 'kawipiko serve --help'.") != std::string::npos);
    CHECK(count_lines(result.err, "") == 2);
  }
  const auto help = run(binary + " serve --help", scratch.path());
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--max-requests-per-connection") != std::string::npos);
}
