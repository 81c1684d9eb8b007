#pragma once
// The djb CDB hash: h = 5381; h = ((h << 5) + h) ^ c over the key's bytes, modulo 2^32.

#include <cstdint>
#include <string_view>

namespace kawipiko::cdb {

[[nodiscard]] constexpr std::uint32_t hash(std::string_view key) noexcept {
  std::uint32_t h = 5381;
  for (const char c : key) h = ((h << 5) + h) ^ static_cast<std::uint8_t>(c);
  return h;
}

}  // namespace kawipiko::cdb
