#include "archive/builder.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "archive/reader.hpp"
#include "archive/redirect_matcher.hpp"
#include "archive/schema.hpp"
#include "base/mapped_file.hpp"
#include "support/temp_folder.hpp"

namespace archive = kawipiko::archive;
namespace fs = std::filesystem;
using kawipiko::base::mapped_file;
using kawipiko::test::compressible_text;
using kawipiko::test::read_file;
using kawipiko::test::temp_folder;

namespace {

// An archive built from a folder, opened for lookups.
struct built {
  mapped_file file;
  archive::reader reader;
  archive::build_stats stats;

  built(const archive::build_options& options, const archive::build_hooks& hooks = {})
      : built(options, archive::build(options, hooks)) {}

  // The entry under `path`, which must exist.
  [[nodiscard]] archive::entry get(std::string_view path) const {
    archive::entry out;
    const auto status = reader.find(path, out);
    INFO(path);
    REQUIRE(status == archive::lookup_status::found);
    return out;
  }
  [[nodiscard]] bool has(std::string_view path) const {
    archive::entry out;
    const auto status = reader.find(path, out);
    REQUIRE(status != archive::lookup_status::corrupt);
    return status == archive::lookup_status::found;
  }
  // The fallback for `path`, which must exist.
  [[nodiscard]] archive::entry fallback(std::string_view path) const {
    archive::entry out;
    const auto status = reader.find_fallback(path, out);
    INFO(path);
    REQUIRE(status == archive::lookup_status::found);
    return out;
  }
  [[nodiscard]] bool has_fallback(std::string_view path) const {
    archive::entry out;
    const auto status = reader.find_fallback(path, out);
    REQUIRE(status != archive::lookup_status::corrupt);
    return status == archive::lookup_status::found;
  }
  [[nodiscard]] std::size_t count_keys(std::string_view prefix) const {
    std::size_t count = 0;
    std::error_code error;
    reader.database().for_each(
        [&](std::string_view key, std::string_view, std::size_t) {
          if (key.starts_with(prefix)) ++count;
        },
        error);
    REQUIRE(!error);
    return count;
  }

 private:
  built(const archive::build_options& options, archive::build_stats built_stats)
      : file(options.archive), reader(file.bytes()), stats(built_stats) {}
};

archive::build_options options_for(const temp_folder& sources, const temp_folder& out,
                                   const std::string& name = "site.cdb") {
  archive::build_options options;
  options.sources = sources.str();
  options.archive = (out / name).string();
  options.codecs = {{archive::encoding::br, 5}, {archive::encoding::gzip, 6}};
  options.jobs = 2;
  return options;
}

bool has_header(const archive::variant& v, std::string_view line) {
  return v.block.find(std::string(line) + "\r\n") != std::string_view::npos;
}

std::string location_of(const archive::entry& e) {
  const auto block = e.variants[0].block;
  const auto at = block.find("Location: ");
  REQUIRE(at != std::string_view::npos);
  const auto end = block.find("\r\n", at);
  return std::string(block.substr(at + 10, end - at - 10));
}

std::vector<std::string> temp_leftovers(const fs::path& folder) {
  std::vector<std::string> found;
  for (const auto& item : fs::directory_iterator(folder)) {
    if (item.path().filename().string().find(".tmp-") != std::string::npos) {
      found.push_back(item.path().string());
    }
  }
  return found;
}

}  // namespace

TEST_CASE("a file is answered under its own path with precomputed headers", "[archive]") {
  temp_folder sources, out;
  sources.write("hello.txt", "hello, world\n");
  const built site(options_for(sources, out));

  const auto hello = site.get("/hello.txt");
  CHECK(hello.status == 200);
  REQUIRE(hello.count == 1);  // too small to be worth compressing
  const auto& v = hello.variants[0];
  CHECK(v.coding == archive::encoding::identity);
  CHECK(v.body == "hello, world\n");
  CHECK(has_header(v, "Content-Type: text/plain; charset=utf-8"));
  CHECK(has_header(v, "Content-Length: 13"));
  CHECK(has_header(v, "Cache-Control: public, immutable, max-age=3600"));
  CHECK_FALSE(has_header(v, "Vary: Accept-Encoding"));
  REQUIRE(v.etag.size() == 34);
  CHECK(v.etag.front() == '"');
  CHECK(v.etag.back() == '"');
  // The 304 prefix holds the validators, not the representation's headers.
  CHECK(v.block.substr(0, v.length_304).find("Content-Type") == std::string_view::npos);
  CHECK(v.block.substr(0, v.length_partial).find("Content-Length") == std::string_view::npos);
  CHECK_FALSE(site.has("/missing.txt"));
}

TEST_CASE("text worth compressing gets br and gzip variants that decode to the content",
          "[archive]") {
  temp_folder sources, out;
  const std::string page = compressible_text(20000);
  sources.write("page.html", page);
  const built site(options_for(sources, out));

  const auto entry = site.get("/page.html");
  REQUIRE(entry.count == 3);
  CHECK(entry.variants[0].coding == archive::encoding::identity);
  CHECK(entry.variants[1].coding == archive::encoding::gzip);
  CHECK(entry.variants[2].coding == archive::encoding::br);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& v = entry.variants[i];
    CHECK(has_header(v, "Vary: Accept-Encoding"));
    CHECK(has_header(v, "Content-Type: text/html; charset=utf-8"));
    CHECK(has_header(v, "Content-Length: " + std::to_string(v.body.size())));
    if (v.coding == archive::encoding::identity) {
      CHECK(v.body == page);
      CHECK(v.block.find("Content-Encoding") == std::string_view::npos);
    } else {
      CHECK(v.body.size() < page.size() / 2);
      CHECK(has_header(v, "Content-Encoding: " + std::string(archive::token(v.coding))));
      const auto decoded = archive::decompress(v.coding, v.body, page.size());
      REQUIRE(decoded);
      CHECK(*decoded == page);
    }
  }
  // Each variant has its own strong ETag.
  CHECK(entry.variants[0].etag != entry.variants[1].etag);
  CHECK(entry.variants[1].etag != entry.variants[2].etag);
}

