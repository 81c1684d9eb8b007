#include "serve/metrics_endpoint.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <vector>

#include "base/error.hpp"

namespace kawipiko::serve {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr std::size_t max_request_bytes = 8 * 1024;
constexpr auto client_time = std::chrono::seconds(5);

std::string response(std::string_view status, std::string_view type, std::string_view body,
                     std::string_view extra = {}) {
  std::string text = "HTTP/1.1 ";
  text += status;
  text += "\r\nContent-Type: ";
  text += type;
  text += "\r\nContent-Length: ";
  text += std::to_string(body.size());
  text += "\r\n";
  text += extra;
  text += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  text += body;
  return text;
}

std::string plain(std::string_view status, std::string_view body, std::string_view extra = {}) {
  return response(status, "text/plain; charset=utf-8", body, extra);
}

std::string where(const boost::asio::ip::tcp::endpoint& endpoint) {
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

}  // namespace

std::string answer_operations(std::string_view head, serving_state state,
                              const metrics_writer& metrics) {
  const auto line = head.substr(0, head.find('\n'));
  const auto method_end = line.find(' ');
  const auto target_end = method_end == std::string_view::npos ? std::string_view::npos
                                                               : line.find(' ', method_end + 1);
  if (target_end == std::string_view::npos || !line.substr(target_end + 1).starts_with("HTTP/1.")) {
    return plain("400 Bad Request", "bad request\n");
  }
  const auto target = line.substr(method_end + 1, target_end - method_end - 1);
  const auto path = target.substr(0, target.find('?'));
  if (path != "/metrics" && path != "/healthz" && path != "/readyz") {
    return plain("404 Not Found", "not found\n");
  }
  if (line.substr(0, method_end) != "GET") {
    return plain("405 Method Not Allowed", "method not allowed\n", "Allow: GET\r\n");
  }
  if (path == "/metrics") {
    std::string body;
    metrics(body);
    return response("200 OK", "text/plain; version=0.0.4; charset=utf-8", body);
  }
  if (path == "/healthz") {
    return state == serving_state::starting ? plain("503 Service Unavailable", "starting\n")
                                            : plain("200 OK", "ok\n");
  }
  switch (state) {
    case serving_state::ready:
      return plain("200 OK", "ready\n");
    case serving_state::starting:
      return plain("503 Service Unavailable", "starting\n");
    case serving_state::draining:
      break;
  }
  return plain("503 Service Unavailable", "draining\n");
}

// One connection: its request as it comes, then its answer as it goes.
struct metrics_endpoint::client {
  int fd = -1;
  std::string input;
  std::string output;
  std::size_t sent = 0;
  bool answering = false;
  clock_type::time_point deadline;
};

metrics_endpoint::metrics_endpoint(const boost::asio::ip::tcp::endpoint& where_to,
                                   metrics_writer metrics)
    : metrics_(std::move(metrics)) {
  for (auto& fd : client_fds_) fd.store(-1, std::memory_order_relaxed);
  const auto name = where(where_to);
  listener_ = ::socket(where_to.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener_ < 0) base::throw_errno(errno, "cannot open a socket for", name);
  const int on = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (where_to.address().is_v6())
    ::setsockopt(listener_, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  if (::bind(listener_, where_to.data(), static_cast<socklen_t>(where_to.size())) != 0 ||
      ::listen(listener_, 64) != 0) {
    const int error = errno;
    ::close(listener_);
    base::throw_errno(error, "cannot listen for metrics on", name);
  }
  boost::asio::ip::tcp::endpoint bound;
  socklen_t length = static_cast<socklen_t>(bound.capacity());
  ::getsockname(listener_, bound.data(), &length);
  bound.resize(length);
  port_ = bound.port();
  stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    const int error = errno;
    ::close(listener_);
    base::throw_errno(error, "cannot make an eventfd for", name);
  }
}

metrics_endpoint::~metrics_endpoint() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  close_inherited();
}

