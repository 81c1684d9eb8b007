#include "archive/site_rules.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "archive/redirect_matcher.hpp"
#include "archive/schema.hpp"
#include "support/temp_folder.hpp"

namespace archive = kawipiko::archive;
namespace flags = kawipiko::archive::schema::entry_flags;
using kawipiko::test::temp_folder;

namespace {

// The rules of one site whose files hold `redirects` and `headers` (empty: no such file).
archive::site_rules rules_of(const temp_folder& folder, const std::string& redirects,
                             const std::string& headers = {}, std::string_view host = {}) {
  const std::string redirects_file =
      redirects.empty() ? std::string() : folder.write("_redirects", redirects).string();
  const std::string headers_file =
      headers.empty() ? std::string() : folder.write("_headers", headers).string();
  return archive::site_rules(redirects_file, headers_file, host);
}

archive::route file(std::size_t item) {
  archive::route answer;
  answer.item = item;
  answer.archived = true;
  return answer;
}

// "/", "/a.html" (item 1, also under its alias "/a") and "/docs/" (item 2), whose slash
// redirect is "/docs".
archive::route_map archived_paths() {
  archive::route_map routes{
      {"/", file(0)}, {"/a.html", file(1)}, {"/a", file(1)}, {"/docs/", file(2)}};
  archive::route redirect;
  redirect.status = 308;
  redirect.location = "/docs/";
  redirect.keeps_query = true;
  redirect.archived = true;
  routes.emplace("/docs", redirect);
  return routes;
}

}  // namespace

TEST_CASE("plain rules add routes where nothing is archived, the first rule per path winning",
          "[archive][rules]") {
  const temp_folder folder;
  const auto rules = rules_of(folder,
                              "/a /elsewhere 301\n"
                              "/new /a.html 200\n"
                              "/new /other 302\n"
                              "/docs-old/ /docs/?from=old 302\n"
                              "/section /docs 404\n");
  auto routes = archived_paths();
  const auto blobs = rules.apply_redirects(routes);
  CHECK(blobs.patterns.empty());
  CHECK(blobs.forced.empty());
  CHECK(routes.at("/a").status == 200);  // shadowed by the alias of a.html
  CHECK(routes.at("/new").status == 200);
  CHECK(routes.at("/new").item == 1);
  CHECK(routes.at("/new").rule_line == 2);
  CHECK_FALSE(routes.at("/new").archived);
  for (const char* path : {"/docs-old", "/docs-old/"}) {
    INFO(path);
    CHECK(routes.at(path).status == 302);
    CHECK(routes.at(path).location == "/docs/?from=old");
    CHECK_FALSE(routes.at(path).keeps_query);
  }
  // A rewrite to a folder without its slash serves the folder's index.
  CHECK(routes.at("/section").status == 404);
  CHECK(routes.at("/section").item == 2);
}

TEST_CASE("forced rules without host or query are folded, the first that matches winning",
          "[archive][rules]") {
  const temp_folder folder;
  const auto rules = rules_of(folder,
                              "/a.html /first 301!\n"
                              "/* /everything/:splat 302!\n"
                              "/docs/ /a.html 200!\n");
  auto routes = archived_paths();
  const auto blobs = rules.apply_redirects(routes);
  CHECK(blobs.forced.empty());
  CHECK(blobs.pattern_count == 2);  // "/*" and the rule after it, for the paths not archived
  CHECK(routes.at("/a.html").location == "/first");
  CHECK(routes.at("/a.html").archived);
  CHECK(routes.at("/a").location == "/everything/a");
  CHECK(routes.at("/a").keeps_query);
  CHECK(routes.at("/docs").location == "/everything/docs");  // the slash redirect too
  CHECK(routes.at("/docs/").status == 302);                  // "/*" comes first
}

TEST_CASE("a forced rule with a host or a query flags the archived paths instead",
          "[archive][rules]") {
  const temp_folder folder;
  const auto rules = rules_of(folder,
                              "/a.html /plain 301!\n"
                              "/docs/* preview=:p /preview/:p 302!\n");
  auto routes = archived_paths();
  const auto blobs = rules.apply_redirects(routes);
  REQUIRE_FALSE(blobs.forced.empty());
  const archive::redirect_matcher forced(blobs.forced);
  CHECK(forced.size() == 2);
  CHECK(routes.at("/a.html").status == 200);  // not folded
  CHECK(routes.at("/a.html").forced_rules);
  CHECK(routes.at("/a.html").rule_line == 1);
  CHECK(routes.at("/docs/").forced_rules);
  CHECK(routes.at("/docs/").rule_line == 2);
  CHECK_FALSE(routes.at("/").forced_rules);
  CHECK_FALSE(routes.at("/a").forced_rules);
}

TEST_CASE("headers_for splits overrides, removals and security flags from the other lines",
          "[archive][rules]") {
  const temp_folder folder;
  const auto rules =
      rules_of(folder, {},
               "/*\n  X-A: 1\n  Cache-Control: no-cache\n  ! X-Content-Type-Options\n"
               "/x/*\n  X-A: 2\n  Content-Type: text/x\n  Location: /y\n"
               "  Strict-Transport-Security: max-age=60\n"
               "/x/z\n  ! Content-Type\n  ! Cache-Control\n");
  const auto root = rules.headers_for("/");
  CHECK(root.lines == "X-A: 1\r\n");
  CHECK(root.has_cache_control);
  CHECK(root.cache_control == "no-cache");
  CHECK(root.flags == flags::own_content_type_options);
  CHECK(root.block_lines == std::vector<std::size_t>{1});
  const auto x = rules.headers_for("/x/a");
  CHECK(x.lines == "X-A: 1, 2\r\nStrict-Transport-Security: max-age=60\r\n");
  CHECK(x.location_line == "Location: /y\r\n");
  CHECK(x.has_content_type);
  CHECK(x.content_type == "text/x");
  CHECK(x.flags == (flags::own_content_type_options | flags::own_hsts));
  const auto z = rules.headers_for("/x/z");
  CHECK_FALSE(z.has_content_type);  // removed after it was given
  CHECK(z.drop_content_type);
  CHECK_FALSE(z.has_cache_control);
  CHECK(z.drop_cache_control);
  CHECK(z.block_lines == std::vector<std::size_t>{1, 5, 10});
  CHECK(archive::site_rules().headers_for("/").lines.empty());
}

TEST_CASE("a _headers block for a host applies only in that host's folder", "[archive][rules]") {
  const temp_folder folder;
  CHECK_THROWS_WITH(rules_of(folder, {}, "https://a.test/*\n  X-A: 1\n"),
                    Catch::Contains("line 1: a block for the host 'a.test' needs --host-folders"));
  CHECK_THROWS_WITH(rules_of(folder, {}, "https://a.test/*\n  X-A: 1\n", "b.test"),
                    Catch::Contains("line 1: a block for the host 'a.test' in the folder of "
                                    "'b.test'"));
  const auto own = rules_of(folder, {}, "https://a.test/*\n  X-A: 1\n", "a.test");
  CHECK(own.headers_for("/x").lines == "X-A: 1\r\n");
}
