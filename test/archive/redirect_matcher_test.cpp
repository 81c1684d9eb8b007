#include "archive/redirect_matcher.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace archive = kawipiko::archive;

namespace {

using strings = std::vector<std::string>;

// A matcher compiled from a `_redirects` text, with the blob it reads.
struct compiled {
  explicit compiled(std::string_view text)
      : rules(archive::parse_redirects(text, "_redirects")),
        blob(archive::compile_matcher(rules)),
        matcher(blob) {}

  // "<status> <target>", with " force" when forced, or "miss".
  std::string answer(std::string_view path, std::string_view query = {},
                     std::string_view host = {}) const {
    archive::redirect_match out;
    if (!matcher.match({host, path, query}, out)) return "miss";
    return std::to_string(out.status) + " " + out.target + (out.force ? " force" : "");
  }

  std::vector<archive::redirect_rule> rules;
  std::vector<std::byte> blob;
  archive::redirect_matcher matcher;
};

std::uint32_t read32(const std::vector<std::byte>& blob, std::size_t at) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i)
    value |= std::to_integer<std::uint32_t>(blob[at + i]) << (8 * i);
  return value;
}

void write32(std::vector<std::byte>& blob, std::size_t at, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i)
    blob[at + i] = static_cast<std::byte>((value >> (8 * i)) & 0xff);
}

// Where the areas of a blob start (the layout redirect_matcher.hpp gives).
struct layout {
  explicit layout(const std::vector<std::byte>& blob) {
    const std::size_t counts[] = {read32(blob, 8),  read32(blob, 12), read32(blob, 16),
                                  read32(blob, 20), read32(blob, 24), read32(blob, 28),
                                  read32(blob, 32)};
    const std::size_t numbers[] = {11, 5, 5, 1, 3, 5, 4};
    std::size_t at = 40;
    for (std::size_t i = 0; i < 7; ++i) {
      starts[i] = at;
      at += counts[i] * numbers[i] * 4;
    }
    strings = at;
  }
  std::size_t rule(std::size_t index, std::size_t n) const {
    return starts[0] + (index * 11 + n) * 4;
  }
  std::size_t node(std::size_t index, std::size_t n) const {
    return starts[1] + (index * 5 + n) * 4;
  }
  std::size_t slot(std::size_t index, std::size_t n) const {
    return starts[2] + (index * 5 + n) * 4;
  }
  std::size_t list(std::size_t index) const { return starts[3] + index * 4; }
  std::size_t segment(std::size_t index, std::size_t n) const {
    return starts[4] + (index * 3 + n) * 4;
  }
  std::size_t condition(std::size_t index, std::size_t n) const {
    return starts[5] + (index * 5 + n) * 4;
  }
  std::size_t part(std::size_t index, std::size_t n) const {
    return starts[6] + (index * 4 + n) * 4;
  }

  std::size_t starts[7] = {};
  std::size_t strings = 0;
};

// The message a corrupt blob is refused with.
std::string refusal(const std::vector<std::byte>& blob) {
  try {
    const archive::redirect_matcher matcher(blob);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "accepted";
}

constexpr std::string_view sample_rules =
    "/news/* /blog/:splat\n"
    "/news/:year/:slug /never 302\n"
    "/store id=:id /products/:id 301!\n"
    "/search q=:q /find?term=:q 302\n"
    "/:lang/guide /:lang/manual.html 200\n"
    "/en/* /en/404.html 404\n"
    "https://old.example.com/* https://new.example.com/:splat 308!\n";

}  // namespace

TEST_CASE("the first matching rule wins, top to bottom", "[archive]") {
  const compiled c(sample_rules);
  CHECK(c.answer("/news/2004/story") == "301 /blog/2004/story");
  CHECK(c.answer("/en/guide") == "200 /en/manual.html");
  CHECK(c.answer("/en/missing") == "404 /en/404.html");
  const compiled reversed("/en/* /en/404.html 404\n/:lang/guide /:lang/manual.html 200\n");
  CHECK(reversed.answer("/en/guide") == "404 /en/404.html");
  CHECK(reversed.answer("/fr/guide") == "200 /fr/manual.html");
}

