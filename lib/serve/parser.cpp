#include "serve/parser.hpp"

#include <boost/asio/buffer.hpp>
// GCC 12 with the sanitizers warns falsely inside Beast's content_length() (a boost::optional
// returned as boost::none); the warning is attributed to the header, so silence it there only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/beast/http/basic_parser.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/verb.hpp>

namespace kawipiko::serve {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

// Beast's verb table, a subset of the IANA method registry, is what "known" means (see
// serve::method): GET and HEAD are served, another known verb gets 405, an unknown token 501.
method method_of(bhttp::verb verb) noexcept {
  switch (verb) {
    case bhttp::verb::get:
      return method::get;
    case bhttp::verb::head:
      return method::head;
    case bhttp::verb::unknown:
      return method::unknown;
    default:
      return method::other;
  }
}

// Errors our callbacks raise to stop Beast's parser; any beast::http::error also stops it.
enum class refusal { none, bad_request, has_body, bad_framing };

class header_parser final : public bhttp::basic_parser<true> {
 public:
  header_parser(request& req, std::string_view input) : req_(req), input_(input) {}

  refusal refused = refusal::none;

 private:
  void stop(refusal why, beast::error_code& ec) {
    refused = why;
    ec = bhttp::error::bad_value;  // any error: the reason is in `refused`
  }

  void on_request_impl(bhttp::verb verb, beast::string_view name, beast::string_view target,
                       int version, beast::error_code& ec) override {
    req_.verb = method_of(verb);
    req_.method_token = {name.data(), name.size()};
    req_.target = {target.data(), target.size()};
    if (version != 10 && version != 11) return stop(refusal::bad_request, ec);
    req_.version = static_cast<unsigned>(version);
  }

  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override {
    stop(refusal::bad_request, ec);
  }

  void on_field_impl(bhttp::field name, beast::string_view, beast::string_view value,
                     beast::error_code& ec) override {
    const std::string_view text(value.data(), value.size());
    // Beast unfolds obsolete line folding into a buffer of its own that dies with put(); the
    // request keeps views, so such a field (RFC 9112 §5.2 allows it) is refused.
    if (!text.empty() && (text.data() < input_.data() ||
                          text.data() + text.size() > input_.data() + input_.size())) {
      return stop(refusal::bad_request, ec);
    }
    switch (name) {
      case bhttp::field::host:
        ++hosts_;
        req_.host = text;
        break;
      case bhttp::field::transfer_encoding:
        return stop(refusal::bad_framing, ec);
      case bhttp::field::content_length:
        if (++lengths_ > 1) return stop(refusal::bad_framing, ec);
        break;
      case bhttp::field::accept_encoding:
        if (!req_.has_accept_encoding) {
          req_.has_accept_encoding = true;
          req_.accept_encoding = text;
        }
        break;
      case bhttp::field::if_match:
        // Only the first field: a list split over several fields may then fail where the joined
        // list would match (a needless 412), but never the reverse.
        if (!req_.has_if_match) {
          req_.has_if_match = true;
          req_.if_match = text;
        }
        break;
      case bhttp::field::if_none_match:
        if (!req_.has_if_none_match) {
          req_.has_if_none_match = true;
          req_.if_none_match = text;
        }
        break;
      case bhttp::field::range:
        ++ranges_;
        req_.has_range = ranges_ == 1;  // several Range fields: ignore them all
        req_.range = text;
        break;
      case bhttp::field::if_range:
        req_.has_if_range = true;
        req_.if_range = text;
        break;
      case bhttp::field::referer:
        if (req_.referer.data() == nullptr) req_.referer = text;
        break;
      case bhttp::field::user_agent:
        if (req_.user_agent.data() == nullptr) req_.user_agent = text;
        break;
      default:
        break;
    }
  }

  void on_header_impl(beast::error_code& ec) override {
    if (req_.version == 11 && hosts_ != 1) return stop(refusal::bad_request, ec);
    if (hosts_ > 1) return stop(refusal::bad_request, ec);
    const auto length = content_length();
    if (length && *length > 0) return stop(refusal::has_body, ec);
    req_.keep_alive = keep_alive();
  }

  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view, beast::error_code& ec) override {
    stop(refusal::has_body, ec);
    return 0;
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code& ec) override {
    stop(refusal::bad_framing, ec);
  }
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view,
                                 beast::error_code& ec) override {
    stop(refusal::bad_framing, ec);
    return 0;
  }
  void on_finish_impl(beast::error_code&) override {}

  request& req_;
  std::string_view input_;
  int hosts_ = 0;
  int lengths_ = 0;
  int ranges_ = 0;
};

// Whether the request line ends (a line feed) within the header limit: past the limit without
// one, the request line alone is too long (414, the target being what makes a line long), with
// one the fields are (431).
bool has_line_end(std::string_view input, std::size_t header_limit) noexcept {
  return input.substr(0, header_limit).find('\n') != std::string_view::npos;
}

enum class version_kind { malformed, incomplete, later_minor, unsupported };

struct request_line {
  version_kind kind = version_kind::malformed;
  std::string_view method;
  std::string_view target;
  std::size_t size = 0;  // CRLF included
};

