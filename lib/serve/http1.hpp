#pragma once
// HTTP/1.1 over any transport, without I/O: bytes in, a batch of responses out. It parses each
// complete request at the start of the input (Beast's parser, parser.hpp), has the handler
// answer it into the batch, keeps the bytes of an unfinished request for the next read, and
// says when the connection must end. Pipelined requests are answered in order, into one batch
// as long as the batch has room. Knows no socket, so it is tested and fuzzed over memory. Its
// response_writer turns the handler's descriptions into HTTP/1.1 text: the status line, Date,
// the archive's blocks as they are, made-up lines, Connection, and the body slices.

#include <cstddef>
#include <string>
#include <string_view>

#include "serve/handler.hpp"
#include "serve/output.hpp"
#include "serve/protocol.hpp"
#include "serve/response.hpp"

namespace kawipiko::serve {

// How the connection ends after a response. `as_requested` leaves it to the request (its version
// and Connection field; a refusal, which has no request, then keeps the connection); `close`
// ends it whatever was asked, with "Connection: close" (request cap reached, server draining,
// a request that could not be parsed).
enum class connection_end { as_requested, close };

// "HTTP/1.1 404 Not Found\r\n".
[[nodiscard]] std::string_view status_line(unsigned status) noexcept;

// One response into a batch, as HTTP/1.1 text. Archive bytes and constants are referenced, not
// copied; made-up text is copied into the batch's scratch area, joining one part. `out` must
// have room for one response (output::has_room_for_response). `date` is the Date line.
class http1_writer final : public response_writer {
 public:
  http1_writer(output& out, std::string_view date, connection_end end,
               bool says_keep_alive) noexcept
      : out_(out),
        date_(date),
        close_(end == connection_end::close),
        says_keep_alive_(says_keep_alive) {}

  // The writer for the answer to `req`: it closes when `end` says so or the request asked to.
  http1_writer(output& out, std::string_view date, connection_end end, const request& req) noexcept
      : http1_writer(out, date, req.keep_alive ? end : connection_end::close, req.version == 10) {}

  void start(unsigned status) noexcept override;
  void lines(std::string_view block) noexcept override;
  void begin_field(const field_name& name) noexcept override;
  void value_text(std::string_view bytes) noexcept override;
  void value_view(std::string_view bytes) noexcept override;
  void value_number(std::uint64_t number) noexcept override;
  void end_field() noexcept override;
  void close_connection() noexcept override;
  void end_header() noexcept override;
  void body_view(std::string_view bytes) noexcept override;
  void body_text(std::string_view bytes) noexcept override;

  // Whether the connection ends after this response ("Connection: close" was written).
  [[nodiscard]] bool closes() const noexcept { return close_; }

 private:
  output& out_;
  std::string_view date_;
  bool close_;
  bool says_keep_alive_;  // an HTTP/1.0 client is told when the connection stays
};

class http1_protocol {
 public:
  using next = next_step;

  // Bytes of an unfinished request (or, after next::answer, of requests not answered yet), to
  // go in front of the next input.
  [[nodiscard]] std::string_view kept() const noexcept { return kept_; }
  [[nodiscard]] bool idle() const noexcept { return kept_.empty(); }

  // Keeps `input` unanswered, to go in front of the next input: the start of a connection that
  // may yet turn out to be HTTP/2 (a beginning of its preface).
  void hold(std::string_view input) { kept_.assign(input); }

  // Answers the complete requests at the start of `input` (kept() followed by new bytes) into
  // `out`, which it clears first. `peer_done`: the peer has finished sending, so what is left
  // can never complete. `date` is the Date line.
  next on_input(std::string_view input, bool peer_done, std::string_view date,
                protocol_context& ctx, output& out);

 private:
  // Answers one request (or refusal) at the start of `input`; returns the bytes it took, or 0
  // when the request is not complete yet.
  std::size_t answer_one(std::string_view input, std::string_view date, protocol_context& ctx,
                         output& out);

  std::string kept_;
  std::size_t requests_ = 0;
  bool closing_ = false;  // Connection: close was sent: nothing more is answered
};

}  // namespace kawipiko::serve
