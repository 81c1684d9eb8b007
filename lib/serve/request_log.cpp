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

std::int64_t micros_since(log_clock::time_point started) noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(log_clock::now() - started).count();
}

void debug_line(wire_protocol protocol, const request* req, const response_info& info,
                log_clock::time_point started) {
  const auto target = req != nullptr ? req->target : std::string_view("-");
  const auto method = req != nullptr ? method_name(req->verb) : std::string_view("-");
  const std::string_view name = protocol == wire_protocol::http2 ? "HTTP/2" : "HTTP/1.1";
  std::fprintf(stderr, "[debug] %.*s %.*s %u %s %llu %lldus %.*s\n", printed_size(method, 16),
               method.data(), printed_size(target, 1024), target.data(), info.status,
               archive::token(info.coding).data(), static_cast<unsigned long long>(info.body_bytes),
               static_cast<long long>(micros_since(started)), printed_size(name, 16), name.data());
}

// The client's address as text, formatted only when it is not the last one's.
std::string_view client_of(answer_records& records) noexcept {
  if (records.peer == nullptr) return {};
  if (records.last_client.empty() || !(*records.peer == records.last_peer)) {
    records.last_peer = *records.peer;
    records.last_client = records.peer->text(records.last_text);
  }
  return records.last_client;
}

void access_line(answer_records& records, wire_protocol protocol, const request* req,
                 const response_info& info, log_clock::time_point started) {
  access_entry e;
  e.client = client_of(records);
  if (req != nullptr) {
    e.method = req->method_token;
    e.target = req->target;
    e.host = req->host;
    e.referer = req->referer;
    e.user_agent = req->user_agent;
  }
  e.protocol = protocol_name(protocol);
  e.status = info.status;
  e.bytes = info.body_bytes;
  e.encoding = archive::token(info.coding);
  e.generation = info.generation;
  if (records.timed) e.duration_us = micros_since(started);
  records.access->add(e);
}

}  // namespace

void log_answer(protocol_context& ctx, wire_protocol protocol, const request* req,
                const response_info& info, log_clock::time_point started) {
  if (info.corrupt) {
    const auto target = req != nullptr ? req->target : std::string_view("-");
    std::fprintf(stderr, "kawipiko serve: error: corrupt archive record for '%.*s'\n",
                 printed_size(target, 200), target.data());
  }
  if (ctx.opts.debug) debug_line(protocol, req, info, started);
  auto* records = ctx.records;
  if (records == nullptr) return;
  if (records->counters != nullptr) records->counters->answered(protocol, req, info);
  if (records->access != nullptr) access_line(*records, protocol, req, info, started);
}

}  // namespace kawipiko::serve
