#include "serve/systemd.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "support/notify_socket.hpp"
#include "support/temp_folder.hpp"

namespace serve = kawipiko::serve;
using kawipiko::test::notify_field;
using kawipiko::test::notify_socket;
using kawipiko::test::temp_folder;

namespace {

unsigned long long monotonic_microseconds() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<unsigned long long>(now.tv_sec) * 1'000'000ULL +
         static_cast<unsigned long long>(now.tv_nsec) / 1'000ULL;
}

// Descriptors at fixed high numbers, as a service manager passes them from 3 on: the tests
// place their sockets from `first` on, where nothing of the test binary's lives.
constexpr int first = 200;

// Moves `fd` to descriptor `at` (closing what was there) and returns `at`.
int place(int fd, int at) {
  REQUIRE(fd >= 0);
  REQUIRE(::dup2(fd, at) == at);
  ::close(fd);
  return at;
}

int listening_tcp() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  return fd;
}

// Closes the descriptors placed from `first` on when the test is done.
struct placed {
  int count;
  ~placed() {
    for (int i = 0; i < count; ++i) ::close(first + i);
  }
};

std::string pid_text() {
  return std::to_string(::getpid());
}

}  // namespace

// ---- the notify protocol ------------------------------------------------------------------------

TEST_CASE("the notifier sends each state as one datagram to a socket path", "[serve]") {
  temp_folder folder;
  const auto path = (folder / "notify").string();
  notify_socket systemd(path);
  const serve::service_notifier notifier(path);
  CHECK(notifier.enabled());
  CHECK_FALSE(notifier.send("READY=1"));
  CHECK(systemd.receive() == "READY=1");
  CHECK_FALSE(notifier.stopping());
  const auto stopping = systemd.receive();
  CHECK(notify_field(stopping, "STOPPING") == "1");
  CHECK(notify_field(stopping, "READY") == "(none)");
}

TEST_CASE("the notifier reaches an abstract socket named with '@'", "[serve]") {
  const auto name = kawipiko::test::abstract_notify_name();
  notify_socket systemd(name);
  const serve::service_notifier notifier(name);
  CHECK_FALSE(notifier.ready("serving on http://127.0.0.1:80\nand more"));
  const auto ready = systemd.receive();
  CHECK(notify_field(ready, "READY") == "1");
  CHECK(notify_field(ready, "MAINPID") == pid_text());
  CHECK(notify_field(ready, "STATUS") == "serving on http://127.0.0.1:80 and more");  // one line
}

TEST_CASE("RELOADING=1 comes with MONOTONIC_USEC, the monotonic clock's now", "[serve]") {
  const auto name = kawipiko::test::abstract_notify_name();
  notify_socket systemd(name);
  const serve::service_notifier notifier(name);
  const auto before = monotonic_microseconds();
  CHECK_FALSE(notifier.reloading());
  const auto after = monotonic_microseconds();
  const auto reloading = systemd.receive();
  CHECK(notify_field(reloading, "RELOADING") == "1");
  const auto stamp = std::stoull(notify_field(reloading, "MONOTONIC_USEC"));
  CHECK(stamp >= before);
  CHECK(stamp <= after);
}

TEST_CASE("without an address the notifier does nothing and succeeds", "[serve]") {
  const serve::service_notifier notifier;
  CHECK_FALSE(notifier.enabled());
  CHECK_FALSE(notifier.ready("serving"));
  CHECK_FALSE(notifier.reloading());
  CHECK_FALSE(notifier.stopping());
}

TEST_CASE("an address the notifier cannot reach is an error it returns", "[serve]") {
  temp_folder folder;
  CHECK(serve::service_notifier("vsock:2:1234").send("READY=1") ==
        std::errc::address_family_not_supported);
  CHECK(serve::service_notifier("/" + std::string(200, 'x')).send("READY=1") ==
        std::errc::filename_too_long);
  CHECK(serve::service_notifier((folder / "nobody").string()).send("READY=1") ==
        std::errc::no_such_file_or_directory);
}

TEST_CASE("the notifier of the environment takes NOTIFY_SOCKET and unsets it", "[serve]") {
  REQUIRE(::setenv("NOTIFY_SOCKET", "@kawipiko-test", 1) == 0);
  const auto notifier = serve::service_notifier::from_environment();
  CHECK(notifier.address() == "@kawipiko-test");
  CHECK(std::getenv("NOTIFY_SOCKET") == nullptr);
  CHECK_FALSE(serve::service_notifier::from_environment().enabled());
}

// ---- socket activation --------------------------------------------------------------------------

TEST_CASE("passed sockets are ignored without LISTEN_PID or with another process's", "[serve]") {
  const pid_t self = ::getpid();
  CHECK(serve::passed_listeners({nullptr, "2", "http:https"}, self, first).empty());
  const auto other = std::to_string(self + 1);
  // Whatever the rest says: the variables were meant for the process that passed them down.
  CHECK(serve::passed_listeners({other.c_str(), "2", "http:https"}, self, first).empty());
  CHECK(serve::passed_listeners({other.c_str(), "nonsense", nullptr}, self, first).empty());
  CHECK_THROWS_WITH(serve::passed_listeners({"12ab", "1", nullptr}, self, first),
                    "socket activation: LISTEN_PID '12ab' is not a process ID");
}

