#include "serve/http2.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <list>
#include <new>
#include <string>
#include <vector>

#include "serve/header_lists.hpp"
#include "serve/parser.hpp"
#include "serve/request_log.hpp"
#include "serve/response.hpp"
#include "serve/site.hpp"

namespace kawipiko::serve {

namespace {

// A string the stream keeps: a view of bytes that outlive the response (the archive, constants),
// or a place in the stream's own text, which may still grow while the response is described.
struct kept_text {
  const char* data = nullptr;  // null: at `at` in the stream's text
  std::uint32_t at = 0;
  std::uint32_t size = 0;

  [[nodiscard]] std::string_view in(const std::string& text) const noexcept {
    return data != nullptr ? std::string_view(data, size) : std::string_view(text).substr(at, size);
  }
};

// The handler's constant lines, split like the archive's blocks, once.
struct constant_split {
  header_lists lists;
  std::span<const header_line> security, hsts;

  constant_split() {
    lists.add(constant_lines::security);
    lists.add(constant_lines::hsts);
    security = lists.find(constant_lines::security);
    hsts = lists.find(constant_lines::hsts);
  }
};

const constant_split& constants() {
  static const constant_split split;
  return split;
}

}  // namespace

// One request stream: the fields the handler reads (copied: nghttp2 lends them only for its
// callback), then the response it is answered with, kept until nghttp2 has sent it all.
struct http2_protocol::stream {
  std::int32_t id = 0;
  std::list<stream>::iterator self;
  log_clock::time_point started;

  // The request.
  std::string request_text;
  struct field_text {
    std::uint32_t at = 0, size = 0;
    bool seen = false;
  };
  field_text method, path, authority, host, accept_encoding, if_match, if_none_match, range,
      if_range, referer, user_agent;
  unsigned ranges = 0;
  std::size_t header_bytes = 0;  // as SETTINGS_MAX_HEADER_LIST_SIZE counts them (RFC 9113 §6.5.2)
  bool too_large = false;

  // The response.
  std::string text;  // made-up names, values and body pieces
  struct header {
    kept_text name, value;
  };
  std::vector<header> headers;
  std::vector<kept_text> body;
  std::size_t body_piece = 0;   // the next piece to send,
  std::size_t piece_sent = 0;   // and how much of it is out
  std::uint64_t body_left = 0;  // bytes of body not yet sent
  site_use use;                 // the generation its body and header values come from

  // As new, keeping the room of its buffers.
  void reset() noexcept {
    id = 0;
    started = {};
    request_text.clear();
    method = path = authority = host = accept_encoding = if_match = if_none_match = range =
        if_range = referer = user_agent = field_text{};
    ranges = 0;
    header_bytes = 0;
    too_large = false;
    text.clear();
    headers.clear();
    body.clear();
    body_piece = piece_sent = 0;
    body_left = 0;
    use = {};
  }

  [[nodiscard]] std::string_view view(const field_text& f) const noexcept {
    return std::string_view(request_text).substr(f.at, f.size);
  }
  kept_text copy(std::string_view bytes) {
    const auto at = static_cast<std::uint32_t>(text.size());
    text.append(bytes);
    return {nullptr, at, static_cast<std::uint32_t>(bytes.size())};
  }
};

namespace {

using stream = http2_protocol::stream;

// The response_writer of one stream: the handler's description becomes a header list (names in
// lower case, archive values referenced) and a list of body pieces.
class stream_writer final : public response_writer {
 public:
  stream_writer(stream& s, std::string_view date, const handler& answers) noexcept
      : s_(s), date_(date), answers_(answers) {}

  void start(unsigned status) noexcept override {
    add(":status", s_.copy(decimal(status).view()));
    // The Date line is "Date: <value>\r\n".
    if (date_.size() > 8) add("date", s_.copy(date_.substr(6, date_.size() - 8)));
  }

