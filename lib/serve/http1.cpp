#include "serve/http1.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "serve/parser.hpp"

namespace kawipiko::serve {

namespace {

using clock_type = std::chrono::steady_clock;

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

// --debug: one line per answered request on stderr.
void log_request(const request& req, parse_status parsed, const response_info& info,
                 clock_type::time_point started) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started).count();
  const bool complete = parsed == parse_status::complete;
  const auto target = complete ? req.target : std::string_view("-");
  std::fprintf(stderr, "[debug] %s %.*s %u %s %llu %lldus\n",
               complete ? method_name(req.verb).data() : "-",
               static_cast<int>(std::min<std::size_t>(target.size(), 1024)), target.data(),
               info.status, archive::token(info.coding).data(),
               static_cast<unsigned long long>(info.body_bytes), static_cast<long long>(micros));
}

}  // namespace

http1_protocol::next http1_protocol::on_input(std::string_view input, bool peer_done,
                                              std::string_view date, http1_context& ctx,
                                              output& out) {
  out.clear();
  std::size_t offset = 0;
  while (offset < input.size() && !closing_ && out.has_room_for_response()) {
    const std::size_t used = answer_one(input.substr(offset), date, ctx, out);
    if (used == 0) break;
    offset += used;
  }
  const auto rest = input.substr(offset);
  if (closing_ || rest.empty()) {
    kept_.clear();
  } else if (rest.data() != kept_.data()) {
    kept_.assign(rest);
  }
  if (peer_done && !closing_) {
    closing_ = true;  // what is left can never complete
    kept_.clear();
  }
  if (closing_) return next::close;
  return !kept_.empty() && !out.has_room_for_response() ? next::answer : next::read;
}

std::size_t http1_protocol::answer_one(std::string_view input, std::string_view date,
                                       http1_context& ctx, output& out) {
  const auto& limits = ctx.opts.limits;
  const bool debug = ctx.opts.debug;
  const auto started = debug ? clock_type::now() : clock_type::time_point{};
  request req;
  const auto parsed = parse_request(input, limits.header_bytes, req);
  if (parsed.status == parse_status::need_more) return 0;
  response_info info;
  std::size_t used;
  if (parsed.status == parse_status::complete) {
    ++requests_;
    const bool last = requests_ >= limits.requests_per_connection || ctx.draining;
    info = ctx.answers.respond(req, last ? connection_end::close : connection_end::as_requested,
                               date, out);
    used = parsed.consumed;
  } else {
    // A refusal ends the connection: what follows the bad bytes cannot be trusted.
    info = ctx.answers.respond_error(refusal_status(parsed.status), body_mode::with_body,
                                     connection_end::close, date, out);
    used = input.size();
  }
  if (info.close) closing_ = true;
  if (info.corrupt) {
    std::fprintf(stderr, "kawipiko serve: error: corrupt archive record for '%.*s'\n",
                 static_cast<int>(std::min<std::size_t>(req.target.size(), 200)),
                 req.target.data());
  }
  if (debug) log_request(req, parsed.status, info, started);
  return used;
}

}  // namespace kawipiko::serve
