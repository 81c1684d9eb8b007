#include "archive/header_rules.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace archive = kawipiko::archive;

namespace {

using strings = std::vector<std::string>;

// "Name: value" lines for `path`.
strings headers(const archive::header_rules& rules, std::string_view path,
                std::string_view host = {}) {
  strings out;
  for (const auto& field : rules.for_path(path, host).fields) {
    out.push_back(field.name + ": " + field.value);
  }
  return out;
}

struct refusal {
  std::size_t line = 0;
  std::string reason;
};

refusal refuse(std::string_view text) {
  try {
    const archive::header_rules rules(text, "site/_headers");
  } catch (const archive::rules_error& e) {
    CHECK(e.file() == "site/_headers");
    return {e.line(), e.reason()};
  }
  FAIL("accepted: " << text);
  return {};
}

// Refuses `line` when it is the fourth line of a file, inside a block.
std::string refuse_fourth(std::string_view line) {
  const auto result = refuse("# site headers\n/*\n  X-Fine: yes\n" + std::string(line) + "\n");
  CHECK(result.line == 4);
  return result.reason;
}

constexpr std::string_view sample =
    "# every page\n"
    "/*\n"
    "  X-Robots-Tag: index\n"
    "  Link: </style.css>; rel=preload\n"
    "\n"
    "/docs/*\n"
    "\tLink: </docs.css>; rel=preload\r\n"
    "  Cache-Control: no-cache\n"
    "/docs/private/:page\n"
    "  ! X-Robots-Tag\n"
    "  X-Robots-Tag: noindex\n"
    "  ! Link\n"
    "/docs/guide.html\n"
    "  Content-Type: text/plain; charset=utf-8\n";

}  // namespace

TEST_CASE("header blocks are read with their path lines and their lines in order", "[archive]") {
  const archive::header_rules rules(sample, "_headers");
  const auto& blocks = rules.blocks();
  REQUIRE(blocks.size() == 4);
  CHECK(blocks[0].line == 2);
  CHECK(blocks[0].fields.size() == 2);
  CHECK(blocks[0].fields[1].name == "Link");
  CHECK(blocks[0].fields[1].value == "</style.css>; rel=preload");
  CHECK(blocks[1].line == 6);
  CHECK(blocks[1].fields[0].value == "</docs.css>; rel=preload");
  CHECK(blocks[2].removals == strings{"X-Robots-Tag", "Link"});
  CHECK(blocks[2].path.capture_count() == 1);
  CHECK(blocks[3].path.is_literal());
  CHECK(archive::header_rules().blocks().empty());
}

TEST_CASE("every matching block adds, the same name is combined into one value", "[archive]") {
  const archive::header_rules rules(sample, "_headers");
  CHECK(headers(rules, "/index.html") ==
        strings{"X-Robots-Tag: index", "Link: </style.css>; rel=preload"});
  CHECK(headers(rules, "/docs/a.html") ==
        strings{"X-Robots-Tag: index", "Link: </style.css>; rel=preload, </docs.css>; rel=preload",
                "Cache-Control: no-cache"});
  CHECK(rules.for_path("/docs/a.html").lines == std::vector<std::size_t>{2, 6});
}

TEST_CASE("'! Name' removes what earlier blocks gave, and a later line may give it again",
          "[archive]") {
  const archive::header_rules rules(sample, "_headers");
  CHECK(headers(rules, "/docs/private/plan") ==
        strings{"Cache-Control: no-cache", "X-Robots-Tag: noindex"});
  CHECK(rules.for_path("/docs/private/plan").lines == std::vector<std::size_t>{2, 6, 9});
  // The block needs its placeholder's segment.
  CHECK(rules.for_path("/docs/private/").lines == std::vector<std::size_t>{2, 6});
}

TEST_CASE("names are combined ignoring case, in the place they first had", "[archive]") {
  const archive::header_rules rules("/*\n  x-a: 1\n  X-B: 2\n/p\n  X-A: 3\n  x-b: 4\n  X-C: 5\n",
                                    "_headers");
  CHECK(headers(rules, "/p") == strings{"x-a: 1, 3", "X-B: 2, 4", "X-C: 5"});
}

