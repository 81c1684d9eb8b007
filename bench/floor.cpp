// The floor for bench/run-http.sh: the least work an HTTP/1.1 keep-alive server can do on this
// kernel. One thread, one epoll loop, level-triggered; it answers every request on a connection
// with one constant response, parsing nothing beyond counting "\r\n\r\n" terminators, and writes
// all the answers a read produced with one write(2). Not a server: no timeouts, no limits, no
// HEAD, no bodies. Its CPU time per request is what kawipiko is compared against.
//
// Usage: floor <port>   (listens on 127.0.0.1 only; stops on SIGTERM/SIGINT)

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

// About the size of kawipiko's answer for the same 13-byte index.html (a constant Date, too),
// so that both move similar bytes through the socket.
constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\n"
    "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: strict-origin-when-cross-origin\r\n"
    "X-Frame-Options: SAMEORIGIN\r\n"
    "ETag: \"00000000000000000000000000000000\"\r\n"
    "Cache-Control: public, immutable, max-age=3600\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Length: 13\r\n"
    "Accept-Ranges: bytes\r\n"
    "\r\n"
    "Hello, world\n";

constexpr std::string_view terminator = "\r\n\r\n";

struct connection {
  std::string tail;     // the last bytes of the previous read: a terminator may straddle reads
  std::string pending;  // answers the socket did not take yet
};

volatile sig_atomic_t stopping = 0;

void on_signal(int) {
  stopping = 1;
}

[[noreturn]] void fail(const char* operation) {
  std::fprintf(stderr, "floor: error: %s: %s\n", operation, std::strerror(errno));
  std::exit(1);
}

// Counts the terminators in tail + data, then keeps the last three bytes as the next tail.
std::size_t count_requests(connection& c, const char* data, std::size_t size) {
  c.tail.append(data, size);
  std::size_t count = 0;
  for (std::size_t at = c.tail.find(terminator); at != std::string::npos;
       at = c.tail.find(terminator, at + terminator.size())) {
    ++count;
  }
  const std::size_t keep = terminator.size() - 1;
  if (c.tail.size() > keep) c.tail.erase(0, c.tail.size() - keep);
  return count;
}

// Writes what is pending; false when the connection is done for.
bool flush(int fd, connection& c) {
  while (!c.pending.empty()) {
    const ssize_t written = ::write(fd, c.pending.data(), c.pending.size());
    if (written < 0) return errno == EAGAIN || errno == EINTR;
    c.pending.erase(0, static_cast<std::size_t>(written));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: floor <port>\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "floor: error: bad port '%s'\n", argv[1]);
    return 2;
  }
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) fail("socket");
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) fail("bind");
  if (::listen(listener, SOMAXCONN) < 0) fail("listen");

  const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) fail("epoll_create1");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener;
  if (::epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event) < 0) fail("epoll_ctl");

  std::vector<connection> connections;  // indexed by file descriptor
  std::vector<epoll_event> events(1024);
  std::vector<char> buffer(64 * 1024);
  const auto close_connection = [&](int fd) {
    ::close(fd);
    connections[static_cast<std::size_t>(fd)] = connection{};
  };

  while (!stopping) {
    const int ready = ::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait");
    }
    for (int i = 0; i < ready; ++i) {
      const int fd = events[static_cast<std::size_t>(i)].data.fd;
      if (fd == listener) {
        for (;;) {
          const int client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (client < 0) break;  // EAGAIN, or out of descriptors: try again on the next event
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (connections.size() <= static_cast<std::size_t>(client)) {
            connections.resize(static_cast<std::size_t>(client) + 1);
          }
          epoll_event client_event{};
          client_event.events = EPOLLIN | EPOLLRDHUP;
          client_event.data.fd = client;
          if (::epoll_ctl(epoll, EPOLL_CTL_ADD, client, &client_event) < 0) ::close(client);
        }
        continue;
      }
      connection& c = connections[static_cast<std::size_t>(fd)];
      const std::uint32_t flags = events[static_cast<std::size_t>(i)].events;
      if (flags & EPOLLOUT) {
        if (!flush(fd, c)) {
          close_connection(fd);
          continue;
        }
      }
      if (flags & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        const ssize_t got = ::read(fd, buffer.data(), buffer.size());
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
          close_connection(fd);
          continue;
        }
        if (got < 0) continue;
        const std::size_t requests =
            count_requests(c, buffer.data(), static_cast<std::size_t>(got));
        for (std::size_t r = 0; r < requests; ++r) c.pending.append(response);
        if (!flush(fd, c)) {
          close_connection(fd);
          continue;
        }
      }
      // Wait for writability only while something is pending (rare with answers this small).
      epoll_event update{};
      update.events = EPOLLIN | EPOLLRDHUP | (c.pending.empty() ? 0u : std::uint32_t{EPOLLOUT});
      update.data.fd = fd;
      if ((flags & EPOLLOUT) || !c.pending.empty()) ::epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &update);
    }
  }
  return 0;
}
