// End-to-end tests of live deploys: the archive renamed over (the watch), SIGHUP, an invalid new
// archive refused while the old one is served, a response under way finishing from the
// generation it started with while the connection's next request sees the new one, and old
// generations let go (their mappings gone from /proc/PID/maps).

#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kawipiko::test::archive_sources;
using kawipiko::test::client;
using kawipiko::test::random_bytes;
using kawipiko::test::request;
using kawipiko::test::serve_args;
using kawipiko::test::server_process;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;

// Two builds of one site, and the live name the server serves (in a folder of its own, which the
// server watches).
struct two_builds {
  temp_folder build_a, build_b, folder;
  std::string big_a = random_bytes(4 << 20, 1), big_b = random_bytes(4 << 20, 2);
  fs::path a, b, live;

  two_builds() {
    build_a.write("src/index.html", "build A");
    build_a.write("src/big.bin", big_a);
    build_b.write("src/index.html", "build B");
    build_b.write("src/big.bin", big_b);
    a = archive_sources(binary, build_a, "--compress identity");
    b = archive_sources(binary, build_b, "--compress identity");
    live = folder / "site.cdb";
    fs::copy_file(a, live);
  }

  // Deploys `from` the way the README says: a copy beside, then a rename over the live name.
  void deploy(const fs::path& from) const {
    const auto next = folder / "site.cdb.new";
    fs::copy_file(from, next, fs::copy_options::overwrite_existing);
    fs::rename(next, live);
  }
};

