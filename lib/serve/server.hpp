#pragma once
// `kawipiko serve` as a function: opens the archives (the default one and one per --host),
// binds (or takes the sockets a service manager passed), runs `threads` workers in each of
// `processes` processes (a small supervisor above them when there are several), reloads an
// archive when a new file takes its name or on SIGHUP, tells the service manager (systemd's
// notify protocol, when $NOTIFY_SOCKET is set) when it is ready, reloading and stopping, and
// returns the exit code once SIGINT or SIGTERM has drained them. With --access-log every process
// appends to the log (SIGUSR1 reopens it); with --metrics-bind the process on top answers
// /metrics, /healthz and /readyz for all of them.

#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <string_view>

#include "serve/options.hpp"

namespace kawipiko::serve {

// "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80". Throws base::invalid_option naming `flag` and the
// value.
[[nodiscard]] boost::asio::ip::tcp::endpoint parse_bind(const std::string& text,
                                                        std::string_view flag = "--bind");

// Refuses options that run() cannot honour: neither --archive nor --host, a --host whose name is
// not a host name (host_table.hpp) or that names no archive, a profile with several
// processes, --threads or --processes outside 1 to 1024, --header-limit outside 256 to 61440, a
// timeout or the shutdown grace not in (0, 86400] seconds, a --bind or --bind-tls parse_bind
// refuses, neither of them, both on one address; and for TLS: --bind-tls without exactly one
// certificate source (--tls-bundle, --tls-public with --tls-private, --tls-self-signed), a TLS
// flag without --bind-tls, --https-redirect without both listeners; a --metrics-bind that
// parse_bind refuses or that is the address of --bind or --bind-tls; and what
// validate_confinement refuses (confinement.hpp: an unknown --user or --group, --group alone,
// --sandbox with a profile, --limit-memory out of range). Under socket activation (`passed` not
// empty) the passed sockets are the listeners: an "https" one stands for --bind-tls in those
// rules, and --bind-tls without one is refused. Throws base::invalid_option naming the flag.
// run() calls it first; a command line may call it earlier (before starting a profiler, say).
void validate(const options& opts);

// Serves until SIGINT/SIGTERM; each serving process gives up what --user and --sandbox say once
// it listens (confinement.hpp). Makes the passed listeners its own and unsets NOTIFY_SOCKET and
// the LISTEN_* variables (systemd.hpp). Throws base::invalid_option for what validate() refuses,
// and std::runtime_error / std::system_error (one line, naming the file or address) for anything
// that fails before serving starts.
int run(const options& opts);

}  // namespace kawipiko::serve
