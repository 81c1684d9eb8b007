#pragma once
// The djb CDB file format's sizes and limits (cdb(5)), defined once for the reader, the writer
// and the archiver. All numbers in the file are little-endian uint32.
//
// Layout: a header of `table_count` (table position, slot count) pairs; then the records (key
// length, value length, key, value); then the hash tables of (hash, record position) slots.

#include <cstddef>
#include <cstdint>

namespace kawipiko::cdb::format {

inline constexpr std::size_t table_count = 256;
inline constexpr std::size_t header_entry_size = 8;  // table position, slot count
inline constexpr std::size_t header_size = table_count * header_entry_size;  // 2048
inline constexpr std::size_t slot_size = 8;           // hash, record position
inline constexpr std::size_t record_header_size = 8;  // key length, value length

// Every position is a uint32, so a file can have at most 4 GiB - 1 bytes.
inline constexpr std::uint64_t max_size = 0xFFFFFFFF;

}  // namespace kawipiko::cdb::format