TEST_CASE("already-compressed types and identity-only archives keep one variant", "[archive]") {
  temp_folder sources, out;
  sources.write("image.png", compressible_text(20000));  // compressible bytes, but a png name
  sources.write("page.html", compressible_text(20000));
  auto options = options_for(sources, out);
  options.codecs = {};
  const built plain(options);
  CHECK(plain.get("/page.html").count == 1);
  const built site(options_for(sources, out, "other.cdb"));
  const auto image = site.get("/image.png");
  CHECK(image.count == 1);
  CHECK(has_header(image.variants[0], "Content-Type: image/png"));
  CHECK(site.get("/page.html").count == 3);
}

TEST_CASE("folder indexes, extension-less aliases and slash redirects are compiled", "[archive]") {
  temp_folder sources, out;
  sources.write("index.html", "home");
  sources.write("docs/index.htm", "docs home");
  sources.write("docs/index.txt", "not chosen: .htm comes first");
  sources.write("about.html", "about");
  sources.write("notes.txt", "notes");
  sources.write("empty/file.css", "x");
  auto options = options_for(sources, out);

  SECTION("by default") {
    const built site(options);
    CHECK(site.get("/").variants[0].body == "home");
    CHECK(site.get("/docs/").variants[0].body == "docs home");
    CHECK(has_header(site.get("/docs/").variants[0], "Content-Type: text/html; charset=utf-8"));
    CHECK(site.get("/about").variants[0].body == "about");
    CHECK(site.get("/notes").variants[0].body == "notes");
    CHECK(site.get("/docs/index").variants[0].body == "docs home");

    const auto to_folder = site.get("/docs");
    CHECK(to_folder.status == 308);
    CHECK(location_of(to_folder) == "/docs/");
    CHECK(to_folder.variants[0].body.empty());
    CHECK(has_header(to_folder.variants[0], "Content-Length: 0"));
    const auto to_file = site.get("/about.html/");
    CHECK(to_file.status == 308);
    CHECK(location_of(to_file) == "/about.html");
    CHECK(site.get("/about/").status == 308);
    // A folder with no index has no entry, so nothing redirects to it.
    CHECK_FALSE(site.has("/empty/"));
    CHECK_FALSE(site.has("/empty"));
    CHECK(site.stats.redirects > 0);
  }
  SECTION("each part can be turned off") {
    options.include_index = false;
    options.include_strip = false;
    options.include_slash_redirects = false;
    const built site(options);
    CHECK(site.has("/index.html"));
    CHECK_FALSE(site.has("/"));
    CHECK_FALSE(site.has("/docs/"));
    CHECK_FALSE(site.has("/about"));
    CHECK_FALSE(site.has("/about.html/"));
    CHECK(site.stats.redirects == 0);
  }
}

TEST_CASE("a real file or alias wins over a folder redirect of the same name", "[archive]") {
  temp_folder sources, out;
  sources.write("guide.html", "the guide page");
  sources.write("guide/index.html", "the guide folder");
  const built site(options_for(sources, out));
  CHECK(site.get("/guide").status == 200);
  CHECK(site.get("/guide").variants[0].body == "the guide page");
  CHECK(site.get("/guide/").variants[0].body == "the guide folder");
}

TEST_CASE("wildcards and error pages answer missing paths, the deepest folder winning",
          "[archive]") {
  temp_folder sources, out;
  sources.write("_wildcard.html", "root wildcard");
  sources.write("app/_wildcard.html", "app wildcard");
  sources.write("app/deep/page.html", "page");
  sources.write("docs/_404.html", "docs not found");
  sources.write("docs/404.html", "published 404");
  sources.write("blog/404.html", "blog not found");
  const built site(options_for(sources, out));

  CHECK_FALSE(site.has("/_wildcard.html"));  // not served under its own name
  CHECK_FALSE(site.has("/docs/_404.html"));
  CHECK(site.get("/docs/404.html").variants[0].body == "published 404");

  CHECK(site.fallback("/nothing").variants[0].body == "root wildcard");
  CHECK(site.fallback("/nothing").status == 200);
  CHECK(site.fallback("/app/x/y/z").variants[0].body == "app wildcard");
  CHECK(site.fallback("/app/deep/missing").variants[0].body == "app wildcard");
  CHECK(site.fallback("/app/").variants[0].body == "app wildcard");
  const auto docs = site.fallback("/docs/a/b");
  CHECK(docs.status == 404);
  CHECK(docs.variants[0].body == "docs not found");  // _404.html wins over 404.html
  CHECK(docs.variants[0].etag.empty());
  CHECK(site.fallback("/blog/x").variants[0].body == "blog not found");
  CHECK(site.fallback("/blog/x").status == 404);
}

TEST_CASE("without fallbacks a missing path has none", "[archive]") {
  temp_folder sources, out;
  sources.write("a/b/c.txt", "c");
  const built site(options_for(sources, out));
  CHECK_FALSE(site.has_fallback("/a/b/missing"));
  CHECK(site.reader.meta_value("fallback-depth") == "0");
}

TEST_CASE("identical contents are stored once, with headers of their own per path", "[archive]") {
  temp_folder sources, out;
  const std::string content = compressible_text(5000, 7);
  sources.write("a/style.css", content);
  sources.write("b/copy.txt", content);
  const built site(options_for(sources, out));
  const auto css = site.get("/a/style.css");
  const auto txt = site.get("/b/copy.txt");
  CHECK(has_header(css.variants[0], "Content-Type: text/css; charset=utf-8"));
  CHECK(has_header(txt.variants[0], "Content-Type: text/plain; charset=utf-8"));
  CHECK(css.variants[0].body.data() == txt.variants[0].body.data());  // same bytes in the file
  CHECK(site.count_keys("body:") == 3);  // identity, gzip and br once each
  CHECK(site.stats.bytes_deduplicated == content.size());
}