TEST_CASE("a miss is a miss, whatever the path looks like", "[archive]") {
  const compiled c(sample_rules);
  for (const auto path :
       {"/", "/newsletter", "/blog/x", "/store/x", "/a/b/c/d", "/fr", "/search/more"}) {
    CAPTURE(path);
    CHECK(c.answer(path) == "miss");
  }
  CHECK(c.answer("/store") == "miss");  // the condition is not met
}

TEST_CASE("splats and placeholders are substituted into the target", "[archive]") {
  const compiled c(
      "/news/:year/:month/:slug /blog/:year-:month-:slug.html\n"
      "/docs/* https://docs.example.com/v2/:splat 302\n"
      "/:a/:b/x /:b/:a\n");
  CHECK(c.answer("/news/2004/01/story") == "301 /blog/2004-01-story.html");
  CHECK(c.answer("/docs/a/b/") == "302 https://docs.example.com/v2/a/b/");
  CHECK(c.answer("/docs") == "302 https://docs.example.com/v2/");
  CHECK(c.answer("/one/two/x") == "301 /two/one");
}

TEST_CASE("substituted values are percent-encoded so that each stays what it was", "[archive]") {
  const compiled c(
      "/p/* /q/:splat\n"
      "/s q=:q /find?term=:q&page=1 302\n"
      "/t v=:v /v/:v 302\n"
      "/u/:name /search?who=:name 302\n");
  // From the path (decoded): unsafe bytes are encoded, the splat's '/' kept.
  CHECK(c.answer("/p/a b/caf\xc3\xa9/?#\"<>\r\n") ==
        "301 /q/a%20b/caf%C3%A9/%3F%23%22%3C%3E%0D%0A");
  // From the query (raw): decoded, then encoded for where it goes: one parameter value.
  CHECK(c.answer("/s", "q=a%26b%3Dc+d%20e") == "302 /find?term=a%26b%3Dc%2Bd%20e&page=1");
  CHECK(c.answer("/s", "q=x&evil=1") == "302 /find?term=x&page=1");
  // A value going into a path keeps '&' and '=', which are harmless there.
  CHECK(c.answer("/t", "v=a%26b%3D%2F..%2Fc") == "302 /v/a&b=/../c");
  CHECK(c.answer("/u/a&b=c") == "302 /search?who=a%26b%3Dc");
  CHECK(c.answer("/s", "q=%zz%4") == "302 /find?term=%25zz%254&page=1");
}

TEST_CASE("a substituted value cannot make the target another host's URL", "[archive]") {
  const compiled c("/r q=:q /:q 302\n/s/* /:splat 302\n/t q=:q /a/:q 302\n");
  CHECK(c.answer("/r", "q=%2Fevil.example/x") == "302 /%2Fevil.example/x");
  CHECK(c.answer("/r", "q=/evil.example") == "302 /%2Fevil.example");
  CHECK(c.answer("/t", "q=//x") == "302 /a/%2F/x");
  CHECK(c.answer("/s/a/b") == "302 /a/b");
  // The host of an absolute target ends at its '/', '?' or '#'.
  const compiled away("/a/* https://example.com?next=:splat 302\n");
  CHECK(away.answer("/a/x/y") == "302 https://example.com?next=x/y");
}

