#pragma once
// A response as the handler describes it, in a form that does not depend on the protocol: a
// status, header lines taken whole from the archive (or constants), fields made up for this
// response, then body pieces. Each protocol serializes the description its own way: HTTP/1.1 as a
// status line and text lines around the archive's blocks (http1.hpp), HTTP/2 as a header list
// and DATA frames. The handler never sees the wire format, and the protocol never decides what a
// response says.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kawipiko::serve {

// The most bytes of request text (a query, a host and target) a response copies into one field
// value: a writer's room per response is bounded, and a longer one is answered with 414.
inline constexpr std::size_t max_copied_value = 4 * 1024;

// The header lines the handler adds as they are (response_writer::lines). HTTP/2's writer knows
// them by address, so each is one object (an inline array, the same in every translation unit:
// string literals are not, where the linker does not merge them, as under AddressSanitizer).
namespace constant_lines {
inline constexpr char security_text[] =
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: strict-origin-when-cross-origin\r\n"
    "X-Frame-Options: SAMEORIGIN\r\n";
// A year, as RFC 6797 §11.2 suggests; without includeSubDomains, which would commit hosts this
// server does not know of.
inline constexpr char hsts_text[] = "Strict-Transport-Security: max-age=31536000\r\n";
inline constexpr std::string_view security{security_text, sizeof security_text - 1};
inline constexpr std::string_view hsts{hsts_text, sizeof hsts_text - 1};

// Line `n` of `text` (CRLF included): for an answer that sends the security lines one by one.
// (A loop of its own: GCC 12 with -fsanitize=undefined cannot evaluate string_view::find in a
// constant expression.)
[[nodiscard]] constexpr std::string_view line_of(std::string_view text, std::size_t n) noexcept {
  std::size_t start = 0, at = 0;
  for (; at + 1 < text.size(); ++at) {
    if (text[at] != '\r' || text[at + 1] != '\n') continue;
    if (n == 0) return text.substr(start, at + 2 - start);
    --n;
    start = at + 2;
  }
  return text.substr(start);
}
// The lines of `security`, in its order; views into it (HTTP/2's writer finds them there).
inline constexpr std::string_view security_lines[] = {line_of(security, 0), line_of(security, 1),
                                                      line_of(security, 2)};
static_assert(security_lines[2].data() + security_lines[2].size() ==
              security.data() + security.size());
}  // namespace constant_lines

// The reason phrase of a status the server sends ("Not Found"); "Internal Server Error" for any
// other.
[[nodiscard]] std::string_view reason_phrase(unsigned status) noexcept;

// A field name as each protocol writes it: HTTP/1.1 in its usual capitalization, HTTP/2 in lower
// case (RFC 9113 §8.2.1).
struct field_name {
  std::string_view text;
  std::string_view lower;
};

namespace field {
inline constexpr field_name accept_ranges{"Accept-Ranges", "accept-ranges"};
inline constexpr field_name allow{"Allow", "allow"};
inline constexpr field_name content_length{"Content-Length", "content-length"};
inline constexpr field_name content_range{"Content-Range", "content-range"};
inline constexpr field_name content_type{"Content-Type", "content-type"};
inline constexpr field_name location{"Location", "location"};
}  // namespace field

// Receives one response, in this order: start, then any of lines and fields, then end_header,
// then (unless the answer has no body) body pieces. Every string_view passed as "not copied"
// stays valid until the response is written (the archive's mapping or static storage); "copied"
// ones may go away when the call returns. None of the calls allocates or throws.
class response_writer {
 public:
  // The status code (the protocol adds what every response carries, such as Date).
  virtual void start(unsigned status) noexcept = 0;
  // Whole header lines, "Name: value\r\n" each, well-formed (checked when the archive was
  // opened, or constants): an archive block or a prefix of one, not copied.
  virtual void lines(std::string_view block) noexcept = 0;
  // A made-up field, its value written in pieces between begin_field and end_field.
  virtual void begin_field(const field_name& name) noexcept = 0;
  virtual void value_text(std::string_view bytes) noexcept = 0;  // copied
  virtual void value_view(std::string_view bytes) noexcept = 0;  // not copied
  virtual void value_number(std::uint64_t number) noexcept = 0;
  virtual void end_field() noexcept = 0;
  // The connection should not carry another request after this one (a client that sent a
  // target that could not be read is not trusted with the next). Before end_header. HTTP/1.1
  // closes; HTTP/2, whose streams are independent, may ignore it.
  virtual void close_connection() noexcept = 0;
  virtual void end_header() noexcept = 0;
  virtual void body_view(std::string_view bytes) noexcept = 0;  // not copied
  virtual void body_text(std::string_view bytes) noexcept = 0;  // copied

  // A whole made-up field with a one-piece value.
  void field_text(const field_name& name, std::string_view value) noexcept {
    begin_field(name);
    value_text(value);
    end_field();
  }
  void field_number(const field_name& name, std::uint64_t value) noexcept {
    begin_field(name);
    value_number(value);
    end_field();
  }

 protected:
  ~response_writer() = default;
};

}  // namespace kawipiko::serve