TEST_CASE("passed sockets named http and https are the plain and the TLS listeners", "[serve]") {
  placed sockets{3};
  place(listening_tcp(), first);
  place(listening_tcp(), first + 1);
  place(listening_tcp(), first + 2);
  const auto pid = pid_text();
  const auto listeners =
      serve::passed_listeners({pid.c_str(), "3", "https:http:http"}, ::getpid(), first);
  REQUIRE(listeners.size() == 3);
  CHECK(listeners[0].fd == first);
  CHECK(listeners[0].tls);
  CHECK(listeners[1].fd == first + 1);
  CHECK_FALSE(listeners[1].tls);
  CHECK(listeners[2].fd == first + 2);
  CHECK_FALSE(listeners[2].tls);
  CHECK(serve::passed_listeners({pid.c_str(), "0", nullptr}, ::getpid(), first).empty());
}

TEST_CASE("a single passed socket without a name of its own is the plain listener", "[serve]") {
  placed sockets{1};
  place(listening_tcp(), first);
  const auto pid = pid_text();
  for (const char* names : {static_cast<const char*>(nullptr), "unknown", "kawipiko.socket"}) {
    INFO((names != nullptr ? names : "(unset)"));
    const auto listeners = serve::passed_listeners({pid.c_str(), "1", names}, ::getpid(), first);
    REQUIRE(listeners.size() == 1);
    CHECK(listeners[0].fd == first);
    CHECK_FALSE(listeners[0].tls);
  }
}

TEST_CASE("passed sockets with a wrong count or unknown names are refused, naming them",
          "[serve]") {
  placed sockets{2};
  place(listening_tcp(), first);
  place(listening_tcp(), first + 1);
  const auto pid = pid_text();
  const auto refused = [&](const char* count, const char* names, const std::string& message) {
    INFO(message);
    CHECK_THROWS_WITH(serve::passed_listeners({pid.c_str(), count, names}, ::getpid(), first),
                      message);
  };
  refused("two", nullptr, "socket activation: LISTEN_FDS 'two' is not a number of descriptors");
  refused(nullptr, nullptr, "socket activation: LISTEN_FDS '' is not a number of descriptors");
  refused("2", "http",
          "socket activation: LISTEN_FDNAMES 'http' names 1 sockets, LISTEN_FDS passes 2");
  const std::string unknown_name =
      " has a name the server does not know: name the sockets 'http' (plain) and 'https' (TLS), "
      "FileDescriptorName= in a socket unit";
  refused("2", "http:admin", "socket activation: descriptor 201 ('admin')" + unknown_name);
  // Two unnamed sockets could be either.
  refused("2", nullptr, "socket activation: descriptor 200 ('unknown')" + unknown_name);
}

TEST_CASE("a passed descriptor that is not a listening TCP socket is refused, naming it",
          "[serve]") {
  placed sockets{1};
  const auto pid = pid_text();
  const auto refused = [&](const std::string& why) {
    INFO(why);
    CHECK_THROWS_WITH(
        serve::passed_listeners({pid.c_str(), "1", "http"}, ::getpid(), first),
        "socket activation: descriptor 200 ('http') " + why + "; expected a listening TCP socket");
  };
  ::close(first);
  refused("is not open");
  int ends[2];
  REQUIRE(::pipe(ends) == 0);
  ::close(ends[1]);
  place(ends[0], first);
  refused("is not a socket");
  place(::socket(AF_INET, SOCK_DGRAM, 0), first);
  refused("is not a TCP socket");
  place(::socket(AF_UNIX, SOCK_STREAM, 0), first);
  refused("is not a TCP socket");
  place(::socket(AF_INET6, SOCK_STREAM, 0), first);
  refused("is a TCP socket that does not listen");
}

TEST_CASE("adopted passed sockets are non-blocking and close-on-exec, the variables unset",
          "[serve]") {
  placed sockets{1};
  place(listening_tcp(), first);
  REQUIRE((::fcntl(first, F_GETFL) & O_NONBLOCK) == 0);
  REQUIRE((::fcntl(first, F_GETFD) & FD_CLOEXEC) == 0);
  for (const char* name : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) {
    REQUIRE(::setenv(name, "1", 1) == 0);
  }
  serve::adopt_passed_listeners({{first, false}});
  CHECK((::fcntl(first, F_GETFL) & O_NONBLOCK) != 0);
  CHECK((::fcntl(first, F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(std::getenv("LISTEN_PID") == nullptr);
  CHECK(std::getenv("LISTEN_FDS") == nullptr);
  CHECK(std::getenv("LISTEN_FDNAMES") == nullptr);
}

TEST_CASE("the listeners of the environment are those LISTEN_PID gives this process", "[serve]") {
  ::unsetenv("LISTEN_PID");
  CHECK(serve::passed_listeners_from_environment().empty());
  const auto other = std::to_string(::getpid() + 1);
  REQUIRE(::setenv("LISTEN_PID", other.c_str(), 1) == 0);
  REQUIRE(::setenv("LISTEN_FDS", "1", 1) == 0);
  CHECK(serve::passed_listeners_from_environment().empty());
  REQUIRE(::setenv("LISTEN_PID", pid_text().c_str(), 1) == 0);
  REQUIRE(::setenv("LISTEN_FDS", "x", 1) == 0);
  CHECK_THROWS_WITH(serve::passed_listeners_from_environment(),
                    "socket activation: LISTEN_FDS 'x' is not a number of descriptors");
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
}
