// End-to-end tests of `kawipiko serve`: the real binary on 127.0.0.1 with an ephemeral port,
// answering a fixture archive to raw sockets (pipelining, malformed requests, slow clients) and
// to curl; its limits, timeouts, signals, processes and threads, and its errors.

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "archive/compress.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
namespace archive = kawipiko::archive;
using kawipiko::test::client;
using kawipiko::test::compressible_text;
using kawipiko::test::count_lines;
using kawipiko::test::http_response;
using kawipiko::test::parse_byteranges;
using kawipiko::test::read_file;
using kawipiko::test::run;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::temp_folder;
using namespace std::chrono_literals;

namespace {

const std::string binary = KAWIPIKO_BINARY;

std::string random_bytes(std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string bytes(size, '\0');
  for (auto& b : bytes) b = static_cast<char>(random() & 0xff);
  return bytes;
}

const std::string page = compressible_text(20000);  // index.html: identity, gzip and br
const std::string data = random_bytes(1000, 7);     // data.bin: identity only

// A small site archived by the real binary.
struct site {
  temp_folder folder;
  fs::path archive = folder / "site.cdb";

  site() {
    folder.write("src/index.html", page);
    folder.write("src/hello.txt", "hello");
    folder.write("src/data.bin", data);
    folder.write("src/docs/index.html", "docs index");
    folder.write("src/about.html", "about");
    folder.write("src/app/_wildcard.html", "wildcard");
    folder.write("src/private/_404.html", "custom not found");
    folder.write("src/sp ace/index.html", "space");
    const auto result =
        run(binary + " archive --quiet --sources " + shell_quoted(folder / "src") + " --archive " + shell_quoted(archive),
            folder.path());
    INFO(result.err);
    REQUIRE(result.exit_code == 0);
  }
};

std::vector<std::string> serve_args(const fs::path& archive,
                                    const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"serve", "--archive", archive.string(), "--bind", "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string request(std::string_view target, std::string_view fields = {},
                    std::string_view method = "GET") {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         std::string(fields) + "\r\n";
}

// curl with a bound on its run time; `args` are shell words.
kawipiko::test::command_result curl(const std::string& args, const temp_folder& scratch) {
  return run("curl -sS --max-time 10 " + args, scratch.path());
}

std::string url(const server_process& server, std::string_view target) {
  return "'http://127.0.0.1:" + std::to_string(server.port()) + std::string(target) + "'";
}

// Waits (keeping what still comes) for the server to end the connection; fails the test if it
// does not within the bound.
void require_closed(client& c) {
  REQUIRE(c.closed_within(10s));
}

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7).
bool is_imf_fixdate(const std::string& value) {
  static constexpr std::string_view days = "Mon,Tue,Wed,Thu,Fri,Sat,Sun,";
  static constexpr std::string_view months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec ";
  if (value.size() != 29) return false;
  const std::string shape = "ddd, 00 mmm 0000 00:00:00 GMT";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const char c = value[i];
    if (shape[i] == '0' && (c < '0' || c > '9')) return false;
    if (shape[i] != '0' && shape[i] != 'd' && shape[i] != 'm' && shape[i] != c) return false;
  }
  return days.find(value.substr(0, 4)) % 4 == 0 && months.find(value.substr(8, 4)) % 4 == 0;
}

}  // namespace