TEST_CASE("folder listings are generated for folders without an index when asked", "[archive]") {
  temp_folder sources, out;
  sources.write("files/b <&> file.txt", "b");
  sources.write("files/a.txt", "a");
  sources.write("files/sub/x.txt", "x");
  sources.write("index.html", "home");
  auto options = options_for(sources, out);
  CHECK_FALSE(built(options).has("/files/"));

  options.include_folder_listing = true;
  const built site(options);
  const auto listing = site.get("/files/");
  const std::string html(listing.variants[0].body);
  CHECK(has_header(listing.variants[0], "Content-Type: text/html; charset=utf-8"));
  CHECK(html.find("href=\"a.txt\"") != std::string::npos);
  CHECK(html.find("href=\"sub/\"") != std::string::npos);
  CHECK(html.find("href=\"b%20%3C&amp;%3E%20file.txt\"") != std::string::npos);
  CHECK(html.find("b &lt;&amp;&gt; file.txt") != std::string::npos);
  CHECK(html.find("a.txt") < html.find("b &lt;"));
  CHECK(site.get("/").variants[0].body == "home");  // an index wins over a listing
}

TEST_CASE("file names are bytes: UTF-8 names with spaces and accents work", "[archive]") {
  temp_folder sources, out;
  sources.write("caf\xc3\xa9 menu.html", "menu");
  const built site(options_for(sources, out));
  CHECK(site.get("/caf\xc3\xa9 menu.html").variants[0].body == "menu");
  CHECK(site.get("/caf\xc3\xa9 menu").variants[0].body == "menu");
  const auto redirect = site.get("/caf\xc3\xa9 menu.html/");
  CHECK(location_of(redirect) == "/caf%C3%A9%20menu.html");
}

TEST_CASE("the archive lists its paths unless told not to", "[archive]") {
  temp_folder sources, out;
  sources.write("a.html", "a");
  auto options = options_for(sources, out);
  {
    const built site(options);
    std::error_code error;
    const auto paths = site.reader.database().find(archive::schema::paths_key, error);
    REQUIRE(paths);
    CHECK(*paths == "/a\n/a.html\n/a.html/\n/a/\n");
  }
  options.include_file_listing = false;
  const built site(options);
  std::error_code error;
  CHECK_FALSE(site.reader.database().find(archive::schema::paths_key, error));
}

TEST_CASE("etag and cache-control can be left out", "[archive]") {
  temp_folder sources, out;
  sources.write("a.txt", "a");
  auto options = options_for(sources, out);
  options.include_etag = false;
  options.include_cache = false;
  const built site(options);
  const auto entry = site.get("/a.txt");
  const auto& v = entry.variants[0];
  CHECK(v.etag.empty());
  CHECK(v.block.find("ETag") == std::string_view::npos);
  CHECK(v.block.find("Cache-Control") == std::string_view::npos);
}

TEST_CASE("archives are byte-identical whatever the folder, the mtimes and the job count",
          "[archive][reproducible]") {
  temp_folder first, second, out;
  for (const auto* folder : {&first, &second}) {
    folder->write("index.html", compressible_text(30000, 1));
    folder->write("docs/a.html", compressible_text(9000, 2));
    folder->write("docs/b.css", compressible_text(4000, 3));
    folder->write("img/x.png", std::string(3000, '\x89'));
    folder->write("_wildcard.html", "spa");
  }
  fs::last_write_time(second / "docs/a.html",
                      fs::file_time_type::clock::now() - std::chrono::hours(48));
  auto options = options_for(first, out, "one.cdb");
  options.jobs = 1;
  archive::build(options);
  auto other = options_for(second, out, "two.cdb");
  other.jobs = 4;
  archive::build(other);
  CHECK(read_file(out / "one.cdb") == read_file(out / "two.cdb"));
}

TEST_CASE("a rebuild reuses the previous archive's compressed variants", "[archive]") {
  temp_folder sources, out;
  sources.write("a.html", compressible_text(20000, 1));
  sources.write("b.html", compressible_text(20000, 2));
  std::string noise(300, ' ');
  std::mt19937 random(5);
  for (auto& c : noise) c = static_cast<char>(' ' + random() % 94);
  sources.write("tiny.html", noise);  // compression is not worth it
  auto options = options_for(sources, out);
  const auto first = archive::build(options);
  CHECK(first.variants_compressed == 6);
  CHECK(first.variants_reused == 0);
  const std::string before = read_file(options.archive);

  sources.write("b.html", compressible_text(20000, 4));
  const auto second = archive::build(options);
  CHECK(second.variants_compressed == 2);
  CHECK(second.variants_reused == 4);  // a.html's two, and tiny.html's two "not worth it" marks

  sources.write("b.html", compressible_text(20000, 2));
  archive::build(options);
  CHECK(read_file(options.archive) == before);  // reuse never changes the output

  options.reuse = false;
  const auto fresh = archive::build(options);
  CHECK(fresh.variants_reused == 0);
  CHECK(read_file(options.archive) == before);
}

TEST_CASE("a damaged previous archive is not reused and is replaced", "[archive][corrupt]") {
  temp_folder sources, out;
  sources.write("a.html", compressible_text(20000, 1));
  auto options = options_for(sources, out);
  archive::build(options);
  const std::string good = read_file(options.archive);

  // Damage the compressed bodies (they sit between the header and the entries).
  std::string damaged = good;
  for (std::size_t i = 2048 + 20000 + 200; i < 2048 + 20000 + 600; ++i) damaged[i] ^= 0x55;
  { std::ofstream(options.archive, std::ios::binary) << damaged; }
  const auto rebuilt = archive::build(options);
  CHECK(rebuilt.variants_reused <= 1);  // the damaged one is compressed again
  CHECK(read_file(options.archive) == good);

  { std::ofstream(options.archive, std::ios::binary) << "not a cdb file at all"; }
  std::vector<std::string> warnings;
  archive::build_hooks hooks;
  hooks.warning = [&](const std::string& line) { warnings.push_back(line); };
  archive::build(options, hooks);
  CHECK(read_file(options.archive) == good);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("not reusing the previous archive") != std::string::npos);
}

TEST_CASE("the walk skips dotfiles and editor leftovers but publishes .well-known", "[archive]") {
  temp_folder sources, out;
  sources.write(".hidden.html", "x");
  sources.write(".git/config", "x");
  sources.write("page.html~", "x");
  sources.write("#page.html#", "x");
  sources.write("docs/.page.html.swp", "x");
  sources.write(".well-known/security.txt", "contact");
  sources.write("docs/.well-known/x.txt", "not at the top");
  sources.write("page.html", "page");
  const built site(options_for(sources, out));
  CHECK(site.stats.files == 2);
  CHECK(site.has("/.well-known/security.txt"));
  CHECK(site.has("/page.html"));
  CHECK_FALSE(site.has("/.hidden.html"));
  CHECK_FALSE(site.has("/docs/.well-known/x.txt"));
}

