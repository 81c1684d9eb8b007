// End-to-end tests of --access-log: a line per answered request, malformed ones included, over
// HTTP/1.1, TLS and HTTP/2, in the combined format (fields checked with a regular expression of
// the format) and as JSON (every line parsed with python's json module); a hostile target and
// user agent stay one line that parses; SIGUSR1 after a rename sends new lines to a new file,
// with one process and with several; a log nobody reads (a FIFO) never keeps a request from
// being answered, and its dropped lines show in /metrics; a path that cannot be opened is a
// one-line start error.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"
#include "support/tls_client.hpp"

namespace fs = std::filesystem;
using kawipiko::test::children_of;
using kawipiko::test::client;
using kawipiko::test::count_lines;
using kawipiko::test::read_file;
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

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < text.size();) {
    const auto end = text.find('\n', at);
    if (end == std::string::npos) break;  // a line still being written
    lines.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return lines;
}

// The lines of `path` once it has at least `count` (lines are written within about a second of
// their answer), waiting at most 10 s.
std::vector<std::string> wait_lines(const fs::path& path, std::size_t count) {
  std::vector<std::string> lines;
  for (int i = 0; i < 500; ++i) {
    lines = lines_of(fs::exists(path) ? read_file(path) : "");
    if (lines.size() >= count) break;
    std::this_thread::sleep_for(20ms);
  }
  return lines;
}

// The combined format: client - - [time] "request" status bytes "referer" "user agent", where a
// quoted field holds no quote (they are escaped).
const std::regex combined(
    R"re(^(\S+) - - \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$)re");

struct combined_line {
  std::string client, time, request, status, bytes, referer, agent;
};

combined_line parse_combined(const std::string& line) {
  std::smatch m;
  INFO(line);
  REQUIRE(std::regex_match(line, m, combined));
  return {m[1], m[2], m[3], m[4], m[5], m[6], m[7]};
}

// The log's JSON lines, one "protocol status method 'target' client generation 'user agent'" a
// line (the strings as python's ascii() writes them), by python's json module (which refuses
// anything that is not JSON); the exit code 0 only if every line parsed.
kawipiko::test::command_result json_fields(const fs::path& log, const temp_folder& scratch) {
  const auto script = scratch.write("fields.py", R"py(
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    assert set(e) == {"time", "client", "host", "method", "target", "protocol", "status", "bytes",
                      "encoding", "duration_us", "generation", "referer", "user_agent"}, e
    print(e["protocol"], e["status"], e["method"], ascii(e["target"]), e["client"],
          e["generation"], ascii(e["user_agent"]))
)py");
  return run("python3 " + shell_quoted(script) + " " + shell_quoted(log), scratch.path());
}

// Whether process `pid` has `file` open.
bool holds(pid_t pid, const fs::path& file) {
  std::error_code error;
  for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", error)) {
    if (fs::read_symlink(fd.path(), error) == file) return true;
  }
  return false;
}

// A server with the log at `log` and `extra` flags.
server_process logging_server(const site& s, const fs::path& log,
                              std::vector<std::string> extra = {}) {
  extra.insert(extra.begin(), {"--access-log", log.string()});
  return server_process(binary, serve_args(s.archive, extra));
}

}  // namespace