TEST_CASE("serve announces its address on one line and answers GET and HEAD", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  CHECK(server.startup_line().rfind("kawipiko serve: serving '", 0) == 0);
  CHECK(server.startup_line().find(" with 1 process x 1 thread on http://127.0.0.1:") !=
        std::string::npos);

  client c(server.port());
  const auto got = c.request(request("/hello.txt"));
  CHECK(got.status_line == "HTTP/1.1 200 OK");
  CHECK(got.body == "hello");
  CHECK(got.field("Content-Length") == "5");
  CHECK(got.field("Content-Type") == "text/plain; charset=utf-8");
  CHECK(got.field("Cache-Control") == "public, immutable, max-age=3600");
  CHECK(got.field("Accept-Ranges") == "bytes");
  CHECK(got.field("ETag") == "\"2cf24dba5fb0a30e26e83b2ac5b9e29e\"");
  CHECK(got.field("X-Content-Type-Options") == "nosniff");
  CHECK(got.field("Referrer-Policy") == "strict-origin-when-cross-origin");
  CHECK(got.field("X-Frame-Options") == "SAMEORIGIN");
  CHECK_FALSE(got.has("Server"));
  CHECK_FALSE(got.has("Vary"));
  CHECK_FALSE(got.has("Connection"));
  CHECK(is_imf_fixdate(got.field("Date").value_or("")));
  CHECK(got.count("Date") == 1);

  // HEAD: GET's header, full Content-Length, no body; the next answer on the connection is
  // whole, which it would not be if body bytes had followed the HEAD answer.
  const auto full = c.request(request("/"));
  const auto headed = c.request(request("/", {}, "HEAD"), true);
  CHECK(headed.status == 200);
  CHECK(headed.head_without_date() == full.head_without_date());
  CHECK(headed.field("Content-Length") == "20000");
  CHECK(c.request(request("/hello.txt")).body == "hello");
  CHECK(c.buffered().empty());

  temp_folder scratch;
  const auto body = curl("-o " + shell_quoted(scratch / "page") + " " + url(server, "/"), scratch);
  CHECK(body.exit_code == 0);
  CHECK(read_file(scratch / "page") == page);
  const auto heads = curl("-I " + url(server, "/index.html"), scratch);
  CHECK(heads.exit_code == 0);
  CHECK(heads.out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(heads.out.find("Content-Length: 20000\r\n") != std::string::npos);

  CHECK(server.stop() == 0);
  CHECK(server.errors().empty());  // nothing logged per request without --debug
}

TEST_CASE("other methods get 405 with Allow and the connection stays usable", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"}) {
    INFO(method);
    const auto refused = c.request(request("/hello.txt", "Content-Length: 0\r\n", method));
    CHECK(refused.status == 405);
    CHECK(refused.field("Allow") == "GET, HEAD");
    CHECK_FALSE(refused.has("Connection"));
    CHECK(c.request(request("/hello.txt")).body == "hello");
  }
  temp_folder scratch;
  const auto result = curl("-o /dev/null -w '%{http_code}' -X DELETE " + url(server, "/"), scratch);
  CHECK(result.out == "405");
}

TEST_CASE("targets: absolute-form, query, percent-decoding, dot segments and // are served",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  for (const char* target :
       {"/hello.txt", "http://127.0.0.1/hello.txt", "HTTP://example.com:80/hello.txt?x=1",
        "/hello.txt?a=b&c", "/hell%6F%2etxt", "/docs/../hello.txt", "/./hello.txt", "//hello.txt",
        "/a//b/../..//hello.txt", "/../../../hello.txt", "/%2E%2E/hello.txt"}) {
    INFO(target);
    const auto got = c.request(request(target));
    CHECK(got.status == 200);
    CHECK(got.body == "hello");
  }
  temp_folder scratch;
  const auto result = curl("--path-as-is " + url(server, "/docs/../hello.txt?q"), scratch);
  CHECK(result.out == "hello");
}

TEST_CASE("targets with NUL, bad escapes or control characters get 400 and a close",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  for (const std::string target : {"/%00", "/hello.txt%00", "/hello%zz", "/hello%4", "/a%0Db",
                                   "/a%1fb", "/a\x01z", "/a\x7fz", "*", "hello.txt"}) {
    INFO(target);
    client c(server.port());
    const auto got = c.request(request(target));
    CHECK(got.status == 400);
    CHECK(got.field("Connection") == "close");
    require_closed(c);
  }
  client c(server.port());
  CHECK(c.request(request("/hello.txt")).status == 200);  // the server goes on
}

