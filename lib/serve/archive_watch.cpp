#include "serve/archive_watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.hpp"

namespace kawipiko::serve {

archive_watch::archive_watch(const std::string& archive)
    : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)),
      name_(std::filesystem::path(archive).filename().string()) {
  if (!fd_) base::throw_errno(errno, "cannot watch", archive);
  auto folder = std::filesystem::path(archive).parent_path();
  if (folder.empty()) folder = ".";
  // IN_MOVED_TO: renamed over; IN_CLOSE_WRITE: written (cp, truncate) and closed.
  if (::inotify_add_watch(fd_.get(), folder.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
    base::throw_errno(errno, "cannot watch", folder.string());
  }
}

bool archive_watch::changed() {
  bool about_archive = false;
  alignas(inotify_event) char events[16 * 1024];
  for (;;) {
    const ssize_t got = ::read(fd_.get(), events, sizeof events);
    if (got <= 0) break;  // EAGAIN: all taken
    for (ssize_t at = 0; at < got;) {
      inotify_event event;
      std::memcpy(&event, events + at, sizeof event);
      const char* name = events + at + sizeof(inotify_event);
      if (event.len > 0 && name_ == name) about_archive = true;
      at += static_cast<ssize_t>(sizeof(inotify_event) + event.len);
    }
  }
  return about_archive;
}

}  // namespace kawipiko::serve
