// End-to-end tests of four HTTP/1.1 rules a conformance run found broken (RFC 9110/9112): a
// failing If-Match, a later 1.x minor version and another major one, methods not known, and an
// over-long request-target. The real `kawipiko serve` on 127.0.0.1, talked to with curl and raw
// sockets.

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

using kawipiko::test::archive_sources;
using kawipiko::test::client;
using kawipiko::test::run;
using kawipiko::test::server_process;
using kawipiko::test::temp_folder;
using namespace std::chrono_literals;

namespace {

const std::string binary = KAWIPIKO_BINARY;

// A server on an ephemeral port over a two-file site.
struct served_site {
  temp_folder folder;
  server_process server;

  explicit served_site(const std::vector<std::string>& extra = {})
      : server(binary, arguments(folder, extra)) {}

  static std::vector<std::string> arguments(temp_folder& folder,
                                            const std::vector<std::string>& extra) {
    folder.write("src/index.html", "home");
    folder.write("src/hello.txt", "hello");
    std::vector<std::string> args{"serve", "--archive", archive_sources(binary, folder).string(),
                                  "--bind", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // curl's status code and body for `target`, with `options` (shell words) before the URL.
  [[nodiscard]] std::string curl(const std::string& options, std::string_view target) const {
    const auto result =
        run("curl -sS --max-time 10 -w ' %{http_code}' " + options +
                " 'http://127.0.0.1:" + std::to_string(server.port()) + std::string(target) + "'",
            folder.path());
    INFO(result.err);
    CHECK(result.exit_code == 0);
    return result.out;
  }
};

std::string request(std::string_view line, std::string_view fields = {}) {
  return std::string(line) + "\r\nHost: 127.0.0.1\r\n" + std::string(fields) + "\r\n";
}

}  // namespace

TEST_CASE("a failing If-Match gets 412 and the connection stays", "[e2e][serve][net]") {
  served_site s;
  CHECK(s.curl("-H 'If-Match: \"nope\"'", "/hello.txt") == "412 Precondition Failed\n 412");
  CHECK(s.curl("-H 'If-Match: *'", "/hello.txt") == "hello 200");
  client c(s.server.port());
  const auto tag = c.request(request("GET /hello.txt HTTP/1.1")).field("ETag").value_or("");
  REQUIRE(tag.size() == 34);
  CHECK(s.curl("-H 'If-Match: " + tag + "'", "/hello.txt") == "hello 200");
  CHECK(s.curl("-H 'If-Match: W/" + tag + "'", "/hello.txt") == "412 Precondition Failed\n 412");
  // No modification dates in the archive: If-Unmodified-Since is ignored (RFC 9110 §13.1.4).
  CHECK(s.curl("-H 'If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT'", "/hello.txt") ==
        "hello 200");

  const auto refused = c.request(request("GET /hello.txt HTTP/1.1", "If-Match: \"nope\"\r\n"));
  CHECK(refused.status_line == "HTTP/1.1 412 Precondition Failed");
  CHECK_FALSE(refused.has("Connection"));
  const auto headed =
      c.request(request("HEAD /hello.txt HTTP/1.1", "If-Match: \"nope\"\r\n"), true);
  CHECK(headed.status == 412);
  CHECK(headed.body.empty());
  CHECK(c.request(request("GET /hello.txt HTTP/1.1")).body == "hello");
}

TEST_CASE("HTTP/1.2 is answered as HTTP/1.1, HTTP/2.0 and HTTP/0.9 get 505 and a close",
          "[e2e][serve][net]") {
  served_site s;
  {
    client c(s.server.port());
    const auto got = c.request(request("GET / HTTP/1.2"));
    CHECK(got.status_line == "HTTP/1.1 200 OK");
    CHECK(got.body == "home");
    CHECK_FALSE(got.has("Connection"));  // kept, as for 1.1
    CHECK(c.request(request("GET /hello.txt HTTP/1.9")).body == "hello");
  }
  for (const char* line : {"GET / HTTP/2.0", "GET / HTTP/3.0", "GET / HTTP/0.9"}) {
    INFO(line);
    client c(s.server.port());
    // A request behind the refused one is never answered.
    c.send(request(line) + request("GET /hello.txt HTTP/1.1"));
    const auto got = c.read_response();
    CHECK(got.status_line == "HTTP/1.1 505 HTTP Version Not Supported");
    CHECK(got.field("Connection") == "close");
    REQUIRE(c.closed_within(10s));
    CHECK(c.buffered().empty());
  }
}

TEST_CASE("unknown methods get 501, known ones 405 with Allow, and the connection stays",
          "[e2e][serve][net]") {
  served_site s;
  client c(s.server.port());
  for (const char* method : {"FOO", "get", "BREW"}) {
    INFO(method);
    const auto got = c.request(request(std::string(method) + " / HTTP/1.1"));
    CHECK(got.status_line == "HTTP/1.1 501 Not Implemented");
    CHECK_FALSE(got.has("Allow"));
    CHECK_FALSE(got.has("Connection"));
  }
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND"}) {
    INFO(method);
    const auto got = c.request(request(std::string(method) + " / HTTP/1.1"));
    CHECK(got.status_line == "HTTP/1.1 405 Method Not Allowed");
    CHECK(got.field("Allow") == "GET, HEAD");
  }
  CHECK(c.request(request("GET /hello.txt HTTP/1.1")).body == "hello");
  CHECK(s.curl("-X FOO", "/") == "501 Not Implemented\n 501");
}

TEST_CASE("a request-target past the limit gets 414 and a close, long fields still 431",
          "[e2e][serve][net]") {
  served_site s;
  {
    client c(s.server.port());
    c.send(request("GET /" + std::string(20 * 1024, 'a') + " HTTP/1.1"));
    const auto got = c.read_response();
    CHECK(got.status_line == "HTTP/1.1 414 URI Too Long");
    CHECK(got.field("Connection") == "close");
    REQUIRE(c.closed_within(10s));
  }
  {
    client c(s.server.port());
    const auto got =
        c.request(request("GET / HTTP/1.1", "X-Big: " + std::string(20 * 1024, 'a') + "\r\n"));
    CHECK(got.status == 431);
    REQUIRE(c.closed_within(10s));
  }
  CHECK(s.curl("-o /dev/null", "/" + std::string(20 * 1024, 'a')) == " 414");
  // Within a raised limit but past what a lookup path can hold: 414 too.
  served_site raised({"--header-limit", "32768"});
  client c(raised.server.port());
  const auto got = c.request(request("GET /" + std::string(20 * 1024, 'a') + " HTTP/1.1"));
  CHECK(got.status == 414);
  CHECK(got.field("Connection") == "close");
}