TEST_CASE("lookup: index, alias, slash redirects, wildcard, _404 page and built-in 404",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  CHECK(c.request(request("/")).body == page);
  CHECK(c.request(request("/docs/")).body == "docs index");
  CHECK(c.request(request("/about")).body == "about");

  struct redirect {
    const char* target;
    const char* location;
  };
  for (const auto& [target, location] : {
           redirect{"/docs", "/docs/"},
           redirect{"/docs?x=1&y=%20", "/docs/?x=1&y=%20"},
           redirect{"/docs/index.html/?v=2", "/docs/index.html?v=2"},
           redirect{"/about.html/", "/about.html"},
           redirect{"/sp%20ace", "/sp%20ace/"},
       }) {
    INFO(target);
    const auto got = c.request(request(target));
    CHECK(got.status == 308);
    CHECK(got.field("Location") == location);
    CHECK(got.field("Content-Length") == "0");
    CHECK(got.body.empty());
  }

  const auto wild = c.request(request("/app/some/deep/route"));
  CHECK(wild.status == 200);
  CHECK(wild.body == "wildcard");
  const auto custom = c.request(request("/private/missing.html"));
  CHECK(custom.status_line == "HTTP/1.1 404 Not Found");
  CHECK(custom.body == "custom not found");
  CHECK(custom.field("Content-Type") == "text/html; charset=utf-8");
  const auto builtin = c.request(request("/no/such/thing"));
  CHECK(builtin.status == 404);
  CHECK(builtin.body == "404 Not Found\n");
  CHECK(c.request(request("/hello.txt")).status == 200);  // 404s keep the connection

  temp_folder scratch;
  const auto followed = curl("-L " + url(server, "/sp%20ace?k=v"), scratch);
  CHECK(followed.exit_code == 0);
  CHECK(followed.out == "space");
  const auto code =
      curl("-o /dev/null -w '%{http_code} %{redirect_url}' " + url(server, "/docs?a"), scratch);
  CHECK(code.out == "308 http://127.0.0.1:" + std::to_string(server.port()) + "/docs/?a");
}

TEST_CASE("the security headers go with --security-headers-disable", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--security-headers-disable"}));
  client c(server.port());
  for (const char* target : {"/hello.txt", "/docs", "/nothing"}) {
    INFO(target);
    const auto got = c.request(request(target));
    CHECK_FALSE(got.has("X-Content-Type-Options"));
    CHECK_FALSE(got.has("Referrer-Policy"));
    CHECK_FALSE(got.has("X-Frame-Options"));
    CHECK_FALSE(got.has("Server"));
    CHECK(got.has("Date"));
  }
}

TEST_CASE("Vary: Accept-Encoding on 200, 206 and 304 of a multi-variant resource only",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  const auto identity = c.request(request("/"));
  const auto br = c.request(request("/", "Accept-Encoding: br\r\n"));
  REQUIRE(identity.field("ETag"));
  for (const auto& [text, status] : std::vector<std::pair<std::string, unsigned>>{
           {request("/"), 200},
           {request("/", "Accept-Encoding: gzip\r\n"), 200},
           {request("/", "Range: bytes=0-9\r\n"), 206},
           {request("/", "Accept-Encoding: br\r\nRange: bytes=0-9,20-29\r\n"), 206},
           {request("/", "If-None-Match: " + *identity.field("ETag") + "\r\n"), 304},
           {request("/", "Accept-Encoding: br\r\nIf-None-Match: " + *br.field("ETag") + "\r\n"),
            304},
       }) {
    INFO(text);
    const auto got = c.request(text);
    CHECK(got.status == status);
    CHECK(got.field("Vary") == "Accept-Encoding");
  }
  const auto hello = c.request(request("/hello.txt", "Accept-Encoding: br, gzip\r\n"));
  for (const auto& text :
       {request("/hello.txt"), request("/hello.txt", "Range: bytes=0-1\r\n"),
        request("/hello.txt", "If-None-Match: " + hello.field("ETag").value_or("") + "\r\n")}) {
    INFO(text);
    CHECK_FALSE(c.request(text).has("Vary"));
  }
}

