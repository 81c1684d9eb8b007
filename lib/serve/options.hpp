#pragma once
// Everything `kawipiko serve` can be told, with the defaults a production server wants.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

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
  bool timeouts = true;  // --timeout-disable
};

// One certificate of a TLS listener: a bundle, or a public file with its private key.
struct certificate_files {
  std::string bundle;       // --tls-bundle: certificate, its chain and the key in one PEM
  std::string public_pem;   // --tls-public: certificate, then its chain (PEM)
  std::string private_pem;  // --tls-private: the certificate's private key (PEM)
};

// TLS: its listener, where its certificates come from (files, or one made at start), and what it
// changes in the answers. Checked by serve::validate; the certificates are loaded by tls_context.
struct tls_settings {
  std::string bind_tls;  // "<ip>:<port>" of the TLS listener (as --bind); empty: none
  // In command-line order; the first is the default (no SNI, or a name none covers), SNI picks
  // another whose names cover the name asked for.
  std::vector<certificate_files> certificates;
  bool self_signed = false;     // --tls-self-signed: an in-memory one for localhost, at start
  bool hsts = false;            // --security-headers-tls: Strict-Transport-Security over TLS
  bool https_redirect = false;  // --https-redirect: the plain listener answers 308 to https
};

// What each serving process gives up once it listens and has its archives and certificates open
// (serve/confinement.hpp), and the memory it may use. Checked by serve::validate.
struct confinement {
  std::string user;      // --user: the account to run as from then on; empty: stay as started
  std::string group;     // --group: instead of the user's primary group (needs --user)
  bool sandbox = false;  // --sandbox, --seccomp-enable: Landlock and a seccomp allow-list
  std::optional<std::size_t> memory_mib;  // --limit-memory: RLIMIT_AS and RLIMIT_DATA, in MiB
};

// The access log's line format (access_log.hpp): Apache's and nginx's "combined", or JSON.
enum class access_log_format { combined, json };

// --host <name>=<archive>: a virtual host (host_table.hpp says how names match).
struct virtual_host {
  std::string name;     // "example.com" or "*.example.com"
  std::string archive;  // its archive
};

// A listening socket a service manager passed (socket activation, systemd.hpp): it takes the place
// of --bind (plain) or --bind-tls (tls). The process keeps the descriptor open for its life.
struct passed_listener {
  int fd = -1;
  bool tls = false;
};

struct options {
  std::string archive;  // the default site (hosts that match no --host); empty: none (421)
  std::vector<virtual_host> hosts;
  bool in_memory = false;      // --archive-inmem (else mmap)
  bool watch = true;           // --watch-disable: only SIGHUP reloads the archive
  bool preload = false;        // --archive-preload
  bool index_paths = false;    // --index-paths / --index-data-meta: a path -> entry hash map
  bool index_content = false;  // --index-data-content: bodies in memory too (implies inmem)
  std::string bind = "127.0.0.1:8080";  // the plain listener; empty: none (TLS only)
  unsigned processes = 1;
  unsigned threads = 1;
  std::string profile_cpu;
  std::string profile_mem;
  bool debug = false;  // one log line per request
  bool quiet = false;  // no start-up line
  bool security_headers = true;
  bool http1 = true;       // --http1-disable: HTTP/2 only (ALPN h2; the plain listener h2c only)
  bool http2 = true;       // --http2-disable: HTTP/1.1 only (ALPN http/1.1; no h2c)
  std::string access_log;  // --access-log: a file to append to, "-" for stdout; empty: none
  access_log_format log_format = access_log_format::combined;
  std::string
      metrics_bind;  // --metrics-bind "<ip>:<port>": /metrics, /healthz, /readyz; empty: none
  struct limits limits;
  tls_settings tls;
  confinement confine;
  // Socket activation: when not empty, these are the listeners, and --bind and --bind-tls are
  // not bound (serve::validate says what they need).
  std::vector<passed_listener> passed;
};

}  // namespace kawipiko::serve
