#include "serve/parser.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace serve = kawipiko::serve;
using serve::parse_status;

namespace {

constexpr std::size_t limit = 16 * 1024;

struct parsed {
  serve::parse_result result;
  serve::request req;
};

parsed parse(std::string_view input, std::size_t header_limit = limit) {
  parsed p{{parse_status::need_more, 0}, {}};
  p.result = serve::parse_request(input, header_limit, p.req);
  return p;
}

parse_status status_of(std::string_view input, std::size_t header_limit = limit) {
  return parse(input, header_limit).result.status;
}

// Every proper prefix of `full` needs more bytes; the whole of it is complete.
void check_needs_more_until_complete(const std::string& full) {
  for (std::size_t size = 0; size < full.size(); ++size) {
    INFO(size);
    CHECK(status_of(full.substr(0, size)) == parse_status::need_more);
  }
  CHECK(status_of(full) == parse_status::complete);
}

}  // namespace

TEST_CASE("a complete request header is parsed into views of the input", "[serve][parser]") {
  const std::string input =
      "GET /docs/?x=1 HTTP/1.1\r\n"
      "Host: example.com\r\n"
      "Accept-Encoding: gzip, br\r\n"
      "If-None-Match: \"abc\"\r\n"
      "Range: bytes=0-9\r\n"
      "If-Range: \"abc\"\r\n"
      "User-Agent: test\r\n"
      "\r\n";
  const auto p = parse(input);
  REQUIRE(p.result.status == parse_status::complete);
  CHECK(p.result.consumed == input.size());
  CHECK(p.req.verb == serve::method::get);
  CHECK(p.req.target == "/docs/?x=1");
  CHECK(p.req.version == 11);
  CHECK(p.req.keep_alive);
  CHECK(p.req.has_accept_encoding);
  CHECK(p.req.accept_encoding == "gzip, br");
  CHECK(p.req.has_if_none_match);
  CHECK(p.req.if_none_match == "\"abc\"");
  CHECK(p.req.has_range);
  CHECK(p.req.range == "bytes=0-9");
  CHECK(p.req.has_if_range);
  CHECK(p.req.if_range == "\"abc\"");
  // Views into the input, not copies.
  CHECK(p.req.target.data() == input.data() + 4);

  const auto bare = parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(bare.result.status == parse_status::complete);
  CHECK_FALSE(bare.req.has_accept_encoding);
  CHECK_FALSE(bare.req.has_if_none_match);
  CHECK_FALSE(bare.req.has_range);
  CHECK_FALSE(bare.req.has_if_range);
}