TEST_CASE("a redirect keeps the request's query unless its target has one", "[archive]") {
  const compiled c(
      "/a /b\n"
      "/c /d?x=1\n"
      "/e /f#top\n"
      "/g /h 200\n"
      "/i /j 404\n"
      "/k https://example.com/l 307\n");
  CHECK(c.answer("/a", "utm=1&x=%20") == "301 /b?utm=1&x=%20");
  CHECK(c.answer("/a") == "301 /b");
  CHECK(c.answer("/c", "utm=1") == "301 /d?x=1");
  CHECK(c.answer("/e", "utm=1") == "301 /f#top");
  CHECK(c.answer("/g", "utm=1") == "200 /h");
  CHECK(c.answer("/i", "utm=1") == "404 /j");
  CHECK(c.answer("/k", "a=b") == "307 https://example.com/l?a=b");
  // A kept query is made safe for a header, escapes kept.
  CHECK(c.answer("/a", "q=caf\xc3\xa9%41") == "301 /b?q=caf%C3%A9%41");
}

TEST_CASE("query conditions match names and values percent-decoded", "[archive]") {
  const compiled c(
      "/store id=:id /products/:id\n"
      "/list sort=price%20asc /cheap\n"
      "/list sort=:order /sorted/:order\n"
      "/two a=:a b=:b /x/:a/:b\n");
  CHECK(c.answer("/store", "id=42") == "301 /products/42");
  CHECK(c.answer("/store", "x=1&id=7&id=8") == "301 /products/7");
  CHECK(c.answer("/store", "%69d=9") == "301 /products/9");
  CHECK(c.answer("/store", "id=") == "301 /products/");
  CHECK(c.answer("/store", "id") == "301 /products/");
  CHECK(c.answer("/store", "idx=1") == "miss");
  CHECK(c.answer("/store") == "miss");
  CHECK(c.answer("/list", "sort=price%20asc") == "301 /cheap");
  CHECK(c.answer("/list", "sort=price+asc") == "301 /sorted/price+asc");
  CHECK(c.answer("/list", "sort=name") == "301 /sorted/name");
  CHECK(c.answer("/two", "b=2&a=1") == "301 /x/1/2");
  CHECK(c.answer("/two", "a=1") == "miss");
}

TEST_CASE("a trailing slash in from matches both forms, without, only the bare one", "[archive]") {
  const compiled c("/a/ /b\n/c /d\n/:x/ /e/:x\n");
  CHECK(c.answer("/a") == "301 /b");
  CHECK(c.answer("/a/") == "301 /b");
  CHECK(c.answer("/c") == "301 /d");
  CHECK(c.answer("/c/") == "301 /e/c");
}

TEST_CASE("domain-level rules match only their host", "[archive]") {
  const compiled c(sample_rules);
  CHECK(c.answer("/x/y", {}, "old.example.com") == "308 https://new.example.com/x/y force");
  CHECK(c.answer("/x/y", {}, "OLD.example.com:443") == "308 https://new.example.com/x/y force");
  CHECK(c.answer("/x/y", {}, "new.example.com") == "miss");
  CHECK(c.answer("/x/y") == "miss");
  // Rules without a host match on any host.
  CHECK(c.answer("/news/a", {}, "old.example.com") == "301 /blog/a");
}

TEST_CASE("a match says which rule, from which line, and whether it is forced", "[archive]") {
  const compiled c(sample_rules);
  archive::redirect_match out;
  out.target = "left over";
  REQUIRE(c.matcher.match({{}, "/store", "id=1"}, out));
  CHECK(out.rule == 2);
  CHECK(out.line == 3);
  CHECK(out.status == 301);
  CHECK(out.force);
  CHECK(out.target == "/products/1");
  // A miss leaves the answer alone.
  CHECK_FALSE(c.matcher.match({{}, "/nothing", {}}, out));
  CHECK(out.line == 3);
  CHECK(out.target == "/products/1");
  CHECK(c.matcher.size() == 7);
}

TEST_CASE("first_path_match ignores query conditions, not hosts", "[archive]") {
  const compiled c(sample_rules);
  CHECK(c.matcher.first_path_match("/store") == 2u);
  CHECK(c.matcher.first_path_match("/news/x") == 0u);
  CHECK_FALSE(c.matcher.first_path_match("/anything").has_value());
  CHECK(c.matcher.first_path_match("/anything", "old.example.com") == 6u);
  CHECK(c.matcher.first_path_match("/news/x", "old.example.com") == 0u);
  const compiled plain("/a /b\n");
  CHECK_FALSE(plain.matcher.first_path_match("/c").has_value());
}

