#pragma once
// Watches an archive's name (inotify on its folder): a file renamed over it, or written and
// closed in place, is a new archive to load. The folder is watched rather than the file, since
// a deploy by rename replaces the file the watch would be on.

#include <string>

#include "base/unique_fd.hpp"

namespace kawipiko::serve {

class archive_watch {
 public:
  // Throws std::system_error naming the folder if it cannot be watched.
  explicit archive_watch(const std::string& archive);

  // The descriptor to wait for (readable when events are pending).
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

  // Takes the pending events; true if one was about the archive's name.
  [[nodiscard]] bool changed();

 private:
  base::unique_fd fd_;
  std::string name_;  // the archive's file name in its folder
};

}  // namespace kawipiko::serve
