// End-to-end tests of what a serving process gives up: --user (every id of the process changes,
// it serves and reloads as that user, an archive it could not reload is refused at start, a drop
// that cannot be done is refused), --sandbox (seccomp and no_new_privs in force, Landlock where
// the kernel has it, shown by a reload the sandbox refuses; HTTP/1.1, TLS, HTTP/2, reloads,
// leases and --processes still work) and --limit-memory. The real binary, run as root, on
// 127.0.0.1 with an ephemeral port.

#include <linux/landlock.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/certificates.hpp"
#include "support/notify_socket.hpp"
#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/skip.hpp"
#include "support/temp_folder.hpp"
#include "support/tls_client.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kawipiko::test::archive_sources;
using kawipiko::test::client;
using kawipiko::test::count_lines;
using kawipiko::test::file_fingerprint;
using kawipiko::test::make_pair;
using kawipiko::test::random_bytes;
using kawipiko::test::read_file;
using kawipiko::test::request;
using kawipiko::test::run;
using kawipiko::test::serve_args;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::site;
using kawipiko::test::temp_folder;
using kawipiko::test::tls_client;
using kawipiko::test::url;

namespace {

const std::string binary = KAWIPIKO_BINARY;
constexpr uid_t nobody = 65534;

// The sanitizers' runtime makes calls the sandbox refuses (README: "Privileges and sandbox"), and
// its address space, terabytes of shadow memory, is past any --limit-memory: those cases, tagged
// [unsanitized], run in the unsanitized leg.
#if defined(KAWIPIKO_SANITIZED)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

std::vector<std::string> plus(std::vector<std::string> flags,
                              const std::vector<std::string>& more) {
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

// The fields of /proc/<pid>/status, by name, their values without the blanks around them.
std::map<std::string, std::string> status_of(pid_t pid) {
  std::map<std::string, std::string> fields;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    const auto colon = line.find(':');
    const auto first = line.find_first_not_of(" \t", colon + 1);
    const auto last = line.find_last_not_of(" \t");
    fields[line.substr(0, colon)] =
        first == std::string::npos ? "" : line.substr(first, last + 1 - first);
  }
  return fields;
}

// The kernel's Landlock ABI version, asked the way the kernel documents it; 0: none.
int kernel_landlock_abi() {
  const long abi =
      ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi > 0 ? static_cast<int>(abi) : 0;
}

// Whether the server's stderr has `text` within a bound.
bool says(const server_process& server, const std::string& text) {
  for (int attempt = 0; attempt < 250; ++attempt) {
    if (server.errors().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// GET `target` on a new plain connection.
kawipiko::test::http_response get(unsigned short port, const std::string& target = "/") {
  client c(port);
  return c.request(request(target));
}

// Whether GET / on new connections answers `body` within a bound (a worker takes a reloaded
// generation at its next sweep).
bool serves(unsigned short port, const std::string& body) {
  for (int attempt = 0; attempt < 250; ++attempt) {
    if (get(port).body == body) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// A build of a site with `index` as its home page, archived apart: the file to deploy.
fs::path build_with(const temp_folder& folder, const std::string& index) {
  folder.write("src/index.html", index);
  return archive_sources(binary, folder);
}

// Deploys `archive` over `live` by rename, the new file owned by `owner` first.
void deploy(const fs::path& archive, const fs::path& live, uid_t owner) {
  const auto next = live.string() + ".new";
  fs::copy_file(archive, next, fs::copy_options::overwrite_existing);
  REQUIRE(::chown(next.c_str(), owner, owner) == 0);
  fs::rename(next, live);
}

void replace_file(const fs::path& file, const std::string& content) {
  const auto next = file.string() + ".next";
  std::ofstream(next, std::ios::binary) << content;
  fs::rename(next, file);
}

// The PIDs that said "process <pid> runs ..." on the server's stderr.
std::vector<pid_t> confined_processes(const std::string& errors) {
  std::vector<pid_t> pids;
  const std::string marker = "kawipiko serve: process ";
  for (auto at = errors.find(marker); at != std::string::npos; at = errors.find(marker, at + 1)) {
    pids.push_back(static_cast<pid_t>(std::stol(errors.substr(at + marker.size()))));
  }
  return pids;
}

// What the sandbox says of the filesystem, by what the kernel has.
std::string landlock_words(const fs::path& folder) {
  const int abi = kernel_landlock_abi();
  if (abi == 0) {
    return "kawipiko serve: warning: the kernel has no Landlock: the sandbox does not restrict "
           "the filesystem, only the system calls\n";
  }
  return "sandboxed: Landlock ABI " + std::to_string(abi) + " (reading only below '" +
         folder.string() + "'), seccomp (";
}

// A site of 40 MB (one incompressible file), archived without compression.
fs::path archive_of_40_mb(const temp_folder& folder) {
  folder.write("src/index.html", "big site");
  folder.write("src/big.bin", random_bytes(40'000'000, 3));
  return archive_sources(binary, folder, "--compress identity");
}

void check_sandboxed(pid_t pid) {
  const auto status = status_of(pid);
  CHECK(status.at("Seccomp") == "2");
  CHECK(status.at("NoNewPrivs") == "1");
}

}  // namespace

TEST_CASE(
    "with --user nobody every id of the serving process is nobody's, and it serves and reloads "
    "as nobody",
    "[e2e][serve][net][sandbox]") {
  site s;
  server_process server(binary, serve_args(s.archive, {"--user", "nobody"}));
  const auto status = status_of(server.pid());
  CHECK(status.at("Uid") == "65534\t65534\t65534\t65534");
  CHECK(status.at("Gid") == "65534\t65534\t65534\t65534");
  CHECK(status.at("Groups") == "65534");  // nobody's one group, nogroup, as initgroups gives
  CHECK(server.errors() == "kawipiko serve: process " + std::to_string(server.pid()) +
                               " runs as user 'nobody' (uid 65534, gid 65534, groups 65534)\n");
  CHECK(get(server.port()).body == s.page);

  // A new archive that nobody owns: mapped under nobody's own read lease.
  temp_folder b, c;
  deploy(build_with(b, "build B"), s.archive, nobody);
  CHECK(says(server, "reloaded: generation 2, "));
  CHECK(says(server, ", mmap, "));
  CHECK(serves(server.port(), "build B"));
  // A root-owned one: nobody may not lease it, so it is read into memory, and the line says so.
  deploy(build_with(c, "build C"), s.archive, 0);
  CHECK(says(server, "reloaded: generation 3, "));
  CHECK(says(server, ", in memory: no read lease on the file (Permission denied), "));
  CHECK(serves(server.port(), "build C"));
  CHECK(server.stop() == 0);
}

TEST_CASE("with --user, an archive that user could not reload is refused at start, naming it",
          "[e2e][serve][errors][sandbox]") {
  site s;
  fs::permissions(s.archive, fs::perms::owner_read | fs::perms::owner_write);
  const auto result = run(binary + " serve --archive " + shell_quoted(s.archive) +
                              " --bind 127.0.0.1:0 --user "
                              "nobody",
                          s.folder.path());
  CHECK(result.exit_code == 1);
  CHECK(result.err == "kawipiko serve: error: archive " + shell_quoted(s.archive) +
                          " is not readable by user 'nobody' (Permission denied): reloads open "
                          "it as that user, so it must be readable by them\n");
}

TEST_CASE("an unknown --user or --group is a usage error naming it",
          "[e2e][serve][errors][sandbox]") {
  temp_folder scratch;
  for (const auto& [flags, message] : std::vector<std::pair<std::string, std::string>>{
           {"--user kawipiko-no-such-user", "--user 'kawipiko-no-such-user': no such user"},
           {"--user nobody --group kawipiko-no-such-group",
            "--group 'kawipiko-no-such-group': no such group"},
           {"--group nogroup", "--group needs --user"}}) {
    const auto result = run(binary + " serve --archive x.cdb " + flags, scratch.path());
    INFO(flags);
    CHECK(result.exit_code == 2);
    CHECK(result.err == "kawipiko serve: error: " + message + "\nTry 'kawipiko serve --help'.\n");
  }
}

TEST_CASE("a server asked to drop that cannot is refused with one line, exit 1",
          "[e2e][serve][errors][sandbox]") {
  site s;
  // Root without CAP_SETUID and CAP_SETGID (util-linux's setpriv takes them from the bounding
  // set, and so from the server it starts).
  for (const std::string processes : {"1", "2"}) {
    const auto result = run("/usr/bin/setpriv --bounding-set=-setuid,-setgid " + binary +
                                " serve --archive " + shell_quoted(s.archive) +
                                " --bind 127.0.0.1:0 --user nobody --processes " + processes,
                            s.folder.path());
    INFO("--processes " << processes);
    CHECK(result.exit_code == 1);
    CHECK(result.out.empty());  // never served
    CHECK(result.err ==
          "kawipiko serve: error: cannot run as user 'nobody': this process may not change its "
          "user and group (it lacks CAP_SETUID or CAP_SETGID: start it as root)\n");
  }
}

TEST_CASE("under --sandbox seccomp and no_new_privs hold, and HTTP/1.1, TLS and HTTP/2 are served",
          "[e2e][serve][net][tls][http2][sandbox][unsanitized]") {
  if (sanitized) KAWIPIKO_SKIP("a sanitized binary makes calls the sandbox refuses");
  site s;
  const auto pair = make_pair(s.folder, "site");
  const std::vector<std::vector<std::string>> certificates{
      {"--tls-public", pair.certificate.string(), "--tls-private", pair.key.string()},
      {"--tls-self-signed"}};
  for (const auto& certificate : certificates) {
    INFO(certificate[0]);
    server_process server(
        binary,
        serve_args(s.archive, plus({"--bind-tls", "127.0.0.1:0", "--sandbox"}, certificate)));
    check_sandboxed(server.pid());
    CHECK(says(server, landlock_words(s.folder.path())));
    CHECK(get(server.port()).body == s.page);
    tls_client secure(server.tls_port());
    CHECK(secure.request(request("/")).body == s.page);
    const auto h2c = kawipiko::test::curl(
        "--http2-prior-knowledge -o /dev/null -w '%{http_code} %{http_version}' " +
            url(server, "/"),
        s.folder);
    CHECK(h2c.out == "200 2");
    const auto h2 = kawipiko::test::curl(
        "-k --http2 -o /dev/null -w '%{http_code} %{http_version}' 'https://127.0.0.1:" +
            std::to_string(server.tls_port()) + "/'",
        s.folder);
    CHECK(h2.out == "200 2");
    CHECK(server.stop() == 0);
    CHECK(server.errors().find("refused system call") == std::string::npos);
  }
}

TEST_CASE(
    "under --sandbox a rename, a write in place and SIGHUP (archive and certificate) reload as "
    "without it",
    "[e2e][serve][net][tls][reload][sandbox][unsanitized]") {
  if (sanitized) KAWIPIKO_SKIP("a sanitized binary makes calls the sandbox refuses");
  site s;
  const auto a = make_pair(s.folder, "a");
  const auto b = make_pair(s.folder, "b");
  const kawipiko::test::pem_pair live{s.folder / "live.crt", s.folder / "live.key"};
  replace_file(live.certificate, read_file(a.certificate));
  replace_file(live.key, read_file(a.key));
  server_process server(
      binary,
      serve_args(s.archive, {"--bind-tls", "127.0.0.1:0", "--tls-public", live.certificate.string(),
                             "--tls-private", live.key.string(), "--sandbox", "--threads", "2"}));
  check_sandboxed(server.pid());
  temp_folder b_build, c_build;
  deploy(build_with(b_build, "build B"), s.archive, 0);
  CHECK(says(server, "reloaded: generation 2, "));
  CHECK(serves(server.port(), "build B"));

  // cp over the live file: its lease breaks (SIGIO, and the lease break time read), the build
  // served so far goes to memory, then the new one is taken once cp closes the file.
  CHECK(run("cp " + shell_quoted(build_with(c_build, "build C")) + " " + shell_quoted(s.archive),
            s.folder.path())
            .exit_code == 0);
  CHECK(says(server, "is being written in place: generation 3 is a copy in memory"));
  CHECK(says(server, "reloaded: generation 4, "));
  CHECK(serves(server.port(), "build C"));

  replace_file(live.certificate, read_file(b.certificate));
  replace_file(live.key, read_file(b.key));
  CHECK(::kill(server.pid(), SIGHUP) == 0);
  CHECK(says(server, "kawipiko serve: TLS certificate reloaded (SHA-256 " +
                         file_fingerprint(b.certificate) + ")"));
  CHECK(says(server, "reloaded: generation 5, "));
  tls_client renewed(server.tls_port());
  CHECK(renewed.peer_fingerprint() == file_fingerprint(b.certificate));
  CHECK(renewed.request(request("/")).body == "build C");
  CHECK(server.stop() == 0);
  CHECK(server.errors().find("refused system call") == std::string::npos);
  CHECK(server.errors().find("warning") == std::string::npos);
}

TEST_CASE(
    "under --sandbox with --processes each worker process is sandboxed, the supervisor is not",
    "[e2e][serve][net][processes][sandbox][unsanitized]") {
  if (sanitized) KAWIPIKO_SKIP("a sanitized binary makes calls the sandbox refuses");
  site s;
  server_process server(binary, serve_args(s.archive, {"--sandbox", "--processes", "2"}));
  const auto workers = confined_processes(server.errors());
  REQUIRE(workers.size() == 2);
  for (const pid_t worker : workers) check_sandboxed(worker);
  CHECK(status_of(server.pid()).at("Seccomp") == "0");  // it forks the workers started again
  for (int i = 0; i < 8; ++i) CHECK(get(server.port()).body == s.page);
  temp_folder b;
  deploy(build_with(b, "build B"), s.archive, 0);
  // Each worker process reloads on its own.
  for (int attempt = 0; attempt < 250; ++attempt) {
    if (count_lines(server.errors(), "kawipiko serve: archive ") == 2) break;
    std::this_thread::sleep_for(20ms);
  }
  CHECK(count_lines(server.errors(), "kawipiko serve: archive ") == 2);
  for (int i = 0; i < 8; ++i) CHECK(serves(server.port(), "build B"));
  CHECK(server.stop() == 0);
  CHECK(server.errors().find("refused system call") == std::string::npos);
}

TEST_CASE(
    "under --sandbox a reload from a folder outside the sandbox is refused by Landlock, served "
    "without it",
    "[e2e][serve][net][reload][sandbox][unsanitized]") {
  if (sanitized) KAWIPIKO_SKIP("a sanitized binary makes calls the sandbox refuses");
  if (kernel_landlock_abi() == 0) KAWIPIKO_SKIP("the kernel has no Landlock to refuse it");
  for (const bool sandboxed : {false, true}) {
    INFO("sandboxed: " << sandboxed);
    // The live name is a link into `allowed`, whose folder the sandbox reads; a deploy then
    // points it into `elsewhere`, which it does not.
    temp_folder live, allowed, elsewhere;
    const auto first = build_with(allowed, "build A");
    const auto second = build_with(elsewhere, "build B");
    const auto name = live / "site.cdb";
    fs::create_symlink(first, name);
    server_process server(binary, serve_args(name, sandboxed ? std::vector<std::string>{"--sandbox"}
                                                             : std::vector<std::string>{}));
    CHECK(get(server.port()).body == "build A");
    fs::create_symlink(second, live / "next");
    fs::rename(live / "next", name);
    if (sandboxed) {
      CHECK(says(server, "kawipiko serve: warning: cannot open " + shell_quoted(name) +
                             ": Permission denied; generation 1 goes on being served"));
      CHECK(get(server.port()).body == "build A");
    } else {
      CHECK(says(server, "reloaded: generation 2, "));
      CHECK(serves(server.port(), "build B"));
    }
    CHECK(server.stop() == 0);
  }
}

TEST_CASE("an archive that does not fit in --limit-memory is refused with one line, exit 1",
          "[e2e][serve][errors]") {
  temp_folder folder;
  const auto archive = archive_of_40_mb(folder);
  const auto refused = run(binary + " serve --archive " + shell_quoted(archive) +
                               " --bind 127.0.0.1:0 --limit-memory 16",
                           folder.path());
  CHECK(refused.exit_code == 1);
  CHECK(refused.out.empty());
  CHECK(refused.err == "kawipiko serve: error: archive " + shell_quoted(archive) +
                           " (40.0 MB) does not fit in --limit-memory 16 MiB\n");
}

TEST_CASE("within a --limit-memory it fits in, an archive is served mapped or in memory",
          "[e2e][serve][net][unsanitized]") {
  if (sanitized) KAWIPIKO_SKIP("a sanitized binary maps more than any --limit-memory");
  temp_folder folder;
  const auto archive = archive_of_40_mb(folder);
  for (const char* mode : {"--archive-mmap", "--archive-inmem"}) {
    INFO(mode);
    server_process server(binary, serve_args(archive, {"--limit-memory", "512", mode}));
    CHECK(get(server.port()).body == "big site");
    CHECK(get(server.port(), "/big.bin").body.size() == 40'000'000);
    CHECK(server.stop() == 0);
  }
}

TEST_CASE(
    "under --sandbox the access log reopens on SIGUSR1, the metrics answer and systemd hears "
    "of a reload",
    "[e2e][serve][net][log][metrics][sandbox][unsanitized]") {
  if (sanitized) KAWIPIKO_SKIP("a sanitized binary makes calls the sandbox refuses");
  site s;
  temp_folder logs;
  const auto log = logs / "access.log";
  const std::string manager = "@kawipiko-sandbox-" + std::to_string(::getpid());
  kawipiko::test::notify_socket notices(manager);
  // env(1) execs the server: the same PID, with NOTIFY_SOCKET set.
  server_process server("/usr/bin/env",
                        plus({"NOTIFY_SOCKET=" + manager, binary},
                             serve_args(s.archive, {"--sandbox", "--access-log", log.string(),
                                                    "--metrics-bind", "127.0.0.1:0"})));
  check_sandboxed(server.pid());
  CHECK(notices.receive().find("READY=1") != std::string::npos);
  // Each line reaches the file within about a second (the thread's buffer).
  const auto lines_within = [](const fs::path& file, std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline &&
           count_lines(read_file(file), "127.0.0.1 ") < count) {
      std::this_thread::sleep_for(50ms);
    }
    return count_lines(read_file(file), "127.0.0.1 ");
  };
  CHECK(get(server.port()).body == s.page);
  CHECK(lines_within(log, 1) == 1);
  // logrotate's way: rename, then SIGUSR1; the reopened file is a new one in the log's folder.
  fs::rename(log, logs / "access.log.1");
  ::kill(server.pid(), SIGUSR1);
  std::this_thread::sleep_for(300ms);
  CHECK(get(server.port()).body == s.page);
  CHECK(lines_within(log, 1) == 1);  // the request after the reopen, in the new file
  CHECK(count_lines(read_file(logs / "access.log.1"), "127.0.0.1 ") == 1);  // the one before
  const auto metrics_at = server.startup_line().find("(metrics on 127.0.0.1:");
  REQUIRE(metrics_at != std::string::npos);
  const auto metrics_port = server.startup_line().substr(metrics_at + 22);
  const auto scrape = kawipiko::test::curl(
      "'http://127.0.0.1:" + metrics_port.substr(0, metrics_port.find(')')) + "/metrics'",
      s.folder);
  CHECK(scrape.out.find("kawipiko_archive_info{") != std::string::npos);
  ::kill(server.pid(), SIGHUP);
  CHECK(notices.receive().find("RELOADING=1") != std::string::npos);
  CHECK(notices.receive().find("READY=1") != std::string::npos);
  CHECK(server.stop() == 0);
  CHECK(notices.receive().find("STOPPING=1") != std::string::npos);
  CHECK(server.errors().find("refused system call") == std::string::npos);
}
