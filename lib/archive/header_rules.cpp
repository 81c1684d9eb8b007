#include "archive/header_rules.hpp"

#include <algorithm>
#include <array>

#include "base/error.hpp"
#include "http/syntax.hpp"

namespace kawipiko::archive {

namespace {

namespace syntax = http::syntax;

// Written by the server for every response (framing, coding, validators, the connection), or
// forbidden by HTTP/2 (connection-specific fields).
constexpr std::string_view server_owned[] = {"Content-Length",
                                             "Content-Encoding",
                                             "Content-Range",
                                             "Transfer-Encoding",
                                             "Connection",
                                             "Date",
                                             "ETag",
                                             "Vary",
                                             "Keep-Alive",
                                             "Upgrade",
                                             "TE",
                                             "Trailer",
                                             "Accept-Ranges"};

constexpr std::string_view default_fields[] = {
    "Cache-Control",   "Content-Type",    "X-Content-Type-Options",
    "Referrer-Policy", "X-Frame-Options", "Strict-Transport-Security"};

// Fields whose value is not a list: a later block replaces instead of appending.
constexpr std::string_view single_value_fields[] = {"Content-Type",
                                                    "X-Frame-Options",
                                                    "X-Content-Type-Options",
                                                    "Strict-Transport-Security",
                                                    "Access-Control-Allow-Origin",
                                                    "Location"};

template <std::size_t Size>
bool is_one_of(std::string_view name, const std::string_view (&names)[Size]) noexcept {
  return std::any_of(std::begin(names), std::end(names),
                     [name](std::string_view known) { return syntax::iequals(name, known); });
}

// Reads the blocks of one file, line by line; every refusal names the file and the line.
class headers_reader {
 public:
  explicit headers_reader(std::string_view file) : file_(file) {}

  std::vector<header_block> read(std::string_view text) const {
    std::vector<header_block> blocks;
    for_each_line(text, [&](std::string_view line, std::size_t number) {
      const std::string_view content = syntax::trim(line);
      if (content.empty() || content.front() == '#') return;
      if (!syntax::is_ows(line.front())) {
        blocks.push_back(read_path_line(content, number));
      } else if (blocks.empty()) {
        fail(number, "a header line before any path line");
      } else {
        read_field_line(content, number, blocks.back());
      }
    });
    return blocks;
  }

 private:
  [[noreturn]] void fail(std::size_t line, const std::string& reason) const {
    throw rules_error(file_, line, reason);
  }

  header_block read_path_line(std::string_view content, std::size_t line) const {
    if (std::any_of(content.begin(), content.end(), syntax::is_ows)) {
      fail(line,
           "a path line holds one pattern (header lines are indented): " + base::quote(content));
    }
    located_pattern pattern = parse_located_pattern(content, file_, line);
    return {line, std::move(pattern.host), std::move(pattern.path), {}, {}};
  }

  void read_field_line(std::string_view content, std::size_t line, header_block& block) const {
    if (content.front() == '!') {
      const std::string_view name = syntax::trim(content.substr(1));
      check_name(name, line);
      block.removals.emplace_back(name);
      return;
    }
    const std::size_t colon = content.find(':');
    if (colon == std::string_view::npos) {
      fail(line, "expected 'Name: value' or '! Name': " + base::quote(content));
    }
    const std::string_view name = content.substr(0, colon);
    const std::string_view value = syntax::trim(content.substr(colon + 1));
    check_name(name, line);
    check_value(value, line);
    block.fields.push_back({std::string(name), std::string(value)});
  }

  void check_name(std::string_view name, std::size_t line) const {
    if (name.empty() || !std::all_of(name.begin(), name.end(), syntax::is_token_char)) {
      fail(line, "not a header name: " + base::quote(name));
    }
    if (is_one_of(name, server_owned)) {
      fail(line, base::quote(name) + " is written by the server and cannot be set or removed");
    }
  }

  void check_value(std::string_view value, std::size_t line) const {
    const bool has_control = std::any_of(value.begin(), value.end(), [](char c) {
      return c != '\t' && syntax::is_control(static_cast<unsigned char>(c));
    });
    if (has_control) fail(line, "a control byte (CR, LF, NUL...) in a header value");
    if (value.size() > max_value_size) {
      fail(line, "a header value longer than " + std::to_string(max_value_size) + " bytes");
    }
  }

  std::string_view file_;
};

bool block_applies(const header_block& block, std::string_view path, std::string_view host) {
  if (!block.host.empty() && !host_matches(block.host, host)) return false;
  std::array<std::string_view, max_captures> captures;
  return match_path(block.path, path, captures);
}

bool same_name(const header_field& field, std::string_view name) {
  return syntax::iequals(field.name, name);
}

// Adds one `Name: value` to what earlier lines gave.
void add_field(std::vector<header_field>& fields, const header_field& field) {
  const auto given = std::find_if(fields.begin(), fields.end(),
                                  [&](const header_field& f) { return same_name(f, field.name); });
  if (given == fields.end() || syntax::iequals(field.name, "Set-Cookie")) {
    fields.push_back(field);
  } else if (is_one_of(field.name, single_value_fields)) {
    given->value = field.value;
  } else if (given->value.empty()) {
    given->value = field.value;
  } else if (!field.value.empty()) {
    given->value += ", " + field.value;
  }
}

}  // namespace

bool replaces_default(std::string_view name) noexcept {
  return is_one_of(name, default_fields);
}

header_rules::header_rules(std::string_view text, std::string_view file)
    : file_(file), blocks_(headers_reader(file).read(text)) {}

path_headers header_rules::for_path(std::string_view path, std::string_view host) const {
  path_headers out;
  for (const auto& block : blocks_) {
    if (!block_applies(block, path, host)) continue;
    out.lines.push_back(block.line);
    for (const auto& name : block.removals) {
      std::erase_if(out.fields, [&](const header_field& field) { return same_name(field, name); });
      const bool listed =
          std::any_of(out.removed_defaults.begin(), out.removed_defaults.end(),
                      [&](const std::string& n) { return syntax::iequals(n, name); });
      if (replaces_default(name) && !listed) out.removed_defaults.push_back(name);
    }
    for (const auto& field : block.fields) {
      add_field(out.fields, field);
      std::erase_if(out.removed_defaults,
                    [&](const std::string& name) { return syntax::iequals(name, field.name); });
      const bool too_long = std::any_of(out.fields.begin(), out.fields.end(), [](const auto& f) {
        return f.value.size() > max_value_size;
      });
      if (too_long) {
        throw rules_error(file_, block.line,
                          "the combined value of " + base::quote(field.name) + " for " +
                              base::quote(path) + " is longer than " +
                              std::to_string(max_value_size) + " bytes");
      }
    }
  }
  return out;
}

}  // namespace kawipiko::archive
