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

namespace kawipiko::serve {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

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

  void on_request_impl(bhttp::verb verb, beast::string_view, beast::string_view target, int version,
                       beast::error_code& ec) override {
    req_.verb = verb == bhttp::verb::get    ? method::get
                : verb == bhttp::verb::head ? method::head
                                            : method::other;
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

}  // namespace

parse_result parse_request(std::string_view input, std::size_t header_limit,
                           request& req) noexcept {
  req = request{};
  header_parser parser(req, input);
  parser.header_limit(static_cast<std::uint32_t>(header_limit));
  parser.eager(false);
  beast::error_code ec;
  const std::size_t used = parser.put(boost::asio::const_buffer(input.data(), input.size()), ec);
  if (ec == bhttp::error::need_more) {
    return {input.size() >= header_limit ? parse_status::too_large : parse_status::need_more, 0};
  }
  if (ec == bhttp::error::header_limit) return {parse_status::too_large, 0};
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

}  // namespace kawipiko::serve