TEST_CASE("Accept-Encoding q-values pick the variant and the bytes decode to the content",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  struct expectation {
    const char* field;  // nullptr: no Accept-Encoding
    const char* coding;
  };
  for (const auto& [field, coding] : {
           expectation{nullptr, "identity"},
           expectation{"gzip", "gzip"},
           expectation{"br", "br"},
           expectation{"gzip, deflate, br", "br"},
           expectation{"gzip;q=1.0, br;q=1.0, identity;q=1.0", "br"},
           expectation{"br;q=0.8, gzip;q=0.9", "gzip"},
           expectation{"br;q=0, gzip", "gzip"},
           expectation{"br;q=0, gzip;q=0", "identity"},
           expectation{"*", "br"},
           expectation{"*;q=0.1, identity;q=0.5", "identity"},
           expectation{"deflate, zstd", "identity"},
       }) {
    INFO((field ? field : "(none)"));
    const auto got = c.request(
        request("/", field ? "Accept-Encoding: " + std::string(field) + "\r\n" : std::string()));
    REQUIRE(got.status == 200);
    if (std::string(coding) == "identity") {
      CHECK_FALSE(got.has("Content-Encoding"));
      CHECK(got.body == page);
      continue;
    }
    CHECK(got.field("Content-Encoding") == coding);
    const auto codec =
        std::string(coding) == "br" ? archive::encoding::br : archive::encoding::gzip;
    const auto decoded = archive::decompress(codec, got.body, page.size());
    REQUIRE(decoded);
    CHECK(*decoded == page);
  }

  temp_folder scratch;
  for (const char* accept : {"br", "gzip"}) {
    INFO(accept);
    const auto result =
        curl("--compressed -H 'Accept-Encoding: " + std::string(accept) + "' -D " +
                 shell_quoted(scratch / "head") + " -o " + shell_quoted(scratch / "body") + " " + url(server, "/"),
             scratch);
    CHECK(result.exit_code == 0);
    CHECK(read_file(scratch / "head").find("Content-Encoding: " + std::string(accept) + "\r\n") !=
          std::string::npos);
    CHECK(read_file(scratch / "body") == page);
  }
}

TEST_CASE("If-None-Match gives 304 with the validators and no body", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  const auto tag = c.request(request("/hello.txt")).field("ETag").value_or("");
  REQUIRE(tag.size() == 34);
  for (const std::string& value :
       {tag, "W/" + tag, "\"a\", " + tag + ", \"b\"", "W/\"x\",W/" + tag, std::string("*")}) {
    INFO(value);
    for (const char* method : {"GET", "HEAD"}) {
      const auto got =
          c.request(request("/hello.txt", "If-None-Match: " + value + "\r\n", method), true);
      CHECK(got.status_line == "HTTP/1.1 304 Not Modified");
      CHECK(got.field("ETag") == tag);
      CHECK(got.field("Cache-Control") == "public, immutable, max-age=3600");
      CHECK(got.has("Date"));
      CHECK_FALSE(got.has("Content-Length"));
    }
  }
  CHECK(c.buffered().empty());  // no body bytes after any 304
  CHECK(c.request(request("/hello.txt", "If-None-Match: \"other\"\r\n")).status == 200);
  temp_folder scratch;
  const auto result = curl(
      "-o /dev/null -w '%{http_code}' -H 'If-None-Match: " + tag + "' " + url(server, "/hello.txt"),
      scratch);
  CHECK(result.out == "304");
}

TEST_CASE("single ranges, coalesced ranges, too many ranges and unsatisfiable ranges",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  struct expectation {
    const char* range;
    std::size_t first, last;
  };
  for (const auto& [range, first, last] : {
           expectation{"bytes=0-9", 0, 9},
           expectation{"bytes=900-", 900, 999},
           expectation{"bytes=-100", 900, 999},
           expectation{"bytes=10-20,15-30", 10, 30},
           expectation{"bytes=10-20,21-30", 10, 30},
       }) {
    INFO(range);
    const auto got = c.request(request("/data.bin", "Range: " + std::string(range) + "\r\n"));
    CHECK(got.status == 206);
    CHECK(got.field("Content-Range") ==
          "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/1000");
    CHECK(got.body == data.substr(first, last - first + 1));
  }

  std::string seventeen = "bytes=";
  for (std::size_t i = 0; i < 17; ++i) {
    seventeen += (i ? "," : "") + std::to_string(i * 20) + "-" + std::to_string(i * 20 + 9);
  }
  const auto whole = c.request(request("/data.bin", "Range: " + seventeen + "\r\n"));
  CHECK(whole.status == 200);
  CHECK(whole.body == data);

  for (const char* range : {"bytes=1000-", "bytes=2000-3000,1500-"}) {
    INFO(range);
    const auto refused = c.request(request("/data.bin", "Range: " + std::string(range) + "\r\n"));
    CHECK(refused.status_line == "HTTP/1.1 416 Range Not Satisfiable");
    CHECK(refused.field("Content-Range") == "bytes */1000");
    CHECK(refused.body.empty());
  }
  CHECK(c.request(request("/hello.txt")).body == "hello");  // the connection went on

  temp_folder scratch;
  const auto result = curl("-r 100-199 " + url(server, "/data.bin"), scratch);
  CHECK(result.out == data.substr(100, 100));
}

