#pragma once
// What the protocols of a connection (HTTP/1.1 in http1.hpp, HTTP/2 in http2.hpp) share: what
// the worker lends them, and what they tell the connection to do once a batch is written. Both
// take bytes in and put a batch of frames or responses out, without I/O.

#include "serve/handler.hpp"
#include "serve/options.hpp"
#include "serve/site_source.hpp"

namespace kawipiko::serve {

struct answer_records;

// What a worker lends the protocol of each of its connections.
struct protocol_context {
  handler& answers;
  const options& opts;
  bool draining = false;  // the server is stopping: no new requests after those under way
  // The generation `answers` answers from now, for what keeps bytes of it past the batch (HTTP/2
  // streams); null where nothing reloads (tests, fuzzing).
  site_hold* live = nullptr;
  // What answers leave besides themselves (request_log.hpp: access log, counters); null when
  // neither is on.
  answer_records* records = nullptr;
  // The certificate of the TLS connection whose input is being answered, for the handler's 421;
  // null on a plain listener. The context is its listener's, lent to one connection at a time:
  // a TLS connection sets this before each batch.
  const served_certificate* certificate = nullptr;
};

// What the connection does once the batch is written.
enum class next_step {
  read,    // wait for more input
  answer,  // the batch was full: go on (with the kept input) before reading more
  close,   // shut down after the batch (Connection: close, GOAWAY, an error, the peer is done)
};

}  // namespace kawipiko::serve
