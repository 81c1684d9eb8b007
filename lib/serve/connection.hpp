#pragma once
// One client connection: a transport (transport.hpp) carrying a protocol (HTTP/1.1 in
// http1.hpp, or HTTP/2 in http2.hpp, chosen by ALPN or by the first bytes), driven on its
// worker's io_context. Its steps read top to bottom: do_read -> on_readable -> answer ->
// do_write -> on_writable -> written -> (do_read | do_linger -> on_linger) -> do_close.
//
// The connection owns no buffer while it waits: input is read into the worker's buffer once the
// socket is readable, and only an unfinished request (or an unfinished write) is kept. Its
// deadline is checked by the worker's sweep, not by a timer of its own. It waits for at most one
// thing at a time; the worker deletes it once it is closed and that wait has completed.

#include <sys/uio.h>

#include <algorithm>
#include <boost/intrusive/list_hook.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "serve/date_line.hpp"
#include "serve/http1.hpp"
#include "serve/http2.hpp"
#include "serve/output.hpp"
#include "serve/request_log.hpp"
#include "serve/transport.hpp"

namespace kawipiko::serve {

class connection_owner;

// What a worker lends its connections: its handler, options, scratch and read buffer, and
// itself, to be told when one can be deleted.
struct connection_context {
  protocol_context http;
  output& out;
  date_line& date;
  std::span<char> read_buffer;
  connection_owner& owner;
};

// What the worker knows of every connection, whatever its transport: its place in the worker's
// list, the sweep's check, and closing.
class connection_base : public boost::intrusive::list_base_hook<
                            boost::intrusive::link_mode<boost::intrusive::safe_link>> {
 public:
  virtual ~connection_base() = default;
  // From the worker's sweep: a passed deadline, or draining while idle, closes the connection.
  virtual void check(coarse_clock::time_point now) noexcept = 0;
  // Closes the transport now; a pending wait then completes (aborted) and the worker deletes it.
  virtual void close() noexcept = 0;
  // Over TLS.
  [[nodiscard]] virtual bool secure() const noexcept = 0;
  // Whether bytes of `hold`'s generation wait to be sent (an unsent batch, an HTTP/2 stream).
  [[nodiscard]] virtual bool sends_from(const site_hold& hold) const noexcept = 0;
};

// The worker's side of a connection's life: it is told when one can be deleted.
class connection_owner {
 public:
  virtual void on_done(connection_base& c) noexcept = 0;

 protected:
  ~connection_owner() = default;
};

template <class Transport>
class connection final : public connection_base {
 public:
  // The transport is made in place from the worker's read buffer and `args` (the socket, …).
  // `peer`: the client, for the access log (unknown when it is off).
  template <class... Args>
  connection(connection_context& ctx, const peer_address& peer, Args&&... args)
      : transport_(ctx.read_buffer, std::forward<Args>(args)...), ctx_(ctx), peer_(peer) {
    // A handshake must end within the header timeout, counted from accept.
    const auto& limits = ctx_.http.opts.limits;
    deadline_ =
        coarse_now() + (Transport::has_handshake ? limits.header_timeout : limits.idle_timeout);
  }

  void start() { do_read(); }

  void check(coarse_clock::time_point now) noexcept override {
    if (state_ == state::closed) return;
    if (ctx_.http.opts.limits.timeouts && now >= deadline_) {
      // Waiting to write, the socket's buffer full: a client that drains it, however slowly,
      // is making progress; the write timeout is for one that does not (or has gone).
      if (state_ == state::writing && transport_.queued() < queued_) {
        queued_ = queued_now();
        deadline_ = now + ctx_.http.opts.limits.write_timeout;
        return;
      }
      if (state_ == state::idle && still_receiving(now)) return;
      return close();
    }
    if (ctx_.http.draining && state_ == state::fresh) {
      // Its first request may be on its way (a restart under load: accepted a moment before the
      // stop): it has first_request_grace to come, and is answered with "Connection: close".
      deadline_ = std::min(deadline_, now + first_request_grace);
      if (now >= deadline_) close();
    } else if (ctx_.http.draining && state_ == state::idle) {
      if (h2_) say_goaway();
      close();
    }
  }

