#pragma once
// --sandbox, the filesystem half: with Landlock, what a serving process may still open once it
// listens and has its archives and certificates open. Read-only access below the folders that a
// reload opens new files in (the archives', the certificates'), a few single files read later,
// write access below the folders of files it reopens for writing (the access log), and nothing
// else on the filesystem; where the kernel's Landlock has them, no TCP bind or connect and no
// signals to processes outside the sandbox either. The system-call half is syscall_filter.hpp.

#include <string>
#include <vector>

namespace kawipiko::serve {

struct sandbox_paths {
  // Read (files and listings) below each: the folders of the archives, where a deploy renames a
  // new file in, and of the certificate files, which SIGHUP re-reads.
  std::vector<std::string> readable_folders;
  // Single files read later: /proc/sys/fs/lease-break-time, read at each lease break.
  std::vector<std::string> readable_files;
  // Files made, written and read below each: the folder of a log file that the server reopens
  // (made anew after a rotation).
  std::vector<std::string> writable_folders;
};

// The paths for a server that opens `read_later` again after start (archives, certificates) and
// `written_later` (log files): the folder of each as given (absolute) and, for a symbolic link,
// the folder of the file it points to now; each folder once. Plus the lease break time.
[[nodiscard]] sandbox_paths sandbox_paths_for(const std::vector<std::string>& read_later,
                                              const std::vector<std::string>& written_later);

// The highest Landlock ABI version the kernel offers; 0 if it has no Landlock (not built in, or
// not enabled at boot).
[[nodiscard]] int landlock_abi() noexcept;

// Restricts the calling thread, and the threads and processes it starts from then on, to
// `paths`, with every filesystem right the kernel's ABI knows handled (denied unless granted
// here). Needs no_new_privs (or CAP_SYS_ADMIN). Returns the ABI version used, or 0, restricting
// nothing, if the kernel has no Landlock. Throws std::system_error naming a path that cannot be
// opened, or the step that fails.
int restrict_filesystem(const sandbox_paths& paths);

}  // namespace kawipiko::serve
