#pragma once
// --sandbox, the system-call half: a seccomp allow-list (libseccomp) of the calls a serving
// process makes once it serves: the event loops, HTTP and TLS over accepted sockets, reloads
// (open, map or read, lease an archive; re-read certificates), starting its worker threads, and
// shutting down. It was found by running the end-to-end tests under strace (README: "Privileges
// and sandbox"). No socket, bind, connect, listen or execve; clone only for threads, mmap and
// mprotect never executable.
//
// Anything else raises SIGSYS (SCMP_ACT_TRAP), whose handler writes one line naming the call
// ("kawipiko serve: error: the sandbox refused system call 101 (ptrace); exiting") and ends the
// process with exit 1. Never silent, unlike SCMP_ACT_KILL_PROCESS (a bare signal 31) or
// SCMP_ACT_ERRNO (a failure its caller may ignore or misreport, leaving a server that half works).
// The one exception: clone3 fails with ENOSYS, which glibc answers by using clone, so that
// threads can be started and their flags checked (clone3 passes them in memory, out of a
// filter's sight).

#include <span>
#include <string_view>

namespace kawipiko::serve {

// Which arguments a call may have.
enum class argument_check {
  any,
  not_executable,  // mmap, mprotect: PROT_EXEC clear
  own_process,     // tgkill: this process's threads only (abort, glibc's internal signals)
  threads_only,    // clone: CLONE_THREAD set (a thread, never a new process)
  socket_ioctl,    // ioctl: FIONBIO, FIONREAD, SIOCOUTQ
  unix_socket,     // socket: AF_UNIX only (a notification to the service manager, systemd.hpp)
};

struct allowed_call {
  std::string_view name;  // as libseccomp spells it
  argument_check check;
};

// The allow-list. Names that the machine's architecture lacks are skipped by the filter.
[[nodiscard]] std::span<const allowed_call> allowed_system_calls() noexcept;

// Installs the filter and its SIGSYS handler on the calling thread, those it starts from then on
// and (TSYNC) those already running. Sets no_new_privs if it is not set. Throws std::system_error
// naming the step that fails, or std::logic_error for a name libseccomp does not know.
void install_syscall_filter();

}  // namespace kawipiko::serve
