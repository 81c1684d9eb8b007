// End-to-end tests of `kawipiko archive`: the real binary on fixture trees and on Debian's
// python3.11-doc, its exit codes, messages, progress and summary, atomic replacement, and
// reproducibility. Archives are checked with our reader and with Debian's tinycdb.

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using kawipiko::test::compressible_text;
using kawipiko::test::count_lines;
using kawipiko::test::read_file;
using kawipiko::test::run;
using kawipiko::test::shell_quoted;
using kawipiko::test::temp_folder;
using kawipiko::test::unprivileged;

namespace {

const std::string binary = KAWIPIKO_BINARY;
const std::string python_docs = "/usr/share/doc/python3.11/html";

std::string archive_command(const fs::path& sources, const fs::path& target,
                            const std::string& extra = "") {
  return binary + " archive --sources " + shell_quoted(sources) + " --archive " +
         shell_quoted(target) + " " + extra;
}

bool has_temp_files(const fs::path& folder) {
  for (const auto& item : fs::directory_iterator(folder)) {
    if (item.path().filename().string().find(".tmp-") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("kawipiko answers --help and --version, and its applet names select the command",
          "[e2e]") {
  temp_folder scratch;
  auto result = run(binary + " --help", scratch.path());
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("archive") != std::string::npos);
  result = run(binary + " --version", scratch.path());
  CHECK(result.exit_code == 0);
  CHECK(result.out.rfind("kawipiko ", 0) == 0);
  result = run(binary + " archive --help", scratch.path());
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("--exclude-slash-redirects") != std::string::npos);

  const auto applet = fs::path(binary).parent_path() / "kawipiko-archiver";
  REQUIRE(fs::is_symlink(applet));
  result = run(applet.string() + " --help", scratch.path());
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("--sources") != std::string::npos);
  CHECK(fs::is_symlink(fs::path(binary).parent_path() / "kawipiko-server"));
}

TEST_CASE("usage errors exit 2 with one line and a hint", "[e2e][errors]") {
  temp_folder scratch;
  for (const std::string args :
       {"archive --no-such-flag", "archive --sources x", "archive --archive x.cdb",
        "archive --sources x --archive y "
        "--compress lzma",
        "archive --sources x --archive y --compress gzip "
        "--compress-level 12",
        "archive --sources x --archive y --jobs 0", "frobnicate"}) {
    INFO(args);
    const auto result = run(binary + " " + args, scratch.path());
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("error: ") != std::string::npos);
    CHECK(result.err.find("Try 'kawipiko") != std::string::npos);
    CHECK(count_lines(result.err, "") <= 2);
  }
}

TEST_CASE("an archive of a fixture tree is a CDB file that tinycdb reads", "[e2e][interop]") {
  temp_folder sources, out;
  sources.write("index.html", compressible_text(8000));
  sources.write("docs/guide.html", "guide");
  const auto target = out / "site.cdb";
  const auto result = run(archive_command(sources.path(), target, "--quiet"), out.path());
  REQUIRE(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out.rfind("archived 2 files, 2 folders", 0) == 0);
  CHECK(count_lines(result.out, "archived ") == 1);

  const auto schema = run("cdb -q " + shell_quoted(target) + " kawipiko:schema", out.path());
  REQUIRE(schema.exit_code == 0);
  CHECK(schema.out == "kawipiko-archive/3");
  const auto entry = run("cdb -q " + shell_quoted(target) + " /docs/guide", out.path());
  REQUIRE(entry.exit_code == 0);
  CHECK(entry.out.rfind("200 1 00\nidentity ", 0) == 0);
  CHECK(entry.out.find("Content-Type: text/html; charset=utf-8\r\n") != std::string::npos);
  const auto dump = run("cdb -d " + shell_quoted(target), out.path());
  REQUIRE(dump.exit_code == 0);
  CHECK(dump.out.find("/docs/guide.html/->308 1 01\n") != std::string::npos);
}

TEST_CASE("debug mode logs one line per file and progress mode reports without a terminal",
          "[e2e]") {
  temp_folder sources, out;
  for (int i = 0; i < 5; ++i) sources.write("p" + std::to_string(i) + ".html", "page");
  const auto target = out / "site.cdb";
  auto result = run(archive_command(sources.path(), target, "--debug"), out.path());
  REQUIRE(result.exit_code == 0);
  CHECK(count_lines(result.err, "[debug] /p") == 5);
  CHECK(result.err.find("[debug] /p3.html text/html; charset=utf-8 identity=4") !=
        std::string::npos);

  result = run(archive_command(sources.path(), target, "--progress"), out.path());
  REQUIRE(result.exit_code == 0);
  CHECK(count_lines(result.err, "progress: ") >= 1);
  CHECK(result.err.find("progress: 5/5 files") != std::string::npos);

  result = run(archive_command(sources.path(), target), out.path());  // not a terminal
  CHECK(result.err.empty());
  CHECK(count_lines(result.out, "archived ") == 1);
}

