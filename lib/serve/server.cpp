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
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "base/mapped_file.hpp"
#include "base/unique_fd.hpp"
#include "serve/access_log.hpp"
#include "serve/archive_watch.hpp"
#include "serve/confinement.hpp"
#include "serve/host_table.hpp"
#include "serve/metrics.hpp"
#include "serve/metrics_endpoint.hpp"
#include "serve/site.hpp"
#include "serve/site_source.hpp"
#include "serve/systemd.hpp"
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

// SIGINT and SIGTERM stop the server, SIGHUP reloads the TLS certificates and the archive, the
// lease signal says that a writer waits on the archive's read lease (base/mapped_file.hpp), and
// SIGIO that one does but the kernel's queue of real-time signals was full (it then sends SIGIO,
// naming no lease), SIGUSR1 reopens the access log.
sigset_t serve_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, base::lease_signal());
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

// Where a site's bytes are: "mmap", "in memory", or why a mapping could not be had.
std::string storage_of(const site_archive& s, const options& opts) {
  if (opts.in_memory || opts.index_content) return "in memory";
  if (s.lease_fd() >= 0) return "mmap";
  // A mapping that could not be guarded would die of a truncation: a private copy it is.
  return "in memory: no read lease on the file (" + s.lease_refused() + ")";
}

// The subject of the start-up line: "'site.cdb' (1.2 MB, 10 paths, 2 redirects, mmap) with
// 1 process x 2 threads".
std::string describe_archive(const site_archive& s, const options& opts) {
  const auto& reader = s.reader();
  std::string what = base::quote(s.path()) + " (";
  char size[32];
  std::snprintf(size, sizeof size, "%.1f MB", static_cast<double>(s.size()) / 1e6);
  what += size;
  what += ", " + std::string(reader.meta_value("paths")) + " paths, " +
          std::string(reader.meta_value("redirects")) + " redirects, build " + s.build_id() + ", " +
          storage_of(s, opts);
  if (s.indexed() > 0) what += ", " + std::to_string(s.indexed()) + " indexed";
  return what + ")";
}

// "hosts *.b.example, _default, a.example": those of an archive of host folders, else empty.
std::string hosts_brought(const site_archive& s) {
  if (!s.reader().has_host_folders()) return {};
  std::string what = "hosts ";
  for (std::size_t i = 0; i < s.reader().hosts().size(); ++i) {
    if (i > 0) what += ", ";
    what += s.reader().hosts()[i];
  }
  return what;
}

// The archive that `from` (an archive slot: -1 for --archive, else a --host's index) brought
// into `sites`.
const site_archive& archive_from(const site_set& sites, int from) {
  if (from < 0 && sites.fallback) return sites.fallback->archive();
  for (const auto& h : sites.hosts) {
    if (h.from == from) return h.answers->archive();
  }
  // Every archive brings a site: sites_of refuses one of host folders without hosts.
  throw std::logic_error("no site from archive slot " + std::to_string(from));
}

// "'site.cdb' (…) for hosts _default, a.example and host example.com: 'a.cdb' (…) with 1
// process x 2 threads".
std::string describe_sites(const site_set& sites, const options& opts) {
  std::string what;
  if (!opts.archive.empty()) {
    const auto& archive = archive_from(sites, -1);
    const auto hosts = hosts_brought(archive);
    what = describe_archive(archive, opts) + (hosts.empty() ? "" : " for " + hosts);
  }
  for (std::size_t i = 0; i < opts.hosts.size(); ++i) {
    if (!what.empty()) what += " and ";
    what += "host " + opts.hosts[i].name + ": " +
            describe_archive(archive_from(sites, static_cast<int>(i)), opts);
  }
  what += " with " + std::to_string(opts.processes) + " process" +
          (opts.processes > 1 ? "es" : "") + " x " + std::to_string(opts.threads) + " thread" +
          (opts.threads > 1 ? "s" : "");
  return what;
}

// Where the server listens (plain first, then TLS), the same in every process and thread: the
// sockets a service manager passed, or the command line's addresses, a port 0 resolved before
// any worker binds (hold_ephemeral_port).
using listen_plan = std::vector<listener_spec>;