TEST_CASE("methods other than GET and HEAD are told apart, not refused", "[serve][parser]") {
  CHECK(parse("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").req.verb == serve::method::head);
  // Known: in Beast's verb table (the IANA registry's common part, WebDAV's included).
  for (const char* verb : {"POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT",
                           "PROPFIND", "MKCOL", "LOCK", "M-SEARCH"}) {
    INFO(verb);
    const auto p = parse(std::string(verb) + " / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(p.result.status == parse_status::complete);
    CHECK(p.req.verb == serve::method::other);
  }
  // Any other token is unknown; methods are case-sensitive, so "get" is not GET.
  for (const char* verb : {"BREW", "FOO", "get", "Get", "head", "GETS", "X"}) {
    INFO(verb);
    const auto p = parse(std::string(verb) + " / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(p.result.status == parse_status::complete);
    CHECK(p.req.verb == serve::method::unknown);
  }
}

TEST_CASE("absolute-form targets are passed on as they came", "[serve][parser]") {
  const auto p = parse("GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n");
  REQUIRE(p.result.status == parse_status::complete);
  CHECK(p.req.target == "http://example.com/a?b");
}

TEST_CASE("keep-alive follows the version and the Connection field", "[serve][parser]") {
  struct expectation {
    const char* request;
    unsigned version;
    bool keep_alive;
  };
  for (const auto& [request, version, keep_alive] : {
           expectation{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 11, true},
           expectation{"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 11, false},
           expectation{"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n", 11, false},
           expectation{"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", 11, true},
           expectation{"GET / HTTP/1.0\r\n\r\n", 10, false},
           expectation{"GET / HTTP/1.0\r\nHost: x\r\n\r\n", 10, false},
           expectation{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 10, true},
           expectation{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 10, true},
           expectation{"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", 10, false},
       }) {
    INFO(request);
    const auto p = parse(request);
    REQUIRE(p.result.status == parse_status::complete);
    CHECK(p.req.version == version);
    CHECK(p.req.keep_alive == keep_alive);
  }
}

TEST_CASE("an incomplete header needs more bytes, up to the limit", "[serve][parser]") {
  check_needs_more_until_complete("GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
}

TEST_CASE("a header past the limit is too large, complete or not", "[serve][parser]") {
  const std::string big_field = "X-Big: " + std::string(2000, 'a') + "\r\n";
  const std::string big = "GET / HTTP/1.1\r\nHost: x\r\n" + big_field + "\r\n";
  CHECK(status_of(big, 1024) == parse_status::too_large);
  CHECK(status_of(big.substr(0, 1500), 1024) == parse_status::too_large);  // still incomplete
  CHECK(status_of(big, 4096) == parse_status::complete);
  const std::string small =
      "GET / HTTP/1.1\r\nHost: x\r\nX-Small: " + std::string(900, 'a') + "\r\n\r\n";
  CHECK(small.size() < 1024);
  CHECK(status_of(small, 1024) == parse_status::complete);
  // The default limit: 16 KiB.
  const std::string huge =
      "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(17 * 1024, 'a') + "\r\n\r\n";
  CHECK(status_of(huge) == parse_status::too_large);
}

TEST_CASE("a request line past the limit is a URI too long, long fields are too large",
          "[serve][parser]") {
  const std::string long_target = "GET /" + std::string(17 * 1024, 'a') + " HTTP/1.1\r\n\r\n";
  CHECK(status_of(long_target) == parse_status::uri_too_long);
  // Still without a line feed when the limit is reached: the line alone passes it.
  CHECK(status_of(long_target.substr(0, limit)) == parse_status::uri_too_long);
  CHECK(status_of(long_target.substr(0, limit - 1)) == parse_status::need_more);
  const std::string line = "GET /" + std::string(2000, 'a') + " HTTP/1.1\r\n";
  CHECK(status_of(line + "Host: x\r\n\r\n", 1024) == parse_status::uri_too_long);
  CHECK(status_of(line + "Host: x\r\n\r\n", 4096) == parse_status::complete);
  // The line ends within the limit, the fields go past it: 431 as before.
  const std::string fields = "GET /a HTTP/1.1\r\nHost: x\r\nX: " + std::string(2000, 'a');
  CHECK(status_of(fields, 1024) == parse_status::too_large);
  CHECK(status_of(fields + "\r\n\r\n", 1024) == parse_status::too_large);
}

TEST_CASE("a request body is refused", "[serve][parser]") {
  CHECK(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello") ==
        parse_status::has_body);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n") ==
        parse_status::has_body);
  CHECK(status_of("GET / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx") == parse_status::has_body);
  // An empty body is no body.
  const auto empty = parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(empty.result.status == parse_status::complete);
}

TEST_CASE("Transfer-Encoding, several lengths and bad lengths are framing errors",
          "[serve][parser]") {
  for (const char* request : {
           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
       }) {
    INFO(request);
    CHECK(status_of(request) == parse_status::bad_framing);
  }
}

TEST_CASE("malformed requests, malformed versions and a missing Host are bad requests",
          "[serve][parser]") {
  for (const char* request : {
           "GET / HTTP/1.1\r\n\r\n",                        // HTTP/1.1 needs a Host
           "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  // exactly one
           "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",  // not two, even for 1.0
           "GET / HTTP/1.2\r\n\r\n",                        // read as 1.1: needs a Host
           "GET / HTTP/1.10\r\nHost: x\r\n\r\n",            // "HTTP/" DIGIT "." DIGIT
           "GET / HTTP/2\r\nHost: x\r\n\r\n",               //
           "GET / HTTP/2.0 x\r\nHost: x\r\n\r\n",           //
           "GET / HTTP/1.2 x\r\nHost: x\r\n\r\n",           //
           "GET / HTTP/1.2\nHost: x\r\n\r\n",               //
           "GET / http/1.1\r\nHost: x\r\n\r\n",             //
           "GET / HTTP/x.1\r\nHost: x\r\n\r\n",             //
           "GET /\r\n\r\n",                                 // HTTP/0.9 style
           "GET /\r\n",                                     //
           "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",  // a response
           "GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
           "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01z\r\n\r\n",  // a control byte in a value
           "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
           "GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",  // obsolete line folding
           "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",    // a TLS hello
       }) {
    INFO(request);
    CHECK(status_of(request) == parse_status::bad_request);
  }
}

TEST_CASE("pipelined requests are parsed one at a time", "[serve][parser]") {
  const std::string first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string second = "HEAD /b HTTP/1.1\r\nHost: x\r\nRange: bytes=1-2\r\n\r\n";
  const std::string third = "GET /c HTTP/1.1\r\nHo";
  const std::string input = first + second + third;
  auto p = parse(input);
  REQUIRE(p.result.status == parse_status::complete);
  CHECK(p.result.consumed == first.size());
  CHECK(p.req.target == "/a");
  CHECK_FALSE(p.req.has_range);  // nothing of the previous request is kept
  p = parse(std::string_view(input).substr(first.size()));
  REQUIRE(p.result.status == parse_status::complete);
  CHECK(p.result.consumed == second.size());
  CHECK(p.req.verb == serve::method::head);
  CHECK(p.req.target == "/b");
  CHECK(p.req.range == "bytes=1-2");
  CHECK(status_of(std::string_view(input).substr(first.size() + second.size())) ==
        parse_status::need_more);
}

TEST_CASE("repeated conditional and range fields are handled conservatively", "[serve][parser]") {
  const auto ranges =
      parse("GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n");
  REQUIRE(ranges.result.status == parse_status::complete);
  CHECK_FALSE(ranges.req.has_range);  // several Range fields: ignored
  const auto encodings =
      parse("GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nAccept-Encoding: br\r\n\r\n");
  REQUIRE(encodings.result.status == parse_status::complete);
  CHECK(encodings.req.has_accept_encoding);
  CHECK(encodings.req.accept_encoding == "gzip");
  // Field names are case-insensitive.
  const auto lower =
      parse("GET / HTTP/1.1\r\nhost: x\r\naccept-encoding: br\r\nrange: bytes=1-\r\n\r\n");
  REQUIRE(lower.result.status == parse_status::complete);
  CHECK(lower.req.accept_encoding == "br");
  CHECK(lower.req.range == "bytes=1-");
}

TEST_CASE("a later HTTP/1.x minor version is read as HTTP/1.1", "[serve][parser]") {
  for (const char* version : {"1.2", "1.5", "1.9"}) {
    INFO(version);
    const std::string input = std::string("GET /docs/?x=1 HTTP/") + version +
                              "\r\nHost: x\r\nRange: bytes=0-1\r\nIf-Match: \"a\"\r\n\r\n";
    const std::string pipelined = input + "GET /next HTTP/1.1\r\n";
    const auto p = parse(pipelined);
    REQUIRE(p.result.status == parse_status::complete);
    CHECK(p.result.consumed == input.size());
    CHECK(p.req.verb == serve::method::get);
    CHECK(p.req.target == "/docs/?x=1");
    CHECK(p.req.target.data() == pipelined.data() + 4);  // a view into the input
    CHECK(p.req.version == 11);
    CHECK(p.req.keep_alive);
    CHECK(p.req.range == "bytes=0-1");
    CHECK(p.req.if_match == "\"a\"");
  }
  const auto closing = parse("HEAD /a HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n");
  REQUIRE(closing.result.status == parse_status::complete);
  CHECK(closing.req.verb == serve::method::head);
  CHECK_FALSE(closing.req.keep_alive);
  CHECK(parse("POST / HTTP/1.2\r\nHost: x\r\n\r\n").req.verb == serve::method::other);
  CHECK(parse("FOO / HTTP/1.2\r\nHost: x\r\n\r\n").req.verb == serve::method::unknown);
  // The same refusals as for 1.1.
  CHECK(status_of("POST / HTTP/1.2\r\nHost: x\r\nContent-Length: 1\r\n\r\nx") ==
        parse_status::has_body);
  CHECK(status_of("GET / HTTP/1.2\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        parse_status::bad_framing);
  CHECK(status_of("GET / HTTP/1.2\r\nHost: x\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", 1024) ==
        parse_status::too_large);
  // Byte by byte, it needs more until the end of its header.
  check_needs_more_until_complete("GET / HTTP/1.2\r\nHost: x\r\n\r\n");
}

TEST_CASE("a major version other than 1 is not supported", "[serve][parser]") {
  for (const char* request : {
           "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
           "GET / HTTP/3.0\r\nHost: x\r\n\r\n",
           "GET / HTTP/9.9\r\n\r\n",
           "GET / HTTP/0.9\r\nHost: x\r\n\r\n",
           "GET / HTTP/0.0\r\n",
           "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  // the HTTP/2 connection preface
           "FOO / HTTP/2.0\r\nTransfer-Encoding: chunked\r\n\r\n",
       }) {
    INFO(request);
    CHECK(status_of(request) == parse_status::version_not_supported);
  }
  CHECK(status_of("GET / HTTP/2.0") == parse_status::need_more);  // the line may still be bad
  CHECK(status_of("GET / HTTP/2.0\r") == parse_status::need_more);
}

TEST_CASE("the first If-Match field is kept as a view", "[serve][parser]") {
  const std::string input =
      "GET / HTTP/1.1\r\nHost: x\r\nif-match: \"a\", W/\"b\"\r\nIf-Match: \"c\"\r\n\r\n";
  const auto p = parse(input);
  REQUIRE(p.result.status == parse_status::complete);
  CHECK(p.req.has_if_match);
  CHECK(p.req.if_match == "\"a\", W/\"b\"");
  CHECK(p.req.if_match.data() == input.data() + input.find("\"a\""));
  CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n").req.has_if_match);
}

TEST_CASE("each refusal has its status", "[serve][parser]") {
  CHECK(serve::refusal_status(parse_status::bad_request) == 400);
  CHECK(serve::refusal_status(parse_status::bad_framing) == 400);
  CHECK(serve::refusal_status(parse_status::has_body) == 413);
  CHECK(serve::refusal_status(parse_status::uri_too_long) == 414);
  CHECK(serve::refusal_status(parse_status::too_large) == 431);
  CHECK(serve::refusal_status(parse_status::version_not_supported) == 505);
}
