// End-to-end tests of `_redirects` and `_headers`: a fixture site whose rules files exercise every
// row of the issue (each status, absolute and path targets, splats, placeholders and query
// conditions substituted and encoded, the request's query kept, shadowing and force, a trailing
// slash, a domain-level rule, per-section 404 pages; blocks combined, removed and overriding the
// defaults), archived by the real binary and requested with curl over HTTP/1.1 and HTTP/2 (h2c
// by prior knowledge) and with raw sockets; and the archiver's refusals.

#include <catch2/catch.hpp>
#include <cctype>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using kawipiko::test::archive_sources;
using kawipiko::test::client;
using kawipiko::test::read_file;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;

constexpr const char* redirects_text =
    "# every row of the issue\n"
    "/home /                         # the default status, 301\n"
    "/found /about.html 302\n"
    "/see /about.html 303\n"
    "/temp /about.html 307\n"
    "/perm /about.html 308\n"
    "/away https://example.com/landing 301\n"
    "/tagged /about.html?ref=tagged 301\n"
    "/news/:year/:month/:slug /blog/:year-:month-:slug.html 301\n"
    "/docs/* /manual/:splat 302\n"
    "/store id=:id /products/:id 301\n"
    "/about.html /not-applied 301    # shadowed by the file\n"
    "/old.html /about.html 301!      # forced over the file\n"
    "/folder/ /about.html 302        # with a slash: both /folder and /folder/\n"
    "/app/* /app/index.html 200\n"
    "/en/* /en/404.html 404\n"
    "/fr/* /fr/404.html 404\n"
    "https://old.test/* https://new.test/:splat 301!\n";

constexpr const char* headers_text =
    "/*\n"
    "  X-Site: all\n"
    "  Link: </style.css>; rel=preload\n"
    "/app/*\n"
    "  X-Frame-Options: DENY\n"
    "  Cache-Control: no-cache\n"
    "  Link: </app.js>; rel=preload\n"
    "/en/:page\n"
    "  X-Section: en\n"
    "  ! Link\n"
    "/feed.txt\n"
    "  Content-Type: application/rss+xml\n";

// The fixture site, archived once per process by the binary.
struct rules_site {
  const std::string app = kawipiko::test::compressible_text(8000, 9);
  temp_folder folder;
  fs::path archive;

  rules_site() {
    folder.write("src/index.html", "home");
    folder.write("src/about.html", "about");
    folder.write("src/old.html", "old");
    folder.write("src/feed.txt", "feed");
    folder.write("src/app/index.html", app);
    folder.write("src/en/index.html", "en home");
    folder.write("src/en/404.html", "en not found");
    folder.write("src/fr/404.html", "fr not found");
    folder.write("src/_redirects", redirects_text);
    folder.write("src/_headers", headers_text);
    archive = archive_sources(binary, folder);
  }
};

const rules_site& shared() {
  static const rules_site s;
  return s;
}

// What curl received: the status, the fields (names in lower case, in order) and the body.
struct fetched {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;

  [[nodiscard]] std::string field(const std::string& name) const {
    for (const auto& [key, value] : fields) {
      if (key == name) return value;
    }
    return {};
  }
  [[nodiscard]] std::size_t count(const std::string& name) const {
    std::size_t n = 0;
    for (const auto& field : fields) n += field.first == name ? 1U : 0U;
    return n;
  }
};

// `target` from `server` with curl, over HTTP/1.1 or h2c by prior knowledge, `options` added.
fetched fetch(const server_process& server, const std::string& target, bool h2,
              const std::string& options = {}) {
  temp_folder scratch;
  const auto head = scratch / "head.txt";
  const auto body = scratch / "body.txt";
  const auto result = kawipiko::test::curl(
      std::string(h2 ? "--http2-prior-knowledge " : "--http1.1 ") + "-D " + shell_quoted(head) +
          " -o " + shell_quoted(body) + " " + options + " " + kawipiko::test::url(server, target),
      scratch);
  INFO("curl: " << result.err);
  REQUIRE(result.exit_code == 0);
  const std::string text = read_file(head);
  fetched got;
  got.body = read_file(body);
  std::size_t at = text.find(' ');
  REQUIRE(at != std::string::npos);
  got.status = static_cast<unsigned>(std::stoul(text.substr(at + 1, 3)));
  CHECK(text.starts_with(h2 ? "HTTP/2 " : "HTTP/1.1 "));
  at = text.find("\r\n") + 2;
  while (at < text.size()) {
    const auto end = text.find("\r\n", at);
    const auto line = text.substr(at, end - at);
    at = end + 2;
    const auto colon = line.find(':');
    if (line.empty() || colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto value_at = line.find_first_not_of(' ', colon + 1);
    got.fields.emplace_back(name, value_at == std::string::npos ? "" : line.substr(value_at));
  }
  return got;
}

}  // namespace

