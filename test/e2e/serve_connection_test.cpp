// End-to-end tests of `kawipiko serve`'s connection handling: keep-alive and its end, pipelining,
// requests that arrive in pieces or from a half-closed client, refused requests (one answer,
// then a close, nothing behind them answered), and the limits on header size, requests per
// connection and connections. The real binary on 127.0.0.1 with an ephemeral port, raw sockets.

#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "serve/http2.hpp"
#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

using kawipiko::test::check_last_answer;
using kawipiko::test::client;
using kawipiko::test::curl;
using kawipiko::test::request;
using kawipiko::test::serve_args;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::site;
using kawipiko::test::temp_folder;
using kawipiko::test::url;
using namespace std::chrono_literals;

namespace {

const std::string binary = KAWIPIKO_BINARY;

}  // namespace

TEST_CASE("keep-alive: 1.1 by default, 1.0 on request, and Connection: close is honoured",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  {
    client c(server.port());
    for (int i = 0; i < 3; ++i) CHECK(c.request(request("/hello.txt")).body == "hello");
    CHECK_FALSE(c.closed_within(300ms));  // still open
    CHECK(c.request(request("/hello.txt")).body == "hello");
  }
  {
    client c(server.port());
    const auto one = c.request("GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(one.field("Connection") == "keep-alive");
    const auto missing = c.request("GET /nothing HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(missing.status == 404);
    CHECK(missing.field("Connection") == "keep-alive");
    const auto two = c.request("GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(two.body == "hello");
    const auto last = c.request("GET /hello.txt HTTP/1.0\r\n\r\n");
    CHECK(last.field("Connection") == "close");
    CHECK(last.body == "hello");
    REQUIRE(c.closed_within());
    CHECK(c.buffered().empty());
  }
  {
    client c(server.port());
    const auto got = c.request(request("/hello.txt", "Connection: close\r\n"));
    CHECK(got.field("Connection") == "close");
    CHECK(got.body == "hello");
    REQUIRE(c.closed_within());
    CHECK(c.buffered().empty());
  }
  temp_folder scratch;
  const auto result = curl(
      "--http1.0 -D " + shell_quoted(scratch / "head") + " " + url(server, "/hello.txt"), scratch);
  CHECK(result.out == "hello");
}

TEST_CASE("pipelined requests are answered in order", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  SECTION("20 small requests in one write") {
    client c(server.port());
    std::string batch;
    for (int i = 0; i < 20; ++i) {
      batch += request("/data.bin",
                       "Range: bytes=" + std::to_string(i) + "-" + std::to_string(i) + "\r\n");
    }
    c.send(batch);
    for (std::size_t i = 0; i < 20; ++i) {
      INFO(i);
      const auto got = c.read_response();
      CHECK(got.status == 206);
      CHECK(got.field("Content-Range") ==
            "bytes " + std::to_string(i) + "-" + std::to_string(i) + "/1000");
      CHECK(got.body == s.data.substr(i, 1));
    }
    CHECK_FALSE(c.closed_within(200ms));
    CHECK(c.buffered().empty());
  }
  SECTION("a refused request ends the pipeline after the answers before it") {
    client c(server.port());
    c.send(request("/hello.txt") + request("/a%zz") + request("/hello.txt"));
    CHECK(c.read_response().body == "hello");
    const auto refused = c.read_response();
    CHECK(refused.status == 400);
    CHECK(refused.field("Connection") == "close");
    REQUIRE(c.closed_within());
    CHECK(c.buffered().empty());
  }
  SECTION("100 requests with large answers, read only once all are sent") {
    client c(server.port());
    std::string batch;
    for (int i = 0; i < 100; ++i) {
      batch += i % 2 == 0
                   ? request("/")
                   : (i % 3 == 0 ? request("/hello.txt", {}, "HEAD")
                                 : request("/data.bin", "Range: bytes=" + std::to_string(i) + "-" +
                                                            std::to_string(i) + "\r\n"));
    }
    c.send(batch);  // about 2 MB of answers pile up behind this
    for (int i = 0; i < 100; ++i) {
      INFO(i);
      if (i % 2 == 0) {
        CHECK(c.read_response().body == s.page);
      } else if (i % 3 == 0) {
        const auto got = c.read_response(true);
        CHECK(got.field("Content-Length") == "5");
      } else {
        CHECK(c.read_response().body == s.data.substr(static_cast<std::size_t>(i), 1));
      }
    }
    CHECK(c.buffered().empty());
  }
}

TEST_CASE("a request that arrives in pieces, or from a half-closed client, is answered",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  {
    client c(server.port());
    const auto text = request("/hello.txt", "X-Pad: " + std::string(3000, 'b') + "\r\n");
    for (std::size_t at = 0; at < text.size(); at += 700) {
      c.send(text.substr(at, 700));
      CHECK_FALSE(c.closed_within(20ms));
    }
    CHECK(c.read_response().body == "hello");
  }
  {
    client c(server.port());
    c.send(request("/hello.txt") + request("/data.bin", "Range: bytes=5-6\r\n"));
    ::shutdown(c.fd(), SHUT_WR);
    CHECK(c.read_response().body == "hello");
    CHECK(c.read_response().body == s.data.substr(5, 2));
    REQUIRE(c.closed_within());
    CHECK(c.buffered().empty());
  }
}

TEST_CASE("a connection that opens with the HTTP/2 preface, even in pieces, speaks HTTP/2",
          "[e2e][serve][net][http2]") {
  site s;
  const std::string settings("\0\0\0\x04\0\0\0\0\0", 9);  // an empty SETTINGS frame
  {
    server_process server(binary, serve_args(s.archive));
    client c(server.port());
    c.send("PRI * HTTP/2.0\r\n");  // so far, also an HTTP/1.1 request line: held, not answered
    CHECK_FALSE(c.closed_within(100ms));
    CHECK(c.buffered().empty());
    c.send("\r\nSM\r\n\r\n" + settings);
    CHECK_FALSE(c.closed_within(300ms));
    // The server's connection preface: its SETTINGS frame, on stream 0.
    REQUIRE(c.buffered().size() >= 9);
    CHECK(c.buffered()[3] == '\x04');
    CHECK(c.buffered().substr(5, 4) == std::string(4, '\0'));
    // What only starts like the preface is HTTP/1.1, with its version refused.
    client other(server.port());
    CHECK(other.request("PRI * HTTP/2.0\r\nHost: a\r\n\r\n").status == 505);
  }
  {
    server_process server(binary, serve_args(s.archive, {"--http2-disable"}));
    client c(server.port());
    c.send(std::string(kawipiko::serve::http2_protocol::preface) + settings);
    CHECK(c.read_response().status == 505);
  }
}

TEST_CASE("a refused request gets one answer and a close, and nothing behind it is answered",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  struct expectation {
    std::string bytes;
    unsigned status;
  };
  for (const auto& [bytes, status] : std::vector<expectation>{
           {"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413},
           {"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413},
           {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n0\r\n\r\n",
            400},
           {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400},
           {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 5\r\n\r\n0\r\n\r\n",
            400},
           {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400},
           {"GET /hello.txt HTTP/1.1\r\n\r\n", 400},
           {"GET /hello.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
           {"GET /hello.txt HTTP/2.0\r\nHost: x\r\n\r\n", 505},
           // Raw control bytes in the target: refused by the parser or the target's check.
           {request("/a\x01z"), 400},
           {request("/a\x7fz"), 400},
       }) {
    INFO(bytes);
    client c(server.port());
    // A smuggled request behind the refused one must never be answered.
    c.send(bytes + "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    check_last_answer(c, status);
  }
}

TEST_CASE("an HTTP/0.9-style request line gets 400 and a close, never the file",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  // The parser reads the line as soon as it ends: no version where one must be is a bad request
  // (HTTP/0.9 had no header, so nothing more is awaited).
  c.send("GET /hello.txt\r\n");
  const auto got = c.read_response();
  CHECK(got.status_line == "HTTP/1.1 400 Bad Request");
  CHECK(got.field("Connection") == "close");
  CHECK(got.body == "400 Bad Request\n");
  REQUIRE(c.closed_within());
  CHECK(c.buffered().empty());
}

TEST_CASE("a header larger than the limit gets 431 and a close", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  {
    client c(server.port());
    const auto got =
        c.request(request("/hello.txt", "X-Big: " + std::string(17 * 1024, 'a') + "\r\n"));
    CHECK(got.status_line == "HTTP/1.1 431 Request Header Fields Too Large");
    CHECK(got.field("Connection") == "close");
    REQUIRE(c.closed_within());
  }
  {
    client c(server.port());  // just below the default limit: served
    CHECK(
        c.request(request("/hello.txt", "X-Big: " + std::string(15 * 1024, 'a') + "\r\n")).status ==
        200);
  }
  server_process small(binary, serve_args(s.archive, {"--header-limit", "1024"}));
  client c(small.port());
  CHECK(c.request(request("/hello.txt", "X-Big: " + std::string(2000, 'a') + "\r\n")).status ==
        431);
}

TEST_CASE("a connection closes after its --max-requests-per-connection answers",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--max-requests-per-connection", "3"}));
  {
    client c(server.port());
    CHECK_FALSE(c.request(request("/hello.txt")).has("Connection"));
    CHECK_FALSE(c.request(request("/hello.txt")).has("Connection"));
    const auto third = c.request(request("/hello.txt"));
    CHECK(third.body == "hello");
    CHECK(third.field("Connection") == "close");
    REQUIRE(c.closed_within());
  }
  {
    client c(server.port());  // pipelined: the requests past the cap are not answered
    std::string batch;
    for (int i = 0; i < 5; ++i) batch += request("/hello.txt");
    c.send(batch);
    for (int i = 0; i < 3; ++i) CHECK(c.read_response().body == "hello");
    REQUIRE(c.closed_within());
    CHECK(c.buffered().empty());
  }
}

TEST_CASE("past --max-connections new connections are closed at once", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--max-connections", "2"}));
  auto first = std::make_unique<client>(server.port());
  client second(server.port());
  CHECK(first->request(request("/hello.txt")).status == 200);
  CHECK(second.request(request("/hello.txt")).status == 200);
  {
    client third(server.port());
    CHECK(third.closed_within(5s));
    CHECK(third.buffered().empty());
  }
  CHECK(first->request(request("/hello.txt")).status == 200);
  CHECK(second.request(request("/hello.txt")).status == 200);
  // A closed connection frees its place.
  first.reset();
  bool served = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!served && std::chrono::steady_clock::now() < deadline) {
    client next(server.port());
    try {
      served = next.request(request("/hello.txt")).status == 200;
    } catch (const std::runtime_error&) {
      std::this_thread::sleep_for(50ms);
    }
  }
  CHECK(served);
}

TEST_CASE("connections ended in every way give their place back", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--max-connections", "1"}));
  const auto served_soon = [&] {
    // The server notices a close a moment after the client sees it: retry, bounded.
    for (int attempt = 0; attempt < 100; ++attempt) {
      client c(server.port());
      try {
        if (c.request(request("/hello.txt")).status == 200) return true;
      } catch (const std::runtime_error&) {
        std::this_thread::sleep_for(50ms);
      }
    }
    return false;
  };
  struct ending {
    std::string bytes;
    unsigned status;     // of the one answer
    bool server_closes;  // else the client reads its answer and goes away first
  };
  for (const auto& [bytes, status, server_closes] : std::vector<ending>{
           {request("/hello.txt", "Connection: close\r\n"), 200, true},
           {request("/%00"), 400, true},
           {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 413, true},
           {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 400, true},
           {request("/hello.txt", "X-Big: " + std::string(17 * 1024, 'a') + "\r\n"), 431, true},
           {"GET /hello.txt HTTP/1.0\r\n\r\n", 200, true},
           {"\x16\x03\x01garbage\r\n\r\n", 400, true},
           {request("/hello.txt"), 200, false},
       }) {
    INFO(bytes.substr(0, 40));
    REQUIRE(served_soon());
    client c(server.port());
    c.send(bytes);
    if (server_closes) {
      check_last_answer(c, status);
    } else {
      const auto got = c.read_response();
      CHECK(got.status == status);
      CHECK_FALSE(got.has("Connection"));
    }
  }
  CHECK(served_soon());
}
