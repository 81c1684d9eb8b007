#include "http/mime.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <utility>

using kawipiko::http::content_type_for;

namespace {

constexpr std::string_view text_plain = "text/plain; charset=utf-8";
constexpr std::string_view octet_stream = "application/octet-stream";

// Content that would sniff as binary, so a table hit cannot be confused with a sniff result.
const std::string binary_head("\x00\x01\x02", 3);

}  // namespace

TEST_CASE("content types come from the extension of the last path segment", "[http][mime]") {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"INDEX.HTML", "text/html; charset=utf-8"},
      {"Photo.JpEg", "image/jpeg"},
      {"docs/page.htm", "text/html; charset=utf-8"},
      {"/deep/path/to/style.css", "text/css; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"module.mjs", "text/javascript; charset=utf-8"},
      {"data.json", "application/json; charset=utf-8"},
      {"site.webmanifest", "application/manifest+json; charset=utf-8"},
      {"logo.svg", "image/svg+xml; charset=utf-8"},
      {"feed.rss", "application/rss+xml; charset=utf-8"},
      {"page.xhtml", "application/xhtml+xml; charset=utf-8"},
      {"README.md", "text/markdown; charset=utf-8"},
      {"main.rs", text_plain},
      {"config.yml", text_plain},
      {"fix.patch", text_plain},
      {"image.png", "image/png"},
      {"font.woff2", "font/woff2"},
      {"module.wasm", "application/wasm"},
      {"paper.pdf", "application/pdf"},
      {"clip.mp4", "video/mp4"},
      {"favicon.ico", "image/x-icon"},
      {"archive.tar.gz", "application/gzip"},
      {"v1.2.3.zip", "application/zip"},
      {"dir.with.dots/archive.tar", "application/x-tar"},
  };
  for (const auto& [name, expected] : cases) {
    INFO("name: " << name);
    CHECK(content_type_for(name, binary_head).value == expected);
  }
}

TEST_CASE("names without a known extension are sniffed", "[http][mime]") {
  const std::string_view names[] = {
      "README",         // no dot at all
      ".htaccess",      // a dotfile has no extension
      ".html",          // even when its name looks like one
      "..config",       // nor does a name made of leading dots
      "trailing.",      // an empty extension
      "a.b/c",          // the dot is in a folder, not in the file name
      "file.unknown",   // not in the table
      "x.htmlx",        // a known extension as a prefix only
      "x.webmanifests"  // longer than any extension in the table
  };
  for (const auto name : names) {
    INFO("name: " << name);
    CHECK(content_type_for(name, "hello\n").value == text_plain);
    CHECK(content_type_for(name, binary_head).value == octet_stream);
  }
}

TEST_CASE("text types carry a charset and binary types do not", "[http][mime]") {
  for (const auto name : {"a.html", "a.css", "a.js", "a.json", "a.svg", "a.xml", "a.txt", "a.csv",
                          "a.vtt", "a.jsonld", "a.atom", "a.ics", "a.sh"}) {
    INFO("name: " << name);
    CHECK(content_type_for(name, {}).value.ends_with("; charset=utf-8"));
  }
  for (const auto name : {"a.png", "a.jpg", "a.gif", "a.webp", "a.woff", "a.ttf", "a.wasm", "a.pdf",
                          "a.zip", "a.mp3", "a.bin", "a.exe", "a.ico"}) {
    INFO("name: " << name);
    CHECK(content_type_for(name, {}).value.find("charset") == std::string_view::npos);
  }
}

TEST_CASE("already-compressed formats are not compressible", "[http][mime]") {
  for (const auto name : {"a.png",  "a.jpg", "a.gif",  "a.webp", "a.avif", "a.woff", "a.woff2",
                          "a.zip",  "a.gz",  "a.br",   "a.xz",   "a.zst",  "a.mp3",  "a.mp4",
                          "a.webm", "a.pdf", "a.docx", "a.epub", "a.jar",  "a.deb"}) {
    INFO("name: " << name);
    CHECK_FALSE(content_type_for(name, {}).compressible);
  }
  for (const auto name :
       {"a.html", "a.css", "a.js", "a.json", "a.svg", "a.ico", "a.bmp", "a.tiff", "a.wasm", "a.ttf",
        "a.otf", "a.eot", "a.wav", "a.tar", "a.bin", "a.txt"}) {
    INFO("name: " << name);
    CHECK(content_type_for(name, {}).compressible);
  }
  CHECK(content_type_for("unknown", binary_head).compressible);
  CHECK(content_type_for("unknown", "text").compressible);
}

TEST_CASE("sniffing accepts valid UTF-8 text and rejects binary", "[http][mime]") {
  const auto sniff = [](std::string_view head) { return content_type_for("noext", head).value; };

  CHECK(sniff("") == text_plain);
  CHECK(sniff("plain ASCII\twith\r\nwhitespace\f and \x1b[1mANSI\x1b[0m") == text_plain);
  CHECK(sniff("caf\xc3\xa9, \xe2\x82\xac, \xf0\x9f\x98\x80") == text_plain);  // é, €, 😀
  CHECK(sniff("\xef\xbb\xbfwith a BOM") == text_plain);
  CHECK(sniff("\xf4\x8f\xbf\xbf") == text_plain);  // U+10FFFF, the last code point

  CHECK(sniff("caf\xe9") == octet_stream);  // Latin-1 é
  CHECK(sniff(std::string_view("a\0b", 3)) == octet_stream);
  CHECK(sniff("bell\x07") == octet_stream);
  CHECK(sniff("vertical\x0btab") == octet_stream);
  CHECK(sniff("del\x7f") == octet_stream);
  CHECK(sniff("\xc0\xaf") == octet_stream);          // overlong '/'
  CHECK(sniff("\xe0\x80\xaf") == octet_stream);      // overlong '/', three bytes
  CHECK(sniff("\xf0\x80\x80\xaf") == octet_stream);  // overlong '/', four bytes
  CHECK(sniff("\xed\xa0\x80") == octet_stream);      // surrogate U+D800
  CHECK(sniff("\xf4\x90\x80\x80") == octet_stream);  // above U+10FFFF
  CHECK(sniff("\x80 lone continuation") == octet_stream);
  CHECK(sniff("\xff\xfe") == octet_stream);
  CHECK(sniff("short \xc3") == octet_stream);    // cut before the 1024-byte limit: the file ends
  CHECK(sniff("\xe2\x28\xa1") == octet_stream);  // bad continuation
}

TEST_CASE("sniffing looks at the first 1024 bytes only", "[http][mime]") {
  const auto sniff = [](std::string_view head) { return content_type_for("noext", head).value; };

  // A sequence cut by the limit still counts as text...
  std::string cut_euro(1022, 'a');
  cut_euro += "\xe2\x82\xac";  // bytes 1022..1024: the last one is beyond the limit
  CHECK(sniff(cut_euro) == text_plain);
  std::string cut_exactly = cut_euro.substr(0, 1024);
  CHECK(sniff(cut_exactly) == text_plain);

  // ...but only if its start is valid (E0 80 can never begin a valid sequence).
  std::string cut_overlong(1022, 'a');
  cut_overlong += "\xe0\x80";
  CHECK(sniff(cut_overlong) == octet_stream);

  // Binary beyond the limit is not seen; binary within it is.
  std::string late_nul(1024, 'a');
  late_nul += '\0';
  CHECK(sniff(late_nul) == text_plain);
  std::string early_nul(1023, 'a');
  early_nul += '\0';
  CHECK(sniff(early_nul) == octet_stream);
}