TEST_CASE("domain-level rules are found by host among many", "[archive]") {
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text +=
        "https://site" + std::to_string(i) + ".example.com/* /s" + std::to_string(i) + "/:splat\n";
  }
  text += "https://site7.example.com:8080/* /port\n/* /any/:splat 302\n";
  const compiled c(text);
  CHECK(c.answer("/a", {}, "site42.example.com") == "301 /s42/a");
  CHECK(c.answer("/a", {}, "SITE42.Example.COM:443") == "301 /s42/a");
  CHECK(c.answer("/a", {}, "site7.example.com:8080") == "301 /s7/a");  // the first rule wins
  CHECK(c.answer("/a", {}, "site300.example.com") == "302 /any/a");
  CHECK(c.answer("/a") == "302 /any/a");
  const compiled ported("https://h.example.com:8080/* /port\n");
  CHECK(ported.answer("/a", {}, "h.example.com:8080") == "301 /port");
  CHECK(ported.answer("/a", {}, "h.example.com") == "miss");
  CHECK(ported.answer("/a", {}, "h.example.com:80") == "miss");
  const compiled bracketed("https://h.example.com/* /h\n");
  CHECK(bracketed.answer("/a", {}, "[::1]:80") == "miss");
}

TEST_CASE("a domain-level rule moves a later plain rule for any host", "[archive]") {
  const auto rules =
      archive::parse_redirects("https://h.example.com/* /x/:splat\n/a /b\n", "_redirects");
  CHECK(archive::classify_rules(rules) ==
        std::vector<archive::rule_kind>{archive::rule_kind::pattern, archive::rule_kind::pattern});
}

TEST_CASE("plain rules become entries unless an earlier pattern rule can match them", "[archive]") {
  const auto rules = archive::parse_redirects(
      "/a /x\n"                 // plain
      "/news/* /blog/:splat\n"  // pattern
      "/news/old /y\n"          // plain, but the splat before it matches it first
      "/b/ /z\n"                // plain
      "/store q=:q /s/:q\n"     // pattern
      "/store /t\n"             // plain, yet the condition before it may match first
      "/c/ /u\n"                // plain: the pattern below comes after it
      "/:any/ /v\n"             // pattern
      "/moved/ /w\n"            // plain, but the placeholder before it matches
      "/moved /w2\n",           // plain, and matched by the same placeholder
      "_redirects");
  using kind = archive::rule_kind;
  CHECK(archive::classify_rules(rules) ==
        std::vector<kind>{kind::plain, kind::pattern, kind::pattern, kind::plain, kind::pattern,
                          kind::pattern, kind::plain, kind::pattern, kind::pattern, kind::pattern});
  CHECK(archive::classify_rules({}).empty());
}

TEST_CASE("rules are found through placeholder edges, in rule order across the trie", "[archive]") {
  const compiled c(
      "/:lang/about /x/:lang\n"
      "/en/* /y/:splat\n"
      "/en/about /z\n"
      "/:a/:b /w/:a/:b\n"
      "/docs/:v/:page/part1 /d/:v/:page\n");
  CHECK(c.answer("/en/about") == "301 /x/en");
  CHECK(c.answer("/fr/about") == "301 /x/fr");
  CHECK(c.answer("/en/other") == "301 /y/other");
  CHECK(c.answer("/en") == "301 /y/");
  CHECK(c.answer("/fr/other") == "301 /w/fr/other");
  CHECK(c.answer("/docs/3/intro/part1") == "301 /d/3/intro");
  CHECK(c.answer("/docs/3/intro/part2") == "miss");
  CHECK(c.answer("/fr/a/b") == "miss");
}

