#include "serve/handler.hpp"

#include <algorithm>
#include <optional>
#include <span>

#include "archive/schema.hpp"
#include "http/accept_encoding.hpp"
#include "http/etag.hpp"
#include "http/range.hpp"
#include "http/target.hpp"
#include "serve/output.hpp"

namespace kawipiko::serve {

namespace {

using archive::encoding;
namespace entry_flags = archive::schema::entry_flags;

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

// One answer on its way to the protocol, and what every kind of answer shares.
struct reply {
  response_writer& w;
  const answer_settings& settings;
  body_mode body;
  unsigned flags = 0;  // the answering entry's (schema::entry_flags); 0 for made-up answers

  // The status, then the security headers but those the entry's lines hold their own of.
  void start(unsigned status) noexcept {
    w.start(status);
    if (settings.security_headers) {
      if ((flags & entry_flags::own_security & ~entry_flags::own_hsts) == 0) {
        w.lines(constant_lines::security);
      } else {
        constexpr unsigned own[] = {entry_flags::own_content_type_options,
                                    entry_flags::own_referrer_policy,
                                    entry_flags::own_frame_options};
        for (std::size_t i = 0; i < std::size(own); ++i) {
          if ((flags & own[i]) == 0) w.lines(constant_lines::security_lines[i]);
        }
      }
    }
    if (settings.hsts && (flags & entry_flags::own_hsts) == 0) w.lines(constant_lines::hsts);
  }

  [[nodiscard]] bool has_body() const noexcept { return body == body_mode::with_body; }

  [[nodiscard]] static response_info info(unsigned status, encoding coding = encoding::identity,
                                          std::uint64_t body_bytes = 0) noexcept {
    return {status, coding, body_bytes, false};
  }
};

// The appending interface of byte_sink, onto a field value or onto the body of a writer.
struct value_sink {
  response_writer& w;
  void view(std::string_view bytes) noexcept { w.value_view(bytes); }
  void text(std::string_view bytes) noexcept { w.value_text(bytes); }
  void number(std::uint64_t value) noexcept { w.value_number(value); }
};
struct body_sink {
  response_writer& w;
  void view(std::string_view bytes) noexcept { w.body_view(bytes); }
  void text(std::string_view bytes) noexcept { w.body_text(bytes); }
  void number(std::uint64_t value) noexcept { w.body_text(decimal(value).view()); }
};
static_assert(byte_sink<value_sink> && byte_sink<body_sink>);

// A short text answer: the reason phrase as a plain-text body, and Allow for a 405.
response_info error(reply& r, unsigned status) noexcept {
  r.flags = 0;  // none of the entry's lines goes out
  r.start(status);
  if (status == 405) r.w.field_text(field::allow, "GET, HEAD");
  // The body is "404 Not Found\n".
  const decimal code(status);
  const auto reason = reason_phrase(status);
  const auto length = code.view().size() + 1 + reason.size() + 1;
  r.w.field_text(field::content_type, "text/plain; charset=utf-8");
  r.w.field_number(field::content_length, length);
  r.w.end_header();
  auto info = r.info(status);
  info.corrupt = status == 500;
  if (r.has_body()) {
    r.w.body_text(code.view());
    r.w.body_text(" ");
    r.w.body_text(reason);
    r.w.body_text("\n");
    info.body_bytes = length;
  }
  return info;
}

// The query of a request-target, '?' included, without its fragment ('#' onwards, where a '?'
// is part of the fragment); empty when there is none.
std::string_view query_of(std::string_view target) noexcept {
  const auto at = target.find_first_of("?#");
  if (at == std::string_view::npos || target[at] != '?') return {};
  const auto query = target.substr(at);
  return query.substr(0, query.find('#'));
}

// A redirect: the archived Location (the block's first line), with the request's query when the
// entry keeps it.
response_info redirect(reply& r, std::string_view target, const archive::entry& e) noexcept {
  const auto& v = e.variants[0];
  const auto line_end = v.block.find("\r\n");
  const bool keeps = (e.flags & entry_flags::keeps_query) != 0;
  const auto query =
      line_end == std::string_view::npos || !keeps ? std::string_view() : query_of(target);
  // The query is copied into the batch, whose room per response is bounded.
  if (query.size() > max_copied_value) return error(r, 414);
  r.start(e.status);
  if (!query.empty()) {
    // The block's first line is "Location: <value>" (checked when the archive was opened).
    const auto first = v.block.substr(0, line_end);
    auto location = first.substr(first.find(':') + 1);
    location.remove_prefix(std::min(location.find_first_not_of(" \t"), location.size()));
    r.w.begin_field(field::location);
    r.w.value_view(location);
    r.w.value_text(query);
    r.w.end_field();
    r.w.lines(v.block.substr(line_end + 2));
  } else {
    r.w.lines(v.block);
  }
  r.w.end_header();
  return r.info(e.status);
}

// Whether `host` is a Host field value that can go into a Location: a name or address and an
// optional port (RFC 9110 §7.2: uri-host [ ":" port ]), nothing that would change the URL.
bool is_plain_host(std::string_view host) noexcept {
  if (host.empty()) return false;
  for (const char c : host) {
    const bool fits = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
    if (!fits) return false;
  }
  return true;
}

// The host of a Host field value without its port ("[::1]:8080" -> "[::1]").
std::string_view without_port(std::string_view host) noexcept {
  const auto colon = host.rfind(':');
  const auto bracket = host.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && bracket > colon)) {
    return host;
  }
  return host.substr(0, colon);
}

