#include "serve/handler.hpp"

#include "http/accept_encoding.hpp"
#include "http/etag.hpp"
#include "http/range.hpp"
#include "http/target.hpp"

namespace kawipiko::serve {

namespace {

using archive::encoding;

constexpr std::string_view security_lines =
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: strict-origin-when-cross-origin\r\n"
    "X-Frame-Options: SAMEORIGIN\r\n";

constexpr std::size_t max_ranges = 16;

// The variant the client prefers among those stored; identity when it accepts none of them
// (RFC 9110 §12.5.3 lets a server disregard the header rather than answer 406).
std::size_t pick_variant(const request& req, const archive::entry& entry) noexcept {
  http::encoding_set available{false, false, false};
  for (std::size_t i = 0; i < entry.count; ++i) {
    switch (entry.variants[i].coding) {
      case encoding::identity:
        available.identity = true;
        break;
      case encoding::gzip:
        available.gzip = true;
        break;
      case encoding::br:
        available.br = true;
        break;
    }
  }
  const auto chosen = http::pick_encoding(req.accept_encoding, req.has_accept_encoding, available);
  encoding wanted = encoding::identity;
  if (chosen == http::coding::gzip) wanted = encoding::gzip;
  if (chosen == http::coding::br) wanted = encoding::br;
  for (std::size_t i = 0; i < entry.count; ++i) {
    if (entry.variants[i].coding == wanted) return i;
  }
  return 0;  // identity is always first
}

// The "Content-Type: …\r\n" line of a block: it starts where the 304 prefix ends.
std::string_view content_type_line(const archive::variant& v) noexcept {
  const auto rest = v.block.substr(v.length_304, v.length_partial - v.length_304);
  const auto end = rest.find("\r\n");
  return end == std::string_view::npos ? rest : rest.substr(0, end + 2);
}

// The rest of a short text answer, after its status line, Date and security headers.
void error_rest(unsigned status, bool is_head, std::string_view connection_line, output& out,
                response_info& info) noexcept {
  if (status == 405) out.text("Allow: GET, HEAD\r\n");
  const auto reason = status_line(status).substr(9);  // "405 Method Not Allowed\r\n"
  out.text("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  out.number(reason.size() - 1);  // the body ends with "\n", not "\r\n"
  out.text("\r\n");
  out.text(connection_line);
  out.text("\r\n");
  if (!is_head) {
    out.text(reason.substr(0, reason.size() - 2));
    out.text("\n");
    info.body_bytes = reason.size() - 1;
  }
}

}  // namespace

std::string_view status_line(unsigned status) noexcept {
  switch (status) {
    case 200:
      return "HTTP/1.1 200 OK\r\n";
    case 206:
      return "HTTP/1.1 206 Partial Content\r\n";
    case 304:
      return "HTTP/1.1 304 Not Modified\r\n";
    case 308:
      return "HTTP/1.1 308 Permanent Redirect\r\n";
    case 400:
      return "HTTP/1.1 400 Bad Request\r\n";
    case 404:
      return "HTTP/1.1 404 Not Found\r\n";
    case 405:
      return "HTTP/1.1 405 Method Not Allowed\r\n";
    case 408:
      return "HTTP/1.1 408 Request Timeout\r\n";
    case 413:
      return "HTTP/1.1 413 Content Too Large\r\n";
    case 414:
      return "HTTP/1.1 414 URI Too Long\r\n";
    case 416:
      return "HTTP/1.1 416 Range Not Satisfiable\r\n";
    case 431:
      return "HTTP/1.1 431 Request Header Fields Too Large\r\n";
    case 501:
      return "HTTP/1.1 501 Not Implemented\r\n";
    case 503:
      return "HTTP/1.1 503 Service Unavailable\r\n";
    default:
      return "HTTP/1.1 500 Internal Server Error\r\n";
  }
}

void handler::head(unsigned status, std::string_view date, output& out) const noexcept {
  out.text(status_line(status));
  out.text(date);
  if (security_headers_) out.text(security_lines);
}

void handler::connection(const request& req, bool close, output& out) noexcept {
  if (close) {
    out.text("Connection: close\r\n");
  } else if (req.version == 10) {
    out.text("Connection: keep-alive\r\n");
  }
}

response_info handler::respond_error(unsigned status, bool is_head, bool closing,
                                     std::string_view date, output& out) noexcept {
  response_info info{status, encoding::identity, 0, closing, status == 500};
  head(status, date, out);
  error_rest(status, is_head, closing ? "Connection: close\r\n" : "", out, info);
  return info;
}

response_info handler::respond(const request& req, bool closing, std::string_view date,
                               output& out) noexcept {
  const bool is_head = req.verb == method::head;
  const bool close = closing || !req.keep_alive;
  // A refusal that keeps the connection says so to an HTTP/1.0 client, like any other answer.
  const auto refuse = [&](unsigned status, bool head_only) {
    response_info info{status, encoding::identity, 0, close, status == 500};
    head(status, date, out);
    error_rest(status, head_only,
               close               ? "Connection: close\r\n"
               : req.version == 10 ? "Connection: keep-alive\r\n"
                                   : "",
               out, info);
    return info;
  };
  if (req.verb == method::other) return refuse(405, false);

  std::size_t path_size = 0;
  if (http::normalize_target(req.target, path_, path_size) != http::target_error::none) {
    return respond_error(400, is_head, true, date, out);
  }
  const std::string_view path(path_.data(), path_size);

  archive::entry entry;
  auto status = site_.find(path, entry);
  if (status == archive::lookup_status::not_found) status = site_.find_fallback(path, entry);
  if (status == archive::lookup_status::corrupt) return refuse(500, is_head);
  if (status == archive::lookup_status::not_found) return refuse(404, is_head);
  response_info info{0, encoding::identity, 0, close, false};

  // Redirects: the archived Location (the block's first line) with the request's query kept.
  if (entry.status == 308) {
    const auto& v = entry.variants[0];
    const auto line_end = v.block.find("\r\n");
    // A '?' after a '#' is part of the fragment, not a query.
    const auto query_at = req.target.find_first_of("?#");
    std::string_view query;
    if (query_at != std::string_view::npos && req.target[query_at] == '?' &&
        line_end != std::string_view::npos) {
      query = req.target.substr(query_at);
      query = query.substr(0, query.find('#'));
    }
    // The query is copied into the batch, whose room per response is bounded.
    if (query.size() > output::max_query) return refuse(414, is_head);
    head(308, date, out);
    if (!query.empty()) {
      out.view(v.block.substr(0, line_end));
      out.text(query);
      out.view(v.block.substr(line_end));
    } else {
      out.view(v.block);
    }
    connection(req, close, out);
    out.text("\r\n");
    info.status = 308;
    return info;
  }

  const std::size_t chosen = pick_variant(req, entry);
  const auto& v = entry.variants[chosen];
  info.coding = v.coding;
  const std::uint64_t length = v.body.size();

  // Fallback pages and error pages: the stored status, no validators, no ranges.
  if (entry.status != 200) {
    head(entry.status, date, out);
    out.view(v.block);
    connection(req, close, out);
    out.text("\r\n");
    if (!is_head) {
      out.view(v.body);
      info.body_bytes = length;
    }
    info.status = entry.status;
    return info;
  }

  // If-None-Match (weak comparison) wins over Range.
  // Without a stored ETag only "*" can match (the resource exists).
  if (req.has_if_none_match && http::if_none_match(req.if_none_match, v.etag)) {
    head(304, date, out);
    out.view(v.block.substr(0, v.length_304));
    connection(req, close, out);
    out.text("\r\n");
    info.status = 304;
    return info;
  }

  // Range on the selected variant, GET only; If-Range must match the strong ETag.
  if (req.has_range && !is_head &&
      (!req.has_if_range || (!v.etag.empty() && http::if_range_matches(req.if_range, v.etag)))) {
    std::array<http::byte_range, max_ranges> ranges{};
    std::size_t count = 0;
    const auto result = http::parse_range(req.range, length, ranges, count);
    if (result == http::range_result::unsatisfiable) {
      head(416, date, out);
      out.view(v.block.substr(0, v.length_304));
      out.text("Content-Range: bytes */");
      out.number(length);
      out.text("\r\nContent-Length: 0\r\n");
      connection(req, close, out);
      out.text("\r\n");
      info.status = 416;
      return info;
    }
    if (result == http::range_result::satisfiable && count == 1) {
      const auto& r = ranges[0];
      head(206, date, out);
      out.view(v.block.substr(0, v.length_partial));
      out.text("Content-Range: bytes ");
      out.number(r.first);
      out.text("-");
      out.number(r.last);
      out.text("/");
      out.number(length);
      out.text("\r\nContent-Length: ");
      out.number(r.last - r.first + 1);
      out.text("\r\nAccept-Ranges: bytes\r\n");
      connection(req, close, out);
      out.text("\r\n");
      out.view(v.body.substr(r.first, r.last - r.first + 1));
      info.status = 206;
      info.body_bytes = r.last - r.first + 1;
      return info;
    }
    if (result == http::range_result::satisfiable) {
      // multipart/byteranges; the boundary is made of the ETag (a hash of the content, so it
      // cannot occur in it) or, without one, of a fixed string unlikely in real content.
      const auto tag = v.etag.size() > 2 ? v.etag.substr(1, v.etag.size() - 2)
                                         : std::string_view("a8f3c1e07d5b4e92b6d0f1c2e3a4b5c6");
      const auto type_line = content_type_line(v);
      const auto encoding_lines = v.block.substr(
          v.length_304 + type_line.size(), v.length_partial - v.length_304 - type_line.size());
      // Each part: "\r\n--kawipiko-<tag>\r\n" + type line + "Content-Range: bytes a-b/len\r\n\r\n".
      const auto digits = [](std::uint64_t n) {
        std::uint64_t d = 1;
        while (n >= 10) {
          n /= 10;
          ++d;
        }
        return d;
      };
      const std::uint64_t delimiter = 2 + 2 + 9 + tag.size() + 2;  // \r\n--kawipiko-<tag>\r\n
      std::uint64_t total = 0;
      for (std::size_t i = 0; i < count; ++i) {
        const auto& r = ranges[i];
        total += delimiter + type_line.size() + 21 + digits(r.first) + 1 + digits(r.last) + 1 +
                 digits(length) + 2 + 2 + (r.last - r.first + 1);
      }
      total += 2 + 2 + 9 + tag.size() + 2 + 2;  // \r\n--kawipiko-<tag>--\r\n
      head(206, date, out);
      out.view(v.block.substr(0, v.length_304));
      out.view(encoding_lines);
      out.text("Content-Type: multipart/byteranges; boundary=kawipiko-");
      out.view(tag);
      out.text("\r\nContent-Length: ");
      out.number(total);
      out.text("\r\nAccept-Ranges: bytes\r\n");
      connection(req, close, out);
      out.text("\r\n");
      for (std::size_t i = 0; i < count; ++i) {
        const auto& r = ranges[i];
        // The tag and the type line are archive bytes: referenced, not copied (a hostile archive
        // may hold a long type line; the batch's scratch room per response is bounded).
        out.text("\r\n--kawipiko-");
        out.view(tag);
        out.text("\r\n");
        out.view(type_line);
        out.text("Content-Range: bytes ");
        out.number(r.first);
        out.text("-");
        out.number(r.last);
        out.text("/");
        out.number(length);
        out.text("\r\n\r\n");
        out.view(v.body.substr(r.first, r.last - r.first + 1));
      }
      out.text("\r\n--kawipiko-");
      out.view(tag);
      out.text("--\r\n");
      info.status = 206;
      info.body_bytes = total;
      return info;
    }
    // none or too_many: the whole representation.
  }

  head(200, date, out);
  out.view(v.block);
  out.text("Accept-Ranges: bytes\r\n");
  connection(req, close, out);
  out.text("\r\n");
  if (!is_head) {
    out.view(v.body);
    info.body_bytes = length;
  }
  info.status = 200;
  return info;
}

}  // namespace kawipiko::serve
