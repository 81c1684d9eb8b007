#pragma once
// SHA-256 of content, in lower-case hex: the identity of a body (deduplication, rebuild reuse)
// and, cut to 128 bits, its strong ETag.

#include <string>
#include <string_view>

namespace kawipiko::archive {

// 64 hex digits. Throws std::runtime_error if the digest cannot be computed.
[[nodiscard]] std::string sha256_hex(std::string_view content);

}  // namespace kawipiko::archive
