#pragma once
// The archiver: compiles a source folder into one archive file (schema.hpp gives the layout).
// Walks the tree (source.hpp), hashes and compresses files on `jobs` threads, compiles routing
// (indexes, aliases, slash redirects, wildcards, error pages, listings) and writes the CDB to a
// temp file beside the target, fsyncs it and renames it over the target. The output depends only
// on the tree's names and contents and on the options, never on mtimes, `jobs` or timing. With
// host folders, each top-level folder is one host's site, compiled on its own (routing never
// crosses hosts) into the same archive, bodies shared.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "archive/compress.hpp"

namespace kawipiko::archive {

struct codec_setting {
  encoding codec;
  int level;
};

struct build_options {
  std::string sources;  // folder to publish
  std::string archive;  // target file
  std::vector<codec_setting> codecs = {{encoding::br, 11}, {encoding::gzip, 9}};
  bool include_index = true;            // --exclude-index turns it off
  bool include_strip = true;            // --exclude-strip: no extension-less aliases
  bool include_etag = true;             // --exclude-etag
  bool include_cache = true;            // --exclude-cache: no Cache-Control
  bool include_file_listing = true;     // --exclude-file-listing: no internal list of paths
  bool include_folder_listing = false;  // --include-folder-listing: HTML listings of folders
  bool include_slash_redirects = true;  // --exclude-slash-redirects
  bool reuse = true;                    // --no-reuse: do not reuse variants of the old archive
  bool host_folders = false;            // --host-folders: each top-level folder is a host's site
  unsigned jobs = 0;                    // 0: one per core
  std::string cache_control = "public, immutable, max-age=3600";
};

struct build_stats {
  std::uint64_t files = 0;  // published source files
  std::uint64_t folders = 0;
  std::uint64_t paths = 0;          // request paths answered (files, indexes, aliases)
  std::uint64_t redirects = 0;      // slash redirects and `_redirects` rules answered by entries
  std::uint64_t pattern_rules = 0;  // `_redirects` rules left to the serve-time matcher
  std::uint64_t bytes_in = 0;       // source bytes
  std::uint64_t bytes_stored = 0;   // body bytes written, all variants
  std::uint64_t bytes_by_coding[3] = {};  // body bytes written, by encoding (identity, gzip, br)
  std::uint64_t bytes_smallest = 0;       // per published content, its smallest variant
  std::uint64_t bytes_deduplicated = 0;   // source bytes not stored again (same content)
  // Compressions (kept or found not worth it) taken from the previous archive / done afresh.
  std::uint64_t variants_reused = 0;
  std::uint64_t variants_compressed = 0;
  std::uint64_t archive_size = 0;
  double seconds = 0;
};

// Progress reports: called from the builder's own thread (never concurrently).
struct progress_event {
  std::uint64_t files_done, files_total, bytes_done, bytes_total;
};

struct build_hooks {
  std::function<void(const progress_event&)> progress;  // may be empty
  std::function<void(const std::string&)> debug;        // one line per file; may be empty
  std::function<void(const std::string&)> warning;      // e.g. previous archive not reusable
  std::function<bool()> cancelled;                      // polled; true stops the build cleanly
};

// Builds the archive. Throws std::runtime_error / std::system_error with a one-line message that
// names the path at fault; on any failure the previous archive is untouched and no temp file is
// left behind.
build_stats build(const build_options& options, const build_hooks& hooks = {});

}  // namespace kawipiko::archive
