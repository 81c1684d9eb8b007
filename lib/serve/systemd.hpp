#pragma once
// What the server and a service manager (systemd) say to each other, without libsystemd: the
// notify protocol (sd_notify(3): one datagram of "NAME=value" lines to the socket that
// $NOTIFY_SOCKET names, a path or an abstract "@name") and socket activation (sd_listen_fds(3):
// listening sockets passed from descriptor 3 on, described by LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES). README's "Running under systemd" says how the units use them.

#include <sys/types.h>

#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "serve/options.hpp"

namespace kawipiko::serve {

// Tells the service manager what state the server is in. One process speaks for the server: the
// one systemd started (with --processes, the supervisor, once every worker process has done
// what the message says), so that READY=1 means "all of it". Not thread-safe; every call is a
// cold path (a socket and a datagram each).
class service_notifier {
 public:
  // One that says nothing: every call returns success at once.
  service_notifier() = default;
  // Sends to `address`: a socket path ("/run/systemd/notify") or an abstract name ("@name").
  explicit service_notifier(std::string address) : address_(std::move(address)) {}

  // The one $NOTIFY_SOCKET names (none without it), which it unsets: a process the server
  // starts does not talk to the service manager on the server's behalf.
  [[nodiscard]] static service_notifier from_environment();

  [[nodiscard]] bool enabled() const noexcept { return !address_.empty(); }
  [[nodiscard]] const std::string& address() const noexcept { return address_; }

  // Sends `state`, "NAME=value" lines, as one datagram. Returns the error of the socket or of
  // sendto (EAFNOSUPPORT for an address that is neither a path nor "@name", ENAMETOOLONG for one
  // longer than a socket address holds); none when there is no address.
  std::error_code send(std::string_view state) const;

  // READY=1 with MAINPID (this process) and STATUS=`status` (one line: a newline becomes a
  // space): serving, at start and after a reload.
  std::error_code ready(std::string_view status) const;
  // RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC now), which systemd wants with it: a
  // SIGHUP was taken; ready() follows once its reloads are done.
  std::error_code reloading() const;
  // STOPPING=1: SIGINT or SIGTERM was taken; the drain follows.
  std::error_code stopping() const;

 private:
  std::string address_;
};

// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES as the environment has them; nullptr: unset.
struct listen_variables {
  const char* pid = nullptr;
  const char* fds = nullptr;
  const char* names = nullptr;
};

[[nodiscard]] listen_variables listen_variables_from_environment();

// The first descriptor a service manager passes.
inline constexpr int listen_fds_start = 3;

// The listeners that `variables` pass to the process `self`, descriptors `first` to
// `first` + LISTEN_FDS - 1, in order. By name: "http" is a plain listener, "https" a TLS one (each
// may come several times, say one for IPv4 and one for IPv6); a single socket with no name of its
// own (no LISTEN_FDNAMES, "unknown", or systemd's default, its unit's name "<unit>.socket") is
// the plain listener. None when LISTEN_PID is unset or names another process: the variables are
// that process's, inherited. Throws std::runtime_error, one line naming the variable or the
// descriptor, for a count or a PID that is not a number, names that are not one per descriptor,
// another name, or a descriptor that is not a listening TCP socket (SO_ACCEPTCONN, SO_TYPE,
// SO_PROTOCOL). Changes nothing: adopt_passed_listeners() takes them.
[[nodiscard]] std::vector<passed_listener> passed_listeners(const listen_variables& variables,
                                                            pid_t self,
                                                            int first = listen_fds_start);

// passed_listeners() of this process's environment.
[[nodiscard]] std::vector<passed_listener> passed_listeners_from_environment();

// Takes the passed listeners for good: each made non-blocking and close-on-exec, and the
// LISTEN_* variables unset, so that nothing the server starts takes them for its own. Throws
// std::system_error naming the descriptor.
void adopt_passed_listeners(const std::vector<passed_listener>& listeners);

}  // namespace kawipiko::serve
