#pragma once
// A streaming CDB builder: records are written to the file as they are added, the hash tables at
// finish(). Memory use is 16 bytes per record (hash and position), never the values.
//
// The format addresses everything with uint32: the writer refuses (throws, before writing the
// bytes) any add() or finish() that would make the file pass 4 GiB - 1, so a too-large archive is
// a clean error, never a corrupt file.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cdb/format.hpp"

namespace kawipiko::cdb {

class writer {
 public:
  // Writes to the already open, seekable `file` (positioned at 0, e.g. a fresh temp file); `name`
  // is only used in error messages. The writer does not close the file. It reserves the header at
  // once (throws std::system_error on a write error).
  //
  // `limit` is for tests: it stands in for format::max_size so that the refusal can be tested
  // without writing 4 GiB (values above format::max_size are treated as format::max_size).
  writer(std::FILE* file, std::string name, std::uint64_t limit = format::max_size);

  // Appends a record. Returns the position in the file of the record's value (its first byte),
  // which stays valid in the finished file. Throws std::runtime_error if the finished file
  // (tables included) would pass the limit, before writing anything of the record;
  // std::system_error on a write error, after which the writer is unusable.
  std::uint32_t add(std::string_view key, std::string_view value);

  // Bytes the finished file would have if finish() were called now.
  [[nodiscard]] std::uint64_t projected_size() const noexcept;

  // Writes the hash tables and the header and flushes the FILE (no fsync: the caller decides);
  // leaves the FILE positioned at its end. Throws std::system_error on a write, seek or flush
  // error. Call it once; add() may not follow it.
  void finish();

 private:
  struct slot {
    std::uint32_t hash;
    std::uint32_t position;  // of the record
  };
  void write_bytes(const void* data, std::size_t size);
  void seek(std::uint64_t position);

  std::FILE* file_;
  std::string name_;
  std::uint64_t limit_;
  std::uint64_t position_ = format::header_size;
  std::vector<slot> slots_;
  bool finished_ = false;
};

}  // namespace kawipiko::cdb
