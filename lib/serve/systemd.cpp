#include "serve/systemd.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace kawipiko::serve {

namespace {

// The socket address of `address` ("/path" or "@abstract"), and its length; 0 (with `error` set)
// when it has neither form or does not fit.
socklen_t notify_address(const std::string& address, sockaddr_un& where, std::error_code& error) {
  where = {};
  where.sun_family = AF_UNIX;
  const bool abstract = address.front() == '@';
  if (!abstract && address.front() != '/') {
    error = std::make_error_code(std::errc::address_family_not_supported);
    return 0;
  }
  // A path needs its terminating NUL; an abstract name is exactly its bytes, the '@' becoming
  // the leading NUL.
  if (address.size() + (abstract ? 0 : 1) > sizeof where.sun_path) {
    error = std::make_error_code(std::errc::filename_too_long);
    return 0;
  }
  std::memcpy(where.sun_path, address.data(), address.size());
  if (abstract) where.sun_path[0] = '\0';
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() +
                                (abstract ? 0 : 1));
}

std::string one_line(std::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  return line;
}

}  // namespace

service_notifier service_notifier::from_environment() {
  const char* address = std::getenv("NOTIFY_SOCKET");
  service_notifier notifier(address != nullptr ? address : "");
  ::unsetenv("NOTIFY_SOCKET");
  return notifier;
}

std::error_code service_notifier::send(std::string_view state) const {
  if (address_.empty()) return {};
  std::error_code error;
  sockaddr_un where;
  const socklen_t length = notify_address(address_, where, error);
  if (length == 0) return error;
  const base::unique_fd socket(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!socket) return {errno, std::system_category()};
  const ssize_t sent = ::sendto(socket.get(), state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&where), length);
  if (sent < 0) return {errno, std::system_category()};
  return {};
}

std::error_code service_notifier::ready(std::string_view status) const {
  return send("READY=1\nMAINPID=" + std::to_string(::getpid()) + "\nSTATUS=" + one_line(status));
}

std::error_code service_notifier::reloading() const {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const auto microseconds = static_cast<unsigned long long>(now.tv_sec) * 1'000'000ULL +
                            static_cast<unsigned long long>(now.tv_nsec) / 1'000ULL;
  return send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(microseconds) +
              "\nSTATUS=reloading the certificates and archives");
}

std::error_code service_notifier::stopping() const {
  return send("STOPPING=1\nSTATUS=stopping: finishing the answers in flight");
}

// ---- socket activation ------------------------------------------------------------------------

listen_variables listen_variables_from_environment() {
  return {std::getenv("LISTEN_PID"), std::getenv("LISTEN_FDS"), std::getenv("LISTEN_FDNAMES")};
}

namespace {

// A decimal number of at most 9 digits (a PID or a descriptor count), or -1.
long decimal(const char* text) {
  if (text == nullptr || *text == '\0' || std::strlen(text) > 9) return -1;
  long value = 0;
  for (const char* c = text; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9') return -1;
    value = value * 10 + (*c - '0');
  }
  return value;
}

[[noreturn]] void refuse(const std::string& what) {
  throw std::runtime_error("socket activation: " + what);
}

// LISTEN_FDNAMES split at ':', one name per descriptor; "unknown" each (sd_listen_fds_with_names'
// word for it) when it is unset.
std::vector<std::string> descriptor_names(const char* names, long count) {
  std::vector<std::string> split;
  if (names == nullptr) return std::vector<std::string>(static_cast<std::size_t>(count), "unknown");
  std::string_view rest(names);
  while (true) {
    const auto colon = rest.find(':');
    split.emplace_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  if (static_cast<long>(split.size()) != count) {
    refuse("LISTEN_FDNAMES '" + std::string(names) + "' names " + std::to_string(split.size()) +
           " sockets, LISTEN_FDS passes " + std::to_string(count));
  }
  return split;
}

// Why `fd` is not a listening TCP socket; empty if it is one.
std::string not_listening_tcp(int fd) {
  int type = 0, domain = 0, protocol = 0, listening = 0;
  const auto option = [fd](int name, int& value) {
    socklen_t size = sizeof value;
    return ::getsockopt(fd, SOL_SOCKET, name, &value, &size) == 0;
  };
  if (!option(SO_TYPE, type)) {
    if (errno == EBADF) return "is not open";
    if (errno == ENOTSOCK) return "is not a socket";
    return std::string("cannot be asked its type (") + std::strerror(errno) + ")";
  }
  if (!option(SO_DOMAIN, domain) || !option(SO_PROTOCOL, protocol) ||
      !option(SO_ACCEPTCONN, listening)) {
    return std::string("cannot be asked its protocol (") + std::strerror(errno) + ")";
  }
  if (type != SOCK_STREAM || (domain != AF_INET && domain != AF_INET6) || protocol != IPPROTO_TCP) {
    return "is not a TCP socket";
  }
  if (listening == 0) return "is a TCP socket that does not listen";
  return {};
}

bool is_unnamed(const std::string& name) {
  return name.empty() || name == "unknown" ||
         (name.size() > 7 && name.ends_with(".socket"));  // systemd's default: the unit's name
}

}  // namespace

std::vector<passed_listener> passed_listeners(const listen_variables& variables, pid_t self,
                                              int first) {
  if (variables.pid == nullptr) return {};
  const long pid = decimal(variables.pid);
  if (pid < 0) refuse("LISTEN_PID '" + std::string(variables.pid) + "' is not a process ID");
  if (pid != self) return {};  // meant for the process that passed them down
  const long count = decimal(variables.fds);
  if (count < 0) {
    refuse("LISTEN_FDS '" + std::string(variables.fds ? variables.fds : "") +
           "' is not a number of descriptors");
  }
  const auto names = descriptor_names(variables.names, count);
  std::vector<passed_listener> listeners;
  for (long i = 0; i < count; ++i) {
    const int fd = first + static_cast<int>(i);
    const auto& name = names[static_cast<std::size_t>(i)];
    const std::string which = "descriptor " + std::to_string(fd) + " (" + base::quote(name) + ")";
    if (name != "http" && name != "https" && !(count == 1 && is_unnamed(name))) {
      refuse(which +
             " has a name the server does not know: name the sockets 'http' (plain) and "
             "'https' (TLS), FileDescriptorName= in a socket unit");
    }
    if (const auto why = not_listening_tcp(fd); !why.empty()) {
      refuse(which + " " + why + "; expected a listening TCP socket");
    }
    listeners.push_back({fd, name == "https"});
  }
  return listeners;
}

std::vector<passed_listener> passed_listeners_from_environment() {
  return passed_listeners(listen_variables_from_environment(), ::getpid());
}

void adopt_passed_listeners(const std::vector<passed_listener>& listeners) {
  for (const auto& l : listeners) {
    const int status = ::fcntl(l.fd, F_GETFL);
    if (status < 0 || ::fcntl(l.fd, F_SETFL, status | O_NONBLOCK) != 0 ||
        ::fcntl(l.fd, F_SETFD, FD_CLOEXEC) != 0) {
      base::throw_errno(errno, "cannot make non-blocking and close-on-exec the passed socket",
                        std::to_string(l.fd));
    }
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
}

}  // namespace kawipiko::serve
