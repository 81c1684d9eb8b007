#pragma once
// Test support for browser tests: headless Chromium (Debian's `chromium`) run as a process group
// that is always stopped, with an empty profile and a home of its own, loading one URL and
// dumping its DOM; the python3.11-doc site archived, with pages of a test's own beside it if
// asked; and what is needed to check what it fetched: the subresources a page links
// (stylesheets, scripts, images, as request targets) and the server's --debug request log.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "support/temp_folder.hpp"

extern char** environ;

namespace kawipiko::test {

inline const std::string chromium_binary = "/usr/bin/chromium";
inline const std::string python_docs_folder = "/usr/share/doc/python3.11/html";

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
  ~process_group() { stop(std::chrono::seconds(2)); }
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
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
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
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (kill_strays(SIGKILL) > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
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
inline std::vector<std::string> environment_with(const std::vector<std::string>& overrides) {
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
inline std::string attribute(const std::string& tag, const std::string& name) {
  const auto at = tag.find(" " + name + "=\"");
  if (at == std::string::npos) return "";
  const auto begin = at + name.size() + 3;
  return tag.substr(begin, tag.find('"', begin) - begin);
}

// `ref` resolved against the page at absolute path `page`, as the request target a browser sends
// (dot segments removed, fragment dropped, query kept); "" if it points off the site.
inline std::string resolve(const std::string& page, std::string ref) {
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
inline std::set<std::string> subresources(const std::string& html, const std::string& page,
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
inline std::vector<logged_request> parse_debug_log(const std::string& text) {
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

inline const logged_request* find_request(const std::vector<logged_request>& requests,
                                          const std::string& target) {
  for (const auto& request : requests) {
    if (request.target == target) return &request;
  }
  return nullptr;
}

// Archives python3.11-doc into `scratch`/python-docs.cdb with brotli and gzip at level 1 (quick)
// with the `kawipiko` at `binary`, with `extra` pages (file name at the top of the site, content)
// beside it: then the sources are a folder of symlinks to the docs' top-level entries, which the
// archiver follows, and the pages. Returns its path; throws std::invalid_argument for an extra
// name that is not a new top-level file, std::runtime_error with the archiver's stderr if it
// failed.
inline fs::path archive_python_docs(
    const std::string& binary, const temp_folder& scratch,
    const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  fs::path sources = python_docs_folder;
  if (!extra.empty()) {
    sources = scratch / "python-docs-sources";
    fs::create_directories(sources);
    for (const auto& entry : fs::directory_iterator(python_docs_folder)) {
      fs::create_symlink(entry.path(), sources / entry.path().filename());
    }
    for (const auto& [name, content] : extra) {
      // Written through a symlinked folder, a page would land in the docs themselves.
      if (name.find('/') != std::string::npos || fs::exists(fs::symlink_status(sources / name))) {
        throw std::invalid_argument("not a new top-level page: " + name);
      }
      scratch.write("python-docs-sources/" + name, content);
    }
  }
  const auto archive = scratch / "python-docs.cdb";
  const auto archived =
      run(binary + " archive --sources " + shell_quoted(sources) + " --archive " +
              shell_quoted(archive) + " --compress brotli,gzip --compress-level 1 --quiet",
          scratch.path());
  if (archived.exit_code != 0) throw std::runtime_error("kawipiko archive failed: " + archived.err);
  return archive;
}

struct browser_result {
  std::optional<int> exit_code;  // none: it was still running at the bound, and was stopped
  std::string dom;               // --dump-dom: the document once its scripts ran
  std::string errors;            // its stderr
};

// Loads `url` in headless Chromium with `flags` added, everything of the run under
// `scratch`/browser-<name> (an empty profile: nothing cached; a home of its own, so nothing is
// written to the user's), and waits at most `bound` for it to exit.
inline browser_result load_in_chromium(const std::string& url, const fs::path& scratch,
                                       const std::string& name,
                                       const std::vector<std::string>& flags,
                                       std::chrono::milliseconds bound = std::chrono::seconds(45)) {
  const auto dom_file = scratch / (name + "-dom.html");
  const auto errors_file = scratch / (name + "-chromium-err.txt");
  const auto home = scratch / ("browser-" + name);
  const auto profile = home / "profile";
  fs::create_directories(profile);
  const stray_killer strays(home.string() + "/");

  std::vector<std::string> argv = {chromium_binary,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--no-first-run",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--disable-quic",
                                   "--user-data-dir=" + profile.string(),
                                   "--dump-dom"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back(url);
  browser_result result;
  {
    process_group browser(
        argv,
        environment_with({"HOME=" + home.string(), "XDG_CONFIG_HOME=" + (home / "config").string(),
                          "XDG_CACHE_HOME=" + (home / "cache").string()}),
        dom_file, errors_file);
    result.exit_code = browser.wait(bound);
  }
  result.dom = read_file(dom_file);
  result.errors = read_file(errors_file);
  return result;
}

}  // namespace kawipiko::test