  // The lines as split when the archive was opened (or, for the handler's constants, once).
  void lines(std::string_view block) noexcept override {
    const auto& fixed = constants();
    std::span<const header_line> found;
    const auto security = constant_lines::security;
    const std::less<const char*> before;
    if (block.data() == security.data() && block.size() == security.size()) {
      found = fixed.security;
    } else if (!before(block.data(), security.data()) &&
               before(block.data(), security.data() + security.size())) {
      found = fixed.lists.find(block);  // some of its lines (an entry has its own of the others)
    } else if (block.data() == constant_lines::hsts.data()) {
      found = fixed.hsts;
    } else {
      found = answers_.answering().lists().find(block);
    }
    for (const auto& line : found) s_.headers.push_back({view(line.name), view(line.value)});
  }

  void begin_field(const field_name& name) noexcept override {
    field_name_ = name.lower;
    value_at_ = s_.text.size();
  }
  void value_text(std::string_view bytes) noexcept override { s_.text.append(bytes); }
  void value_view(std::string_view bytes) noexcept override { s_.text.append(bytes); }
  void value_number(std::uint64_t number) noexcept override {
    s_.text.append(decimal(number).view());
  }
  void end_field() noexcept override {
    const kept_text value{nullptr, static_cast<std::uint32_t>(value_at_),
                          static_cast<std::uint32_t>(s_.text.size() - value_at_)};
    s_.headers.push_back({view(field_name_), value});
  }

  // Streams are independent: one that could not be read closes nothing else.
  void close_connection() noexcept override {}
  void end_header() noexcept override {}

  void body_view(std::string_view bytes) noexcept override {
    if (bytes.empty()) return;
    s_.body.push_back(view(bytes));
    s_.body_left += bytes.size();
  }
  void body_text(std::string_view bytes) noexcept override {
    if (bytes.empty()) return;
    s_.body.push_back(s_.copy(bytes));
    s_.body_left += bytes.size();
  }

 private:
  static kept_text view(std::string_view bytes) noexcept {
    return {bytes.data(), 0, static_cast<std::uint32_t>(bytes.size())};
  }
  void add(std::string_view name, kept_text value) { s_.headers.push_back({view(name), value}); }

  stream& s_;
  std::string_view date_;
  const handler& answers_;  // its answering() site holds the archive's blocks
  std::string_view field_name_;
  std::size_t value_at_ = 0;
};

// The request the handler reads, as views into the stream's copies.
request request_of(const stream& s) noexcept {
  request req;
  req.verb = method_named(s.view(s.method));
  req.method_token = s.view(s.method);
  req.target = s.view(s.path);
  req.host = s.authority.seen ? s.view(s.authority) : s.view(s.host);
  req.has_accept_encoding = s.accept_encoding.seen;
  req.accept_encoding = s.view(s.accept_encoding);
  req.has_if_match = s.if_match.seen;
  req.if_match = s.view(s.if_match);
  req.has_if_none_match = s.if_none_match.seen;
  req.if_none_match = s.view(s.if_none_match);
  req.has_range = s.ranges == 1;  // several Range fields: ignore them all, as over HTTP/1.1
  req.range = s.view(s.range);
  req.has_if_range = s.if_range.seen;
  req.if_range = s.view(s.if_range);
  req.referer = s.view(s.referer);
  req.user_agent = s.view(s.user_agent);
  return req;
}

// Where a request field goes in the stream, or null for the fields the handler does not read
// (and, unless `logged`, for those only the access log reads).
stream::field_text* slot_of(stream& s, std::string_view name, bool logged) noexcept {
  if (name == ":method") return &s.method;
  if (name == ":path") return &s.path;
  if (name == ":authority") return &s.authority;
  if (name == "host") return &s.host;
  if (name == "accept-encoding") return &s.accept_encoding;
  if (name == "if-match") return &s.if_match;
  if (name == "if-none-match") return &s.if_none_match;
  if (name == "range") return &s.range;
  if (name == "if-range") return &s.if_range;
  if (!logged) return nullptr;
  if (name == "referer") return &s.referer;
  if (name == "user-agent") return &s.user_agent;
  return nullptr;
}

http2_protocol& protocol_of(void* user_data) noexcept {
  return *static_cast<http2_protocol*>(user_data);
}

}  // namespace

// nghttp2's callbacks, which reach the protocol through the session's user data.
struct http2_protocol::callbacks {
  // Control frames and header blocks: copied into the batch, as much as it has room for.
  static ssize_t on_send(nghttp2_session*, const std::uint8_t* data, std::size_t length, int,
                         void* user_data) {
    auto& self = protocol_of(user_data);
    auto& out = *self.out_;
    const auto room = std::min(length, out.room_bytes());
    if (room == 0 || !out.has_room(1, room)) {
      self.full_ = true;
      return NGHTTP2_ERR_WOULDBLOCK;
    }
    out.text({reinterpret_cast<const char*>(data), room});
    return static_cast<ssize_t>(room);
  }

