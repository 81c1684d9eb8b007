// End-to-end tests of `kawipiko serve` under systemd's protocols, with no systemd running: the
// notify datagrams, on a socket the test binds and names in NOTIFY_SOCKET; socket activation
// through Debian's systemd-socket-activate, and through a listening socket the test holds and
// passes to one server after another (what a socket unit does across restarts) while clients
// keep asking; and `systemd-analyze verify` on the unit files of app/deploy/systemd.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/notify_socket.hpp"
#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

using kawipiko::test::abstract_notify_name;
using kawipiko::test::child_process;
using kawipiko::test::client;
using kawipiko::test::count_lines;
using kawipiko::test::listener_port;
using kawipiko::test::notify_field;
using kawipiko::test::notify_socket;
using kawipiko::test::read_file;
using kawipiko::test::request;
using kawipiko::test::run;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::site;
using kawipiko::test::temp_folder;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string binary = KAWIPIKO_BINARY;
const std::string socket_activate = "/usr/bin/systemd-socket-activate";

// `kawipiko serve` of `archive`, then `extra`, without --bind: the listeners come from systemd.
std::vector<std::string> serve_command(const fs::path& archive,
                                       const std::vector<std::string>& extra = {}) {
  std::vector<std::string> command{binary, "serve", "--archive", archive.string()};
  command.insert(command.end(), extra.begin(), extra.end());
  return command;
}

// `command` with NOTIFY_SOCKET=`address`, through env(1), which execs it: the same PID.
std::vector<std::string> notifying(const std::string& address, std::vector<std::string> command) {
  command.insert(command.begin(), "NOTIFY_SOCKET=" + address);
  return command;
}

