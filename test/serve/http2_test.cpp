#include "serve/http2.hpp"

#include <catch2/catch.hpp>
#include <cctype>
#include <memory>
#include <string>
#include <vector>

#include "archive/builder.hpp"
#include "serve/handler.hpp"
#include "serve/options.hpp"
#include "serve/output.hpp"
#include "serve/site.hpp"
#include "support/h2_memory_client.hpp"
#include "support/served_site.hpp"
#include "support/site_fixture.hpp"
#include "support/temp_folder.hpp"

namespace archive = kawipiko::archive;
namespace serve = kawipiko::serve;
using kawipiko::test::compressible_text;
using kawipiko::test::concatenate;
using kawipiko::test::h2_memory_client;
using kawipiko::test::random_bytes;
using kawipiko::test::temp_folder;

namespace {

const std::string page = compressible_text(20000);    // identity and gzip
const std::string data = random_bytes(1000, 7);       // identity only
const std::string large = random_bytes(6 << 20, 11);  // 6 MiB: more DATA frames than a batch holds

struct fixture {
  temp_folder folder;
  std::unique_ptr<serve::site> site;

  fixture() {
    kawipiko::test::write_site_sources(folder, page, data);
    folder.write("src/large.bin", large);
    // gzip 1 only: the large random file would take brotli 11 seconds to find incompressible.
    site = kawipiko::test::archived_site(folder, {{archive::encoding::gzip, 1}});
  }
};

fixture& shared() {
  static fixture f;
  return f;
}

// One server connection in memory: the protocol, its handler and batch, and a client.
struct conversation {
  serve::options opts;
  serve::handler answers;
  serve::protocol_context ctx{answers, opts};
  std::unique_ptr<serve::output> out = std::make_unique<serve::output>();
  serve::http2_protocol server{opts};
  h2_memory_client client;
  std::size_t batches_full = 0;  // times a batch filled up and the protocol asked to go on
  serve::next_step last = serve::next_step::read;

  explicit conversation(const std::vector<nghttp2_settings_entry>& settings = {},
                        const serve::site& from = *shared().site)
      : answers(from, serve::answer_settings{}), client(settings) {}

