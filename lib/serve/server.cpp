#include "serve/server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "serve/access_log.hpp"
#include "serve/archive_watch.hpp"
#include "serve/host_table.hpp"
#include "serve/metrics.hpp"
#include "serve/metrics_endpoint.hpp"
#include "serve/site.hpp"
#include "serve/site_source.hpp"
#include "serve/tls_context.hpp"
#include "serve/worker.hpp"

namespace kawipiko::serve {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// What validate() accepts.
constexpr unsigned max_threads = 1024;
constexpr unsigned max_processes = 1024;
constexpr std::size_t min_header_bytes = 256;
constexpr std::size_t max_header_bytes = 60 * 1024;
constexpr std::chrono::seconds max_timeout{86'400};  // a day

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

// SIGINT and SIGTERM stop the server, SIGHUP reloads the TLS certificates and the archive, SIGIO
// says that a writer waits on the archive's read lease (base/mapped_file.hpp), SIGUSR1 reopens
// the access log.
sigset_t serve_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGIO);
  sigaddset(&set, SIGUSR1);
  return set;
}

// Signals are taken synchronously (a signalfd) by the main thread; every thread inherits the mask.
void block_serve_signals() {
  const sigset_t set = serve_signals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

std::string describe(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  std::string where;
  if (address.is_v6()) where += '[';
  where += address.to_string();
  if (address.is_v6()) where += ']';
  where += ':';
  where += std::to_string(endpoint.port());
  return where;
}

// The subject of the start-up line: "'site.cdb' (1.2 MB, 10 paths, 2 redirects, mmap) with
// 1 process x 2 threads".
std::string describe_site(const site& s, const std::string& path, const options& opts) {
  const auto& reader = s.reader();
  std::string what = base::quote(path) + " (";
  char size[32];
  std::snprintf(size, sizeof size, "%.1f MB", static_cast<double>(s.size()) / 1e6);
  what += size;
  what += ", " + std::string(reader.meta_value("paths")) + " paths, " +
          std::string(reader.meta_value("redirects")) + " redirects, build " + s.build_id() + ", ";
  if (opts.in_memory || opts.index_content) {
    what += "in memory";
  } else if (s.lease_fd() >= 0) {
    what += "mmap";
  } else {
    // A mapping that could not be guarded would die of a truncation: a private copy it is.
    what += "in memory: no read lease on the file (" + s.lease_refused() + ")";
  }
  if (s.indexed() > 0) what += ", " + std::to_string(s.indexed()) + " indexed";
  return what + ")";
}

// "'site.cdb' (…) and host example.com: 'a.cdb' (…) with 1 process x 2 threads".
std::string describe_sites(const site_set& sites, const options& opts) {
  std::string what;
  if (sites.fallback) what = describe_site(*sites.fallback, opts.archive, opts);
  for (std::size_t i = 0; i < sites.hosts.size(); ++i) {
    if (!what.empty()) what += " and ";
    what += "host " + opts.hosts[i].name + ": " +
            describe_site(*sites.hosts[i].answers, opts.hosts[i].archive, opts);
  }
  what += " with " + std::to_string(opts.processes) + " process" +
          (opts.processes > 1 ? "es" : "") + " x " + std::to_string(opts.threads) + " thread" +
          (opts.threads > 1 ? "s" : "");
  return what;
}

// Where the server listens (plain first, then TLS), the same in every process and thread; a port
// 0 is resolved before any worker binds (hold_ephemeral_port).
using listen_plan = std::vector<listener_spec>;

// What the operations side lends the serving processes; each may be off.
struct operations {
  access_log_writer* access_log = nullptr;  // opened before any fork: every process appends to it
  metrics_store* metrics = nullptr;         // mapped before any fork: every process counts in it
  metrics_endpoint* endpoint = nullptr;     // in the process that answers the scrapes
};

// The start-up line, printed once a client may connect.
void announce(const options& opts, const std::string& what, const listen_plan& plan,
              const tls_context* tls, const operations& ops) {
  if (opts.quiet) return;
  std::string where;
  for (const auto& l : plan) {
    if (!where.empty()) where += " and ";
    where += (l.tls ? "https://" : "http://") + describe(l.endpoint);
  }
  if (ops.endpoint != nullptr) {
    // No scheme: a reader of the line takes its first http:// for the plain listener.
    where += " (metrics on " +
             describe({parse_bind(opts.metrics_bind).address(), ops.endpoint->port()}) + ")";
  }
  std::printf("kawipiko serve: serving %s on %s\n", what.c_str(), where.c_str());
  if (tls != nullptr && tls->is_self_signed()) {
    std::printf(
        "kawipiko serve: TLS certificate: self-signed for localhost, 127.0.0.1 and ::1, made at "
        "start; SHA-256 fingerprint %s\n",
        tls->fingerprint().c_str());
  }
  std::fflush(stdout);
}

using workers_list = std::vector<std::unique_ptr<worker>>;

// One worker per thread, each with its own listening sockets; `process`: this process's place
// among the server's (for the counters).
workers_list start_workers(site_source& source, const options& opts, const listen_plan& plan,
                           std::atomic<std::size_t>& connections, const tls_context* tls,
                           const operations& ops, unsigned process) {
  tls_context_source tls_source;
  if (tls != nullptr) tls_source = [tls] { return tls->current(); };
  workers_list workers;
  for (unsigned i = 0; i < opts.threads; ++i) {
    worker_recording recording{ops.access_log, std::nullopt};
    if (ops.metrics != nullptr) recording.counters = ops.metrics->thread(process, i);
    workers.push_back(
        std::make_unique<worker>(source, opts, plan, connections, tls_source, recording));
  }
  return workers;
}

// Connections stay within the descriptor limit. Only an explicit --max-connections that the limit
// cannot honour is worth a line; by default the limit is the cap.
void cap_connections(const workers_list& workers, const options& opts) {
  const rlim_t limit = descriptor_limit();
  const std::size_t budget = descriptor_budget(limit);
  for (const auto& w : workers) w->limit_connections(budget);
  if (opts.limits.connections > budget && !opts.quiet) {  // each process: the cap is per process
    std::fprintf(stderr,
                 "kawipiko serve: note: --max-connections %zu lowered to %zu by the descriptor "
                 "limit (%llu; raise it with ulimit -n)\n",
                 opts.limits.connections, budget, static_cast<unsigned long long>(limit));
  }
}

// Called once every worker of a process listens.
using on_listening = std::function<void()>;

// SIGHUP: new handshakes use the certificate files as they are now; open connections go on with
// the context they started with. A pair that does not load keeps the current one.
void reload_certificates(tls_context* tls) {
  if (tls == nullptr || tls->is_self_signed()) return;
  try {
    tls->reload();
    std::fprintf(stderr, "kawipiko serve: TLS certificate reloaded (SHA-256 %s)\n",
                 tls->fingerprint().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kawipiko serve: warning: %s; keeping the current certificate\n",
                 e.what());
  }
}

// Every archive the server answers from: the default one (--archive; `host` -1) and one per
// --host, each loaded, watched and reloaded on its own.
struct archive_slot {
  int host;
  std::string path;
  std::uint64_t generation = 1;
};

std::vector<archive_slot> archive_slots(const options& opts) {
  std::vector<archive_slot> slots;
  if (!opts.archive.empty()) slots.push_back({-1, opts.archive});
  for (std::size_t i = 0; i < opts.hosts.size(); ++i) {
    slots.push_back({static_cast<int>(i), opts.hosts[i].archive});
  }
  return slots;
}

// The options with `path` as the archive (a site is opened from the options).
options options_for(const options& opts, const std::string& path, bool in_memory = false) {
  options one = opts;
  one.archive = path;
  if (in_memory) one.in_memory = true;
  return one;
}

// Opens and validates every archive. Throws as site does, naming the file.
std::shared_ptr<const site_set> open_sites(const options& opts) {
  auto sites = std::make_shared<site_set>();
  if (!opts.archive.empty()) sites->fallback = std::make_shared<const site>(opts);
  for (const auto& h : opts.hosts) {
    sites->hosts.push_back(
        {parse_host_pattern(h.name), std::make_shared<const site>(options_for(opts, h.archive))});
  }
  return sites;
}

const site* site_of(const site_set& sites, int host) {
  return host < 0 ? sites.fallback.get()
                  : sites.hosts.at(static_cast<std::size_t>(host)).answers.get();
}

// Opens the slot's archive anew and, once it is whole and valid, makes it the live generation of
// that slot; one log line either way. Off the serving threads: they go on answering from the
// current generation meanwhile. False when the new file was refused.
bool reload_archive(site_source& source, const options& opts, archive_slot& slot) {
  const auto started = std::chrono::steady_clock::now();
  try {
    auto next = std::make_shared<const site>(options_for(opts, slot.path), slot.generation + 1);
    const auto build = next->build_id();
    const auto size = next->size();
    const auto paths = std::string(next->reader().meta_value("paths"));
    source.replace_site(slot.host, std::move(next));
    ++slot.generation;
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    std::fprintf(stderr,
                 "kawipiko serve: archive %s reloaded: generation %llu, %.1f MB, %s paths, "
                 "build %s, %lld ms\n",
                 base::quote(slot.path).c_str(), static_cast<unsigned long long>(slot.generation),
                 static_cast<double>(size) / 1e6, paths.c_str(), build.c_str(),
                 static_cast<long long>(took.count()));
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kawipiko serve: warning: %s; generation %llu goes on being served\n",
                 e.what(), static_cast<unsigned long long>(slot.generation));
    return false;
  }
}

