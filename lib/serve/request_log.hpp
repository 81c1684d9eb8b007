#pragma once
// What an answered request leaves besides its answer, the same for every protocol (the one hook
// both call per answer): with --debug a line on stderr, always one for a corrupt archive record
// met while answering, and, when they are on, its access log line (access_log.hpp) and its
// counts for /metrics (metrics.hpp).

#include <array>
#include <chrono>
#include <string_view>

#include "serve/access_log.hpp"
#include "serve/handler.hpp"
#include "serve/metrics.hpp"
#include "serve/protocol.hpp"
#include "serve/transport.hpp"

namespace kawipiko::serve {

using log_clock = std::chrono::steady_clock;

// A worker's records of its answers; null members are off.
struct answer_records {
  access_log_buffer* access = nullptr;  // --access-log
  thread_counters* counters = nullptr;  // --metrics-bind
  bool timed = false;                   // the access log writes each answer's duration (json)
  // The client of the connection being answered: set by the connection before each input.
  const peer_address* peer = nullptr;
  // The last client's address as text (glibc's inet_ntop is a sprintf): consecutive answers
  // mostly go to the same client.
  peer_address last_peer{};
  std::array<char, peer_address::text_room> last_text{};
  std::string_view last_client{};
};

// Whether an answer's start must be taken (log_clock::now()) for log_answer.
[[nodiscard]] inline bool wants_start_time(const protocol_context& ctx) noexcept {
  return ctx.opts.debug || (ctx.records != nullptr && ctx.records->timed);
}

// "[debug] GET /target 200 gzip 1234 17us HTTP/1.1" when --debug; the error line when the
// answer met a corrupt record; then the access log line and the counts. `req` is null for a
// request that could not be parsed (its method and target print as "-"). `started`: when the
// request was taken up (read only when wants_start_time).
void log_answer(protocol_context& ctx, wire_protocol protocol, const request* req,
                const response_info& info, log_clock::time_point started);

}  // namespace kawipiko::serve