// --https-redirect: 308 to the same target on https, on the TLS listener's port.
response_info https_redirect(reply& r, const request& req, unsigned port) noexcept {
  if (!is_plain_host(req.host)) return error(r, 400);
  // Absolute-form ("http://host/path"): its path and query only.
  auto target = req.target;
  if (!target.starts_with('/')) {
    const auto authority = target.find("//");
    const auto path =
        authority == std::string_view::npos ? authority : target.find('/', authority + 2);
    target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
  }
  // The Location is copied into the batch, whose room per response is bounded.
  if (req.host.size() + target.size() > max_copied_value) return error(r, 414);
  r.start(308);
  r.w.begin_field(field::location);
  r.w.value_text("https://");
  r.w.value_text(without_port(req.host));
  if (port != 443) {
    r.w.value_text(":");
    r.w.value_number(port);
  }
  r.w.value_text(target);
  r.w.end_field();
  r.w.field_number(field::content_length, 0);
  r.w.end_header();
  return r.info(308);
}

// The whole body of `v` under `status`; a 200 says that ranges of it may be asked for.
response_info whole(reply& r, unsigned status, const archive::variant& v) noexcept {
  r.start(status);
  r.w.lines(v.block);
  if (status == 200) r.w.field_text(field::accept_ranges, "bytes");
  r.w.end_header();
  auto info = r.info(status, v.coding);
  if (r.has_body()) {
    r.w.body_view(v.body);
    info.body_bytes = v.body.size();
  }
  return info;
}

// A fallback or error page (the entry's stored status): no validators, no ranges.
response_info stored_page(reply& r, unsigned status, const archive::variant& v) noexcept {
  return whole(r, status, v);
}

// 200 with the whole representation.
response_info full(reply& r, const archive::variant& v) noexcept {
  return whole(r, 200, v);
}

// 304: the header block's validator lines only.
response_info not_modified(reply& r, const archive::variant& v) noexcept {
  r.start(304);
  r.w.lines(v.block.substr(0, v.length_304));
  r.w.end_header();
  return r.info(304, v.coding);
}

// 416 with "Content-Range: bytes */length".
response_info range_not_satisfiable(reply& r, const archive::variant& v) noexcept {
  r.start(416);
  r.w.lines(v.block.substr(0, v.length_304));
  r.w.begin_field(field::content_range);
  r.w.value_text("bytes */");
  r.w.value_number(v.body.size());
  r.w.end_field();
  r.w.field_number(field::content_length, 0);
  r.w.end_header();
  return r.info(416, v.coding);
}