TEST_CASE("several ranges come back as multipart/byteranges with an exact length",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  std::string sixteen = "bytes=";
  std::vector<std::pair<std::size_t, std::size_t>> want;
  for (std::size_t i = 0; i < 16; ++i) {
    sixteen += (i ? ", " : "") + std::to_string(i * 50 + 5) + "-" + std::to_string(i * 50 + 9);
    want.emplace_back(i * 50 + 5, i * 50 + 9);
  }
  for (const auto& [range, parts] :
       std::vector<std::pair<std::string, std::vector<std::pair<std::size_t, std::size_t>>>>{
           {"bytes=0-1,10-12", {{0, 1}, {10, 12}}},
           {"bytes=-10,500-599,0-0", {{0, 0}, {500, 599}, {990, 999}}},
           {"bytes=0-3,2-5,100-", {{0, 5}, {100, 999}}},
           {sixteen, want},
       }) {
    INFO(range);
    // The client's reader takes exactly Content-Length bytes: a wrong length would leave bytes
    // behind or swallow the next answer's.
    const auto got = c.request(request("/data.bin", "Range: " + range + "\r\n"));
    REQUIRE(got.status == 206);
    const auto type = got.field("Content-Type").value_or("");
    const std::string prefix = "multipart/byteranges; boundary=";
    REQUIRE(type.rfind(prefix, 0) == 0);
    std::vector<kawipiko::test::byterange_part> found;
    REQUIRE_NOTHROW(found = parse_byteranges(got.body, type.substr(prefix.size())));
    REQUIRE(found.size() == parts.size());
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const auto [first, last] = parts[i];
      CHECK(found[i].content_type == "application/octet-stream");
      CHECK(found[i].content_range ==
            "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/1000");
      CHECK(found[i].data == data.substr(first, last - first + 1));
    }
    CHECK(c.request(request("/hello.txt")).body == "hello");
  }

  temp_folder scratch;
  const auto result =
      curl("-r 0-1,10-12 -D " + shell_quoted(scratch / "head") + " " + url(server, "/data.bin"), scratch);
  CHECK(result.exit_code == 0);
  CHECK(read_file(scratch / "head").find("multipart/byteranges") != std::string::npos);
}

TEST_CASE("If-Range with the strong ETag gives the part and a mismatch, weak tag or date the whole",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  const auto tag = c.request(request("/data.bin")).field("ETag").value_or("");
  REQUIRE(!tag.empty());
  const auto part =
      c.request(request("/data.bin", "Range: bytes=0-9\r\nIf-Range: " + tag + "\r\n"));
  CHECK(part.status == 206);
  CHECK(part.body == data.substr(0, 10));
  for (const std::string& value :
       {std::string("\"other\""), "W/" + tag, std::string("Sun, 06 Nov 1994 08:49:37 GMT")}) {
    INFO(value);
    const auto whole =
        c.request(request("/data.bin", "Range: bytes=0-9\r\nIf-Range: " + value + "\r\n"));
    CHECK(whole.status == 200);
    CHECK(whole.body == data);
  }
}

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
    require_closed(c);
  }
  {
    client c(server.port());
    const auto got = c.request(request("/hello.txt", "Connection: close\r\n"));
    CHECK(got.field("Connection") == "close");
    CHECK(got.body == "hello");
    require_closed(c);
    CHECK(c.buffered().empty());
  }
  temp_folder scratch;
  const auto result =
      curl("--http1.0 -D " + shell_quoted(scratch / "head") + " " + url(server, "/hello.txt"), scratch);
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
      CHECK(got.body == data.substr(i, 1));
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
    require_closed(c);
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
        CHECK(c.read_response().body == page);
      } else if (i % 3 == 0) {
        const auto got = c.read_response(true);
        CHECK(got.field("Content-Length") == "5");
      } else {
        CHECK(c.read_response().body == data.substr(static_cast<std::size_t>(i), 1));
      }
    }
    CHECK(c.buffered().empty());
  }
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
    require_closed(c);
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

