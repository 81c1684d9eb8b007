// `kawipiko serve`: command-line options -> serve::run.

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>

#include "commands.hpp"
#include "serve/options.hpp"
#include "serve/profile.hpp"
#include "serve/server.hpp"

namespace kawipiko::app {

namespace {

namespace po = boost::program_options;

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int run(int argc, char** argv) {
  serve::options opts;
  bool mmap = false, index_all = false, index_meta = false, timeout_disable = false;
  bool security_disable = false;
  double header_timeout = 10, idle_timeout = 60, write_timeout = 30, grace = 10;

  po::options_description flags("options");
  flags.add_options()("archive", po::value(&opts.archive)->value_name("<path>"),
                      "the archive to serve")("archive-inmem", po::bool_switch(&opts.in_memory),
                                              "read the whole archive into memory")(
      "archive-mmap", po::bool_switch(&mmap), "memory-map the archive (the default)")(
      "archive-preload", po::bool_switch(&opts.preload),
      "fault every page of the archive in at start")("index-all", po::bool_switch(&index_all),
                                                     "all of the --index-* below")(
      "index-paths", po::bool_switch(&opts.index_paths), "an in-memory path -> entry index")(
      "index-data-meta", po::bool_switch(&index_meta),
      "header blocks in the index (they share the path's record: same as --index-paths)")(
      "index-data-content", po::bool_switch(&opts.index_content),
      "bodies in memory too (implies --archive-inmem)")(
      "bind", po::value(&opts.bind)->value_name("<ip>:<port>"),
      "address to listen on (default 127.0.0.1:8080; [::1]:8080 for IPv6)")(
      "processes", po::value(&opts.processes)->value_name("<n>"), "processes (default 1)")(
      "threads", po::value(&opts.threads)->value_name("<n>"), "threads per process (default 1)")(
      "profile-cpu", po::value(&opts.profile_cpu)->value_name("<path>"),
      "write a CPU profile (pprof format, gperftools) at exit")(
      "profile-mem", po::value(&opts.profile_mem)->value_name("<path>"),
      "write heap profiles (pprof format, gperftools)")(
      "security-headers-disable", po::bool_switch(&security_disable),
      "no X-Content-Type-Options, Referrer-Policy, X-Frame-Options")(
      "timeout-disable", po::bool_switch(&timeout_disable), "no header, idle or write timeouts")(
      "header-limit", po::value(&opts.limits.header_bytes)->value_name("<bytes>"),
      "request header size limit; past it: 431 (default 16384)")(
      "header-timeout", po::value(&header_timeout)->value_name("<s>"),
      "time to receive a request header (default 10)")("idle-timeout",
                                                       po::value(&idle_timeout)->value_name("<s>"),
                                                       "keep-alive idle time (default 60)")(
      "write-timeout", po::value(&write_timeout)->value_name("<s>"),
      "time a response may make no progress (default 30)")(
      "shutdown-grace", po::value(&grace)->value_name("<s>"),
      "time in-flight responses get on SIGINT/SIGTERM (default 10)")(
      "max-requests-per-connection",
      po::value(&opts.limits.requests_per_connection)->value_name("<n>"),
      "then the connection is closed (default 100000)")(
      "max-connections", po::value(&opts.limits.connections)->value_name("<n>"),
      "open connections per process; past it new ones are closed at once (default: as many as "
      "the descriptor limit allows)")(
      "debug", po::bool_switch(&opts.debug), "log one line per request on stderr")(
      "quiet", po::bool_switch(&opts.quiet), "no start-up line")("help,h", "show this help");

  po::variables_map values;
  try {
    po::store(po::command_line_parser(argc, argv).options(flags).run(), values);
    po::notify(values);
  } catch (const po::error& e) {
    throw usage_error(e.what());
  }
  if (values.count("help")) {
    std::cout << "usage: kawipiko serve --archive <path> [options]\n\n"
                 "Serves an archive made by 'kawipiko archive' over HTTP/1.1.\n\n"
              << flags;
    return 0;
  }
  if (opts.archive.empty()) throw usage_error("--archive is required");
  if ((!opts.profile_cpu.empty() || !opts.profile_mem.empty()) && opts.processes != 1) {
    throw usage_error("--profile-cpu and --profile-mem need --processes 1");
  }
  if (mmap && opts.in_memory)
    throw usage_error("--archive-mmap and --archive-inmem exclude each other");
  if (opts.threads == 0 || opts.threads > 1024) throw usage_error("--threads must be 1 to 1024");
  if (opts.processes == 0 || opts.processes > 1024)
    throw usage_error("--processes must be 1 to 1024");
  if (opts.limits.header_bytes < 256 || opts.limits.header_bytes > 60 * 1024) {
    throw usage_error("--header-limit must be 256 to 61440");
  }
  for (const double seconds : {header_timeout, idle_timeout, write_timeout, grace}) {
    if (!(seconds > 0 && seconds <= 86400))
      throw usage_error("timeouts must be 0 to 86400 seconds");
  }
  if (opts.limits.requests_per_connection == 0 ||
      (values.count("max-connections") != 0 && opts.limits.connections == 0)) {
    throw usage_error("--max-requests-per-connection and --max-connections must be at least 1");
  }
  const auto ms = [](double s) {
    return std::chrono::milliseconds(static_cast<long long>(s * 1000));
  };
  opts.limits.header_timeout = ms(header_timeout);
  opts.limits.idle_timeout = ms(idle_timeout);
  opts.limits.write_timeout = ms(write_timeout);
  opts.limits.shutdown_grace = ms(grace);
  opts.limits.timeouts = !timeout_disable;
  opts.security_headers = !security_disable;
  if (index_all) opts.index_paths = opts.index_content = true;
  if (index_meta) opts.index_paths = true;
  try {
    (void)serve::parse_bind(opts.bind);
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }

  serve::profiler profiles(opts.profile_cpu, opts.profile_mem, argv);
  return serve::run(opts);
}

}  // namespace

int serve_command(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "kawipiko serve: error: %s\nTry 'kawipiko serve --help'.\n", e.what());
    return 2;
  }
}

}  // namespace kawipiko::app