TEST_CASE("symlinks are followed, even outside the tree", "[archive]") {
  temp_folder sources, outside, out;
  outside.write("lib/jquery.js", "window.$ = 1;");
  sources.write("index.html", "home");
  fs::create_directories(sources / "_static");
  fs::create_symlink(outside / "lib/jquery.js", sources / "_static/jquery.js");
  fs::create_directory_symlink(outside / "lib", sources / "vendor");
  const built site(options_for(sources, out));
  CHECK(site.get("/_static/jquery.js").variants[0].body == "window.$ = 1;");
  CHECK(has_header(site.get("/vendor/jquery.js").variants[0],
                   "Content-Type: text/javascript; charset=utf-8"));
}

TEST_CASE("the target archive inside the sources is not archived into itself", "[archive]") {
  temp_folder sources;
  sources.write("a.txt", "a");
  archive::build_options options;
  options.sources = sources.str();
  options.archive = (sources / "site.cdb").string();
  options.codecs = {};
  archive::build(options);
  const auto stats = archive::build(options);  // the second run sees site.cdb in the tree
  CHECK(stats.files == 1);
}

TEST_CASE("a failing build names the path and leaves the previous archive untouched",
          "[archive][errors]") {
  temp_folder sources, out;
  sources.write("index.html", "home");
  auto options = options_for(sources, out);
  archive::build(options);
  const std::string before = read_file(options.archive);

  SECTION("dangling symlink") {
    fs::create_symlink(sources / "nowhere.html", sources / "broken.html");
    CHECK_THROWS_WITH(archive::build(options),
                      Catch::Contains("dangling symlink") && Catch::Contains("broken.html"));
  }
  SECTION("symlink loop through a folder") {
    fs::create_directories(sources / "a");
    fs::create_directory_symlink(sources.path(), sources / "a/back");
    CHECK_THROWS_WITH(archive::build(options),
                      Catch::Contains("symlink loop") && Catch::Contains("a/back"));
  }
  SECTION("symlinks pointing at each other") {
    fs::create_symlink(sources / "y", sources / "x");
    fs::create_symlink(sources / "x", sources / "y");
    CHECK_THROWS_WITH(archive::build(options),
                      Catch::Contains("symlink loop") || Catch::Contains("dangling"));
  }
  SECTION("a FIFO") {
    REQUIRE(::mkfifo((sources / "pipe").c_str(), 0644) == 0);
    CHECK_THROWS_WITH(archive::build(options), Catch::Contains("FIFO") && Catch::Contains("pipe"));
  }
  SECTION("a name that is not UTF-8") {
    sources.write("bad\xff.html", "x");
    CHECK_THROWS_WITH(archive::build(options), Catch::Contains("not valid UTF-8"));
  }
  SECTION("a name with a newline") {
    sources.write("two\nlines.html", "x");
    CHECK_THROWS_WITH(archive::build(options),
                      Catch::Contains("control character") && Catch::Contains("two\\x0alines"));
  }
  SECTION("sources missing") {
    options.sources = (sources / "missing").string();
    CHECK_THROWS_WITH(archive::build(options), Catch::Contains("cannot open sources folder"));
  }
  SECTION("cancelled") {
    archive::build_hooks hooks;
    hooks.cancelled = [] { return true; };
    CHECK_THROWS_WITH(archive::build(options, hooks), Catch::Contains("interrupted"));
  }
  CHECK(read_file(options.archive) == before);
  CHECK(temp_leftovers(out.path()).empty());
}

TEST_CASE("an empty tree gives a valid archive with no paths", "[archive]") {
  temp_folder sources, out;
  const built site(options_for(sources, out));
  CHECK(site.stats.files == 0);
  CHECK_FALSE(site.has("/"));
}

TEST_CASE("bad options are refused before anything is written", "[archive][errors]") {
  temp_folder sources, out;
  auto options = options_for(sources, out);
  options.codecs = {{archive::encoding::gzip, 10}};
  CHECK_THROWS_AS(archive::build(options), std::invalid_argument);
  options.codecs = {{archive::encoding::gzip, 9}, {archive::encoding::gzip, 1}};
  CHECK_THROWS_AS(archive::build(options), std::invalid_argument);
  CHECK_FALSE(fs::exists(options.archive));
}

TEST_CASE("a file that changes size while it is read stops the run, naming it",
          "[archive][errors][hostile]") {
  // Through the library, so that the change lands between the walk and the read: the pipeline
  // runs at most a few files ahead of the writer, and the progress hook runs after the first.
  temp_folder sources, out;
  for (int i = 0; i < 60; ++i) sources.write("a" + std::to_string(100 + i) + ".txt", "x");
  const auto late = sources.write("zzz.txt", "short");
  archive::build_options options;
  options.sources = sources.str();
  options.archive = (out / "site.cdb").string();
  options.codecs = {};
  options.jobs = 1;
  archive::build_hooks hooks;
  bool changed = false;
  hooks.progress = [&](const archive::progress_event&) {
    if (changed) return;
    changed = true;
    std::ofstream(late, std::ios::app) << " and longer now";
  };
  CHECK_THROWS_WITH(archive::build(options, hooks),
                    "file changed size while being read '" + late.string() + "'");
  CHECK_FALSE(fs::exists(options.archive));
  CHECK(temp_leftovers(out.path()).empty());
}

// ---- host folders
// --------------------------------------------------------------------------------

