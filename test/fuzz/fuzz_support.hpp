#pragma once
// Shared by the fuzz targets: a check that stops the run (libFuzzer counts an abort as a crash
// and saves the input), view-inside-image checks, and the small fixed site some targets archive
// once at start-up.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "archive/builder.hpp"

// Aborts with the failed condition and where it is, whatever the build type (assert() may be
// compiled out in RelWithDebInfo).
#define KAWIPIKO_FUZZ_CHECK(condition)                                                        \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

namespace kawipiko::fuzz {

// The oracles' own reading of a decimal number: digits only, 1 to 19 of them (written apart
// from the library's on purpose, so that the two can disagree). False otherwise.
[[nodiscard]] inline bool parse_decimal(std::string_view text, std::uint64_t& value) {
  if (text.empty() || text.size() > 19) return false;
  value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

// Whether `view` lies inside `image` (an empty view anywhere is fine: it is never read).
[[nodiscard]] inline bool is_inside(std::string_view view, std::span<const std::byte> image) {
  if (view.empty()) return true;
  const auto* begin = reinterpret_cast<const char*>(image.data());
  const auto* end = begin + image.size();
  // Compared as integers: pointers into different objects have no order in C++.
  const auto at = reinterpret_cast<std::uintptr_t>(view.data());
  return at >= reinterpret_cast<std::uintptr_t>(begin) &&
         at <= reinterpret_cast<std::uintptr_t>(end) &&
         view.size() <= reinterpret_cast<std::uintptr_t>(end) - at;
}
[[nodiscard]] inline bool is_inside(std::string_view view, std::string_view whole) {
  return is_inside(view, std::as_bytes(std::span<const char>(whole.data(), whole.size())));
}

// A site with one of each thing the handler treats differently, archived into a fresh temp
// folder, which is removed with the object (a mapping of the archive outlives it):
//   /index.html, /docs/ (index, so /docs redirects), /docs/guide.html (alias /docs/guide),
//   /page.html and /style.css (compressible: br and gzip variants), /image.png (never
//   compressed), /empty.txt (no body), /caf\xc3\xa9 s.txt (a name that needs encoding),
//   /app/_wildcard.html and /app/_404.html (the wildcard wins), /_404.html (root misses),
//   /deep/a/b/_404.html (a deep fallback).
// With `host_folders`, that site is host a.test's in an archive of host folders (schema 4),
// beside *.b.test (a page of the same content, and a wildcard) and _default (an index).
// With `rules`, the site has a `_redirects` and a `_headers` (rules_text below): entries of every
// redirect status and of rewrites, forced rules folded, a pattern blob and a forced-rules blob
// (a domain-level rule flags every archived path), and header blocks with lines of their own.
class fixture_archive {
 public:
  static constexpr std::string_view redirects_text =
      "/old /page.html 301\n"
      "/found /page.html?from=found 302\n"
      "/see /docs/ 303\n"
      "/temp/ https://example.com/x 307\n"
      "/perm /style.css 308\n"
      "/spa /page.html 200\n"
      "/gone /index.html 404\n"
      "/style.css /page.html 301!\n"
      "/news/:year/:slug /blog/:year-:slug.html 301\n"
      "/files/* /archive/:splat 302\n"
      "/store id=:id /products/:id 303\n"
      "/shell/* /page.html 200\n"
      "/deep/* /docs/guide.html 404\n"
      "https://old.test/* https://new.test/:splat 301!\n";
  static constexpr std::string_view headers_text =
      "/*\n  X-Site: all\n  Link: </style.css>; rel=preload\n"
      "/docs/*\n  X-Frame-Options: DENY\n  Cache-Control: no-cache\n  ! Referrer-Policy\n"
      "/page.html\n  Content-Type: text/x-page\n";

  explicit fixture_archive(bool host_folders = false, bool rules = false) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "kawipiko-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("cannot create a temp folder");
    folder_ = pattern;
    const auto sources = host_folders ? folder_ / "site" / "a.test" : folder_ / "site";
    write(sources / "index.html", "<!doctype html>\n<title>home</title>\n<p>kawipiko</p>\n");
    write(sources / "page.html", compressible(6000, 1));
    write(sources / "style.css", compressible(2000, 2));
    std::string png = "\x89PNG\r\n\x1a\n";
    for (unsigned i = 0; i < 300; ++i) png += static_cast<char>((i * 2654435761U) >> 24);
    write(sources / "image.png", png);
    write(sources / "empty.txt", "");
    write(sources / "caf\xc3\xa9 s.txt", "caf\xc3\xa9\n");
    write(sources / "docs" / "index.html", "<p>docs</p>\n");
    write(sources / "docs" / "guide.html", compressible(3000, 3));
    write(sources / "app" / "_wildcard.html", "<p>app shell</p>\n");
    write(sources / "app" / "_404.html", "<p>app: not found</p>\n");
    write(sources / "_404.html", "<p>not found</p>\n");
    write(sources / "deep" / "a" / "b" / "_404.html", "<p>deep: not found</p>\n");
    if (rules) {
      write(sources / "_redirects", redirects_text);
      write(sources / "_headers", headers_text);
    }
    if (host_folders) {
      write(folder_ / "site" / "*.b.test" / "page.html", compressible(6000, 1));
      write(folder_ / "site" / "*.b.test" / "app" / "_wildcard.html", "<p>b app</p>\n");
      write(folder_ / "site" / "_default" / "index.html", "<p>default</p>\n");
    }
    archive::build_options options;
    options.sources = (folder_ / "site").string();
    options.archive = path();
    options.host_folders = host_folders;
    options.jobs = 1;
    archive::build(options);
  }
  ~fixture_archive() {
    std::error_code ignored;
    std::filesystem::remove_all(folder_, ignored);
  }
  fixture_archive(const fixture_archive&) = delete;
  fixture_archive& operator=(const fixture_archive&) = delete;

  [[nodiscard]] std::string path() const { return (folder_ / "site.cdb").string(); }

  [[nodiscard]] std::string bytes() const {
    std::ifstream in(path(), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  static void write(const std::filesystem::path& file, std::string_view content) {
    std::filesystem::create_directories(file.parent_path());
    std::ofstream out(file, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) throw std::runtime_error("cannot write '" + file.string() + "'");
  }

  // Text that compresses well, like HTML.
  static std::string compressible(std::size_t size, unsigned seed) {
    static constexpr std::string_view words[] = {
        "<p>",      "the",      "archive", "server", "</p>\n", "static", "<a href=\"/x\">",
        "link</a>", "kawipiko", "page"};
    std::string text;
    unsigned state = seed;
    while (text.size() < size) {
      state = state * 1103515245U + 12345U;
      text += words[(state >> 16) % 10];
      text += ' ';
    }
    text.resize(size);
    return text;
  }

  std::filesystem::path folder_;
};

}  // namespace kawipiko::fuzz
