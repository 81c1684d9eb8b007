// `kawipiko archive`: command-line options -> archive::build, with a progress bar on a terminal
// and a one-line summary.

#include <unistd.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "archive/builder.hpp"
#include "commands.hpp"

namespace kawipiko::app {

namespace {

namespace po = boost::program_options;

constexpr const char* usage_head =
    "usage: kawipiko archive --sources <folder> --archive <file> [options]\n"
    "\n"
    "Compiles a website folder into one read-only archive for 'kawipiko serve'.\n"
    "\n";

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::atomic<bool> interrupted{false};

extern "C" void on_interrupt(int) {
  interrupted.store(true);
}

std::vector<archive::codec_setting> parse_compress(const std::string& list, int level) {
  std::vector<archive::codec_setting> codecs;
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = list.find(',', start);
    const std::string name = list.substr(start, comma == std::string::npos ? comma : comma - start);
    archive::encoding codec;
    if (name == "gzip") {
      codec = archive::encoding::gzip;
    } else if (name == "brotli" || name == "br") {
      codec = archive::encoding::br;
    } else if (name == "identity" || name == "none") {
      codec = archive::encoding::identity;
    } else {
      throw usage_error("unknown compression '" + name + "' (gzip, brotli, identity)");
    }
    const int chosen = level >= 0 ? level : archive::default_level(codec);
    if (codec != archive::encoding::identity && !archive::is_valid_level(codec, chosen)) {
      throw usage_error("compression level " + std::to_string(chosen) + " is out of range for '" +
                        name + "' (gzip 1-9, brotli 0-11)");
    }
    for (const auto& seen : codecs) {
      if (seen.codec == codec) throw usage_error("compression '" + name + "' given twice");
    }
    if (codec != archive::encoding::identity) codecs.push_back({codec, chosen});
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return codecs;
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

int run(int argc, char** argv) {
  archive::build_options options;
  std::string compress = "brotli,gzip";
  int level = -1;
  bool exclude_index = false, exclude_strip = false, exclude_etag = false, exclude_cache = false;
  bool exclude_file_listing = false, exclude_slash_redirects = false, no_reuse = false;
  bool include_etag = false, progress = false, quiet = false, debug = false;

  po::options_description flags("options");
  flags.add_options()("sources", po::value(&options.sources)->value_name("<folder>"),
                      "the website folder to publish")(
      "archive", po::value(&options.archive)->value_name("<file>"),
      "the archive file to write (replaced atomically)")(
      "compress", po::value(&compress)->value_name("<list>"),
      "comma list of gzip, brotli, identity (default: brotli,gzip); identity keeps only the "
      "uncompressed body")("compress-level", po::value(&level)->value_name("<n>"),
                           "compression level for every codec (default: gzip 9, brotli 11)")(
      "exclude-index", po::bool_switch(&exclude_index),
      "do not answer folder/ with its index.* file")(
      "exclude-strip", po::bool_switch(&exclude_strip),
      "do not answer /page with page.html (.htm, .xhtml, .xht, .txt)")(
      "exclude-etag", po::bool_switch(&exclude_etag),
      "do not send ETag (disables conditional requests)")(
      "include-etag", po::bool_switch(&include_etag),
      "accepted for compatibility: ETag is the default")(
      "exclude-cache", po::bool_switch(&exclude_cache), "do not send Cache-Control")(
      "cache-control", po::value(&options.cache_control)->value_name("<value>"),
      "Cache-Control value (default: public, immutable, max-age=3600)")(
      "exclude-file-listing", po::bool_switch(&exclude_file_listing),
      "do not store the internal list of paths")(
      "include-folder-listing", po::bool_switch(&options.include_folder_listing),
      "answer folders without an index with an HTML listing")(
      "exclude-slash-redirects", po::bool_switch(&exclude_slash_redirects),
      "no 308 redirects between /folder and /folder/, /page/ and /page")(
      "no-reuse", po::bool_switch(&no_reuse),
      "compress everything again instead of reusing the previous archive's variants")(
      "jobs", po::value(&options.jobs)->value_name("<n>"),
      "compression threads (default: one per core)")(
      "progress", po::bool_switch(&progress), "report progress on stderr even without a terminal")(
      "quiet", po::bool_switch(&quiet), "no progress report")(
      "debug", po::bool_switch(&debug), "log one line per file")("help,h", "show this help");

  po::variables_map values;
  try {
    po::store(po::command_line_parser(argc, argv).options(flags).run(), values);
    po::notify(values);
  } catch (const po::error& e) {
    throw usage_error(e.what());
  }
  if (values.count("help")) {
    std::cout << usage_head << flags;
    return 0;
  }
  if (options.sources.empty()) throw usage_error("--sources is required");
  if (options.archive.empty()) throw usage_error("--archive is required");
  if (values.count("jobs") && (options.jobs == 0 || options.jobs > 256)) {
    throw usage_error("--jobs must be between 1 and 256");
  }
  options.codecs = parse_compress(compress, level);
  options.include_index = !exclude_index;
  options.include_strip = !exclude_strip;
  options.include_etag = !exclude_etag;
  options.include_cache = !exclude_cache;
  options.include_file_listing = !exclude_file_listing;
  options.include_slash_redirects = !exclude_slash_redirects;
  options.reuse = !no_reuse;

  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  // Past a file size limit (ulimit -f) a write must fail with EFBIG, reported and cleaned up,
  // rather than the signal killing the process and leaving the temp file behind.
  std::signal(SIGXFSZ, SIG_IGN);

  archive::build_hooks hooks;
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  progress_reporter reporter(terminal);
  if (!quiet && !debug && (terminal || progress)) {
    hooks.progress = [&reporter](const archive::progress_event& e) { reporter.report(e); };
  }
  if (debug) {
    hooks.debug = [](const std::string& line) {
      std::fprintf(stderr, "[debug] %s\n", line.c_str());
    };
  }
  hooks.warning = [](const std::string& line) {
    std::fprintf(stderr, "kawipiko archive: warning: %s\n", line.c_str());
  };
  hooks.cancelled = [] { return interrupted.load(); };

  const auto stats = archive::build(options, hooks);
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
  return 0;
}

}  // namespace

int archive_command(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "kawipiko archive: error: %s\nTry 'kawipiko archive --help'.\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "kawipiko archive: error: %s\nTry 'kawipiko archive --help'.\n", e.what());
    return 2;
  }
}

}  // namespace kawipiko::app
