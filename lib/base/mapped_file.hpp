#pragma once
// A read-only view of a whole file: memory-mapped (the default) or read into memory. The bytes
// stay valid and unchanged for the object's lifetime, even if the file is renamed over or
// deleted, so an archive can be swapped on disk while a server still holds the old one.
//
// Written in place, though, a shared mapping would change under its reader, and a truncation
// would make its vanished pages kill a process that touches them (SIGBUS). So a leased_mmap
// mapping holds a read lease on its file (fcntl F_SETLEASE): another process's open of the file for
// writing, or a truncation, then waits (at most /proc/sys/fs/lease-break-time, 45 s by default)
// while this process is sent lease_signal() with si_fd = lease_fd(); its owner then stops using the
// mapping (a server moves to a copy in memory) and destroys the object, which ends the lease and
// lets the writer go on. Where no lease can be had (another process has the file open for writing,
// the file is not ours and we may not lease it, the filesystem has no leases), the file is read
// into memory instead: a private copy, which nothing done to the file can change.

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"

namespace kawipiko::base {

// The signal a lease break is told with (F_SETSIG): a real-time one, SIGRTMIN + 4 (glibc keeps the
// first few for itself), so that breaks of two leases at once (a reload of the same file holds a
// second lease on it until the first generation goes) are queued, each with its si_fd; SIGIO
// would merge them into one, and the lease it did not name would wait out lease-break-time.
[[nodiscard]] int lease_signal() noexcept;

// How long the kernel lets a writer wait on a lease (/proc/sys/fs/lease-break-time) before it
// breaks the lease itself; 45 s (the kernel's default) if that cannot be read.
[[nodiscard]] std::chrono::seconds lease_break_time() noexcept;

class mapped_file {
 public:
  enum class mode {
    mmap,
    in_memory,
    // mmap under a read lease, or in memory where no lease can be had (see above); the process
    // must take lease_signal() (a server blocks it and reads it from a signalfd), or it dies of it.
    leased_mmap,
  };

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
  // The descriptor whose lease guards the mapping, or -1 (in memory).
  [[nodiscard]] int lease_fd() const noexcept { return lease_.get(); }
  // Why a mapping was asked for and a copy in memory made instead, or empty.
  [[nodiscard]] const std::string& lease_refused() const noexcept { return lease_refused_; }

  // Touches every page so that later reads do not fault (--archive-preload); a no-op in memory.
  void preload() const noexcept;

 private:
  void release() noexcept;

  std::string path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
  std::vector<std::byte> memory_;
  unique_fd lease_;  // the file, open while its read lease guards the mapping
  std::string lease_refused_;
};

}  // namespace kawipiko::base
