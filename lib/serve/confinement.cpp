#include "serve/confinement.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "base/error.hpp"
#include "serve/memory_limit.hpp"
#include "serve/privileges.hpp"
#include "serve/sandbox.hpp"
#include "serve/syscall_filter.hpp"

namespace kawipiko::serve {

namespace {

constexpr std::size_t max_memory_mib = 1 << 20;  // a TiB

std::vector<std::string> archive_paths(const options& opts) {
  std::vector<std::string> paths;
  if (!opts.archive.empty()) paths.push_back(opts.archive);
  for (const auto& h : opts.hosts) paths.push_back(h.archive);
  return paths;
}

std::vector<std::string> certificate_paths(const tls_settings& tls) {
  std::vector<std::string> paths;
  if (tls.self_signed) return paths;  // nothing to re-read on SIGHUP
  // Every certificate's files (a TLS listener of --bind-tls or passed by systemd).
  for (const auto& files : tls.certificates) {
    for (const auto* pem : {&files.bundle, &files.public_pem, &files.private_pem}) {
      if (!pem->empty()) paths.push_back(*pem);
    }
  }
  return paths;
}

std::string joined(const std::vector<std::string>& paths) {
  std::string text;
  for (const auto& path : paths) text += (text.empty() ? "" : ", ") + base::quote(path);
  return text;
}

// After the drop, a reload opens the archives as `who`: refused now rather than at the first
// deploy. A certificate it cannot read only stops SIGHUP from renewing it: a warning.
void check_still_readable(const options& opts, const identity& who) {
  for (const auto& archive : archive_paths(opts)) {
    if (::access(archive.c_str(), R_OK) == 0) continue;
    throw std::runtime_error("archive " + base::quote(archive) + " is not readable by user " +
                             base::quote(who.user) + " (" + std::strerror(errno) +
                             "): reloads open it as that user, so it must be readable by them");
  }
  for (const auto& pem : certificate_paths(opts.tls)) {
    if (::access(pem.c_str(), R_OK) == 0) continue;
    std::fprintf(stderr,
                 "kawipiko serve: warning: %s is not readable by user %s (%s): SIGHUP will keep "
                 "the current certificate\n",
                 base::quote(pem).c_str(), base::quote(who.user).c_str(), std::strerror(errno));
  }
}

std::string drop_to(const options& opts) {
  const identity who = find_identity(opts.confine.user, opts.confine.group);
  become(who);
  check_still_readable(opts, who);
  std::string groups;
  for (const gid_t g : who.groups) groups += (groups.empty() ? "" : " ") + std::to_string(g);
  return "as user " + base::quote(who.user) + " (uid " + std::to_string(who.uid) + ", gid " +
         std::to_string(who.gid) + ", groups " + (groups.empty() ? "none" : groups) + ")";
}

std::string enter_sandbox(const options& opts) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    base::throw_errno(errno, "cannot set no_new_privs for", "the sandbox");
  }
  const sandbox_paths paths = sandbox_paths_for(files_read_later(opts), files_written_later(opts));
  const int abi = restrict_filesystem(paths);
  install_syscall_filter();
  std::string what = "sandboxed: ";
  if (abi > 0) {
    what += "Landlock ABI " + std::to_string(abi) + " (reading only below " +
            joined(paths.readable_folders);
    if (!paths.writable_folders.empty())
      what += ", writing below " + joined(paths.writable_folders);
    what += "), ";
  } else {
    std::fprintf(stderr,
                 "kawipiko serve: warning: the kernel has no Landlock: the sandbox does not "
                 "restrict the filesystem, only the system calls\n");
  }
  return what + "seccomp (" + std::to_string(allowed_system_calls().size()) + " system calls)";
}

}  // namespace

std::vector<std::string> files_read_later(const options& opts) {
  auto files = archive_paths(opts);
  for (auto& pem : certificate_paths(opts.tls)) files.push_back(std::move(pem));
  return files;
}

std::vector<std::string> files_written_later(const options& opts) {
  // SIGUSR1 reopens the access log under its name (after logrotate renamed it: a new file).
  if (opts.access_log.empty() || opts.access_log == "-") return {};
  return {opts.access_log};
}

void validate_confinement(const options& opts) {
  const confinement& c = opts.confine;
  if (!c.group.empty() && c.user.empty()) throw base::invalid_option("--group needs --user");
  if (!c.user.empty()) (void)find_identity(c.user, c.group);
  if (c.sandbox && (!opts.profile_cpu.empty() || !opts.profile_mem.empty())) {
    throw base::invalid_option(
        "--sandbox and --profile-cpu or --profile-mem exclude each other (a profile is written "
        "at exit, and the sandbox lets nothing be written)");
  }
  if (c.memory_mib && (*c.memory_mib < 1 || *c.memory_mib > max_memory_mib)) {
    throw base::invalid_option("--limit-memory must be 1 to " + std::to_string(max_memory_mib) +
                               " (MiB)");
  }
}

void prepare_confinement(const options& opts) {
  const confinement& c = opts.confine;
  if (!c.user.empty()) check_can_become(find_identity(c.user, c.group));
  if (c.memory_mib) {
    check_archives_fit(archive_paths(opts), *c.memory_mib);
    limit_memory(*c.memory_mib);
  }
}

void confine(const options& opts) {
  const confinement& c = opts.confine;
  if (c.user.empty() && !c.sandbox) return;
  std::string what;
  if (!c.user.empty()) what = drop_to(opts);
  if (c.sandbox) what += (what.empty() ? "" : ", ") + enter_sandbox(opts);
  if (!opts.quiet) {
    std::fprintf(stderr, "kawipiko serve: process %d runs %s\n", static_cast<int>(::getpid()),
                 what.c_str());
  }
}

}  // namespace kawipiko::serve