// "bytes first-last/length", a Content-Range value (RFC 9110 §14.4).
template <byte_sink Sink>
void content_range(Sink& sink, const http::byte_range& range, std::uint64_t length) noexcept {
  sink.text("bytes ");
  sink.number(range.first);
  sink.text("-");
  sink.number(range.last);
  sink.text("/");
  sink.number(length);
}

std::string_view slice(std::string_view body, const http::byte_range& range) noexcept {
  return body.substr(range.first, range.last - range.first + 1);
}

// 206 with one range of `v`.
response_info single_range(reply& r, const archive::variant& v,
                           const http::byte_range& range) noexcept {
  const auto part = slice(v.body, range);
  r.start(206);
  r.w.lines(v.block.substr(0, v.length_partial));
  r.w.begin_field(field::content_range);
  value_sink value{r.w};
  content_range(value, range, v.body.size());
  r.w.end_field();
  r.w.field_number(field::content_length, part.size());
  r.w.field_text(field::accept_ranges, "bytes");
  r.w.end_header();
  r.w.body_view(part);
  return r.info(206, v.coding, part.size());
}

// The body of a multipart/byteranges answer (RFC 9110 §14.6).
struct byteranges {
  std::string_view tag;        // the boundary is "kawipiko-" + tag
  std::string_view type_line;  // "Content-Type: …\r\n", repeated in each part
  std::string_view body;       // the whole representation
  std::span<const http::byte_range> ranges;
};

// Each part is "\r\n--kawipiko-<tag>\r\n" + type line + "Content-Range: bytes a-b/len\r\n\r\n" +
// the bytes; the close delimiter follows the last. Run into a byte_count for the Content-Length,
// then into the batch: the length and the bytes come from the same calls. The tag and the type
// line are archive bytes: referenced, not copied (a hostile archive may hold a long type line;
// the batch's scratch room per response is bounded).
template <byte_sink Sink>
void write_parts(Sink& sink, const byteranges& parts) noexcept {
  for (const auto& range : parts.ranges) {
    sink.text("\r\n--kawipiko-");
    sink.view(parts.tag);
    sink.text("\r\n");
    sink.view(parts.type_line);
    sink.text("Content-Range: ");
    content_range(sink, range, parts.body.size());
    sink.text("\r\n\r\n");
    sink.view(slice(parts.body, range));
  }
  sink.text("\r\n--kawipiko-");
  sink.view(parts.tag);
  sink.text("--\r\n");
}

// 206 with several ranges of `v`, as multipart/byteranges. The boundary is made of the ETag (a
// hash of the content, so it cannot occur in it) or, without one, of a fixed string unlikely in
// real content. Content-Encoding stays on the whole, Content-Type goes into each part.
response_info multipart(reply& r, const archive::variant& v,
                        std::span<const http::byte_range> ranges) noexcept {
  const auto tag = v.etag.size() > 2 ? v.etag.substr(1, v.etag.size() - 2)
                                     : std::string_view("a8f3c1e07d5b4e92b6d0f1c2e3a4b5c6");
  const auto type_line = content_type_line(v);
  const auto encoding_lines = v.block.substr(v.length_304 + type_line.size(),
                                             v.length_partial - v.length_304 - type_line.size());
  const byteranges parts{tag, type_line, v.body, ranges};
  byte_count length;
  write_parts(length, parts);

  r.start(206);
  r.w.lines(v.block.substr(0, v.length_304));
  r.w.lines(encoding_lines);
  r.w.begin_field(field::content_type);
  r.w.value_text("multipart/byteranges; boundary=kawipiko-");
  r.w.value_view(tag);
  r.w.end_field();
  r.w.field_number(field::content_length, length.bytes());
  r.w.field_text(field::accept_ranges, "bytes");
  r.w.end_header();
  body_sink body{r.w};
  write_parts(body, parts);
  return r.info(206, v.coding, length.bytes());
}

// Whether the Range header applies: GET only, and an If-Range must match the strong ETag.
bool is_range_asked(const request& req, const archive::variant& v) noexcept {
  if (!req.has_range || req.verb == method::head) return false;
  return !req.has_if_range || (!v.etag.empty() && http::if_range_matches(req.if_range, v.etag));
}

