#include "serve/syscall_filter.hpp"

#include <seccomp.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>

#include "support/forked_child.hpp"
#include "support/skip.hpp"

namespace serve = kawipiko::serve;
using kawipiko::test::in_child;

namespace {

bool allowed(std::string_view name) {
  const auto calls = serve::allowed_system_calls();
  return std::any_of(calls.begin(), calls.end(),
                     [&](const serve::allowed_call& call) { return call.name == name; });
}

std::string line_for(long number, const char* name) {
  return "kawipiko serve: error: the sandbox refused system call " + std::to_string(number) + " (" +
         name + "); exiting\n";
}

// The value of a field of /proc/self/status ("Seccomp": 2 under a filter).
std::string status_field(const std::string& name) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with(name + ":"))
      return line.substr(line.find_first_not_of(" \t", name.size() + 1));
  }
  return {};
}

}  // namespace

TEST_CASE("the allow-list has every call that serving, reloading and stopping make", "[serve]") {
  for (const char* name : {"epoll_wait",     "epoll_ctl",    "timerfd_settime",
                           "poll",           "accept4",      "read",
                           "recvfrom",       "recvmsg",      "write",
                           "writev",         "shutdown",     "setsockopt",
                           "ioctl",          "close",        "openat",
                           "newfstatat",     "pread64",      "fcntl",
                           "mmap",           "munmap",       "mprotect",
                           "madvise",        "brk",          "clone",
                           "futex",          "rseq",         "set_robust_list",
                           "exit",           "exit_group",   "rt_sigreturn",
                           "rt_sigprocmask", "rt_sigaction", "getrandom",
                           "clock_gettime",  "tgkill"}) {
    INFO(name);
    CHECK(allowed(name));
  }
}

TEST_CASE("the allow-list has no call that opens a way out of the sandbox", "[serve]") {
  for (const char* name : {"execve",
                           "execveat",
                           "fork",
                           "vfork",
                           "clone3",
                           "bind",
                           "connect",
                           "listen",
                           "ptrace",
                           "process_vm_writev",
                           "mount",
                           "umount2",
                           "chroot",
                           "unshare",
                           "setns",
                           "setuid",
                           "setgid",
                           "setgroups",
                           "setresuid",
                           "prctl",
                           "seccomp",
                           "landlock_restrict_self",
                           "kill",
                           "bpf",
                           "io_uring_setup",
                           "userfaultfd",
                           "perf_event_open",
                           "init_module"}) {
    INFO(name);
    CHECK_FALSE(allowed(name));
  }
}

TEST_CASE("every name in the allow-list is one libseccomp knows", "[serve]") {
  for (const auto& call : serve::allowed_system_calls()) {
    INFO(call.name);
    CHECK(::seccomp_syscall_resolve_name(std::string(call.name).c_str()) != __NR_SCMP_ERROR);
  }
}

TEST_CASE("a call outside the allow-list ends the process with one line naming it", "[serve]") {
  const auto outcome = in_child([] {
    serve::install_syscall_filter();
    ::syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
    return 0;  // not reached
  });
  CHECK(outcome.exit_code == 1);
  CHECK(outcome.errors == line_for(SYS_ptrace, "ptrace"));
}

TEST_CASE("under the filter a Unix socket can be made (systemd's notify) and a network one not",
          "[serve]") {
  const auto unix_socket = in_child([] {
    serve::install_syscall_filter();
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return fd >= 0 ? 0 : 2;
  });
  INFO(unix_socket.errors);
  CHECK(unix_socket.exit_code == 0);
  const auto network_socket = in_child([] {
    serve::install_syscall_filter();
    (void)::socket(AF_INET, SOCK_STREAM, 0);
    return 0;  // not reached
  });
  CHECK(network_socket.exit_code == 1);
  CHECK(network_socket.errors == line_for(SYS_socket, "socket"));
}

TEST_CASE("under the filter and no_new_privs threads start and run", "[serve][unsanitized]") {
#if defined(KAWIPIKO_SANITIZED)
  // ASan's thread start calls pipe2 and sched_getaffinity (README: "Privileges and sandbox").
  KAWIPIKO_SKIP("a sanitized binary makes calls the filter refuses when a thread starts");
#endif
  const auto threads = in_child([] {
    serve::install_syscall_filter();
    if (status_field("Seccomp") != "2" || status_field("NoNewPrivs") != "1") return 2;
    int ran = 0;
    std::thread([&] { ran = 1; }).join();
    return ran == 1 ? 0 : 3;
  });
  INFO(threads.errors);
  CHECK(threads.exit_code == 0);
}

TEST_CASE("under the filter no process is started and no memory made executable", "[serve]") {
  const auto forked = in_child([] {
    serve::install_syscall_filter();
    (void)::fork();
    return 0;
  });
  CHECK(forked.exit_code == 1);
  CHECK(forked.errors == line_for(SYS_clone, "clone"));
  const auto executable = in_child([] {
    serve::install_syscall_filter();
    (void)::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return 0;
  });
  CHECK(executable.exit_code == 1);
  CHECK(executable.errors == line_for(SYS_mmap, "mmap"));
}
