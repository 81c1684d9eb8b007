// End-to-end tests of host folders: an archive made with `kawipiko archive --host-folders`
// served with --archive, each host answered from its own folder (Host over HTTP/1.1, curl's
// --resolve, :authority over HTTP/2), a wildcard folder, _default for the rest and 421 without
// it; a reload that brings a new host; a schema 1 archive renamed in its place; the archive
// refused with --host; and the archiver's errors on a bad tree.

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kawipiko::test::archive_sources;
using kawipiko::test::client;
using kawipiko::test::read_file;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;

// Host folders a.test/, *.b.test/ and (with `with_default`) _default/, archived by the binary.
struct host_folders {
  temp_folder folder;
  fs::path archive;

  explicit host_folders(bool with_default = true) {
    folder.write("src/a.test/index.html", "a home");
    folder.write("src/a.test/docs/index.html", "a docs");
    folder.write("src/a.test/_404.html", "a not found");
    folder.write("src/*.b.test/index.html", "b home");
    if (with_default) folder.write("src/_default/index.html", "default home");
    archive = archive_sources(binary, folder, "--host-folders --compress identity");
  }
};

// GET `target` with `host` as the Host field, on a new connection: the status and body.
std::pair<unsigned, std::string> get(unsigned short port, const std::string& host,
                                     const std::string& target = "/") {
  client c(port);
  const auto got = c.request("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  return {got.status, got.body};
}

// GET / on a new connection for `host` until it answers `body`, within `bound`.
bool answers_within(unsigned short port, const std::string& host, const std::string& body,
                    std::chrono::milliseconds bound = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (get(port, host).second == body) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

TEST_CASE("an archive of host folders answers each host from its folder, the rest from _default",
          "[e2e][serve][net][hosts]") {
  const host_folders h;
  server_process server(binary, kawipiko::test::serve_args(h.archive));
  CHECK(server.startup_line().find("for hosts *.b.test, _default, a.test with 1 process") !=
        std::string::npos);
  const auto port = server.port();
  CHECK(get(port, "a.test") == std::pair<unsigned, std::string>{200, "a home"});
  CHECK(get(port, "A.TEST.:8080").second == "a home");
  CHECK(get(port, "x.b.test").second == "b home");
  CHECK(get(port, "deep.x.b.test").second == "b home");
  CHECK(get(port, "b.test").second == "default home");  // *. is for names under it
  CHECK(get(port, "other.org").second == "default home");
  // Routing stays within a host: a.test's redirect, its index, its 404 page, no one else's.
  client c(port);
  const auto redirect = c.request("GET /docs HTTP/1.1\r\nHost: a.test\r\n\r\n");
  CHECK(redirect.status == 308);
  CHECK(redirect.field("Location") == "/docs/");
  CHECK(get(port, "a.test", "/docs/").second == "a docs");
  CHECK(get(port, "a.test", "/missing") == std::pair<unsigned, std::string>{404, "a not found"});
  CHECK(get(port, "other.org", "/missing") ==
        std::pair<unsigned, std::string>{404, "404 Not Found\n"});
  CHECK(get(port, "other.org", "/docs/").first == 404);
  // curl by name, over HTTP/1.1 and HTTP/2 (h2c: :authority).
  const temp_folder scratch;
  const auto where = std::to_string(port);
  const auto by_name = kawipiko::test::curl(
      "--resolve a.test:" + where + ":127.0.0.1 http://a.test:" + where + "/docs/", scratch);
  CHECK(by_name.out == "a docs");
  const auto h2 = kawipiko::test::curl(
      "--http2-prior-knowledge -H 'Host: y.b.test' -w ' %{http_version}' "
      "http://127.0.0.1:" +
          where + "/",
      scratch);
  CHECK(h2.out == "b home 2");
  CHECK(server.stop() == 0);
}

TEST_CASE("an archive of host folders without _default answers other hosts 421",
          "[e2e][serve][net][hosts]") {
  const host_folders h(false);
  server_process server(binary, kawipiko::test::serve_args(h.archive));
  CHECK(get(server.port(), "a.test").second == "a home");
  CHECK(get(server.port(), "other.org") ==
        std::pair<unsigned, std::string>{421, "421 Misdirected Request\n"});
  CHECK(server.stop() == 0);
}

TEST_CASE(
    "a new archive of host folders renamed over the live one brings its hosts in one reload, "
    "and a schema 1 archive after it is served whole",
    "[e2e][serve][net][hosts][reload]") {
  const host_folders first;
  // The next build adds c.test and changes a.test.
  temp_folder next;
  next.write("src/a.test/index.html", "a home, rebuilt");
  next.write("src/c.test/index.html", "c home");
  next.write("src/_default/index.html", "default home");
  const auto next_archive = archive_sources(binary, next, "--host-folders --compress identity");
  temp_folder plain;
  plain.write("src/index.html", "one site");
  const auto plain_archive = archive_sources(binary, plain, "--compress identity");

  const temp_folder live;
  const auto site = live / "site.cdb";
  fs::copy_file(first.archive, site);
  server_process server(binary, kawipiko::test::serve_args(site));
  const auto port = server.port();
  CHECK(get(port, "c.test").second == "default home");
  const auto deploy = [&](const fs::path& from) {
    fs::copy_file(from, live / "site.cdb.new", fs::copy_options::overwrite_existing);
    fs::rename(live / "site.cdb.new", site);
  };

  deploy(next_archive);
  CHECK(answers_within(port, "c.test", "c home"));
  CHECK(get(port, "a.test").second == "a home, rebuilt");
  CHECK(get(port, "x.b.test").second == "default home");  // *.b.test went with the old build
  CHECK(server.errors().find("reloaded: generation 2") != std::string::npos);
  CHECK(server.errors().find("hosts _default, a.test, c.test") != std::string::npos);

  deploy(plain_archive);
  CHECK(answers_within(port, "a.test", "one site"));
  CHECK(get(port, "other.org").second == "one site");
  CHECK(server.stop() == 0);
}

TEST_CASE("an archive of host folders given with --host is refused at start",
          "[e2e][serve][hosts]") {
  const host_folders h;
  const temp_folder scratch;
  const auto result = kawipiko::test::run(
      "timeout 10 " + binary + " serve --bind 127.0.0.1:0 --host a.test=" + shell_quoted(h.archive),
      scratch.path());
  CHECK(result.exit_code == 1);
  CHECK(result.err == "kawipiko serve: error: '" + h.archive.string() +
                          "' has host folders; give it with --archive\n");
}

TEST_CASE("the archiver refuses a bad host-folders tree and keeps the previous archive",
          "[e2e][archive][hosts]") {
  const host_folders h;
  const std::string before = read_file(h.archive);
  h.folder.write("src/robots.txt", "at the top: no host's");
  const auto command = binary + " archive --quiet --host-folders --sources " +
                       shell_quoted(h.folder / "src") + " --archive " + shell_quoted(h.archive);
  auto result = kawipiko::test::run(command, h.folder.path());
  CHECK(result.exit_code == 1);
  CHECK(result.err.find("kawipiko archive: error: a file at the top of host folders belongs to "
                        "no host '") == 0);
  CHECK(read_file(h.archive) == before);
  fs::remove(h.folder / "src/robots.txt");
  h.folder.write("src/not a host/index.html", "x");
  result = kawipiko::test::run(command, h.folder.path());
  CHECK(result.exit_code == 1);
  CHECK(result.err.find("is not a host name") != std::string::npos);
  CHECK(read_file(h.archive) == before);
}