// The ranges of `v` the request asks for (206, 416), or the whole of it (200) when it asks for
// none, or for ranges the header does not say clearly or that are too many.
response_info ranges_or_full(reply& r, const request& req, const archive::variant& v) noexcept {
  if (is_range_asked(req, v)) {
    std::array<http::byte_range, max_ranges> ranges{};
    std::size_t count = 0;
    switch (http::parse_range(req.range, v.body.size(), ranges, count)) {
      case http::range_result::unsatisfiable:
        return range_not_satisfiable(r, v);
      case http::range_result::satisfiable:
        if (count == 1) return single_range(r, v, ranges[0]);
        return multipart(r, v, std::span(ranges).first(count));
      case http::range_result::none:
      case http::range_result::too_many:
        break;
    }
  }
  return full(r, v);
}

// The authority of an absolute-form target ("http://a.example:8080/x" -> "a.example:8080"),
// else the Host field.
std::string_view host_of(const request& req) noexcept {
  const auto target = req.target;
  if (target.starts_with('/')) return req.host;
  const auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return req.host;
  const auto authority = target.substr(scheme_end + 3);
  return authority.substr(0, authority.find_first_of("/?#"));
}

// The answer an entry describes: a redirect, a stored page (fallbacks, error pages, 404
// rewrites), or a resource under the request's preconditions and ranges.
response_info answer_entry(reply& r, const request& req, const archive::entry& entry) noexcept {
  r.flags = entry.flags;
  if (archive::is_redirect_status(entry.status)) return redirect(r, req.target, entry);
  const auto& v = entry.variants[pick_variant(req, entry)];
  if (entry.status != 200) return stored_page(r, entry.status, v);
  // The preconditions in RFC 9110 §13.2.2's order: If-Match (strong comparison), then
  // If-None-Match (weak), then If-Range. Without a stored ETag only "*" can match (the resource
  // exists). If-Unmodified-Since (and If-Modified-Since) are deliberately never read: the archive
  // stores no modification dates, and §13.1.4 says a server without one must ignore the field.
  if (req.has_if_match && !http::if_match(req.if_match, v.etag)) return error(r, 412);
  if (req.has_if_none_match && http::if_none_match(req.if_none_match, v.etag)) {
    return not_modified(r, v);
  }
  return ranges_or_full(r, req, v);
}

// A pattern rule's redirect: its status and the Location the matcher made (safe in a header).
// No `_headers` and no Cache-Control: the answer is made up per request.
response_info rule_redirect(reply& r, unsigned status, std::string_view location) noexcept {
  // The Location is copied into the batch, whose room per response is bounded.
  if (location.size() > max_copied_value) return error(r, 414);
  r.flags = 0;
  r.start(status);
  r.w.field_text(field::location, location);
  r.w.field_number(field::content_length, 0);
  r.w.end_header();
  return r.info(status);
}

// What answering by the rules needs besides the reply: the request, its site and host as sent,
// and the handler's room for a match and a rewrite's path.
struct rules_context {
  const request& req;
  const site& s;
  std::string_view host;
  archive::redirect_match& match;
  std::span<char> rewrite_path;
  bool missing_target = false;  // a rewrite matched, to a path the site does not have
};

// The answer of the first of `rules` that matches the request's `path` (normalized), if any.
std::optional<response_info> answer_rules(reply& r, rules_context& c,
                                          const archive::redirect_matcher* rules,
                                          std::string_view path) noexcept {
  if (rules == nullptr) return std::nullopt;
  auto query = query_of(c.req.target);
  if (!query.empty()) query.remove_prefix(1);
  try {
    if (!rules->match({c.host, path, query}, c.match)) return std::nullopt;
  } catch (...) {  // std::bad_alloc: a Location past the room kept for it
    return error(r, 500);
  }
  if (archive::is_redirect_status(c.match.status)) {
    return rule_redirect(r, c.match.status, c.match.target);
  }
  // A rewrite: the target's entry, under the rule's status; a target that is missing (or not
  // a path) takes the normal 404 path.
  std::size_t size = 0;
  archive::entry entry;
  const bool readable =
      http::normalize_target(c.match.target, c.rewrite_path, size) == http::target_error::none;
  const auto found =
      readable ? c.s.find({c.rewrite_path.data(), size}, entry) : archive::lookup_status::not_found;
  if (found == archive::lookup_status::corrupt) return error(r, 500);
  if (found == archive::lookup_status::not_found) {
    c.missing_target = true;
    return std::nullopt;
  }
  if (c.match.status == 404 && entry.status == 200) {
    r.flags = entry.flags;
    return stored_page(r, 404, entry.variants[pick_variant(c.req, entry)]);
  }
  return answer_entry(r, c.req, entry);
}

