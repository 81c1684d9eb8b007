#pragma once
// --user, --group, --sandbox and --limit-memory as the server applies them: checked with the
// other options, prepared at start before anything is opened, and applied by each serving process
// once it listens and has its archives and certificates open, before it starts its worker
// threads. The supervisor of --processes stays as it was started: it only forks, forwards signals
// and reaps, and a worker process it starts again must bind the ports again (below 1024 that
// takes root), as with nginx's master process.

#include <string>
#include <vector>

#include "serve/options.hpp"

namespace kawipiko::serve {

// Refuses, with base::invalid_option naming the flag: --group without --user, a user or group
// that does not exist, --sandbox with a profile (written at exit, where the sandbox allows no
// writing), --limit-memory outside 1 to 1048576 MiB.
void validate_confinement(const options& opts);

// At start, before anything is opened: refuses (std::runtime_error, one line) a --user this
// process cannot become and an archive that does not fit in --limit-memory, then sets that limit
// (memory_limit.hpp).
void prepare_confinement(const options& opts);

// In a serving process that listens and has its archives and certificates open, still with one
// thread: becomes --user (privileges.hpp), checking that the archives stay readable for reloads,
// then enters the sandbox: no_new_privs, Landlock (sandbox.hpp), the seccomp filter
// (syscall_filter.hpp). One line on stderr says what now holds (not with `quiet`); a warning, if
// the kernel has no Landlock, says that the filesystem is not restricted. Throws
// std::runtime_error (one line) if any part fails: the process must not serve then.
void confine(const options& opts);

// The files a server with `opts` opens again after start: the archives (reloads), then the
// certificate files (SIGHUP).
[[nodiscard]] std::vector<std::string> files_read_later(const options& opts);

// The files it opens for writing after start: none yet. The hook for --access-log (reopened on
// SIGUSR1, made anew after a rotation): its path goes here, and the sandbox lets it be written.
[[nodiscard]] std::vector<std::string> files_written_later(const options& opts);

}  // namespace kawipiko::serve
