#include "serve/header_lists.hpp"

#include <algorithm>
#include <array>

#include "serve/response.hpp"

namespace kawipiko::serve {

namespace {

// The names the archiver writes, whose lower-case forms need no copy.
constexpr std::array known_names = {
    field_name{"ETag", "etag"},
    field_name{"Cache-Control", "cache-control"},
    field_name{"Vary", "vary"},
    field_name{"Content-Type", "content-type"},
    field_name{"Content-Encoding", "content-encoding"},
    field_name{"Content-Length", "content-length"},
    field_name{"Location", "location"},
    field_name{"X-Content-Type-Options", "x-content-type-options"},
    field_name{"Referrer-Policy", "referrer-policy"},
    field_name{"X-Frame-Options", "x-frame-options"},
    field_name{"Strict-Transport-Security", "strict-transport-security"},
};

std::string_view trimmed(std::string_view value) noexcept {
  const auto first = value.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = value.find_last_not_of(" \t");
  return value.substr(first, last - first + 1);
}

// Calls `take(name, value, end)` for each "Name: value\r\n" line of `block`.
template <class Take>
void each_line(std::string_view block, Take&& take) {
  const char* at = block.data();
  const char* const stop = block.data() + block.size();
  while (at < stop) {
    const std::string_view rest(at, static_cast<std::size_t>(stop - at));
    const auto line_end = rest.find("\r\n");
    const auto line = rest.substr(0, line_end);
    const auto colon = line.find(':');
    const char* next = line_end == std::string_view::npos ? stop : at + line_end + 2;
    if (colon != std::string_view::npos) {
      take(line.substr(0, colon), trimmed(line.substr(colon + 1)), next);
    }
    at = next;
  }
}

}  // namespace

std::string_view header_lists::lower(std::string_view name) {
  for (const auto& known : known_names) {
    if (known.text == name) return known.lower;
  }
  std::string folded(name);
  std::transform(folded.begin(), folded.end(), folded.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return *names_.insert(std::move(folded)).first;  // a set's elements do not move
}

void header_lists::add(std::string_view block) {
  if (block.empty() || starts_.contains(block.data())) return;
  const auto first = lines_.size();
  const char* start = block.data();
  each_line(block, [&](std::string_view name, std::string_view value, const char* end) {
    starts_.emplace(start, static_cast<std::uint32_t>(lines_.size()));
    lines_.push_back({lower(name), value, end, false});
    start = end;
  });
  if (lines_.size() > first) lines_.back().last = true;
}

std::span<const header_line> header_lists::find(std::string_view lines) const noexcept {
  if (lines.empty()) return {};
  const auto found = starts_.find(lines.data());
  if (found == starts_.end()) return {};
  const char* const stop = lines.data() + lines.size();
  std::size_t i = found->second, count = 0;
  while (i + count < lines_.size() && lines_[i + count].end <= stop) {
    ++count;
    if (lines_[i + count - 1].last) break;
  }
  return std::span(lines_).subspan(i, count);
}

}  // namespace kawipiko::serve
