#pragma once
// A read-only view of a whole file: memory-mapped (the default) or read into memory. The bytes
// stay valid and unchanged for the object's lifetime, even if the file is renamed over or
// deleted, so an archive can be swapped on disk while a server still holds the old one.

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace kawipiko::base {

class mapped_file {
 public:
  enum class mode { mmap, in_memory };

  mapped_file() = default;
  // Opens and maps (or reads) `path`. Throws std::system_error naming the operation and path.
  explicit mapped_file(const std::string& path, mode how = mode::mmap);
  ~mapped_file();

  mapped_file(mapped_file&& other) noexcept;
  mapped_file& operator=(mapped_file&& other) noexcept;
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  // Touches every page so that later reads do not fault (--archive-preload); a no-op in memory.
  void preload() const noexcept;

 private:
  void release() noexcept;

  std::string path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
  std::vector<std::byte> memory_;
};

}  // namespace kawipiko::base