  // Bytes both ways until neither side has more to say.
  void exchange() {
    for (int round = 0; round < 10'000; ++round) {
      const auto request = client.outgoing();
      last = server.on_input(request, false, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", ctx, *out);
      const auto reply = concatenate(*out);
      if (last == serve::next_step::answer) ++batches_full;
      if (!reply.empty()) REQUIRE(client.incoming(reply));
      if (request.empty() && reply.empty() && last != serve::next_step::answer) return;
    }
    FAIL("the conversation did not settle");
  }
};

// The stored body of `path` in `coding`, as the site maps it.
std::string_view stored_body(std::string_view path,
                             archive::encoding coding = archive::encoding::identity) {
  archive::entry entry;
  REQUIRE(shared().site->find(path, entry) == archive::lookup_status::found);
  for (std::size_t i = 0; i < entry.count; ++i) {
    if (entry.variants[i].coding == coding) return entry.variants[i].body;
  }
  FAIL("no such variant");
  return {};
}

}  // namespace

TEST_CASE("a GET over HTTP/2 gets the archived fields in lower case and the body",
          "[serve][http2]") {
  conversation c;
  const auto id = c.client.request("GET", "/index.html", {{"accept-encoding", "gzip"}});
  c.exchange();
  const auto& s = c.client.at(id);
  REQUIRE(s.closed);
  CHECK(s.reset_code == NGHTTP2_NO_ERROR);
  CHECK(s.fields.front() == std::pair<std::string, std::string>(":status", "200"));
  CHECK(s.field("date") == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(s.field("content-encoding") == "gzip");
  CHECK(s.field("vary") == "Accept-Encoding");
  CHECK(s.field("accept-ranges") == "bytes");
  CHECK(s.field("x-content-type-options") == "nosniff");
  CHECK(s.field("content-length") == std::to_string(s.body.size()));
  CHECK_FALSE(s.field("etag").empty());
  for (const auto& [name, value] : s.fields) {
    INFO(name);
    for (const char ch : name) CHECK_FALSE(std::isupper(static_cast<unsigned char>(ch)));
    CHECK(name != "connection");
    CHECK(name != "keep-alive");
    CHECK(name != "transfer-encoding");
  }
  CHECK(s.body == stored_body("/index.html", archive::encoding::gzip));
  const auto plain = c.client.request("GET", "/index.html");
  c.exchange();
  CHECK(c.client.at(plain).body == page);
  CHECK(c.client.at(plain).field("content-encoding").empty());
}

TEST_CASE("HEAD over HTTP/2 ends the stream with the header, content-length as for GET",
          "[serve][http2]") {
  conversation c;
  const auto id = c.client.request("HEAD", "/data.bin");
  c.exchange();
  const auto& s = c.client.at(id);
  CHECK(s.end_on_headers);
  CHECK(s.body.empty());
  CHECK(s.field("content-length") == std::to_string(data.size()));
}

TEST_CASE("HTTP/2 DATA frames point into the archive instead of copying the body",
          "[serve][http2]") {
  conversation c;
  (void)c.client.request("GET", "/data.bin");
  // The client's preface and request, then the server's answer in one batch.
  (void)c.server.on_input(c.client.outgoing(), false, "Date: x\r\n", c.ctx, *c.out);
  const auto body = stored_body("/data.bin");
  bool referenced = false;
  for (const auto& part : c.out->parts()) {
    if (part.iov_base == body.data() && part.iov_len == body.size()) referenced = true;
  }
  CHECK(referenced);
  REQUIRE(c.client.incoming(concatenate(*c.out)));
}

TEST_CASE("refusals, ranges, redirects and error pages keep their meaning over HTTP/2",
          "[serve][http2]") {
  conversation c;
  const auto post = c.client.request("POST", "/index.html");
  const auto unknown = c.client.request("FOO", "/index.html");
  const auto range = c.client.request("GET", "/data.bin", {{"range", "bytes=10-19"}});
  const auto parts = c.client.request("GET", "/data.bin", {{"range", "bytes=0-1,5-6"}});
  const auto beyond = c.client.request("GET", "/data.bin", {{"range", "bytes=5000-"}});
  const auto slash = c.client.request("GET", "/docs?a=1");
  const auto missing = c.client.request("GET", "/private/nothing");
  const auto bad = c.client.request("GET", "/%zz");
  c.exchange();
  CHECK(c.client.at(post).field(":status") == "405");
  CHECK(c.client.at(post).field("allow") == "GET, HEAD");
  CHECK(c.client.at(unknown).field(":status") == "501");
  CHECK(c.client.at(range).field(":status") == "206");
  CHECK(c.client.at(range).field("content-range") == "bytes 10-19/1000");
  CHECK(c.client.at(range).body == data.substr(10, 10));
  CHECK(c.client.at(parts).field(":status") == "206");
  CHECK_THAT(c.client.at(parts).field("content-type"),
             Catch::StartsWith("multipart/byteranges; boundary="));
  CHECK(c.client.at(parts).field("content-length") ==
        std::to_string(c.client.at(parts).body.size()));
  CHECK(c.client.at(beyond).field(":status") == "416");
  CHECK(c.client.at(beyond).field("content-range") == "bytes */1000");
  CHECK(c.client.at(slash).field(":status") == "308");
  CHECK(c.client.at(slash).field("location") == "/docs/?a=1");
  CHECK(c.client.at(missing).field(":status") == "404");
  CHECK(c.client.at(missing).body == "custom not found");
  // A target that cannot be read is refused on its stream; the connection goes on.
  CHECK(c.client.at(bad).field(":status") == "400");
  CHECK_FALSE(c.client.saw_goaway());
  const auto after = c.client.request("GET", "/hello.txt");
  c.exchange();
  CHECK(c.client.at(after).body == "hello");
}

TEST_CASE("If-None-Match gives 304 and a failing If-Match 412 over HTTP/2", "[serve][http2]") {
  conversation c;
  const auto first = c.client.request("GET", "/hello.txt");
  c.exchange();
  const auto tag = c.client.at(first).field("etag");
  REQUIRE_FALSE(tag.empty());
  const auto same = c.client.request("GET", "/hello.txt", {{"if-none-match", tag}});
  const auto other = c.client.request("GET", "/hello.txt", {{"if-match", "\"other\""}});
  c.exchange();
  CHECK(c.client.at(same).field(":status") == "304");
  CHECK(c.client.at(same).body.empty());
  CHECK(c.client.at(other).field(":status") == "412");
}

TEST_CASE("a body sent on a request is refused with 413 and its stream reset with NO_ERROR",
          "[serve][http2]") {
  conversation c;
  const auto id = c.client.request("GET", "/hello.txt", {}, "unexpected");
  c.exchange();
  const auto& s = c.client.at(id);
  CHECK(s.field(":status") == "413");
  CHECK(s.closed);
  const auto next = c.client.request("GET", "/hello.txt");
  c.exchange();
  CHECK(c.client.at(next).body == "hello");
}

TEST_CASE("a header list past the limit gets 431 on its stream", "[serve][http2]") {
  conversation c;
  c.opts.limits.header_bytes = 4096;
  const auto id = c.client.request("GET", "/hello.txt", {{"x-big", std::string(5000, 'a')}});
  c.exchange();
  CHECK(c.client.at(id).field(":status") == "431");
  const auto next = c.client.request("GET", "/hello.txt");
  c.exchange();
  CHECK(c.client.at(next).body == "hello");
}

TEST_CASE("a client that opens no window gets no DATA until it does, then the whole body",
          "[serve][http2]") {
  conversation c({{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0}});
  const auto id = c.client.request("GET", "/large.bin");
  c.exchange();
  CHECK(c.client.at(id).field(":status") == "200");
  CHECK(c.client.at(id).body.empty());
  CHECK(c.client.data_frames() == 0);
  CHECK_FALSE(c.server.idle());  // the stream waits for the window
  // A window for 100 bytes: exactly those come.
  c.client.open_window(id, 100);
  c.exchange();
  CHECK(c.client.at(id).body == large.substr(0, 100));
  // Then the rest, window by window (the connection's window too: 64 KiB by default).
  for (int round = 0; round < 200 && !c.client.at(id).closed; ++round) {
    c.client.open_window(id, 1 << 16);
    c.client.open_window(0, 1 << 16);
    c.exchange();
  }
  CHECK(c.client.at(id).closed);
  CHECK(c.client.at(id).body == large);
  CHECK(c.server.idle());
}

TEST_CASE("a body larger than one batch goes out over several, whole and in order",
          "[serve][http2]") {
  conversation c({{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 31) - 1}});
  c.client.open_window(0, (1 << 30));
  const auto id = c.client.request("GET", "/large.bin");
  c.exchange();
  CHECK(c.client.at(id).body == large);
  CHECK(c.batches_full > 0);
}

TEST_CASE("a draining server says GOAWAY with the last stream and finishes it", "[serve][http2]") {
  conversation c;
  const auto id = c.client.request("GET", "/index.html");
  c.ctx.draining = true;
  c.exchange();
  CHECK(c.client.saw_goaway());
  CHECK(c.client.goaway_code() == NGHTTP2_NO_ERROR);
  CHECK(c.client.goaway_last_stream() == id);
  CHECK(c.client.at(id).field(":status") == "200");
  CHECK(c.client.at(id).closed);
  CHECK(c.last == serve::next_step::close);
}

TEST_CASE("bytes that are not HTTP/2 end the connection", "[serve][http2]") {
  serve::options opts;
  serve::handler answers{*shared().site, serve::answer_settings{}};
  serve::protocol_context ctx{answers, opts};
  auto out = std::make_unique<serve::output>();
  serve::http2_protocol server{opts};
  CHECK(server.on_input("GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, "Date: x\r\n", ctx, *out) ==
        serve::next_step::close);
}

TEST_CASE("HTTP/2 answers a rule's redirect status and an entry's own security header",
          "[serve][http2][rules]") {
  temp_folder folder;
  folder.write("src/index.html", "home");
  folder.write("src/_redirects", "/old /index.html 302\n/news/* /blog/:splat 307\n");
  folder.write("src/_headers", "/*\n  X-Frame-Options: DENY\n  X-Site: all\n");
  const auto site = kawipiko::test::archived_site(folder, {});
  conversation c({}, *site);
  const auto home = c.client.request("GET", "/");
  const auto old = c.client.request("GET", "/old?x=1");
  const auto news = c.client.request("GET", "/news/a%20b");
  c.exchange();
  const auto& h = c.client.at(home);
  CHECK(h.field(":status") == "200");
  CHECK(h.field("x-frame-options") == "DENY");
  CHECK(h.field("x-site") == "all");
  CHECK(h.field("x-content-type-options") == "nosniff");
  CHECK(h.field("referrer-policy") == "strict-origin-when-cross-origin");
  std::size_t frame_options = 0;
  for (const auto& [name, value] : h.fields) frame_options += name == "x-frame-options" ? 1U : 0U;
  CHECK(frame_options == 1);
  CHECK(c.client.at(old).field(":status") == "302");
  CHECK(c.client.at(old).field("location") == "/index.html?x=1");
  CHECK(c.client.at(news).field(":status") == "307");
  CHECK(c.client.at(news).field("location") == "/blog/a%20b");
  CHECK(c.client.at(news).field("x-frame-options") == "SAMEORIGIN");
}