// A writer waits on a live generation's lease: it is about to change the mapped file in place
// (cp over it, truncate, a write). The file is read into memory now, while the writer still
// waits, so that this copy is the build served so far; it becomes that slot's live generation,
// and the mapped one goes (its lease with it, letting the writer go on) once its last response
// is out. A lease of an older generation needs nothing: it goes the same way.
void move_to_memory(site_source& source, const options& opts, std::vector<archive_slot>& slots,
                    int lease_fd) {
  if (lease_fd < 0) return;
  archive_slot* leased = nullptr;
  {
    const auto live = source.current();
    for (auto& slot : slots) {
      const auto* s = site_of(*live, slot.host);
      if (s != nullptr && s->lease_fd() == lease_fd) leased = &slot;
    }
  }
  if (leased == nullptr) return;
  try {
    source.replace_site(leased->host,
                        std::make_shared<const site>(options_for(opts, leased->path, true),
                                                     leased->generation + 1));
    ++leased->generation;
    std::fprintf(stderr,
                 "kawipiko serve: archive %s is being written in place: generation %llu is a copy "
                 "in memory of the build served so far; deploy by rename instead\n",
                 base::quote(leased->path).c_str(),
                 static_cast<unsigned long long>(leased->generation));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kawipiko serve: warning: %s; generation %llu goes on being served\n",
                 e.what(), static_cast<unsigned long long>(leased->generation));
  }
}

