// End-to-end test with a real browser: headless Chromium (Debian's `chromium`) loads the
// python3.11-doc site from `kawipiko serve`, the index page and a deep page with its stylesheets,
// scripts and images. The server's --debug log (one line per request: method, target, status,
// variant, bytes) is the record of what the browser fetched; Chromium's --dump-dom shows what its
// scripts built, and --screenshot leaves a picture in the build folder.
//
// Brotli over plain HTTP: Chromium advertises `br` only where no proxy can rewrite the body, that
// is over https and over http to localhost (net/url_request/url_request_http_job.cc:
// `SchemeIsCryptographic() || IsLocalhost(url)`). Measured with Chromium 156 on Debian 12: to
// http://127.0.0.1 it sends `Accept-Encoding: gzip, deflate, br, zstd`; to the same listener on
// the machine's non-loopback address, `gzip, deflate`. So no flag is needed, as long as the server
// is reached as 127.0.0.1 (or localhost).
//
// Over https Chromium speaks HTTP/2 (ALPN h2). Which protocol each fetch used is in the page's
// Performance timeline (nextHopProtocol), which only a script of the same origin can read: a probe
// page archived beside the docs loads the docs page in a frame and writes that frame's timeline
// into its own DOM, which --dump-dom returns.

#include "support/browser.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kawipiko::test::archive_python_docs;
using kawipiko::test::chromium_binary;
using kawipiko::test::find_request;
using kawipiko::test::load_in_chromium;
using kawipiko::test::parse_debug_log;
using kawipiko::test::python_docs_folder;
using kawipiko::test::read_file;
using kawipiko::test::server_process;
using kawipiko::test::subresources;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;
const fs::path screenshot_folder = KAWIPIKO_SCREENSHOT_DIR;
const std::string& python_docs = python_docs_folder;

// The text of the first `<tag ...>` opening tag in `html` that contains `needle`, or "".
std::string opening_tag_with(const std::string& html, const std::string& tag,
                             const std::string& needle) {
  for (auto at = html.find("<" + tag + " "); at != std::string::npos;
       at = html.find("<" + tag + " ", at + 1)) {
    const auto text = html.substr(at, html.find('>', at) - at);
    if (text.find(needle) != std::string::npos) return text;
  }
  return "";
}

std::uint32_t big_endian_32(const std::string& bytes, std::size_t at) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  }
  return value;
}

// Fails the test unless Chromium and the docs are installed (the set-up's to arrange).
void require_chromium_and_docs() {
  INFO("bash cmake/install-deps.sh installs chromium and python3.11-doc");
  REQUIRE(fs::is_directory(python_docs));
  REQUIRE(fs::exists(chromium_binary));
}

struct page {
  std::string target;  // what the browser loads
  std::string source;  // the file under python_docs that answers it
  std::string name;    // screenshot: browser-<name>.png
  std::string title;   // the start of its <title>
};

// A page that loads `target` in a frame and, once the frame has loaded with everything it links,
// writes into <pre id="timeline"> a line per navigation and resource entry of its own Performance
// timeline and the frame's: "KIND PROTOCOL STATUS TARGET", PROTOCOL the entry's nextHopProtocol
// ("-" if empty), STATUS its responseStatus (0 if none), TARGET its path and query. It names the
// docs' icon as its own, as the docs' pages do: without one Chromium may ask for /favicon.ico
// (404) some time after the load.
std::string timeline_probe(const std::string& target) {
  return R"(<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>timeline probe</title>
<link rel="icon" href="/_static/py.svg"></head>
<body><pre id="timeline">not loaded</pre>
<iframe id="page" src=")" +
         target + R"(" width="1200" height="900"></iframe>
<script>
document.getElementById("page").addEventListener("load", function (event) {
  const lines = [];
  for (const timeline of [window.performance, event.target.contentWindow.performance]) {
    for (const kind of ["navigation", "resource"]) {
      for (const entry of timeline.getEntriesByType(kind)) {
        const url = new URL(entry.name);
        lines.push([kind, entry.nextHopProtocol || "-", entry.responseStatus || 0,
                    url.pathname + url.search].join(" "));
      }
    }
  }
  document.getElementById("timeline").textContent = lines.join("\n");
});
</script>
</body></html>
)";
}