TEST_CASE("bodies, Transfer-Encoding, duplicate lengths and a missing Host are refused",
          "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  struct expectation {
    const char* bytes;
    unsigned status;
  };
  for (const auto& [bytes, status] : {
           expectation{"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                       413},
           expectation{"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413},
           expectation{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n0\r\n\r\n",
                       400},
           expectation{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                       400},
           expectation{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       "Content-Length: 5\r\n\r\n0\r\n\r\n",
                       400},
           expectation{
               "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400},
           expectation{"GET /hello.txt HTTP/1.1\r\n\r\n", 400},
           expectation{"GET /hello.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
           expectation{"GET /hello.txt HTTP/2.0\r\nHost: x\r\n\r\n", 400},
       }) {
    INFO(bytes);
    client c(server.port());
    // A smuggled request behind the refused one must never be answered.
    c.send(std::string(bytes) + "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto got = c.read_response();
    CHECK(got.status == status);
    CHECK(got.field("Connection") == "close");
    require_closed(c);
    CHECK(c.buffered().empty());
  }
}

TEST_CASE("an HTTP/0.9-style request line is refused", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  client c(server.port());
  c.send("GET /hello.txt\r\n");
  require_closed(c);
  // Either nothing or a 400, never the file (HTTP/0.9 had no header).
  if (!c.buffered().empty()) {
    CHECK(c.buffered().rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  }
  CHECK(c.buffered().find("hello") == std::string::npos);
}

TEST_CASE("a client that sends half a header is dropped after --header-timeout",
          "[e2e][serve][net][slow]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--header-timeout", "1"}));
  client slow(server.port());
  slow.send("GET /hello.txt HTTP/1.1\r\nHost: 127.");
  // The default header timeout (10 s) would not close it within this bound.
  CHECK(slow.closed_within(8s));
  CHECK(slow.buffered().find("hello") == std::string::npos);
  client other(server.port());
  CHECK(other.request(request("/hello.txt")).status == 200);
}

TEST_CASE("an idle keep-alive connection is closed after --idle-timeout",
          "[e2e][serve][net][slow]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--idle-timeout", "1"}));
  client c(server.port());
  CHECK(c.request(request("/hello.txt")).status == 200);
  CHECK(c.closed_within(8s));
  client silent(server.port());  // never sends a byte
  CHECK(silent.closed_within(8s));
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
  CHECK(slow.buffered().find("hello") == std::string::npos);
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
    CHECK(c.read_response().body == data.substr(5, 2));
    require_closed(c);
  }
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
      if (c.read_response().body != page) break;
      ++answered;
    }
  } catch (const std::runtime_error&) {
    // cut short: the connection was closed
  }
  CHECK(answered < 1000);
  CHECK(c.closed_within(10s));
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
    require_closed(c);
  }
  {
    client c(server.port());  // pipelined: the requests past the cap are not answered
    std::string batch;
    for (int i = 0; i < 5; ++i) batch += request("/hello.txt");
    c.send(batch);
    for (int i = 0; i < 3; ++i) CHECK(c.read_response().body == "hello");
    require_closed(c);
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
    bool server_closes;  // else the client reads its answer and goes away first
  };
  for (const auto& [bytes, server_closes] : std::vector<ending>{
           {request("/hello.txt", "Connection: close\r\n"), true},
           {request("/%00"), true},
           {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", true},
           {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", true},
           {request("/hello.txt", "X-Big: " + std::string(17 * 1024, 'a') + "\r\n"), true},
           {"GET /hello.txt HTTP/1.0\r\n\r\n", true},
           {"\x16\x03\x01garbage\r\n\r\n", true},
           {request("/hello.txt"), false},
       }) {
    INFO(bytes.substr(0, 40));
    REQUIRE(served_soon());
    client c(server.port());
    c.send(bytes);
    if (server_closes) {
      CHECK(c.closed_within(10s));
    } else {
      CHECK(c.read_response().status == 200);
    }
  }
  CHECK(served_soon());
}

TEST_CASE("SIGTERM and SIGINT with an idle keep-alive connection exit 0", "[e2e][serve][net]") {
  site s;
  for (const int signal : {SIGTERM, SIGINT}) {
    INFO(signal);
    server_process server(binary, serve_args(s.archive));
    client c(server.port());
    CHECK(c.request(request("/hello.txt")).status == 200);
    CHECK(server.stop(signal) == 0);  // -1 if it had to be killed after 10 s
    CHECK(c.closed_within(2s));
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
  CHECK(c.read_response().body == page);  // the server is busy with this connection now
  REQUIRE(::kill(server.pid(), SIGTERM) == 0);
  std::size_t answered = 1;
  http_response last;
  while (true) {
    last = c.read_response();  // throws on a cut answer
    CHECK(last.body == page);
    ++answered;
    if (last.has("Connection") || answered == 1000) break;
  }
  CHECK(answered < 1000);
  CHECK(last.field("Connection") == "close");
  CHECK(c.closed_within(10s));
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
  CHECK(c.read_response().body == page);
  // The write timeout (30 s) is far; the grace alone must end the wait.
  CHECK(server.stop(SIGTERM, 8s) == 0);
}

// Sends 50 requests over separate connections; the number answered with 200.
std::size_t serve_fifty(const server_process& server) {
  std::size_t ok = 0;
  for (int i = 0; i < 50; ++i) {
    client c(server.port());
    ok += c.request(request(i % 2 ? "/hello.txt" : "/data.bin")).status == 200 ? 1u : 0u;
  }
  return ok;
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

TEST_CASE("a corrupt record gives 500 for its path and a log line while the rest is served",
          "[e2e][serve][net][corrupt]") {
  site s;
  std::string image = read_file(s.archive);
  const auto at = image.find("/hello.txt200 1\n");
  REQUIRE(at != std::string::npos);
  image.replace(at + 10, 5, "2x0 1");  // the entry's head line
  const auto damaged = s.folder.write("damaged.cdb", image);

  for (const auto& mode : {std::vector<std::string>{}, std::vector<std::string>{"--index-all"},
                           std::vector<std::string>{"--archive-inmem", "--archive-preload"}}) {
    INFO((mode.empty() ? "mmap" : mode[0]));
    server_process server(binary, serve_args(damaged, mode));
    client c(server.port());
    const auto bad = c.request(request("/hello.txt"));
    CHECK(bad.status_line == "HTTP/1.1 500 Internal Server Error");
    CHECK(c.request(request("/hello")).body == "hello");  // the alias has its own record
    CHECK(c.request(request("/")).body == page);
    CHECK(c.request(request("/hello.txt?again")).status == 500);
    CHECK(server.stop() == 0);
    const auto log = server.errors();
    CHECK(count_lines(log, "kawipiko serve: error: corrupt archive record for '/hello.txt") == 2);
  }
}

TEST_CASE("a file that is not a kawipiko archive is refused with one line and exit 1",
          "[e2e][serve][errors]") {
  temp_folder scratch;
  const auto junk = scratch.write("junk.cdb", "this is not a cdb file at all");
  const auto foreign = scratch / "foreign.cdb";
  REQUIRE(
      run("{ printf '+1,1:a->b\\n\\n' | cdb -c " + shell_quoted(foreign) + "; }", scratch.path()).exit_code ==
      0);
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

TEST_CASE("with --debug each request is logged on one line", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--debug"}));
  client c(server.port());
  CHECK(c.request(request("/hello.txt")).status == 200);
  const auto br = c.request(request("/", "Accept-Encoding: br\r\n"));
  CHECK(c.request(request("/nothing")).status == 404);
  CHECK(c.request(request("/docs", {}, "HEAD"), true).status == 308);
  CHECK(c.request(request("/data.bin", "Range: bytes=0-9\r\n")).status == 206);
  CHECK(server.stop() == 0);
  const auto log = server.errors();
  INFO(log);
  CHECK(count_lines(log, "[debug] ") == 5);
  const std::vector<std::string> expected = {
      "GET /hello.txt 200 identity 5 ", "GET / 200 br " + std::to_string(br.body.size()) + " ",
      "GET /nothing 404 identity 14 ",  "HEAD /docs 308 identity 0 ",
      "GET /data.bin 206 identity 10 ",
  };
  // "[debug] <method> <target> <status> <variant> <bytes> <n>us", in request order.
  std::vector<std::string> lines;
  for (std::size_t at = 0; (at = log.find("[debug] ", at)) != std::string::npos;) {
    const auto end = log.find('\n', at);
    lines.push_back(log.substr(at + 8, end - at - 8));
    at = end;
  }
  REQUIRE(lines.size() == expected.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    INFO(lines[i]);
    REQUIRE(lines[i].rfind(expected[i], 0) == 0);
    const auto micros = lines[i].substr(expected[i].size());
    CHECK(micros.size() > 2);
    CHECK(micros.ends_with("us"));
    CHECK(micros.find_first_not_of("0123456789") == micros.size() - 2);
  }
}