TEST_CASE("rules that branch the walk past its room are still matched in order", "[archive]") {
  // Every mix of "a" and a placeholder over five segments: the walk along "/a/a/a/a/a" meets
  // 32 nodes at the last depth, more than it holds, and tries every rule instead.
  std::string text;
  for (unsigned mask = 0; mask < 32; ++mask) {
    std::string from;
    for (unsigned i = 0; i < 5; ++i) {
      from += (mask >> i & 1U) != 0 ? std::string("/a") : "/:p" + std::to_string(i);
    }
    text += from + " /r" + std::to_string(mask) + "\n";
  }
  text += "/a/a/a/a/a/b /deeper\n";
  const compiled c(text);
  CHECK(c.answer("/a/a/a/a/a") == "301 /r0");
  CHECK(c.answer("/b/a/a/a/a") == "301 /r0");
  CHECK(c.answer("/a/a/a/a/a/b") == "301 /deeper");
  CHECK(c.answer("/a/a/a/a/a/c") == "miss");
  CHECK(c.matcher.first_path_match("/a/a/a/a/a/b") == 32u);
}

TEST_CASE("literal segments past the trie's depth are still compared", "[archive]") {
  std::string deep;
  for (std::size_t i = 0; i < archive::max_trie_depth + 4; ++i) deep += "/d" + std::to_string(i);
  const compiled c(deep + "/* /deep/:splat\n" + deep + "x /other\n");
  CHECK(c.answer(deep + "/z") == "301 /deep/z");
  CHECK(c.answer(deep + "x") == "301 /other");
  // The same path but for a segment below the trie's depth.
  std::string differs;
  for (std::size_t i = 0; i < archive::max_trie_depth + 4; ++i) {
    differs += i == archive::max_trie_depth + 2 ? std::string("/other") : "/d" + std::to_string(i);
  }
  CHECK(c.answer(differs + "/z") == "miss");
}

TEST_CASE("ten thousand rules match as the first of them would", "[archive]") {
  std::string text;
  for (int i = 0; i < 10000; ++i) {
    const std::string n = std::to_string(i);
    text += "/section" + std::to_string(i % 100) + "/page" + n + "/:id /target" + n + "/:id\n";
  }
  text += "/:x/* /fallback/:x\n";
  const compiled c(text);
  CHECK(c.matcher.size() == 10001);
  CHECK(c.answer("/section42/page4242/7") == "301 /target4242/7");
  CHECK(c.answer("/section0/page9900/x") == "301 /target9900/x");
  CHECK(c.answer("/section1/page4242/7") == "301 /fallback/section1");
  CHECK(c.answer("/nowhere") == "301 /fallback/nowhere");
  CHECK(c.answer("/") == "miss");
}

TEST_CASE("compiling is deterministic, and the matcher reads a copy of the blob the same",
          "[archive]") {
  const compiled c(sample_rules);
  CHECK(archive::compile_matcher(c.rules) == c.blob);
  const std::vector<std::byte> copy(c.blob);
  const archive::redirect_matcher again(copy);
  archive::redirect_match a;
  archive::redirect_match b;
  for (const auto path : {"/news/x", "/en/guide", "/en/zz", "/nothing"}) {
    CAPTURE(path);
    const bool matched = c.matcher.match({{}, path, {}}, a);
    CHECK(again.match({{}, path, {}}, b) == matched);
    if (matched) CHECK(a.target == b.target);
  }
  CHECK(std::string_view(reinterpret_cast<const char*>(c.blob.data()), 4) == "KWRM");
}

TEST_CASE("a matcher with no rules matches nothing", "[archive]") {
  const auto blob = archive::compile_matcher({});
  const archive::redirect_matcher matcher(blob);
  archive::redirect_match out;
  CHECK(matcher.size() == 0);
  CHECK_FALSE(matcher.match({{}, "/", {}}, out));
  CHECK_FALSE(matcher.first_path_match("/a").has_value());
}

