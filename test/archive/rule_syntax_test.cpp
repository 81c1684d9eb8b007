#include "archive/rule_syntax.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace archive = kawipiko::archive;
using archive::segment_kind;

namespace {

archive::located_pattern parse(std::string_view text) {
  return archive::parse_located_pattern(text, "_redirects", 7);
}

// The reason parse_located_pattern gives for `text`, after checking the file and line.
std::string refusal(std::string_view text) {
  try {
    (void)parse(text);
  } catch (const archive::rules_error& e) {
    CHECK(e.file() == "_redirects");
    CHECK(e.line() == 7);
    return e.reason();
  }
  FAIL("accepted: " << text);
  return {};
}

// The captures of a match of `pattern` against `path`, or "no" when it does not match.
std::vector<std::string> captures(std::string_view pattern, std::string_view path) {
  const auto parsed = parse(pattern);
  std::array<std::string_view, archive::max_captures> found{};
  if (!archive::match_path(parsed.path, path, found)) return {"no"};
  return {found.begin(), found.begin() + static_cast<std::ptrdiff_t>(parsed.path.capture_count())};
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("a rules error names the file and the line on one line", "[archive]") {
  const archive::rules_error error("site/_redirects", 12, "unknown status '299'");
  CHECK(std::string(error.what()) == "'site/_redirects' line 12: unknown status '299'");
  CHECK(error.file() == "site/_redirects");
  CHECK(error.line() == 12);
  CHECK(error.reason() == "unknown status '299'");
}

TEST_CASE("rules files are read line by line, numbered from 1, CRLF or LF", "[archive]") {
  std::vector<std::string> seen;
  archive::for_each_line("a\r\n\nb\rc\nlast", [&](std::string_view line, std::size_t number) {
    seen.push_back(std::to_string(number) + ":" + std::string(line));
  });
  CHECK(seen == strings{"1:a", "2:", "3:b\rc", "4:last"});
  seen.clear();
  archive::for_each_line("x\n", [&](std::string_view line, std::size_t number) {
    seen.push_back(std::to_string(number) + ":" + std::string(line));
  });
  CHECK(seen == strings{"1:x"});
  archive::for_each_line("", [&](std::string_view, std::size_t) { FAIL("a line in nothing"); });
}

TEST_CASE("patterns parse into literal, placeholder and splat segments", "[archive]") {
  const auto news = parse("/news/:year/*");
  CHECK(news.host.empty());
  REQUIRE(news.path.segments.size() == 3);
  CHECK(news.path.segments[0].kind == segment_kind::literal);
  CHECK(news.path.segments[0].text == "news");
  CHECK(news.path.segments[1].kind == segment_kind::placeholder);
  CHECK(news.path.segments[1].text == "year");
  CHECK(news.path.segments[2].kind == segment_kind::splat);
  CHECK_FALSE(news.path.trailing_slash);
  CHECK_FALSE(news.path.is_literal());
  CHECK(news.path.capture_count() == 2);

  const auto root = parse("/");
  CHECK(root.path.segments.empty());
  CHECK(root.path.trailing_slash);
  CHECK(root.path.is_literal());
  CHECK(root.path.literal_path() == "/");

  const auto slashed = parse("/a/b/");
  CHECK(slashed.path.trailing_slash);
  CHECK(slashed.path.literal_path() == "/a/b");
  CHECK(parse("/a/b").path.literal_path() == "/a/b");
}

TEST_CASE("literal segments are percent-decoded, a colon inside one is literal", "[archive]") {
  const auto pattern = parse("/caf%C3%A9/a%20b/x:y");
  CHECK(pattern.path.literal_path() == "/caf\xc3\xa9/a b/x:y");
  CHECK(parse("/caf\xc3\xa9").path.literal_path() == "/caf\xc3\xa9");
}

TEST_CASE("a domain-level pattern keeps its host in lower case, port included", "[archive]") {
  const auto a = parse("https://Old.Example.com/blog/*");
  CHECK(a.host == "old.example.com");
  CHECK(a.path.segments.size() == 2);
  const auto b = parse("http://example.com:8080");
  CHECK(b.host == "example.com:8080");
  CHECK(b.path.segments.empty());
  CHECK(b.path.trailing_slash);
}

TEST_CASE("malformed patterns are refused with the reason", "[archive]") {
  CHECK_THAT(refusal("news"), Catch::Contains("must start with '/'"));
  CHECK_THAT(refusal(""), Catch::Contains("must start with '/'"));
  CHECK_THAT(refusal("/a//b"), Catch::Contains("empty segment"));
  CHECK_THAT(refusal("//"), Catch::Contains("empty segment"));
  CHECK_THAT(refusal("/a/*/b"), Catch::Contains("'*' must be the last segment"));
  CHECK_THAT(refusal("/a/*/"), Catch::Contains("'*' must be the last segment"));
  CHECK_THAT(refusal("/a*"), Catch::Contains("'*' must be a whole segment"));
  CHECK_THAT(refusal("/:a-:b"), Catch::Contains("whole segment ':name'"));
  CHECK_THAT(refusal("/:"), Catch::Contains("whole segment ':name'"));
  CHECK_THAT(refusal("/:1a"), Catch::Contains("whole segment ':name'"));
  CHECK_THAT(refusal("/:a/:a"), Catch::Contains("':a' bound twice"));
  CHECK_THAT(refusal("/:splat"), Catch::Contains("match it with '*'"));
  CHECK_THAT(refusal("/a%2"), Catch::Contains("malformed percent-escape"));
  CHECK_THAT(refusal("/a%zz"), Catch::Contains("malformed percent-escape"));
  CHECK_THAT(refusal("/a%2Fb"), Catch::Contains("escaped '/'"));
  CHECK_THAT(refusal("/a%0Ab"), Catch::Contains("control byte"));
  CHECK_THAT(refusal("/a\x01"), Catch::Contains("control byte"));
  CHECK_THAT(refusal("/a/./b"), Catch::Contains("'.' or '..'"));
  CHECK_THAT(refusal("/a/%2e%2e"), Catch::Contains("'.' or '..'"));
  CHECK_THAT(refusal("/a?b=1"), Catch::Contains("no query"));
  CHECK_THAT(refusal("/a#top"), Catch::Contains("no query"));
  CHECK_THAT(refusal("https:///a"), Catch::Contains("not a host name"));
  CHECK_THAT(refusal("https://a_b/"), Catch::Contains("not a host name"));
  CHECK_THAT(refusal("https://a:/"), Catch::Contains("not a host name"));
  CHECK_THAT(refusal("https://a:123456/"), Catch::Contains("not a host name"));
  CHECK_THAT(refusal("https://:sub.example.com/"), Catch::Contains("not a host name"));
}

TEST_CASE("a pattern has at most 64 segments and 16 captures", "[archive]") {
  std::string long_pattern;
  for (int i = 0; i < 64; ++i) long_pattern += "/s";
  CHECK(parse(long_pattern).path.segments.size() == 64);
  CHECK_THAT(refusal(long_pattern + "/s"), Catch::Contains("more than 64 segments"));
  std::string many;
  for (int i = 0; i < 16; ++i) many += "/:p" + std::to_string(i);
  CHECK(parse(many).path.capture_count() == 16);
  CHECK_THAT(refusal(many + "/*"), Catch::Contains("more than 16 placeholders"));
}

TEST_CASE("a pattern matches its path, a trailing slash in it matches both forms", "[archive]") {
  CHECK(captures("/a", "/a").empty());
  CHECK(captures("/a", "/a/") == strings{"no"});
  CHECK(captures("/a/", "/a").empty());
  CHECK(captures("/a/", "/a/").empty());
  CHECK(captures("/a", "/ab") == strings{"no"});
  CHECK(captures("/a", "/a/b") == strings{"no"});
  CHECK(captures("/a/b", "/a") == strings{"no"});
  CHECK(captures("/", "/").empty());
  CHECK(captures("/", "/a") == strings{"no"});
  CHECK(captures("/a b", "/a b").empty());
}

TEST_CASE("placeholders bind whole non-empty segments", "[archive]") {
  CHECK(captures("/news/:year/:slug", "/news/2004/story") == strings{"2004", "story"});
  CHECK(captures("/news/:year/:slug", "/news/2004") == strings{"no"});
  CHECK(captures("/news/:year/:slug", "/news/2004/story/more") == strings{"no"});
  CHECK(captures("/:lang/", "/en/") == strings{"en"});
  CHECK(captures("/:lang/", "/en") == strings{"en"});
  CHECK(captures("/:lang", "/") == strings{"no"});
}

TEST_CASE("a splat binds the rest of the path, possibly empty", "[archive]") {
  CHECK(captures("/news/*", "/news/2004/01/story") == strings{"2004/01/story"});
  CHECK(captures("/news/*", "/news/a/") == strings{"a/"});
  CHECK(captures("/news/*", "/news/") == strings{""});
  CHECK(captures("/news/*", "/news") == strings{""});
  CHECK(captures("/news/*", "/newsletter") == strings{"no"});
  CHECK(captures("/*", "/") == strings{""});
  CHECK(captures("/*", "/a/b") == strings{"a/b"});
  CHECK(captures("/:lang/*", "/en/a/b") == strings{"en", "a/b"});
}

TEST_CASE("a match needs room for its captures", "[archive]") {
  const auto pattern = parse("/:a/:b").path;
  std::array<std::string_view, 1> one{};
  CHECK_FALSE(archive::match_path(pattern, "/x/y", one));
  std::array<std::string_view, 2> two{};
  CHECK(archive::match_path(pattern, "/x/y", two));
  CHECK_FALSE(archive::match_path(pattern, "", two));
  CHECK_FALSE(archive::match_path(pattern, "x/y", two));
}

TEST_CASE("hosts match ignoring case, and a port only when the rule names one", "[archive]") {
  CHECK(archive::host_matches("example.com", "example.com"));
  CHECK(archive::host_matches("example.com", "EXAMPLE.com"));
  CHECK(archive::host_matches("example.com", "example.com:8080"));
  CHECK(archive::host_matches("example.com:8080", "example.com:8080"));
  CHECK_FALSE(archive::host_matches("example.com:8080", "example.com"));
  CHECK_FALSE(archive::host_matches("example.com:8080", "example.com:80"));
  CHECK_FALSE(archive::host_matches("example.com", "www.example.com"));
  CHECK_FALSE(archive::host_matches("example.com", ""));
  CHECK_FALSE(archive::host_matches("", "example.com"));
  CHECK_FALSE(archive::host_matches("::1", "[::1]"));
}

TEST_CASE("a host's port is what follows its last ':' outside brackets", "[archive]") {
  CHECK(archive::host_without_port("example.com:8080") == "example.com");
  CHECK(archive::host_without_port("example.com") == "example.com");
  CHECK(archive::host_without_port("[::1]:443") == "[::1]");
  CHECK(archive::host_without_port("[::1]") == "[::1]");
  CHECK(archive::host_without_port("").empty());
}

TEST_CASE("a host is at most 260 bytes", "[archive]") {
  const std::string name(archive::max_host_size, 'h');
  CHECK(parse("https://" + name + "/a").host == name);
  CHECK_THAT(refusal("https://" + name + "h/a"), Catch::Contains("not a host name"));
}

TEST_CASE("percent_decode decodes escapes and refuses broken ones", "[archive]") {
  CHECK(archive::percent_decode("a%20b%2F%c3%A9") == std::string("a b/\xc3\xa9"));
  CHECK(archive::percent_decode("plain+text") == std::string("plain+text"));
  CHECK_FALSE(archive::percent_decode("%").has_value());
  CHECK_FALSE(archive::percent_decode("a%4").has_value());
  CHECK_FALSE(archive::percent_decode("%x1").has_value());
}

TEST_CASE("placeholder names are a letter or '_', then letters, digits and '_'", "[archive]") {
  for (const auto name : {"a", "_", "year", "Slug_2", "_x9"})
    CHECK(archive::is_placeholder_name(name));
  for (const auto name : {"", "1a", "a-b", "a.b", "\xc3\xa9"}) {
    CHECK_FALSE(archive::is_placeholder_name(name));
  }
}