TEST_CASE("_redirects rules answer their status and Location over HTTP/1.1 and h2c",
          "[e2e][serve][net][rules]") {
  server_process server(binary, kawipiko::test::serve_args(shared().archive));
  struct row {
    const char* target;
    unsigned status;
    const char* location;
  };
  for (const bool h2 : {false, true}) {
    for (const auto& [target, status, location] : {
             row{"/home", 301, "/"},
             row{"/home?x=1&y=%20", 301, "/?x=1&y=%20"},
             row{"/found", 302, "/about.html"},
             row{"/see?q", 303, "/about.html?q"},
             row{"/temp", 307, "/about.html"},
             row{"/perm", 308, "/about.html"},
             row{"/away?a=b", 301, "https://example.com/landing?a=b"},
             row{"/tagged?x=1", 301, "/about.html?ref=tagged"},
             row{"/news/2024/05/hello%20world", 301, "/blog/2024-05-hello%20world.html"},
             row{"/news/2024/05/caf%C3%A9?utm=1", 301, "/blog/2024-05-caf%C3%A9.html?utm=1"},
             row{"/docs/a/b/", 302, "/manual/a/b/"},
             row{"/docs/x%3Fy", 302, "/manual/x%3Fy"},
             row{"/store?id=42&utm=x", 301, "/products/42"},
             row{"/old.html", 301, "/about.html"},
             row{"/folder", 302, "/about.html"},
             row{"/folder/", 302, "/about.html"},
         }) {
      INFO((h2 ? "h2c " : "HTTP/1.1 ") << target);
      const auto got = fetch(server, target, h2);
      CHECK(got.status == status);
      CHECK(got.field("location") == location);
      CHECK(got.count("location") == 1);
      CHECK(got.field("content-length") == "0");
      CHECK(got.body.empty());
    }
    // Shadowed: the file is served; a query condition that does not hold: no rule.
    CHECK(fetch(server, "/about.html", h2).body == "about");
    CHECK(fetch(server, "/store?page=2", h2).status == 404);
    // A domain-level rule answers its host only, files or not.
    for (const char* target : {"/about.html", "/missing"}) {
      const auto moved = fetch(server, target, h2, "-H 'Host: old.test'");
      CHECK(moved.status == 301);
      CHECK(moved.field("location") == std::string("https://new.test") + target);
    }
    CHECK(fetch(server, "/about.html", h2, "-H 'Host: new.test'").status == 200);
  }
}

TEST_CASE("rewrite rules serve their target's bytes and each section gets its own 404 page",
          "[e2e][serve][net][rules]") {
  server_process server(binary, kawipiko::test::serve_args(shared().archive));
  for (const bool h2 : {false, true}) {
    INFO((h2 ? "h2c" : "HTTP/1.1"));
    const auto spa = fetch(server, "/app/settings/profile", h2, "--compressed");
    CHECK(spa.status == 200);
    CHECK(spa.body == shared().app);
    CHECK(spa.field("content-encoding") == "br");
    const auto en = fetch(server, "/en/missing", h2);
    CHECK(en.status == 404);
    CHECK(en.body == "en not found");
    CHECK(fetch(server, "/fr/a/b", h2).body == "fr not found");
    CHECK(fetch(server, "/en/", h2).body == "en home");
    const auto other = fetch(server, "/de/x", h2);
    CHECK(other.status == 404);
    CHECK(other.body == "404 Not Found\n");
    CHECK(fetch(server, "/_redirects", h2).status == 404);  // the rules files are not served
    CHECK(fetch(server, "/_headers", h2).status == 404);
  }
  // The same over a raw socket, pipelined on one connection.
  client c(server.port());
  c.send(
      "GET /app/x HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /en/gone HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /news/1/2/three?x HTTP/1.1\r\nHost: a\r\n\r\n");
  const auto first = c.read_response();
  CHECK(first.status == 200);
  CHECK(first.body == shared().app);
  const auto second = c.read_response();
  CHECK(second.status_line == "HTTP/1.1 404 Not Found");
  CHECK(second.body == "en not found");
  const auto third = c.read_response();
  CHECK(third.status_line == "HTTP/1.1 301 Moved Permanently");
  CHECK(third.field("Location") == "/blog/1-2-three.html?x");
}

