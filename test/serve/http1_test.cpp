#include "serve/http1.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "archive/builder.hpp"
#include "serve/date_line.hpp"
#include "serve/options.hpp"
#include "serve/output.hpp"
#include "serve/site.hpp"
#include "support/site_fixture.hpp"
#include "support/temp_folder.hpp"

namespace archive = kawipiko::archive;
namespace serve = kawipiko::serve;
using kawipiko::test::temp_folder;
using next = serve::http1_protocol::next;

namespace {

// A two-file site, opened as the server opens it.
struct fixture {
  temp_folder folder;
  std::unique_ptr<serve::site> site;

  fixture() {
    folder.write("src/index.html", "home");
    folder.write("src/a.txt", "aaaa");
    site = kawipiko::test::archived_site(folder, {});
  }
};

fixture& shared() {
  static fixture f;
  return f;
}

// One connection's protocol over memory: bytes in, the batch's bytes out.
struct conversation {
  serve::options opts;
  serve::handler answers{*shared().site, {.security_headers = false}};
  serve::protocol_context ctx{answers, opts};
  serve::http1_protocol protocol;
  std::unique_ptr<serve::output> out = std::make_unique<serve::output>();
  std::string date = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

  // What the protocol says after `input` (kept bytes first, as a connection puts them), and the
  // bytes of the batch in `wire`.
  next feed(std::string_view input, std::string& wire, bool peer_done = false) {
    const std::string whole = std::string(protocol.kept()) + std::string(input);
    const auto what = protocol.on_input(whole, peer_done, date, ctx, *out);
    wire.clear();
    for (const auto& part : out->parts()) {
      wire.append(static_cast<const char*>(part.iov_base), part.iov_len);
    }
    return what;
  }
};

std::size_t count(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("pipelined requests are answered in order in one batch", "[serve][http1]") {
  conversation c;
  std::string wire;
  const auto what = c.feed(
      "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      wire);
  CHECK(what == next::read);
  CHECK(c.protocol.idle());
  CHECK(count(wire, "HTTP/1.1 200 OK\r\n") == 3);
  const auto a = wire.find("aaaa");
  const auto home = wire.find("home");
  REQUIRE(a != std::string::npos);
  REQUIRE(home != std::string::npos);
  CHECK(a < home);
  CHECK(count(wire, "home") == 1);  // HEAD has no body
}

TEST_CASE("an unfinished request is kept and answered once it is whole", "[serve][http1]") {
  conversation c;
  std::string wire;
  CHECK(c.feed("GET /a.txt HTTP/1.1\r\nHo", wire) == next::read);
  CHECK(wire.empty());
  CHECK(c.protocol.kept() == "GET /a.txt HTTP/1.1\r\nHo");
  CHECK_FALSE(c.protocol.idle());
  CHECK(c.feed("st: x\r\n\r\nGET /", wire) == next::read);
  CHECK(wire.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(wire.ends_with("aaaa"));
  CHECK(c.protocol.kept() == "GET /");
}

TEST_CASE("the end of the input closes after what is complete is answered", "[serve][http1]") {
  conversation c;
  std::string wire;
  CHECK(c.feed("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET / HT", wire, true) == next::close);
  CHECK(count(wire, "HTTP/1.1 200 OK\r\n") == 1);
  CHECK(c.protocol.idle());
}

TEST_CASE("Connection: close and HTTP/1.0 without keep-alive close after the answer",
          "[serve][http1]") {
  conversation c;
  std::string wire;
  CHECK(c.feed("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n"
               "Host: x\r\n\r\n",
               wire) == next::close);
  CHECK(count(wire, "HTTP/1.1 200 OK\r\n") == 1);  // nothing after the close is answered
  CHECK(wire.find("Connection: close\r\n") != std::string::npos);

  conversation ten;
  CHECK(ten.feed("GET / HTTP/1.0\r\n\r\n", wire) == next::close);
  conversation kept;
  CHECK(kept.feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", wire) == next::read);
  CHECK(wire.find("Connection: keep-alive\r\n") != std::string::npos);
}

TEST_CASE("a malformed request gets its 4xx and the connection closes", "[serve][http1]") {
  conversation c;
  std::string wire;
  CHECK(c.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\nGET / HTTP/1.1\r\n\r\n", wire) ==
        next::close);
  CHECK(count(wire, "HTTP/1.1 200 OK\r\n") == 1);
  CHECK(count(wire, "HTTP/1.1 400 Bad Request\r\n") == 1);
  CHECK(wire.ends_with("Bad Request\n"));

  conversation body;
  CHECK(body.feed("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", wire) ==
        next::close);
  CHECK(wire.starts_with("HTTP/1.1 413 "));
}

TEST_CASE("the request cap and draining end the connection with Connection: close",
          "[serve][http1]") {
  conversation c;
  c.opts.limits.requests_per_connection = 2;
  std::string wire;
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(c.feed(request, wire) == next::read);
  CHECK(wire.find("Connection: close") == std::string::npos);
  CHECK(c.feed(request + request, wire) == next::close);
  CHECK(count(wire, "HTTP/1.1 200 OK\r\n") == 1);
  CHECK(wire.find("Connection: close\r\n") != std::string::npos);

  conversation draining;
  draining.ctx.draining = true;
  CHECK(draining.feed(request, wire) == next::close);
  CHECK(wire.find("Connection: close\r\n") != std::string::npos);
}

TEST_CASE("a full batch asks to be written before the rest is answered", "[serve][http1]") {
  conversation c;
  std::string input;
  // Each answer takes several parts of the batch: enough requests to fill it.
  const std::string request = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t i = 0; i < serve::output::max_parts; ++i) input += request;
  std::string wire;
  std::size_t answered = 0;
  auto what = c.feed(input, wire);
  answered += count(wire, "HTTP/1.1 200 OK\r\n");
  CHECK(what == next::answer);
  CHECK_FALSE(c.protocol.idle());
  CHECK(answered < serve::output::max_parts);
  while (what == next::answer) {
    what = c.feed("", wire);
    answered += count(wire, "HTTP/1.1 200 OK\r\n");
  }
  CHECK(what == next::read);
  CHECK(answered == serve::output::max_parts);
}
