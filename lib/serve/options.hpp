#pragma once
// Everything `kawipiko serve` can be told, with the defaults a production server wants.

#include <chrono>
#include <cstddef>
#include <string>

namespace kawipiko::serve {

struct limits {
  std::size_t header_bytes = 16 * 1024;              // request line + fields; past it: 431
  std::chrono::milliseconds header_timeout{10'000};  // first byte to end of header (slowloris)
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{30'000};   // without any write progress (slow readers)
  std::chrono::milliseconds shutdown_grace{10'000};  // in-flight responses on SIGINT/SIGTERM
  std::size_t requests_per_connection = 100'000;     // then "Connection: close"
  // Open connections per process; past it new ones are closed at once. 0: as many as the
  // descriptor limit allows (its hard limit, which the server raises itself to, minus what the
  // process has open and a few spare).
  std::size_t connections = 0;
  bool timeouts = true;                              // --timeout-disable
};

struct options {
  std::string archive;
  bool in_memory = false;      // --archive-inmem (else mmap)
  bool preload = false;        // --archive-preload
  bool index_paths = false;    // --index-paths / --index-data-meta: a path -> entry hash map
  bool index_content = false;  // --index-data-content: bodies in memory too (implies inmem)
  std::string bind = "127.0.0.1:8080";
  unsigned processes = 1;
  unsigned threads = 1;
  std::string profile_cpu;
  std::string profile_mem;
  bool debug = false;  // one log line per request
  bool quiet = false;  // no start-up line
  bool security_headers = true;
  struct limits limits;
};

}  // namespace kawipiko::serve
