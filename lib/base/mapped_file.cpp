#include "base/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <utility>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace kawipiko::base {

namespace {

// A read lease on `fd`, its break signalled with lease_signal() and si_fd; empty, or why not.
std::string take_read_lease(int fd) {
  if (::fcntl(fd, F_SETSIG, lease_signal()) != 0 || ::fcntl(fd, F_SETLEASE, F_RDLCK) != 0) {
    return std::strerror(errno);
  }
  return {};
}

}  // namespace

int lease_signal() noexcept {
  return SIGRTMIN + 4;
}

std::chrono::seconds lease_break_time() noexcept {
  std::chrono::seconds seconds{45};
  if (std::FILE* f = std::fopen("/proc/sys/fs/lease-break-time", "re")) {
    long value = 0;
    if (std::fscanf(f, "%ld", &value) == 1 && value >= 0) seconds = std::chrono::seconds(value);
    std::fclose(f);
  }
  return seconds;
}

mapped_file::mapped_file(const std::string& path, mode how) : path_(path) {
  unique_fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) throw_errno(errno, "cannot open", path);
  // Before anything is read: from now on no writer can change what we read.
  bool leased = false;
  if (how == mode::leased_mmap) {
    lease_refused_ = take_read_lease(file.get());
    leased = lease_refused_.empty();
    how = leased ? mode::mmap : mode::in_memory;
  }
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
    if (leased) lease_ = std::move(file);
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
      memory_(std::move(other.memory_)),
      lease_(std::move(other.lease_)),
      lease_refused_(std::move(other.lease_refused_)) {
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
    lease_ = std::move(other.lease_);
    lease_refused_ = std::move(other.lease_refused_);
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
  lease_.reset();  // after the unmapping: the writer that waits on it may go on
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
