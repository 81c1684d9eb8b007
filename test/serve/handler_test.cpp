#include "serve/handler.hpp"

#include <catch2/catch.hpp>
#include <cctype>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "archive/builder.hpp"
#include "archive/compress.hpp"
#include "serve/certificate_names.hpp"
#include "serve/date_line.hpp"
#include "serve/http1.hpp"
#include "serve/options.hpp"
#include "serve/output.hpp"
#include "serve/parser.hpp"
#include "serve/site.hpp"
#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/site_fixture.hpp"
#include "support/temp_folder.hpp"

namespace archive = kawipiko::archive;
namespace serve = kawipiko::serve;
namespace fs = std::filesystem;
using kawipiko::test::compressible_text;
using kawipiko::test::http_response;
using kawipiko::test::parse_byteranges;
using kawipiko::test::parse_response;
using kawipiko::test::random_bytes;
using kawipiko::test::read_file;
using kawipiko::test::temp_folder;

namespace {

const std::string page = compressible_text(20000);  // index.html: identity, gzip and br
const std::string data = random_bytes(1000, 7);     // data.bin: incompressible, identity only

// One archive of a small site, built once per process, opened as the server opens it.
struct fixture {
  temp_folder folder;
  std::string archive_path;
  std::unique_ptr<serve::site> site;
  std::unique_ptr<serve::site> corrupt;  // the same archive with /hello.txt's entry damaged

  fixture() {
    kawipiko::test::write_site_sources(folder, page, data);
    folder.write("src/caf\xc3\xa9/index.html", "cafe");
    archive::build_options options;
    options.sources = (folder / "src").string();
    options.archive = archive_path = (folder / "site.cdb").string();
    options.jobs = 2;
    (void)archive::build(options);
    serve::options opts;
    opts.archive = archive_path;
    site = std::make_unique<serve::site>(opts);

    // A record is its key followed by its value: find "/hello.txt" + its head line and give
    // it an impossible variant count.
    std::string image = read_file(archive_path);
    const auto at = image.find("/hello.txt200 1 00\n");
    REQUIRE(at != std::string::npos);
    image[at + 14] = '9';
    opts.archive = folder.write("corrupt.cdb", image).string();
    corrupt = std::make_unique<serve::site>(opts);
  }
};

fixture& shared() {
  static fixture f;
  return f;
}

// An archive made with --exclude-etag: no stored tags.
struct untagged_fixture {
  temp_folder folder;
  std::unique_ptr<serve::site> site;

  untagged_fixture() {
    folder.write("src/hello.txt", "hello");
    archive::build_options options;
    options.sources = (folder / "src").string();
    options.archive = (folder / "site.cdb").string();
    options.include_etag = false;
    (void)archive::build(options);
    serve::options opts;
    opts.archive = options.archive;
    site = std::make_unique<serve::site>(opts);
  }
};

const serve::site& untagged() {
  static untagged_fixture f;
  return *f.site;
}

// The Date line the tests pass in: RFC 9110's example date.
std::string_view test_date() {
  static serve::date_line line;
  static const std::string text(line.at(784111777));
  return text;
}

struct answer {
  serve::response_info info;
  bool close;  // the HTTP/1.1 writer ends the connection after it
  std::string raw;
  http_response response;
};

std::string concatenate(const serve::output& out) {
  std::string raw;
  for (const auto& part : out.parts())
    raw.append(static_cast<const char*>(part.iov_base), part.iov_len);
  return raw;
}

answer finish(const serve::response_info& info, bool close, const serve::output& out,
              bool head_request) {
  const auto raw = concatenate(out);
  CHECK(raw.size() == out.bytes());
  INFO(raw);
  http_response response;
  REQUIRE_NOTHROW(response = parse_response(raw, head_request));
  return {info, close, raw, response};
}

answer respond(const serve::request& req, bool closing = false, bool security = true,
               const serve::site* from = nullptr) {
  serve::handler handler(from != nullptr ? *from : *shared().site,
                         serve::answer_settings{.security_headers = security});
  auto out = std::make_unique<serve::output>();
  const auto end = closing ? serve::connection_end::close : serve::connection_end::as_requested;
  serve::http1_writer w(*out, test_date(), end, req);
  const auto info = handler.respond(req, w);
  return finish(info, w.closes(), *out, req.verb == serve::method::head);
}

serve::request get(std::string_view target) {
  serve::request req;
  req.target = target;
  return req;
}
serve::request head(std::string_view target) {
  auto req = get(target);
  req.verb = serve::method::head;
  return req;
}
serve::request with_encoding(serve::request req, std::string_view accept) {
  req.has_accept_encoding = true;
  req.accept_encoding = accept;
  return req;
}
serve::request with_range(serve::request req, std::string_view range) {
  req.has_range = true;
  req.range = range;
  return req;
}
serve::request with_if_none_match(serve::request req, std::string_view tag) {
  req.has_if_none_match = true;
  req.if_none_match = tag;
  return req;
}
serve::request with_if_match(serve::request req, std::string_view tags) {
  req.has_if_match = true;
  req.if_match = tags;
  return req;
}
serve::request with_if_range(serve::request req, std::string_view value) {
  req.has_if_range = true;
  req.if_range = value;
  return req;
}

std::string etag_of(std::string_view target, std::string_view accept = {}) {
  auto req = get(target);
  if (!accept.empty()) req = with_encoding(req, accept);
  const auto a = respond(req);
  REQUIRE(a.response.has("ETag"));
  return *a.response.field("ETag");
}

}  // namespace

TEST_CASE("a GET is answered with the archived header block, made-up lines and the body",
          "[serve][handler]") {
  const auto a = respond(get("/hello.txt"));
  CHECK(a.raw ==
        "HTTP/1.1 200 OK\r\n"
        "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Referrer-Policy: strict-origin-when-cross-origin\r\n"
        "X-Frame-Options: SAMEORIGIN\r\n"
        "ETag: \"2cf24dba5fb0a30e26e83b2ac5b9e29e\"\r\n"
        "Cache-Control: public, immutable, max-age=3600\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 5\r\n"
        "Accept-Ranges: bytes\r\n"
        "\r\n"
        "hello");
  CHECK(a.info.status == 200);
  CHECK(a.info.body_bytes == 5);
  CHECK(a.info.coding == archive::encoding::identity);
  CHECK_FALSE(a.close);
  CHECK_FALSE(a.info.corrupt);
  CHECK_FALSE(a.response.has("Server"));
}

TEST_CASE("HEAD sends exactly GET's header, with the full Content-Length, and no body",
          "[serve][handler]") {
  for (const std::string accept : {"", "br", "gzip"}) {
    INFO(accept);
    auto g = get("/");
    auto h = head("/");
    if (!accept.empty()) {
      g = with_encoding(g, accept);
      h = with_encoding(h, accept);
    }
    const auto got = respond(g);
    const auto headed = respond(h);
    CHECK(headed.raw == got.response.head);
    CHECK(headed.response.body.empty());
    CHECK(headed.info.body_bytes == 0);
    CHECK(headed.response.field("Content-Length") == std::to_string(got.response.body.size()));
  }
  // Also for the error pages.
  const auto missing = respond(head("/private/missing"));
  CHECK(missing.info.status == 404);
  CHECK(missing.response.body.empty());
  CHECK(missing.response.field("Content-Length") == "16");
  const auto builtin = respond(head("/nothing-here"));
  CHECK(builtin.info.status == 404);
  CHECK(builtin.response.body.empty());
}