// GET / on a new connection, until it answers `body` or `bound` has passed.
bool serves_within(unsigned short port, const std::string& body,
                   std::chrono::milliseconds bound = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    client c(port);
    if (c.request(request("/")).body == body) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Whether the server's stderr says `text` within `bound`.
bool logs_within(const server_process& server, const std::string& text,
                 std::chrono::milliseconds bound = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (server.errors().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// How many mappings of files named like the live archive the process has.
std::size_t archive_mappings(pid_t pid, const std::string& name) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  std::size_t count = 0;
  while (std::getline(maps, line)) {
    if (line.find(name) != std::string::npos) ++count;
  }
  return count;
}

}  // namespace

TEST_CASE("an archive renamed over the live one is served within a moment, an invalid one is not",
          "[e2e][serve][net][reload]") {
  const two_builds s;
  server_process server(binary, serve_args(s.live));
  CHECK(serves_within(server.port(), "build A"));
  s.deploy(s.b);
  CHECK(serves_within(server.port(), "build B"));
  CHECK(logs_within(server, "reloaded: generation 2"));

  // Garbage under the name: refused with one line, the last good build goes on.
  const auto garbage = s.folder.write("garbage.cdb", "not an archive at all");
  s.deploy(garbage);
  CHECK(logs_within(server, "generation 2 goes on being served"));
  client c(server.port());
  CHECK(c.request(request("/")).body == "build B");
  // And the next valid one is taken.
  s.deploy(s.a);
  CHECK(serves_within(server.port(), "build A"));
  CHECK(server.stop() == 0);
}

TEST_CASE("with --watch-disable only SIGHUP reloads, and a SIGHUP with nothing new is harmless",
          "[e2e][serve][net][reload]") {
  const two_builds s;
  server_process server(binary, serve_args(s.live, {"--watch-disable"}));
  client keep(server.port());
  CHECK(keep.request(request("/")).body == "build A");
  ::kill(server.pid(), SIGHUP);  // nothing changed
  // Done before the next deploy, which it would otherwise pick up.
  REQUIRE(logs_within(server, "reloaded: generation 2"));
  CHECK(serves_within(server.port(), "build A"));
  s.deploy(s.b);
  std::this_thread::sleep_for(600ms);  // more than a watch and a sweep would take
  CHECK(keep.request(request("/")).body == "build A");
  ::kill(server.pid(), SIGHUP);
  CHECK(serves_within(server.port(), "build B"));
  // The keep-alive connection's next request is answered from the new build.
  CHECK(keep.request(request("/")).body == "build B");
  CHECK(server.stop() == 0);
}

TEST_CASE("a response under way finishes from its generation and the old mapping goes after it",
          "[e2e][serve][net][reload]") {
  const two_builds s;
  server_process server(binary, serve_args(s.live));
  // A slow reader: a small receive buffer, the 4 MiB body asked for and not read yet.
  client slow(server.port(), kawipiko::test::default_bound, 4096);
  slow.send(request("/big.bin"));
  std::this_thread::sleep_for(300ms);
  s.deploy(s.b);
  CHECK(serves_within(server.port(), "build B"));
  // Both generations are mapped while the old one's response is under way.
  CHECK(archive_mappings(server.pid(), "site.cdb") >= 2);
  const auto got = slow.read_response();
  CHECK(got.status == 200);
  CHECK(got.body.size() == s.big_a.size());
  CHECK(got.body == s.big_a);  // all of it from build A: no mix of two generations
  CHECK(slow.request(request("/big.bin")).body == s.big_b);
  // Once it is out, and a sweep has passed, only the live generation is mapped.
  std::this_thread::sleep_for(600ms);
  CHECK(archive_mappings(server.pid(), "site.cdb") == 1);
  CHECK(server.stop() == 0);
}

TEST_CASE("many deploys in a row leave one mapping and serve the last build",
          "[e2e][serve][net][reload]") {
  const two_builds s;
  server_process server(binary, serve_args(s.live));
  client keep(server.port());
  for (int i = 0; i < 40; ++i) {
    s.deploy(i % 2 == 0 ? s.b : s.a);
    const auto body = keep.request(request("/")).body;
    CHECK((body == "build A" || body == "build B"));
    std::this_thread::sleep_for(30ms);
  }
  CHECK(serves_within(server.port(), "build A"));
  std::this_thread::sleep_for(600ms);
  CHECK(archive_mappings(server.pid(), "site.cdb") == 1);
  CHECK(server.stop() == 0);
}

namespace {

// A keep-alive client asking for /big.bin over and over; every answer must be a whole 200 of
// one build or the other (a connection the server closes is reconnected and counted).
class big_reader {
 public:
  big_reader(unsigned short port, const two_builds& s)
      : thread_([this, port, &s] {
          while (!stop_) {
            try {
              client c(port);
              while (!stop_) {
                const auto got = c.request(request("/big.bin"));
                const bool whole =
                    got.status == 200 && (got.body == s.big_a || got.body == s.big_b);
                ++(whole ? whole_ : wrong_);
              }
            } catch (const std::exception&) {
              ++closed_;  // the server ended the connection: allowed, counted
            }
          }
        }) {}
  big_reader(const big_reader&) = delete;
  big_reader& operator=(const big_reader&) = delete;
  ~big_reader() { finish(); }

  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] int whole() const { return whole_; }
  [[nodiscard]] int wrong() const { return wrong_; }
  [[nodiscard]] int closed() const { return closed_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> whole_{0}, wrong_{0}, closed_{0};
  std::thread thread_;
};

// /bin/sh `command` run in `folder`; its exit code.
int shell(const std::string& command, const fs::path& folder) {
  return kawipiko::test::run("cd '" + folder.string() + "' && " + command, folder).exit_code;
}

}  // namespace

TEST_CASE("cp over the live archive, truncate, garbage and rm never crash the server",
          "[e2e][serve][net][reload]") {
  const two_builds s;
  for (const bool in_memory : {false, true}) {
    INFO((in_memory ? "--archive-inmem" : "mmap"));
    fs::copy_file(s.a, s.live, fs::copy_options::overwrite_existing);
    server_process server(binary,
                          serve_args(s.live, in_memory ? std::vector<std::string>{"--archive-inmem"}
                                                       : std::vector<std::string>{}));
    if (!in_memory) CHECK(server.startup_line().find(", mmap)") != std::string::npos);
    big_reader reader(server.port(), s);
    std::this_thread::sleep_for(200ms);
    const auto folder = s.folder.path();
    // cp rewrites the mapped file in place: the server moves to a copy in memory first, then
    // takes the new build once cp has closed it.
    CHECK(shell("cp '" + s.b.string() + "' site.cdb", folder) == 0);
    CHECK(serves_within(server.port(), "build B"));
    if (!in_memory) CHECK(logs_within(server, "is being written in place"));
    // truncate may be told to wait (its open does not) while the lease goes: either way the
    // server goes on.
    (void)shell("truncate -s 100000 site.cdb", folder);
    CHECK(shell("echo garbage > site.cdb", folder) == 0);
    CHECK(shell("rm site.cdb", folder) == 0);
    std::this_thread::sleep_for(300ms);
    {
      client c(server.port());
      CHECK(c.request(request("/")).body == "build B");  // the last good build
    }
    s.deploy(s.a);
    CHECK(serves_within(server.port(), "build A"));
    reader.finish();
    CHECK(reader.whole() > 0);
    CHECK(reader.wrong() == 0);
    CHECK(server.stop() == 0);
  }
}

namespace {

// Sets /proc/sys/fs/lease-break-time for the test's lifetime (the kernel's default, 45 s, would
// make the test wait that long), and puts the old value back.
class lease_break_time {
 public:
  explicit lease_break_time(int seconds) {
    std::ifstream in(path);
    REQUIRE(in >> old_);
    write(seconds);
  }
  lease_break_time(const lease_break_time&) = delete;
  lease_break_time& operator=(const lease_break_time&) = delete;
  ~lease_break_time() { write(old_); }

 private:
  static constexpr const char* path = "/proc/sys/fs/lease-break-time";
  static void write(int seconds) {
    std::ofstream out(path);
    out << seconds << '\n';
    out.flush();
    REQUIRE(out.good());  // the tests run as root (CI's test command installs packages)
  }
  int old_ = 45;
};

}  // namespace

TEST_CASE("a reader too slow to finish before the kernel breaks the lease is cut, not crashed",
          "[e2e][serve][net][reload]") {
  // 6 s: the server cuts what still sends from the leased mapping after 3 s; without the cut
  // the kernel would let cp go on at 6 s, under a response still read from the mapping.
  const lease_break_time short_breaks(6);
  temp_folder build_a, build_b, folder;
  const auto big = random_bytes(24 << 20, 3);  // more than the socket buffers of both ends hold
  build_a.write("src/index.html", "build A");
  build_a.write("src/big.bin", big);
  build_b.write("src/index.html", "build B");
  const auto a = archive_sources(binary, build_a, "--compress identity");
  const auto b = archive_sources(binary, build_b, "--compress identity");
  const auto live = folder / "site.cdb";
  fs::copy_file(a, live);
  server_process server(binary, serve_args(live));
  client slow(server.port(), kawipiko::test::default_bound, 4096);
  slow.send(request("/big.bin"));  // and reads nothing for now: the server waits to write
  std::this_thread::sleep_for(300ms);
  std::atomic<int> copied{-1};
  std::thread writer([&] { copied = shell("cp '" + b.string() + "' site.cdb", folder.path()); });
  CHECK(logs_within(server, "is being written in place"));
  CHECK(logs_within(server, "closed 1 connection(s) still sending from an archive being written",
                    10s));
  CHECK(slow.closed_within(10s));
  CHECK(slow.buffered().size() < big.size());  // cut short
  writer.join();
  CHECK(copied == 0);
  CHECK(serves_within(server.port(), "build B"));
  CHECK(server.stop() == 0);
}
