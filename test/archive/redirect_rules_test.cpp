#include "archive/redirect_rules.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace archive = kawipiko::archive;

namespace {

using strings = std::vector<std::string>;

std::vector<archive::redirect_rule> parse(std::string_view text) {
  return archive::parse_redirects(text, "site/_redirects");
}

archive::redirect_rule parse_one(std::string_view line) {
  auto rules = parse(line);
  REQUIRE(rules.size() == 1);
  return rules.front();
}

struct refusal {
  std::size_t line = 0;
  std::string reason;
};

refusal refuse(std::string_view text) {
  try {
    (void)parse(text);
  } catch (const archive::rules_error& e) {
    CHECK(e.file() == "site/_redirects");
    return {e.line(), e.reason()};
  }
  FAIL("accepted: " << text);
  return {};
}

// Refuses `rule` when it is the third line of a file.
std::string refuse_third(std::string_view rule) {
  const auto result = refuse("# comment\n/ok /fine\n" + std::string(rule) + "\n/also /fine 302\n");
  CHECK(result.line == 3);
  return result.reason;
}

strings describe(const std::vector<archive::target_part>& parts) {
  strings out;
  for (const auto& part : parts) {
    out.push_back((part.is_placeholder ? ":" : "") + part.text + (part.in_query ? " (q)" : ""));
  }
  return out;
}

}  // namespace

TEST_CASE("redirect rules are read one a line, skipping blank lines and comments", "[archive]") {
  const auto rules = parse(
      "# moved pages\n"
      "\n"
      "/old /new\n"
      "  /a\t/b   302   # the reason\r\n"
      "/c /d 308!\n"
      "#/e /f\n"
      "/g /h 200");
  REQUIRE(rules.size() == 4);
  CHECK(rules[0].line == 3);
  CHECK(rules[0].from.literal_path() == "/old");
  CHECK(rules[0].to == "/new");
  CHECK(rules[0].status == 301);
  CHECK_FALSE(rules[0].force);
  CHECK(rules[1].line == 4);
  CHECK(rules[1].to == "/b");
  CHECK(rules[1].status == 302);
  CHECK(rules[2].status == 308);
  CHECK(rules[2].force);
  CHECK(rules[3].line == 7);
  CHECK(rules[3].status == 200);
  CHECK_FALSE(rules[3].is_redirect());
  CHECK(rules[0].is_redirect());
}

TEST_CASE("every status Netlify documents for a static site is accepted", "[archive]") {
  for (const unsigned status : {200U, 301U, 302U, 303U, 307U, 308U, 404U}) {
    const auto rule = parse_one("/a /b " + std::to_string(status));
    CHECK(rule.status == status);
    CHECK(parse_one("/a /b " + std::to_string(status) + "!").force);
  }
  CHECK(parse_one("/en/* /en/404.html 404").status == 404);
}

TEST_CASE("query conditions come between from and to, and may bind", "[archive]") {
  const auto rule = parse_one("/store id=:id sort=price%20asc /blog/:id 301");
  REQUIRE(rule.query.size() == 2);
  CHECK(rule.query[0].name == "id");
  CHECK(rule.query[0].binds);
  CHECK(rule.query[0].value == "id");
  CHECK(rule.query[1].name == "sort");
  CHECK_FALSE(rule.query[1].binds);
  CHECK(rule.query[1].value == "price asc");
  CHECK_FALSE(rule.is_plain());
  CHECK(archive::capture_names(rule) == strings{"id"});
}

TEST_CASE("absolute targets and domain-level rules are read with their hosts", "[archive]") {
  const auto away = parse_one("/docs/* https://docs.example.com/:splat 301!");
  CHECK(away.is_absolute());
  CHECK(away.to == "https://docs.example.com/:splat");
  CHECK(away.host.empty());
  const auto domain = parse_one("https://Old.example.com/* https://new.example.com/:splat 301!");
  CHECK(domain.host == "old.example.com");
  CHECK_FALSE(domain.is_plain());
  CHECK(domain.force);
  CHECK(parse_one("/a http://example.com:8080/b").is_absolute());
}

TEST_CASE("a rule is plain when its from is a literal path with no host nor query", "[archive]") {
  CHECK(parse_one("/a /b").is_plain());
  CHECK(parse_one("/a/ /b").is_plain());
  CHECK_FALSE(parse_one("/a/* /b").is_plain());
  CHECK_FALSE(parse_one("/:x /b").is_plain());
  CHECK_FALSE(parse_one("/a x=1 /b").is_plain());
  CHECK_FALSE(parse_one("https://h/a /b").is_plain());
}

TEST_CASE("a plain rule answers its path, and the slashed one when from ends in '/'", "[archive]") {
  CHECK(archive::plain_paths(parse_one("/a /b")) == strings{"/a"});
  CHECK(archive::plain_paths(parse_one("/a/ /b")) == strings{"/a", "/a/"});
  CHECK(archive::plain_paths(parse_one("/ /b")) == strings{"/"});
  CHECK(archive::plain_paths(parse_one("/caf%C3%A9/ /b")) ==
        strings{"/caf\xc3\xa9", "/caf\xc3\xa9/"});
}

