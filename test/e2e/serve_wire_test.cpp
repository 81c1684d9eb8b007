// End-to-end tests of what `kawipiko serve` puts on the wire that the handler's unit tests
// (test/serve/handler_test.cpp) cannot see: the start-up line, answers reaching raw sockets and
// curl intact (HEAD, redirects, compressed variants), answers too big for one write, the options
// that reach the handler, and the log lines. HTTP semantics are asserted there, as a function.

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using kawipiko::test::client;
using kawipiko::test::count_lines;
using kawipiko::test::curl;
using kawipiko::test::parse_byteranges;
using kawipiko::test::random_bytes;
using kawipiko::test::read_file;
using kawipiko::test::request;
using kawipiko::test::run;
using kawipiko::test::serve_args;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::site;
using kawipiko::test::temp_folder;
using kawipiko::test::url;

namespace {

const std::string binary = KAWIPIKO_BINARY;

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

// "bytes=a-b, c-d, ...": 16 ranges of 64 KiB spread over `size` bytes, shifted by `shift`.
std::string sixteen_ranges(std::size_t size, std::size_t shift) {
  std::string ranges = "bytes=";
  for (std::size_t i = 0; i < 16; ++i) {
    const std::size_t first = i * (size / 16) + shift;
    ranges += (i ? ", " : "") + std::to_string(first) + "-" + std::to_string(first + 65535);
  }
  return ranges;
}

}  // namespace

TEST_CASE("serve announces its address on one line, and its answers reach raw clients and curl",
          "[e2e][serve][net]") {
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
  CHECK(is_imf_fixdate(got.field("Date").value_or("")));  // the worker's clock, not a fixture's
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
  CHECK(read_file(scratch / "page") == s.page);
  const auto heads = curl("-I " + url(server, "/index.html"), scratch);
  CHECK(heads.exit_code == 0);
  CHECK(heads.out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(heads.out.find("Content-Length: 20000\r\n") != std::string::npos);

  CHECK(server.stop() == 0);
  CHECK(server.errors().empty());  // nothing logged per request without --debug
}

TEST_CASE("curl follows the redirects and decodes the br and gzip variants", "[e2e][serve][net]") {
  site s;
  server_process server(binary, serve_args(s.archive));
  temp_folder scratch;
  const auto followed = curl("-L " + url(server, "/sp%20ace?k=v"), scratch);
  CHECK(followed.exit_code == 0);
  CHECK(followed.out == "space");
  const auto code =
      curl("-o /dev/null -w '%{http_code} %{redirect_url}' " + url(server, "/docs?a"), scratch);
  CHECK(code.out == "308 http://127.0.0.1:" + std::to_string(server.port()) + "/docs/?a");

  for (const std::string accept : {"br", "gzip"}) {
    INFO(accept);
    const auto result = curl("--compressed -H 'Accept-Encoding: " + accept + "' -D " +
                                 shell_quoted(scratch / "head") + " -o " +
                                 shell_quoted(scratch / "body") + " " + url(server, "/"),
                             scratch);
    CHECK(result.exit_code == 0);
    CHECK(read_file(scratch / "head").find("Content-Encoding: " + accept + "\r\n") !=
          std::string::npos);
    CHECK(read_file(scratch / "body") == s.page);
  }
}

TEST_CASE("answers too big for one write arrive whole: large bodies and multipart ranges",
          "[e2e][serve][net]") {
  // 2 MiB of random bytes, stored as they are. Each batch of answers (four of them, 6 MiB) is far
  // more than a fresh connection's socket buffers take at once, so the server's writes are cut
  // short and resumed, in the middle of a multipart answer's made-up lines too (of which it must
  // keep a copy).
  temp_folder folder;
  const std::string big = random_bytes(2 << 20, 11);
  folder.write("src/big.bin", big);
  const auto archive = folder / "site.cdb";
  REQUIRE(run(binary + " archive --quiet --compress identity --sources " +
                  shell_quoted(folder / "src") + " --archive " + shell_quoted(archive),
              folder.path())
              .exit_code == 0);
  server_process server(binary, serve_args(archive));

  client c(server.port());
  std::string batch;
  for (std::size_t i = 0; i < 6; ++i) {
    batch += request("/big.bin");
    batch += request("/big.bin", "Range: " + sixteen_ranges(big.size(), i * 1000) + "\r\n");
  }
  c.send(batch);  // about 30 MB of answers pile up before the first is read
  for (std::size_t i = 0; i < 6; ++i) {
    INFO(i);
    CHECK(c.read_response().body == big);
    const auto ranged = c.read_response();
    REQUIRE(ranged.status == 206);
    const auto type = ranged.field("Content-Type").value_or("");
    const std::string prefix = "multipart/byteranges; boundary=";
    REQUIRE(type.rfind(prefix, 0) == 0);
    std::vector<kawipiko::test::byterange_part> parts;
    REQUIRE_NOTHROW(parts = parse_byteranges(ranged.body, type.substr(prefix.size())));
    REQUIRE(parts.size() == 16);
    for (std::size_t k = 0; k < 16; ++k) {
      const std::size_t first = k * (big.size() / 16) + i * 1000;
      CHECK(parts[k].data == big.substr(first, 65536));
    }
  }
  CHECK(c.buffered().empty());

  temp_folder scratch;
  const auto result =
      curl("-o " + shell_quoted(scratch / "big") + " " + url(server, "/big.bin"), scratch);
  CHECK(result.exit_code == 0);
  CHECK(read_file(scratch / "big") == big);
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

TEST_CASE("a corrupt record gives 500 for its path and a log line while the rest is served",
          "[e2e][serve][net][corrupt]") {
  site s;
  std::string image = read_file(s.archive);
  const auto at = image.find("/hello.txt200 1 00\n");
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
    CHECK(c.request(request("/")).body == s.page);
    CHECK(c.request(request("/hello.txt?again")).status == 500);
    CHECK(server.stop() == 0);
    const auto log = server.errors();
    CHECK(count_lines(log, "kawipiko serve: error: corrupt archive record for '/hello.txt") == 2);
  }
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
  // "[debug] <method> <target> <status> <variant> <bytes> <n>us <protocol>", in request order.
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
    // Then "<n>us HTTP/1.1": the time taken and the protocol.
    const std::string protocol = " HTTP/1.1";
    REQUIRE(lines[i].ends_with("us" + protocol));
    const auto micros =
        lines[i].substr(expected[i].size(), lines[i].size() - expected[i].size() - protocol.size());
    CHECK(micros.size() > 2);
    CHECK(micros.find_first_not_of("0123456789") == micros.size() - 2);
  }
}
