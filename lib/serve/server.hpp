#pragma once
// `kawipiko serve` as a function: opens the archive, binds, runs `threads` workers in each of
// `processes` processes (a small supervisor above them when there are several), and returns the
// exit code once SIGINT or SIGTERM has drained them.

#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "serve/options.hpp"

namespace kawipiko::serve {

// "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80". Throws std::invalid_argument naming the value.
[[nodiscard]] boost::asio::ip::tcp::endpoint parse_bind(const std::string& text);

// Serves until SIGINT/SIGTERM. Throws std::runtime_error / std::system_error (one line, naming
// the file or address) for anything that fails before serving starts.
int run(const options& opts);

}  // namespace kawipiko::serve