TEST_CASE("bytes unsafe in a Location are percent-encoded in to, escapes stay", "[archive]") {
  CHECK(parse_one("/a /caf\xc3\xa9/x%20y").to == "/caf%C3%A9/x%20y");
  CHECK(parse_one("/a /x\"<>\\^`{|}").to == "/x%22%3C%3E%5C%5E%60%7B%7C%7D");
  CHECK(parse_one("/a /b?c=d&e=%2F#frag").to == "/b?c=d&e=%2F#frag");
}

TEST_CASE("append_url_safe encodes what is unsafe and a '%' that starts no escape", "[archive]") {
  std::string out = "x";
  archive::append_url_safe(out, "a b%zz%41\x01\x7f\xff\"");
  CHECK(out == "xa%20b%25zz%41%01%7F%FF%22");
  for (unsigned c = 0; c < 256; ++c) {
    INFO(c);
    CHECK(archive::is_url_safe(static_cast<unsigned char>(c)) ==
          (c > 0x20 && c < 0x7f &&
           std::string_view("\"<>\\^`{|}").find(static_cast<char>(c)) == std::string_view::npos));
  }
}

TEST_CASE("a redirect keeps the request's query unless to has one or it matched on it",
          "[archive]") {
  CHECK(parse_one("/a /b").keeps_query());
  CHECK_FALSE(parse_one("/a /b?x=1").keeps_query());
  CHECK_FALSE(parse_one("/a /b#top").keeps_query());
  CHECK(parse_one("/a https://example.com/b").keeps_query());
  CHECK_FALSE(parse_one("/a x=:x /b/:x").keeps_query());
  CHECK_FALSE(parse_one("/a x=1 /b").keeps_query());
}

TEST_CASE("to splits into literal text and whole placeholder names", "[archive]") {
  CHECK(describe(archive::split_target("/blog/:year-:month-:slug.html")) ==
        strings{"/blog/", ":year", "-", ":month", "-", ":slug", ".html"});
  CHECK(describe(archive::split_target("https://example.com:8080/:splat")) ==
        strings{"https://example.com:8080/", ":splat"});
  CHECK(describe(archive::split_target("/s?q=:q&x=:_x9#:f")) ==
        strings{"/s", "?q= (q)", ":q (q)", "&x= (q)", ":_x9 (q)", "# (q)", ":f (q)"});
  CHECK(describe(archive::split_target("/a:/b::c")) == strings{"/a:/b:", ":c"});
  CHECK(archive::split_target("").empty());
}

TEST_CASE("captures are named in segment order, then by binding query conditions", "[archive]") {
  CHECK(archive::capture_names(parse_one("/:a/x/:b/* q=:c r=1 /:a/:b/:c/:splat")) ==
        strings{"a", "b", "splat", "c"});
  CHECK(archive::capture_names(parse_one("/a /b")).empty());
}

TEST_CASE("an unknown status is refused with its line", "[archive]") {
  CHECK_THAT(refuse_third("/a /b 299"), Catch::Contains("unknown status '299'"));
  CHECK_THAT(refuse_third("/a /b 30"), Catch::Contains("unknown status '30'"));
  CHECK_THAT(refuse_third("/a /b 3010"), Catch::Contains("unknown status"));
  CHECK_THAT(refuse_third("/a /b moved"), Catch::Contains("unknown status 'moved'"));
  CHECK_THAT(refuse_third("/a /b !"), Catch::Contains("unknown status '!'"));
  CHECK_THAT(refuse_third("/a /b 301!!"), Catch::Contains("unknown status"));
}

TEST_CASE("a to using a placeholder from does not bind is refused", "[archive]") {
  CHECK_THAT(refuse_third("/news/:year /blog/:year/:slug"),
             Catch::Contains("'to' uses ':slug', which 'from' does not bind"));
  CHECK_THAT(refuse_third("/news /blog/:splat"), Catch::Contains("':splat'"));
  CHECK_THAT(refuse_third("/store id=:id /blog/:ident"), Catch::Contains("':ident'"));
}

TEST_CASE("a 200 or 404 to another origin is refused as a proxy", "[archive]") {
  CHECK_THAT(refuse_third("/api/* https://api.example.com/:splat 200"),
             Catch::Contains("would be a proxy"));
  CHECK_THAT(refuse_third("/x http://example.com/404.html 404"),
             Catch::Contains("would be a proxy"));
}