  // How much of the body the next DATA frame carries; the bytes go out in on_send_data.
  static ssize_t on_read_body(nghttp2_session*, std::int32_t, std::uint8_t*, std::size_t length,
                              std::uint32_t* flags, nghttp2_data_source* source, void*) {
    const auto& s = *static_cast<const stream*>(source->ptr);
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(length, s.body_left));
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == s.body_left) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  // One DATA frame (no padding: the server asks for none): its header copied, then the body
  // pieces it spans, archive bytes by reference; the stream's own text is copied, since the
  // stream may be gone before the batch is written.
  static int on_send_data(nghttp2_session*, nghttp2_frame*, const std::uint8_t* header,
                          std::size_t length, nghttp2_data_source* source, void* user_data) {
    auto& self = protocol_of(user_data);
    auto& s = *static_cast<stream*>(source->ptr);
    auto& out = *self.out_;
    std::size_t parts = 1, copied = 9;
    for (std::size_t i = s.body_piece, skip = s.piece_sent, left = length; left > 0; ++i) {
      const auto size = std::min<std::size_t>(left, s.body[i].size - skip);
      skip = 0;
      ++parts;
      if (s.body[i].data == nullptr) copied += size;
      left -= size;
    }
    if (!out.has_room(parts, copied)) {
      self.full_ = true;
      return NGHTTP2_ERR_WOULDBLOCK;
    }
    out.text({reinterpret_cast<const char*>(header), 9});
    for (std::size_t left = length; left > 0;) {
      const auto& piece = s.body[s.body_piece];
      const auto bytes = piece.in(s.text).substr(s.piece_sent, left);
      if (piece.data == nullptr) {
        out.text(bytes);
      } else {
        out.view(bytes);
      }
      left -= bytes.size();
      s.piece_sent += bytes.size();
      if (s.piece_sent == piece.size) {
        ++s.body_piece;
        s.piece_sent = 0;
      }
    }
    s.body_left -= length;
    return 0;
  }

  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame,
                              void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto& self = protocol_of(user_data);
    auto& s = self.open_stream();
    s.id = frame->hd.stream_id;
    if (wants_start_time(*self.ctx_)) s.started = log_clock::now();
    nghttp2_session_set_stream_user_data(session, s.id, &s);
    return 0;
  }

  static int on_header(nghttp2_session* session, const nghttp2_frame* frame,
                       const std::uint8_t* name, std::size_t name_size, const std::uint8_t* value,
                       std::size_t value_size, std::uint8_t, void* user_data) {
    auto* s = stream_of(session, frame);
    if (s == nullptr) return 0;
    const auto& ctx = *protocol_of(user_data).ctx_;
    s->header_bytes += name_size + value_size + 32;
    if (s->header_bytes > ctx.opts.limits.header_bytes) {
      s->too_large = true;  // answered with 431 once the block ends; nothing more is kept
    }
    if (s->too_large) return 0;
    const bool logged = ctx.records != nullptr && ctx.records->access != nullptr;
    auto* slot = slot_of(*s, {reinterpret_cast<const char*>(name), name_size}, logged);
    if (slot == nullptr) return 0;
    if (slot == &s->range) ++s->ranges;
    if (slot->seen) return 0;  // the first one, as over HTTP/1.1
    slot->seen = true;
    slot->at = static_cast<std::uint32_t>(s->request_text.size());
    slot->size = static_cast<std::uint32_t>(value_size);
    s->request_text.append(reinterpret_cast<const char*>(value), value_size);
    return 0;
  }

  // A request's header block is complete: it is answered now. Without END_STREAM a body
  // follows, which this server refuses (413, as over HTTP/1.1); nghttp2 then resets the
  // stream with NO_ERROR once the answer is out (RFC 9113 §8.1).
  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    auto* s = stream_of(session, frame);
    if (s == nullptr) return 0;
    protocol_of(user_data).answer(*s, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0);
    return 0;
  }

  static int on_stream_close(nghttp2_session* session, std::int32_t id, std::uint32_t,
                             void* user_data) {
    auto* s = static_cast<stream*>(nghttp2_session_get_stream_user_data(session, id));
    if (s != nullptr) protocol_of(user_data).close_stream(*s);
    return 0;
  }

  // The stream a request's HEADERS frame belongs to; null for other frames.
  static stream* stream_of(nghttp2_session* session, const nghttp2_frame* frame) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return nullptr;
    }
    return static_cast<stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  }
};

