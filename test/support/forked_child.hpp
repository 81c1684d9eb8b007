#pragma once
// Test support: runs a function in a forked child, for what cannot be undone in the test process
// (a dropped user, a sandbox, a resource limit), with the child's stderr captured, and says how
// it ended. The function runs outside Catch: it reports what it found by its return value (the
// exit code) and lines on stderr.

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

namespace kawipiko::test {

struct child_outcome {
  int exit_code = -1;  // -1 if a signal ended it
  int signal = 0;      // the signal that ended it, or 0
  std::string errors;  // everything it wrote to stderr
};

// Forks, runs `body` (returning an exit code) in the child, waits for it. An exception out of
// `body` is written to stderr as "exception: <what>" and exits 99. Throws std::runtime_error if
// it cannot fork.
template <class Body>
child_outcome in_child(Body body) {
  int ends[2];
  if (::pipe(ends) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(ends[1], STDERR_FILENO);
    ::close(ends[0]);
    ::close(ends[1]);
    int code = 99;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "exception: %s\n", e.what());
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  ::close(ends[1]);
  child_outcome outcome;
  char chunk[4096];
  ssize_t got;
  while ((got = ::read(ends[0], chunk, sizeof chunk)) > 0) {
    outcome.errors.append(chunk, static_cast<std::size_t>(got));
  }
  ::close(ends[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
  return outcome;
}

// In a child's body: writes `what` to stderr when `holds` is false; returns whether it held.
inline bool expect(bool holds, const char* what) {
  if (!holds) std::fprintf(stderr, "expected: %s\n", what);
  return holds;
}

}  // namespace kawipiko::test