namespace {

// Host folders a.test/, *.b.test/ and _default/, each with routing of its own.
void write_host_folders(const temp_folder& sources) {
  sources.write("a.test/index.html", "shared home");
  sources.write("a.test/docs/index.html", "a docs");
  sources.write("a.test/about.html", "a about");
  sources.write("a.test/_404.html", "a not found");
  sources.write("a.test/app/_wildcard.html", "a app");
  sources.write("a.test/.well-known/security.txt", "a contact");
  sources.write("*.b.test/index.html", "shared home");  // the same content as a.test's
  sources.write("*.b.test/docs.html", "b docs page");
  sources.write("_default/index.html", "default home");
  sources.write("_default/sub/file.txt", "default file");
}

std::string value_of(const built& site, std::string_view key) {
  std::error_code error;
  const auto value = site.reader.database().find(key, error);
  REQUIRE(!error);
  INFO(key);
  REQUIRE(value);
  return std::string(*value);
}

archive::build_options host_folder_options(const temp_folder& sources, const temp_folder& out,
                                           const std::string& name = "site.cdb") {
  auto options = options_for(sources, out, name);
  options.host_folders = true;
  return options;
}

}  // namespace

TEST_CASE(
    "with host folders each top-level folder is its host's site, keyed with the host in front",
    "[archive][hosts]") {
  temp_folder sources, out;
  write_host_folders(sources);
  const built site(host_folder_options(sources, out));

  CHECK(site.reader.has_host_folders());
  CHECK(value_of(site, archive::schema::schema_key) == "kawipiko-archive/4");
  CHECK(value_of(site, archive::schema::hosts_key) == "*.b.test\n_default\na.test\n");
  CHECK(site.reader.hosts() == std::vector<std::string_view>{"*.b.test", "_default", "a.test"});
  CHECK(site.get("a.test/").variants[0].body == "shared home");
  CHECK(site.get("a.test/docs/").variants[0].body == "a docs");
  CHECK(site.get("a.test/about").variants[0].body == "a about");
  CHECK(site.get("a.test/.well-known/security.txt").variants[0].body == "a contact");
  CHECK(site.get("*.b.test/docs").variants[0].body == "b docs page");
  CHECK(site.get("_default/").variants[0].body == "default home");
  CHECK(site.get("_default/sub/file.txt").variants[0].body == "default file");
  // Redirect Locations stay paths within the host.
  const auto to_folder = site.get("a.test/docs");
  CHECK(to_folder.status == 308);
  CHECK(location_of(to_folder) == "/docs/");
  CHECK(location_of(site.get("*.b.test/docs.html/")) == "/docs.html");
  // Nothing is keyed without a host, and nothing crosses hosts.
  CHECK_FALSE(site.has("/"));
  CHECK_FALSE(site.has("/index.html"));
  CHECK_FALSE(site.has("a.test/_404.html"));
  CHECK_FALSE(site.has("_default/about"));
  CHECK_FALSE(site.has("*.b.test/about"));
  CHECK_FALSE(site.has("a.test/docs.html"));
  CHECK_FALSE(site.has("a.test/sub/file.txt"));
  // Each host's fallbacks are its own: a.test's 404 page never answers for the others.
  archive::entry entry;
  REQUIRE(site.reader.find_fallback("a.test", "/missing", entry) == archive::lookup_status::found);
  CHECK(entry.status == 404);
  CHECK(entry.variants[0].body == "a not found");
  REQUIRE(site.reader.find_fallback("a.test", "/app/x/y", entry) == archive::lookup_status::found);
  CHECK(entry.variants[0].body == "a app");
  CHECK(site.reader.find_fallback("_default", "/missing", entry) ==
        archive::lookup_status::not_found);
  CHECK(site.reader.find_fallback("*.b.test", "/app/x", entry) ==
        archive::lookup_status::not_found);
  CHECK_FALSE(site.has_fallback("/missing"));
  CHECK(site.count_keys("fallback:") == 2);
  // One content, two hosts: one body.
  CHECK(site.stats.bytes_deduplicated == std::string("shared home").size());
  CHECK(site.stats.files == 10);
  CHECK(site.stats.folders == 7);  // each host's root, a.test's docs/, app/, .well-known/, sub/
}

TEST_CASE("with host folders the list of paths holds the keys, sorted", "[archive][hosts]") {
  temp_folder sources, out;
  sources.write("a.test/x.txt", "a");
  sources.write("a.test-b/x.txt", "ab");  // "a.test-b/" sorts before "a.test/"
  sources.write("a.test2/x.txt", "a2");
  const built site(host_folder_options(sources, out));
  CHECK(value_of(site, archive::schema::hosts_key) == "a.test-b\na.test\na.test2\n");
  const auto listing = value_of(site, archive::schema::paths_key);
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < listing.size();) {
    const auto end = listing.find('\n', at);
    lines.push_back(listing.substr(at, end - at));
    at = end + 1;
  }
  CHECK(std::is_sorted(lines.begin(), lines.end()));
  CHECK(lines.front() == "a.test-b/x");
  CHECK(std::find(lines.begin(), lines.end(), "a.test/x.txt") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(), "/x.txt") == lines.end());
}

TEST_CASE("with host folders listings are generated per host", "[archive][hosts]") {
  temp_folder sources, out;
  sources.write("a.test/files/one.txt", "1");
  sources.write("b.test/other/two.txt", "2");
  auto options = host_folder_options(sources, out);
  options.include_folder_listing = true;
  const built site(options);
  const auto a_root = std::string(site.get("a.test/").variants[0].body);
  CHECK(a_root.find("files/") != std::string::npos);
  CHECK(a_root.find("other/") == std::string::npos);
  CHECK(std::string(site.get("b.test/other/").variants[0].body).find("two.txt") !=
        std::string::npos);
  CHECK_FALSE(site.has("a.test/other/"));
}

TEST_CASE("host folder names are folded to lower case, dot-folders and leftovers skipped",
          "[archive][hosts]") {
  temp_folder sources, out;
  sources.write("Example.COM./index.html", "example");
  sources.write("*.Blog.example.com/index.html", "blog");
  sources.write(".hidden/index.html", "skipped like any dot-folder");
  sources.write("notes~", "an editor leftover, skipped");
  const built site(host_folder_options(sources, out));
  CHECK(site.reader.hosts() == std::vector<std::string_view>{"*.blog.example.com", "example.com"});
  CHECK(site.get("example.com/").variants[0].body == "example");
}

