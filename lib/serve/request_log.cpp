#include "serve/request_log.hpp"

#include <algorithm>
#include <cstdio>

namespace kawipiko::serve {

namespace {

std::string_view method_name(method m) noexcept {
  switch (m) {
    case method::get:
      return "GET";
    case method::head:
      return "HEAD";
    case method::other:
      return "OTHER";
    case method::unknown:
      return "UNKNOWN";
  }
  return "?";
}

// A request's text, cut to what a log line should carry.
int printed_size(std::string_view text, std::size_t most) noexcept {
  return static_cast<int>(std::min(text.size(), most));
}

}  // namespace

void log_answer(std::string_view protocol, const request* req, const response_info& info,
                log_clock::time_point started, bool debug) {
  const auto target = req != nullptr ? req->target : std::string_view("-");
  if (info.corrupt) {
    std::fprintf(stderr, "kawipiko serve: error: corrupt archive record for '%.*s'\n",
                 printed_size(target, 200), target.data());
  }
  if (!debug) return;
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(log_clock::now() - started).count();
  const auto method = req != nullptr ? method_name(req->verb) : std::string_view("-");
  std::fprintf(stderr, "[debug] %.*s %.*s %u %s %llu %lldus %.*s\n", printed_size(method, 16),
               method.data(), printed_size(target, 1024), target.data(), info.status,
               archive::token(info.coding).data(), static_cast<unsigned long long>(info.body_bytes),
               static_cast<long long>(micros), printed_size(protocol, 16), protocol.data());
}

}  // namespace kawipiko::serve