// Reads the request line of `input` after Beast refused it with bad_version. Beast reads only
// HTTP/1.0 and 1.1 but has checked the method (token SP) and the target (path characters SP)
// before it looked at the version, so the line is method SP target SP version: this tells a
// version of the right grammar ("HTTP/" DIGIT "." DIGIT CRLF, RFC 9112 §2.3) from garbage.
request_line read_request_line(std::string_view input) noexcept {
  request_line line;
  const auto method_end = input.find(' ');
  if (method_end == std::string_view::npos) return line;
  const auto target_end = input.find(' ', method_end + 1);
  if (target_end == std::string_view::npos) return line;
  constexpr std::string_view shape = "HTTP/0.0\r\n";  // '0': any digit
  const auto version = input.substr(target_end + 1, shape.size());
  for (std::size_t i = 0; i < version.size(); ++i) {
    const bool fits =
        shape[i] == '0' ? version[i] >= '0' && version[i] <= '9' : version[i] == shape[i];
    if (!fits) return line;
  }
  line.method = input.substr(0, method_end);
  line.target = input.substr(method_end + 1, target_end - method_end - 1);
  line.size = target_end + 1 + shape.size();
  if (version.size() < shape.size()) {
    line.kind = version_kind::incomplete;
  } else if (version[5] != '1') {
    line.kind = version_kind::unsupported;  // 0.x and 2.0 onwards: another protocol
  } else if (version[7] >= '2') {
    line.kind = version_kind::later_minor;
  }
  return line;
}

// Parses a request whose line asks for a later 1.x, which Beast refuses: Beast is given
// "GET / HTTP/1.1" in place of that line, then the real fields; the method and the target are
// taken from the real line. Returns the bytes used, the line included.
std::size_t put_as_http11(header_parser& parser, const request_line& line, std::string_view input,
                          request& req, beast::error_code& ec) noexcept {
  constexpr std::string_view stand_in = "GET / HTTP/1.1\r\n";
  (void)parser.put(boost::asio::const_buffer(stand_in.data(), stand_in.size()), ec);
  if (ec != bhttp::error::need_more) return 0;  // cannot happen: the line is valid and alone
  req.verb = method_named(line.method);
  req.method_token = line.method;
  req.target = line.target;
  const auto fields = input.substr(line.size);
  ec = {};
  return line.size + parser.put(boost::asio::const_buffer(fields.data(), fields.size()), ec);
}

// The outcome of Beast's put(): `ec` its error, `used` the bytes it took.
parse_result outcome(const header_parser& parser, beast::error_code ec, std::size_t used,
                     std::string_view input, std::size_t header_limit) noexcept {
  if (ec == bhttp::error::need_more && input.size() < header_limit) {
    return {parse_status::need_more, 0};
  }
  if (ec == bhttp::error::need_more || ec == bhttp::error::header_limit) {
    return {
        has_line_end(input, header_limit) ? parse_status::too_large : parse_status::uri_too_long,
        0};
  }
  switch (parser.refused) {
    case refusal::has_body:
      return {parse_status::has_body, 0};
    case refusal::bad_framing:
      return {parse_status::bad_framing, 0};
    case refusal::bad_request:
      return {parse_status::bad_request, 0};
    case refusal::none:
      break;
  }
  if (ec) {
    // Beast's own framing checks (bad Content-Length, Content-Length with chunked…).
    if (ec == bhttp::error::bad_content_length || ec == bhttp::error::multiple_content_length ||
        ec == bhttp::error::bad_transfer_encoding) {
      return {parse_status::bad_framing, 0};
    }
    return {parse_status::bad_request, 0};
  }
  if (!parser.is_done()) return {parse_status::has_body, 0};
  return {parse_status::complete, used};
}

void configure(header_parser& parser, std::size_t header_limit) noexcept {
  parser.header_limit(static_cast<std::uint32_t>(header_limit));
  parser.eager(false);
}

}  // namespace

parse_result parse_request(std::string_view input, std::size_t header_limit,
                           request& req) noexcept {
  req = request{};
  header_parser parser(req, input);
  configure(parser, header_limit);
  beast::error_code ec;
  const std::size_t used = parser.put(boost::asio::const_buffer(input.data(), input.size()), ec);
  if (ec != bhttp::error::bad_version) return outcome(parser, ec, used, input, header_limit);

  const auto line = read_request_line(input);
  switch (line.kind) {
    case version_kind::malformed:
      return {parse_status::bad_request, 0};
    case version_kind::incomplete:
      return outcome(parser, bhttp::error::need_more, 0, input, header_limit);
    case version_kind::unsupported:
      return {parse_status::version_not_supported, 0};
    case version_kind::later_minor:
      break;
  }
  req = request{};
  header_parser later(req, input);
  configure(later, header_limit);
  const std::size_t later_used = put_as_http11(later, line, input, req, ec);
  return outcome(later, ec, later_used, input, header_limit);
}

method method_named(std::string_view name) noexcept {
  return method_of(bhttp::string_to_verb({name.data(), name.size()}));
}

unsigned refusal_status(parse_status status) noexcept {
  switch (status) {
    case parse_status::too_large:
      return 431;
    case parse_status::uri_too_long:
      return 414;
    case parse_status::has_body:
      return 413;
    case parse_status::version_not_supported:
      return 505;
    case parse_status::complete:
    case parse_status::need_more:
    case parse_status::bad_request:
    case parse_status::bad_framing:
      break;
  }
  return 400;
}

}  // namespace kawipiko::serve
