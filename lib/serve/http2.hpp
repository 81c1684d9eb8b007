#pragma once
// HTTP/2 (RFC 9113) over any transport, without I/O: an nghttp2 server session driven through
// its memory interface. Bytes in go to nghttp2_session_mem_recv; frames come out through its
// send callbacks into the worker's batch: control frames and header blocks copied into the
// batch's scratch, bodies as DATA frames whose payload points into the archive
// (NGHTTP2_DATA_FLAG_NO_COPY: the 9-byte frame header and the archive slice go out in one
// gathered write). Each request stream is answered by the same handler as HTTP/1.1, through a
// response_writer that builds the header list and the body pieces. Like http1_protocol it knows
// no socket, so it is tested and fuzzed over memory.
//
// nghttp2 keeps the protocol's rules: frame and stream states, HPACK, flow control, the
// pseudo-header and field checks of RFC 9113 §8 (stream errors), and the floods it guards
// against (rapid reset, CONTINUATION, SETTINGS and PING floods: GOAWAY). What is set here: the
// SETTINGS the server announces and the limits of those guards.

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string_view>
#include <vector>

#include "serve/output.hpp"
#include "serve/protocol.hpp"

namespace kawipiko::serve {

class http2_protocol {
 public:
  using next = next_step;

  // The client's connection preface, which opens every HTTP/2 connection (RFC 9113 §3.4).
  static constexpr std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  // Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
  static constexpr std::uint32_t max_streams = 128;

  // A session with the server's SETTINGS queued. Throws std::bad_alloc.
  explicit http2_protocol(const options& opts);
  ~http2_protocol();
  http2_protocol(const http2_protocol&) = delete;
  http2_protocol& operator=(const http2_protocol&) = delete;

  // Takes `input` (all of it: nghttp2 keeps what it needs of an unfinished frame), answers the
  // requests it completes and puts what is due to be sent into `out`, which it clears first.
  // `peer_done`: the peer has finished sending. `date` is the Date line. next::answer: the batch
  // filled up; call again (with empty input) once it is written.
  next on_input(std::string_view input, bool peer_done, std::string_view date,
                protocol_context& ctx, output& out);

  // Nothing is kept between inputs (the interface http1_protocol has).
  [[nodiscard]] std::string_view kept() const noexcept { return {}; }
  // No stream is open.
  [[nodiscard]] bool idle() const noexcept;

  // The server is stopping and the connection is idle: GOAWAY (NO_ERROR, with the last stream
  // taken up) into `out`, which it clears first.
  void farewell(protocol_context& ctx, output& out);

  // Whether one of its streams sends from `hold`'s generation.
  [[nodiscard]] bool sends_from(const site_hold& hold) const noexcept;

  // farewell() or draining has queued GOAWAY.
  [[nodiscard]] bool goaway_sent() const noexcept { return goaway_sent_; }

  struct stream;
  struct callbacks;

 private:
  friend struct callbacks;

  stream& open_stream();
  void close_stream(stream& s);
  void answer(stream& s, bool has_body);
  void queue_goaway();
  void send();

  static constexpr std::size_t max_spare_streams = 8;
  std::list<stream> streams_;            // open, in the order they began
  std::list<stream> spare_;              // closed, kept for reuse
  std::vector<nghttp2_nv> header_list_;  // the response being submitted
  std::unique_ptr<nghttp2_session, void (*)(nghttp2_session*)> session_;
  // Lent for the duration of one on_input (the callbacks reach them through `this`).
  protocol_context* ctx_ = nullptr;
  output* out_ = nullptr;
  std::string_view date_;
  bool full_ = false;         // a send callback found the batch full
  bool goaway_sent_ = false;  // draining: GOAWAY is queued or out
  bool failed_ = false;       // nghttp2 reported a fatal error: close after the batch
};

}  // namespace kawipiko::serve