  [[nodiscard]] bool secure() const noexcept override { return Transport::has_handshake; }

  [[nodiscard]] bool sends_from(const site_hold& hold) const noexcept override {
    return held_.of(hold) || (h2_ && h2_->sends_from(hold));
  }

  void close() noexcept override {
    if (state_ == state::closed) return;
    state_ = state::closed;
    transport_.close();
    unsent_.reset();
    held_ = {};
    if (!waiting_) ctx_.owner.on_done(*this);
  }

 private:
  enum class state {
    fresh,      // accepted, no request yet: the idle timeout runs (a handshake's: the header's)
    idle,       // between requests: the idle timeout runs
    reading,    // a request has begun: the header timeout runs
    writing,    // a batch is partly written: the write timeout runs
    lingering,  // the last response is out: reading and dropping for a moment, then close
    closed,
  };

  static constexpr auto linger_time = std::chrono::seconds(2);
  static constexpr auto first_request_grace = std::chrono::seconds(1);  // once draining
  static constexpr std::size_t linger_bytes = 1 << 20;  // dropped at most while lingering

  // Reads what comes next into the worker's buffer, behind the kept bytes of an unfinished
  // request; nothing is held meanwhile.
  void do_read() {
    waiting_ = true;
    transport_.read(kept().size(),
                    [this](const boost::system::error_code& ec, std::size_t n) { on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    waiting_ = false;
    if (state_ == state::closed) return ctx_.owner.on_done(*this);
    if (state_ == state::lingering) return on_linger(ec, n);
    const auto kept = this->kept();
    const auto buffer = ctx_.read_buffer;
    if (ec == boost::asio::error::eof) {
      if (kept.empty()) return close();
      std::memcpy(buffer.data(), kept.data(), kept.size());
      return answer({buffer.data(), kept.size()}, true);
    }
    if (ec) return close();  // reset and friends: routine, not logged
    if (kept.empty() && !h2_) {
      // The first bytes of a request: the header timeout starts now.
      state_ = state::reading;
      deadline_ = coarse_now() + ctx_.http.opts.limits.header_timeout;
    }
    // The kept bytes go in front of the new ones, so the parser sees the request whole (none
    // for HTTP/2, whose empty view may not even point anywhere).
    if (!kept.empty()) std::memcpy(buffer.data(), kept.data(), kept.size());
    answer({buffer.data(), kept.size() + n}, false);
  }

  // Answers every complete request in `input` with one batch, and writes it.
  void answer(std::string_view input, bool peer_done) {
    if (!chosen_ && !choose_protocol(input, peer_done)) return do_read();
    if (ctx_.http.records != nullptr) ctx_.http.records->peer = &peer_;
    const auto date = ctx_.date.get();
    if constexpr (Transport::has_handshake) ctx_.http.certificate = transport_.certificate();
    next_ = h2_ ? h2_->on_input(input, peer_done, date, ctx_.http, ctx_.out)
                : protocol_.on_input(input, peer_done, date, ctx_.http, ctx_.out);
    if (ctx_.out.empty()) return written();
    do_write(ctx_.out.parts());
  }

  // The protocol of the connection, from its first bytes: HTTP/2 when ALPN agreed on "h2", or,
  // without ALPN, when the input opens with HTTP/2's connection preface (h2c by prior
  // knowledge, RFC 9113 §3.3; no Upgrade, which RFC 9113 dropped); HTTP/1.1 otherwise. False
  // while the input is a beginning of the preface too short to tell: it is kept, and more read.
  bool choose_protocol(std::string_view input, bool peer_done) {
    const auto alpn = transport_.alpn();
    bool h2 = alpn == "h2";
    if (alpn.empty() && ctx_.http.opts.http2) {
      constexpr auto preface = http2_protocol::preface;
      const auto n = std::min(input.size(), preface.size());
      if (input.substr(0, n) == preface.substr(0, n)) {
        if (n < preface.size() && !peer_done) {
          protocol_.hold(input);
          return false;
        }
        h2 = n == preface.size();
      }
    }
    chosen_ = true;
    if (h2) h2_ = std::make_unique<http2_protocol>(ctx_.http.opts);
    return true;
  }

  // An idle HTTP/2 connection of a stopping server is told so with GOAWAY before it closes;
  // what the socket does not take now is not waited for.
  void say_goaway() noexcept {
    try {
      h2_->farewell(ctx_.http, ctx_.out);
      if (!ctx_.out.empty()) (void)transport_.write(ctx_.out.parts());
    } catch (const std::exception&) {  // std::bad_alloc inside nghttp2: it closes anyway
    }
  }

  // The unanswered input the protocol keeps (HTTP/2 keeps none: nghttp2 takes every byte).
  [[nodiscard]] std::string_view kept() const noexcept {
    return h2_ ? h2_->kept() : protocol_.kept();
  }

  // Sends `parts`; what the transport does not take now is kept (made-up text copied out of the
  // worker's scratch area, archive bytes by reference) and sent once the socket takes more.
  void do_write(std::span<const iovec> parts) {
    const auto sent = transport_.write(parts);
    if (sent.status == io_status::failed) return close();
    if (sent.status == io_status::done && sent.bytes == total_size(parts)) return written();
    keep_unsent(parts, sent.bytes);
    wait_writable();
  }

  void wait_writable() {
    state_ = state::writing;
    deadline_ = coarse_now() + ctx_.http.opts.limits.write_timeout;
    queued_ = queued_now();
    waiting_ = true;
    transport_.wait_writable([this](const boost::system::error_code& ec) { on_writable(ec); });
  }

  // The socket takes more: the rest of the batch (which may be empty while the transport still
  // holds bytes of its own, as TLS records do).
  void on_writable(const boost::system::error_code& ec) {
    waiting_ = false;
    if (state_ == state::closed) return ctx_.owner.on_done(*this);
    if (ec) return close();
    const auto sent = transport_.write(unsent_->parts);
    if (sent.status == io_status::failed) return close();
    if (sent.status == io_status::done && sent.bytes == total_size(unsent_->parts)) {
      unsent_.reset();
      held_ = {};
      return written();
    }
    drop_sent(sent.bytes);
    wait_writable();  // progress or not, with a fresh write deadline
  }

  // The idle time ran out, but the last response may still sit in the kernel's buffer (a large
  // body handed over at once, a slow client): the idle time counts from when the client has
  // taken it. While that buffer shrinks, the write timeout runs; once it is empty, the idle time
  // starts again. Asked only when the time runs out, so a response costs no extra system call.
  bool still_receiving(coarse_clock::time_point now) noexcept {
    const auto& limits = ctx_.http.opts.limits;
    const auto queued = queued_now();
    if (queued > 0 && (queued_ == 0 || queued < queued_)) {
      queued_ = queued;
      deadline_ = now + limits.write_timeout;
      return true;
    }
    if (queued == 0 && queued_ > 0) {
      queued_ = 0;
      deadline_ = now + limits.idle_timeout;
      return true;
    }
    return false;
  }

  [[nodiscard]] std::uint32_t queued_now() noexcept {
    return static_cast<std::uint32_t>(std::min<std::size_t>(transport_.queued(), UINT32_MAX));
  }

  static std::size_t total_size(std::span<const iovec> parts) noexcept {
    std::size_t total = 0;
    for (const auto& p : parts) total += p.iov_len;
    return total;
  }

  // The batch is out: what the protocol said comes next.
  void written() {
    switch (next_) {
      case next_step::close:
        return do_linger();
      case next_step::answer: {
        const auto kept = this->kept();
        if (!kept.empty()) std::memcpy(ctx_.read_buffer.data(), kept.data(), kept.size());
        return answer({ctx_.read_buffer.data(), kept.size()}, false);
      }
      case next_step::read:
        break;
    }
    if (h2_) return written_h2();
    if (protocol_.idle()) {
      state_ = state::idle;
      deadline_ = coarse_now() + ctx_.http.opts.limits.idle_timeout;
      queued_ = 0;  // still_receiving looks at the kernel's buffer only if the time runs out
    } else {
      state_ = state::reading;
    }
    do_read();
  }

  // HTTP/2 between batches: idle (the idle timeout) without a stream open; with streams waiting
  // on the client (its window, the rest of a request) the write timeout runs. A stopping server
  // says GOAWAY once the batch under way is out.
  void written_h2() {
    if (ctx_.http.draining && !h2_->goaway_sent()) return answer({}, false);
    const bool idle = h2_->idle();
    state_ = idle ? state::idle : state::reading;
    queued_ = 0;
    const auto& limits = ctx_.http.opts.limits;
    deadline_ = coarse_now() + (idle ? limits.idle_timeout : limits.write_timeout);
    do_read();
  }

  // Half-closes and reads (and drops) what the client still sends for a moment, so that the
  // last response is not destroyed by a reset.
  void do_linger() {
    transport_.shutdown_send();
    state_ = state::lingering;
    deadline_ = coarse_now() + linger_time;
    do_read();
  }

  void on_linger(const boost::system::error_code& ec, std::size_t n) {
    lingered_ += static_cast<std::uint32_t>(std::min<std::size_t>(n, linger_bytes));
    if (ec || lingered_ > linger_bytes) return close();
    do_read();
  }

  void keep_unsent(std::span<const iovec> parts, std::size_t sent) {
    // First pass: the text to copy, so that pointers into it stay valid.
    std::size_t skip = sent, text = 0;
    for (const auto& p : parts) {
      const std::size_t drop = std::min(skip, p.iov_len);
      skip -= drop;
      if (p.iov_len > drop && ctx_.out.in_scratch(p.iov_base)) text += p.iov_len - drop;
    }
    if (!unsent_) unsent_ = std::make_unique<unsent_batch>();
    // Archive bytes wait in it: their generation stays until they are out.
    if (!held_ && ctx_.http.live != nullptr) held_ = site_use(*ctx_.http.live);
    auto& pending = unsent_->parts;
    auto& copied = unsent_->text;
    copied.clear();
    copied.reserve(text);
    pending.clear();
    skip = sent;
    for (const auto& p : parts) {
      const std::size_t drop = std::min(skip, p.iov_len);
      skip -= drop;
      if (p.iov_len == drop) continue;
      const char* from = static_cast<const char*>(p.iov_base) + drop;
      const std::size_t size = p.iov_len - drop;
      if (ctx_.out.in_scratch(p.iov_base)) {
        const std::size_t at = copied.size();
        copied.append(from, size);
        pending.push_back({copied.data() + at, size});
      } else {
        pending.push_back({const_cast<char*>(from), size});
      }
    }
  }

  void drop_sent(std::size_t sent) {
    std::size_t first = 0;
    auto& pending = unsent_->parts;
    while (sent > 0 && sent >= pending[first].iov_len) sent -= pending[first++].iov_len;
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(first));
    if (sent > 0) {
      pending[0].iov_base = static_cast<char*>(pending[0].iov_base) + sent;
      pending[0].iov_len -= sent;
    }
  }

  Transport transport_;
  connection_context& ctx_;
  peer_address peer_;
  http1_protocol protocol_;
  std::unique_ptr<http2_protocol> h2_;  // made when the connection turns out to speak HTTP/2
  state state_ = state::fresh;
  next_step next_ = next_step::read;
  bool chosen_ = false;   // the protocol is known (HTTP/1.1 unless h2_)
  bool waiting_ = false;  // a wait is pending: its handler still refers to this connection
  coarse_clock::time_point deadline_;
  // An unfinished write: made only when the socket does not take a batch whole, so that an idle
  // connection stays small.
  struct unsent_batch {
    std::vector<iovec> parts;
    std::string text;  // the batch's made-up text, copied out of the worker's scratch
  };
  std::unique_ptr<unsent_batch> unsent_;
  site_use held_;  // the generation the unsent batch's archive bytes belong to
  std::uint32_t lingered_ = 0;
  // The kernel's unsent bytes when the write wait (or the idle time) began or last progressed.
  std::uint32_t queued_ = 0;
};

}  // namespace kawipiko::serve