// The path's entry (unless a forced rule it is flagged for answers first); for a path without
// one, the site's pattern rules in order; then the fallback that covers it, then 404.
response_info answer_path(reply& r, rules_context& c, std::string_view path) noexcept {
  archive::entry entry;
  const auto found = c.s.find(path, entry);
  if (found == archive::lookup_status::corrupt) return error(r, 500);
  if (found == archive::lookup_status::found) {
    if ((entry.flags & entry_flags::forced_rules) != 0) {
      if (auto answer = answer_rules(r, c, c.s.forced_rules(), path)) return *answer;
    }
    if (!c.missing_target) return answer_entry(r, c.req, entry);
  } else if (auto answer = answer_rules(r, c, c.s.rules(), path)) {
    return *answer;
  }
  switch (c.s.find_fallback(path, entry)) {
    case archive::lookup_status::found:
      return answer_entry(r, c.req, entry);
    case archive::lookup_status::corrupt:
      return error(r, 500);
    case archive::lookup_status::not_found:
      break;
  }
  return error(r, 404);
}

}  // namespace

handler::handler(const site& s, const answer_settings& settings)
    : own_(std::make_shared<site_set>(
          site_set{std::shared_ptr<const site>(std::shared_ptr<const site>(), &s), {}})),
      sites_(own_.get()),
      answering_(&s),
      settings_(settings) {
  match_.target.reserve(max_rule_target);
}

handler::handler(const site_set& sites, const answer_settings& settings)
    : sites_(&sites), settings_(settings) {
  match_.target.reserve(max_rule_target);
}

response_info handler::respond(const request& req, response_writer& w,
                               const served_certificate* tls) noexcept {
  reply r{.w = w,
          .settings = settings_,
          .body = req.verb == method::head ? body_mode::head_only : body_mode::with_body};
  if (req.verb == method::unknown) return error(r, 501);
  if (req.verb == method::other) return error(r, 405);
  if (settings_.https_port != 0) return https_redirect(r, req, settings_.https_port);

  std::size_t path_size = 0;
  const auto bad_target = http::normalize_target(req.target, path_, path_size);
  if (bad_target != http::target_error::none) {
    w.close_connection();  // a client that sends such a target is not trusted with the next
    return error(r, bad_target == http::target_error::too_long ? 414 : 400);
  }
  // The site by the name the request was sent to: absolute-form's authority (RFC 9112 §3.2.2),
  // else Host (or :authority).
  std::array<char, 256> name_room{};
  const auto host = normalized_host(host_of(req), name_room);
  // A name that the connection's certificate does not cover but another one of ours does: the
  // client reused a connection made for another name (HTTP/2 coalescing, RFC 9113 §9.1.1) and
  // 421 sends it to one of its own (RFC 9110 §15.5.20). A name no certificate covers is served
  // as before, as nginx does: the client checked the certificate it got, and a 421 would leave
  // it nowhere better to go.
  if (tls != nullptr && tls->table->is_misdirected(tls->index, host)) return error(r, 421);
  const int place = sites_->find_host(host);
  answering_ = sites_->at(place);
  if (answering_ == nullptr) return error(r, 421);  // no site here for that name
  rules_context context{req, *answering_, host_of(req), match_, rewrite_path_};
  auto info = answer_path(r, context, {path_.data(), path_size});
  info.host = place;
  info.generation = answering_->generation();
  return info;
}

response_info handler::respond_error(unsigned status, body_mode body, response_writer& w) noexcept {
  reply r{.w = w, .settings = settings_, .body = body};
  return error(r, status);
}

}  // namespace kawipiko::serve