// The main thread of a serving process: waits for the blocked signals and, unless
// --watch-disable, for a new archive under each archive's name. SIGHUP reloads the certificates
// and every archive, a new archive reloads it, SIGIO moves a leased one to memory, SIGUSR1
// reopens the access log; run() returns on SIGINT or SIGTERM. Made before the process says it
// listens, so that no change after that goes unseen. It keeps the archives' state in the
// counters (when on).
class main_loop {
 public:
  main_loop(site_source& source, const options& opts, tls_context* tls, access_log_writer* log,
            std::optional<process_counters> counters)
      : source_(source),
        opts_(opts),
        tls_(tls),
        log_(log),
        counters_(counters),
        slots_(archive_slots(opts)) {
    const sigset_t set = serve_signals();
    signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC));
    if (!signals_) base::throw_errno(errno, "cannot make a signalfd for", opts.archive);
    watches_.resize(slots_.size());
    waits_.push_back({signals_.get(), POLLIN, 0});
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (opts.watch) watches_[i].emplace(slots_[i].path);
      waits_.push_back({watches_[i] ? watches_[i]->fd() : -1, POLLIN, 0});
    }
    publish();
  }

  void run() {
    for (;;) {
      if (::poll(waits_.data(), waits_.size(), -1) < 0) {
        if (errno == EINTR) continue;
        base::throw_errno(errno, "cannot wait for signals of", opts_.archive);
      }
      for (std::size_t i = 0; i < slots_.size(); ++i) {
        if ((waits_[i + 1].revents & POLLIN) != 0 && watches_[i]->changed()) reload(i);
      }
      if ((waits_[0].revents & POLLIN) == 0) continue;
      signalfd_siginfo info;
      if (::read(signals_.get(), &info, sizeof info) != static_cast<ssize_t>(sizeof info)) {
        continue;
      }
      if (info.ssi_signo == SIGIO) {
        move_to_memory(source_, opts_, slots_, info.ssi_fd);
        publish();
        continue;
      }
      if (info.ssi_signo == SIGUSR1) {
        if (log_ != nullptr) log_->reopen();
        continue;
      }
      if (info.ssi_signo != SIGHUP) return;
      reload_certificates(tls_);
      for (std::size_t i = 0; i < slots_.size(); ++i) reload(i);
    }
  }

 private:
  void reload(std::size_t i) {
    const bool done = reload_archive(source_, opts_, slots_[i]);
    if (!counters_) return;
    if (done) {
      counters_->reload_done(i);
    } else {
      counters_->reload_refused(i);
    }
    publish();
  }

  // The live generation of every archive, into the counters.
  void publish() {
    if (!counters_) return;
    const auto live = source_.current();
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (const auto* s = site_of(*live, slots_[i].host)) {
        counters_->archive_state(i, s->generation(), s->size(), s->build_id());
      }
    }
  }

  site_source& source_;
  const options& opts_;
  tls_context* tls_;
  access_log_writer* log_;
  std::optional<process_counters> counters_;
  std::vector<archive_slot> slots_;
  base::unique_fd signals_;
  std::vector<std::optional<archive_watch>> watches_;
  std::vector<pollfd> waits_;
};

