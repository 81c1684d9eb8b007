// Hostile clients against the real server: malformed, random and smuggling-shaped requests, each
// on its own connection. The shapes get the refusal each calls for and a close; a random one gets
// exactly what the server's own request parser reads in it calls for (a refusal and a close, an
// answer, or, while incomplete, a close at the header timeout), never a 500 and never a hang. The
// server keeps serving everyone else and exits 0.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "serve/parser.hpp"
#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace serve = kawipiko::serve;
using kawipiko::test::archive_sources;
using kawipiko::test::check_last_answer;
using kawipiko::test::client;
using kawipiko::test::server_process;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;
constexpr std::size_t header_limit = 16 * 1024;  // serve's default --header-limit

// Sends `bytes` on a new connection and checks the refusal: `status`, "Connection: close", then
// the close, and nothing more (whatever followed the refused request is not answered).
void check_refused(unsigned short port, const std::string& bytes, unsigned status) {
  client c(port);
  c.send(bytes);
  check_last_answer(c, status);
}

// Sends `bytes` on a new connection and checks that the server does what its request parser,
// run here on the same bytes, calls for. (test/serve/parser_test.cpp asserts the parser.)
void check_as_parsed(unsigned short port, const std::string& bytes) {
  serve::request req;
  const auto parsed = serve::parse_request(bytes, header_limit, req);
  switch (parsed.status) {
    case serve::parse_status::need_more: {
      // An incomplete header: no answer, and a close once the header timeout passes.
      client c(port);
      c.send(bytes);
      CHECK(c.closed_within());
      CHECK(c.buffered().empty());
      return;
    }
    case serve::parse_status::complete:
      break;
    default:  // 400, 413, 414, 431, 505
      return check_refused(port, bytes, serve::refusal_status(parsed.status));
  }
  // A request: an answer from the handler (never a 500: the archive is sound), which closes the
  // connection when the request asked for it or its target is refused.
  client c(port);
  c.send(bytes);
  const auto got = c.read_response(req.verb == serve::method::head);
  static const std::set<unsigned> answers = {200, 206, 304, 308, 400, 404, 405, 412, 414, 416, 501};
  CHECK(answers.contains(got.status));
  const bool closes = !req.keep_alive || got.status == 400 || got.status == 414;
  const std::optional<std::string> connection =
      closes ? std::optional<std::string>("close")
             : (req.version == 10 ? std::optional<std::string>("keep-alive") : std::nullopt);
  CHECK(got.field("Connection") == connection);
  if (closes) {
    CHECK(c.closed_within());
    CHECK(c.buffered().empty());
  }
}

}  // namespace

TEST_CASE(
    "malformed and smuggling-shaped requests get their refusal, random ones what the parser "
    "reads in them",
    "[e2e][serve][net][hostile]") {
  temp_folder folder;
  folder.write("src/index.html", "home");
  folder.write("src/docs/index.html", "docs");
  const auto archive = archive_sources(binary, folder);
  server_process server(binary, {"serve", "--archive", archive.string(), "--bind", "127.0.0.1:0",
                                 "--header-timeout", "1", "--idle-timeout", "1"});

  // Shapes the smuggling and hardening literature names: each one's refusal, written out.
  struct shape {
    std::string bytes;
    unsigned status;
  };
  const std::vector<shape> shapes = {
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: "
       "chunked\r\n\r\n0\r\n\r\n",
       400},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
       400},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
      {"GET /\r\n\r\n", 400},
      // HTTP/2.0 in a request line that is not the HTTP/2 preface (which opens h2c).
      {"PRI * HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a") + '\0' + "b\r\n\r\n", 400},
      {std::string("GET /") + '\0' + " HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(20000, 'x') + "\r\n\r\n", 431},
      {"GET / HTTP/9.9\r\nHost: a\r\n\r\n", 505},
      {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"\r\n\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET http://a/%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400},
  };
  for (const auto& [bytes, status] : shapes) {
    INFO(bytes.substr(0, 80));
    check_refused(server.port(), bytes, status);
  }

  // Random bytes, and valid requests with random bytes changed.
  std::mt19937 random(77);
  const std::string valid =
      "GET /docs/index.html?x=1 HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nRange: "
      "bytes=0-1\r\n\r\n";
  for (int i = 0; i < 1500; ++i) {
    std::string bytes;
    if (i % 3 == 0) {
      bytes.resize(1 + random() % 300);
      for (auto& c : bytes) c = static_cast<char>(random() % 256);
    } else {
      bytes = valid;
      const int edits = 1 + static_cast<int>(random() % 4);
      for (int e = 0; e < edits; ++e) {
        bytes[random() % bytes.size()] = static_cast<char>(random() % 256);
      }
    }
    INFO(i);
    check_as_parsed(server.port(), bytes);
  }
  // Everyone else is still served.
  client c(server.port());
  CHECK(c.request("GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200);
  CHECK(server.stop() == 0);
  CHECK(server.errors().empty());
}

TEST_CASE("a connection flood past the descriptor limit leaves accepted clients served",
          "[e2e][serve][net][hostile]") {
  if (::access("/usr/bin/prlimit", X_OK) != 0) FAIL("prlimit (util-linux) is missing");
  temp_folder folder;
  folder.write("src/index.html", "home");
  const auto archive = archive_sources(binary, folder);
  // 64 descriptors in all: the flood below is three times that, and the cap asked for is more
  // than the limit can hold.
  server_process server("/usr/bin/prlimit",
                        {"--nofile=64:64", binary, "serve", "--archive", archive.string(), "--bind",
                         "127.0.0.1:0", "--max-connections", "1000"});
  client early(server.port());
  CHECK(early.request("GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200);

  std::vector<int> flood;
  for (int i = 0; i < 200; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(server.port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    flood.push_back(fd);
  }
  // The connection accepted before the flood is still served, several times over.
  for (int i = 0; i < 5; ++i) {
    CHECK(early.request("GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200);
  }
  // Connections past what the descriptors allow were accepted and closed at once, not left
  // hanging in the listen backlog: most of the flood sees its end within a few seconds.
  std::size_t closed = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::vector<bool> seen(flood.size(), false);
  while (closed < 150 && std::chrono::steady_clock::now() < deadline) {
    for (std::size_t i = 0; i < flood.size(); ++i) {
      char byte = 0;
      if (!seen[i] && ::recv(flood[i], &byte, 1, MSG_DONTWAIT) == 0) {
        seen[i] = true;
        ++closed;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(closed >= 150);
  for (const int fd : flood) ::close(fd);
  // Once the flood is gone, new clients are served again.
  bool recovered = false;
  for (int attempt = 0; attempt < 100 && !recovered; ++attempt) {
    try {
      client later(server.port(), std::chrono::milliseconds(2000));
      recovered = later.request("GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200;
    } catch (const std::runtime_error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  CHECK(recovered);
  CHECK(server.stop() == 0);
  // The server kept its connections within the descriptor limit (so accept never ran out of
  // descriptors) and said so at start.
  const auto errors = server.errors();
  CHECK(errors.find("note: --max-connections 1000 lowered to ") != std::string::npos);
  CHECK(errors.find("by the descriptor limit (64;") != std::string::npos);
  CHECK(errors.find("accept failed") == std::string::npos);
  CHECK(errors.find("runtime error") == std::string::npos);
}
