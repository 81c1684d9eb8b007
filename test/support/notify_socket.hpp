#pragma once
// Test support: the service manager's end of the notify protocol (sd_notify(3)), a datagram
// socket bound at a path or an abstract name that a server under test is told to notify, and a
// reader of the "NAME=value" lines of what it receives.

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

namespace kawipiko::test {

class notify_socket {
 public:
  // Binds a datagram socket at `address`: a path, or an abstract name given with a leading '@'
  // (as NOTIFY_SOCKET spells it). Throws std::runtime_error if it cannot.
  explicit notify_socket(const std::string& address) : address_(address) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_un where{};
    where.sun_family = AF_UNIX;
    if (address.size() >= sizeof where.sun_path) throw std::runtime_error("address too long");
    std::memcpy(where.sun_path, address.data(), address.size());
    const bool abstract = address.front() == '@';
    if (abstract) where.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() +
                                               (abstract ? 0 : 1));
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&where), length) != 0) {
      const int error = errno;
      ::close(fd_);
      throw std::runtime_error(std::string("bind failed: ") + std::strerror(error));
    }
  }
  ~notify_socket() { ::close(fd_); }
  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;

  [[nodiscard]] const std::string& address() const { return address_; }

  // The next datagram, waiting at most `seconds`. Throws std::runtime_error if none comes.
  [[nodiscard]] std::string receive(int seconds = 10) const {
    timeval bound{seconds, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
    if (auto datagram = take(0)) return *datagram;
    throw std::runtime_error(std::string("no notification came: ") + std::strerror(errno));
  }

  // A datagram already waiting, without waiting; nullopt if there is none.
  [[nodiscard]] std::optional<std::string> waiting() const { return take(MSG_DONTWAIT); }

 private:
  std::optional<std::string> take(int flags) const {
    char datagram[4096];
    ssize_t got;
    while ((got = ::recv(fd_, datagram, sizeof datagram, flags)) < 0 && errno == EINTR) {
    }
    if (got < 0) return std::nullopt;
    return std::string(datagram, static_cast<std::size_t>(got));
  }

  std::string address_;
  int fd_ = -1;
};

// An abstract socket name nobody else uses, "@kawipiko-test-<pid>-<random>".
inline std::string abstract_notify_name() {
  std::random_device seed;
  return "@kawipiko-test-" + std::to_string(::getpid()) + "-" + std::to_string(seed());
}

// The value of `name` in a datagram of "NAME=value" lines; "(none)" if it has no such line.
inline std::string notify_field(const std::string& datagram, const std::string& name) {
  const std::string line_start = name + "=";
  std::size_t at = 0;
  while (at < datagram.size()) {
    const auto end = datagram.find('\n', at);
    const auto line = datagram.substr(at, end == std::string::npos ? std::string::npos : end - at);
    if (line.rfind(line_start, 0) == 0) return line.substr(line_start.size());
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return "(none)";
}

}  // namespace kawipiko::test