// Runs the workers of one process (`process` among the server's) until SIGINT/SIGTERM; the
// signals must be blocked already. The access log's last lines are written before it returns.
int serve_process(site_source& source, const options& opts, const listen_plan& plan,
                  tls_context* tls, const on_listening& listening, const operations& ops,
                  unsigned process) {
  std::optional<process_counters> counters;
  if (ops.metrics != nullptr) counters = ops.metrics->process(process);
  if (ops.access_log != nullptr) ops.access_log->start(counters);
  std::atomic<std::size_t> connections{0};
  const workers_list workers = start_workers(source, opts, plan, connections, tls, ops, process);
  cap_connections(workers, opts);
  main_loop waiting(source, opts, tls, ops.access_log, counters);
  listening();
  std::vector<std::thread> threads;
  for (const auto& w : workers) threads.emplace_back([&w] { w->run(); });
  waiting.run();
  if (ops.endpoint != nullptr) ops.endpoint->set_state(serving_state::draining);
  for (const auto& w : workers) w->stop();
  for (auto& t : threads) t.join();
  if (ops.access_log != nullptr) ops.access_log->stop();
  return 0;
}

// The supervisor of several processes: forwards SIGINT/SIGTERM, SIGHUP and SIGUSR1, reports a
// worker process that died and starts it again, and gives up (exit 1) when one keeps dying. It
// answers the scrapes (ops.endpoint), summing the processes' counters.
class supervisor {
 public:
  supervisor(site_source& source, const options& opts, const listen_plan& plan, tls_context* tls,
             const operations& ops)
      : source_(source),
        opts_(opts),
        plan_(plan),
        tls_(tls),
        ops_(ops),
        children_(opts.processes, -1),
        deaths_(opts.processes) {}

