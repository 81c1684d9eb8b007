// End-to-end tests of `kawipiko serve`'s timeouts: a header that does not complete in time, an
// idle keep-alive connection, a client that does not read, and --timeout-disable. A timed-out
// connection is closed without an answer. The real binary on 127.0.0.1, raw sockets; each wait
// is a bound well past the timeout set, never a measurement.

#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/served_site.hpp"
#include "support/server_process.hpp"

using kawipiko::test::client;
using kawipiko::test::request;
using kawipiko::test::serve_args;
using kawipiko::test::server_process;
using kawipiko::test::site;
using namespace std::chrono_literals;

namespace {

const std::string binary = KAWIPIKO_BINARY;

// Reads one response with a body of `size` bytes, `chunk` bytes at a time with `pause` between
// reads (within 60 s); its body, or what came of it if the connection ended first.
std::string read_slowly(client& c, std::size_t size, std::size_t chunk,
                        std::chrono::milliseconds pause) {
  std::string got;
  std::string room(chunk, '\0');
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::recv(c.fd(), room.data(), room.size(), 0);
    if (n <= 0) break;
    got.append(room.data(), static_cast<std::size_t>(n));
    const auto body_at = got.find("\r\n\r\n");
    if (body_at != std::string::npos && got.size() - (body_at + 4) >= size) break;
    std::this_thread::sleep_for(pause);
  }
  const auto body_at = got.find("\r\n\r\n");
  return body_at == std::string::npos ? std::string() : got.substr(body_at + 4);
}

}  // namespace

TEST_CASE("a client that sends half a header is dropped after --header-timeout, unanswered",
          "[e2e][serve][net][slow]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--header-timeout", "1"}));
  client slow(server.port());
  slow.send("GET /hello.txt HTTP/1.1\r\nHost: 127.");
  // The default header timeout (10 s) would not close it within this bound.
  CHECK(slow.closed_within(8s));
  CHECK(slow.buffered().empty());
  client other(server.port());
  CHECK(other.request(request("/hello.txt")).status == 200);
}

TEST_CASE("an idle keep-alive connection is closed after --idle-timeout, unanswered",
          "[e2e][serve][net][slow]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--idle-timeout", "1"}));
  client c(server.port());
  CHECK(c.request(request("/hello.txt")).status == 200);
  CHECK(c.closed_within(8s));
  CHECK(c.buffered().empty());
  client silent(server.port());  // never sends a byte
  CHECK(silent.closed_within(8s));
  CHECK(silent.buffered().empty());
}

TEST_CASE("a client that trickles its header byte by byte is dropped after --header-timeout",
          "[e2e][serve][net][slow]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--header-timeout", "1"}));
  client slow(server.port());
  const std::string header = request("/hello.txt", "X-Pad: " + std::string(100, 'a') + "\r\n");
  bool closed = false;
  // A byte every 200 ms for at most 6 s: a timeout restarted by every byte would never fire,
  // and the default header timeout (10 s) would fire too late.
  for (std::size_t i = 0; i < 30 && !closed; ++i) {
    try {
      slow.send(header.substr(i, 1));
    } catch (const std::runtime_error&) {
      closed = true;  // reset by the server
      break;
    }
    closed = slow.closed_within(200ms);
  }
  CHECK(closed);
  CHECK(slow.buffered().empty());
}

TEST_CASE("idle and slow connections stay open with --timeout-disable", "[e2e][serve][net][slow]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--idle-timeout", "1", "--header-timeout",
                                                       "1", "--timeout-disable"}));
  client idle(server.port());
  CHECK(idle.request(request("/hello.txt")).status == 200);
  client half(server.port());
  half.send("GET /hello.txt HTTP/1.1\r\nHo");
  CHECK_FALSE(idle.closed_within(2500ms));
  CHECK_FALSE(half.closed_within(100ms));
  CHECK(idle.request(request("/hello.txt")).status == 200);
  half.send("st: x\r\n\r\n");
  CHECK(half.read_response().body == "hello");
}

TEST_CASE("a client that does not read is dropped after --write-timeout",
          "[e2e][serve][net][slow]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--write-timeout", "1"}));
  client c(server.port());
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += request("/");  // 20 MB of answers: more than buffers
  c.send(batch);
  std::this_thread::sleep_for(2500ms);  // not reading: no write progress for the server
  std::size_t answered = 0;
  try {
    while (answered < 1000) {
      if (c.read_response().body != s.page) break;
      ++answered;
    }
  } catch (const std::runtime_error&) {
    // cut short: the connection was closed
  }
  CHECK(answered < 1000);
  CHECK(c.closed_within(10s));
}

TEST_CASE("a client that reads slowly but steadily gets a large body whole, past --write-timeout",
          "[e2e][serve][net][slow]") {
  kawipiko::test::temp_folder folder;
  const auto big = kawipiko::test::random_bytes(6 << 20, 3);
  folder.write("src/big.bin", big);
  const auto archive = kawipiko::test::archive_sources(binary, folder, "--compress identity");
  server_process server(binary, serve_args(archive, {"--write-timeout", "1"}));
  client c(server.port());
  c.send(request("/big.bin"));
  // About 500 KB/s: the socket's buffer takes seconds to drain, longer than the write timeout,
  // while the server has nothing it can write; the kernel's queue shrinking is progress.
  CHECK(read_slowly(c, big.size(), 16 * 1024, 30ms) == big);
  CHECK(server.stop() == 0);
}

TEST_CASE("a keep-alive connection's idle time counts from when the client has taken the response",
          "[e2e][serve][net][slow]") {
  kawipiko::test::temp_folder folder;
  const auto big = kawipiko::test::random_bytes(4 << 20, 4);
  folder.write("src/big.bin", big);
  folder.write("src/index.html", "next");
  const auto archive = kawipiko::test::archive_sources(binary, folder, "--compress identity");
  server_process server(binary, serve_args(archive, {"--idle-timeout", "1"}));
  // A small window read slowly (4 KiB every 3 ms: about 4 s): the server hands the body to its
  // kernel and is done with it long before the client has it all, past the idle timeout.
  client c(server.port(), kawipiko::test::default_bound, 4096);
  c.send(request("/big.bin"));
  CHECK(read_slowly(c, big.size(), 4096, 3ms) == big);
  CHECK(c.request(request("/index.html")).body == "next");  // the connection is still open
  CHECK(c.closed_within(5s));  // and the idle timeout still closes it afterwards
  CHECK(server.stop() == 0);
}
