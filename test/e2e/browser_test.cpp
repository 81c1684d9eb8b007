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

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

extern char** environ;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kawipiko::test::read_file;
using kawipiko::test::run;
using kawipiko::test::server_process;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;
const fs::path screenshot_folder = KAWIPIKO_SCREENSHOT_DIR;
const std::string python_docs = "/usr/share/doc/python3.11/html";
const std::string chromium = "/usr/bin/chromium";

// The browser: a child process leading its own process group (Chromium forks zygotes, renderers
// and a GPU process into it) with its output in files, killed with the test process
// (PR_SET_PDEATHSIG) and, at the latest, when the object goes away: SIGTERM to the group, then
// SIGKILL after a bound. (The server runs under support/server_process.hpp's guard.)
class process_group {
 public:
  // Starts `argv[0]` (an absolute path) with `env`, stdin from /dev/null, stdout and stderr into
  // the given files.
  process_group(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                const fs::path& out, const fs::path& err) {
    // Everything the child needs is prepared here: between fork and exec only async-signal-safe
    // calls are allowed.
    std::vector<char*> args, envp;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    for (const auto& var : env) envp.push_back(const_cast<char*>(var.c_str()));
    args.push_back(nullptr);
    envp.push_back(nullptr);
    const std::string out_path = out.string(), err_path = err.string();
    const pid_t parent = ::getpid();

    pid_ = ::fork();
    if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "cannot fork");
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int in_fd = ::open("/dev/null", O_RDONLY);
      const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in_fd < 0 || out_fd < 0 || err_fd < 0) ::_exit(127);
      ::dup2(in_fd, 0);
      ::dup2(out_fd, 1);
      ::dup2(err_fd, 2);
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);  // also here, so that the group exists before we signal it
  }
  ~process_group() { stop(2s); }
  process_group(const process_group&) = delete;
  process_group& operator=(const process_group&) = delete;

  // Waits up to `timeout` for the leader to exit. Returns its exit code (128 + signal when
  // killed), or nothing if it is still running. Once the leader has exited, whatever it left in
  // its group is killed.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!exit_code_) {
      siginfo_t info{};
      // WNOWAIT leaves the leader a zombie: its id, and so the group's, cannot be reused until
      // the group has been killed.
      if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid_) {
        ::kill(-pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(20ms);
    }
    return exit_code_;
  }

  // SIGTERM to the group; SIGKILL if the leader has not exited after `grace`. Returns the
  // leader's exit code as wait() does.
  int stop(std::chrono::milliseconds grace) {
    if (!exit_code_) {
      ::kill(-pid_, SIGTERM);
      if (!wait(grace)) {
        ::kill(-pid_, SIGKILL);
        wait(std::chrono::hours(1));  // SIGKILL cannot be ignored
      }
    }
    return *exit_code_;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Kills, when it goes away, every other process whose command line mentions `marker`. Chromium's
// crash handler (chrome_crashpad_handler) moves itself into a session of its own, out of reach of
// the group kill; it exits once the browser is gone, but it is ours, so it is stopped here. Its
// --database lies under the XDG_CONFIG_HOME we give the browser, which holds `marker`.
class stray_killer {
 public:
  explicit stray_killer(std::string marker) : marker_(std::move(marker)) {}
  ~stray_killer() {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (kill_strays(SIGKILL) > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
  }
  stray_killer(const stray_killer&) = delete;
  stray_killer& operator=(const stray_killer&) = delete;

 private:
  // Sends `signal` to every live process (not this one) whose command line holds the marker;
  // returns how many there were. A dead one (a zombie) has an empty command line.
  int kill_strays(int signal) const {
    int count = 0;
    std::error_code ignored;
    for (const auto& item : fs::directory_iterator("/proc", ignored)) {
      const auto name = item.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      const pid_t pid = std::stoi(name);
      if (pid == ::getpid()) continue;
      if (read_file(item.path() / "cmdline").find(marker_) == std::string::npos) continue;
      ::kill(pid, signal);
      ++count;
    }
    return count;
  }

  std::string marker_;
};

// This process's environment with `overrides` (NAME=value) in place of the same names.
std::vector<std::string> environment_with(const std::vector<std::string>& overrides) {
  std::vector<std::string> env = overrides;
  for (char** var = environ; *var != nullptr; ++var) {
    const std::string entry = *var;
    const auto name = entry.substr(0, entry.find('=') + 1);
    bool overridden = false;
    for (const auto& override : overrides) overridden = overridden || override.rfind(name, 0) == 0;
    if (!overridden) env.push_back(entry);
  }
  return env;
}

// The value of attribute `name` in `tag` (double-quoted, as Sphinx writes them), or "".
std::string attribute(const std::string& tag, const std::string& name) {
  const auto at = tag.find(" " + name + "=\"");
  if (at == std::string::npos) return "";
  const auto begin = at + name.size() + 3;
  return tag.substr(begin, tag.find('"', begin) - begin);
}

// `ref` resolved against the page at absolute path `page`, as the request target a browser sends
// (dot segments removed, fragment dropped, query kept); "" if it points off the site.
std::string resolve(const std::string& page, std::string ref) {
  if (ref.find("://") != std::string::npos || ref.rfind("//", 0) == 0 ||
      ref.rfind("data:", 0) == 0) {
    return "";
  }
  ref = ref.substr(0, ref.find('#'));
  const auto query_at = ref.find('?');
  const auto query = query_at == std::string::npos ? "" : ref.substr(query_at);
  const auto path = ref.substr(0, query_at);
  const auto joined = path.rfind('/', 0) == 0 ? path : page.substr(0, page.rfind('/') + 1) + path;

  std::vector<std::string> segments;
  std::istringstream parts(joined.substr(1));
  std::string segment;
  while (std::getline(parts, segment, '/')) {
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (segment != ".") {
      segments.push_back(segment);
    }
  }
  std::string target;
  for (const auto& part : segments) target += "/" + part;
  if (joined.back() == '/' || target.empty()) target += "/";
  return target + query;
}

// What a browser must fetch to render `html` (the page at `page`): stylesheets, scripts and
// images, as request targets. Targets off the site go to `external`.
std::set<std::string> subresources(const std::string& html, const std::string& page,
                                   std::vector<std::string>& external) {
  std::set<std::string> targets;
  for (const std::string element : {"link", "script", "img"}) {
    for (auto at = html.find("<" + element); at != std::string::npos;
         at = html.find("<" + element, at + 1)) {
      const auto next = html[at + element.size() + 1];
      if (next != ' ' && next != '\n' && next != '>') continue;
      const auto tag = html.substr(at, html.find('>', at) - at);
      std::string ref;
      if (element == "link") {
        if (attribute(tag, "rel") == "stylesheet") ref = attribute(tag, "href");
      } else {
        ref = attribute(tag, "src");
      }
      if (ref.empty()) continue;
      const auto target = resolve(page, ref);
      if (target.empty()) {
        external.push_back(ref);
      } else {
        targets.insert(target);
      }
    }
  }
  return targets;
}

struct logged_request {
  std::string method, target, variant, line;
  int status = 0;
  std::uint64_t bytes = 0;
};

// The server's --debug lines: `[debug] METHOD TARGET STATUS VARIANT BYTES NNus`.
std::vector<logged_request> parse_debug_log(const std::string& text) {
  std::vector<logged_request> requests;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("[debug] ", 0) != 0) continue;
    logged_request request;
    request.line = line;
    std::istringstream fields(line.substr(8));
    fields >> request.method >> request.target >> request.status >> request.variant >>
        request.bytes;
    requests.push_back(request);
  }
  return requests;
}