TEST_CASE("other methods get 405 with Allow: GET, HEAD and keep the connection",
          "[serve][handler]") {
  auto req = get("/hello.txt");
  req.verb = serve::method::other;
  const auto a = respond(req);
  CHECK(a.info.status == 405);
  CHECK(a.response.status_line == "HTTP/1.1 405 Method Not Allowed");
  CHECK(a.response.field("Allow") == "GET, HEAD");
  CHECK(a.response.body == "405 Method Not Allowed\n");
  CHECK_FALSE(a.close);
  CHECK_FALSE(a.response.has("Connection"));
  CHECK(a.response.field("X-Frame-Options") == "SAMEORIGIN");
}

TEST_CASE("unknown methods get 501 without Allow and keep the connection", "[serve][handler]") {
  auto req = get("/hello.txt");
  req.verb = serve::method::unknown;
  const auto a = respond(req);
  CHECK(a.info.status == 501);
  CHECK(a.response.status_line == "HTTP/1.1 501 Not Implemented");
  CHECK_FALSE(a.response.has("Allow"));
  CHECK(a.response.body == "501 Not Implemented\n");
  CHECK_FALSE(a.close);
  CHECK_FALSE(a.response.has("Connection"));
  req.target = "/nothing-here";  // whatever the target
  CHECK(respond(req).info.status == 501);
}

TEST_CASE("origin-form and absolute-form targets are decoded and normalized before lookup",
          "[serve][handler]") {
  for (const char* target :
       {"/hello.txt", "/hello.txt?x=1&y=%00", "/hello.txt?", "http://example.com/hello.txt",
        "HTTPS://example.com:8443/hello.txt?q", "/hell%6F.txt", "/hell%6f%2Etxt", "//hello.txt",
        "/docs/../hello.txt", "/./hello.txt", "/a/b/../../hello.txt", "/../../hello.txt",
        "/%2e%2e/hello.txt", "/docs%2F..%2Fhello.txt"}) {
    INFO(target);
    const auto a = respond(get(target));
    CHECK(a.info.status == 200);
    CHECK(a.response.body == "hello");
  }
}

TEST_CASE("NUL, bad escapes, control characters and bad forms give 400 and close",
          "[serve][handler]") {
  for (const std::string& target :
       {std::string("/%00"), std::string("/hello.txt%00"), std::string("/hello%zz.txt"),
        std::string("/hello%4"), std::string("/hel%0alo"), std::string("/a\x01"),
        std::string("/a\x7f"), std::string("/a b"), std::string("*"), std::string("hello.txt"),
        std::string("ftp://x/hello.txt"), std::string(""), std::string("/\0", 2)}) {
    INFO(target);
    const auto a = respond(get(target));
    CHECK(a.info.status == 400);
    CHECK(a.close);
    CHECK(a.response.field("Connection") == "close");
    CHECK(a.response.body == "400 Bad Request\n");
  }
}

TEST_CASE("a target whose path does not fit the path buffer gives 414 and closes",
          "[serve][handler]") {
  const std::string target = "/" + std::string(9000, 'a');
  const auto a = respond(get(target));
  CHECK(a.info.status == 414);
  CHECK(a.response.status_line == "HTTP/1.1 414 URI Too Long");
  CHECK(a.response.body == "414 URI Too Long\n");
  CHECK(a.close);
  CHECK(a.response.field("Connection") == "close");
  // One that fits is looked up.
  CHECK(respond(get("/" + std::string(8000, 'a'))).info.status == 404);
}

TEST_CASE("lookup follows the archive: index, alias, wildcard, error page, built-in 404",
          "[serve][handler]") {
  CHECK(respond(get("/")).response.body == page);
  CHECK(respond(get("/index.html")).response.body == page);
  CHECK(respond(get("/docs/")).response.body == "docs index");
  CHECK(respond(get("/about")).response.body == "about");
  CHECK(respond(get("/sp%20ace/")).response.body == "space");

  const auto wild = respond(get("/app/any/deep/path.css"));
  CHECK(wild.info.status == 200);
  CHECK(wild.response.body == "wildcard");
  CHECK(wild.response.field("Content-Type") == "text/html; charset=utf-8");

  for (const char* target : {"/private/missing", "/private/sub/deeper", "/private/_404.html"}) {
    INFO(target);
    const auto custom = respond(get(target));
    CHECK(custom.info.status == 404);
    CHECK(custom.response.status_line == "HTTP/1.1 404 Not Found");
    CHECK(custom.response.body == "custom not found");
    CHECK(custom.response.field("Content-Type") == "text/html; charset=utf-8");
    CHECK_FALSE(custom.close);
  }

  const auto builtin = respond(get("/nothing/here"));
  CHECK(builtin.info.status == 404);
  CHECK(builtin.response.body == "404 Not Found\n");
  CHECK(builtin.response.field("Content-Type") == "text/plain; charset=utf-8");
  CHECK_FALSE(builtin.close);
}

TEST_CASE("slash redirects are 308 with an encoded Location that keeps the query",
          "[serve][handler]") {
  struct expectation {
    const char* target;
    const char* location;
  };
  for (const auto& [target, location] : {
           expectation{"/docs", "/docs/"},
           expectation{"/docs?x=1&y", "/docs/?x=1&y"},
           expectation{"http://example.com/docs?a=%20b", "/docs/?a=%20b"},
           expectation{"/docs?x=1#frag", "/docs/?x=1"},
           expectation{"/docs#frag?x=1", "/docs/"},
           expectation{"/about.html/", "/about.html"},
           expectation{"/about.html/?q=2", "/about.html?q=2"},
           expectation{"/sp%20ace", "/sp%20ace/"},
           expectation{"/sp ace", nullptr},  // a raw space is refused (400), not redirected
           expectation{"/caf%C3%A9", "/caf%C3%A9/"},
       }) {
    INFO(target);
    const auto a = respond(get(target));
    if (location == nullptr) {
      CHECK(a.info.status == 400);
      continue;
    }
    CHECK(a.info.status == 308);
    CHECK(a.response.status_line == "HTTP/1.1 308 Permanent Redirect");
    CHECK(a.response.field("Location") == location);
    CHECK(a.response.field("Content-Length") == "0");
    CHECK(a.response.body.empty());
    CHECK(a.response.count("Location") == 1);
  }
  const auto headed = respond(head("/docs?x=1"));
  CHECK(headed.raw == respond(get("/docs?x=1")).raw);
}

TEST_CASE("a redirect keeps a query up to the batch's bound, past it answers 414",
          "[serve][handler]") {
  const std::string longest = "/docs?" + std::string(serve::max_copied_value - 1, 'q');
  const auto kept = respond(get(longest));
  CHECK(kept.info.status == 308);
  CHECK(kept.response.field("Location") == "/docs/" + longest.substr(5));
  const std::string too_long = longest + "qq";
  const auto refused = respond(get(too_long));
  CHECK(refused.info.status == 414);
  CHECK(refused.response.status_line == "HTTP/1.1 414 URI Too Long");
  CHECK(refused.response.body == "414 URI Too Long\n");
  CHECK_FALSE(refused.response.has("Location"));
  // The query of a file that is found is ignored, whatever its length.
  CHECK(respond(get("/hello.txt?" + std::string(8000, 'q'))).info.status == 200);
}

