// `kawipiko serve`: command-line options -> serve::run.

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "serve/options.hpp"
#include "serve/profile.hpp"
#include "serve/server.hpp"
#include "serve/systemd.hpp"
#include "usage.hpp"

namespace kawipiko::app {

namespace {

namespace po = boost::program_options;
using std::chrono::milliseconds;

constexpr const char* usage_head =
    "usage: kawipiko serve --archive <path> [--host <name>=<archive>...] [options]\n"
    "\n"
    "Serves archives made by 'kawipiko archive' over HTTP/1.1 and HTTP/2.\n"
    "\n";

// Seconds as given, as the library's milliseconds; a positive value under a millisecond is one.
// What is not a positive number a duration can hold becomes 0, which serve::validate refuses
// naming the flag and its range.
milliseconds to_milliseconds(double seconds) {
  if (!(seconds > 0 && seconds < 1e12)) return milliseconds::zero();
  return std::max(milliseconds(1), milliseconds(static_cast<milliseconds::rep>(seconds * 1000)));
}

// `--flag <s>`: seconds, fractions allowed, into one of the limits.
po::value_semantic* stores_seconds(milliseconds& target) {
  return po::value<double>()->value_name("<s>")->notifier(
      [&target](double seconds) { target = to_milliseconds(seconds); });
}

std::string in_seconds(milliseconds duration) {
  if (duration.count() % 1000 == 0) return std::to_string(duration.count() / 1000);
  char text[32];
  std::snprintf(text, sizeof text, "%g", static_cast<double>(duration.count()) / 1000);
  return text;
}

// The flags; they store into `o`, whose values are the defaults, and `mmap` (the default mode,
// which the options do not name).
// `--host <name>=<archive>`, repeatable, into `o.hosts`.
po::value_semantic* stores_hosts(serve::options& o) {
  return po::value<std::vector<std::string>>()
      ->composing()
      ->value_name("<name>=<archive>")
      ->notifier([&o](const std::vector<std::string>& given) {
        for (const auto& text : given) {
          const auto equals = text.find('=');
          if (equals == std::string::npos) {
            throw usage_error("--host " + text + ": say which archive, as <name>=<archive>");
          }
          o.hosts.push_back({text.substr(0, equals), text.substr(equals + 1)});
        }
      });
}

// Which certificate flag a value came with.
enum class certificate_flag { bundle, public_pem, private_pem };
using certificate_flags = std::vector<std::pair<certificate_flag, std::string>>;

// `--tls-bundle`, `--tls-public`, `--tls-private`, repeatable, each value recorded with its flag
// in command-line order: Boost's store() parses the occurrences in that order, while a vector per
// flag would lose the order between two flags.
class ordered_certificate_flag final : public po::typed_value<std::vector<std::string>> {
 public:
  ordered_certificate_flag(certificate_flags& seen, certificate_flag flag)
      : typed_value(nullptr), seen_(seen), flag_(flag) {
    composing();
    value_name("<pem>");
  }

  void xparse(boost::any& store, const std::vector<std::string>& tokens) const override {
    for (const auto& token : tokens) seen_.emplace_back(flag_, token);
    typed_value::xparse(store, tokens);
  }