const logged_request* find_request(const std::vector<logged_request>& requests,
                                   const std::string& target) {
  for (const auto& request : requests) {
    if (request.target == target) return &request;
  }
  return nullptr;
}

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

struct page {
  std::string target;  // what the browser loads
  std::string source;  // the file under python_docs that answers it
  std::string name;    // screenshot: browser-<name>.png
  std::string title;   // the start of its <title>
};

}  // namespace

TEST_CASE(
    "headless Chromium renders python3.11-doc from kawipiko serve: every resource 200, brotli "
    "negotiated, stylesheets and scripts applied",
    "[e2e][browser]") {
  {
    INFO("bash cmake/install-deps.sh installs chromium and python3.11-doc");
    REQUIRE(fs::is_directory(python_docs));
    REQUIRE(fs::exists(chromium));
  }

  temp_folder scratch;
  const auto archive = scratch / "python-docs.cdb";
  const auto archived =
      run(binary + " archive --sources '" + python_docs + "' --archive '" + archive.string() +
              "' --compress brotli,gzip --compress-level 1 --quiet",
          scratch.path());
  REQUIRE(archived.exit_code == 0);
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
      const auto dom_file = scratch / (loaded.name + "-dom.html");
      const auto browser_err = scratch / (loaded.name + "-chromium-err.txt");
      fs::remove(screenshot);
      // Everything of this browser run under one folder: an empty profile (nothing cached), and
      // a home of its own so that nothing is written to the user's.
      const auto home = scratch / ("browser-" + loaded.name);
      const auto profile = home / "profile";
      fs::create_directories(profile);
      const stray_killer strays(home.string() + "/");

      process_group browser(
          {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-quic", "--user-data-dir=" + profile.string(), "--window-size=1280,1024",
           "--screenshot=" + screenshot.string(), "--dump-dom",
           "http://127.0.0.1:" + std::to_string(port) + loaded.target},
          environment_with({"HOME=" + home.string(),
                            "XDG_CONFIG_HOME=" + (home / "config").string(),
                            "XDG_CACHE_HOME=" + (home / "cache").string()}),
          dom_file, browser_err);
      const auto exit_code = browser.wait(45s);
      INFO("chromium stderr: " << read_file(browser_err));
      REQUIRE(exit_code);
      REQUIRE(*exit_code == 0);

      // The scripts ran (jQuery, then sidebar.js built the collapse button) and the stylesheets
      // applied: sidebar.js sets the button's margin from the sidebar's computed width, 230px in
      // basic.css (reached through pydoctheme.css's @import chain), less 12; unstyled, the
      // sidebar would span the window.
      const auto dom = read_file(dom_file);
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