TEST_CASE("single-valued fields are replaced, Set-Cookie lines kept apart", "[archive]") {
  const archive::header_rules rules(
      "/*\n"
      "  Content-Type: text/html\n"
      "  X-Frame-Options: DENY\n"
      "  Set-Cookie: a=1\n"
      "  Access-Control-Allow-Origin: *\n"
      "/api/*\n"
      "  content-type: application/json\n"
      "  X-Frame-Options: SAMEORIGIN\n"
      "  Set-Cookie: b=2\n"
      "  Access-Control-Allow-Origin: https://example.com\n",
      "_headers");
  CHECK(headers(rules, "/api/x") ==
        strings{"Content-Type: application/json", "X-Frame-Options: SAMEORIGIN", "Set-Cookie: a=1",
                "Access-Control-Allow-Origin: https://example.com", "Set-Cookie: b=2"});
}

TEST_CASE("an empty value adds nothing to a combined one", "[archive]") {
  const archive::header_rules rules("/*\n  X-A:\n/p\n  X-A: 1\n  X-A:\n", "_headers");
  CHECK(headers(rules, "/q") == strings{"X-A: "});
  CHECK(headers(rules, "/p") == strings{"X-A: 1"});
}

TEST_CASE("removing a default the server writes is reported unless given again", "[archive]") {
  const archive::header_rules rules(
      "/*\n  ! X-Frame-Options\n  ! x-robots-tag\n/embed/*\n  ! Cache-Control\n"
      "/embed/framed\n  X-Frame-Options: ALLOW-FROM https://example.com\n",
      "_headers");
  CHECK(rules.for_path("/a").removed_defaults == strings{"X-Frame-Options"});
  CHECK(rules.for_path("/embed/x").removed_defaults == strings{"X-Frame-Options", "Cache-Control"});
  CHECK(rules.for_path("/embed/framed").removed_defaults == strings{"Cache-Control"});
  CHECK(headers(rules, "/embed/framed") ==
        strings{"X-Frame-Options: ALLOW-FROM https://example.com"});
}

TEST_CASE("the fields that replace a default are known by name in any case", "[archive]") {
  for (const auto name : {"Cache-Control", "content-type", "X-Content-Type-Options",
                          "Referrer-Policy", "X-FRAME-OPTIONS", "Strict-Transport-Security"}) {
    CAPTURE(name);
    CHECK(archive::replaces_default(name));
  }
  for (const auto name : {"X-Robots-Tag", "Link", "Content-Length", "Cache"}) {
    CAPTURE(name);
    CHECK_FALSE(archive::replaces_default(name));
  }
}

TEST_CASE("blocks with a host apply on that host only", "[archive]") {
  const archive::header_rules rules(
      "https://docs.example.com/*\n  X-Site: docs\n/*\n  X-All: yes\n", "_headers");
  CHECK(headers(rules, "/a", "docs.example.com:443") == strings{"X-Site: docs", "X-All: yes"});
  CHECK(headers(rules, "/a", "www.example.com") == strings{"X-All: yes"});
  CHECK(headers(rules, "/a") == strings{"X-All: yes"});
}

TEST_CASE("paths match as in _redirects: exact, trailing slash, placeholders, splat", "[archive]") {
  const archive::header_rules rules(
      "/exact\n  X-A: 1\n/folder/\n  X-B: 1\n/:lang/home\n  X-C: 1\n/static/*\n  X-D: 1\n",
      "_headers");
  CHECK(headers(rules, "/exact") == strings{"X-A: 1"});
  CHECK(headers(rules, "/exact/").empty());
  CHECK(headers(rules, "/folder") == strings{"X-B: 1"});
  CHECK(headers(rules, "/folder/") == strings{"X-B: 1"});
  CHECK(headers(rules, "/en/home") == strings{"X-C: 1"});
  CHECK(headers(rules, "/static") == strings{"X-D: 1"});
  CHECK(headers(rules, "/static/a/b.css") == strings{"X-D: 1"});
  CHECK(headers(rules, "/other").empty());
}

