#include "base/unique_fd.hpp"

#include <unistd.h>

namespace kawipiko::base {

void unique_fd::reset(int fd) noexcept {
  const int old = std::exchange(fd_, fd);
  if (old >= 0 && old != fd) ::close(old);
}

}  // namespace kawipiko::base
