// End-to-end test of README's "Scaling out": three kawipiko servers on three hosts of the
// test's own (network namespaces joined to this one by veth pairs), Debian's HAProxy in front
// with app/deploy/haproxy.cfg as it is shipped (readiness checks on /readyz), a client driving
// load through HAProxy at 127.0.0.1 while a new build is rolled out to one host after the other
// (copy beside, rename over, the server reloads): every response is a whole 200 of one build or
// the other, and at the end every server's /metrics names the new build.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kawipiko::test::child_process;
using kawipiko::test::client;
using kawipiko::test::request;
using kawipiko::test::server_process;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;
const std::string ip_tool = "/usr/sbin/ip";
const std::string haproxy = "/usr/sbin/haproxy";

// `command` for /bin/sh; REQUIREs that it succeeds.
void must(const std::string& command, const temp_folder& scratch) {
  const auto result = kawipiko::test::run(command, scratch.path());
  INFO(command << ": " << result.err);
  REQUIRE(result.exit_code == 0);
}

// A host of the test's own: a network namespace with one end of a veth pair at 10.231.<n>.2,
// the other end here at 10.231.<n>.1. Removed (both) when it goes.
class network_host {
 public:
  network_host(int n, const temp_folder& scratch)
      : scratch_(scratch),
        name_("kp" + std::to_string(::getpid() % 100000) + "h" + std::to_string(n)),
        link_("kp" + std::to_string(::getpid() % 100000) + "v" + std::to_string(n)),
        address_("10.231." + std::to_string(n) + ".2") {
    const auto here = "10.231." + std::to_string(n) + ".1/24";
    must(ip_tool + " netns add " + name_, scratch_);
    must(ip_tool + " link add " + link_ + " type veth peer name " + link_ + "p", scratch_);
    must(ip_tool + " link set " + link_ + "p netns " + name_, scratch_);
    must(ip_tool + " addr add " + here + " dev " + link_, scratch_);
    must(ip_tool + " link set " + link_ + " up", scratch_);
    must(in_host("addr add " + address_ + "/24 dev " + link_ + "p"), scratch_);
    must(in_host("link set " + link_ + "p up"), scratch_);
    must(in_host("link set lo up"), scratch_);
  }
  network_host(const network_host&) = delete;
  network_host& operator=(const network_host&) = delete;
  ~network_host() {
    (void)kawipiko::test::run(ip_tool + " link del " + link_, scratch_.path());
    (void)kawipiko::test::run(ip_tool + " netns del " + name_, scratch_.path());
  }

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& address() const { return address_; }

 private:
  [[nodiscard]] std::string in_host(const std::string& ip_command) const {
    return ip_tool + " netns exec " + name_ + " " + ip_tool + " " + ip_command;
  }

  const temp_folder& scratch_;
  std::string name_, link_, address_;
};

// One web server: a host, its own copy of the archive, kawipiko serving it there on :8080 with
// its metrics on :9100.
struct web_server {
  network_host host;
  temp_folder folder;
  fs::path live = folder / "site.cdb";
  std::unique_ptr<server_process> process;

  web_server(int n, const temp_folder& scratch, const fs::path& archive) : host(n, scratch) {
    fs::copy_file(archive, live);
    process = std::make_unique<server_process>(
        ip_tool,
        std::vector<std::string>{"netns", "exec", host.name(), binary, "serve", "--archive",
                                 live.string(), "--bind", host.address() + ":8080",
                                 "--metrics-bind", host.address() + ":9100"});
  }

  // The README's deploy: a copy beside the live name, then a rename over it.
  void deploy(const fs::path& archive) const {
    const auto next = folder / "site.cdb.new";
    fs::copy_file(archive, next, fs::copy_options::overwrite_existing);
    fs::rename(next, live);
  }

  [[nodiscard]] std::string metrics(const temp_folder& scratch) const {
    return kawipiko::test::curl("'http://" + host.address() + ":9100/metrics'", scratch).out;
  }
};

// The build a start-up line or a reload line names ("..., build 0123456789abcdef, ...").
std::string build_in(const std::string& line) {
  const auto at = line.rfind("build ");
  return at == std::string::npos ? std::string() : line.substr(at + 6, 16);
}