TEST_CASE("names the server owns are refused, set or removed", "[archive]") {
  for (const std::string name :
       {"Content-Length", "content-encoding", "Content-Range", "Transfer-Encoding", "Connection",
        "Date", "ETag", "vary", "Keep-Alive", "Upgrade", "TE", "Trailer", "Accept-Ranges"}) {
    CAPTURE(name);
    CHECK_THAT(refuse_fourth("  " + name + ": x"), Catch::Contains("written by the server"));
    CHECK_THAT(refuse_fourth("  ! " + name), Catch::Contains("written by the server"));
  }
}

TEST_CASE("invalid names and values are refused with their line", "[archive]") {
  CHECK_THAT(refuse_fourth("  Bad Name: x"), Catch::Contains("not a header name"));
  CHECK_THAT(refuse_fourth("  X-A : x"), Catch::Contains("not a header name"));
  CHECK_THAT(refuse_fourth("  : x"), Catch::Contains("not a header name"));
  CHECK_THAT(refuse_fourth("  X(A): x"), Catch::Contains("not a header name"));
  CHECK_THAT(refuse_fourth("  !"), Catch::Contains("not a header name"));
  CHECK_THAT(refuse_fourth("  ! X A"), Catch::Contains("not a header name"));
  CHECK_THAT(refuse_fourth("  X-A: a\rb"), Catch::Contains("control byte"));
  CHECK_THAT(refuse_fourth(std::string("  X-A: a\0b", 10)), Catch::Contains("control byte"));
  CHECK_THAT(refuse_fourth("  X-A: a\x7f"), Catch::Contains("control byte"));
  CHECK_THAT(refuse_fourth("  X-A: a\x1b[0m"), Catch::Contains("control byte"));
  CHECK_THAT(refuse_fourth("  X-A: " + std::string(archive::max_value_size + 1, 'v')),
             Catch::Contains("longer than 8192 bytes"));
  CHECK_THAT(refuse_fourth("  just words"), Catch::Contains("expected 'Name: value'"));
  CHECK_THAT(refuse_fourth("/two words"), Catch::Contains("one pattern"));
  CHECK_THAT(refuse_fourth("X-Header:not-indented"), Catch::Contains("must start with '/'"));
  CHECK_THAT(refuse_fourth("/a/*/b"), Catch::Contains("last segment"));
}

TEST_CASE("a value may hold tabs, non-ASCII bytes and up to 8 KiB", "[archive]") {
  const std::string value(archive::max_value_size, 'v');
  const archive::header_rules rules(
      "/*\n  X-Tab: a\tb\n  X-Text: caf\xc3\xa9\n  X-Long: " + value + "\n", "_headers");
  CHECK(headers(rules, "/") == strings{"X-Tab: a\tb", "X-Text: caf\xc3\xa9", "X-Long: " + value});
}

TEST_CASE("a header line before any path line is refused", "[archive]") {
  const auto result = refuse("\n# headers\n  X-A: 1\n/*\n");
  CHECK(result.line == 3);
  CHECK_THAT(result.reason, Catch::Contains("before any path line"));
}

TEST_CASE("a combined value longer than 8 KiB is refused at the block that made it so",
          "[archive]") {
  const std::string half(archive::max_value_size / 2, 'v');
  const archive::header_rules rules("/*\n  X-A: " + half + "\n/a\n  X-A: " + half + "\n",
                                    "site/_headers");
  CHECK(rules.for_path("/b").fields.size() == 1);
  try {
    (void)rules.for_path("/a");
    FAIL("a combined value past the limit was accepted");
  } catch (const archive::rules_error& e) {
    CHECK(e.file() == "site/_headers");
    CHECK(e.line() == 3);
    CHECK_THAT(e.reason(), Catch::Contains("'X-A'") && Catch::Contains("'/a'"));
  }
}