 private:
  certificate_flags& seen_;
  certificate_flag flag_;
};

// The certificates of the flags, in command-line order: a bundle where it is given, the n-th
// --tls-public with the n-th --tls-private where that --tls-public is given.
std::vector<serve::certificate_files> certificates_of(const certificate_flags& seen) {
  std::vector<serve::certificate_files> certificates;
  std::vector<std::size_t> pairs;  // the pairs' places in `certificates`, in order
  std::size_t privates = 0;
  for (const auto& [flag, file] : seen) {
    if (flag == certificate_flag::bundle) {
      certificates.push_back({file, {}, {}});
    } else if (flag == certificate_flag::public_pem) {
      pairs.push_back(certificates.size());
      certificates.push_back({{}, file, {}});
    } else {
      ++privates;
    }
  }
  if (privates != pairs.size()) {
    throw usage_error("--tls-public and --tls-private go in pairs, the n-th with the n-th: " +
                      std::to_string(pairs.size()) + " --tls-public, " + std::to_string(privates) +
                      " --tls-private");
  }
  std::size_t next = 0;
  for (const auto& [flag, file] : seen) {
    if (flag == certificate_flag::private_pem) certificates[pairs[next++]].private_pem = file;
  }
  return certificates;
}

po::options_description serve_flags(serve::options& o, bool& mmap, certificate_flags& seen) {
  const serve::options d;
  serve::limits& l = o.limits;
  serve::tls_settings& t = o.tls;
  serve::confinement& c = o.confine;
  return describe({
      {"archive", stores(o.archive, "<path>"),
       "the archive to serve (with --host: the default site, for hosts that match none)"},
      {"host", stores_hosts(o),
       "a virtual host: example.com, or *.example.com for any name under it, served from its "
       "own archive; repeatable"},
      {"archive-inmem", sets(o.in_memory), "read the whole archive into memory"},
      {"archive-mmap", sets(mmap), "memory-map the archive (the default)"},
      {"archive-preload", sets(o.preload), "fault every page of the archive in at start"},
      {"watch-disable", clears(o.watch),
       "reload the archive on SIGHUP only, not when a new file takes its name"},
      {"index-all", sets(o.index_paths, o.index_content), "all of the --index-* below"},
      {"index-paths", sets(o.index_paths), "an in-memory path -> entry index"},
      {"index-data-meta", sets(o.index_paths),
       "header blocks in the index (they share the path's record: same as --index-paths)"},
      {"index-data-content", sets(o.index_content),
       "bodies in memory too (implies --archive-inmem)"},
      {"bind", stores(o.bind, "<ip>:<port>"),
       "address to listen on, [::1]:8080 for IPv6" + default_is(d.bind + ", none with --bind-tls")},
      {"bind-tls", stores(t.bind_tls, "<ip>:<port>"), "address to listen on for TLS (HTTPS)"},
      {"tls-bundle", new ordered_certificate_flag(seen, certificate_flag::bundle),
       "a TLS certificate, its chain and its private key, in one PEM file; repeatable: SNI picks "
       "the certificate whose names cover the name asked for, the first given (bundle or pair) "
       "is the default"},
      {"tls-public", new ordered_certificate_flag(seen, certificate_flag::public_pem),
       "a TLS certificate and its chain (PEM), with --tls-private; repeatable, the n-th with the "
       "n-th --tls-private"},
      {"tls-private", new ordered_certificate_flag(seen, certificate_flag::private_pem),
       "a TLS certificate's private key (PEM)"},
      {"tls-self-signed", sets(t.self_signed),
       "a certificate for localhost made at start, to try TLS out"},
      {"security-headers-tls", sets(t.hsts),
       "Strict-Transport-Security: max-age=31536000 over TLS"},
      {"https-redirect", sets(t.https_redirect),
       "the plain listener answers every request with a redirect (308) to https"},
      {"processes", stores(o.processes, "<n>"), "processes" + default_is(d.processes)},
      {"threads", stores(o.threads, "<n>"), "threads per process" + default_is(d.threads)},
      {"profile-cpu", stores(o.profile_cpu, "<path>"),
       "write a CPU profile (pprof format, gperftools) at exit"},
      {"profile-mem", stores(o.profile_mem, "<path>"),
       "write heap profiles (pprof format, gperftools)"},
      {"http1-disable", clears(o.http1),
       "HTTP/2 only: ALPN offers h2 alone, the plain listener takes h2c alone (HTTP/1.x: 505)"},
      {"http2-disable", clears(o.http2), "HTTP/1.1 only: no h2 in ALPN, no h2c"},
      {"security-headers-disable", clears(o.security_headers),
       "no X-Content-Type-Options, Referrer-Policy, X-Frame-Options"},
      {"timeout-disable", clears(l.timeouts), "no header, idle or write timeouts"},
      {"header-limit", stores(l.header_bytes, "<bytes>"),
       "request header size limit; past it: 431" + default_is(d.limits.header_bytes)},
      {"header-timeout", stores_seconds(l.header_timeout),
       "time to receive a request header" + default_is(in_seconds(d.limits.header_timeout))},
      {"idle-timeout", stores_seconds(l.idle_timeout),
       "keep-alive idle time" + default_is(in_seconds(d.limits.idle_timeout))},
      {"write-timeout", stores_seconds(l.write_timeout),
       "time a response may make no progress" + default_is(in_seconds(d.limits.write_timeout))},
      {"shutdown-grace", stores_seconds(l.shutdown_grace),
       "time in-flight responses get on SIGINT/SIGTERM" +
           default_is(in_seconds(d.limits.shutdown_grace))},
      {"max-requests-per-connection", stores(l.requests_per_connection, "<n>"),
       "then the connection is closed" + default_is(d.limits.requests_per_connection)},
      {"max-connections", stores(l.connections, "<n>"),
       "open connections per process; past it new ones are closed at once (default: as many as "
       "the descriptor limit allows)"},
      {"user", stores(c.user, "<name>"),
       "once listening with the archives and certificates open, run as this user (needs root)"},
      {"group", stores(c.group, "<name>"), "with --user: this group, not the user's primary one"},
      {"sandbox", sets(c.sandbox),
       "once serving: read only the archives' and certificates' folders (Landlock) and make only "
       "the system calls serving needs (seccomp)"},
      {"seccomp-enable", sets(c.sandbox), "the same as --sandbox"},
      {"limit-memory", stores(c.memory_mib, "<MiB>"),
       "address space per process (RLIMIT_AS, RLIMIT_DATA); the archives must fit in it"},
      {"access-log", stores(o.access_log, "<path|->"),
       "append one line per answered request to this file (- for stdout); SIGUSR1 reopens it"},
      {"access-log-format", po::value<std::string>()->value_name("combined|json"),
       "the access log's lines: Apache's and nginx's combined (the default), or JSON"},
      {"metrics-bind", stores(o.metrics_bind, "<ip>:<port>"),
       "address to answer /metrics (Prometheus), /healthz and /readyz on"},
      {"debug", sets(o.debug), "log one line per request on stderr"},
      {"quiet", sets(o.quiet), "no start-up line"},
      {"help,h", nullptr, "show this help"},
  });
}

int run(int argc, char** argv) {
  serve::options opts;
  bool mmap = false;
  certificate_flags seen;
  const auto flags = serve_flags(opts, mmap, seen);
  const auto values = parse(argc, argv, flags);
  opts.tls.certificates = certificates_of(seen);
  if (values.count("help")) {
    std::cout << usage_head << flags;
    return 0;
  }
  if (mmap && opts.in_memory) {
    throw usage_error("--archive-mmap and --archive-inmem exclude each other");
  }
  // A connection cap of 0 is the library's "as many as the descriptor limit allows": only here
  // can an explicit --max-connections 0 be told apart.
  if (opts.limits.requests_per_connection == 0 ||
      (values.count("max-connections") != 0 && opts.limits.connections == 0)) {
    throw usage_error("--max-requests-per-connection and --max-connections must be at least 1");
  }
  if (values.count("access-log-format") != 0) {
    if (opts.access_log.empty()) throw usage_error("--access-log-format needs --access-log");
    const auto format = values["access-log-format"].as<std::string>();
    if (format != "combined" && format != "json") {
      throw usage_error("--access-log-format must be combined or json, not '" + format + "'");
    }
    opts.log_format =
        format == "json" ? serve::access_log_format::json : serve::access_log_format::combined;
  }
  // --bind-tls alone serves TLS only; the plain listener's default needs no --bind.
  if (values.count("bind-tls") != 0 && values.count("bind") == 0) opts.bind.clear();
  // Socket activation: the listening sockets a service manager passed, if any, take the place
  // of --bind and --bind-tls (serve::run makes them its own, after the profiler's restart).
  opts.passed = serve::passed_listeners_from_environment();
  serve::validate(opts);  // before the profiler, which may start the process again
  serve::profiler profiles(opts.profile_cpu, opts.profile_mem, argv);
  return serve::run(opts);
}

}  // namespace

int serve_command(int argc, char** argv) {
  return run_applet("kawipiko serve", [&] { return run(argc, argv); });
}

}  // namespace kawipiko::app
