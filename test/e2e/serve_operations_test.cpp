// End-to-end tests of the server's operations side: the process supervisor (a dead worker
// process is reported and replaced; one that keeps dying stops the server with exit 1) and the
// pprof profiles. The real binary on 127.0.0.1 with an ephemeral port, stopped by PID.

#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/skip.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kawipiko::test::children_of;
using kawipiko::test::client;
using kawipiko::test::read_file;
using kawipiko::test::run;
using kawipiko::test::serve_args;
using kawipiko::test::server_process;
using kawipiko::test::site;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;

// Waits (bounded) until `parent` has `count` children other than those in `old`.
std::vector<pid_t> wait_children(pid_t parent, std::size_t count, std::vector<pid_t> old = {}) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto now = children_of(parent);
    std::erase_if(now, [&](pid_t p) { return std::find(old.begin(), old.end(), p) != old.end(); });
    if (now.size() >= count) return now;
    std::this_thread::sleep_for(50ms);
  }
  FAIL("the supervisor did not start its worker processes");
  return {};
}

bool waits_for(const server_process& server, const std::string& text) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (server.errors().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

unsigned get_status(unsigned short port) {
  client c(port);
  return c.request("GET / HTTP/1.1\r\nHost: a\r\n\r\n").status;
}

}  // namespace

TEST_CASE("a worker process that dies is reported and replaced, and the server goes on",
          "[e2e][serve][net][processes]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--processes", "2"}));
  const auto first = wait_children(server.pid(), 2);
  ::kill(first[0], SIGKILL);
  CHECK(waits_for(server, "worker process " + std::to_string(first[0]) + " died (signal 9)"));
  // A new worker takes the dead one's place.
  const auto replaced = wait_children(server.pid(), 2, {first[0]});
  CHECK(replaced.size() == 2);
  for (int i = 0; i < 10; ++i) CHECK(get_status(server.port()) == 200u);
  CHECK(server.stop() == 0);
}

TEST_CASE("a worker process that keeps dying stops the server with exit 1",
          "[e2e][serve][net][processes]") {
  site s;
  server_process supervised(binary, serve_args(s.archive, {"--processes", "2"}));
  // Kill the same slot again and again; the other worker process lives on.
  std::vector<pid_t> seen{wait_children(supervised.pid(), 2)[1]};
  for (int death = 0; death < 6; ++death) {
    const auto alive = wait_children(supervised.pid(), 1, seen);
    ::kill(alive[0], SIGKILL);
    seen.push_back(alive[0]);
    if (supervised.wait_exit(0ms)) break;
    // Let the supervisor notice this death before the next one.
    REQUIRE(waits_for(supervised, "worker process " + std::to_string(alive[0]) + " died"));
  }
  const auto code = supervised.wait_exit(10'000ms);
  REQUIRE(code);
  CHECK(*code == 1);
  CHECK(supervised.errors().find("a worker process keeps dying; stopping") != std::string::npos);
}

TEST_CASE("a CPU profile (--profile-cpu) is written in pprof format at exit",
          "[e2e][serve][net][profile]") {
  if (::system("ls /usr/lib/*/libprofiler.so.0 >/dev/null 2>&1") != 0) {
    FAIL("libprofiler.so.0 is missing: install libgoogle-perftools4 (cmake/install-deps.sh does)");
  }
  site s;
  const auto profile = s.folder / "cpu.prof";
  server_process server(binary, serve_args(s.archive, {"--profile-cpu", profile.string()}));
  for (int i = 0; i < 200; ++i) REQUIRE(get_status(server.port()) == 200u);
  CHECK(server.stop() == 0);
  REQUIRE(fs::exists(profile));
  // gperftools' CPU profile starts with a header of five machine words: 0, 3, 0, period, 0.
  const std::string bytes = read_file(profile);
  REQUIRE(bytes.size() >= 5 * sizeof(std::uintptr_t));
  std::uintptr_t words[5];
  std::memcpy(words, bytes.data(), sizeof words);
  CHECK(words[0] == 0);
  CHECK(words[1] == 3);
  CHECK(words[2] == 0);
}

TEST_CASE("a heap profile (--profile-mem) is written at exit",
          "[e2e][serve][net][profile][unsanitized]") {
#if defined(KAWIPIKO_SANITIZED)
  KAWIPIKO_SKIP("a sanitized binary cannot preload tcmalloc; the unsanitized leg runs this");
#else
  site s;
  const auto profile = s.folder / "heap";
  server_process server(binary, serve_args(s.archive, {"--profile-mem", profile.string()}));
  for (int i = 0; i < 50; ++i) REQUIRE(get_status(server.port()) == 200u);
  CHECK(server.stop() == 0);
  const auto dump = fs::path(profile.string() + ".0001.heap");
  REQUIRE(fs::exists(dump));
  CHECK(read_file(dump).rfind("heap profile: ", 0) == 0);
#endif
}

TEST_CASE("profiles with several processes are a usage error", "[e2e][serve][errors]") {
  site s;
  const auto result = run(
      binary + " serve --archive '" + s.archive.string() + "' --processes 2 --profile-cpu x.prof",
      s.folder.path());
  CHECK(result.exit_code == 2);
  CHECK(result.err.find("--profile-cpu and --profile-mem need --processes 1") != std::string::npos);
}