struct timeline_entry {
  std::string kind, protocol, target;
  int status = 0;
};

// The lines timeline_probe wrote into `dom`.
std::vector<timeline_entry> timeline_entries(const std::string& dom) {
  const std::string open = "<pre id=\"timeline\">";
  const auto begin = dom.find(open);
  if (begin == std::string::npos) return {};
  std::istringstream lines(
      dom.substr(begin + open.size(), dom.find("</pre>", begin) - begin - open.size()));
  std::vector<timeline_entry> entries;
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    timeline_entry entry;
    words >> entry.kind >> entry.protocol >> entry.status >> entry.target;
    entries.push_back(entry);
  }
  return entries;
}

}  // namespace

TEST_CASE(
    "headless Chromium renders python3.11-doc from kawipiko serve: every resource 200, brotli "
    "negotiated, stylesheets and scripts applied",
    "[e2e][browser]") {
  require_chromium_and_docs();

  temp_folder scratch;
  const auto archive = archive_python_docs(binary, scratch);
  fs::create_directories(screenshot_folder);

  const std::vector<page> pages = {
      {"/", "index.html", "index", "<title>3.11.2 Documentation"},
      // A deep page with a PNG figure besides the theme's CSS, JS and SVG logo.
      {"/library/pathlib.html", "library/pathlib.html", "pathlib",
       "<title>pathlib — Object-oriented filesystem paths"},
  };
  std::string server_log;

  {
    server_process server(
        binary, {"serve", "--archive", archive.string(), "--bind", "127.0.0.1:0", "--debug"});
    const auto port = server.port();

    for (const auto& loaded : pages) {
      INFO("page " << loaded.target);
      const auto screenshot = screenshot_folder / ("browser-" + loaded.name + ".png");
      fs::remove(screenshot);
      const auto loaded_page = load_in_chromium(
          "http://127.0.0.1:" + std::to_string(port) + loaded.target, scratch.path(), loaded.name,
          {"--window-size=1280,1024", "--screenshot=" + screenshot.string()});
      INFO("chromium stderr: " << loaded_page.errors);
      REQUIRE(loaded_page.exit_code);
      REQUIRE(*loaded_page.exit_code == 0);

      // The scripts ran (jQuery, then sidebar.js built the collapse button) and the stylesheets
      // applied: sidebar.js sets the button's margin from the sidebar's computed width, 230px in
      // basic.css (reached through pydoctheme.css's @import chain), less 12; unstyled, the
      // sidebar would span the window.
      const auto& dom = loaded_page.dom;
      CHECK(dom.find(loaded.title) != std::string::npos);
      CHECK(dom.find("</html>") != std::string::npos);
      CHECK(opening_tag_with(dom, "div", "id=\"sidebarbutton\"").find("margin-left: 218px;") !=
            std::string::npos);
      if (loaded.name == "pathlib") {
        // copybutton.js copies the border of code blocks (pydoctheme.css: 1px solid #ac9) onto
        // the buttons it adds.
        CHECK(opening_tag_with(dom, "span", "class=\"copybutton\"")
                  .find("border-color: rgb(170, 204, 153); border-style: solid;") !=
              std::string::npos);
      }

      // A PNG of the window's size, and not a blank one (which compresses to a few KB).
      REQUIRE(fs::exists(screenshot));
      const auto png = read_file(screenshot);
      REQUIRE(png.size() > 24);
      CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
      CHECK(big_endian_32(png, 16) == 1280);
      CHECK(big_endian_32(png, 20) == 1024);
      CHECK(png.size() > 30'000);
    }

    CHECK(server.stop() == 0);  // the debug log is complete once the server has exited
    server_log = server.errors();
  }

  const auto requests = parse_debug_log(server_log);
  INFO("server log:\n" << server_log);
  REQUIRE(!requests.empty());
  for (const auto& request : requests) {
    INFO(request.line);
    CHECK(request.method == "GET");
    CHECK(request.status == 200);  // fresh profiles: nothing cached, so no 304
    // Chromium offered br (it does to localhost) and the server prefers it: every compressible
    // resource of this archive has a br variant, so gzip is never the answer.
    CHECK(request.variant != "gzip");
  }

  for (const auto& loaded : pages) {
    INFO("page " << loaded.target);
    const auto* document = find_request(requests, loaded.target);
    REQUIRE(document != nullptr);
    CHECK(document->variant == "br");

    std::vector<std::string> external;
    const auto expected =
        subresources(read_file(python_docs + "/" + loaded.source), loaded.target, external);
    CHECK(external.empty());
    CHECK(expected.size() >= 10);  // the theme alone links 2 stylesheets and 9 scripts
    bool has_png = false;
    for (const auto& target : expected) {
      INFO("subresource " << target);
      const auto* request = find_request(requests, target);
      REQUIRE(request != nullptr);
      CHECK(request->status == 200);
      if (target.size() > 4 && target.compare(target.size() - 4, 4, ".png") == 0) {
        // Not recompressed, and sent whole.
        has_png = true;
        CHECK(request->variant == "identity");
        CHECK(request->bytes == fs::file_size(python_docs + target));
      } else if (target.find(".css") != std::string::npos ||
                 target.find(".js") != std::string::npos) {
        CHECK(request->variant == "br");
      }
    }
    CHECK(has_png == (loaded.name == "pathlib"));
  }
}

TEST_CASE(
    "headless Chromium loads python3.11-doc over https in HTTP/2: the page and every subresource "
    "200 and h2, by its Performance timeline and by the server's log",
    "[e2e][browser][tls][http2]") {
  require_chromium_and_docs();
  temp_folder scratch;
  const std::string target = "/library/pathlib.html";
  const auto archive =
      archive_python_docs(binary, scratch, {{"timeline-probe.html", timeline_probe(target)}});
  std::vector<timeline_entry> entries;
  std::string server_log;
  {
    server_process server(binary, {"serve", "--archive", archive.string(), "--bind-tls",
                                   "127.0.0.1:0", "--tls-self-signed", "--debug"});
    const auto loaded = load_in_chromium(
        "https://127.0.0.1:" + std::to_string(server.tls_port()) + "/timeline-probe.html",
        scratch.path(), "pathlib-h2", {"--ignore-certificate-errors"});
    INFO("chromium stderr: " << loaded.errors);
    REQUIRE(loaded.exit_code);
    CHECK(*loaded.exit_code == 0);
    entries = timeline_entries(loaded.dom);
    CHECK(server.stop() == 0);  // the debug log is complete once the server has exited
    server_log = server.errors();
  }

  // The browser's count: both documents and everything fetched, 200 over h2.
  std::set<std::string> navigated, fetched;
  for (const auto& entry : entries) {
    INFO(entry.kind << " " << entry.target);
    CHECK(entry.protocol == "h2");
    CHECK(entry.status == 200);
    (entry.kind == "navigation" ? navigated : fetched).insert(entry.target);
  }
  CHECK(navigated == std::set<std::string>{"/timeline-probe.html", target});
  CHECK(fetched.contains(target));  // the frame, in the probe's timeline
  std::vector<std::string> external;
  const auto expected = subresources(read_file(python_docs + target), target, external);
  CHECK(external.empty());
  CHECK(expected.size() >= 10);
  for (const auto& subresource : expected) {
    INFO("subresource " << subresource);
    CHECK(fetched.contains(subresource));
  }

  // The server's: the same requests, each answered 200 over HTTP/2.
  INFO("server log:\n" << server_log);
  const auto requests = parse_debug_log(server_log);
  REQUIRE(!requests.empty());
  for (const auto& request : requests) {
    INFO(request.line);
    CHECK(request.status == 200);
    CHECK(request.line.ends_with(" HTTP/2"));
  }
  for (const auto& subresource : expected) {
    INFO("subresource " << subresource);
    const auto* request = find_request(requests, subresource);
    REQUIRE(request != nullptr);
    CHECK(request->status == 200);
  }
  const auto* document = find_request(requests, target);
  REQUIRE(document != nullptr);
  CHECK(document->variant == "br");  // Chromium offers br over https
}