  // Starts the worker processes, prints the start-up line once they all listen, and returns the
  // exit code once they have all exited.
  int run(const std::string& what) {
    start_first_generation();
    // Each worker process opened its own (with its own lease, whose breaks it is told of); this
    // one, kept, would hold back every writer of the file until its lease timed out.
    source_.replace(nullptr);
    if (ops_.endpoint != nullptr) ops_.endpoint->set_state(serving_state::ready);
    announce(opts_, what, plan_, tls_, ops_);
    // Signals stay blocked here too: sigtimedwait polls them between reaping children.
    const sigset_t set = serve_signals();
    while (alive_ > 0) {
      timespec tick{0, 100'000'000};
      const int signal = ::sigtimedwait(&set, nullptr, &tick);
      if (signal == SIGHUP) {
        signal_all(SIGHUP);  // each process has its own certificates and archive
      } else if (signal == SIGUSR1) {
        // Each process reopens its own; this one's is what a restarted one inherits.
        if (ops_.access_log != nullptr) ops_.access_log->reopen();
        signal_all(SIGUSR1);
      } else if (signal == SIGIO) {
        // A lease of the archive opened at start, let go already: nothing to do.
      } else if (signal > 0 && !stopping_) {
        stop_all(signal);
      }
      reap_exited();
    }
    return exit_code_;
  }

 private:
  static constexpr int max_restarts = 5;  // within...
  static constexpr auto restart_window = std::chrono::seconds(60);
  using time_point = std::chrono::steady_clock::time_point;

  // The start-up line is printed once every first-generation worker process listens: a client
  // that reads it may connect at once. Each reports on a pipe; restarted ones report to no one.
  void start_first_generation() {
    int ends[2] = {-1, -1};
    if (::pipe2(ends, O_CLOEXEC) != 0)
      base::throw_errno(errno, "cannot create a pipe for", "workers");
    ready_read_.reset(ends[0]);
    ready_write_.reset(ends[1]);
    for (std::size_t slot = 0; slot < children_.size(); ++slot) spawn(slot);
    ready_write_.reset();
    wait_until_listening();
    ready_read_.reset();
  }

  void wait_until_listening() const {
    std::size_t listening = 0;
    while (listening < children_.size()) {
      char byte;
      const ssize_t got = ::read(ready_read_.get(), &byte, 1);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;  // a worker failed before listening: reap_exited reports it
      ++listening;
    }
  }

  void spawn(std::size_t slot) {
    const pid_t pid = ::fork();
    if (pid < 0) base::throw_errno(errno, "cannot fork worker process for", opts_.archive);
    if (pid == 0) run_child(slot);
    children_[slot] = pid;
    ++alive_;
  }

  [[noreturn]] void run_child(std::size_t slot) {
    int code = 1;
    try {
      ready_read_.reset();
      if (ops_.endpoint != nullptr) ops_.endpoint->close_inherited();  // the supervisor's
      operations ops = ops_;
      ops.endpoint = nullptr;
      // The archive anew: a lease of this process's own (the one inherited is the
      // supervisor's), and the build that is there now if this process was restarted.
      source_.replace(open_sites(opts_));
      code = serve_process(
          source_, opts_, plan_, tls_,
          [this] {
            if (!ready_write_) return;
            const char ready = 1;
            (void)!::write(ready_write_.get(), &ready, 1);
            ready_write_.reset();
          },
          ops, static_cast<unsigned>(slot));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kawipiko serve: error: %s\n", e.what());
    }
    std::fflush(nullptr);
    ::_exit(code);
  }

  void stop_all(int signal) {
    stopping_ = true;
    if (ops_.endpoint != nullptr) ops_.endpoint->set_state(serving_state::draining);
    signal_all(signal);
  }