void metrics_endpoint::start() {
  thread_ = std::thread([this] { run(); });
}

void metrics_endpoint::close_inherited() noexcept {
  for (auto& fd : client_fds_) {
    const int open = fd.exchange(-1, std::memory_order_relaxed);
    if (open >= 0) ::close(open);
  }
  if (listener_ >= 0) ::close(listener_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  listener_ = stop_fd_ = -1;
}

void metrics_endpoint::accept_clients() {
  for (;;) {
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection that failed already
    const auto free_slot = std::find_if(client_fds_.begin(), client_fds_.end(), [](const auto& f) {
      return f.load(std::memory_order_relaxed) < 0;
    });
    if (free_slot == client_fds_.end()) {
      ::close(fd);  // full: the client retries
      continue;
    }
    free_slot->store(fd, std::memory_order_relaxed);
  }
}

// Reads what the client sent; once its header is whole, the answer is made and sent. True when
// the client is done with (answered, gone, or sending too much).
bool metrics_endpoint::read_some(client& c) const {
  char chunk[4096];
  const ssize_t got = ::recv(c.fd, chunk, sizeof chunk, 0);
  if (got < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  if (got == 0) return true;
  c.input.append(chunk, static_cast<std::size_t>(got));
  auto end = c.input.find("\r\n\r\n");
  if (end == std::string::npos) end = c.input.find("\n\n");
  if (end != std::string::npos) {
    c.output = answer_operations(c.input, state_.load(std::memory_order_acquire), metrics_);
  } else if (c.input.size() > max_request_bytes) {
    c.output = plain("431 Request Header Fields Too Large", "request header too large\n");
  } else {
    return false;
  }
  c.answering = true;
  return write_some(c);
}

// Sends what the socket takes of the answer. True when it is all out, or the client is gone.
bool metrics_endpoint::write_some(client& c) {
  const auto rest = std::string_view(c.output).substr(c.sent);
  const ssize_t sent = ::send(c.fd, rest.data(), rest.size(), MSG_NOSIGNAL);
  if (sent < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  c.sent += static_cast<std::size_t>(sent);
  return c.sent == c.output.size();
}

// The loop: accept, read each client's request until its empty line, answer, close. A client
// that has not finished within client_time is closed.
void metrics_endpoint::run() {
  std::array<client, max_clients> clients;
  std::vector<pollfd> waits;
  std::vector<std::size_t> waiting;  // the client of each wait after the first two
  for (;;) {
    waits.assign({{stop_fd_, POLLIN, 0}, {listener_, POLLIN, 0}});
    waiting.clear();
    const auto now = clock_type::now();
    for (std::size_t i = 0; i < max_clients; ++i) {
      auto& c = clients[i];
      const int fd = client_fds_[i].load(std::memory_order_relaxed);
      if (fd != c.fd) c = client{fd, {}, {}, 0, false, now + client_time};
      if (fd < 0) continue;
      if (now >= c.deadline) {
        finish(clients, i);
        continue;
      }
      waits.push_back({fd, static_cast<short>(c.answering ? POLLOUT : POLLIN), 0});
      waiting.push_back(i);
    }
    if (::poll(waits.data(), waits.size(), 1000) < 0 && errno != EINTR) return;
    if ((waits[0].revents & POLLIN) != 0) return;
    for (std::size_t w = 0; w < waiting.size(); ++w) {
      if (waits[w + 2].revents == 0) continue;
      auto& c = clients[waiting[w]];
      if (c.answering ? write_some(c) : read_some(c)) finish(clients, waiting[w]);
    }
    if ((waits[1].revents & POLLIN) != 0) accept_clients();
  }
}

void metrics_endpoint::finish(std::array<client, max_clients>& clients, std::size_t i) noexcept {
  client_fds_[i].store(-1, std::memory_order_relaxed);
  ::close(clients[i].fd);
  clients[i] = client{};
}

}  // namespace kawipiko::serve