// What the operations side lends the serving processes; each may be off.
struct operations {
  access_log_writer* access_log = nullptr;  // opened before any fork: every process appends to it
  metrics_store* metrics = nullptr;         // mapped before any fork: every process counts in it
  metrics_endpoint* endpoint = nullptr;     // in the process that answers the scrapes
};

// "'a.pem' for a.test, www.a.test; SHA-256 AA:…": what a log line says of a certificate.
std::string describe_certificate(const tls_context::certificate_info& info) {
  std::string names;
  for (const auto& name : info.names) names += (names.empty() ? "" : ", ") + name;
  return base::quote(info.source) + " for " + (names.empty() ? "no name" : names);
}

// "http://127.0.0.1:8080 and https://127.0.0.1:8443".
std::string describe_listeners(const listen_plan& plan) {
  std::string where;
  for (const auto& l : plan) {
    if (!where.empty()) where += " and ";
    where += (l.tls ? "https://" : "http://") + describe(l.endpoint);
  }
  return where;
}

// The start-up line, printed once a client may connect.
void announce(const options& opts, const std::string& what, const listen_plan& plan,
              const tls_context* tls, const operations& ops) {
  if (opts.quiet) return;
  auto where = describe_listeners(plan);
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
  } else if (tls != nullptr) {
    const auto certificates = tls->certificates();
    for (std::size_t i = 0; i < certificates.size(); ++i) {
      std::printf("kawipiko serve: TLS certificate %s%s; SHA-256 fingerprint %s\n",
                  describe_certificate(certificates[i]).c_str(),
                  i == 0 && certificates.size() > 1 ? " (the default)" : "",
                  certificates[i].fingerprint.c_str());
    }
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

// What a serving process tells whoever speaks for the server to the service manager
// (systemd.hpp): with one process, the process itself; with --processes, the supervisor, whom
// each worker process tells on a pipe. Every function is called (one that does nothing, when
// nobody is to be told); `generations` is what describe_generations() says of that process.
struct process_events {
  std::function<void(const std::string& generations)> listening;  // every worker listens
  std::function<void()> reloading;                                // a SIGHUP was taken
  std::function<void(const std::string& generations)> reloaded;   // its reloads are done
  std::function<void()> stopping;                                 // SIGINT or SIGTERM was taken
};

// A notification that did not go out gets a line (the service manager goes on waiting for it,
// up to its timeout), but serving goes on.
void warn_unsent(const service_notifier& notifier, std::error_code error) {
  if (!error) return;
  std::fprintf(stderr, "kawipiko serve: warning: cannot notify the service manager at %s: %s\n",
               base::quote(notifier.address()).c_str(), error.message().c_str());
}

// SIGHUP: new handshakes use the certificate files as they are now; open connections go on with
// the contexts they started with. A certificate that does not load keeps all the current ones.
void reload_certificates(tls_context* tls) {
  if (tls == nullptr || tls->is_self_signed()) return;
  const std::size_t count = tls->certificates().size();
  try {
    tls->reload();
    for (const auto& info : tls->certificates()) {
      std::fprintf(stderr, "kawipiko serve: TLS certificate reloaded (SHA-256 %s): %s\n",
                   info.fingerprint.c_str(), describe_certificate(info).c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kawipiko serve: warning: %s; keeping the current certificate%s\n",
                 e.what(), count > 1 ? "s" : "");
  }
}

// Every archive the server answers from: the default one (--archive; `from` -1), whose host
// folders, if it has any, bring its sites, and one per --host, each loaded, watched and reloaded
// on its own.
struct archive_slot {
  int from;
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

// Opens and validates the archive of slot `from`: the sites it brings. Throws as site does,
// naming the file.
site_set open_slot(const options& opts, int from, std::uint64_t generation = 1,
                   bool in_memory = false) {
  if (from < 0) {
    return sites_of(std::make_shared<const site_archive>(options_for(opts, opts.archive, in_memory),
                                                         generation),
                    from);
  }
  const auto& h = opts.hosts.at(static_cast<std::size_t>(from));
  site_set part;
  part.hosts.push_back(
      {parse_host_option(h.name),
       std::make_shared<const site>(options_for(opts, h.archive, in_memory), generation), from});
  return part;
}

// "generation 2 of 'site.cdb', generation 1 of host example.com ('a.cdb')": what a process
// serves, for the service manager's STATUS.
std::string describe_generations(const std::vector<archive_slot>& slots, const options& opts) {
  std::string what;
  for (const auto& slot : slots) {
    if (!what.empty()) what += ", ";
    what += "generation " + std::to_string(slot.generation) + " of ";
    if (slot.from < 0) {
      what += base::quote(slot.path);
    } else {
      what += "host " + opts.hosts[static_cast<std::size_t>(slot.from)].name + " (" +
              base::quote(slot.path) + ")";
    }
  }
  return what;
}

// Opens and validates every archive.
std::shared_ptr<const site_set> open_sites(const options& opts) {
  site_set sites;
  for (const auto& slot : archive_slots(opts)) {
    sites = replaced(sites, slot.from, open_slot(opts, slot.from));
  }
  return std::make_shared<const site_set>(std::move(sites));
}

// Opens the slot's archive anew and, once it is whole and valid, makes the sites it brings the
// live generation of that slot; one log line either way. Off the serving threads: they go on
// answering from the current generation meanwhile. False when the new file was refused.
bool reload_archive(site_source& source, const options& opts, archive_slot& slot) {
  const auto started = std::chrono::steady_clock::now();
  try {
    site_set next = open_slot(opts, slot.from, slot.generation + 1);
    const auto& archive = archive_from(next, slot.from);
    const auto build = archive.build_id();
    const auto size = archive.size();
    const auto paths = std::string(archive.reader().meta_value("paths"));
    const auto hosts = hosts_brought(archive);
    const auto shown = hosts.empty() ? hosts : ", " + hosts;
    const auto storage = storage_of(archive, opts);
    source.replace_from(slot.from, std::move(next));
    ++slot.generation;
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    std::fprintf(stderr,
                 "kawipiko serve: archive %s reloaded: generation %llu, %.1f MB, %s paths, "
                 "build %s, %s, %lld ms%s\n",
                 base::quote(slot.path).c_str(), static_cast<unsigned long long>(slot.generation),
                 static_cast<double>(size) / 1e6, paths.c_str(), build.c_str(), storage.c_str(),
                 static_cast<long long>(took.count()), shown.c_str());
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kawipiko serve: warning: %s; generation %llu goes on being served\n",
                 e.what(), static_cast<unsigned long long>(slot.generation));
    return false;
  }
}

// How long the responses under way may go on sending from a mapping whose lease is being broken:
// 5 s less than the kernel allows (room for the sweeps, 250 ms, and the closing), or half of it
// when it is short.
std::chrono::milliseconds lease_margin(std::chrono::seconds allowed) {
  if (allowed > std::chrono::seconds(10)) return allowed - std::chrono::seconds(5);
  return std::chrono::milliseconds(allowed) / 2;
}

// A writer waits on a live generation's lease: it is about to change the mapped file in place
// (cp over it, truncate, a write). The file is read into memory now, while the writer still
// waits, so that this copy is the build served so far; it becomes that slot's live generation,
// and the mapped one goes (its lease with it, letting the writer go on) once its last response
// is out. A lease of an older generation needs nothing: it goes the same way. The kernel lets the
// writer wait lease-break-time at most, then breaks the lease itself: what still sends from the
// mapping then (slow readers) is cut a little before (site::release_by). A mapping of an older
// generation can only get a writer through another link to its file, which a deploy by rename
// or in place never makes: that case is left to the write timeout.
void move_to_memory(site_source& source, const options& opts, std::vector<archive_slot>& slots,
                    int lease_fd) {
  if (lease_fd < 0) return;
  archive_slot* leased = nullptr;
  {
    const auto live = source.current();
    for (auto& slot : slots) {
      const auto& archive = archive_from(*live, slot.from);
      if (archive.lease_fd() != lease_fd) continue;
      leased = &slot;
      archive.release_by(std::chrono::steady_clock::now() + lease_margin(base::lease_break_time()));
    }
  }
  if (leased == nullptr) return;
  try {
    source.replace_from(leased->from, open_slot(opts, leased->from, leased->generation + 1, true));
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
// and every archive, a new archive reloads it, a lease break moves a leased one to memory, SIGUSR1
// reopens the access log; run() returns on SIGINT or SIGTERM. Made before the process says it
// listens, so that no change after that goes unseen. `events` hear of a SIGHUP's reloads and of
// SIGINT/SIGTERM. It keeps the archives' state in the counters (when on).
class main_loop {
 public:
  main_loop(site_source& source, const options& opts, tls_context* tls,
            const process_events& events, access_log_writer* log,
            std::optional<process_counters> counters)
      : source_(source),
        opts_(opts),
        tls_(tls),
        events_(events),
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
      if (static_cast<int>(info.ssi_signo) == base::lease_signal()) {
        move_to_memory(source_, opts_, slots_, info.ssi_fd);
        publish();
        continue;
      }
      if (info.ssi_signo == SIGIO) {
        // A lease broke while the queue of real-time signals was full: which one is not said,
        // so every live mapped archive goes to memory (a copy each; the rename deploys after
        // map again).
        for (const auto& slot : slots_) {
          const int fd = archive_from(*source_.current(), slot.from).lease_fd();
          move_to_memory(source_, opts_, slots_, fd);
        }
        publish();
        continue;
      }
      if (info.ssi_signo == SIGUSR1) {
        if (log_ != nullptr) log_->reopen();
        continue;
      }
      if (info.ssi_signo != SIGHUP) return events_.stopping();
      reload_all();
    }
  }

  [[nodiscard]] std::string generations() const { return describe_generations(slots_, opts_); }

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
      const auto& archive = archive_from(*live, slots_[i].from);
      counters_->archive_state(i, archive.generation(), archive.size(), archive.build_id());
    }
  }

  // SIGHUP: the certificates and every archive, changed or not, between reloading() and
  // reloaded(). (The workers take the new generation at their next sweep.)
  void reload_all() {
    events_.reloading();
    reload_certificates(tls_);
    for (std::size_t i = 0; i < slots_.size(); ++i) reload(i);
    events_.reloaded(generations());
  }

  site_source& source_;
  const options& opts_;
  tls_context* tls_;
  const process_events& events_;
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
                  tls_context* tls, const process_events& events, const operations& ops,
                  unsigned process) {
  std::optional<process_counters> counters;
  if (ops.metrics != nullptr) counters = ops.metrics->process(process);
  std::atomic<std::size_t> connections{0};
  const workers_list workers = start_workers(source, opts, plan, connections, tls, ops, process);
  cap_connections(workers, opts);
  main_loop waiting(source, opts, tls, events, ops.access_log, counters);
  confine(opts);  // bound, open, and no thread yet but this one: --user, --sandbox
  // Started after confine(), so that Landlock holds for it too (it covers the threads started
  // after it; seccomp, synchronized, would cover them all).
  if (ops.access_log != nullptr) ops.access_log->start(counters);
  events.listening(waiting.generations());
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
// alone speaks to the service manager (worker processes report to it on a pipe), so that READY=1
// after a SIGHUP means that every process has reloaded. It answers the scrapes (ops.endpoint),
// summing the processes' counters.
class supervisor {
 public:
  supervisor(site_source& source, const options& opts, const listen_plan& plan, tls_context* tls,
             const service_notifier& notifier, const operations& ops)
      : source_(source),
        opts_(opts),
        plan_(plan),
        tls_(tls),
        notifier_(notifier),
        ops_(ops),
        children_(opts.processes, -1),
        deaths_(opts.processes) {}

  // Starts the worker processes, prints the start-up line once they all listen, and returns the
  // exit code once they have all exited.
  int run(const std::string& what) {
    open_reports();
    start_first_generation();
    // Each worker process opened its own (with its own lease, whose breaks it is told of); this
    // one, kept, would hold back every writer of the file until its lease timed out.
    source_.replace(nullptr);
    if (ops_.endpoint != nullptr) ops_.endpoint->set_state(serving_state::ready);
    announce(opts_, what, plan_, tls_, ops_);
    warn_unsent(notifier_,
                notifier_.ready(status(describe_generations(archive_slots(opts_), opts_))));
    // Signals stay blocked here too: a signalfd takes them; the tick reaps exited children.
    const sigset_t set = serve_signals();
    signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_) base::throw_errno(errno, "cannot make a signalfd for", "the supervisor");
    while (alive_ > 0) {
      pollfd waits[] = {{signals_.get(), POLLIN, 0}, {reports_read_.get(), POLLIN, 0}};
      ::poll(waits, 2, 100);
      if ((waits[0].revents & POLLIN) != 0) take_signals();
      if ((waits[1].revents & POLLIN) != 0) take_reports();
      reap_exited();
    }
    return exit_code_;
  }

 private:
  static constexpr int max_restarts = 5;  // within...
  static constexpr auto restart_window = std::chrono::seconds(60);
  using time_point = std::chrono::steady_clock::time_point;

  void take_signals() {
    signalfd_siginfo info;
    while (::read(signals_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      const auto signal = static_cast<int>(info.ssi_signo);
      if (signal == SIGHUP) {
        begin_reload();  // each process has its own certificates and archive
      } else if (signal == SIGUSR1) {
        // Each process reopens its own; this one's is what a restarted one inherits.
        if (ops_.access_log != nullptr) ops_.access_log->reopen();
        signal_all(SIGUSR1);
      } else if (signal == base::lease_signal() || signal == SIGIO) {
        // A lease of the archive opened at start, let go already: nothing to do.
      } else if (!stopping_) {
        warn_unsent(notifier_, notifier_.stopping());
        stop_all(signal);
      }
    }
  }

  // "serving generation 2 of 'site.cdb' with 2 processes on http://…".
  std::string status(const std::string& generations) const {
    return "serving " + generations + " with " + std::to_string(opts_.processes) +
           " processes on " + describe_listeners(plan_);
  }

  // A pipe from the worker processes to the supervisor (close-on-exec: for them alone).
  static void open_pipe(base::unique_fd& read_end, base::unique_fd& write_end) {
    int ends[2] = {-1, -1};
    if (::pipe2(ends, O_CLOEXEC) != 0) {
      base::throw_errno(errno, "cannot create a pipe for", "workers");
    }
    read_end.reset(ends[0]);
    write_end.reset(ends[1]);
  }

  // ---- reloads: one round at a time --------------------------------------------------------

  // SIGHUP: RELOADING=1, the signal to every worker process, and READY=1 once each has reported
  // its reloads done (or exited). A SIGHUP taken meanwhile makes another round after this one,
  // rather than a second signal that a process could take as one with the first.
  void begin_reload() {
    if (stopping_) return signal_all(SIGHUP);
    if (!reloading_.empty()) {
      reload_again_ = true;
      return;
    }
    warn_unsent(notifier_, notifier_.reloading());
    for (const pid_t pid : children_) {
      if (pid > 0) reloading_.push_back(pid);
    }
    signal_all(SIGHUP);
    if (reloading_.empty()) end_reload();
  }

  // `pid` has reloaded (`generations`: what it serves now) or exited (empty).
  void reloaded_by(pid_t pid, const std::string& generations) {
    const auto it = std::find(reloading_.begin(), reloading_.end(), pid);
    if (it == reloading_.end()) return;
    reloading_.erase(it);
    if (!generations.empty()) reloaded_generations_ = generations;
    if (reloading_.empty()) end_reload();
  }

  void end_reload() {
    if (stopping_) return;
    warn_unsent(notifier_, notifier_.ready(status(reloaded_generations_)));
    if (std::exchange(reload_again_, false)) begin_reload();
  }

  // The pipe on which every worker process (restarted ones too) reports its reloads: one line,
  // "<pid> <generations>", in one write each (atomic within PIPE_BUF).
  void open_reports() {
    open_pipe(reports_read_, reports_write_);
    ::fcntl(reports_read_.get(), F_SETFL, O_NONBLOCK);
    reloaded_generations_ = describe_generations(archive_slots(opts_), opts_);
  }

  void report_reloaded(const std::string& generations) const {
    std::string line = std::to_string(::getpid()) + " " + generations;
    line.resize(std::min<std::size_t>(line.size(), PIPE_BUF - 1));
    line += '\n';
    (void)!::write(reports_write_.get(), line.data(), line.size());
  }

  void take_reports() {
    char chunk[4096];
    ssize_t got;
    while ((got = ::read(reports_read_.get(), chunk, sizeof chunk)) > 0) {
      reports_.append(chunk, static_cast<std::size_t>(got));
    }
    std::size_t end;
    while ((end = reports_.find('\n')) != std::string::npos) {
      const auto space = reports_.find(' ');
      if (space < end) {
        const auto pid = static_cast<pid_t>(std::atol(reports_.substr(0, space).c_str()));
        reloaded_by(pid, reports_.substr(space + 1, end - space - 1));
      }
      reports_.erase(0, end + 1);
    }
  }

  // ---- worker processes --------------------------------------------------------------------

  // The start-up line is printed once every first-generation worker process listens: a client
  // that reads it may connect at once. Each reports on a pipe; restarted ones report to no one.
  void start_first_generation() {
    open_pipe(ready_read_, ready_write_);
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

  // A worker process tells the supervisor, never the service manager.
  process_events child_events() {
    return {
        .listening =
            [this](const std::string&) {
              if (!ready_write_) return;
              const char ready = 1;
              (void)!::write(ready_write_.get(), &ready, 1);
              ready_write_.reset();
            },
        .reloading = [] {},
        .reloaded = [this](const std::string& generations) { report_reloaded(generations); },
        .stopping = [] {},
    };
  }

  [[noreturn]] void run_child(std::size_t slot) {
    int code = 1;
    try {
      ready_read_.reset();
      reports_read_.reset();
      signals_.reset();
      if (ops_.endpoint != nullptr) ops_.endpoint->close_inherited();  // the supervisor's
      operations ops = ops_;
      ops.endpoint = nullptr;
      // The archive anew: a lease of this process's own (the one inherited is the
      // supervisor's), and the build that is there now if this process was restarted.
      source_.replace(open_sites(opts_));
      code = serve_process(source_, opts_, plan_, tls_, child_events(), ops,
                           static_cast<unsigned>(slot));
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
      reloaded_by(pid, {});
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
  const service_notifier& notifier_;
  operations ops_;
  std::vector<pid_t> children_;  // by slot; -1 while none runs
  std::vector<std::vector<time_point>> deaths_;
  base::unique_fd ready_read_;
  base::unique_fd ready_write_;
  base::unique_fd signals_;
  base::unique_fd reports_read_;
  base::unique_fd reports_write_;
  std::string reports_;               // read and not yet taken: the start of a line
  std::vector<pid_t> reloading_;      // worker processes whose reload is awaited
  bool reload_again_ = false;         // a SIGHUP came during the round
  std::string reloaded_generations_;  // what the last report said
  std::size_t alive_ = 0;
  bool stopping_ = false;
  int exit_code_ = 0;
};

// Where the socket `fd` is bound (a passed one: for the start-up line and the protocol of its
// connections).
tcp::endpoint bound_endpoint(int fd) {
  tcp::endpoint bound;
  socklen_t length = static_cast<socklen_t>(bound.capacity());
  if (::getsockname(fd, bound.data(), &length) != 0) {
    base::throw_errno(errno, "cannot ask the address of socket", std::to_string(fd));
  }
  bound.resize(length);
  return bound;
}

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
  endpoint = bound_endpoint(holder.get());
  return holder;
}

template <class Number>
void check_range(Number value, Number lowest, Number highest, std::string_view flag) {
  if (value < lowest || value > highest) {
    throw base::invalid_option(std::string(flag) + " must be " + std::to_string(lowest) + " to " +
                               std::to_string(highest));
  }
}

// Whether the server has a TLS listener: --bind-tls, or under socket activation a passed
// "https" socket; and how messages name it.
bool has_tls_listener(const options& opts) {
  if (opts.passed.empty()) return !opts.tls.bind_tls.empty();
  return std::any_of(opts.passed.begin(), opts.passed.end(),
                     [](const passed_listener& l) { return l.tls; });
}

std::string_view tls_listener_name(const options& opts) {
  return opts.passed.empty() ? "--bind-tls" : "a passed 'https' socket";
}

// Socket activation: the passed sockets are the listeners, whatever --bind says (its default
// included). --bind-tls without an "https" socket would leave TLS silently unserved.
void validate_passed(const options& opts) {
  const bool plain = std::any_of(opts.passed.begin(), opts.passed.end(),
                                 [](const passed_listener& l) { return !l.tls; });
  if (!opts.tls.bind_tls.empty() && !has_tls_listener(opts)) {
    throw base::invalid_option(
        "--bind-tls: socket activation passed no 'https' socket (the passed sockets take the "
        "place of --bind and --bind-tls)");
  }
  if (opts.tls.https_redirect && !plain) {
    throw base::invalid_option("--https-redirect needs a passed 'http' socket");
  }
}

// The plain listener, the TLS one, or both on two addresses.
void validate_listeners(const options& opts) {
  const std::string& tls = opts.tls.bind_tls;
  if (opts.passed.empty() && opts.bind.empty() && tls.empty()) {
    throw base::invalid_option("--bind or --bind-tls is required");
  }
  if (!opts.http1 && !opts.http2) {
    throw base::invalid_option("--http1-disable and --http2-disable leave no protocol");
  }
  if (!opts.bind.empty()) (void)parse_bind(opts.bind);
  if (!opts.passed.empty()) {
    if (!tls.empty()) (void)parse_bind(tls, "--bind-tls");
    return validate_passed(opts);
  }
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

// Each certificate is a bundle, or a public file with its private key.
void validate_certificate(const certificate_files& files) {
  if (files.public_pem.empty() != files.private_pem.empty()) {
    throw base::invalid_option(files.public_pem.empty() ? "--tls-private needs --tls-public"
                                                        : "--tls-public needs --tls-private");
  }
  if (files.bundle.empty() == files.public_pem.empty()) {
    throw base::invalid_option(
        "a TLS certificate is either --tls-bundle or --tls-public with --tls-private");
  }
}

// A TLS listener (`listener` names it) takes its certificates from files (one or more) or makes
// its own; TLS flags need the listener.
void validate_tls(const tls_settings& tls, bool has_listener, std::string_view listener) {
  const auto any = [&](std::string certificate_files::*file) {
    return std::any_of(tls.certificates.begin(), tls.certificates.end(),
                       [&](const certificate_files& f) { return !(f.*file).empty(); });
  };
  const std::pair<bool, std::string_view> needs_listener[] = {
      {any(&certificate_files::bundle), "--tls-bundle"},
      {any(&certificate_files::public_pem), "--tls-public"},
      {any(&certificate_files::private_pem), "--tls-private"},
      {tls.self_signed, "--tls-self-signed"},
      {tls.hsts, "--security-headers-tls"},
      {tls.https_redirect, "--https-redirect"},
  };
  if (!has_listener) {
    for (const auto& [given, flag] : needs_listener) {
      if (given) throw base::invalid_option(std::string(flag) + " needs " + std::string(listener));
    }
    return;
  }
  for (const auto& files : tls.certificates) validate_certificate(files);
  if (tls.certificates.empty() && !tls.self_signed) {
    throw base::invalid_option(std::string(listener) +
                               " needs a certificate: --tls-bundle, --tls-public with "
                               "--tls-private, or --tls-self-signed");
  }
  if (!tls.certificates.empty() && tls.self_signed) {
    throw base::invalid_option(
        "--tls-self-signed excludes --tls-bundle and --tls-public with --tls-private");
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
    (void)parse_host_option(h.name);
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
  validate_tls(opts.tls, has_tls_listener(opts), tls_listener_name(opts));
  validate_listeners(opts);
  validate_metrics(opts);
  validate_confinement(opts);
}

namespace {

answer_settings answers_for(const options& opts, bool tls) {
  answer_settings answers{.security_headers = opts.security_headers};
  if (tls) answers.hsts = opts.tls.hsts;
  return answers;
}

// The listeners: the passed sockets (plain ones first), or those of the command line with their
// ports chosen (`holders` keep the ephemeral ones).
listen_plan plan_listeners(const options& opts, std::vector<base::unique_fd>& holders) {
  listen_plan plan;
  for (const bool tls : {false, true}) {
    for (const auto& p : opts.passed) {
      if (p.tls == tls) plan.push_back({bound_endpoint(p.fd), tls, answers_for(opts, tls), p.fd});
    }
  }
  if (opts.passed.empty()) {
    if (!opts.bind.empty())
      plan.push_back({parse_bind(opts.bind), false, answers_for(opts, false)});
    if (!opts.tls.bind_tls.empty()) {
      plan.push_back({parse_bind(opts.tls.bind_tls, "--bind-tls"), true, answers_for(opts, true)});
    }
    for (auto& l : plan) {
      if (l.endpoint.port() == 0) holders.push_back(hold_ephemeral_port(l.endpoint));
    }
  }
  const auto tls = std::find_if(plan.begin(), plan.end(), [](const auto& l) { return l.tls; });
  if (opts.tls.https_redirect && tls != plan.end()) {
    for (auto& l : plan) {
      if (!l.tls) l.answers.https_port = tls->endpoint.port();
    }
  }
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

// The TLS context of the plan's TLS listener, if it has one: --bind-tls, or under socket
// activation a passed "https" socket, wherever --bind-tls says.
std::unique_ptr<tls_context> make_server_tls(const options& opts, const listen_plan& plan) {
  tls_settings settings = opts.tls;
  const auto tls = std::find_if(plan.begin(), plan.end(), [](const auto& l) { return l.tls; });
  settings.bind_tls = tls != plan.end() ? describe(tls->endpoint) : std::string();
  return make_tls_context(settings, alpn_protocols(opts));
}

// The one process speaks for itself: the start-up line and READY=1 once it listens.
// With --metrics-bind, /readyz turns ready before the line: whoever reads it may ask at once.
process_events one_process_events(const service_notifier& notifier, const options& opts,
                                  const std::string& what, const listen_plan& plan,
                                  const tls_context* tls, const operations& ops) {
  const std::string on = " on " + describe_listeners(plan);
  return {
      .listening =
          [&notifier, &opts, &what, &plan, tls, &ops, on](const std::string& generations) {
            if (ops.endpoint != nullptr) ops.endpoint->set_state(serving_state::ready);
            announce(opts, what, plan, tls, ops);
            warn_unsent(notifier, notifier.ready("serving " + generations + on));
          },
      .reloading = [&notifier] { warn_unsent(notifier, notifier.reloading()); },
      .reloaded =
          [&notifier, on](const std::string& generations) {
            warn_unsent(notifier, notifier.ready("serving " + generations + on));
          },
      .stopping = [&notifier] { warn_unsent(notifier, notifier.stopping()); },
  };
}

}  // namespace

int run(const options& opts) {
  validate(opts);
  adopt_passed_listeners(opts.passed);
  prepare_confinement(opts);  // before anything is opened: --user can be, --limit-memory
  raise_descriptor_limit();
  std::vector<base::unique_fd> holders;
  const listen_plan plan = plan_listeners(opts, holders);
  // Made before any fork, so that every process shares its session-ticket keys.
  const auto tls = make_server_tls(opts, plan);
  const auto owned = open_operations(opts);
  const operations ops = owned.view();
  site_source source(open_sites(opts));
  const std::string what = describe_sites(*source.current(), opts);
  block_serve_signals();
  if (ops.endpoint != nullptr) ops.endpoint->start();
  const auto notifier = service_notifier::from_environment();
  if (opts.processes == 1) {
    return serve_process(source, opts, plan, tls.get(),
                         one_process_events(notifier, opts, what, plan, tls.get(), ops), ops, 0);
  }
  return supervisor(source, opts, plan, tls.get(), notifier, ops).run(what);
}

}  // namespace kawipiko::serve
