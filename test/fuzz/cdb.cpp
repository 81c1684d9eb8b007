// Fuzz target: cdb::reader on arbitrary images. The input is the image. Opening may throw
// std::runtime_error (a bad header) and nothing else; then every record is visited, and keys are
// looked up: the first records' keys, and a few taken from the end of the input. Every view handed
// out must lie inside the records area, every error must be one the contract names.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <vector>

#include "cdb/reader.hpp"
#include "fuzz_support.hpp"

namespace cdb = kawipiko::cdb;
using kawipiko::fuzz::is_inside;

namespace {

bool is_lookup_error(const std::error_code& error) {
  return error.category() == cdb::category() &&
         (error == cdb::errc::truncated || error == cdb::errc::bad_record);
}

std::uint32_t load_u32(std::span<const std::byte> bytes, std::size_t at) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4 && at + i < bytes.size(); ++i) {
    value |= static_cast<std::uint32_t>(bytes[at + i]) << (8 * i);
  }
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto image = std::as_bytes(std::span<const std::uint8_t>(data, size));
  std::optional<cdb::reader> reader;
  try {
    reader.emplace(image);
  } catch (const std::runtime_error& e) {
    KAWIPIKO_FUZZ_CHECK(std::string_view(e.what()).starts_with("not a valid cdb image: "));
    return 0;
  }
  KAWIPIKO_FUZZ_CHECK(reader->records_begin() == 2048 && reader->records_end() >= 2048 &&
                      reader->records_end() <= size);
  const auto records_area =
      image.subspan(reader->records_begin(), reader->records_end() - reader->records_begin());

  std::vector<std::string_view> keys;
  std::error_code error;
  std::size_t previous = 0;
  reader->for_each(
      [&](std::string_view key, std::string_view value, std::size_t value_position) {
        KAWIPIKO_FUZZ_CHECK(is_inside(key, records_area) && is_inside(value, records_area));
        KAWIPIKO_FUZZ_CHECK(value_position > previous && value_position <= size);
        KAWIPIKO_FUZZ_CHECK(reinterpret_cast<const std::byte*>(value.data()) ==
                                image.data() + value_position ||
                            value.empty());
        previous = value_position;
        if (keys.size() < 8) keys.push_back(key);
      },
      error);
  KAWIPIKO_FUZZ_CHECK(!error || is_lookup_error(error));

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  keys.push_back({});
  for (const std::size_t length : {std::size_t{1}, std::size_t{4}, std::size_t{16}}) {
    if (length <= size) keys.push_back(input.substr(size - length));
  }
  for (const auto key : keys) {
    const auto found = reader->find(key, error);
    if (error) {
      KAWIPIKO_FUZZ_CHECK(is_lookup_error(error) && !found);
    } else if (found) {
      KAWIPIKO_FUZZ_CHECK(is_inside(*found, records_area));
    }
  }

  // Slices: the whole records area, and positions and lengths read from the header.
  const std::size_t records = reader->records_end() - reader->records_begin();
  const auto all = reader->slice(reader->records_begin(), records);
  KAWIPIKO_FUZZ_CHECK(all && all->size() == records && is_inside(*all, records_area));
  KAWIPIKO_FUZZ_CHECK(!reader->slice(reader->records_begin(), records + 1));
  constexpr auto max = std::numeric_limits<std::uint64_t>::max();
  KAWIPIKO_FUZZ_CHECK(!reader->slice(max, 1) && !reader->slice(reader->records_begin(), max));
  for (std::size_t at = 0; at < 64; at += 8) {
    const auto slice = reader->slice(load_u32(image, at), load_u32(image, at + 4));
    if (slice) KAWIPIKO_FUZZ_CHECK(is_inside(*slice, records_area));
  }
  return 0;
}