TEST_CASE("a bad host-folders tree is refused, naming the path, the previous archive untouched",
          "[archive][hosts][errors]") {
  temp_folder sources, out;
  sources.write("a.test/index.html", "a");
  auto options = host_folder_options(sources, out);
  archive::build(options);
  const std::string before = read_file(options.archive);

  SECTION("a file at the top") {
    sources.write("robots.txt", "x");
    CHECK_THROWS_WITH(archive::build(options),
                      Catch::Contains("belongs to no host") && Catch::Contains("robots.txt"));
  }
  SECTION("a folder name that is not a host name") {
    sources.write("my site/index.html", "x");
    CHECK_THROWS_WITH(archive::build(options),
                      Catch::Contains("is not a host name") && Catch::Contains("my site"));
  }
  SECTION(".well-known at the top: it belongs in a host's folder") {
    sources.write(".well-known/security.txt", "x");
    CHECK_THROWS_WITH(archive::build(options),
                      Catch::Contains("is not a host name") && Catch::Contains(".well-known"));
  }
  SECTION("two folders naming one host once lower-cased") {
    sources.write("A.test/index.html", "x");
    CHECK_THROWS_WITH(archive::build(options), Catch::Contains("two host folders name one host") &&
                                                   Catch::Contains("/a.test") &&
                                                   Catch::Contains("/A.test"));
  }
  SECTION("no host folder") {
    fs::remove_all(sources / "a.test");
    CHECK_THROWS_WITH(archive::build(options), Catch::Contains("no host folder"));
  }
  SECTION("an error inside a host's folder") {
    fs::create_symlink(sources / "nowhere.html", sources / "a.test/broken.html");
    CHECK_THROWS_WITH(archive::build(options),
                      Catch::Contains("dangling symlink") && Catch::Contains("a.test/broken.html"));
  }
  CHECK(read_file(options.archive) == before);
  CHECK(temp_leftovers(out.path()).empty());
}

TEST_CASE("the target archive at the top of host folders is left out", "[archive][hosts]") {
  temp_folder sources;
  sources.write("a.test/index.html", "a");
  archive::build_options options;
  options.sources = sources.str();
  options.archive = (sources / "site.cdb").string();
  options.host_folders = true;
  options.codecs = {};
  archive::build(options);
  CHECK(archive::build(options).files == 1);  // the second run sees site.cdb at the top
}

TEST_CASE("host-folder archives are byte-identical whatever the folder and the job count",
          "[archive][hosts][reproducible]") {
  temp_folder first, second, out;
  for (const auto* folder : {&first, &second}) {
    write_host_folders(*folder);
    folder->write("a.test/big.html", compressible_text(30000, 1));
    folder->write("_default/big.css", compressible_text(9000, 2));
  }
  auto options = host_folder_options(first, out, "one.cdb");
  options.jobs = 1;
  archive::build(options);
  auto other = host_folder_options(second, out, "two.cdb");
  other.jobs = 4;
  archive::build(other);
  CHECK(read_file(out / "one.cdb") == read_file(out / "two.cdb"));
  // And the same tree without host folders is another archive: schema 3, no host in its keys.
  auto whole = options_for(first, out, "whole.cdb");
  const built site(whole);
  CHECK_FALSE(site.reader.has_host_folders());
  CHECK(value_of(site, archive::schema::schema_key) == "kawipiko-archive/3");
  CHECK(site.count_keys(archive::schema::hosts_key) == 0);
  CHECK(site.has("/a.test/big.html"));
}

TEST_CASE("a host-folder rebuild reuses the previous archive's variants, across hosts too",
          "[archive][hosts]") {
  temp_folder sources, out;
  sources.write("a.test/a.html", compressible_text(20000, 1));
  sources.write("b.test/b.html", compressible_text(20000, 2));
  auto options = host_folder_options(sources, out);
  const auto first = archive::build(options);
  CHECK(first.variants_compressed == 4);
  CHECK(first.variants_reused == 0);
  const std::string before = read_file(options.archive);

  sources.write("b.test/b.html", compressible_text(20000, 3));
  sources.write("c.test/copy-of-a.html", compressible_text(20000, 1));  // a new host, known content
  const auto second = archive::build(options);
  CHECK(second.variants_compressed == 2);  // b.html's new content only
  CHECK(second.variants_reused == 4);      // a.html's two, and its copy's in the new host
  const built site(options);
  CHECK(site.get("c.test/copy-of-a").variants.size() == 3);

  fs::remove_all(sources / "c.test");
  sources.write("b.test/b.html", compressible_text(20000, 2));
  archive::build(options);
  CHECK(read_file(options.archive) == before);  // reuse never changes the output
}

// ---- _redirects and _headers
// ---------------------------------------------------------------------------

namespace {

namespace flags = archive::schema::entry_flags;

// A small site with rules files at its top.
void write_rules_site(const temp_folder& sources, const std::string& redirects,
                      const std::string& headers = {}) {
  sources.write("index.html", "home");
  sources.write("about.html", "about");
  sources.write("app/index.html", compressible_text(4000, 3));
  sources.write("en/404.html", "en not found");
  sources.write("_redirects", redirects);
  if (!headers.empty()) sources.write("_headers", headers);
}

// The lines of a block up to `length`, e.g. its 304 prefix.
std::string_view prefix(const archive::variant& v, std::size_t length) {
  return v.block.substr(0, length);
}

}  // namespace

TEST_CASE("a plain rule becomes an entry, the rules files are not served", "[archive][rules]") {
  temp_folder sources, out;
  write_rules_site(sources,
                   "/old /about 301\n"
                   "/moved /about?from=moved 302\n"
                   "/gone/ https://example.com/new 307\n"
                   "/page /about 200\n");
  const built site(options_for(sources, out));

  const auto old = site.get("/old");
  CHECK(old.status == 301);
  CHECK(location_of(old) == "/about");
  CHECK(old.flags == flags::keeps_query);  // `to` has no query of its own
  CHECK(has_header(old.variants[0], "Content-Length: 0"));
  CHECK(has_header(old.variants[0], "Cache-Control: public, immutable, max-age=3600"));
  const auto moved = site.get("/moved");
  CHECK(moved.status == 302);
  CHECK(location_of(moved) == "/about?from=moved");
  CHECK(moved.flags == 0);
  CHECK(moved.variants[0].block.find("Cache-Control") == std::string_view::npos);  // temporary
  CHECK(site.get("/gone").status == 307);  // a trailing slash answers both paths
  CHECK(location_of(site.get("/gone/")) == "https://example.com/new");
  // A rewrite serves the file's own stored variants under its URL.
  CHECK(site.get("/page").status == 200);
  CHECK(site.get("/page").variants[0].body.data() == site.get("/about").variants[0].body.data());

  CHECK_FALSE(site.has("/_redirects"));
  CHECK_FALSE(site.has("/_headers"));
  CHECK(site.stats.files == 4);
  CHECK(site.count_keys("rules:") == 0);  // no pattern rule
  CHECK(site.reader.meta_value("pattern-rules") == "0");
}