TEST_CASE("every runtime error is one line naming the path, exit 1, nothing lost",
          "[e2e][errors]") {
  temp_folder sources, out;
  sources.write("index.html", "home");
  const auto target = out / "site.cdb";
  REQUIRE(run(archive_command(sources.path(), target, "--quiet"), out.path()).exit_code == 0);
  const std::string before = read_file(target);

  std::string expected;
  SECTION("dangling symlink") {
    fs::create_symlink(sources / "gone.css", sources / "style.css");
    expected = "dangling symlink '" + (sources / "style.css").string() + "'";
  }
  SECTION("FIFO") {
    REQUIRE(::mkfifo((sources / "queue").c_str(), 0600) == 0);
    expected = (sources / "queue").string();
  }
  SECTION("missing sources") {
    fs::remove_all(sources / "index.html");
    fs::remove(sources.path());
    expected = "cannot open sources folder '" + sources.str() + "'";
  }
  SECTION("target folder missing") {
    const auto result =
        run(archive_command(sources.path(), out / "nowhere/site.cdb", "--quiet"), out.path());
    CHECK(result.exit_code == 1);
    CHECK(result.err.find("cannot create a temp file beside '" +
                          (out / "nowhere/site.cdb").string() + "'") != std::string::npos);
    return;
  }
  const auto result = run(archive_command(sources.path(), target, "--quiet"), out.path());
  CHECK(result.exit_code == 1);
  CHECK(result.err.rfind("kawipiko archive: error: ", 0) == 0);
  CHECK(result.err.find(expected) != std::string::npos);
  CHECK(count_lines(result.err, "") == 1);
  CHECK(read_file(target) == before);
  CHECK_FALSE(has_temp_files(out.path()));
}

TEST_CASE("an unreadable file or folder stops the run with one line naming it", "[e2e][errors]") {
  temp_folder sources, out;
  // The archiver runs unprivileged (as nobody when the tests run as root): it may read the tree
  // and write the target folder, but not the one item closed below (mode 000, which binds its
  // owner too, root's override aside).
  fs::permissions(sources.path(), fs::perms::all);
  fs::permissions(out.path(), fs::perms::all);
  sources.write("index.html", "home");
  fs::path closed;
  std::string expected;
  SECTION("a file") {
    closed = sources.write("secret.html", "secret");
    expected = "cannot open '" + closed.string() + "': Permission denied";
  }
  SECTION("a folder") {
    closed = sources.write("private/page.html", "private").parent_path();
    expected = "cannot read folder '" + closed.string() + "': Permission denied";
  }
  fs::permissions(closed, fs::perms::none);
  REQUIRE(run(unprivileged("test -r " + shell_quoted(closed)), out.path()).exit_code != 0);
  const auto target = out / "site.cdb";
  const auto result =
      run(unprivileged(archive_command(sources.path(), target, "--quiet")), out.path());
  CHECK(result.exit_code == 1);
  CHECK(result.err == "kawipiko archive: error: " + expected + "\n");
  CHECK_FALSE(fs::exists(target));
  CHECK_FALSE(has_temp_files(out.path()));
}

TEST_CASE("an interrupted run leaves the previous archive and no temp file", "[e2e][errors]") {
  temp_folder sources, out;
  // Enough work at brotli's top quality that the interrupt lands mid-run.
  for (int i = 0; i < 40; ++i) {
    sources.write("page" + std::to_string(i) + ".html",
                  compressible_text(200000, static_cast<unsigned>(i)));
  }
  const auto target = out / "site.cdb";
  { std::ofstream(target, std::ios::binary) << "previous archive"; }
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const auto devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(binary.c_str(), "kawipiko", "archive", "--sources", sources.str().c_str(), "--archive",
            target.c_str(), "--compress", "brotli", "--compress-level", "11", "--jobs", "1",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ::kill(child, SIGINT);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(read_file(target) == "previous archive");
  CHECK_FALSE(has_temp_files(out.path()));
}

TEST_CASE("python3.11-doc archives reproducibly across job counts, folders and mtimes",
          "[e2e][reproducible][slow]") {
  REQUIRE(fs::is_directory(python_docs));
  temp_folder out, copy;
  // A copy elsewhere with every mtime changed (symlinks resolved: Debian's point outside).
  REQUIRE(run("cp -rL " + shell_quoted(python_docs) + "/. " + shell_quoted(copy.path()) +
                  " && find " + shell_quoted(copy.path()) +
                  " -exec touch -d '2001-02-03 04:05:06' {} +",
              out.path())
              .exit_code == 0);
  // Low levels keep the suite fast: maximum quality belongs to the benchmark.
  const std::string fast = "--compress brotli,gzip --compress-level 1 --quiet ";
  const auto one = out / "one.cdb", two = out / "two.cdb";
  auto result = run(archive_command(python_docs, one, fast + "--jobs 1"), out.path());
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find("archived 10") == 0);  // a thousand-odd files
  result = run(archive_command(copy.path(), two, fast + "--jobs 2"), out.path());
  REQUIRE(result.exit_code == 0);
  CHECK(read_file(one) == read_file(two));

  // A rebuild after one page changed reuses everything else and matches a fresh build.
  { std::ofstream(copy / "library/os.html", std::ios::app) << "<!-- edited -->\n"; }
  result = run(archive_command(copy.path(), two, fast), out.path());
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find(" 2 compressions done") != std::string::npos);
  const auto fresh = out / "fresh.cdb";
  REQUIRE(run(archive_command(copy.path(), fresh, fast + "--no-reuse"), out.path()).exit_code == 0);
  CHECK(read_file(two) == read_file(fresh));

  const auto index = run("cdb -q " + shell_quoted(one) + " /library/", out.path());
  CHECK(index.exit_code == 0);
  CHECK(index.out.rfind("200 3 00\n", 0) == 0);
}