TEST_CASE("conditions on the visitor are refused by name", "[archive]") {
  for (const std::string name : {"Country", "Language", "Role", "Cookie"}) {
    CAPTURE(name);
    CHECK_THAT(refuse_third("/ /anz 302 " + name + "=au,nz"),
               Catch::Contains("'" + name + "='") && Catch::Contains("static server"));
    CHECK_THAT(refuse_third("/admin/* /admin/:splat 200! " + name + "=admin"),
               Catch::Contains("'" + name + "='"));
    CHECK_THAT(refuse_third("/ " + name + "=au /anz 302"), Catch::Contains("'" + name + "='"));
  }
  CHECK_THAT(refuse_third("/a /b 301 Weather=sunny"), Catch::Contains("unknown condition"));
  CHECK_THAT(refuse_third("/a /b Weather=sunny"), Catch::Contains("unknown condition"));
}

TEST_CASE("malformed lines are refused with what is wrong", "[archive]") {
  CHECK_THAT(refuse_third("/lonely"), Catch::Contains("needs 'from' and 'to'"));
  CHECK_THAT(refuse_third("/a x=1"), Catch::Contains("needs 'from' and 'to'"));
  CHECK_THAT(refuse_third("/a b"), Catch::Contains("must be a path or an http(s) URL"));
  CHECK_THAT(refuse_third("/a ftp://example.com/"), Catch::Contains("path or an http(s) URL"));
  CHECK_THAT(refuse_third("/a //evil.example/"), Catch::Contains("starting with '//'"));
  CHECK_THAT(refuse_third("/a /b%zz"), Catch::Contains("malformed percent-escape"));
  CHECK_THAT(refuse_third("/a /b\x01"), Catch::Contains("control byte"));
  CHECK_THAT(refuse_third("/a /b\rc"), Catch::Contains("control byte"));
  CHECK_THAT(refuse_third("/a /b 301 extra"), Catch::Contains("unexpected 'extra'"));
  CHECK_THAT(refuse_third("/a =1 /b"), Catch::Contains("needs a name"));
  CHECK_THAT(refuse_third("/a x=%zz /b"), Catch::Contains("malformed percent-escape"));
  CHECK_THAT(refuse_third("/a x=:1 /b"), Catch::Contains("not a placeholder name"));
  CHECK_THAT(refuse_third("/a x=:splat /b"), Catch::Contains("not a placeholder name"));
  CHECK_THAT(refuse_third("/:id id=:id /b/:id"), Catch::Contains("':id' bound twice"));
  CHECK_THAT(refuse_third("/a/:b x=:b /c"), Catch::Contains("bound twice"));
  CHECK_THAT(refuse_third("a /b"), Catch::Contains("must start with '/'"));
  CHECK_THAT(refuse_third("/:x https://:x.example.com/ 301"),
             Catch::Contains("placeholder in the host"));
  CHECK_THAT(refuse_third("/a/*/b /c"), Catch::Contains("last segment"));
  CHECK_THAT(refuse_third("/:x https://example.com:x"), Catch::Contains("placeholder in the host"));
  CHECK(parse_one("/a/* https://example.com?next=:splat").to == "https://example.com?next=:splat");
  CHECK(parse_one("/a/* https://example.com#:splat").to == "https://example.com#:splat");
}

TEST_CASE("a plain rule redirecting to itself is refused as a loop", "[archive]") {
  CHECK_THAT(refuse_third("/a /a"), Catch::Contains("'/a' redirects to itself"));
  CHECK_THAT(refuse_third("/a /a?x=1 302"), Catch::Contains("redirects to itself"));
  CHECK_THAT(refuse_third("/a/ /a"), Catch::Contains("redirects to itself"));
  CHECK_THAT(refuse_third("/a/ /a/ 307!"), Catch::Contains("redirects to itself"));
  CHECK_THAT(refuse_third("/caf%C3%A9 /caf\xc3\xa9"), Catch::Contains("redirects to itself"));
  CHECK_THAT(refuse_third("/a/b /a/c/../b"), Catch::Contains("redirects to itself"));
}

TEST_CASE("a cycle among plain redirects is refused at its first rule", "[archive]") {
  const auto cycle = refuse("/start /a\n/x /y\n/b /c\n/a /b\n/c /a\n");
  CHECK(cycle.line == 3);
  CHECK(cycle.reason == "redirect loop: '/b' -> '/c' -> '/a' -> '/b'");
  const auto pair = refuse("/one/ /two\n/two /one\n");
  CHECK(pair.line == 1);
  CHECK(pair.reason == "redirect loop: '/one' -> '/two' -> '/one'");
}

TEST_CASE("redirects that only look circular are not loops", "[archive]") {
  // A rewrite serves content and sends nobody anywhere; an absolute URL leaves the site; a
  // pattern rule is not followed statically; "/a" to "/a/" is another path.
  CHECK(parse("/a /b 200\n/b /a 200\n").size() == 2);
  CHECK(parse("/a /b\n/b /a 404\n").size() == 2);
  CHECK(parse("/a https://example.com/a\n").size() == 1);
  CHECK(parse("/a /b\n/b/* /a\n").size() == 2);
  CHECK(parse("/a /a/\n").size() == 1);
  CHECK(parse("/a x=1 /a\n").size() == 1);
  // Only the first rule for a path answers it.
  CHECK(parse("/a /b\n/b /c\n/b /a\n").size() == 3);
}