TEST_CASE("a rule does not apply where a file is unless forced, and a forced one replaces it",
          "[archive][rules]") {
  temp_folder sources, out;
  write_rules_site(sources,
                   "/about /elsewhere 301\n"
                   "/about.html /forced 308!\n"
                   "/app/* /spa/:splat 302!\n"
                   "/en/ /en/404.html 200!\n");
  const built site(options_for(sources, out));
  // "/about" is an alias of about.html: a file is there.
  CHECK(site.get("/about").status == 200);
  CHECK(site.get("/about").variants[0].body == "about");
  CHECK(site.get("/about.html").status == 308);
  CHECK(location_of(site.get("/about.html")) == "/forced");
  // A forced pattern rule is folded into every archived path it matches, its splat substituted.
  CHECK(site.get("/app/").status == 302);
  CHECK(location_of(site.get("/app/")) == "/spa/");
  CHECK(location_of(site.get("/app/index.html")) == "/spa/index.html");
  CHECK(site.get("/app/index.html").flags == flags::keeps_query);
  // A forced rewrite over a folder serves the target's variants.
  CHECK(site.get("/en/").variants[0].body == "en not found");
  // And the pattern rule stays for the paths no entry answers.
  CHECK(site.count_keys("rules:") == 1);
  CHECK(site.reader.meta_value("pattern-rules") == "1");
  CHECK(site.count_keys("forced-rules:") == 0);
}

TEST_CASE("a rewrite reuses the target's bodies, no byte stored twice", "[archive][rules]") {
  temp_folder plain_sources, ruled_sources, out;
  write_rules_site(plain_sources, "");
  write_rules_site(ruled_sources, "/spa /app/ 200\n/missing-page /app/index.html 404\n");
  const built plain(options_for(plain_sources, out, "plain.cdb"));
  const built ruled(options_for(ruled_sources, out, "ruled.cdb"));
  CHECK(ruled.stats.bytes_stored == plain.stats.bytes_stored);
  CHECK(ruled.count_keys("body:") == plain.count_keys("body:"));

  const auto app = ruled.get("/app/");
  const auto spa = ruled.get("/spa");
  REQUIRE(spa.count == 3);
  REQUIRE(app.count == 3);
  for (std::size_t v = 0; v < 3; ++v) {
    CHECK(spa.variants[v].body.data() == app.variants[v].body.data());
    CHECK(spa.variants[v].block.data() != app.variants[v].block.data());  // blocks of its own
    CHECK(spa.variants[v].etag == app.variants[v].etag);
  }
  const auto missing = ruled.get("/missing-page");
  CHECK(missing.status == 404);
  CHECK(missing.variants[0].body.data() == app.variants[0].body.data());
  CHECK(missing.variants[0].etag.empty());  // an error page: no validators
}

TEST_CASE("pattern rules are compiled into the matcher blob the server opens", "[archive][rules]") {
  temp_folder sources, out;
  write_rules_site(sources,
                   "/news/:year/:slug /blog/:year-:slug.html\n"
                   "/en/* /en/404.html 404\n"
                   "/store id=:id /products/:id 301\n");
  const built site(options_for(sources, out));
  const auto blob = value_of(site, "rules:");
  const archive::redirect_matcher matcher(std::as_bytes(std::span(blob.data(), blob.size())));
  CHECK(matcher.size() == 3);
  archive::redirect_match match;
  REQUIRE(matcher.match({{}, "/news/2024/hello", "utm=1"}, match));
  CHECK(match.status == 301);
  CHECK(match.target == "/blog/2024-hello.html?utm=1");
  REQUIRE(matcher.match({{}, "/en/x/y", {}}, match));
  CHECK(match.target == "/en/404.html");
  CHECK(site.reader.meta_value("pattern-rules") == "3");
}

TEST_CASE("a forced rule with a host or a query flags the archived paths it may answer",
          "[archive][rules]") {
  temp_folder sources, out;
  write_rules_site(sources,
                   "https://old.test/* https://new.test/:splat 301!\n"
                   "/about.html /plain 301!\n");
  const built site(options_for(sources, out));
  CHECK(site.count_keys("forced-rules:") == 1);
  // Nothing is folded: the host decides at serve time.
  CHECK(site.get("/about.html").status == 200);
  CHECK((site.get("/about.html").flags & flags::forced_rules) != 0);
  CHECK((site.get("/").flags & flags::forced_rules) != 0);
  CHECK((site.get("/app").flags & flags::forced_rules) != 0);  // a slash redirect too
}

TEST_CASE("_headers go into every variant's block, inside its 304 and 206 prefixes",
          "[archive][rules]") {
  temp_folder sources, out;
  write_rules_site(sources, "/old /about 301\n",
                   "/*\n  X-Custom: all\n  Link: </style.css>; rel=preload\n"
                   "/app/*\n  X-Custom: app\n");
  const built site(options_for(sources, out));
  const auto app = site.get("/app/index.html");
  REQUIRE(app.count == 3);
  for (std::size_t v = 0; v < app.count; ++v) {
    const auto& variant = app.variants[v];
    INFO(variant.block);
    CHECK(variant.block.starts_with("ETag: "));
    const auto in_304 = prefix(variant, variant.length_304);
    CHECK(in_304.find("X-Custom: all, app\r\n") != std::string_view::npos);
    CHECK(in_304.find("Link: </style.css>; rel=preload\r\n") != std::string_view::npos);
    CHECK(in_304.find("Vary: Accept-Encoding\r\n") < in_304.find("X-Custom"));
    CHECK(prefix(variant, variant.length_partial)
              .substr(variant.length_304)
              .starts_with("Content-Type: "));
  }
  CHECK(has_header(site.get("/").variants[0], "X-Custom: all"));
  CHECK(has_header(site.get("/old").variants[0], "X-Custom: all"));  // redirect entries too
  CHECK(location_of(site.get("/old")) == "/about");
  CHECK(has_header(site.get("/app").variants[0], "X-Custom: all, app"));  // and slash redirects
}