TEST_CASE("answered requests are logged in the combined format, malformed ones included",
          "[e2e][serve][net][log]") {
  site s;
  const auto log = s.folder.path() / "access.log";
  server_process server = logging_server(s, log);
  std::string etag;
  {
    client c(server.port());
    const auto first =
        c.request(request("/hello.txt", "Referer: http://a.example/\r\nUser-Agent: probe/1\r\n"));
    CHECK(first.status == 200);
    etag = first.field("ETag").value_or("");
    CHECK(c.request(request("/hello.txt", "If-None-Match: " + etag + "\r\n")).status == 304);
    CHECK(c.request(request("/missing")).status == 404);
  }
  {
    client c(server.port());
    CHECK(c.request("GET / HTTP/1.1\r\n\r\n").status == 400);  // no Host
  }
  {
    client c(server.port());
    const std::string big(20'000, 'a');
    CHECK(c.request(request("/", "X-Big: " + big + "\r\n")).status == 431);
  }
  const auto lines = wait_lines(log, 5);
  REQUIRE(lines.size() == 5);
  const auto ok = parse_combined(lines[0]);
  CHECK(ok.client == "127.0.0.1");
  CHECK(ok.request == "GET /hello.txt HTTP/1.1");
  CHECK(ok.status == "200");
  CHECK(ok.bytes == "5");
  CHECK(ok.referer == "http://a.example/");
  CHECK(ok.agent == "probe/1");
  const auto not_modified = parse_combined(lines[1]);
  CHECK(not_modified.status == "304");
  CHECK(not_modified.bytes == "0");
  CHECK(not_modified.agent == "-");
  CHECK(parse_combined(lines[2]).status == "404");
  CHECK(parse_combined(lines[2]).request == "GET /missing HTTP/1.1");
  for (const auto& [line, status] : {std::pair{lines[3], "400"}, std::pair{lines[4], "431"}}) {
    const auto refused = parse_combined(line);
    CHECK(refused.status == status);
    CHECK(refused.request == "-");
    CHECK(refused.client == "127.0.0.1");
  }
}

TEST_CASE("the lines not yet written when the server stops are written before it exits",
          "[e2e][serve][net][log]") {
  site s;
  for (const std::string processes : {"1", "2"}) {
    INFO(processes);
    const auto log = s.folder.path() / ("stopped-" + processes + ".log");
    server_process server = logging_server(s, log, {"--processes", processes});
    for (int i = 0; i < 3; ++i) {
      client c(server.port());
      CHECK(c.request(request("/hello.txt")).status == 200);
    }
    CHECK(server.stop() == 0);
    CHECK(lines_of(read_file(log)).size() == 3);
  }
}

TEST_CASE("TLS and HTTP/2 answers are logged as JSON with their protocol",
          "[e2e][serve][net][log][tls]") {
  site s;
  temp_folder scratch;
  const auto log = s.folder.path() / "access.json";
  server_process server = logging_server(
      s, log, {"--access-log-format", "json", "--bind-tls", "127.0.0.1:0", "--tls-self-signed"});
  {
    tls_client c(server.tls_port());
    CHECK(c.request(request("/hello.txt", "User-Agent: over-tls\r\n")).status == 200);
  }
  const auto tls = std::to_string(server.tls_port());
  const auto plain = std::to_string(server.port());
  CHECK(run("curl -sS -k --http2 -A h2-tls -o /dev/null https://127.0.0.1:" + tls + "/missing",
            scratch.path())
            .exit_code == 0);
  CHECK(run("curl -sS --http2-prior-knowledge -A h2c -o /dev/null http://127.0.0.1:" + plain +
                "/hello.txt",
            scratch.path())
            .exit_code == 0);
  {
    client c(server.port());
    CHECK(c.request("GET / HTTP/1.0\r\n\r\n").status == 200);
  }
  REQUIRE(wait_lines(log, 4).size() == 4);
  const auto fields = json_fields(log, scratch);
  INFO(fields.err);
  REQUIRE(fields.exit_code == 0);
  CHECK(fields.out ==
        "HTTP/1.1 200 GET '/hello.txt' 127.0.0.1 1 'over-tls'\n"
        "HTTP/2.0 404 GET '/missing' 127.0.0.1 1 'h2-tls'\n"
        "HTTP/2.0 200 GET '/hello.txt' 127.0.0.1 1 'h2c'\n"
        "HTTP/1.0 200 GET '/' 127.0.0.1 1 '-'\n");
}

TEST_CASE("a hostile target and user agent stay one line that parses, in both formats",
          "[e2e][serve][net][log]") {
  site s;
  temp_folder scratch;
  // Quotes, a backslash, bytes from 0x80 (UTF-8 and not), a tab, a forged line's start: as far
  // as the parser lets them through (the handler refuses such a target: 400).
  const std::string target = "/x\"y\\z\xc3\xa9\xff?q=\"]";
  const std::string agent =
      "a\" \"b\\ \xe2\x80\xa8 \xc0\xaf\t 127.0.0.1 - - [01/Jan/2000:00:00:00 +0000] \"GET";
  for (const std::string format : {"combined", "json"}) {
    INFO(format);
    const auto log = s.folder.path() / ("hostile." + format);
    server_process server = logging_server(s, log, {"--access-log-format", format});
    for (const auto& [path, status] :
         {std::pair{target, 400u}, std::pair{std::string("/hello.txt"), 200u}}) {
      client c(server.port());
      CHECK(c.request("GET " + std::string(path) +
                      " HTTP/1.1\r\nHost: a\"b\r\nUser-Agent: " + agent + "\r\nReferer: \"\r\n\r\n")
                .status == status);
    }
    const auto lines = wait_lines(log, 2);
    REQUIRE(lines.size() == 2);
    if (format == "combined") {
      const auto hostile = parse_combined(lines[0]);
      CHECK(hostile.request == R"(GET /x\x22y\x5Cz\xC3\xA9\xFF?q=\x22] HTTP/1.1)");
      CHECK(hostile.agent ==
            R"(a\x22 \x22b\x5C \xE2\x80\xA8 \xC0\xAF\x09 127.0.0.1 - - [01/Jan/2000:00:00:00 )"
            R"(+0000] \x22GET)");
      CHECK(hostile.referer == R"(\x22)");
      CHECK(parse_combined(lines[1]).request == "GET /hello.txt HTTP/1.1");
    } else {
      const auto fields = json_fields(log, scratch);
      INFO(fields.err);
      REQUIRE(fields.exit_code == 0);
      const std::string quoted_agent =
          R"('a" "b\\ \u2028 \xc0\xaf\t 127.0.0.1 - - [01/Jan/2000:00:00:00 +0000] "GET')";
      CHECK(fields.out == R"(HTTP/1.1 400 GET '/x"y\\z\xe9\xff?q="]' 127.0.0.1 None )" +
                              quoted_agent + "\n" + "HTTP/1.1 200 GET '/hello.txt' 127.0.0.1 1 " +
                              quoted_agent + "\n");
    }
  }
}

TEST_CASE("SIGUSR1 after a rename sends the next lines to a new file, in every process",
          "[e2e][serve][net][log]") {
  site s;
  for (const std::string processes : {"1", "2"}) {
    INFO(processes);
    const auto log = s.folder.path() / ("rotated-" + processes + ".log");
    const auto old = fs::path(log.string() + ".1");
    server_process server = logging_server(s, log, {"--processes", processes});
    {
      client c(server.port());
      CHECK(c.request(request("/hello.txt")).status == 200);
    }
    REQUIRE(wait_lines(log, 1).size() == 1);
    fs::rename(log, old);
    ::kill(server.pid(), SIGUSR1);
    // Reopened once no process of the server holds the old file any more.
    bool reopened = false;
    for (int i = 0; i < 500 && !reopened; ++i) {
      std::this_thread::sleep_for(20ms);
      reopened = fs::exists(log) && !holds(server.pid(), old);
      for (const pid_t child : children_of(server.pid())) reopened = reopened && !holds(child, old);
    }
    REQUIRE(reopened);
    for (int i = 0; i < 4; ++i) {
      client c(server.port());
      CHECK(c.request(request("/missing")).status == 404);
    }
    CHECK(wait_lines(log, 4).size() == 4);
    CHECK(lines_of(read_file(old)).size() == 1);
    CHECK(server.stop() == 0);
  }
}

TEST_CASE("a log nobody reads never keeps a request from its answer, the drops show in /metrics",
          "[e2e][serve][net][log][slow]") {
  site s;
  const auto fifo = s.folder.path() / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);  // never reads
  REQUIRE(reader >= 0);
  {
    server_process server =
        logging_server(s, fifo, {"--metrics-bind", "127.0.0.1:0", "--access-log-format", "json"});
    const auto& line = server.startup_line();
    const auto metrics = static_cast<unsigned short>(std::stoul(line.substr(line.rfind(':') + 1)));
    // Long user agents of bytes that JSON escapes (not UTF-8) make lines of about 3 KB: 3,000 of
    // them are far more than the pipe and the queue hold.
    const std::string agent(500, '\xff');
    std::size_t answered = 0;
    client c(server.port());
    for (int batch = 0; batch < 30; ++batch) {
      std::string requests;
      for (int i = 0; i < 100; ++i)
        requests += request("/hello.txt", "User-Agent: " + agent + "\r\n");
      c.send(requests);
      for (int i = 0; i < 100; ++i) answered += c.read_response().status == 200 ? 1u : 0u;
    }
    CHECK(answered == 3000);
    bool counted = false;
    for (int i = 0; i < 250 && !counted; ++i) {
      client m(metrics);
      const auto text = m.request("GET /metrics HTTP/1.1\r\n\r\n").body;
      const std::string name = "\nkawipiko_access_log_dropped_lines_total ";
      const auto at = text.find(name);
      counted = at != std::string::npos && std::stoull(text.substr(at + name.size())) > 0;
      if (!counted) std::this_thread::sleep_for(20ms);
    }
    CHECK(counted);
    CHECK(server.stop() == 0);
    CHECK(server.errors().find("lines dropped") != std::string::npos);
  }
  ::close(reader);
}

TEST_CASE("an access log that cannot be opened stops the server at start with one line",
          "[e2e][serve][errors][log]") {
  site s;
  temp_folder scratch;
  const auto path = scratch.path() / "missing" / "access.log";
  const auto result = run(binary + " serve --archive " + shell_quoted(s.archive) +
                              " --bind 127.0.0.1:0 --access-log " + shell_quoted(path),
                          scratch.path());
  CHECK(result.exit_code == 1);
  CHECK(count_lines(result.err, "kawipiko serve: error: cannot open the access log '" +
                                    path.string() + "'") == 1);
  const auto usage =
      run(binary + " serve --archive " + shell_quoted(s.archive) + " --access-log-format json",
          scratch.path());
  CHECK(usage.exit_code == 2);
}
