#include "serve/server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "base/error.hpp"
#include "serve/site.hpp"
#include "serve/worker.hpp"

namespace kawipiko::serve {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// As many descriptors as the hard limit allows: each connection is one.
void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

rlim_t descriptor_limit() {
  rlimit limit{};
  return ::getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : RLIM_INFINITY;
}

// Connections this process can hold within its descriptor limit, counting what is open now (the
// listeners, the event loops, the archive) and keeping a few spare for the rest of the process.
// Accepting past it would end in EMFILE, where the listen backlog only grows; under the cap an
// excess connection is closed at once, which the client sees straight away.
std::size_t descriptor_budget(rlim_t limit) {
  constexpr std::size_t spare = 16;
  if (limit == RLIM_INFINITY) return SIZE_MAX;
  std::size_t open = 0;
  if (DIR* folder = ::opendir("/proc/self/fd")) {
    while (const dirent* entry = ::readdir(folder)) open += entry->d_name[0] != '.';
    ::closedir(folder);
  } else {
    return SIZE_MAX;  // no /proc: rely on accept's EMFILE back-off alone
  }
  const auto total = static_cast<std::size_t>(limit);
  return total > open + spare ? total - open - spare : 1;
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

std::string describe(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

// Runs the workers of one process until SIGINT/SIGTERM; the signals must be blocked already.
// `ready_fd`, when not -1, gets one byte once every worker listens (the supervisor waits for it).
int serve_process(const site& s, const options& opts, tcp::endpoint endpoint, bool announce,
                  const std::string& what, int ready_fd = -1) {
  std::atomic<std::size_t> connections{0};
  std::vector<std::unique_ptr<worker>> workers;
  for (unsigned i = 0; i < opts.threads; ++i) {
    workers.push_back(std::make_unique<worker>(s, opts, endpoint, connections));
    // Port 0: the first worker's ephemeral port is everyone's.
    if (i == 0) endpoint = workers.front()->local_endpoint();
  }
  // Connections stay within the descriptor limit. Only an explicit --max-connections that the
  // limit cannot honour is worth a line; by default the limit is the cap.
  const rlim_t limit = descriptor_limit();
  const std::size_t budget = descriptor_budget(limit);
  for (auto& w : workers) w->limit_connections(budget);
  if (opts.limits.connections > budget && !opts.quiet) {  // each process: the cap is per process
    std::fprintf(stderr,
                 "kawipiko serve: note: --max-connections %zu lowered to %zu by the descriptor "
                 "limit (%llu; raise it with ulimit -n)\n",
                 opts.limits.connections, budget,
                 static_cast<unsigned long long>(limit));
  }
  if (ready_fd >= 0) {
    const char ready = 1;
    (void)!::write(ready_fd, &ready, 1);
    ::close(ready_fd);
  }
  if (announce && !opts.quiet) {
    std::printf("kawipiko serve: serving %s on http://%s\n", what.c_str(),
                describe(endpoint).c_str());
    std::fflush(stdout);
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

  const sigset_t set = stop_signals();
  int signal = 0;
  ::sigwait(&set, &signal);
  for (auto& w : workers) w->stop();
  for (auto& t : threads) t.join();
  return 0;
}

// The supervisor of several processes: forwards SIGINT/SIGTERM, reports a worker process that
// died and starts it again, and gives up (exit 1) when one keeps dying.
int supervise(const site& s, const options& opts, const tcp::endpoint& endpoint,
              const std::string& what) {
  constexpr int max_restarts = 5;  // within...
  constexpr auto restart_window = std::chrono::seconds(60);
  std::vector<pid_t> children(opts.processes, -1);
  std::vector<std::vector<std::chrono::steady_clock::time_point>> deaths(opts.processes);

  // The start-up line is printed once every first-generation worker process listens: a client
  // that reads it may connect at once.
  int ready[2] = {-1, -1};
  if (::pipe2(ready, O_CLOEXEC) != 0)
    base::throw_errno(errno, "cannot create a pipe for", "workers");
  const auto spawn = [&](std::size_t slot) {
    const pid_t pid = ::fork();
    if (pid < 0) base::throw_errno(errno, "cannot fork worker process for", opts.archive);
    if (pid == 0) {
      int code = 1;
      try {
        if (ready[0] >= 0) ::close(ready[0]);
        code = serve_process(s, opts, endpoint, false, what, ready[1]);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "kawipiko serve: error: %s\n", e.what());
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    children[slot] = pid;
  };
  for (std::size_t i = 0; i < children.size(); ++i) spawn(i);
  ::close(ready[1]);
  ready[1] = -1;  // restarted workers report to no one
  std::size_t listening = 0;
  while (listening < children.size()) {
    char byte;
    const ssize_t got = ::read(ready[0], &byte, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // a worker failed before listening: the loop below reports it
    ++listening;
  }
  ::close(ready[0]);
  ready[0] = -1;
  if (!opts.quiet) {
    std::printf("kawipiko serve: serving %s on http://%s\n", what.c_str(),
                describe(endpoint).c_str());
    std::fflush(stdout);
  }

  // Signals stay blocked here too: sigtimedwait polls them between reaping children.
  const sigset_t set = stop_signals();
  bool stopping = false;
  int exit_code = 0;
  std::size_t alive = children.size();
  while (alive > 0) {
    timespec tick{0, 100'000'000};
    const int signal = ::sigtimedwait(&set, nullptr, &tick);
    if (signal > 0 && !stopping) {
      stopping = true;
      for (const pid_t pid : children) {
        if (pid > 0) ::kill(pid, signal);
      }
    }
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      std::size_t slot = 0;
      while (slot < children.size() && children[slot] != pid) ++slot;
      if (slot == children.size()) continue;
      children[slot] = -1;
      --alive;
      const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (stopping && clean) continue;
      if (WIFSIGNALED(status)) {
        std::fprintf(stderr, "kawipiko serve: worker process %d died (signal %d)\n", pid,
                     WTERMSIG(status));
      } else {
        std::fprintf(stderr, "kawipiko serve: worker process %d exited with %d\n", pid,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
      }
      if (stopping) {
        exit_code = 1;
        continue;
      }
      auto& times = deaths[slot];
      const auto now = std::chrono::steady_clock::now();
      times.push_back(now);
      std::erase_if(times, [&](auto t) { return now - t > restart_window; });
      if (static_cast<int>(times.size()) > max_restarts) {
        std::fprintf(stderr, "kawipiko serve: error: a worker process keeps dying; stopping\n");
        exit_code = 1;
        stopping = true;
        for (const pid_t other : children) {
          if (other > 0) ::kill(other, SIGTERM);
        }
        continue;
      }
      spawn(slot);
      ++alive;
    }
  }
  return exit_code;
}

}  // namespace

tcp::endpoint parse_bind(const std::string& text) {
  const auto fail = [&]() -> tcp::endpoint {
    throw std::invalid_argument("invalid --bind '" + text + "' (expected <ip>:<port>)");
  };
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return fail();
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.back() != ']') return fail();
    host = host.substr(1, host.size() - 2);
  }
  unsigned long port = 0;
  for (const char c : port_text) {
    if (c < '0' || c > '9') return fail();
    port = port * 10 + static_cast<unsigned long>(c - '0');
    if (port > 65535) return fail();
  }
  boost::system::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) return fail();
  return {address, static_cast<unsigned short>(port)};
}

int run(const options& opts) {
  if (opts.threads == 0 || opts.processes == 0) {
    throw std::invalid_argument("--threads and --processes must be at least 1");
  }
  auto endpoint = parse_bind(opts.bind);
  raise_descriptor_limit();
  const site s(opts);

  const auto& reader = s.reader();
  std::string what = base::quote(opts.archive) + " (";
  char size[32];
  std::snprintf(size, sizeof size, "%.1f MB", static_cast<double>(s.size()) / 1e6);
  what += size;
  what += ", " + std::string(reader.meta_value("paths")) + " paths, " +
          std::string(reader.meta_value("redirects")) + " redirects, ";
  what += opts.in_memory || opts.index_content ? "in memory" : "mmap";
  if (s.indexed() > 0) what += ", " + std::to_string(s.indexed()) + " indexed";
  what += ") with " + std::to_string(opts.processes) + " process" +
          (opts.processes > 1 ? "es" : "") + " x " + std::to_string(opts.threads) + " thread" +
          (opts.threads > 1 ? "s" : "");

  // Signals are taken synchronously (sigwait) by the main thread; every thread inherits the mask.
  const sigset_t set = stop_signals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (opts.processes == 1) return serve_process(s, opts, endpoint, true, what);

  // Several processes share one port through SO_REUSEPORT. An ephemeral port is chosen here,
  // once, by a socket that holds it (bound, not listening) while the children bind it too.
  struct fd_holder {
    int fd = -1;
    ~fd_holder() {
      if (fd >= 0) ::close(fd);
    }
  } holder;
  if (endpoint.port() == 0) {
    holder.fd = ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int on = 1;
    if (holder.fd < 0 || ::setsockopt(holder.fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
        ::bind(holder.fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0) {
      base::throw_errno(errno, "cannot bind", describe(endpoint));
    }
    tcp::endpoint bound;
    socklen_t length = static_cast<socklen_t>(bound.capacity());
    ::getsockname(holder.fd, bound.data(), &length);
    bound.resize(length);
    endpoint = bound;
  }
  return supervise(s, opts, endpoint, what);
}

}  // namespace kawipiko::serve
