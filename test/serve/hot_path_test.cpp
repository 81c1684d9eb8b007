// The steady-state request path allocates nothing: parse_request and handler::respond are run
// over every kind of answer, the HTTP/1.1 protocol over pipelined requests (also with the
// counters and the access log on), and the TLS session's writes, with the global operator new
// counting (OpenSSL's own buffers come from malloc, outside this count). A test binary of its own,
// since it replaces operator new for the whole program.

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "archive/builder.hpp"
#include "serve/handler.hpp"
#include "serve/http1.hpp"
#include "serve/parser.hpp"
#include "serve/request_log.hpp"
#include "support/site_fixture.hpp"
#include "support/temp_folder.hpp"
#include "support/tls_memory_pair.hpp"

namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

// Every plain form is replaced, so that no allocation made by one runtime is freed by another
// (ASan reports such a mismatch).
namespace {
void* counted(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
}  // namespace
void* operator new(std::size_t size) {
  if (void* p = counted(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  if (void* p = counted(size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return counted(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return counted(size);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace serve = kawipiko::serve;
namespace archive = kawipiko::archive;
using kawipiko::test::compressible_text;
using kawipiko::test::temp_folder;

TEST_CASE("parsing and answering requests allocates nothing", "[serve][hot]") {
  temp_folder sources, out;
  sources.write("index.html", compressible_text(20000));
  sources.write("docs/index.html", "docs");
  sources.write("app/_wildcard.html", "spa");
  sources.write("private/_404.html", "missing");
  archive::build_options build;
  build.sources = sources.str();
  build.archive = (out / "site.cdb").string();
  build.codecs = {{archive::encoding::br, 1}, {archive::encoding::gzip, 1}};
  build.jobs = 1;
  archive::build(build);

  for (const bool indexed : {false, true}) {
    serve::options opts;
    opts.archive = build.archive;
    opts.index_paths = indexed;
    const serve::site site(opts);
    serve::handler handler(site, serve::answer_settings{});
    auto out_batch = std::make_unique<serve::output>();
    const std::vector<std::string> requests = {
        "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip, br\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9,100-199,50-60\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: a\r\nRange: bytes=5-\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: a\r\nIf-None-Match: W/\"x\", *\r\n\r\n",
        "HEAD /docs?utm=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /app/deep/link HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /private/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET /nothing/here HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
        "DELETE / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    };
    const auto before = allocations.load();
    std::size_t answered = 0;
    for (int round = 0; round < 3; ++round) {
      for (const auto& text : requests) {
        out_batch->clear();
        serve::request req;
        const auto parsed = serve::parse_request(text, 16 * 1024, req);
        if (parsed.status == serve::parse_status::complete) {
          serve::http1_writer w(*out_batch, "Date: x\r\n", serve::connection_end::as_requested,
                                req);
          (void)handler.respond(req, w);
        } else {
          serve::http1_writer w(*out_batch, "Date: x\r\n", serve::connection_end::close, false);
          (void)handler.respond_error(400, serve::body_mode::with_body, w);
        }
        if (!out_batch->parts().empty()) ++answered;
      }
    }
    CHECK(answered == 3u * requests.size());
    CHECK(allocations.load() - before == 0);
  }
}

namespace {

// Answers each of `requests` (raw HTTP/1.1, the status it must get) three times through
// `handler` into one batch; returns how many allocations the answers made.
std::size_t allocations_answering(serve::handler& handler,
                                  const std::vector<std::pair<std::string, unsigned>>& requests) {
  auto out_batch = std::make_unique<serve::output>();
  const auto before = allocations.load();
  for (int round = 0; round < 3; ++round) {
    for (const auto& [text, status] : requests) {
      out_batch->clear();
      serve::request req;
      REQUIRE(serve::parse_request(text, 16 * 1024, req).status == serve::parse_status::complete);
      serve::http1_writer w(*out_batch, "Date: x\r\n", serve::connection_end::as_requested, req);
      CHECK(handler.respond(req, w).status == status);
    }
  }
  return allocations.load() - before;
}

}  // namespace

TEST_CASE("answering from the hosts of an archive of host folders allocates nothing",
          "[serve][hot][hosts]") {
  temp_folder folder;
  folder.write("src/a.test/index.html", compressible_text(2000));
  folder.write("src/a.test/app/_wildcard.html", "spa");
  folder.write("src/*.b.test/docs/index.html", "docs");
  folder.write("src/_default/_404.html", "missing");
  const auto built = kawipiko::test::archived_options(folder, {{archive::encoding::gzip, 1}}, true);

  for (const bool indexed : {false, true}) {
    auto opts = built;
    opts.index_paths = indexed;
    const auto sites = serve::sites_of(std::make_shared<const serve::site_archive>(opts), -1);
    serve::handler handler(sites, serve::answer_settings{});
    CHECK(allocations_answering(
              handler,
              {
                  {"GET / HTTP/1.1\r\nHost: A.test:8080\r\nAccept-Encoding: gzip\r\n\r\n", 200},
                  {"GET /app/deep/link HTTP/1.1\r\nHost: a.test\r\n\r\n", 200},
                  {"GET /docs HTTP/1.1\r\nHost: x.b.test\r\n\r\n", 308},
                  {"GET /docs/ HTTP/1.1\r\nHost: x.b.test\r\n\r\n", 200},
                  {"GET /docs/ HTTP/1.1\r\nHost: other.org\r\n\r\n", 404},
              }) == 0);
  }
}

TEST_CASE("_redirects rules answer, and miss, without allocating", "[serve][hot][rules]") {
  temp_folder folder;
  folder.write("src/index.html", compressible_text(2000));
  folder.write("src/en/404.html", "en missing");
  folder.write("src/_redirects",
               "/old /index.html 301\n"
               "/news/:year/:slug /blog/:year-:slug.html 302\n"
               "/files/* /archive/:splat 307\n"
               "/app/* /index.html 200\n"
               "/en/* /en/404.html 404\n"
               "https://old.test/* https://new.test/:splat 301!\n");
  folder.write("src/_headers", "/*\n  X-Frame-Options: DENY\n");
  const auto opts = kawipiko::test::archived_options(folder, {{archive::encoding::gzip, 1}});
  const serve::site site(opts);
  serve::handler handler(site, serve::answer_settings{});
  CHECK(allocations_answering(
            handler, {
                         {"GET /old?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 301},
                         {"GET /news/2024/a%20b?utm=1 HTTP/1.1\r\nHost: a\r\n\r\n", 302},
                         {"GET /files/a/b/c HTTP/1.1\r\nHost: a\r\n\r\n", 307},
                         {"GET /app/x/y HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n", 200},
                         {"GET /en/gone HTTP/1.1\r\nHost: a\r\n\r\n", 404},
                         {"GET /index.html HTTP/1.1\r\nHost: old.test\r\n\r\n", 301},
                         {"GET /index.html HTTP/1.1\r\nHost: new.test\r\n\r\n", 200},
                         {"GET /nothing/here HTTP/1.1\r\nHost: a\r\n\r\n", 404},
                     }) == 0);
}

namespace {

// The options that serve an archive of one compressible page (identity and gzip), built in `out`.
serve::options one_page_site(const temp_folder& sources, const temp_folder& out) {
  sources.write("index.html", compressible_text(2000));
  archive::build_options build;
  build.sources = sources.str();
  build.archive = (out / "site.cdb").string();
  build.codecs = {{archive::encoding::gzip, 1}};
  build.jobs = 1;
  archive::build(build);
  serve::options opts;
  opts.archive = build.archive;
  return opts;
}

}  // namespace

TEST_CASE("the HTTP/1.1 protocol answers whole pipelined requests without allocating",
          "[serve][hot]") {
  temp_folder sources, out;
  const auto opts = one_page_site(sources, out);
  const serve::site site(opts);
  serve::handler handler(site, serve::answer_settings{});
  serve::protocol_context ctx{handler, opts};
  serve::http1_protocol protocol;
  auto out_batch = std::make_unique<serve::output>();
  std::string batch;
  for (int i = 0; i < 8; ++i) {
    batch += "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n";
    batch += "HEAD /index.html HTTP/1.1\r\nHost: a\r\n\r\n";
  }
  const auto before = allocations.load();
  for (int round = 0; round < 100; ++round) {
    const auto next = protocol.on_input(batch, false, "Date: x\r\n", ctx, *out_batch);
    REQUIRE(next == serve::http1_protocol::next::read);
    REQUIRE(protocol.idle());
  }
  CHECK(out_batch->parts().size() > 16);
  CHECK(allocations.load() - before == 0);
}

TEST_CASE("counting answers and formatting their access log lines allocates nothing",
          "[serve][hot]") {
  temp_folder sources, out;
  const auto opts = one_page_site(sources, out);
  const serve::site site(opts);
  serve::handler handler(site, serve::answer_settings{});
  for (const auto format : {serve::access_log_format::combined, serve::access_log_format::json}) {
    serve::access_log_writer writer((out / "access.log").string(), format);
    serve::access_log_buffer lines(writer);
    serve::metrics_store store(1, 1, {}, {opts.archive});
    auto counters = store.thread(0, 0);
    sockaddr_storage address{};
    address.ss_family = AF_INET;
    const serve::peer_address peer(address);
    serve::answer_records records{.access = &lines,
                                  .counters = &counters,
                                  .timed = format == serve::access_log_format::json,
                                  .peer = &peer};
    serve::protocol_context ctx{handler, opts};
    ctx.records = &records;
    serve::http1_protocol protocol;
    auto out_batch = std::make_unique<serve::output>();
    const std::string batch =
        "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nReferer: y\r\n\r\n"
        "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n";
    const auto before = allocations.load();
    // 100 lines: within one chunk, which is never handed over here.
    for (int round = 0; round < 50; ++round) {
      REQUIRE(protocol.on_input(batch, false, "Date: x\r\n", ctx, *out_batch) ==
              serve::http1_protocol::next::read);
    }
    CHECK(allocations.load() - before == 0);
  }
}

TEST_CASE("the TLS session encrypts answers, small records and full ones, without allocating",
          "[serve][hot][tls]") {
  kawipiko::test::tls_memory_pair pair;
  pair.sender().sent.reserve(1 << 20);  // the "socket"
  const std::string header = "HTTP/1.1 200 OK\r\nDate: x\r\n\r\n";
  const std::string hello = "Hello, world\n";
  const std::string large(100000, 'x');
  const std::vector<std::string_view> small_answer{header, hello}, large_answer{header, large};
  auto now = kawipiko::test::tls_memory_pair::time_point{} + std::chrono::hours(1);
  (void)pair.write(small_answer, now);
  (void)pair.read_records();
  std::size_t counted = 0, records = 0;
  for (int round = 0; round < 60; ++round) {
    // Every tenth answer after an idle time, so that small records start again.
    now += round % 10 == 0 ? std::chrono::seconds(2) : std::chrono::milliseconds(1);
    const auto before = allocations.load();
    const auto result = pair.write(round % 3 == 0 ? large_answer : small_answer, now);
    counted += allocations.load() - before;
    REQUIRE(result.status == serve::io_status::done);
    records += pair.read_records().size();  // outside the count
  }
  CHECK(records > 60);
  CHECK(counted == 0);
}
