#include "base/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/error.hpp"
#include "base/unique_fd.hpp"

namespace kawipiko::base {

atomic_file::atomic_file(const std::string& target) : target_(target) {
  const auto slash = target.rfind('/');
  folder_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : target.substr(0, slash));
  const std::string name = slash == std::string::npos ? target : target.substr(slash + 1);
  // A dotfile: a build whose target sits inside its own sources never publishes it.
  path_ = (folder_ == "/" ? "" : folder_) + "/." + name + ".tmp-XXXXXX";
  unique_fd fd(::mkstemp(path_.data()));
  if (!fd) throw_errno(errno, "cannot create a temp file beside", target);
  file_ = ::fdopen(fd.get(), "wb");
  if (file_ == nullptr) {
    const int error = errno;
    ::unlink(path_.c_str());
    throw_errno(error, "cannot open temp file", path_);
  }
  (void)fd.release();  // the FILE owns it now
}

atomic_file::~atomic_file() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) ::unlink(path_.c_str());
}

void atomic_file::commit() {
  if (std::fflush(file_) != 0) throw_errno(errno, "cannot write", target_);
  const int fd = ::fileno(file_);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(fd, 0666 & ~mask) != 0) throw_errno(errno, "cannot set permissions of", path_);
  if (::fsync(fd) != 0) throw_errno(errno, "cannot sync", target_);
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) throw_errno(errno, "cannot write", target_);
  if (::rename(path_.c_str(), target_.c_str()) != 0) throw_errno(errno, "cannot replace", target_);
  committed_ = true;
  const unique_fd folder(::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (folder) ::fsync(folder.get());  // best effort: the rename is done either way
}

}  // namespace kawipiko::base