TEST_CASE("compiling a rule whose to uses an unbound name throws", "[archive]") {
  auto rules = archive::parse_redirects("/a/:x /b/:x\n", "_redirects");
  rules[0].to = "/b/:y";
  CHECK_THROWS_AS(archive::compile_matcher(rules), std::invalid_argument);
}

TEST_CASE("every truncation of a blob is refused", "[archive][corrupt]") {
  const compiled c(sample_rules);
  for (std::size_t size = 0; size < c.blob.size(); ++size) {
    CAPTURE(size);
    const std::vector<std::byte> cut(c.blob.begin(),
                                     c.blob.begin() + static_cast<std::ptrdiff_t>(size));
    CHECK_THAT(refusal(cut), Catch::StartsWith("corrupt redirect rules: "));
  }
  std::vector<std::byte> longer(c.blob);
  longer.push_back(std::byte{0});
  CHECK(refusal(longer) == "corrupt redirect rules: bytes after the last area");
}

TEST_CASE("corrupt fields are refused, each with what is wrong", "[archive][corrupt]") {
  const compiled c(sample_rules);
  const layout at(c.blob);
  const auto refuse_with = [&](std::size_t offset, std::uint32_t value) {
    std::vector<std::byte> blob(c.blob);
    write32(blob, offset, value);
    return refusal(blob);
  };
  CHECK_THAT(refuse_with(0, 0x4d52574c), Catch::Contains("no magic"));
  CHECK_THAT(refuse_with(4, 2), Catch::Contains("unknown version"));
  CHECK_THAT(refuse_with(8, 0xffffffff), Catch::Contains("areas pass the end"));
  CHECK_THAT(refuse_with(at.rule(0, 1), 418), Catch::Contains("unknown status"));
  CHECK_THAT(refuse_with(at.rule(0, 2), 8), Catch::Contains("unknown flags"));
  CHECK_THAT(refuse_with(at.rule(0, 4), 0xffffffff), Catch::Contains("segments outside"));
  CHECK_THAT(refuse_with(at.rule(2, 6), 0xfffffff0), Catch::Contains("conditions outside"));
  CHECK_THAT(refuse_with(at.rule(0, 8), 0xffff), Catch::Contains("parts outside"));
  CHECK_THAT(refuse_with(at.rule(6, 9), 0xffffff), Catch::Contains("a host outside"));
  CHECK_THAT(refuse_with(at.segment(0, 0), 2), Catch::Contains("splat before the last"));
  CHECK_THAT(refuse_with(at.segment(0, 0), 3), Catch::Contains("unknown segment kind"));
  CHECK_THAT(refuse_with(at.segment(0, 2), 0), Catch::Contains("literal segment"));
  CHECK_THAT(refuse_with(at.segment(0, 1), 0xffffffff), Catch::Contains("a segment outside"));
  CHECK_THAT(refuse_with(at.condition(0, 0), 2), Catch::Contains("unknown condition kind"));
  CHECK_THAT(refuse_with(at.part(0, 0), 7), Catch::Contains("unknown target part kind"));
  CHECK_THAT(refuse_with(at.part(1, 1), 5), Catch::Contains("capture the rule does not make"));
  CHECK_THAT(refuse_with(at.node(0, 1), 0xffff), Catch::Contains("outside the lists"));
  CHECK_THAT(refuse_with(at.node(0, 4), 0xffff), Catch::Contains("outside the lists"));
  CHECK_THAT(refuse_with(at.node(0, 0), 0xffff), Catch::Contains("placeholder edge"));
  CHECK_THAT(refuse_with(at.list(0), 0xffff), Catch::Contains("does not exist"));
}

