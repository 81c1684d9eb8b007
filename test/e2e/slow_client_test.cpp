// Slow clients against the real server: slowhttptest's slowloris (-H), slow read (-X) and range
// attack (-R), each for a bounded time, while a well-behaved client keeps requesting on fresh
// connections. Every one of that client's requests must be answered, and the server's resident
// memory must stay bounded.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

using kawipiko::test::archive_sources;
using kawipiko::test::child_process;
using kawipiko::test::client;
using kawipiko::test::server_process;
using kawipiko::test::temp_folder;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

const std::string binary = KAWIPIKO_BINARY;
const std::string slowhttptest = "/usr/bin/slowhttptest";

// VmRSS of `pid` in KiB, 0 if it cannot be read.
std::size_t resident_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// slowhttptest colours its report; the escapes go.
std::string plain(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b' && i + 1 < text.size() && text[i + 1] == '[') {
      i = text.find('m', i);
      if (i == std::string::npos) break;
      continue;
    }
    out += text[i];
  }
  return out;
}

// The highest count slowhttptest reported for `state` ("connected", "closed"...) in its status
// lines (every 5 s and at the end), or -1.
long highest_count(const std::string& report, const std::string& state) {
  long highest = -1;
  for (auto at = report.find(state + ":"); at != std::string::npos;
       at = report.find(state + ":", at + 1)) {
    highest = std::max(highest, std::strtol(report.c_str() + at + state.size() + 1, nullptr, 10));
  }
  return highest;
}

struct outcome {
  int requests = 0;  // by the well-behaved client
  int answered = 0;  // 200 with the right body, each within 5 s
  std::size_t baseline_kib = 0;
  std::size_t peak_kib = 0;
  std::string report;  // slowhttptest's output, plain
  int server_exit = -1;
  std::string server_errors;
};

// Serves a site with a small page and a 1 MiB file (random bytes: stored identity only), runs
// slowhttptest with `mode` against `path` for 8 s (500 connections, 200 a second) and requests
// the small page every 100 ms meanwhile.
outcome attack(const std::vector<std::string>& mode, const std::string& path) {
  if (::access(slowhttptest.c_str(), X_OK) != 0) {
    FAIL("slowhttptest is missing (cmake/install-deps.sh installs it)");
  }
  temp_folder folder;
  folder.write("src/index.html", "home");
  std::mt19937 random(20261126);
  std::string big(1 << 20, '\0');
  for (auto& byte : big) byte = static_cast<char>(random());
  folder.write("src/big.bin", big);
  const auto archive = archive_sources(binary, folder);
  // Header timeout 3 s (default 10) so that slowloris meets it within the bounded run.
  server_process server(binary, {"serve", "--archive", archive.string(), "--bind", "127.0.0.1:0",
                                 "--header-timeout", "3"});
  outcome result;
  result.baseline_kib = resident_kib(server.pid());
  result.peak_kib = result.baseline_kib;

  std::vector<std::string> args = mode;
  for (const std::string& a :
       {std::string("-c"), std::string("500"), std::string("-r"), std::string("200"),
        std::string("-l"), std::string("8"), std::string("-p"), std::string("2"), std::string("-u"),
        "http://127.0.0.1:" + std::to_string(server.port()) + path}) {
    args.push_back(a);
  }
  child_process tool(slowhttptest, args, false);
  // The client keeps going while the tool runs, and for 3 s at least (the range attack is over
  // sooner), within 20 s.
  const auto start = std::chrono::steady_clock::now();
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= start + seconds(20)) break;
    if (now >= start + seconds(3) && tool.wait_exit(milliseconds(0))) break;
    ++result.requests;
    try {
      client c(server.port(), milliseconds(5000));
      c.send("GET /index.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
      const auto response = c.read_response();
      if (response.status == 200 && response.body == "home") ++result.answered;
    } catch (const std::runtime_error&) {
      // counted as not answered
    }
    result.peak_kib = std::max(result.peak_kib, resident_kib(server.pid()));
    std::this_thread::sleep_for(milliseconds(100));
  }
  tool.stop(SIGINT, milliseconds(2000));  // by its PID; a no-op when it ended by itself
  result.report = plain(tool.errors());
  result.server_exit = server.stop();
  result.server_errors = server.errors();
  return result;
}

void check_served(const outcome& o) {
  std::printf(
      "well-behaved client: %d of %d requests answered; server RSS %zu KiB at start, "
      "%zu KiB at most\n",
      o.answered, o.requests, o.baseline_kib, o.peak_kib);
  INFO("requests " << o.requests << ", answered " << o.answered << ", RSS " << o.baseline_kib
                   << " -> " << o.peak_kib << " KiB, server exit " << o.server_exit
                   << ", server stderr: " << o.server_errors);
  INFO("slowhttptest said:\n"
       << o.report.substr(o.report.size() > 2000 ? o.report.size() - 2000 : 0));
  CHECK(o.requests >= 20);  // the attack lasted long enough to mean something
  CHECK(o.answered == o.requests);
  // Resident memory grew by less than 32 MiB (ASan's allocator included).
  CHECK(o.peak_kib < o.baseline_kib + 32 * 1024);
  CHECK(o.server_exit == 0);
  CHECK(o.server_errors.empty());
}

}  // namespace

TEST_CASE("slowloris (slowhttptest -H) is timed out while others are served",
          "[e2e][serve][net][hostile][slow]") {
  const auto o = attack({"-H", "-i", "1", "-x", "24"}, "/");
  check_served(o);
  // The server closed the slow-header connections (header timeout 3 s): slowhttptest ran out of
  // open connections before its 8 s were up.
  CHECK(o.report.find("service available:   YES") != std::string::npos);
  CHECK(highest_count(o.report, "closed") > 100);
  CHECK(o.report.find("Exit status: No open connections left") != std::string::npos);
}

TEST_CASE("slow readers (slowhttptest -X) do not starve others nor grow memory",
          "[e2e][serve][net][hostile][slow]") {
  // Windows of 1-64 bytes, 32 bytes read a second, three requests pipelined per connection: the
  // responses (3 MiB a connection, 1.5 GiB in all) sit in the archive, not in the server.
  const auto o =
      attack({"-X", "-w", "1", "-y", "64", "-n", "1", "-z", "32", "-k", "3"}, "/big.bin");
  check_served(o);
  CHECK(highest_count(o.report, "connected") > 100);  // the attack did hold its connections
}

TEST_CASE("the range attack (slowhttptest -R) costs nothing", "[e2e][serve][net][hostile][slow]") {
  // 2,000 overlapping ranges in one 13 KB header: invalid ("5-0"), so the answer is a plain 200.
  const auto o = attack({"-R", "-a", "5", "-b", "2000"}, "/big.bin");
  check_served(o);
  CHECK(o.report.find("service available:   YES") != std::string::npos);
}