TEST_CASE("on a terminal a progress bar is drawn on stderr, and --quiet silences it",
          "[e2e][progress]") {
  if (::system("command -v script >/dev/null 2>&1") != 0) {
    FAIL("the script command (util-linux) is missing");
  }
  temp_folder sources, out;
  for (int i = 0; i < 30; ++i) sources.write("p" + std::to_string(i) + ".html", "page");
  const auto target = out / "site.cdb";
  // script(1) runs the archiver on a pseudo-terminal and copies what it shows to stdout.
  const auto on_terminal = [&](const std::string& extra) {
    return run("script -qec \"" + archive_command(sources.path(), target, extra) + "\" /dev/null",
               out.path());
  };
  auto result = on_terminal("");
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find("\r[========================] 100% 30/30 files") != std::string::npos);
  CHECK(result.out.find("ETA ") != std::string::npos);
  CHECK(result.out.find("archived 30 files") != std::string::npos);
  result = on_terminal("--quiet");
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find("\r[") == std::string::npos);
  CHECK(result.out.find("archived 30 files") != std::string::npos);
}

TEST_CASE("hostile source trees: a socket, a full disk, an unwritable target folder, a huge file",
          "[e2e][errors][hostile]") {
  temp_folder sources, out;
  sources.write("index.html", compressible_text(300000, 9));
  const auto target = out / "site.cdb";
  REQUIRE(run(archive_command(sources.path(), target, "--quiet"), out.path()).exit_code == 0);
  const std::string before = read_file(target);
  std::string expected;

  SECTION("a UNIX socket in the tree") {
    const auto path = sources / "control.sock";
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(path.string().size() < sizeof address.sun_path);
    std::strcpy(address.sun_path, path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    ::close(fd);
    expected = "socket or device) '" + path.string() + "'";
  }
  SECTION("a full disk (a file size limit stands in for it)") {
    sources.write("more.html", compressible_text(300000, 10));
    // ulimit -f counts 512-byte blocks in dash: 200 blocks = 100 KB, far below the archive.
    const auto result =
        run("ulimit -f 200 && " + archive_command(sources.path(), target, "--quiet --no-reuse"),
            out.path());
    CHECK(result.exit_code == 1);
    CHECK(result.err.find("cannot write") != std::string::npos);
    CHECK(result.err.find("File too large") != std::string::npos);
    CHECK(read_file(target) == before);
    CHECK_FALSE(has_temp_files(out.path()));
    return;
  }
  SECTION("a file over 4 GiB (sparse) is refused before anything is read") {
    const auto huge = sources / "huge.bin";
    { std::ofstream(huge, std::ios::binary) << 'x'; }
    fs::resize_file(huge, (std::uintmax_t{4} << 30) + 1);
    expected = "file too large for the 4 GiB limit of the archive format '" + huge.string() + "'";
  }
  SECTION("a target folder that is not writable") {
    temp_folder locked;
    fs::permissions(sources.path(), fs::perms::all);
    fs::permissions(sources / "index.html", fs::perms::all);
    // 0555: closed to writing for everyone, its owner included, root's override aside (the
    // archiver runs unprivileged).
    fs::permissions(locked.path(), fs::perms::owner_read | fs::perms::owner_exec |
                                       fs::perms::group_read | fs::perms::group_exec |
                                       fs::perms::others_read | fs::perms::others_exec);
    REQUIRE(run(unprivileged("test -w " + shell_quoted(locked.path())), out.path()).exit_code != 0);
    const auto result = run(
        unprivileged(archive_command(sources.path(), locked / "site.cdb", "--quiet")), out.path());
    CHECK(result.exit_code == 1);
    CHECK(result.err.find("cannot create a temp file beside '" + (locked / "site.cdb").string() +
                          "': Permission denied") != std::string::npos);
    CHECK(fs::is_empty(locked.path()));
    return;
  }
  const auto result = run(archive_command(sources.path(), target, "--quiet"), out.path());
  CHECK(result.exit_code == 1);
  CHECK(result.err.find(expected) != std::string::npos);
  CHECK(count_lines(result.err, "") == 1);
  CHECK(read_file(target) == before);
  CHECK_FALSE(has_temp_files(out.path()));
}