// A bounded wait for `condition`: true once it holds, false if it still does not after 10 s.
template <class Condition>
bool eventually(Condition condition) {
  for (int i = 0; i < 1000; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

// The server's notifications from start to stop, through SIGHUPs: READY=1 once it listens (a
// request right after it is answered), RELOADING=1 then READY=1 around each SIGHUP once every
// process has reloaded, STOPPING=1 on SIGTERM, and nothing else (worker processes say nothing).
void check_notifications(const std::vector<std::string>& extra, std::size_t processes) {
  site s;
  const notify_socket systemd(abstract_notify_name());
  child_process server("/usr/bin/env",
                       notifying(systemd.address(), serve_command(s.archive, extra)));
  const auto ready = systemd.receive();
  CHECK(notify_field(ready, "READY") == "1");
  CHECK(notify_field(ready, "MAINPID") == std::to_string(server.pid()));
  const auto status = notify_field(ready, "STATUS");
  CHECK(status.find("generation 1 of '" + s.archive.string() + "'") != std::string::npos);
  const auto port = listener_port(status, "http://");
  REQUIRE(port != 0);
  client first(port);  // would throw "connect failed" if it did not listen yet
  CHECK(first.request(request("/hello.txt")).status == 200);

  for (int reload = 1; reload <= 2; ++reload) {  // nothing changed: still a reload each
    INFO("reload " << reload);
    REQUIRE(::kill(server.pid(), SIGHUP) == 0);
    const auto reloading = systemd.receive();
    CHECK(notify_field(reloading, "RELOADING") == "1");
    CHECK(notify_field(reloading, "MONOTONIC_USEC").find_first_not_of("0123456789") ==
          std::string::npos);
    const auto reloaded = systemd.receive();
    CHECK(notify_field(reloaded, "READY") == "1");
    CHECK(notify_field(reloaded, "STATUS")
              .find("generation " + std::to_string(reload + 1) + " of ") != std::string::npos);
    // READY=1 comes once every process has reloaded: each has said so already.
    CHECK(count_lines(server.errors(), "kawipiko serve: archive ") ==
          processes * static_cast<std::size_t>(reload));
  }
  client after(port);
  CHECK(after.request(request("/hello.txt")).status == 200);

  REQUIRE(::kill(server.pid(), SIGTERM) == 0);
  const auto stopping = systemd.receive();
  CHECK(notify_field(stopping, "STOPPING") == "1");
  CHECK(server.wait_exit(10s) == std::optional<int>(0));
  CHECK_FALSE(systemd.waiting().has_value());
}

// A port on 127.0.0.1 that nobody listened on a moment ago.
unsigned short unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// systemd-socket-activate listening on 127.0.0.1 for `command`, its socket named `name`. It
// execs the command on the first connection (the PID stays), handing it the socket as
// descriptor 3 with LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES.
struct socket_activated {
  unsigned short port = 0;
  std::unique_ptr<child_process> process;

  socket_activated(const std::string& name, const std::vector<std::string>& command) {
    // The port is chosen before systemd-socket-activate binds it: another test may take it
    // meanwhile, then it exits and another is tried.
    for (int attempt = 0; attempt < 5 && !process; ++attempt) {
      port = unused_port();
      std::vector<std::string> args{"-l", "127.0.0.1:" + std::to_string(port), "--fdname=" + name};
      args.insert(args.end(), command.begin(), command.end());
      auto started = std::make_unique<child_process>(socket_activate, args);
      const bool listening = eventually([&] {
        return started->errors().find("Listening on ") != std::string::npos ||
               started->wait_exit(0ms).has_value();
      });
      if (listening && !started->wait_exit(0ms)) process = std::move(started);
    }
    if (!process) throw std::runtime_error("systemd-socket-activate did not listen");
  }
};

// `command` run by bash as if systemd had passed it the listening socket `fd` of this process,
// as descriptor 3 named `name`: bash's PID is the command's once it execs.
std::vector<std::string> passed_to(int fd, const std::string& name,
                                   const std::vector<std::string>& command) {
  const auto from = std::to_string(fd);
  std::vector<std::string> args{"-c", "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=" + name +
                                          "; exec \"$0\" \"$@\" 3<&" + from + " " + from + "<&-"};
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

// A listening socket on 127.0.0.1 (an ephemeral port) that the test holds, as a socket unit
// does: at descriptor 200, inherited by the processes the test starts.
class held_socket {
 public:
  held_socket() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd, 4096) != 0 || ::dup2(fd, at) != at) {
      throw std::runtime_error("cannot make the held listening socket");
    }
    ::close(fd);
    ::getsockname(at, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~held_socket() { ::close(at); }
  held_socket(const held_socket&) = delete;
  held_socket& operator=(const held_socket&) = delete;

  static constexpr int at = 200;
  [[nodiscard]] unsigned short port() const { return port_; }

 private:
  unsigned short port_ = 0;
};

// Clients at 127.0.0.1 asking for /hello.txt over and over, each request on a new connection
// (every request a connection attempt, which a restart must not lose), until stopped. Every
// request is bounded by the client's timeouts (10 s).
class load {
 public:
  load(unsigned short port, int clients) {
    for (int i = 0; i < clients; ++i) threads_.emplace_back([this, port] { ask(port); });
  }
  ~load() { stop(); }
  load(const load&) = delete;
  load& operator=(const load&) = delete;

  void stop() {
    done_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  [[nodiscard]] std::size_t answered() const { return answered_; }
  [[nodiscard]] std::size_t failed() const { return failed_; }
  [[nodiscard]] std::string first_failure() const {
    const std::lock_guard lock(mutex_);
    return first_failure_;
  }

 private:
  void ask(unsigned short port) {
    const auto asked = request("/hello.txt", "Connection: close\r\n");
    while (!done_) {
      try {
        client c(port);
        const auto got = c.request(asked);
        if (got.status != 200 || got.body != "hello") throw std::runtime_error(got.status_line);
        ++answered_;
      } catch (const std::exception& e) {
        ++failed_;
        const std::lock_guard lock(mutex_);
        if (first_failure_.empty()) first_failure_ = e.what();
      }
    }
  }

  std::atomic<bool> done_{false};
  std::atomic<std::size_t> answered_{0};
  std::atomic<std::size_t> failed_{0};
  mutable std::mutex mutex_;
  std::string first_failure_;
  std::vector<std::thread> threads_;
};

// Restarts `extra`'s server 5 times on one held socket under the load of 2 clients: none of
// their requests may fail.
void check_restarts(const std::vector<std::string>& extra) {
  site s;
  const held_socket listening;
  const auto start = [&] {
    return std::make_unique<server_process>(
        "/bin/bash", passed_to(held_socket::at, "http", serve_command(s.archive, extra)));
  };
  auto server = start();
  CHECK(listener_port(server->startup_line(), "http://") == listening.port());
  load clients(listening.port(), 2);
  for (int restart = 0; restart < 5; ++restart) {
    INFO("restart " << restart);
    const auto mark = clients.answered();
    REQUIRE(eventually([&] { return clients.answered() >= mark + 50 || clients.failed() > 0; }));
    // As systemd restarts a service: SIGTERM (the answers in flight finish), then a new one;
    // connection attempts meanwhile wait in the socket's queue, which the test holds.
    CHECK(server->stop() == 0);
    server = start();
  }
  const auto mark = clients.answered();
  CHECK(eventually([&] { return clients.answered() >= mark + 50 || clients.failed() > 0; }));
  clients.stop();
  INFO("first failure: " << clients.first_failure());
  CHECK(clients.failed() == 0);
  CHECK(clients.answered() >= 300);
  CHECK(server->stop() == 0);
}

}  // namespace

// ---- notify
// ---------------------------------------------------------------------------------------

TEST_CASE("one process tells systemd READY=1 once listening, reloads and STOPPING=1",
          "[e2e][serve][net]") {
  check_notifications({"--bind", "127.0.0.1:0", "--quiet"}, 1);
}

TEST_CASE("with several processes the supervisor alone tells systemd, once all of them are done",
          "[e2e][serve][net]") {
  check_notifications({"--bind", "127.0.0.1:0", "--quiet", "--processes", "2", "--threads", "2"},
                      2);
}

TEST_CASE("a notify socket nobody listens on costs a warning line, not the service",
          "[e2e][serve][net]") {
  site s;
  const auto nowhere = (s.folder / "nobody-listens").string();
  server_process server("/usr/bin/env",
                        notifying(nowhere, serve_command(s.archive, {"--bind", "127.0.0.1:0"})));
  client c(server.port());
  CHECK(c.request(request("/hello.txt")).status == 200);
  CHECK(server.errors().find("kawipiko serve: warning: cannot notify the service manager at '" +
                             nowhere + "': No such file or directory") != std::string::npos);
  CHECK(server.stop() == 0);
}

// ---- socket activation ------------------------------------------------------------------------

TEST_CASE("systemd-socket-activate's socket is served, with several threads and processes too",
          "[e2e][serve][net]") {
  site s;
  temp_folder scratch;
  for (const auto& extra : {std::vector<std::string>{}, std::vector<std::string>{"--threads", "2"},
                            std::vector<std::string>{"--processes", "2", "--threads", "2"}}) {
    INFO(extra.size());
    socket_activated activated("http", serve_command(s.archive, extra));
    const std::string url = "http://127.0.0.1:" + std::to_string(activated.port);
    const auto first = kawipiko::test::curl(url + "/hello.txt", scratch);  // starts the server
    CHECK(first.exit_code == 0);
    CHECK(first.out == "hello");
    const auto line = activated.process->read_line();
    REQUIRE(line.has_value());
    CHECK(listener_port(*line, "http://") == activated.port);
    std::size_t ok = 0;
    for (int i = 0; i < 40; ++i) {
      client c(activated.port);
      ok += c.request(request("/hello.txt")).status == 200 ? 1u : 0u;
    }
    CHECK(ok == 40);
    CHECK(activated.process->stop() == 0);
  }
}

TEST_CASE("a socket named https is the TLS listener", "[e2e][serve][net]") {
  site s;
  temp_folder scratch;
  socket_activated activated("https", serve_command(s.archive, {"--tls-self-signed"}));
  const std::string url = "https://127.0.0.1:" + std::to_string(activated.port);
  const auto got = kawipiko::test::curl("-k " + url + "/hello.txt", scratch);
  CHECK(got.exit_code == 0);
  CHECK(got.out == "hello");
  const auto line = activated.process->read_line();
  REQUIRE(line.has_value());
  CHECK(listener_port(*line, "https://") == activated.port);
  CHECK(listener_port(*line, "http://") == 0);  // no plain listener of --bind's default
  CHECK(activated.process->stop() == 0);
}

TEST_CASE("passed sockets the server cannot use are refused at start with one line",
          "[e2e][serve][errors]") {
  site s;
  const held_socket listening;
  SECTION("an https socket without a certificate: a usage error") {
    child_process server("/bin/bash",
                         passed_to(held_socket::at, "https", serve_command(s.archive)));
    CHECK(server.wait_exit(10s) == std::optional<int>(2));
    CHECK(server.errors().rfind(
              "kawipiko serve: error: a passed 'https' socket needs a certificate: --tls-bundle, "
              "--tls-public with --tls-private, or --tls-self-signed\n",
              0) == 0);
  }
  SECTION("a descriptor that is no socket") {
    const auto result = run("LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http exec " + binary +
                                " serve --archive " + shell_quoted(s.archive) + " 3</dev/null",
                            s.folder.path());
    CHECK(result.exit_code == 1);
    CHECK(result.err ==
          "kawipiko serve: error: socket activation: descriptor 3 ('http') is not a socket; "
          "expected a listening TCP socket\n");
  }
}

TEST_CASE("restarts on a socket the server inherits lose no request of clients under load",
          "[e2e][serve][net]") {
  check_restarts({"--threads", "2"});
}

TEST_CASE("restarts lose no request with several processes sharing the inherited socket",
          "[e2e][serve][net]") {
  check_restarts({"--processes", "2"});
}

// ---- the unit files ---------------------------------------------------------------------------

TEST_CASE("systemd-analyze verify finds nothing to say about the unit files", "[e2e][serve]") {
  const fs::path units = fs::path(KAWIPIKO_TEST_SOURCE_DIR) / ".." / "app" / "deploy" / "systemd";
  temp_folder copy;
  // The copy starts the binary under test: verify checks that ExecStart= names an executable.
  std::string service = read_file(units / "kawipiko.service");
  const std::string installed = "ExecStart=/usr/bin/kawipiko ";
  const auto at = service.find(installed);
  REQUIRE(at != std::string::npos);
  service.replace(at, installed.size(), "ExecStart=" + binary + " ");
  copy.write("kawipiko.service", service);
  copy.write("kawipiko.socket", read_file(units / "kawipiko.socket"));
  copy.write("kawipiko-tls.socket", read_file(units / "kawipiko-tls.socket"));
  const auto result = run(
      "/usr/bin/systemd-analyze verify " + shell_quoted(copy / "kawipiko.service") + " " +
          shell_quoted(copy / "kawipiko.socket") + " " + shell_quoted(copy / "kawipiko-tls.socket"),
      copy.path());
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());  // warnings too ("Unknown key", "Failed to parse ... ignoring")
  CHECK(result.out.empty());
}