TEST_CASE("_headers override Cache-Control and Content-Type, and flag the security headers",
          "[archive][rules]") {
  temp_folder sources, out;
  write_rules_site(sources, "",
                   "/about.html\n  Cache-Control: no-store\n  Content-Type: text/x-about\n"
                   "  X-Frame-Options: DENY\n"
                   "/en/*\n  ! Referrer-Policy\n  ! Cache-Control\n");
  const built site(options_for(sources, out));
  const auto about_entry = site.get("/about.html");  // by value: the variant's views need it
  const auto& about = about_entry.variants[0];
  CHECK(has_header(about, "Cache-Control: no-store"));
  CHECK(about.block.find("immutable") == std::string_view::npos);
  CHECK(has_header(about, "Content-Type: text/x-about"));
  CHECK(about.block.find("text/html") == std::string_view::npos);
  CHECK(has_header(about, "X-Frame-Options: DENY"));
  CHECK(site.get("/about.html").flags == flags::own_frame_options);
  const auto en = site.get("/en/404.html");
  CHECK(en.flags == flags::own_referrer_policy);
  CHECK(en.variants[0].block.find("Cache-Control") == std::string_view::npos);
  CHECK(en.variants[0].block.find("Referrer-Policy") == std::string_view::npos);
  CHECK(site.get("/").flags == 0);
}

TEST_CASE("fallbacks and error pages get the _headers of their own file", "[archive][rules]") {
  temp_folder sources, out;
  sources.write("docs/_404.html", "docs not found");
  sources.write("app/_wildcard.html", "app");
  sources.write("_headers", "/docs/*\n  X-Section: docs\n/app/*\n  X-Section: app\n");
  const built site(options_for(sources, out));
  CHECK(has_header(site.fallback("/docs/missing").variants[0], "X-Section: docs"));
  CHECK(has_header(site.fallback("/app/x").variants[0], "X-Section: app"));
}

TEST_CASE("the debug hook lists the _headers blocks and the _redirects rule of each path",
          "[archive][rules]") {
  temp_folder sources, out;
  write_rules_site(sources, "/old /about 301\n/about.html /x 301!\n",
                   "/*\n  X-A: 1\n/en/*\n  X-B: 2\n");
  std::vector<std::string> lines;
  archive::build_hooks hooks;
  hooks.debug = [&](const std::string& line) { lines.push_back(line); };
  const built site(options_for(sources, out), hooks);
  const auto has_line = [&](const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  };
  CHECK(has_line("/old _headers lines 1 _redirects line 1"));
  CHECK(has_line("/about.html _headers lines 1 _redirects line 2"));
  CHECK(has_line("/en/404.html _headers lines 1 3"));
}

TEST_CASE("rules errors name the file and the line, the previous archive untouched",
          "[archive][rules][errors]") {
  temp_folder sources, out;
  write_rules_site(sources, "/old /about 301\n");
  const auto options = options_for(sources, out);
  (void)archive::build(options);
  const std::string before = read_file(options.archive);
  const std::string redirects = (sources / "_redirects").string();
  const std::string headers = (sources / "_headers").string();
  const auto refused = [&](const std::string& file, const std::string& text,
                           const std::string& message) {
    sources.write(file, text);
    INFO(text);
    CHECK_THROWS_WITH(archive::build(options), Catch::Contains(message));
    CHECK(read_file(options.archive) == before);
    CHECK(temp_leftovers(out.path()).empty());
    fs::remove(sources / file);
  };
  refused("_redirects", "# fine\n/a /b 299\n", "'" + redirects + "' line 2: unknown status");
  refused("_redirects", "/a /b 301\n/b /a 301\n", "'" + redirects + "' line");
  refused("_redirects", "/a /missing.html 200\n",
          "'" + redirects + "' line 1: the 200 rewrite's target '/missing.html' is not a file");
  refused("_redirects", "/* /index.html 301!\n",
          "'" + redirects + "' line 1: redirects '/index.html' to itself");
  refused("_headers", "/*\n  Content-Length: 3\n", "'" + headers + "' line 2:");
  refused("_headers", "https://a.test/*\n  X-A: 1\n",
          "'" + headers + "' line 1: a block for the host 'a.test' needs --host-folders");
  std::string big = "/about.html\n";
  for (int i = 0; i < 10; ++i)
    big += "  X-Big-" + std::to_string(i) + ": " + std::string(8000, 'x') + "\n";
  refused("_headers", big,
          "'" + headers +
              "' line 1: the headers for '/about.html' (blocks at lines 1) make its "
              "header block longer than 65535 bytes");
}

TEST_CASE("with host folders each host's rules files apply to that host only",
          "[archive][hosts][rules]") {
  temp_folder sources, out;
  write_host_folders(sources);
  sources.write("a.test/_redirects", "/old /about 301\n/blog/* /news/:splat 302\n");
  sources.write("a.test/_headers", "https://a.test/*\n  X-Host: a\n");
  sources.write("_default/_redirects", "https://legacy.test/* https://a.test/:splat 301!\n");
  const built site(host_folder_options(sources, out));
  CHECK(location_of(site.get("a.test/old")) == "/about");
  CHECK_FALSE(site.has("_default/old"));
  CHECK_FALSE(site.has("a.test/_redirects"));
  CHECK(site.count_keys("rules:a.test") == 1);
  CHECK(site.count_keys("rules:_default") == 1);  // a domain-level rule is a pattern rule
  CHECK(site.count_keys("forced-rules:_default") == 1);
  CHECK(site.count_keys("rules:*.b.test") == 0);
  CHECK(has_header(site.get("a.test/").variants[0], "X-Host: a"));
  CHECK_FALSE(has_header(site.get("_default/").variants[0], "X-Host: a"));
  CHECK((site.get("_default/").flags & flags::forced_rules) != 0);
  CHECK((site.get("a.test/").flags & flags::forced_rules) == 0);
}