// Whether `server`'s /metrics names `build` within `bound`.
bool reports_within(const web_server& server, const std::string& build, const temp_folder& scratch,
                    std::chrono::milliseconds bound = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (server.metrics(scratch).find("build=\"" + build + "\"") != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// Keep-alive clients asking HAProxy for / over and over; every answer must be a whole 200 of
// build A or build B.
class load {
 public:
  explicit load(unsigned short port, int clients = 4) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, port] {
        while (!stop_) {
          try {
            client c(port);
            while (!stop_) {
              const auto got = c.request(request("/"));
              if (got.status == 200 && got.body == "build A") {
                ++a_;
              } else if (got.status == 200 && got.body == "build B") {
                ++b_;
              } else {
                ++wrong_;
              }
            }
          } catch (const std::exception&) {
            if (!stop_) ++failed_;  // a connection that fails or ends before its answer
          }
        }
      });
    }
  }
  load(const load&) = delete;
  load& operator=(const load&) = delete;
  ~load() { finish(); }

  void finish() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  [[nodiscard]] int a() const { return a_; }
  [[nodiscard]] int b() const { return b_; }
  [[nodiscard]] int wrong() const { return wrong_; }
  [[nodiscard]] int failed() const { return failed_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> a_{0}, b_{0}, wrong_{0}, failed_{0};
  std::vector<std::thread> threads_;
};

unsigned short free_port() {
  kawipiko::test::temp_folder scratch;
  // Bind an ephemeral port and let it go: HAProxy takes it a moment later.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace

TEST_CASE("three servers behind HAProxy take a new build one after the other without a failure",
          "[e2e][serve][net][scale-out]") {
  temp_folder scratch, build_a, build_b;
  build_a.write("src/index.html", "build A");
  build_b.write("src/index.html", "build B");
  const auto a = kawipiko::test::archive_sources(binary, build_a, "--compress identity");
  const auto b = kawipiko::test::archive_sources(binary, build_b, "--compress identity");

  std::vector<std::unique_ptr<web_server>> servers;
  for (int n = 1; n <= 3; ++n) servers.push_back(std::make_unique<web_server>(n, scratch, a));
  const auto old_build = build_in(servers[0]->process->startup_line());
  REQUIRE(old_build.size() == 16);

  const auto front = free_port();
  ::setenv("KAWIPIKO_FRONT", ("127.0.0.1:" + std::to_string(front)).c_str(), 1);
  for (int n = 1; n <= 3; ++n) {
    ::setenv(("KAWIPIKO_WEB" + std::to_string(n)).c_str(),
             (servers[static_cast<std::size_t>(n - 1)]->host.address() + ":8080").c_str(), 1);
  }
  ::setenv("KAWIPIKO_METRICS_PORT", "9100", 1);
  child_process proxy(
      haproxy, {"-db", "-f", std::string(KAWIPIKO_TEST_SOURCE_DIR) + "/../app/deploy/haproxy.cfg"});
  // HAProxy answers once its checks find the servers ready (rise 2 x 500 ms).
  const auto ready_by = std::chrono::steady_clock::now() + 10s;
  bool answered = false;
  while (!answered && std::chrono::steady_clock::now() < ready_by) {
    try {
      client c(front);
      answered = c.request(request("/")).body == "build A";
    } catch (const std::exception&) {
    }
    if (!answered) std::this_thread::sleep_for(100ms);
  }
  REQUIRE(answered);

  load clients(front);
  std::this_thread::sleep_for(500ms);
  std::string new_build;
  for (auto& server : servers) {
    server->deploy(b);
    if (new_build.empty()) {
      // The first server's reload line names the new build.
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (new_build.empty() && std::chrono::steady_clock::now() < deadline) {
        const auto errors = server->process->errors();
        const auto at = errors.find("reloaded: generation 2");
        if (at != std::string::npos)
          new_build = build_in(errors.substr(at, errors.find('\n', at) - at));
        if (new_build.empty()) std::this_thread::sleep_for(20ms);
      }
      REQUIRE(new_build.size() == 16);
      REQUIRE(new_build != old_build);
    }
    CHECK(reports_within(*server, new_build, scratch));
    std::this_thread::sleep_for(500ms);  // the next host a moment later, as a rollout goes
  }
  clients.finish();
  INFO("build A " << clients.a() << ", build B " << clients.b() << ", wrong " << clients.wrong()
                  << ", failed " << clients.failed());
  CHECK(clients.failed() == 0);
  CHECK(clients.wrong() == 0);
  CHECK(clients.a() > 0);
  CHECK(clients.b() > 0);
  for (const auto& server : servers) {
    const auto text = server->metrics(scratch);
    CHECK(text.find("build=\"" + new_build + "\"") != std::string::npos);
    CHECK(text.find("build=\"" + old_build + "\"") == std::string::npos);
  }
  CHECK(proxy.stop(SIGUSR1) == 0);  // HAProxy's graceful stop (SIGTERM ends it by the signal)
  for (auto& server : servers) CHECK(server->process->stop() == 0);
}
