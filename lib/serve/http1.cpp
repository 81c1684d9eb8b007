#include "serve/http1.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "serve/parser.hpp"
#include "serve/request_log.hpp"

namespace kawipiko::serve {

namespace {

// The status lines of every status reason_phrase() names, made once.
class status_lines {
 public:
  status_lines() {
    for (unsigned status = first; status < first + lines_.size(); ++status) {
      const auto reason = reason_phrase(status);
      if (status != 500 && reason == reason_phrase(500)) continue;
      lines_[status - first] =
          "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
    }
  }
  [[nodiscard]] std::string_view operator[](unsigned status) const noexcept {
    const bool named =
        status >= first && status < first + lines_.size() && !lines_[status - first].empty();
    return lines_[(named ? status : 500) - first];
  }

 private:
  static constexpr unsigned first = 100;
  std::array<std::string, 500> lines_;
};

const status_lines lines_by_status;

}  // namespace

std::string_view status_line(unsigned status) noexcept {
  return lines_by_status[status];
}

void http1_writer::start(unsigned status) noexcept {
  out_.text(status_line(status));
  out_.text(date_);
}

void http1_writer::lines(std::string_view block) noexcept {
  out_.view(block);
}

void http1_writer::begin_field(const field_name& name) noexcept {
  out_.text(name.text);
  out_.text(": ");
}

void http1_writer::value_text(std::string_view bytes) noexcept {
  out_.text(bytes);
}
void http1_writer::value_view(std::string_view bytes) noexcept {
  out_.view(bytes);
}
void http1_writer::value_number(std::uint64_t number) noexcept {
  out_.number(number);
}
void http1_writer::end_field() noexcept {
  out_.text("\r\n");
}
void http1_writer::close_connection() noexcept {
  close_ = true;
}

// The Connection line when one is due, then the blank line that ends the header. A refusal that
// keeps the connection says so to an HTTP/1.0 client, like any other answer.
void http1_writer::end_header() noexcept {
  if (close_) {
    out_.text("Connection: close\r\n");
  } else if (says_keep_alive_) {
    out_.text("Connection: keep-alive\r\n");
  }
  out_.text("\r\n");
}

void http1_writer::body_view(std::string_view bytes) noexcept {
  out_.view(bytes);
}
void http1_writer::body_text(std::string_view bytes) noexcept {
  out_.text(bytes);
}

http1_protocol::next http1_protocol::on_input(std::string_view input, bool peer_done,
                                              std::string_view date, protocol_context& ctx,
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
                                       protocol_context& ctx, output& out) {
  const auto& limits = ctx.opts.limits;
  const auto started = wants_start_time(ctx) ? log_clock::now() : log_clock::time_point{};
  request req;
  const auto parsed = parse_request(input, limits.header_bytes, req);
  if (parsed.status == parse_status::need_more) return 0;
  response_info info;
  std::size_t used;
  bool closes;
  if (parsed.status == parse_status::complete && !ctx.opts.http1) {
    // --http1-disable: this listener speaks HTTP/2 only.
    http1_writer w(out, date, connection_end::close, false);
    info = ctx.answers.respond_error(505, body_mode::with_body, w);
    closes = true;
    used = input.size();
  } else if (parsed.status == parse_status::complete) {
    ++requests_;
    const bool last = requests_ >= limits.requests_per_connection || ctx.draining;
    http1_writer w(out, date, last ? connection_end::close : connection_end::as_requested, req);
    info = ctx.answers.respond(req, w, ctx.certificate);
    closes = w.closes();
    used = parsed.consumed;
  } else {
    // A refusal ends the connection: what follows the bad bytes cannot be trusted.
    http1_writer w(out, date, connection_end::close, false);
    info = ctx.answers.respond_error(refusal_status(parsed.status), body_mode::with_body, w);
    closes = true;
    used = input.size();
  }
  if (closes) closing_ = true;
  const bool complete = parsed.status == parse_status::complete;
  const auto protocol =
      complete && req.version == 10 ? wire_protocol::http10 : wire_protocol::http11;
  log_answer(ctx, protocol, complete ? &req : nullptr, info, started);
  return used;
}

}  // namespace kawipiko::serve
