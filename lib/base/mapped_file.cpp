#include "base/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace kawipiko::base {

mapped_file::mapped_file(const std::string& path, mode how) : path_(path) {
  const unique_fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) throw_errno(errno, "cannot open", path);
  struct stat info {};
  if (::fstat(file.get(), &info) != 0) throw_errno(errno, "cannot stat", path);
  if (!S_ISREG(info.st_mode)) throw_error("not a regular file", path);
  size_ = static_cast<std::size_t>(info.st_size);
  if (size_ == 0) return;  // mmap refuses empty files; an empty view is fine

  if (how == mode::mmap) {
    void* address = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, file.get(), 0);
    if (address == MAP_FAILED) throw_errno(errno, "cannot map", path);
    data_ = static_cast<const std::byte*>(address);
    mapped_ = true;
    return;
  }

  memory_.resize(size_);
  std::size_t done = 0;
  while (done < size_) {
    const ssize_t got =
        ::pread(file.get(), memory_.data() + done, size_ - done, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw_errno(errno, "cannot read", path);
    if (got == 0) throw_errno(EIO, "file shrank while reading", path);
    done += static_cast<std::size_t>(got);
  }
  data_ = memory_.data();
}

mapped_file::~mapped_file() {
  release();
}

mapped_file::mapped_file(mapped_file&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)),
      memory_(std::move(other.memory_)) {
  if (!mapped_ && !memory_.empty()) data_ = memory_.data();
}

mapped_file& mapped_file::operator=(mapped_file&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
    memory_ = std::move(other.memory_);
    if (!mapped_ && !memory_.empty()) data_ = memory_.data();
  }
  return *this;
}

void mapped_file::release() noexcept {
  if (mapped_ && data_ != nullptr) {
    // const_cast: munmap's signature takes void*, the mapping itself stays read-only.
    ::munmap(const_cast<std::byte*>(data_), size_);
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  memory_.clear();
}

void mapped_file::preload() const noexcept {
  if (!mapped_ || data_ == nullptr) return;
  ::madvise(const_cast<std::byte*>(data_), size_, MADV_WILLNEED);
  const long page = ::sysconf(_SC_PAGESIZE);
  const std::size_t step = page > 0 ? static_cast<std::size_t>(page) : 4096;
  volatile std::byte sink{};
  for (std::size_t at = 0; at < size_; at += step) sink = data_[at];
  (void)sink;
}

}  // namespace kawipiko::base
