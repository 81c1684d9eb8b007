#pragma once
// Test support: a fresh folder under the system temp folder, removed with everything in it when
// the object goes away; helpers to write files into it and to run commands (also as an
// unprivileged user).

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

namespace kawipiko::test {

namespace fs = std::filesystem;

class temp_folder {
 public:
  temp_folder() {
    std::random_device seed;
    for (int attempt = 0; attempt < 100; ++attempt) {
      const auto candidate =
          fs::temp_directory_path() /
          ("kawipiko-test-" + std::to_string(::getpid()) + "-" + std::to_string(seed()));
      if (fs::create_directory(candidate)) {
        path_ = candidate;
        return;
      }
    }
    throw std::runtime_error("cannot create a temp folder");
  }
  ~temp_folder() {
    std::error_code ignored;
    // Make everything removable again (tests chmod things away).
    for (auto it = fs::recursive_directory_iterator(path_, ignored);
         it != fs::recursive_directory_iterator(); it.increment(ignored)) {
      if (it->is_directory(ignored) && !it->is_symlink(ignored)) {
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ignored);
      }
    }
    fs::remove_all(path_, ignored);
  }
  temp_folder(const temp_folder&) = delete;
  temp_folder& operator=(const temp_folder&) = delete;

  [[nodiscard]] const fs::path& path() const { return path_; }
  [[nodiscard]] std::string str() const { return path_.string(); }
  [[nodiscard]] fs::path operator/(const std::string& relative) const { return path_ / relative; }

  // Writes `content` to `relative` (creating folders on the way) and returns its path.
  fs::path write(const std::string& relative, const std::string& content) const {
    const auto file = path_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream out(file, std::ios::binary);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + file.string());
    return file;
  }

 private:
  fs::path path_;
};

inline std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// A seeded run of text that compresses well (like HTML).
inline std::string compressible_text(std::size_t size, unsigned seed = 1) {
  static constexpr const char* words[] = {"<p>",      "the",    "archive",         "server",
                                          "</p>\n",   "static", "<a href=\"/x\">", "link</a>",
                                          "kawipiko", "page"};
  std::mt19937 random(seed);
  std::string text;
  while (text.size() < size) {
    text += words[random() % 10];
    text += ' ';
  }
  text.resize(size);
  return text;
}

// `size` seeded random bytes: content no codec can shrink (stored identity only).
inline std::string random_bytes(std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string bytes(size, '\0');
  for (auto& b : bytes) b = static_cast<char>(random() & 0xff);
  return bytes;
}

struct command_result {
  int exit_code;
  std::string out;
  std::string err;
};

// Runs `command` with /bin/sh, capturing stdout and stderr (through files in `scratch`).
inline command_result run(const std::string& command, const fs::path& scratch) {
  const auto out = scratch / "stdout.txt";
  const auto err = scratch / "stderr.txt";
  const std::string line = command + " >'" + out.string() + "' 2>'" + err.string() + "' </dev/null";
  const int status = std::system(line.c_str());
  command_result result{-1, read_file(out), read_file(err)};
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// What a command printed, for a failure's report.
inline std::string transcript(const command_result& result) {
  return "exit " + std::to_string(result.exit_code) + "; stdout:\n" + result.out + "\nstderr:\n" +
         result.err;
}

// `command` for /bin/sh, run as a user that file permissions apply to: as root (the tests run as
// root in CI), through util-linux's setpriv as nobody (uid and gid 65534, no supplementary
// groups); otherwise as it is, since the caller is unprivileged already. Throws
// std::runtime_error when root and setpriv is missing, so that no test silently runs as root.
inline std::string unprivileged(const std::string& command) {
  if (::geteuid() != 0) return command;
  if (::access("/usr/bin/setpriv", X_OK) != 0) {
    throw std::runtime_error("setpriv (util-linux) is missing: cannot drop root");
  }
  return "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups " + command;
}

// `path` in single quotes for /bin/sh (test paths hold no quote of their own).
inline std::string shell_quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

// How many lines of `text` start with `prefix`.
inline std::size_t count_lines(const std::string& text, const std::string& prefix) {
  std::size_t count = 0, at = 0;
  while (at < text.size()) {
    const auto end = text.find('\n', at);
    if (text.compare(at, prefix.size(), prefix) == 0) ++count;
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return count;
}

// Archives `folder`/src into `folder`/site.cdb with the `kawipiko` at `binary`, quietly, with
// the default settings and `flags`. Returns the archive's path; throws std::runtime_error with
// the archiver's stderr if it failed.
inline fs::path archive_sources(const std::string& binary, const temp_folder& folder,
                                const std::string& flags = "") {
  const auto archive = folder / "site.cdb";
  const auto result = run(binary + " archive --quiet --sources " + shell_quoted(folder / "src") +
                              " --archive " + shell_quoted(archive) + " " + flags,
                          folder.path());
  if (result.exit_code != 0) throw std::runtime_error("kawipiko archive failed: " + result.err);
  return archive;
}

}  // namespace kawipiko::test
