#include "http/target.hpp"

#include "http/syntax.hpp"

namespace kawipiko::http {
namespace {

using syntax::is_control;

// Raw path bytes refused besides controls; the reason is in normalize_target's contract.
constexpr bool is_refused_in_path(unsigned char c) noexcept {
  switch (c) {
    case ' ':
    case '"':
    case '<':
    case '>':
    case '\\':
    case '`':
    case '{':
    case '}':
      return true;
    default:
      return c >= 0x80;
  }
}

// Raw bytes refused in the parts that are not decoded (authority, query, fragment).
constexpr bool is_refused_elsewhere(unsigned char c) noexcept {
  return c == ' ' || c == '"' || c == '<' || c == '>';
}

// Where the authority starts for an http(s) absolute-form target, or 0 if it is not one.
constexpr std::size_t authority_start(std::string_view target) noexcept {
  constexpr std::string_view http = "http://";
  constexpr std::string_view https = "https://";
  if (syntax::istarts_with(target, http)) return http.size();
  if (syntax::istarts_with(target, https)) return https.size();
  return 0;
}

constexpr target_error check_undecoded(std::string_view part) noexcept {
  for (const char ch : part) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0) return target_error::nul;
    if (is_control(c)) return target_error::control;
    if (is_refused_elsewhere(c)) return target_error::bad_form;
  }
  return target_error::none;
}

// Builds the normalized path in the caller's buffer one decoded byte at a time, removing dot
// segments as it goes (RFC 3986 §5.2.4 applied segment by segment). The buffer always holds
// "/seg/seg…" without a trailing '/'. The first two bytes of a segment are held back until the
// segment is known not to be "." or "..", so those never need room in the buffer.
class path_builder {
 public:
  explicit path_builder(std::span<char> out) noexcept : out_(out) {}

  // A decoded byte of the current segment (never '/').
  void add(char c) noexcept {
    if (segment_size_ < 2) {
      pending_[segment_size_] = c;
    } else {
      if (segment_size_ == 2) flush_pending();
      put(c);
    }
    ++segment_size_;
  }

  // A '/' separator, raw or decoded.
  void end_segment() noexcept {
    const bool is_dot = segment_size_ == 1 && pending_[0] == '.';
    const bool is_dot_dot = segment_size_ == 2 && pending_[0] == '.' && pending_[1] == '.';
    if (is_dot_dot) {
      pop_segment();
    } else if (!is_dot && (segment_size_ == 1 || segment_size_ == 2)) {
      flush_pending();
    }
    // An empty segment (from "//" or a final '/'), "." or ".." leaves the path ending in '/'.
    ends_in_slash_ = segment_size_ == 0 || is_dot || is_dot_dot;
    segment_size_ = 0;
  }

  // Ends the last segment; returns the path's size.
  std::size_t finish() noexcept {
    end_segment();
    if (ends_in_slash_ || size_ == 0) put('/');
    return size_;
  }

  [[nodiscard]] bool overflowed() const noexcept { return overflowed_; }

 private:
  void put(char c) noexcept {
    if (size_ == out_.size()) {
      overflowed_ = true;
      return;
    }
    out_[size_++] = c;
  }

  void flush_pending() noexcept {
    put('/');
    put(pending_[0]);
    if (segment_size_ >= 2) put(pending_[1]);
  }

  // Drops the last "/seg"; at the root there is nothing to drop.
  void pop_segment() noexcept {
    while (size_ > 0 && out_[size_ - 1] != '/') --size_;
    if (size_ > 0) --size_;
  }

  std::span<char> out_;
  std::size_t size_ = 0;
  std::size_t segment_size_ = 0;
  char pending_[2] = {};
  bool ends_in_slash_ = false;
  bool overflowed_ = false;
};

// Kept raw by encode_path: unreserved, '/', and the sub-delims and pchar extras that are safe in
// a header value.
constexpr bool is_kept_by_encode(unsigned char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '/':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case '=':
    case ':':
    case '@':
      return true;
    default:
      return false;
  }
}

constexpr std::size_t encoded_size(std::string_view path) noexcept {
  std::size_t size = 0;
  for (const char c : path) {
    size += is_kept_by_encode(static_cast<unsigned char>(c)) ? std::size_t{1} : std::size_t{3};
  }
  return size;
}

}  // namespace

target_error normalize_target(std::string_view target, std::span<char> out,
                              std::size_t& out_size) noexcept {
  out_size = 0;
  if (target.empty()) return target_error::empty;

  std::size_t position = 0;  // where the path starts
  if (target.front() != '/') {
    const std::size_t authority = authority_start(target);
    if (authority == 0) return target_error::bad_form;
    position = target.find_first_of("/?#", authority);
    if (position == std::string_view::npos) position = target.size();
    if (position == authority) return target_error::bad_form;  // "http:///x": no host
    const auto error = check_undecoded(target.substr(authority, position - authority));
    if (error != target_error::none) return error;
  }

  path_builder builder(out);
  for (; position < target.size(); ++position) {
    auto c = static_cast<unsigned char>(target[position]);
    if (c == '?' || c == '#') break;
    if (c == '%') {
      if (!syntax::is_escape_at(target, position)) return target_error::bad_escape;
      c = syntax::escaped_byte(target, position);
      position += 2;
    } else if (is_refused_in_path(c)) {
      return target_error::bad_form;
    }
    if (c == 0) return target_error::nul;
    if (is_control(c)) return target_error::control;
    if (c == '/') {
      builder.end_segment();
    } else {
      builder.add(static_cast<char>(c));
    }
    if (builder.overflowed()) return target_error::too_long;
  }

  const auto error = check_undecoded(target.substr(position));
  if (error != target_error::none) return error;
  const std::size_t size = builder.finish();
  if (builder.overflowed()) return target_error::too_long;
  out_size = size;
  return target_error::none;
}

bool is_kept_by_encode_path(unsigned char c) noexcept {
  return is_kept_by_encode(c);
}

std::string encode_path(std::string_view path) {
  constexpr char digits[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(encoded_size(path));
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_kept_by_encode(c)) {
      encoded += ch;
    } else {
      encoded += '%';
      encoded += digits[c >> 4];
      encoded += digits[c & 0x0f];
    }
  }
  return encoded;
}

}  // namespace kawipiko::http
