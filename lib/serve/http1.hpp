#pragma once
// HTTP/1.1 over any transport, without I/O: bytes in, a batch of responses out. It parses each
// complete request at the start of the input (Beast's parser, parser.hpp), has the handler
// answer it into the batch, keeps the bytes of an unfinished request for the next read, and
// says when the connection must end. Pipelined requests are answered in order, into one batch
// as long as the batch has room. Knows no socket, so it is tested and fuzzed over memory.

#include <cstddef>
#include <string>
#include <string_view>

#include "serve/handler.hpp"
#include "serve/options.hpp"
#include "serve/output.hpp"

namespace kawipiko::serve {

// What a worker lends the protocol of each of its connections.
struct http1_context {
  handler& answers;
  const options& opts;
  bool draining = false;  // the server is stopping: every response says "Connection: close"
};

class http1_protocol {
 public:
  // What the connection does once the batch is written.
  enum class next {
    read,    // wait for more input
    answer,  // the batch was full: answer the kept input (kept()) before reading more
    close,   // shut down after the batch (Connection: close, an error, the peer is done)
  };

  // Bytes of an unfinished request (or, after next::answer, of requests not answered yet), to
  // go in front of the next input.
  [[nodiscard]] std::string_view kept() const noexcept { return kept_; }
  [[nodiscard]] bool idle() const noexcept { return kept_.empty(); }

  // Answers the complete requests at the start of `input` (kept() followed by new bytes) into
  // `out`, which it clears first. `peer_done`: the peer has finished sending, so what is left
  // can never complete. `date` is the Date line.
  next on_input(std::string_view input, bool peer_done, std::string_view date, http1_context& ctx,
                output& out);

 private:
  // Answers one request (or refusal) at the start of `input`; returns the bytes it took, or 0
  // when the request is not complete yet.
  std::size_t answer_one(std::string_view input, std::string_view date, http1_context& ctx,
                         output& out);

  std::string kept_;
  std::size_t requests_ = 0;
  bool closing_ = false;  // Connection: close was sent: nothing more is answered
};

}  // namespace kawipiko::serve