namespace {

// The callbacks and options every session shares, made once.
struct session_setup {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_option* option = nullptr;

  session_setup() {
    using cb = http2_protocol::callbacks;
    if (nghttp2_session_callbacks_new(&callbacks) != 0 || nghttp2_option_new(&option) != 0) {
      throw std::bad_alloc();
    }
    nghttp2_session_callbacks_set_send_callback(callbacks, cb::on_send);
    nghttp2_session_callbacks_set_send_data_callback(callbacks, cb::on_send_data);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, cb::on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, cb::on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, cb::on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, cb::on_stream_close);
    // Rapid reset (CVE-2023-44487): streams a client may reset in a burst, then per second,
    // before the session ends with GOAWAY (ENHANCE_YOUR_CALM). A browser cancels a handful on
    // a navigation; an attacker thousands.
    nghttp2_option_set_stream_reset_rate_limit(option, 200, 50);
    // CONTINUATION flood (CVE-2024-28182): CONTINUATION frames per header block.
    nghttp2_option_set_max_continuations(option, 8);
    // SETTINGS and PING floods: answers (ACKs) queued while the client does not read; past it
    // the session ends (ENHANCE_YOUR_CALM).
    nghttp2_option_set_max_outbound_ack(option, 1000);
    nghttp2_option_set_max_settings(option, 32);
  }
  ~session_setup() {
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(callbacks);
  }
};

const session_setup& setup() {
  static const session_setup shared;
  return shared;
}

nghttp2_session* new_session(void* user_data) {
  nghttp2_session* session = nullptr;
  const auto& s = setup();
  if (nghttp2_session_server_new2(&session, s.callbacks, user_data, s.option) != 0) {
    throw std::bad_alloc();
  }
  return session;
}

}  // namespace

http2_protocol::http2_protocol(const options& opts)
    : session_(new_session(this), nghttp2_session_del) {
  // The server's SETTINGS open its side of the connection (RFC 9113 §3.4). The stream window
  // stays at the 65,535 bytes of the default: requests carry no body.
  // No RFC 7540 priority tree (deprecated by RFC 9113 §5.3.1): streams go out in the order they
  // are answered, and nghttp2 keeps no tree of them (nor closed streams for it).
  const std::array<nghttp2_settings_entry, 3> settings = {{
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(opts.limits.header_bytes)},
  }};
  if (nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, settings.data(),
                              settings.size()) != 0) {
    throw std::bad_alloc();
  }
}

http2_protocol::~http2_protocol() {
  // The session first: it may still call back into the streams while it goes.
  session_.reset();
}

