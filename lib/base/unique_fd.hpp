#pragma once
// The one owner of a POSIX file descriptor: it closes the descriptor when destroyed and moves but
// never copies, so that every exit path (exceptions included) closes what was opened.

#include <utility>

namespace kawipiko::base {

class unique_fd {
 public:
  unique_fd() noexcept = default;
  // Takes ownership of `fd`; -1 (what a failed open() returns) holds nothing.
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  ~unique_fd() { reset(); }

  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Gives the descriptor up without closing it (-1 if none was held).
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  // Closes the descriptor held, if any, and takes `fd`. A failing close() is not reported: on
  // Linux the descriptor is gone either way, and a file whose bytes matter is fsynced before.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

}  // namespace kawipiko::base
