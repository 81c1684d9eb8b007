#include "archive/rule_syntax.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "http/syntax.hpp"

namespace kawipiko::archive {

namespace {

namespace syntax = http::syntax;

using syntax::is_control;

constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

constexpr bool is_letter(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

constexpr bool is_alnum(char c) noexcept {
  return is_letter(c) || is_digit(c);
}

// Reads pattern text for one rules-file line; every refusal names the file and the line.
class pattern_reader {
 public:
  pattern_reader(std::string_view file, std::size_t line) : file_(file), line_(line) {}

  located_pattern read(std::string_view text) const {
    located_pattern located;
    const std::string_view path = split_host(text, located.host);
    if (path.empty() || path.front() != '/') fail("a path must start with '/'", text);
    located.path = read_path(path);
    return located;
  }

 private:
  [[noreturn]] void fail(std::string_view what, std::string_view text) const {
    throw rules_error(file_, line_, std::string(what) + ": " + base::quote(text));
  }

  // The text after "http(s)://host[:port]", the host stored lower case; `text` when it has none.
  std::string_view split_host(std::string_view text, std::string& host) const {
    std::size_t start = 0;
    if (syntax::istarts_with(text, "http://")) start = 7;
    if (syntax::istarts_with(text, "https://")) start = 8;
    if (start == 0) return text;
    const std::size_t end = std::min(text.find('/', start), text.size());
    const std::string_view authority = text.substr(start, end - start);
    if (!is_host(authority)) fail("not a host name (letters, digits, '-', '.', a port)", text);
    for (const char c : authority) host += syntax::to_lower(c);
    return end == text.size() ? std::string_view("/") : text.substr(end);
  }

  static bool is_host(std::string_view authority) noexcept {
    if (authority.size() > max_host_size) return false;
    const std::size_t colon = authority.find(':');
    const std::string_view name = authority.substr(0, colon);
    if (name.empty()) return false;
    const auto is_name_char = [](char c) { return is_alnum(c) || c == '-' || c == '.'; };
    if (!std::all_of(name.begin(), name.end(), is_name_char)) return false;
    if (colon == std::string_view::npos) return true;
    const std::string_view port = authority.substr(colon + 1);
    return !port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), is_digit);
  }

  path_pattern read_path(std::string_view path) const {
    path_pattern pattern;
    if (path.find_first_of("?#") != std::string_view::npos) {
      fail("a pattern holds no query or fragment (write query conditions apart)", path);
    }
    // Segments between the slashes; only the last may be empty (a trailing slash).
    for (std::string_view rest = path.substr(1);;) {
      const std::size_t slash = rest.find('/');
      const std::string_view text = rest.substr(0, slash);
      if (slash == std::string_view::npos && text.empty()) {
        pattern.trailing_slash = true;
        break;
      }
      if (!pattern.segments.empty() && pattern.segments.back().kind == segment_kind::splat) {
        fail("'*' must be the last segment", path);
      }
      pattern.segments.push_back(read_segment(text, path));
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
    if (pattern.trailing_slash && !pattern.segments.empty() &&
        pattern.segments.back().kind == segment_kind::splat) {
      fail("'*' must be the last segment", path);
    }
    check_limits(pattern, path);
    return pattern;
  }

  pattern_segment read_segment(std::string_view text, std::string_view path) const {
    if (text.empty()) fail("an empty segment", path);
    if (text == "*") return {segment_kind::splat, {}};
    if (text.find('*') != std::string_view::npos) fail("'*' must be a whole segment", path);
    if (text.front() == ':') {
      const std::string_view name = text.substr(1);
      if (!is_placeholder_name(name)) fail("a placeholder must be a whole segment ':name'", path);
      if (name == "splat") fail("':splat' is the splat's name in 'to'; match it with '*'", path);
      return {segment_kind::placeholder, std::string(name)};
    }
    std::string decoded = decode(text, path);
    if (decoded == "." || decoded == "..") fail("a '.' or '..' segment never matches", path);
    return {segment_kind::literal, std::move(decoded)};
  }

  std::string decode(std::string_view text, std::string_view path) const {
    auto decoded = percent_decode(text);
    if (!decoded) fail("a malformed percent-escape", path);
    // The server decodes "%2F" into a separator: a segment holding one never matches.
    if (decoded->find('/') != std::string::npos) fail("an escaped '/' never matches", path);
    if (std::any_of(decoded->begin(), decoded->end(),
                    [](char c) { return is_control(static_cast<unsigned char>(c)); })) {
      fail("a control byte", path);
    }
    return std::move(*decoded);
  }

  void check_limits(const path_pattern& pattern, std::string_view path) const {
    if (pattern.segments.size() > max_pattern_segments) {
      fail("more than " + std::to_string(max_pattern_segments) + " segments", path);
    }
    if (pattern.capture_count() > max_captures) {
      fail("more than " + std::to_string(max_captures) + " placeholders", path);
    }
    for (std::size_t i = 0; i < pattern.segments.size(); ++i) {
      const auto& segment = pattern.segments[i];
      if (segment.kind != segment_kind::placeholder) continue;
      for (std::size_t j = 0; j < i; ++j) {
        if (pattern.segments[j].kind == segment_kind::placeholder &&
            pattern.segments[j].text == segment.text) {
          fail("placeholder ':" + segment.text + "' bound twice", path);
        }
      }
    }
  }

  std::string_view file_;
  std::size_t line_;
};

std::string error_message(std::string_view file, std::size_t line, std::string_view reason) {
  return base::quote(file) + " line " + std::to_string(line) + ": " + std::string(reason);
}

}  // namespace

rules_error::rules_error(std::string_view file, std::size_t line, std::string_view reason)
    : std::runtime_error(error_message(file, line, reason)),
      file_(file),
      line_(line),
      reason_(reason) {}

bool path_pattern::is_literal() const noexcept {
  return std::all_of(segments.begin(), segments.end(), [](const pattern_segment& segment) {
    return segment.kind == segment_kind::literal;
  });
}

std::size_t path_pattern::capture_count() const noexcept {
  return static_cast<std::size_t>(std::count_if(
      segments.begin(), segments.end(),
      [](const pattern_segment& segment) { return segment.kind != segment_kind::literal; }));
}

std::string path_pattern::literal_path() const {
  std::string path;
  for (const auto& segment : segments) path.append("/").append(segment.text);
  return path.empty() ? std::string("/") : path;
}

located_pattern parse_located_pattern(std::string_view text, std::string_view file,
                                      std::size_t line) {
  return pattern_reader(file, line).read(text);
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      decoded += text[i];
      continue;
    }
    if (!syntax::is_escape_at(text, i)) return std::nullopt;
    decoded += static_cast<char>(syntax::escaped_byte(text, i));
    i += 2;
  }
  return decoded;
}

bool is_placeholder_name(std::string_view name) noexcept {
  if (name.empty() || !(is_letter(name.front()) || name.front() == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return is_alnum(c) || c == '_'; });
}

std::string_view host_without_port(std::string_view host) noexcept {
  const std::size_t colon = host.rfind(':');
  const std::size_t bracket = host.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) {
    return host;
  }
  return host.substr(0, colon);
}

bool host_matches(std::string_view rule_host, std::string_view request_host) noexcept {
  if (rule_host.empty() || request_host.empty()) return false;
  if (rule_host.find(':') == std::string_view::npos) request_host = host_without_port(request_host);
  return syntax::iequals(rule_host, request_host);
}

}  // namespace kawipiko::archive