TEST_CASE("the security headers are sent unless disabled, and never a Server header",
          "[serve][handler]") {
  for (const char* target : {"/hello.txt", "/docs", "/nothing", "/private/x"}) {
    INFO(target);
    const auto on = respond(get(target));
    CHECK(on.response.field("X-Content-Type-Options") == "nosniff");
    CHECK(on.response.field("Referrer-Policy") == "strict-origin-when-cross-origin");
    CHECK(on.response.field("X-Frame-Options") == "SAMEORIGIN");
    const auto off = respond(get(target), false, false);
    CHECK_FALSE(off.response.has("X-Content-Type-Options"));
    CHECK_FALSE(off.response.has("Referrer-Policy"));
    CHECK_FALSE(off.response.has("X-Frame-Options"));
    CHECK_FALSE(off.response.has("Server"));
    CHECK(off.response.field("Date") == "Sun, 06 Nov 1994 08:49:37 GMT");
  }
}

TEST_CASE("Accept-Encoding picks a stored variant by q-value, br over gzip over identity",
          "[serve][handler]") {
  using archive::encoding;
  struct expectation {
    const char* accept;  // nullptr: no header
    encoding coding;
  };
  for (const auto& [accept, coding] : {
           expectation{nullptr, encoding::identity},
           expectation{"", encoding::identity},
           expectation{"gzip", encoding::gzip},
           expectation{"br", encoding::br},
           expectation{"gzip, br", encoding::br},
           expectation{"gzip, deflate, br, zstd", encoding::br},
           expectation{"identity, gzip, br", encoding::br},
           expectation{"br;q=0.5, gzip", encoding::gzip},
           expectation{"br;q=0, gzip", encoding::gzip},
           expectation{"br;q=0, gzip;q=0", encoding::identity},
           expectation{"gzip;q=0.2, identity;q=0.5", encoding::identity},
           expectation{"*", encoding::br},
           expectation{"*;q=0.5, gzip", encoding::gzip},
           expectation{"br;q=0, *", encoding::gzip},
           expectation{"deflate", encoding::identity},
           expectation{"identity;q=0, deflate", encoding::identity},  // nothing acceptable
           expectation{"GZIP", encoding::gzip},
           expectation{"x-gzip", encoding::gzip},
       }) {
    INFO((accept == nullptr ? "(none)" : accept));
    auto req = get("/");
    if (accept != nullptr) req = with_encoding(req, accept);
    const auto a = respond(req);
    REQUIRE(a.info.status == 200);
    CHECK(a.info.coding == coding);
    CHECK(a.info.body_bytes == a.response.body.size());
    if (coding == encoding::identity) {
      CHECK_FALSE(a.response.has("Content-Encoding"));
      CHECK(a.response.body == page);
    } else {
      CHECK(a.response.field("Content-Encoding") == std::string(archive::token(coding)));
      CHECK(a.response.body.size() < page.size() / 2);
      const auto decoded = archive::decompress(coding, a.response.body, page.size());
      REQUIRE(decoded);
      CHECK(*decoded == page);
    }
  }
  // A single-variant resource is sent as it is, whatever the client asks for.
  const auto only = respond(with_encoding(get("/hello.txt"), "br;q=1, identity;q=0"));
  CHECK(only.info.coding == archive::encoding::identity);
  CHECK(only.response.body == "hello");
}

TEST_CASE("Vary: Accept-Encoding is on every answer of a multi-variant resource only",
          "[serve][handler]") {
  const auto identity_tag = etag_of("/");
  const auto br_tag = etag_of("/", "br");
  CHECK(identity_tag != br_tag);
  const std::vector<serve::request> multi = {
      get("/"),
      with_encoding(get("/"), "gzip"),
      with_encoding(get("/index.html"), "br"),
      head("/"),
      with_range(get("/"), "bytes=0-9"),
      with_range(with_encoding(get("/"), "br"), "bytes=0-9,20-29"),
      with_if_none_match(get("/"), identity_tag),
      with_if_none_match(with_encoding(get("/"), "br"), br_tag),
  };
  for (const auto& req : multi) {
    INFO(req.target << " " << req.accept_encoding << " " << req.range);
    const auto a = respond(req);
    CHECK((a.info.status == 200 || a.info.status == 206 || a.info.status == 304));
    CHECK(a.response.field("Vary") == "Accept-Encoding");
    CHECK(a.response.count("Vary") == 1);
  }
  CHECK(respond(with_range(get("/"), "bytes=0-9")).info.status == 206);
  CHECK(respond(with_if_none_match(get("/"), identity_tag)).info.status == 304);

  const auto hello_tag = etag_of("/hello.txt");
  for (const auto& req : {get("/hello.txt"), with_encoding(get("/hello.txt"), "br, gzip"),
                          with_range(get("/hello.txt"), "bytes=1-2"),
                          with_if_none_match(get("/hello.txt"), hello_tag)}) {
    INFO(req.target << " " << req.accept_encoding << " " << req.range);
    CHECK_FALSE(respond(req).response.has("Vary"));
  }
}

TEST_CASE("If-None-Match with a matching tag, weak tag, list or * gives 304 without a body",
          "[serve][handler]") {
  const auto tag = etag_of("/hello.txt");
  REQUIRE(tag.size() == 34);
  const std::string weak = "W/" + tag;
  const std::string list = "\"nope\", W/\"other\" ," + tag;
  for (const std::string& value : {tag, weak, list, std::string("*")}) {
    INFO(value);
    for (const auto& req :
         {with_if_none_match(get("/hello.txt"), value),
          with_if_none_match(head("/hello.txt"), value),
          with_range(with_if_none_match(get("/hello.txt"), value), "bytes=0-1")}) {
      const auto a = respond(req);
      CHECK(a.info.status == 304);
      CHECK(a.response.status_line == "HTTP/1.1 304 Not Modified");
      CHECK(a.response.field("ETag") == tag);
      CHECK(a.response.field("Cache-Control") == "public, immutable, max-age=3600");
      CHECK(a.response.field("Date") == "Sun, 06 Nov 1994 08:49:37 GMT");
      CHECK_FALSE(a.response.has("Content-Length"));
      CHECK_FALSE(a.response.has("Content-Type"));
      CHECK(a.response.body.empty());
      CHECK(a.info.body_bytes == 0);
    }
  }
  // The tag of the variant that would be sent: the identity tag does not match the br answer.
  const auto identity_tag = etag_of("/");
  const auto br = respond(with_if_none_match(with_encoding(get("/"), "br"), identity_tag));
  CHECK(br.info.status == 200);
  const auto multi = respond(with_if_none_match(get("/"), identity_tag));
  CHECK(multi.info.status == 304);
  CHECK(multi.response.field("Vary") == "Accept-Encoding");

  for (const char* other : {"\"nope\"", "W/\"nope\"", "2cf24dba5fb0a30e26e83b2ac5b9e29e", ""}) {
    INFO(other);
    CHECK(respond(with_if_none_match(get("/hello.txt"), other)).info.status == 200);
  }
}

