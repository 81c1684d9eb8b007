#pragma once
// Request parsing on Beast's header parser: one complete request header out of a byte buffer,
// as views into that buffer (no allocation). Requests that carry a body are refused: a static
// server has no use for one, and refusing them (with the connection closed) leaves no room for
// request smuggling.

#include <cstddef>
#include <string_view>

#include "serve/handler.hpp"

namespace kawipiko::serve {

enum class parse_status {
  complete,               // `req` is filled, `consumed` bytes were its header
  need_more,              // no complete header yet
  bad_request,            // malformed (400), or HTTP/1.1 without exactly one Host
  too_large,              // the header passes the limit (431)
  uri_too_long,           // the request line alone passes the header limit (414)
  version_not_supported,  // a request line for HTTP/0.x or 2.0 and later (505)
  has_body,               // Content-Length > 0 (413)
  bad_framing,            // Transfer-Encoding, or Content-Length with it, or several lengths (400)
};

struct parse_result {
  parse_status status;
  std::size_t consumed = 0;
};

// Parses the request at the start of `input`. `header_limit` bounds the request line and fields.
// HTTP/1.0 and 1.1 are read as such; a later 1.x (HTTP/1.2…1.9) is read as 1.1, the highest
// minor version this server conforms to (RFC 9110 §2.5).
[[nodiscard]] parse_result parse_request(std::string_view input, std::size_t header_limit,
                                         request& req) noexcept;

// The method a request names, by Beast's verb table (HTTP/2's :method uses it too).
[[nodiscard]] method method_named(std::string_view name) noexcept;

// The status a refused parse is answered with, after which the connection closes: 400, 413,
// 414, 431 or 505. Only for results other than complete and need_more.
[[nodiscard]] unsigned refusal_status(parse_status status) noexcept;

}  // namespace kawipiko::serve
