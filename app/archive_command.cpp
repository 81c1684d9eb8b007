// `kawipiko archive`: command-line options -> archive::build, with a progress bar on a terminal
// and a one-line summary.

#include <unistd.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "archive/builder.hpp"
#include "archive/compress.hpp"
#include "commands.hpp"
#include "usage.hpp"

namespace kawipiko::app {

namespace {

namespace po = boost::program_options;

constexpr const char* usage_head =
    "usage: kawipiko archive --sources <folder> --archive <file> [options]\n"
    "\n"
    "Compiles a website folder into one read-only archive for 'kawipiko serve'.\n"
    "\n";

std::atomic<bool> interrupted{false};

extern "C" void on_interrupt(int) {
  interrupted.store(true);
}

// What only the command line knows, beside archive::build_options.
struct command_line {
  std::optional<std::string> compress;  // --compress, a list of codec names
  int level = -1;                       // --compress-level; below 0: each codec's own default
  bool progress = false;
  bool quiet = false;
  bool debug = false;
};

// "brotli,gzip": codec names as --compress takes them.
std::string codec_list(const std::vector<archive::codec_setting>& codecs) {
  std::string list;
  for (const auto& setting : codecs) {
    if (!list.empty()) list += ',';
    list += archive::codec_name(setting.codec);
  }
  return list;
}

// "gzip 9, brotli 11": each codec's own level, used unless --compress-level is given.
std::string default_levels() {
  std::string text;
  for (const auto codec : {archive::encoding::gzip, archive::encoding::br}) {
    if (!text.empty()) text += ", ";
    text += std::string(archive::codec_name(codec)) + " " +
            std::to_string(archive::default_level(codec));
  }
  return text;
}

// The flags; they store into `o`, whose values are the defaults, and `cli`.
po::options_description archive_flags(archive::build_options& o, command_line& cli) {
  const archive::build_options d;
  return describe({
      {"sources", stores(o.sources, "<folder>"), "the website folder to publish"},
      {"archive", stores(o.archive, "<file>"), "the archive file to write (replaced atomically)"},
      {"compress", stores(cli.compress, "<list>"),
       "comma list of gzip, brotli, identity" + default_is(codec_list(d.codecs)) +
           "; identity keeps only the uncompressed body"},
      {"compress-level", stores(cli.level, "<n>"),
       "compression level for every codec" + default_is(default_levels())},
      {"exclude-index", clears(o.include_index), "do not answer folder/ with its index.* file"},
      {"exclude-strip", clears(o.include_strip),
       "do not answer /page with page.html (.htm, .xhtml, .xht, .txt)"},
      {"exclude-etag", clears(o.include_etag), "do not send ETag (disables conditional requests)"},
      {"include-etag", nullptr, "accepted for compatibility: ETag is the default"},
      {"exclude-cache", clears(o.include_cache), "do not send Cache-Control"},
      {"cache-control", stores(o.cache_control, "<value>"),
       "Cache-Control value" + default_is(d.cache_control)},
      {"exclude-file-listing", clears(o.include_file_listing),
       "do not store the internal list of paths"},
      {"include-folder-listing", sets(o.include_folder_listing),
       "answer folders without an index with an HTML listing"},
      {"exclude-slash-redirects", clears(o.include_slash_redirects),
       "no 308 redirects between /folder and /folder/, /page/ and /page"},
      {"host-folders", sets(o.host_folders),
       "each top-level folder is the site of the host it names (example.com, *.example.com; "
       "_default for the rest)"},
      {"no-reuse", clears(o.reuse),
       "compress everything again instead of reusing the previous archive's variants"},
      {"jobs", stores(o.jobs, "<n>"), "compression threads (default: one per core)"},
      {"progress", sets(cli.progress), "report progress on stderr even without a terminal"},
      {"quiet", sets(cli.quiet), "no progress report"},
      {"debug", sets(cli.debug), "log one line per file"},
      {"help,h", nullptr, "show this help"},
  });
}

// The codecs of a --compress list, at `level` (below 0: each codec's own). identity is dropped:
// the uncompressed body is always stored. archive::build checks levels and repeats.
std::vector<archive::codec_setting> parse_compress(const std::string& list, int level) {
  std::vector<archive::codec_setting> codecs;
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = list.find(',', start);
    const std::string name = list.substr(start, comma == std::string::npos ? comma : comma - start);
    const auto codec = archive::parse_codec_name(name);
    if (!codec) throw usage_error("unknown compression '" + name + "' (gzip, brotli, identity)");
    if (*codec != archive::encoding::identity) {
      codecs.push_back({*codec, level >= 0 ? level : archive::default_level(*codec)});
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return codecs;
}

// --compress replaces the default codecs; --compress-level alone applies to them.
void choose_codecs(archive::build_options& options, const command_line& cli) {
  if (cli.compress) {
    options.codecs = parse_compress(*cli.compress, cli.level);
  } else if (cli.level >= 0) {
    for (auto& setting : options.codecs) setting.level = cli.level;
  }
}

std::string megabytes(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

// Progress on stderr: a redrawn bar on a terminal, else (with --progress) a line per second.
class progress_reporter {
 public:
  explicit progress_reporter(bool terminal) : terminal_(terminal) {}

  [[nodiscard]] bool on_terminal() const { return terminal_; }

  void report(const archive::progress_event& event) {
    const auto now = std::chrono::steady_clock::now();
    const bool last = event.files_done == event.files_total;
    const auto interval = terminal_ ? std::chrono::milliseconds(100) : std::chrono::seconds(1);
    if (!last && now - last_ < interval) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - started_).count();
    const double rate = elapsed > 0 ? static_cast<double>(event.bytes_done) / elapsed : 0;
    const double left =
        rate > 0 ? static_cast<double>(event.bytes_total - event.bytes_done) / rate : 0;
    const double fraction = event.bytes_total == 0 ? 1.0
                                                   : static_cast<double>(event.bytes_done) /
                                                         static_cast<double>(event.bytes_total);
    char line[256];
    if (terminal_) {
      constexpr int width = 24;
      const int filled = static_cast<int>(fraction * width);
      std::string bar(static_cast<std::size_t>(filled), '=');
      bar.resize(width, ' ');
      std::snprintf(line, sizeof line,
                    "\r[%s] %3.0f%% %llu/%llu files, %s of %s, %.1f MB/s, ETA %.0fs \x1b[K",
                    bar.c_str(), fraction * 100, static_cast<unsigned long long>(event.files_done),
                    static_cast<unsigned long long>(event.files_total),
                    megabytes(event.bytes_done).c_str(), megabytes(event.bytes_total).c_str(),
                    rate / 1e6, left);
      std::fputs(line, stderr);
      if (last) std::fputs("\n", stderr);
    } else {
      std::snprintf(
          line, sizeof line, "progress: %llu/%llu files, %s of %s, %.1f MB/s, ETA %.0fs\n",
          static_cast<unsigned long long>(event.files_done),
          static_cast<unsigned long long>(event.files_total), megabytes(event.bytes_done).c_str(),
          megabytes(event.bytes_total).c_str(), rate / 1e6, left);
      std::fputs(line, stderr);
    }
  }

 private:
  bool terminal_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

// Progress, debug lines and warnings on stderr, as the flags ask; SIGINT and SIGTERM cancel.
archive::build_hooks make_hooks(const command_line& cli, progress_reporter& reporter) {
  archive::build_hooks hooks;
  if (!cli.quiet && !cli.debug && (reporter.on_terminal() || cli.progress)) {
    hooks.progress = [&reporter](const archive::progress_event& e) { reporter.report(e); };
  }
  if (cli.debug) {
    hooks.debug = [](const std::string& line) {
      std::fprintf(stderr, "[debug] %s\n", line.c_str());
    };
  }
  hooks.warning = [](const std::string& line) {
    std::fprintf(stderr, "kawipiko archive: warning: %s\n", line.c_str());
  };
  hooks.cancelled = [] { return interrupted.load(); };
  return hooks;
}

void print_summary(const archive::build_stats& stats) {
  // The ratio is what a client accepting every stored coding downloads, against the sources.
  const double ratio = stats.bytes_in == 0 ? 100.0
                                           : 100.0 * static_cast<double>(stats.bytes_smallest) /
                                                 static_cast<double>(stats.bytes_in);
  std::printf(
      "archived %llu files, %llu folders, %llu paths, %llu redirects: %s in, %s stored "
      "(identity %s, gzip %s, br %s), compression ratio %.1f%%, %s deduplicated, "
      "%llu compressions done, %llu reused; archive %s in %.2f s\n",
      static_cast<unsigned long long>(stats.files), static_cast<unsigned long long>(stats.folders),
      static_cast<unsigned long long>(stats.paths),
      static_cast<unsigned long long>(stats.redirects), megabytes(stats.bytes_in).c_str(),
      megabytes(stats.bytes_stored).c_str(), megabytes(stats.bytes_by_coding[0]).c_str(),
      megabytes(stats.bytes_by_coding[1]).c_str(), megabytes(stats.bytes_by_coding[2]).c_str(),
      ratio, megabytes(stats.bytes_deduplicated).c_str(),
      static_cast<unsigned long long>(stats.variants_compressed),
      static_cast<unsigned long long>(stats.variants_reused), megabytes(stats.archive_size).c_str(),
      stats.seconds);
}

int run(int argc, char** argv) {
  archive::build_options options;
  command_line cli;
  const auto flags = archive_flags(options, cli);
  const auto values = parse(argc, argv, flags);
  if (values.count("help")) {
    std::cout << usage_head << flags;
    return 0;
  }
  // Jobs 0 is the library's "one per core": only here can an explicit --jobs 0 be told apart.
  if (values.count("jobs") && (options.jobs == 0 || options.jobs > 256)) {
    throw usage_error("--jobs must be between 1 and 256");
  }
  choose_codecs(options, cli);

  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  // Past a file size limit (ulimit -f) a write must fail with EFBIG, reported and cleaned up,
  // rather than the signal killing the process and leaving the temp file behind.
  std::signal(SIGXFSZ, SIG_IGN);

  progress_reporter reporter(::isatty(STDERR_FILENO) != 0);
  print_summary(archive::build(options, make_hooks(cli, reporter)));
  return 0;
}

}  // namespace

int archive_command(int argc, char** argv) {
  return run_applet("kawipiko archive", [&] { return run(argc, argv); });
}

}  // namespace kawipiko::app
