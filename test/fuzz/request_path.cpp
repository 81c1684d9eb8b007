// Fuzz target: the whole I/O-free path a connection runs. The input is what a client sent; it is
// parsed as pipelined requests (serve::parse_request) and answered (serve::handler) the way
// worker.cpp's session does it, in batches that end when the output has no room for another
// response. The serialized responses are checked: a status line, a header block without bare CR
// or LF, one Content-Length that counts the bytes that follow (none for HEAD and 304), Connection:
// close exactly when the handler said so, and never a 500 (the archive is sound). The same input
// is answered twice, from a mapped archive with security headers and from an indexed in-memory
// copy without them: apart from those lines the bytes must be the same. The fixture has
// `_redirects` and `_headers`, so that the rules' answers are among those checked.
// With KAWIPIKO_FUZZ_PRINT set in the environment, the responses go to stderr (to read what a
// saved input does: fuzz_request_path <input>).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "serve/handler.hpp"
#include "serve/http1.hpp"
#include "serve/options.hpp"
#include "serve/output.hpp"
#include "serve/parser.hpp"
#include "serve/response.hpp"
#include "serve/site.hpp"

namespace serve = kawipiko::serve;
using kawipiko::fuzz::is_inside;
using kawipiko::fuzz::parse_decimal;

namespace {

constexpr std::string_view date = "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n";
// Low, so that the cap's "Connection: close" is reached; high enough to fill a batch.
constexpr std::size_t requests_per_connection = 64;

std::unique_ptr<serve::site> mapped_site;
std::unique_ptr<serve::site> indexed_site;
std::unique_ptr<serve::output> batch;  // 72 KiB: not on the stack

// What the loop knows of one response, to check its bytes against.
struct answer {
  unsigned status;
  bool head;  // to a HEAD request: no body
  bool close;
  std::uint64_t body_bytes;
  std::size_t bytes;  // the whole response
};

std::size_t scratch_bytes(const serve::output& out) {
  std::size_t bytes = 0;
  for (const auto& part : out.parts()) {
    if (out.in_scratch(part.iov_base)) bytes += part.iov_len;
  }
  return bytes;
}

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// Parses the request at `rest` and checks what the parser promises about its result.
serve::parse_result parse(std::string_view rest, std::size_t header_limit, serve::request& req) {
  const auto parsed = serve::parse_request(rest, header_limit, req);
  if (parsed.status == serve::parse_status::complete) {
    KAWIPIKO_FUZZ_CHECK(parsed.consumed > 0 && parsed.consumed <= rest.size());
    const std::string_view header = rest.substr(0, parsed.consumed);
    KAWIPIKO_FUZZ_CHECK(is_inside(req.target, header) && !req.target.empty());
    KAWIPIKO_FUZZ_CHECK(is_inside(req.accept_encoding, header));
    KAWIPIKO_FUZZ_CHECK(is_inside(req.if_match, header));
    KAWIPIKO_FUZZ_CHECK(is_inside(req.if_none_match, header));
    KAWIPIKO_FUZZ_CHECK(is_inside(req.range, header));
    KAWIPIKO_FUZZ_CHECK(is_inside(req.if_range, header));
    KAWIPIKO_FUZZ_CHECK(req.version == 10 || req.version == 11);
  } else {
    KAWIPIKO_FUZZ_CHECK(parsed.consumed == 0);
  }
  return parsed;
}

// Answers `input` like http1_protocol::on_input does; returns the bytes written and
// appends one `answer` per response.
std::string converse(const serve::site& site, bool security_headers, std::string_view input,
                     std::vector<answer>& answers) {
  serve::handler handler(site, serve::answer_settings{.security_headers = security_headers});
  const serve::limits limits;
  serve::output& out = *batch;
  std::string wire;
  std::size_t offset = 0;
  std::size_t requests = 0;
  bool closing = false;
  bool need_more = false;
  while (offset < input.size() && !closing && !need_more) {
    out.clear();
    while (offset < input.size() && !closing && out.has_room_for_response()) {
      serve::request req;
      const auto parsed = parse(input.substr(offset), limits.header_bytes, req);
      if (parsed.status == serve::parse_status::need_more) {
        need_more = true;
        break;
      }
      const std::size_t parts_before = out.parts().size();
      const std::size_t scratch_before = scratch_bytes(out);
      const std::size_t bytes_before = out.bytes();
      serve::response_info info;
      bool head = false;
      if (parsed.status == serve::parse_status::complete) {
        ++requests;
        const auto end = requests >= requests_per_connection ? serve::connection_end::close
                                                             : serve::connection_end::as_requested;
        serve::http1_writer w(out, date, end, req);
        info = handler.respond(req, w);
        closing = w.closes();
        head = req.verb == serve::method::head;
        offset += parsed.consumed;
      } else {
        serve::http1_writer w(out, date, serve::connection_end::close, false);
        info = handler.respond_error(serve::refusal_status(parsed.status),
                                     serve::body_mode::with_body, w);
        closing = true;
        offset = input.size();
      }
      // What has_room_for_response() relies on: one response stays within these bounds.
      KAWIPIKO_FUZZ_CHECK(out.parts().size() - parts_before <= serve::output::response_parts);
      KAWIPIKO_FUZZ_CHECK(scratch_bytes(out) - scratch_before <= serve::output::response_bytes);
      answers.push_back({info.status, head, closing, info.body_bytes, out.bytes() - bytes_before});
    }
    for (const auto& part : out.parts()) {
      wire.append(static_cast<const char*>(part.iov_base), part.iov_len);
    }
  }
  return wire;
}

void check_response(std::string_view response, const answer& a) {
  KAWIPIKO_FUZZ_CHECK(response.starts_with("HTTP/1.1 "));
  KAWIPIKO_FUZZ_CHECK(response.size() >= 13 && response[12] == ' ');
  std::uint64_t status = 0;
  KAWIPIKO_FUZZ_CHECK(parse_decimal(response.substr(9, 3), status) && status == a.status);
  KAWIPIKO_FUZZ_CHECK(a.status != 500);  // the archive is sound
  const std::size_t end = response.find("\r\n\r\n");
  KAWIPIKO_FUZZ_CHECK(end != std::string_view::npos);
  const std::string_view header = response.substr(0, end + 2);
  const std::string_view body = response.substr(end + 4);
  KAWIPIKO_FUZZ_CHECK(body.size() == a.body_bytes);

  std::size_t content_lengths = 0;
  std::uint64_t content_length = 0;
  bool has_close = false;
  bool has_location = false;
  std::string_view content_range;
  std::size_t position = header.find("\r\n") + 2;  // past the status line
  while (position < header.size()) {
    const std::size_t eol = header.find("\r\n", position);
    const std::string_view line = header.substr(position, eol - position);
    position = eol + 2;
    // No bare CR or LF: nothing a client sends can split a header line.
    KAWIPIKO_FUZZ_CHECK(line.find_first_of("\r\n") == std::string_view::npos);
    const std::size_t colon = line.find(": ");
    KAWIPIKO_FUZZ_CHECK(colon != std::string_view::npos && colon > 0);
    const std::string_view name = line.substr(0, colon);
    for (const char c : name) KAWIPIKO_FUZZ_CHECK(is_token_char(c));
    const std::string_view value = line.substr(colon + 2);
    if (name == "Content-Length") {
      ++content_lengths;
      KAWIPIKO_FUZZ_CHECK(parse_decimal(value, content_length));
    } else if (name == "Connection") {
      has_close = has_close || value == "close";
    } else if (name == "Content-Range") {
      content_range = value;
    } else if (name == "Location") {
      has_location = true;
    }
  }
  KAWIPIKO_FUZZ_CHECK(has_close == a.close);
  KAWIPIKO_FUZZ_CHECK(content_lengths <= 1);
  if (a.status == 304) {
    KAWIPIKO_FUZZ_CHECK(body.empty());
  } else {
    KAWIPIKO_FUZZ_CHECK(content_lengths == 1);
    if (a.head) {
      KAWIPIKO_FUZZ_CHECK(body.empty());
    } else {
      KAWIPIKO_FUZZ_CHECK(content_length == body.size());
    }
  }
  if (a.status == 308) KAWIPIKO_FUZZ_CHECK(has_location && body.empty());
  if (a.status == 416) KAWIPIKO_FUZZ_CHECK(content_range.starts_with("bytes */") && body.empty());
  if (a.status == 206 && !content_range.empty()) {
    // "bytes first-last/length"
    KAWIPIKO_FUZZ_CHECK(content_range.starts_with("bytes "));
    const auto range = content_range.substr(6);
    const auto dash = range.find('-');
    const auto slash = range.find('/');
    KAWIPIKO_FUZZ_CHECK(dash != std::string_view::npos && slash != std::string_view::npos);
    std::uint64_t first = 0, last = 0, length = 0;
    KAWIPIKO_FUZZ_CHECK(parse_decimal(range.substr(0, dash), first));
    KAWIPIKO_FUZZ_CHECK(parse_decimal(range.substr(dash + 1, slash - dash - 1), last));
    KAWIPIKO_FUZZ_CHECK(parse_decimal(range.substr(slash + 1), length));
    KAWIPIKO_FUZZ_CHECK(first <= last && last < length && last - first + 1 == body.size());
  } else if (a.status == 206) {
    KAWIPIKO_FUZZ_CHECK(body.starts_with("\r\n--kawipiko-") && body.ends_with("--\r\n"));
  }
}

void check_conversation(std::string_view wire, const std::vector<answer>& answers) {
  std::size_t offset = 0;
  for (const auto& a : answers) {
    KAWIPIKO_FUZZ_CHECK(a.bytes <= wire.size() - offset);
    check_response(wire.substr(offset, a.bytes), a);
    offset += a.bytes;
  }
  KAWIPIKO_FUZZ_CHECK(offset == wire.size());
}

// `text` without the server's security lines (an entry with a line of its own for one of them
// leaves that default out, the others in).
std::string without_security_lines(std::string text) {
  for (const auto line : serve::constant_lines::security_lines) {
    for (auto at = text.find(line); at != std::string::npos; at = text.find(line, at)) {
      text.erase(at, line.size());
    }
  }
  return text;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const kawipiko::fuzz::fixture_archive fixture(false, true);
  serve::options options;
  options.archive = fixture.path();
  mapped_site = std::make_unique<serve::site>(options);
  options.in_memory = true;
  options.index_paths = true;
  indexed_site = std::make_unique<serve::site>(options);
  batch = std::make_unique<serve::output>();
  return 0;  // the fixture's folder goes; the mapping stays valid
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<answer> mapped_answers;
  const std::string mapped = converse(*mapped_site, true, input, mapped_answers);
  check_conversation(mapped, mapped_answers);
  if (std::getenv("KAWIPIKO_FUZZ_PRINT") != nullptr)
    std::fwrite(mapped.data(), 1, mapped.size(), stderr);
  std::vector<answer> indexed_answers;
  const std::string indexed = converse(*indexed_site, false, input, indexed_answers);
  check_conversation(indexed, indexed_answers);
  KAWIPIKO_FUZZ_CHECK(mapped_answers.size() == indexed_answers.size());
  KAWIPIKO_FUZZ_CHECK(without_security_lines(mapped) == indexed);
  return 0;
}
