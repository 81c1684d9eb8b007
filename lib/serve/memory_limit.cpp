#include "serve/memory_limit.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <stdexcept>

#include "base/error.hpp"

namespace kawipiko::serve {

namespace {

constexpr std::size_t mebibyte = 1024 * 1024;

std::string in_megabytes(std::size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

}  // namespace

std::size_t mapped_bytes() noexcept {
  std::size_t pages = 0;
  if (std::FILE* statm = std::fopen("/proc/self/statm", "re")) {
    if (std::fscanf(statm, "%zu", &pages) != 1) pages = 0;
    std::fclose(statm);
  }
  const long page = ::sysconf(_SC_PAGESIZE);
  return pages * static_cast<std::size_t>(page > 0 ? page : 4096);
}

void check_archives_fit(const std::vector<std::string>& archives, std::size_t mib) {
  const std::size_t limit = mib * mebibyte;
  const std::size_t before = mapped_bytes();
  std::size_t taken = before;
  for (const auto& path : archives) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0 || info.st_size < 0) continue;
    const auto size = static_cast<std::size_t>(info.st_size);
    if (taken + size > limit) {
      std::string message = "archive " + base::quote(path) + " (" + in_megabytes(size) +
                            ") does not fit in --limit-memory " + std::to_string(mib) + " MiB";
      if (taken > 0 && size <= limit) {
        message += " (with the " + std::to_string((taken + mebibyte - 1) / mebibyte) +
                   " MiB the server has mapped before it)";
      }
      throw std::runtime_error(message);
    }
    taken += size;
  }
}

void limit_memory(std::size_t mib) {
  for (const int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    rlimit limit{};
    if (::getrlimit(resource, &limit) != 0) {
      base::throw_errno(errno, "cannot read", "the memory limit");
    }
    const rlim_t wanted = static_cast<rlim_t>(mib) * mebibyte;
    limit.rlim_cur = limit.rlim_max = std::min(wanted, limit.rlim_max);
    if (::setrlimit(resource, &limit) != 0) {
      base::throw_errno(errno, "cannot set --limit-memory", std::to_string(mib) + " MiB");
    }
  }
}

}  // namespace kawipiko::serve