TEST_CASE("a corrupt trie or target is refused", "[archive][corrupt]") {
  const compiled c("/a/b /x\n/a/c /y\n/a/* /z\n/q/:p /r/:p\n");
  const layout at(c.blob);
  const std::size_t slot_count = read32(c.blob, 16);
  std::size_t taken = slot_count;
  for (std::size_t s = 0; s < slot_count; ++s) {
    if (read32(c.blob, at.slot(s, 1)) != 0xffffffff) taken = s;
  }
  REQUIRE(taken < slot_count);
  const auto refuse_with = [&](std::size_t offset, std::uint32_t value) {
    std::vector<std::byte> blob(c.blob);
    write32(blob, offset, value);
    return refusal(blob);
  };
  CHECK_THAT(refuse_with(at.slot(taken, 0), read32(c.blob, at.slot(taken, 0)) ^ 1),
             Catch::Contains("hash"));
  CHECK_THAT(refuse_with(at.slot(taken, 1), 999), Catch::Contains("nodes that do not exist"));
  CHECK_THAT(refuse_with(at.slot(taken, 2), 0), Catch::Contains("nodes that do not exist"));
  CHECK_THAT(refuse_with(at.slot(taken, 3), 0xffffff), Catch::Contains("outside strings"));
  // A literal target part that would put a CR into a Location.
  std::vector<std::byte> header_break(c.blob);
  const std::size_t text = at.strings + read32(c.blob, at.part(0, 2));
  header_break[text + 1] = std::byte{'\r'};
  CHECK_THAT(refusal(header_break), Catch::Contains("unsafe in a header"));
  // An absolute target whose host a capture would end.
  const compiled away("/:x https://example.com/:x\n");
  const layout away_at(away.blob);
  std::vector<std::byte> host_capture(away.blob);
  write32(host_capture, away_at.part(0, 3), read32(away.blob, away_at.part(0, 3)) - 1);
  CHECK_THAT(refusal(host_capture), Catch::Contains("a capture in a target's host"));
  // A target that is not a path: "//" sends visitors to another host.
  std::vector<std::byte> other_host(c.blob);
  other_host[text + 1] = std::byte{'/'};
  CHECK_THAT(refusal(other_host), Catch::Contains("not a path or a URL"));
}

TEST_CASE("a node whose rules are out of order is refused", "[archive][corrupt]") {
  const compiled c("/a/:x /z\n/a/:y/ /y\n");  // both end at the node of "/a/:placeholder"
  const layout at(c.blob);
  REQUIRE(read32(c.blob, at.node(2, 2)) == 2);
  const std::size_t first = read32(c.blob, at.node(2, 1));
  std::vector<std::byte> blob(c.blob);
  write32(blob, at.list(first), 1);
  write32(blob, at.list(first + 1), 0);
  CHECK_THAT(refusal(blob), Catch::Contains("out of order"));
  write32(blob, at.list(first), 1);
  write32(blob, at.list(first + 1), 1);
  CHECK_THAT(refusal(blob), Catch::Contains("out of order"));
}

TEST_CASE("flipped bytes never lead a match out of the blob", "[archive][corrupt]") {
  const compiled c(sample_rules);
  const std::string_view paths[] = {"/news/a", "/en/guide", "/store", "/search", "/x/y", "/"};
  std::size_t refused = 0;
  for (std::size_t i = 0; i < c.blob.size(); ++i) {
    for (const unsigned flip : {0x01U, 0x80U, 0xffU}) {
      std::vector<std::byte> blob(c.blob);
      blob[i] ^= static_cast<std::byte>(flip);
      try {
        const archive::redirect_matcher matcher(blob);
        archive::redirect_match out;
        for (const auto path : paths) {
          if (!matcher.match({"old.example.com", path, "id=1&q=%41"}, out)) continue;
          const bool safe = std::all_of(out.target.begin(), out.target.end(), [](char ch) {
            return static_cast<unsigned char>(ch) > 0x20 && static_cast<unsigned char>(ch) < 0x7f;
          });
          if (!safe || !(out.target.starts_with('/') || out.target.starts_with("http"))) {
            FAIL("flip at " << i << " gives " << out.target);
          }
        }
      } catch (const std::runtime_error&) {
        ++refused;
      }
    }
  }
  CHECK(refused > 0);
}