TEST_CASE("_headers lines are on 200, 206, 304 and 404 answers, overriding the defaults",
          "[e2e][serve][net][rules]") {
  server_process server(binary, kawipiko::test::serve_args(shared().archive));
  for (const bool h2 : {false, true}) {
    INFO((h2 ? "h2c" : "HTTP/1.1"));
    const auto full = fetch(server, "/app/", h2);
    REQUIRE(full.status == 200);
    const auto tag = full.field("etag");
    REQUIRE_FALSE(tag.empty());
    const auto part = fetch(server, "/app/", h2, "-r 0-9");
    const auto same = fetch(server, "/app/", h2, "-H 'If-None-Match: " + tag + "'");
    CHECK(part.status == 206);
    CHECK(part.body == shared().app.substr(0, 10));
    CHECK(same.status == 304);
    for (const auto* got : {&full, &part, &same}) {
      INFO(got->status);
      CHECK(got->field("x-site") == "all");
      CHECK(got->field("link") == "</style.css>; rel=preload, </app.js>; rel=preload");
      CHECK(got->field("x-frame-options") == "DENY");
      CHECK(got->count("x-frame-options") == 1);
      CHECK(got->field("cache-control") == "no-cache");
      CHECK(got->count("cache-control") == 1);
      CHECK(got->field("x-content-type-options") == "nosniff");
    }
    const auto missing = fetch(server, "/en/missing", h2);
    CHECK(missing.status == 404);
    CHECK(missing.field("x-section") == "en");
    CHECK(missing.field("x-site") == "all");
    CHECK(missing.count("link") == 0);  // removed for /en/:page
    const auto feed = fetch(server, "/feed.txt", h2);
    CHECK(feed.field("content-type") == "application/rss+xml");
    CHECK(feed.count("content-type") == 1);
    const auto home = fetch(server, "/", h2);
    CHECK(home.field("x-frame-options") == "SAMEORIGIN");
    CHECK(home.field("cache-control") == "public, immutable, max-age=3600");
  }
}

TEST_CASE("a bad rules file stops the archiver with the file and the line, the archive kept",
          "[e2e][rules]") {
  temp_folder folder;
  folder.write("src/index.html", "home");
  const auto archive = archive_sources(binary, folder, "--compress identity");
  const std::string before = read_file(archive);
  struct refusal {
    const char* file;
    const char* text;
    const char* message;
  };
  for (const auto& [file, text, message] : {
           refusal{"_redirects", "/a /b 301\n/c /d 299\n", "_redirects' line 2: unknown status"},
           refusal{"_redirects", "/a https://x.test/ 200\n", "_redirects' line 1: a 200 to"},
           refusal{"_redirects", "/a /b 301 Country=fr\n", "_redirects' line 1: the condition"},
           refusal{"_headers", "/*\n  ETag: x\n", "_headers' line 2: 'ETag' is written"},
       }) {
    INFO(text);
    folder.write(std::string("src/") + file, text);
    const auto result = kawipiko::test::run(
        binary + " archive --quiet --compress identity --sources " + shell_quoted(folder / "src") +
            " --archive " + shell_quoted(archive),
        folder.path());
    CHECK(result.exit_code == 1);
    CHECK(result.err.find(message) != std::string::npos);
    CHECK(result.err.find('\n') == result.err.size() - 1);  // one line
    CHECK(read_file(archive) == before);
    fs::remove(folder / "src" / file);
  }
}