TEST_CASE("If-Match with the strong tag, a list holding it or * lets the request go on",
          "[serve][handler]") {
  const auto tag = etag_of("/hello.txt");
  for (const std::string& value :
       {tag, "\"nope\", " + tag, "W/\"nope\" ," + tag, std::string("*"), std::string(" * ")}) {
    INFO(value);
    const auto a = respond(with_if_match(get("/hello.txt"), value));
    CHECK(a.info.status == 200);
    CHECK(a.response.body == "hello");
  }
  // Then Range applies.
  for (const std::string& value : {etag_of("/data.bin"), std::string("*")}) {
    INFO(value);
    const auto part = respond(with_range(with_if_match(get("/data.bin"), value), "bytes=0-9"));
    CHECK(part.info.status == 206);
    CHECK(part.response.body == data.substr(0, 10));
  }
  // Then If-None-Match decides: 304.
  CHECK(respond(with_if_none_match(with_if_match(get("/hello.txt"), tag), tag)).info.status == 304);
}

TEST_CASE("a failing If-Match gives 412 before If-None-Match and Range, keeping the connection",
          "[serve][handler]") {
  const auto tag = etag_of("/hello.txt");
  const std::string weak = "W/" + tag;
  for (const std::string& value : {std::string("\"nope\""), weak, "\"nope\", " + weak,
                                   tag.substr(1, tag.size() - 2), std::string("")}) {
    INFO(value);
    const auto a = respond(with_if_match(get("/hello.txt"), value));
    CHECK(a.info.status == 412);
    CHECK(a.response.status_line == "HTTP/1.1 412 Precondition Failed");
    CHECK(a.response.body == "412 Precondition Failed\n");
    CHECK(a.response.field("Content-Type") == "text/plain; charset=utf-8");
    CHECK_FALSE(a.response.has("ETag"));
    CHECK_FALSE(a.close);
    CHECK_FALSE(a.response.has("Connection"));
    const auto headed = respond(with_if_match(head("/hello.txt"), value));
    CHECK(headed.info.status == 412);
    CHECK(headed.response.body.empty());
    CHECK(headed.info.body_bytes == 0);
    CHECK(headed.response.field("Content-Length") == "24");
    // Before If-None-Match (which would give 304) and Range (206).
    CHECK(respond(with_if_none_match(with_if_match(get("/hello.txt"), value), tag)).info.status ==
          412);
    CHECK(respond(with_range(with_if_match(get("/hello.txt"), value), "bytes=0-1")).info.status ==
          412);
  }
  // The tag of the variant that would be sent: the identity tag does not match the br answer.
  const auto identity_tag = etag_of("/");
  CHECK(respond(with_if_match(get("/"), identity_tag)).info.status == 200);
  CHECK(respond(with_if_match(with_encoding(get("/"), "br"), identity_tag)).info.status == 412);
  CHECK(respond(with_if_match(with_encoding(get("/"), "br"), etag_of("/", "br"))).info.status ==
        200);
  // A wildcard's page is a resource too.
  CHECK(respond(with_if_match(get("/app/x"), "\"nope\"")).info.status == 412);
  CHECK(respond(with_if_match(get("/app/x"), "*")).info.status == 200);
}

TEST_CASE("If-Match leaves redirects, error pages and 404s as they are", "[serve][handler]") {
  for (const char* value : {"\"nope\"", "*"}) {
    INFO(value);
    CHECK(respond(with_if_match(get("/docs"), value)).info.status == 308);
    const auto custom = respond(with_if_match(get("/private/missing"), value));
    CHECK(custom.info.status == 404);
    CHECK(custom.response.body == "custom not found");
    CHECK(respond(with_if_match(get("/nothing/here"), value)).info.status == 404);
  }
}

TEST_CASE("without stored ETags only If-Match: * matches", "[serve][handler]") {
  const auto& site = untagged();
  const auto plain = respond(get("/hello.txt"), false, true, &site);
  REQUIRE(plain.info.status == 200);
  REQUIRE_FALSE(plain.response.has("ETag"));
  CHECK(respond(with_if_match(get("/hello.txt"), "*"), false, true, &site).info.status == 200);
  for (const char* value : {"\"\"", "\"2cf24dba5fb0a30e26e83b2ac5b9e29e\"", "W/\"\"", ""}) {
    INFO(value);
    CHECK(respond(with_if_match(get("/hello.txt"), value), false, true, &site).info.status == 412);
  }
}

