// Fuzz target: http::normalize_target and http::encode_path. The input is a request-target.
// Checked: a buffer as long as the target never gives too_long; a shorter one gives too_long or
// the same answer; a normalized path starts with '/', has no empty, "." or ".." segment and no
// control byte; and it is a fixed point: encoded again with encode_path and normalized again, it
// comes back unchanged. The input is also read as a path that encode_path turns into a target,
// which must normalize unless the path holds a control byte (then nul or control, by the first).

#include "http/target.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

namespace http = kawipiko::http;

namespace {

struct normalized {
  http::target_error error;
  std::string path;
};

// Normalizes into a heap buffer of exactly `capacity` bytes, so that ASan sees a write past it.
normalized normalize(std::string_view target, std::size_t capacity) {
  std::vector<char> buffer(capacity);
  std::size_t size = 12345;
  const auto error = http::normalize_target(target, buffer, size);
  if (error != http::target_error::none) {
    KAWIPIKO_FUZZ_CHECK(size == 0);
    return {error, {}};
  }
  KAWIPIKO_FUZZ_CHECK(size >= 1 && size <= capacity);
  return {error, std::string(buffer.data(), size)};
}

void check_normal_form(std::string_view path) {
  KAWIPIKO_FUZZ_CHECK(path.starts_with('/'));
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    KAWIPIKO_FUZZ_CHECK(c >= 0x20 && c != 0x7f);
  }
  // Segments between slashes: none empty (no "//"), none "." or "..". The one after a final
  // '/' is the empty last segment of "/a/", which is allowed.
  std::size_t start = 1;
  while (start < path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::string_view segment = path.substr(start, slash - start);
    KAWIPIKO_FUZZ_CHECK(!segment.empty() && segment != "." && segment != "..");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view target(reinterpret_cast<const char*>(data), size);

  const auto full = normalize(target, target.size());
  KAWIPIKO_FUZZ_CHECK(full.error != http::target_error::too_long);
  for (const std::size_t capacity : {target.size() / 2, full.path.size()}) {
    const auto small = normalize(target, capacity);
    KAWIPIKO_FUZZ_CHECK(small.error == http::target_error::too_long ||
                        (small.error == full.error && small.path == full.path));
  }

  if (full.error == http::target_error::none) {
    check_normal_form(full.path);
    const std::string encoded = http::encode_path(full.path);
    const auto again = normalize(encoded, encoded.size());
    KAWIPIKO_FUZZ_CHECK(again.error == http::target_error::none && again.path == full.path);
  }

  // The input as a path: every byte encoded that needs it, so only a control byte can fail.
  const std::string encoded = http::encode_path("/" + std::string(target));
  auto expected = http::target_error::none;
  for (const char ch : target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      expected = c == 0 ? http::target_error::nul : http::target_error::control;
      break;
    }
  }
  const auto from_path = normalize(encoded, encoded.size());
  KAWIPIKO_FUZZ_CHECK(from_path.error == expected);
  if (from_path.error == http::target_error::none) check_normal_form(from_path.path);
  return 0;
}