bool http2_protocol::idle() const noexcept {
  return streams_.empty();
}

bool http2_protocol::sends_from(const site_hold& hold) const noexcept {
  return std::any_of(streams_.begin(), streams_.end(),
                     [&](const stream& s) { return s.use.of(hold); });
}

// Streams are reused: a closed one keeps its buffers' room for the next, so that a connection's
// steady state allocates nothing for its streams (nghttp2 allocates its own).
http2_protocol::stream& http2_protocol::open_stream() {
  if (spare_.empty()) {
    streams_.emplace_back();
  } else {
    streams_.splice(streams_.end(), spare_, spare_.begin());
  }
  auto& s = streams_.back();
  s.self = std::prev(streams_.end());
  return s;
}

void http2_protocol::close_stream(stream& s) {
  if (spare_.size() >= max_spare_streams) {
    streams_.erase(s.self);
    return;
  }
  s.reset();
  spare_.splice(spare_.end(), streams_, s.self);
}

http2_protocol::next http2_protocol::on_input(std::string_view input, bool peer_done,
                                              std::string_view date, protocol_context& ctx,
                                              output& out) {
  out.clear();
  ctx_ = &ctx;
  out_ = &out;
  date_ = date;
  full_ = false;
  if (!input.empty() && !failed_) {
    const auto taken = nghttp2_session_mem_recv(
        session_.get(), reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    // Negative: a fatal error (a bad preface, a flood, too many CONTINUATION frames); a protocol
    // error is a GOAWAY nghttp2 queued itself, after which it wants neither to read nor to
    // write. After a fatal one the client is still told why, with a GOAWAY of our own, before
    // the connection closes.
    if (taken < 0) {
      failed_ = true;
      const auto code =
          taken == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR;
      (void)nghttp2_session_terminate_session(session_.get(), code);
    }
  }
  if (ctx.draining && !goaway_sent_) queue_goaway();
  send();
  if (full_) return next::answer;
  const bool wants = nghttp2_session_want_read(session_.get()) != 0 ||
                     nghttp2_session_want_write(session_.get()) != 0;
  if (failed_ || peer_done || !wants) return next::close;
  return next::read;
}

void http2_protocol::farewell(protocol_context& ctx, output& out) {
  out.clear();
  ctx_ = &ctx;
  out_ = &out;
  full_ = false;
  if (!goaway_sent_) queue_goaway();
  send();
}

void http2_protocol::queue_goaway() {
  goaway_sent_ = true;
  (void)nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(session_.get()),
                              NGHTTP2_NO_ERROR, nullptr, 0);
}

void http2_protocol::send() {
  if (nghttp2_session_send(session_.get()) != 0) failed_ = true;
}

void http2_protocol::answer(stream& s, bool has_body) {
  const auto req = request_of(s);
  // Its header values and body are views into this generation until the stream is done.
  if (ctx_->live != nullptr) s.use = site_use(*ctx_->live);
  stream_writer w(s, date_, ctx_->answers);
  response_info info;
  if (s.too_large) {
    info = ctx_->answers.respond_error(431, body_mode::with_body, w);
  } else if (has_body) {
    info = ctx_->answers.respond_error(413, body_mode::with_body, w);
  } else {
    info = ctx_->answers.respond(req, w, ctx_->certificate);
  }
  auto& list = header_list_;
  list.clear();
  const std::uint8_t flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  for (const auto& h : s.headers) {
    const auto name = h.name.in(s.text);
    const auto value = h.value.in(s.text);
    list.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), flags});
  }
  nghttp2_data_provider body{};
  body.source.ptr = &s;
  body.read_callback = callbacks::on_read_body;
  (void)nghttp2_submit_response(session_.get(), s.id, list.data(), list.size(),
                                s.body_left > 0 ? &body : nullptr);
  log_answer(*ctx_, wire_protocol::http2, s.too_large || has_body ? nullptr : &req, info,
             s.started);
}

}  // namespace kawipiko::serve
