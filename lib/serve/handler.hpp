#pragma once
// The I/O-free heart of the server: one parsed request in, one response appended to an output
// batch. It looks the path up in the site, negotiates the encoding, evaluates If-Match,
// If-None-Match, Range and If-Range, and writes the status line and the few made-up header lines
// around the archive's precomputed header block and body. No allocation, no exception, no system
// call.

#include <array>
#include <cstdint>
#include <string_view>

#include "archive/compress.hpp"
#include "serve/output.hpp"
#include "serve/site.hpp"

namespace kawipiko::serve {

// The request method as far as the answer goes. "Known" means in Beast's verb table, a subset of
// the IANA method registry (RFC 9110 §16.1): a known method other than GET and HEAD is one this
// server refuses to apply to its resources (405 with Allow, §15.5.6); any other token, a
// lower-case "get" included (methods are case-sensitive, §9.1), is one it does not implement (501,
// §15.6.2).
enum class method {
  get,
  head,
  other,    // known, not allowed: 405
  unknown,  // not known: 501
};

// What the handler needs of a request; views into the connection's input buffer.
struct request {
  method verb = method::get;
  std::string_view target;
  unsigned version = 11;   // 10 or 11 (a later 1.x is answered as 11)
  bool keep_alive = true;  // as the request asked (version and Connection)
  std::string_view host;   // the Host field (HTTP/1.1 has exactly one; 1.0 may have none)
  bool has_accept_encoding = false;
  std::string_view accept_encoding;
  bool has_if_match = false;  // the first If-Match field
  std::string_view if_match;
  bool has_if_none_match = false;
  std::string_view if_none_match;
  bool has_range = false;  // exactly one Range field (several: ignored, as RFC allows)
  std::string_view range;
  bool has_if_range = false;
  std::string_view if_range;
};

// Whether an answer carries its body: a HEAD request gets the header only.
enum class body_mode { with_body, head_only };

// How the connection ends after a response. `as_requested` leaves it to the request (its version
// and Connection field; respond_error, which has no request, then keeps the connection); `close`
// ends it whatever was asked, with "Connection: close" (request cap reached, server draining,
// a request that could not be parsed).
enum class connection_end { as_requested, close };

struct response_info {
  unsigned status = 0;
  archive::encoding coding = archive::encoding::identity;
  std::uint64_t body_bytes = 0;
  bool close = false;    // the connection ends after this response
  bool corrupt = false;  // a corrupt archive record was met (500): worth a log line
};

// How the answers of one listener look, besides the archive's own header blocks.
struct answer_settings {
  bool security_headers = true;  // X-Content-Type-Options, Referrer-Policy, X-Frame-Options
  bool hsts = false;             // Strict-Transport-Security (over TLS, --security-headers-tls)
  // Non-zero: every request is answered with a 308 to the same target on https at this port
  // (the plain listener with --https-redirect).
  unsigned https_port = 0;
};

class handler {
 public:
  handler(const site& s, const answer_settings& settings) noexcept
      : site_(s), settings_(settings) {}

  // Appends the response to `req` to `out` (which must have room for one response). `date` is
  // the Date line.
  response_info respond(const request& req, connection_end end, std::string_view date,
                        output& out) noexcept;

  // A short text answer for a request that could not be parsed or is refused (400, 404, 405,
  // 412, 413, 414, 431, 500, 501, 505…).
  response_info respond_error(unsigned status, body_mode body, connection_end end,
                              std::string_view date, output& out) noexcept;

 private:
  const site& site_;
  answer_settings settings_;
  std::array<char, 8192> path_{};
};

// "200 OK"-style reason phrases for the statuses the server sends.
[[nodiscard]] std::string_view status_line(unsigned status) noexcept;

}  // namespace kawipiko::serve