  void signal_all(int signal) const {
    for (const pid_t pid : children_) {
      if (pid > 0) ::kill(pid, signal);
    }
  }

  void reap_exited() {
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      const auto child = std::find(children_.begin(), children_.end(), pid);
      if (child == children_.end()) continue;
      *child = -1;
      --alive_;
      const auto slot = static_cast<std::size_t>(child - children_.begin());
      // Its connections went with it.
      if (ops_.metrics != nullptr) ops_.metrics->forget_connections(static_cast<unsigned>(slot));
      on_exit(slot, pid, status);
    }
  }

  void on_exit(std::size_t slot, pid_t pid, int status) {
    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (stopping_ && clean) return;
    if (WIFSIGNALED(status)) {
      std::fprintf(stderr, "kawipiko serve: worker process %d died (signal %d)\n", pid,
                   WTERMSIG(status));
    } else {
      std::fprintf(stderr, "kawipiko serve: worker process %d exited with %d\n", pid,
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    if (stopping_) {
      exit_code_ = 1;
    } else if (keeps_dying(slot)) {
      std::fprintf(stderr, "kawipiko serve: error: a worker process keeps dying; stopping\n");
      exit_code_ = 1;
      stop_all(SIGTERM);
    } else {
      spawn(slot);
    }
  }

  // Counts a death of the worker in `slot`: true past max_restarts within restart_window.
  bool keeps_dying(std::size_t slot) {
    auto& times = deaths_[slot];
    const auto now = std::chrono::steady_clock::now();
    times.push_back(now);
    std::erase_if(times, [&](time_point t) { return now - t > restart_window; });
    return static_cast<int>(times.size()) > max_restarts;
  }

  site_source& source_;  // each process reloads its own
  const options& opts_;
  const listen_plan& plan_;
  tls_context* tls_;
  operations ops_;
  std::vector<pid_t> children_;  // by slot; -1 while none runs
  std::vector<std::vector<time_point>> deaths_;
  base::unique_fd ready_read_;
  base::unique_fd ready_write_;
  std::size_t alive_ = 0;
  bool stopping_ = false;
  int exit_code_ = 0;
};

// Every thread of every process binds its own socket to the same port (SO_REUSEPORT). An
// ephemeral port is chosen here, once, by a socket that holds it (bound, not listening) while the
// workers bind it too: `endpoint` gets the port, the caller keeps the socket.
base::unique_fd hold_ephemeral_port(tcp::endpoint& endpoint) {
  base::unique_fd holder(::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int on = 1;
  if (!holder || ::setsockopt(holder.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
      ::bind(holder.get(), endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0) {
    base::throw_errno(errno, "cannot bind", describe(endpoint));
  }
  tcp::endpoint bound;
  socklen_t length = static_cast<socklen_t>(bound.capacity());
  ::getsockname(holder.get(), bound.data(), &length);
  bound.resize(length);
  endpoint = bound;
  return holder;
}

template <class Number>
void check_range(Number value, Number lowest, Number highest, std::string_view flag) {
  if (value < lowest || value > highest) {
    throw base::invalid_option(std::string(flag) + " must be " + std::to_string(lowest) + " to " +
                               std::to_string(highest));
  }
}

// The plain listener, the TLS one, or both on two addresses.
void validate_listeners(const options& opts) {
  const std::string& tls = opts.tls.bind_tls;
  if (opts.bind.empty() && tls.empty()) {
    throw base::invalid_option("--bind or --bind-tls is required");
  }
  if (!opts.http1 && !opts.http2) {
    throw base::invalid_option("--http1-disable and --http2-disable leave no protocol");
  }
  if (!opts.bind.empty()) (void)parse_bind(opts.bind);
  if (tls.empty()) return;
  const auto tls_endpoint = parse_bind(tls, "--bind-tls");
  if (opts.bind.empty()) {
    if (opts.tls.https_redirect) throw base::invalid_option("--https-redirect needs --bind");
    return;
  }
  if (tls_endpoint.port() != 0 && parse_bind(opts.bind) == tls_endpoint) {
    throw base::invalid_option("--bind and --bind-tls must be different addresses");
  }
}

// --metrics-bind: an address of its own.
void validate_metrics(const options& opts) {
  if (opts.metrics_bind.empty()) return;
  const auto metrics = parse_bind(opts.metrics_bind, "--metrics-bind");
  if (metrics.port() == 0) return;
  for (const auto* other : {&opts.bind, &opts.tls.bind_tls}) {
    if (!other->empty() && parse_bind(*other) == metrics) {
      throw base::invalid_option("--metrics-bind must be an address of its own");
    }
  }
}

// A TLS listener takes its certificate from exactly one source; TLS flags need the listener.
void validate_tls(const tls_settings& tls) {
  const std::pair<bool, std::string_view> needs_listener[] = {
      {!tls.bundle.empty(), "--tls-bundle"},       {!tls.public_pem.empty(), "--tls-public"},
      {!tls.private_pem.empty(), "--tls-private"}, {tls.self_signed, "--tls-self-signed"},
      {tls.hsts, "--security-headers-tls"},        {tls.https_redirect, "--https-redirect"},
  };
  if (tls.bind_tls.empty()) {
    for (const auto& [given, flag] : needs_listener) {
      if (given) throw base::invalid_option(std::string(flag) + " needs --bind-tls");
    }
    return;
  }
  if (tls.public_pem.empty() != tls.private_pem.empty()) {
    throw base::invalid_option(tls.public_pem.empty() ? "--tls-private needs --tls-public"
                                                      : "--tls-public needs --tls-private");
  }
  const int sources =
      int{!tls.bundle.empty()} + int{!tls.public_pem.empty()} + int{tls.self_signed};
  if (sources == 0) {
    throw base::invalid_option(
        "--bind-tls needs a certificate: --tls-bundle, --tls-public with --tls-private, or "
        "--tls-self-signed");
  }
  if (sources > 1) {
    throw base::invalid_option(
        "--tls-bundle, --tls-public with --tls-private, and --tls-self-signed exclude each other");
  }
}

}  // namespace

tcp::endpoint parse_bind(const std::string& text, std::string_view flag) {
  const auto fail = [&]() -> tcp::endpoint {
    throw base::invalid_option("invalid " + std::string(flag) + " '" + text +
                               "' (expected <ip>:<port>)");
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

void validate(const options& opts) {
  if (opts.archive.empty() && opts.hosts.empty()) {
    throw base::invalid_option("--archive or --host is required");
  }
  for (const auto& h : opts.hosts) {
    (void)parse_host_pattern(h.name);
    if (h.archive.empty()) throw base::invalid_option("--host " + h.name + "= names no archive");
  }
  // A profile is one process's.
  if ((!opts.profile_cpu.empty() || !opts.profile_mem.empty()) && opts.processes != 1) {
    throw base::invalid_option("--profile-cpu and --profile-mem need --processes 1");
  }
  check_range(opts.threads, 1u, max_threads, "--threads");
  check_range(opts.processes, 1u, max_processes, "--processes");
  check_range(opts.limits.header_bytes, min_header_bytes, max_header_bytes, "--header-limit");
  const std::pair<std::string_view, std::chrono::milliseconds> timeouts[] = {
      {"--header-timeout", opts.limits.header_timeout},
      {"--idle-timeout", opts.limits.idle_timeout},
      {"--write-timeout", opts.limits.write_timeout},
      {"--shutdown-grace", opts.limits.shutdown_grace},
  };
  for (const auto& [flag, timeout] : timeouts) {
    if (timeout <= std::chrono::milliseconds::zero() || timeout > max_timeout) {
      throw base::invalid_option(std::string(flag) + " must be more than 0 and at most " +
                                 std::to_string(max_timeout.count()) + " seconds");
    }
  }
  validate_tls(opts.tls);
  validate_listeners(opts);
  validate_metrics(opts);
}

namespace {

// The listeners of the command line, with their ports chosen (`holders` keep the ephemeral ones).
listen_plan plan_listeners(const options& opts, std::vector<base::unique_fd>& holders) {
  listen_plan plan;
  const answer_settings plain_answers{.security_headers = opts.security_headers};
  if (!opts.bind.empty()) plan.push_back({parse_bind(opts.bind), false, plain_answers});
  if (!opts.tls.bind_tls.empty()) {
    plan.push_back({parse_bind(opts.tls.bind_tls, "--bind-tls"),
                    true,
                    {.security_headers = opts.security_headers, .hsts = opts.tls.hsts}});
  }
  for (auto& l : plan) {
    if (l.endpoint.port() == 0) holders.push_back(hold_ephemeral_port(l.endpoint));
  }
  if (opts.tls.https_redirect && plan.size() == 2)
    plan[0].answers.https_port = plan[1].endpoint.port();
  return plan;
}

// What ALPN offers, in the server's order of preference: h2 first (RFC 9113 §3.2), as browsers
// and curl expect.
std::vector<std::string> alpn_protocols(const options& opts) {
  std::vector<std::string> protocols;
  if (opts.http2) protocols.emplace_back("h2");
  if (opts.http1) protocols.emplace_back("http/1.1");
  return protocols;
}

// The access log, the counters and their listener, as the options ask: opened, mapped and bound
// before any fork (a bad path or address is an error at start); the endpoint's thread is
// started later, once the signals are blocked.
struct operations_owner {
  std::unique_ptr<access_log_writer> access_log;
  std::unique_ptr<metrics_store> metrics;
  std::unique_ptr<metrics_endpoint> endpoint;  // last: it stops before what it reads goes

  [[nodiscard]] operations view() const noexcept {
    return {access_log.get(), metrics.get(), endpoint.get()};
  }
};

operations_owner open_operations(const options& opts) {
  operations_owner owned;
  if (!opts.access_log.empty()) {
    owned.access_log = std::make_unique<access_log_writer>(opts.access_log, opts.log_format);
  }
  if (opts.metrics_bind.empty()) return owned;
  std::vector<std::string> hosts, archives;
  for (const auto& h : opts.hosts) hosts.push_back(h.name);
  for (const auto& slot : archive_slots(opts)) archives.push_back(slot.path);
  owned.metrics = std::make_unique<metrics_store>(opts.processes, opts.threads, std::move(hosts),
                                                  std::move(archives));
  owned.endpoint = std::make_unique<metrics_endpoint>(
      parse_bind(opts.metrics_bind, "--metrics-bind"),
      [metrics = owned.metrics.get()](std::string& out) { metrics->write(out); });
  return owned;
}

}  // namespace

int run(const options& opts) {
  validate(opts);
  raise_descriptor_limit();
  std::vector<base::unique_fd> holders;
  const listen_plan plan = plan_listeners(opts, holders);
  // Made before any fork, so that every process shares its session-ticket keys.
  const auto tls = make_tls_context(opts.tls, alpn_protocols(opts));
  const auto owned = open_operations(opts);
  const operations ops = owned.view();
  site_source source(open_sites(opts));
  const std::string what = describe_sites(*source.current(), opts);
  block_serve_signals();
  if (ops.endpoint != nullptr) ops.endpoint->start();
  if (opts.processes == 1) {
    // Ready before the start-up line: whoever reads it may ask at once.
    const auto listening = [&] {
      if (ops.endpoint != nullptr) ops.endpoint->set_state(serving_state::ready);
      announce(opts, what, plan, tls.get(), ops);
    };
    return serve_process(source, opts, plan, tls.get(), listening, ops, 0);
  }
  return supervisor(source, opts, plan, tls.get(), ops).run(what);
}

}  // namespace kawipiko::serve