TEST_CASE("If-Unmodified-Since is ignored: the archive stores no modification dates",
          "[serve][handler]") {
  // RFC 9110 §13.1.4: a server without a modification date for the resource must ignore it, even
  // a date long past, which would fail against any date.
  for (const std::string date :
       {"Thu, 01 Jan 1970 00:00:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "garbage"}) {
    INFO(date);
    const std::string input =
        "GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Unmodified-Since: " + date + "\r\n\r\n";
    serve::request req;
    REQUIRE(serve::parse_request(input, 16 * 1024, req).status == serve::parse_status::complete);
    const auto a = respond(req);
    CHECK(a.info.status == 200);
    CHECK(a.response.body == "hello");
  }
}

TEST_CASE("a single byte range is answered with 206 and Content-Range", "[serve][handler]") {
  struct expectation {
    const char* range;
    std::size_t first, last;
  };
  for (const auto& [range, first, last] : {
           expectation{"bytes=0-9", 0, 9}, expectation{"bytes=990-", 990, 999},
           expectation{"bytes=-5", 995, 999}, expectation{"bytes=995-2000", 995, 999},
           expectation{"bytes=-5000", 0, 999}, expectation{"bytes=500-500", 500, 500},
           expectation{"BYTES=1-2", 1, 2},
           expectation{"bytes=0-5,3-9", 0, 9},     // overlapping: coalesced
           expectation{"bytes=6-9,0-5", 0, 9},     // adjacent: coalesced
           expectation{"bytes=0-9, 2000-", 0, 9},  // the unsatisfiable one is dropped
       }) {
    INFO(range);
    const auto a = respond(with_range(get("/data.bin"), range));
    REQUIRE(a.info.status == 206);
    CHECK(a.response.status_line == "HTTP/1.1 206 Partial Content");
    CHECK(a.response.field("Content-Range") ==
          "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/1000");
    CHECK(a.response.field("Content-Length") == std::to_string(last - first + 1));
    CHECK(a.response.body == data.substr(first, last - first + 1));
    CHECK(a.info.body_bytes == last - first + 1);
    CHECK(a.response.field("Content-Type") == "application/octet-stream");
    CHECK(a.response.has("ETag"));
    CHECK(a.response.field("Accept-Ranges") == "bytes");
    CHECK(a.response.count("Content-Length") == 1);
  }
}

TEST_CASE("ranges apply to the selected variant", "[serve][handler]") {
  const auto whole = respond(with_encoding(get("/"), "br"));
  const auto& br = whole.response.body;
  REQUIRE(br.size() > 100);
  const auto a = respond(with_range(with_encoding(get("/"), "br"), "bytes=0-99"));
  CHECK(a.info.status == 206);
  CHECK(a.info.coding == archive::encoding::br);
  CHECK(a.response.field("Content-Encoding") == "br");
  CHECK(a.response.field("Content-Range") == "bytes 0-99/" + std::to_string(br.size()));
  CHECK(a.response.body == br.substr(0, 100));
}

TEST_CASE("several ranges are answered as multipart/byteranges with a matching length",
          "[serve][handler]") {
  const auto check_parts = [](const answer& a,
                              const std::vector<std::pair<std::size_t, std::size_t>>& want,
                              const std::string& body, const std::string& type) {
    REQUIRE(a.info.status == 206);
    const auto content_type = a.response.field("Content-Type").value_or("");
    const std::string prefix = "multipart/byteranges; boundary=";
    REQUIRE(content_type.starts_with(prefix));
    CHECK_FALSE(a.response.has("Content-Range"));
    CHECK(a.info.body_bytes == a.response.body.size());
    std::vector<kawipiko::test::byterange_part> parts;
    REQUIRE_NOTHROW(parts = parse_byteranges(a.response.body, content_type.substr(prefix.size())));
    REQUIRE(parts.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      const auto [first, last] = want[i];
      CHECK(parts[i].content_type == type);
      CHECK(parts[i].content_range == "bytes " + std::to_string(first) + "-" +
                                          std::to_string(last) + "/" + std::to_string(body.size()));
      CHECK(parts[i].data == body.substr(first, last - first + 1));
    }
  };
  check_parts(respond(with_range(get("/data.bin"), "bytes=0-1,10-12")), {{0, 1}, {10, 12}}, data,
              "application/octet-stream");
  // Sorted, overlaps merged, suffix and open ranges resolved.
  check_parts(respond(with_range(get("/data.bin"), "bytes=-10, 100-199, 150-250,0-0")),
              {{0, 0}, {100, 250}, {990, 999}}, data, "application/octet-stream");
  // Sixteen ranges are still answered.
  std::string sixteen = "bytes=";
  std::vector<std::pair<std::size_t, std::size_t>> want;
  for (std::size_t i = 0; i < 16; ++i) {
    sixteen += (i ? "," : "") + std::to_string(i * 10) + "-" + std::to_string(i * 10 + 4);
    want.emplace_back(i * 10, i * 10 + 4);
  }
  check_parts(respond(with_range(get("/data.bin"), sixteen)), want, data,
              "application/octet-stream");
  // On a compressed variant the parts hold its bytes; Content-Encoding stays on the whole.
  const auto gzip = respond(with_encoding(get("/"), "gzip")).response.body;
  const auto a = respond(with_range(with_encoding(get("/"), "gzip"), "bytes=0-9,100-109"));
  check_parts(a, {{0, 9}, {100, 109}}, gzip, "text/html; charset=utf-8");
  CHECK(a.response.field("Content-Encoding") == "gzip");
  CHECK(a.response.field("Vary") == "Accept-Encoding");
}

TEST_CASE("a multipart Content-Length is exactly the number of body bytes written",
          "[serve][handler]") {
  std::string sixteen = "bytes=";
  for (std::size_t i = 0; i < 16; ++i) {
    sixteen += (i ? "," : "") + std::to_string(i * 1234) + "-" + std::to_string(i * 1234 + i);
  }
  struct expectation {
    const char* target;
    const char* accept;
    std::string range;
  };
  for (const auto& [target, accept, range] : {
           expectation{"/data.bin", "", "bytes=0-0,2-2"},
           expectation{"/data.bin", "", "bytes=0-9,990-999"},
           expectation{"/data.bin", "", "bytes=-1,0-0,500-"},
           expectation{"/", "", "bytes=0-0,9-10,99-100,999-1000,9999-10000"},
           expectation{"/", "", sixteen},
           expectation{"/", "gzip", "bytes=0-9,20-"},
           expectation{"/", "br", "bytes=1-1,-3"},
       }) {
    INFO(target << " " << accept << " " << range);
    auto req = with_range(get(target), range);
    if (*accept != '\0') req = with_encoding(req, accept);
    const auto a = respond(req);
    REQUIRE(a.info.status == 206);
    REQUIRE(a.response.field("Content-Type").value_or("").starts_with("multipart/byteranges"));
    const auto body_at = a.raw.find("\r\n\r\n");
    REQUIRE(body_at != std::string::npos);
    const auto written = a.raw.size() - (body_at + 4);
    CHECK(a.response.field("Content-Length") == std::to_string(written));
    CHECK(a.info.body_bytes == written);
  }
}

TEST_CASE("more than 16 ranges, bad syntax, other units and HEAD get the whole 200",
          "[serve][handler]") {
  std::string seventeen = "bytes=";
  for (std::size_t i = 0; i < 17; ++i) {
    seventeen += (i ? "," : "") + std::to_string(i * 10) + "-" + std::to_string(i * 10 + 4);
  }
  for (const std::string& range :
       {seventeen, std::string("bytes=abc"), std::string("items=0-1"), std::string("bytes=5-1"),
        std::string("bytes 0-1"), std::string("")}) {
    INFO(range);
    const auto a = respond(with_range(get("/data.bin"), range));
    CHECK(a.info.status == 200);
    CHECK(a.response.body == data);
    CHECK_FALSE(a.response.has("Content-Range"));
  }
  const auto headed = respond(with_range(head("/data.bin"), "bytes=0-9"));
  CHECK(headed.info.status == 200);
  CHECK(headed.response.field("Content-Length") == "1000");
}

TEST_CASE("an unsatisfiable range gives 416 with Content-Range: bytes */length",
          "[serve][handler]") {
  for (const char* range :
       {"bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=1000-1001,2000-"}) {
    INFO(range);
    const auto a = respond(with_range(get("/data.bin"), range));
    CHECK(a.info.status == 416);
    CHECK(a.response.status_line == "HTTP/1.1 416 Range Not Satisfiable");
    CHECK(a.response.field("Content-Range") == "bytes */1000");
    CHECK(a.response.field("Content-Length") == "0");
    CHECK(a.response.body.empty());
  }
}

TEST_CASE("If-Range with the strong ETag allows the range and anything else gives the whole",
          "[serve][handler]") {
  const auto tag = etag_of("/data.bin");
  const auto ranged = respond(with_if_range(with_range(get("/data.bin"), "bytes=0-9"), tag));
  CHECK(ranged.info.status == 206);
  CHECK(ranged.response.body == data.substr(0, 10));
  for (const std::string& value :
       {"W/" + tag, std::string("\"other\""), std::string("Sun, 06 Nov 1994 08:49:37 GMT"),
        tag.substr(1, tag.size() - 2), std::string("")}) {
    INFO(value);
    const auto whole = respond(with_if_range(with_range(get("/data.bin"), "bytes=0-9"), value));
    CHECK(whole.info.status == 200);
    CHECK(whole.response.body == data);
  }
}

TEST_CASE("Connection follows the request's version, keep-alive wish and the closing flag",
          "[serve][handler]") {
  struct expectation {
    unsigned version;
    bool keep_alive, closing;
    const char* connection;  // nullptr: no Connection field
    bool close;
  };
  for (const auto& [version, keep_alive, closing, connection, close] : {
           expectation{11, true, false, nullptr, false},
           expectation{11, false, false, "close", true},
           expectation{11, true, true, "close", true},
           expectation{10, false, false, "close", true},
           expectation{10, true, false, "keep-alive", false},
           expectation{10, true, true, "close", true},
       }) {
    INFO(version << " keep-alive " << keep_alive << " closing " << closing);
    for (const char* target : {"/hello.txt", "/docs", "/nothing", "/private/x"}) {
      INFO(target);
      for (const auto verb : {serve::method::get, serve::method::other}) {
        auto req = get(target);
        req.verb = verb;
        req.version = version;
        req.keep_alive = keep_alive;
        const auto a = respond(req, closing);
        CHECK(a.close == close);
        CHECK(a.response.count("Connection") == (connection ? 1u : 0u));
        if (connection != nullptr) CHECK(a.response.field("Connection") == connection);
      }
    }
    auto ranged = with_range(get("/data.bin"), "bytes=0-1,5-6");
    ranged.version = version;
    ranged.keep_alive = keep_alive;
    const auto a = respond(ranged, closing);
    CHECK(a.close == close);
    if (connection != nullptr) CHECK(a.response.field("Connection") == connection);
  }
}

TEST_CASE("refusals are short text answers that say whether the connection closes",
          "[serve][handler]") {
  const auto& site = *shared().site;
  for (const unsigned status : {400u, 404u, 405u, 412u, 413u, 414u, 431u, 500u, 501u, 503u, 505u}) {
    INFO(status);
    for (const bool closing : {false, true}) {
      for (const bool is_head : {false, true}) {
        serve::handler handler(site, serve::answer_settings{});
        auto out = std::make_unique<serve::output>();
        serve::http1_writer w(
            *out, test_date(),
            closing ? serve::connection_end::close : serve::connection_end::as_requested, false);
        const auto info = handler.respond_error(
            status, is_head ? serve::body_mode::head_only : serve::body_mode::with_body, w);
        const auto a = finish(info, w.closes(), *out, is_head);
        CHECK(info.status == status);
        CHECK(w.closes() == closing);
        CHECK(info.corrupt == (status == 500));
        CHECK(a.response.status == status);
        const auto reason = std::string(serve::status_line(status).substr(9));
        CHECK(a.response.field("Content-Length") == std::to_string(reason.size() - 1));
        CHECK(a.response.body == (is_head ? "" : reason.substr(0, reason.size() - 2) + "\n"));
        CHECK(a.response.field("Connection") ==
              (closing ? std::optional<std::string>("close") : std::nullopt));
        CHECK(a.response.has("Allow") == (status == 405));
        CHECK(a.response.field("X-Content-Type-Options") == "nosniff");
      }
    }
  }
  CHECK(serve::status_line(431) == "HTTP/1.1 431 Request Header Fields Too Large\r\n");
  CHECK(serve::status_line(413) == "HTTP/1.1 413 Content Too Large\r\n");
  CHECK(serve::status_line(412) == "HTTP/1.1 412 Precondition Failed\r\n");
  CHECK(serve::status_line(505) == "HTTP/1.1 505 HTTP Version Not Supported\r\n");
}

TEST_CASE(
    "over TLS a host that the connection's certificate does not cover and another one does gets "
    "421, one that no certificate covers is served",
    "[serve][handler]") {
  serve::certificate_table table;
  table.add({{"a.test"}, {}});
  table.add({{"*.b.test"}, {}});
  const serve::served_certificate for_a{&table, 0};
  const serve::served_certificate for_b{&table, 1};
  serve::handler handler(*shared().site, serve::answer_settings{});
  const auto status = [&](std::string_view host, const serve::served_certificate* tls,
                          std::string_view target = "/hello.txt") {
    auto req = get(target);
    req.host = host;
    auto out = std::make_unique<serve::output>();
    serve::http1_writer w(*out, test_date(), serve::connection_end::as_requested, req);
    return handler.respond(req, w, tls).status;
  };
  CHECK(status("a.test", &for_a) == 200);
  CHECK(status("x.b.test", &for_a) == 421);
  CHECK(status("X.B.Test.:443", &for_a) == 421);  // normalized as for the site
  CHECK(status("a.test", &for_b) == 421);
  CHECK(status("x.b.test", &for_b) == 200);
  CHECK(status("other.test", &for_a) == 200);
  CHECK(status("", &for_a) == 200);           // HTTP/1.0 without Host
  CHECK(status("x.b.test", nullptr) == 200);  // a plain connection
  // Absolute-form's authority is the name the request was sent to.
  CHECK(status("a.test", &for_a, "https://x.b.test/hello.txt") == 421);

  serve::certificate_table one;
  one.add({{"a.test"}, {}});
  const serve::served_certificate only{&one, 0};
  CHECK(status("x.b.test", &only) == 200);
}

TEST_CASE("a corrupt record gives 500 for its path while the others are served",
          "[serve][handler][corrupt]") {
  const auto* damaged = shared().corrupt.get();
  const auto bad = respond(get("/hello.txt"), false, true, damaged);
  CHECK(bad.info.status == 500);
  CHECK(bad.info.corrupt);
  CHECK_FALSE(bad.close);
  CHECK(bad.response.status_line == "HTTP/1.1 500 Internal Server Error");
  CHECK(bad.response.body == "500 Internal Server Error\n");
  const auto alias = respond(get("/hello"), false, true, damaged);
  CHECK(alias.info.status == 200);
  CHECK(alias.response.body == "hello");
  CHECK(respond(get("/data.bin"), false, true, damaged).response.body == data);
  CHECK(respond(get("/hello.txt")).info.status == 200);  // the original is fine
}

TEST_CASE("responses appended to one batch stay whole and in order", "[serve][handler]") {
  serve::handler handler(*shared().site, serve::answer_settings{});
  auto out = std::make_unique<serve::output>();
  std::vector<std::string> expected;
  std::size_t n = 0;
  while (out->has_room_for_response()) {
    const auto first = n % 1000;
    const auto range = "bytes=" + std::to_string(first) + "-" + std::to_string(first);
    const auto req = with_range(get("/data.bin"), range);
    serve::http1_writer w(*out, test_date(), serve::connection_end::as_requested, req);
    (void)handler.respond(req, w);
    expected.push_back("bytes " + std::to_string(first) + "-" + std::to_string(first) + "/1000");
    ++n;
  }
  CHECK(n > 20);
  const auto raw = concatenate(*out);
  std::size_t at = 0;
  for (std::size_t i = 0; i < n; ++i) {
    INFO(i);
    const auto end = raw.find("\r\n\r\n", at);
    REQUIRE(end != std::string::npos);
    const auto response = kawipiko::test::parse_response_head(raw.substr(at, end + 4 - at));
    CHECK(response.status == 206);
    CHECK(response.field("Content-Range") == expected[i]);
    CHECK(raw[end + 4] == data[i % 1000]);
    at = end + 5;
  }
  CHECK(at == raw.size());
}

namespace {

// A writer that records the description as events, for checking the contract of response.hpp
// without any protocol's framing.
struct recording_writer final : serve::response_writer {
  struct field_event {
    std::string name, lower, value;
  };
  unsigned status = 0;
  int starts = 0, header_ends = 0;
  bool closes = false;
  bool out_of_order = false;  // a header call after end_header, or a body call before it
  std::vector<std::string> blocks;
  std::vector<field_event> fields;
  std::string body;
  bool in_field = false;

  void header_call() {
    if (starts != 1 || header_ends != 0) out_of_order = true;
  }
  void start(unsigned code) noexcept override {
    ++starts;
    status = code;
  }
  void lines(std::string_view block) noexcept override {
    header_call();
    blocks.emplace_back(block);
  }
  void begin_field(const serve::field_name& name) noexcept override {
    header_call();
    if (in_field) out_of_order = true;
    in_field = true;
    fields.push_back({std::string(name.text), std::string(name.lower), {}});
  }
  void value_text(std::string_view bytes) noexcept override { fields.back().value += bytes; }
  void value_view(std::string_view bytes) noexcept override { fields.back().value += bytes; }
  void value_number(std::uint64_t n) noexcept override { fields.back().value += std::to_string(n); }
  void end_field() noexcept override {
    if (!in_field) out_of_order = true;
    in_field = false;
  }
  void close_connection() noexcept override {  // any time before end_header
    if (header_ends != 0) out_of_order = true;
    closes = true;
  }
  void end_header() noexcept override {
    header_call();
    ++header_ends;
  }
  void body_view(std::string_view bytes) noexcept override { body_call(bytes); }
  void body_text(std::string_view bytes) noexcept override { body_call(bytes); }
  void body_call(std::string_view bytes) {
    if (header_ends != 1) out_of_order = true;
    body += bytes;
  }
};

// Whether `block` is whole "Name: value\r\n" lines, with a token name and no CR or LF inside.
bool is_whole_lines(std::string_view block) {
  while (!block.empty()) {
    const auto end = block.find("\r\n");
    if (end == std::string_view::npos) return false;
    const auto line = block.substr(0, end);
    const auto colon = line.find(": ");
    if (colon == 0 || colon == std::string_view::npos) return false;
    if (line.find_first_of("\r\n") != std::string_view::npos) return false;
    block.remove_prefix(end + 2);
  }
  return true;
}

}  // namespace

TEST_CASE("the handler describes every kind of answer without HTTP/1.1 framing",
          "[serve][handler]") {
  const auto etag = etag_of("/index.html");
  struct asked {
    serve::request req;
    unsigned status;
    unsigned https_port;
  };
  auto other = get("/index.html");
  other.verb = serve::method::other;
  auto unknown = get("/index.html");
  unknown.verb = serve::method::unknown;
  const std::vector<asked> cases = {
      {get("/index.html"), 200, 0},
      {head("/index.html"), 200, 0},
      {with_encoding(get("/index.html"), "gzip"), 200, 0},
      {with_range(get("/data.bin"), "bytes=0-9"), 206, 0},
      {with_range(get("/data.bin"), "bytes=0-9,20-29"), 206, 0},
      {with_range(get("/data.bin"), "bytes=5000-"), 416, 0},
      {with_if_none_match(get("/index.html"), etag), 304, 0},
      {with_if_match(get("/index.html"), "\"other\""), 412, 0},
      {get("/docs?a=1"), 308, 0},
      {get("/nothing/here"), 404, 0},
      {get("/%zz"), 400, 0},
      {other, 405, 0},
      {unknown, 501, 0},
      {get("/index.html?x"), 308, 8443},
  };
  for (const auto& c : cases) {
    INFO(c.req.target << " " << c.status);
    auto req = c.req;
    req.host = "example.com";
    serve::handler handler(*shared().site, serve::answer_settings{.https_port = c.https_port});
    recording_writer w;
    const auto info = handler.respond(req, w);
    CHECK(info.status == c.status);
    CHECK(w.status == c.status);
    CHECK(w.starts == 1);
    CHECK(w.header_ends == 1);
    CHECK_FALSE(w.out_of_order);
    CHECK_FALSE(w.in_field);
    CHECK(w.closes == (c.status == 400));
    for (const auto& block : w.blocks) {
      INFO(block);
      CHECK(is_whole_lines(block));
      CHECK(block.find("Connection:") == std::string::npos);
    }
    std::optional<std::string> length;
    for (const auto& f : w.fields) {
      INFO(f.name << ": " << f.value);
      CHECK(f.value.find_first_of("\r\n") == std::string::npos);
      CHECK(f.lower.size() == f.name.size());
      for (std::size_t i = 0; i < f.name.size(); ++i) {
        CHECK(f.lower[i] == static_cast<char>(std::tolower(static_cast<unsigned char>(f.name[i]))));
      }
      if (f.name == "Content-Length") length = f.value;
    }
    for (const auto& block : w.blocks) {
      const auto at = block.find("Content-Length: ");
      if (at != std::string::npos) length = block.substr(at + 16, block.find("\r\n", at) - at - 16);
    }
    if (c.status == 304) {  // no Content-Length: it would be the 200's (RFC 9110 §8.6)
      CHECK_FALSE(length.has_value());
      CHECK(w.body.empty());
      continue;
    }
    REQUIRE(length.has_value());
    if (req.verb == serve::method::head) {
      CHECK(w.body.empty());
      CHECK(*length == std::to_string(page.size()));
    } else {
      CHECK(*length == std::to_string(w.body.size()));
      CHECK(info.body_bytes == w.body.size());
    }
  }
}

// ---- _redirects and _headers
// ---------------------------------------------------------------------------

namespace {

const std::string app_page = compressible_text(6000, 5);  // identity, gzip and br

// A site whose `_redirects` has a rule of every kind and whose `_headers` adds, overrides and
// removes; archived once per process.
struct rules_fixture {
  temp_folder folder;
  std::unique_ptr<serve::site> site;

  rules_fixture() {
    folder.write("src/index.html", "home");
    folder.write("src/about.html", "about");
    folder.write("src/app/index.html", app_page);
    folder.write("src/en/index.html", "en home");
    folder.write("src/en/404.html", "en not found");
    folder.write("src/fr/404.html", "fr not found");
    folder.write("src/_redirects",
                 "# every status\n"
                 "/moved /about 301\n"
                 "/found /about 302\n"
                 "/see /about 303\n"
                 "/temp /about 307\n"
                 "/perm /about 308\n"
                 "/with-query /about?ref=old 301\n"
                 "/news/:year/:slug /blog/:year-:slug.html 301\n"
                 "/files/* /archive/:splat 302\n"
                 "/search q=:term /find/:term 301\n"
                 "/spa/* /app/index.html 200\n"
                 "/en/* /en/404.html 404\n"
                 "/fr/* /fr/404.html 404\n"
                 "/ghost/* /nowhere/:splat 200\n"
                 "https://old.test/* https://new.test/:splat 301!\n");
    folder.write("src/_headers",
                 "/*\n  X-Site: all\n"
                 "/app/*\n  X-Frame-Options: DENY\n  Cache-Control: no-cache\n"
                 "/en/*\n  X-Section: en\n  ! Referrer-Policy\n");
    site = kawipiko::test::archived_site(
        folder, {{archive::encoding::br, 5}, {archive::encoding::gzip, 6}});
  }
};

const serve::site& ruled() {
  static rules_fixture f;
  return *f.site;
}

answer respond_ruled(const serve::request& req) {
  return respond(req, false, true, &ruled());
}

}  // namespace

TEST_CASE("plain and pattern redirects answer every status with its reason and Location",
          "[serve][handler][rules]") {
  struct expectation {
    const char* target;
    unsigned status;
    const char* status_line;
    const char* location;
  };
  for (const auto& [target, status, status_line, location] : {
           expectation{"/moved", 301, "HTTP/1.1 301 Moved Permanently", "/about"},
           expectation{"/found", 302, "HTTP/1.1 302 Found", "/about"},
           expectation{"/see?x=1", 303, "HTTP/1.1 303 See Other", "/about?x=1"},
           expectation{"/temp", 307, "HTTP/1.1 307 Temporary Redirect", "/about"},
           expectation{"/perm?a=b&c", 308, "HTTP/1.1 308 Permanent Redirect", "/about?a=b&c"},
           expectation{"/with-query?x=1", 301, "HTTP/1.1 301 Moved Permanently", "/about?ref=old"},
           expectation{"/news/2024/hello%20world?utm=x", 301, "HTTP/1.1 301 Moved Permanently",
                       "/blog/2024-hello%20world.html?utm=x"},
           expectation{"/files/a/b%3Fc/", 302, "HTTP/1.1 302 Found", "/archive/a/b%3Fc/"},
           expectation{"/files/caf%C3%A9", 302, "HTTP/1.1 302 Found", "/archive/caf%C3%A9"},
           expectation{"/search?q=a%20b&page=2", 301, "HTTP/1.1 301 Moved Permanently",
                       "/find/a%20b"},
       }) {
    INFO(target);
    const auto a = respond_ruled(get(target));
    CHECK(a.info.status == status);
    CHECK(a.response.status_line == status_line);
    CHECK(a.response.field("Location") == location);
    CHECK(a.response.count("Location") == 1);
    CHECK(a.response.field("Content-Length") == "0");
    CHECK(a.response.body.empty());
    CHECK(a.response.field("X-Frame-Options") == "SAMEORIGIN");
  }
  // A query condition that does not hold: no rule matches, no file is there.
  CHECK(respond_ruled(get("/search?page=2")).info.status == 404);
  // A plain redirect carries its path's _headers; a pattern redirect, made per request, none.
  CHECK(respond_ruled(get("/moved")).response.field("X-Site") == "all");
  CHECK_FALSE(respond_ruled(get("/files/x")).response.has("X-Site"));
  const auto headed = respond_ruled(head("/news/2024/a?b"));
  CHECK(headed.raw == respond_ruled(get("/news/2024/a?b")).raw);
}

TEST_CASE("a pattern rewrite serves the target's variants with validators and ranges",
          "[serve][handler][rules]") {
  const auto a = respond_ruled(with_encoding(get("/spa/settings/profile"), "br"));
  CHECK(a.info.status == 200);
  CHECK(a.response.field("Content-Encoding") == "br");
  const auto decoded = archive::decompress(archive::encoding::br, a.response.body, app_page.size());
  REQUIRE(decoded);
  CHECK(*decoded == app_page);
  const auto tag = a.response.field("ETag");
  REQUIRE(tag);
  const auto again = respond_ruled(with_if_none_match(with_encoding(get("/spa/x"), "br"), *tag));
  CHECK(again.info.status == 304);
  CHECK(again.response.field("X-Frame-Options") == "DENY");
  const auto part = respond_ruled(with_range(get("/spa/x"), "bytes=10-19"));
  CHECK(part.info.status == 206);
  CHECK(part.response.body == app_page.substr(10, 10));
  // A rewrite to a path the site does not have takes the normal 404 path.
  const auto ghost = respond_ruled(get("/ghost/x"));
  CHECK(ghost.info.status == 404);
  CHECK(ghost.response.body == "404 Not Found\n");
}

TEST_CASE("a 404 rule serves a section's own not-found page", "[serve][handler][rules]") {
  const auto en = respond_ruled(get("/en/missing/page"));
  CHECK(en.info.status == 404);
  CHECK(en.response.status_line == "HTTP/1.1 404 Not Found");
  CHECK(en.response.body == "en not found");
  CHECK(en.response.field("X-Section") == "en");
  CHECK(en.response.field("X-Site") == "all");
  CHECK_FALSE(en.response.has("Referrer-Policy"));  // removed for /en/*
  CHECK_FALSE(en.response.has("Accept-Ranges"));
  CHECK(respond_ruled(get("/fr/x")).response.body == "fr not found");
  // The section's own files are still served, and other sections get the built-in 404.
  CHECK(respond_ruled(get("/en/")).response.body == "en home");
  CHECK(respond_ruled(get("/en/")).info.status == 200);
  const auto other = respond_ruled(get("/de/x"));
  CHECK(other.info.status == 404);
  CHECK(other.response.body == "404 Not Found\n");
  const auto headed = respond_ruled(head("/en/missing"));
  CHECK(headed.response.field("Content-Length") == "12");
  CHECK(headed.response.body.empty());
}

TEST_CASE("_headers lines are on 200, 206, 304 and 404 answers, overrides replacing defaults",
          "[serve][handler][rules]") {
  const auto full = respond_ruled(get("/app/"));
  REQUIRE(full.info.status == 200);
  const auto tag = full.response.field("ETag");
  REQUIRE(tag);
  const auto part = respond_ruled(with_range(get("/app/"), "bytes=0-4,10-14"));
  const auto not_modified = respond_ruled(with_if_none_match(get("/app/"), *tag));
  REQUIRE(part.info.status == 206);
  REQUIRE(not_modified.info.status == 304);
  for (const auto* a : {&full, &part, &not_modified}) {
    INFO(a->raw);
    CHECK(a->response.field("X-Site") == "all");
    CHECK(a->response.field("X-Frame-Options") == "DENY");
    CHECK(a->response.count("X-Frame-Options") == 1);
    CHECK(a->response.field("Cache-Control") == "no-cache");
    CHECK(a->response.count("Cache-Control") == 1);
    CHECK(a->response.field("X-Content-Type-Options") == "nosniff");
  }
  const auto about = respond_ruled(get("/about"));
  CHECK(about.response.field("X-Frame-Options") == "SAMEORIGIN");
  CHECK(about.response.field("Cache-Control") == "public, immutable, max-age=3600");
  // Turned off, the server's defaults go, the archive's own lines stay.
  const auto off = respond(get("/app/"), false, false, &ruled());
  CHECK(off.response.field("X-Frame-Options") == "DENY");
  CHECK_FALSE(off.response.has("X-Content-Type-Options"));
}

TEST_CASE("a forced domain-level rule answers its host only, before the file",
          "[serve][handler][rules]") {
  auto req = get("/about.html?x=1");
  req.host = "OLD.test:8080";
  const auto moved = respond_ruled(req);
  CHECK(moved.info.status == 301);
  CHECK(moved.response.field("Location") == "https://new.test/about.html?x=1");
  req.host = "new.test";
  const auto served = respond_ruled(req);
  CHECK(served.info.status == 200);
  CHECK(served.response.body == "about");
  auto missing = get("/nothing");
  missing.host = "old.test";
  CHECK(respond_ruled(missing).response.field("Location") == "https://new.test/nothing");
}
