#include "serve/syscall_filter.hpp"

#include <linux/sockios.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace kawipiko::serve {

namespace {

using check = argument_check;

// By what needs them; README's "Privileges and sandbox" says how the list was found.
constexpr allowed_call allow_list[] = {
    // The event loops (Asio's epoll reactor, its timerfd; the main thread's poll).
    {"epoll_wait", check::any},
    {"epoll_pwait", check::any},
    {"epoll_ctl", check::any},
    {"timerfd_settime", check::any},
    {"poll", check::any},
    {"ppoll", check::any},
    // Connections: accepted, read, written, shut down, closed.
    {"accept4", check::any},
    // systemd's notify protocol: a datagram socket made for each notification (RELOADING=1,
    // READY=1, STOPPING=1), never a network one.
    {"socket", check::unix_socket},
    {"read", check::any},
    {"readv", check::any},
    {"recvfrom", check::any},
    {"recvmsg", check::any},
    {"write", check::any},
    {"writev", check::any},
    {"sendto", check::any},
    {"sendmsg", check::any},
    {"shutdown", check::any},
    {"setsockopt", check::any},
    {"getsockopt", check::any},
    {"getsockname", check::any},
    {"getpeername", check::any},
    {"ioctl", check::socket_ioctl},
    {"close", check::any},
    // Reloads: a new archive opened, mapped or read and leased; certificates re-read.
    {"openat", check::any},
    {"newfstatat", check::any},
    {"fstat", check::any},
    {"statx", check::any},
    {"lseek", check::any},
    {"pread64", check::any},
    {"fcntl", check::any},
    // Memory.
    {"brk", check::any},
    {"mmap", check::not_executable},
    {"mprotect", check::not_executable},
    {"munmap", check::any},
    {"mremap", check::any},
    {"madvise", check::any},
    // The worker threads, started once the process is confined, and their end.
    {"clone", check::threads_only},
    {"set_robust_list", check::any},
    {"rseq", check::any},
    {"futex", check::any},
    {"sched_yield", check::any},
    {"exit", check::any},
    {"exit_group", check::any},
    // Signals: the blocked set (a signalfd reads them), glibc's own, abort().
    {"rt_sigaction", check::any},
    {"rt_sigprocmask", check::any},
    {"rt_sigreturn", check::any},
    {"sigaltstack", check::any},
    {"restart_syscall", check::any},
    {"getpid", check::any},
    {"gettid", check::any},
    {"tgkill", check::own_process},
    // Time and randomness (OpenSSL), where the vDSO does not answer.
    {"clock_gettime", check::any},
    {"clock_nanosleep", check::any},
    {"nanosleep", check::any},
    {"gettimeofday", check::any},
    {"getrandom", check::any},
};

[[noreturn]] void fail(int negative_error, const std::string& step) {
  throw std::system_error(-negative_error, std::generic_category(),
                          "cannot install the sandbox's system-call filter: " + step);
}

// ---- the SIGSYS handler ----------------------------------------------------------------------

// Names by number, filled in before the filter goes in, for the handler, which may not allocate.
constexpr int named_calls = 1024;
std::array<std::array<char, 32>, named_calls> call_names{};
std::uint32_t native_arch = 0;

void name_calls() {
  native_arch = ::seccomp_arch_native();
  for (int number = 0; number < named_calls; ++number) {
    char* name = ::seccomp_syscall_resolve_num_arch(native_arch, number);
    if (name == nullptr) continue;
    std::strncpy(call_names[static_cast<std::size_t>(number)].data(), name,
                 call_names[0].size() - 1);
    std::free(name);
  }
}

// Async-signal-safe: a line formatted on the stack, one write(2), _exit.
void on_refused_call(int, siginfo_t* info, void*) {
  char line[160];
  std::size_t length = 0;
  const auto put = [&](const char* text) {
    while (*text != '\0' && length < sizeof line - 1) line[length++] = *text++;
  };
  put("kawipiko serve: error: the sandbox refused system call ");
  char digits[16];
  int count = 0;
  unsigned number = static_cast<unsigned>(info->si_syscall);
  do {
    digits[count++] = static_cast<char>('0' + number % 10);
    number /= 10;
  } while (number != 0 && count < 15);
  while (count > 0 && length < sizeof line - 1) line[length++] = digits[--count];
  const int call = info->si_syscall;
  if (info->si_arch != native_arch) {
    put(" of another architecture");
  } else if (call >= 0 && call < named_calls && call_names[static_cast<std::size_t>(call)][0]) {
    put(" (");
    put(call_names[static_cast<std::size_t>(call)].data());
    put(")");
  }
  put("; exiting\n");
  (void)!::write(STDERR_FILENO, line, length);
  ::_exit(EXIT_FAILURE);
}

void install_refusal_handler() {
  struct sigaction action {};
  action.sa_sigaction = on_refused_call;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (::sigaction(SIGSYS, &action, nullptr) != 0) fail(-errno, "sigaction(SIGSYS)");
  // A blocked SIGSYS would make the kernel kill the process without the handler: silent.
  sigset_t sys;
  sigemptyset(&sys);
  sigaddset(&sys, SIGSYS);
  ::pthread_sigmask(SIG_UNBLOCK, &sys, nullptr);
}

// ---- the filter ------------------------------------------------------------------------------

using filter = std::unique_ptr<void, void (*)(scmp_filter_ctx)>;

void add(const filter& ctx, int number, std::initializer_list<scmp_arg_cmp> conditions,
         std::uint32_t action = SCMP_ACT_ALLOW) {
  const int added =
      ::seccomp_rule_add_array(ctx.get(), action, number, static_cast<unsigned>(conditions.size()),
                               conditions.size() == 0 ? nullptr : conditions.begin());
  if (added != 0) fail(added, "rule for system call " + std::to_string(number));
}

constexpr scmp_datum_t prot_exec = PROT_EXEC;
constexpr scmp_datum_t clone_thread = CLONE_THREAD;
constexpr scmp_datum_t socket_requests[] = {FIONBIO, FIONREAD, SIOCOUTQ};

constexpr scmp_arg_cmp argument(unsigned index, scmp_compare op, scmp_datum_t a,
                                scmp_datum_t b = 0) {
  return scmp_arg_cmp{index, op, a, b};
}

void add_allowed(const filter& ctx, const allowed_call& call) {
  const std::string name(call.name);
  const int number = ::seccomp_syscall_resolve_name(name.c_str());
  if (number == __NR_SCMP_ERROR) throw std::logic_error("libseccomp does not know " + name);
  switch (call.check) {
    case check::any:
      return add(ctx, number, {});
    case check::not_executable:
      return add(ctx, number, {argument(2, SCMP_CMP_MASKED_EQ, prot_exec, 0)});
    case check::own_process:
      return add(ctx, number, {argument(0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(::getpid()))});
    case check::threads_only:
      return add(ctx, number, {argument(0, SCMP_CMP_MASKED_EQ, clone_thread, clone_thread)});
    case check::unix_socket:
      return add(ctx, number, {argument(0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(AF_UNIX))});
    case check::socket_ioctl:
      for (const scmp_datum_t request : socket_requests) {
        add(ctx, number, {argument(1, SCMP_CMP_EQ, request)});
      }
      return;
  }
}

}  // namespace

std::span<const allowed_call> allowed_system_calls() noexcept {
  return allow_list;
}

void install_syscall_filter() {
  name_calls();
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(-errno, "no_new_privs");
  filter ctx(::seccomp_init(SCMP_ACT_TRAP), ::seccomp_release);
  if (!ctx) fail(-ENOMEM, "seccomp_init");
  for (const auto& [attribute, value] :
       {std::pair{SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP}, std::pair{SCMP_FLTATR_CTL_TSYNC, 1u}}) {
    if (const int set = ::seccomp_attr_set(ctx.get(), attribute, value); set != 0) {
      fail(set, "seccomp_attr_set");
    }
  }
  for (const auto& call : allow_list) add_allowed(ctx, call);
  add(ctx, ::seccomp_syscall_resolve_name("clone3"), {}, SCMP_ACT_ERRNO(ENOSYS));
  install_refusal_handler();
  if (const int loaded = ::seccomp_load(ctx.get()); loaded != 0) fail(loaded, "seccomp_load");
}

}  // namespace kawipiko::serve
