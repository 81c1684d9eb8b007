#pragma once
// Test support for the end-to-end server tests: a small site archived by the real binary, the
// arguments that serve an archive on 127.0.0.1 with an ephemeral port, a check of a
// connection's last answer, waiting for the server's log lines, and curl against the server.

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace kawipiko::test {

// The fixture site archived by the `kawipiko` under test (KAWIPIKO_BINARY, which
// test/CMakeLists.txt defines) with the default settings; `page` is compressible (stored as
// identity, gzip and br), `data` is 1,000 random bytes (identity only). Throws
// std::runtime_error with the archiver's stderr if it fails.
// Writes the sources of the fixture site under `folder`/src: index.html (`page`), hello.txt
// ("hello"), data.bin (`data`), a folder index, an alias, a wildcard, a _404 page and a folder
// name with a space. (The handler's unit tests archive it in-process; `site` with the binary.)
inline void write_site_sources(const temp_folder& folder, const std::string& page,
                               const std::string& data) {
  folder.write("src/index.html", page);
  folder.write("src/hello.txt", "hello");
  folder.write("src/data.bin", data);
  folder.write("src/docs/index.html", "docs index");
  folder.write("src/about.html", "about");
  folder.write("src/app/_wildcard.html", "wildcard");
  folder.write("src/private/_404.html", "custom not found");
  folder.write("src/sp ace/index.html", "space");
}

struct site {
  const std::string page = compressible_text(20000);
  const std::string data = random_bytes(1000, 7);
  temp_folder folder;
  fs::path archive;

  site() {
    write_site_sources(folder, page, data);
    archive = archive_sources(KAWIPIKO_BINARY, folder);
  }
};

// A site of one page, whose index.html says `text`, archived by the `kawipiko` under test
// without compression.
struct named_site {
  temp_folder folder;
  fs::path archive;
  explicit named_site(const std::string& text) {
    folder.write("src/index.html", text);
    archive = archive_sources(KAWIPIKO_BINARY, folder, "--compress identity");
  }
};

// The arguments of `kawipiko serve` for `archive` on 127.0.0.1 with an ephemeral port, then
// `extra`.
inline std::vector<std::string> serve_args(const fs::path& archive,
                                           const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"serve", "--archive", archive.string(), "--bind", "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Reads the last answer on `c` and checks it: `status`, with "Connection: close", then the
// server's close and not a byte more (whatever followed that request is not answered).
inline void check_last_answer(client& c, unsigned status) {
  const auto got = c.read_response();
  CHECK(got.status == status);
  CHECK(got.field("Connection") == "close");
  CHECK(c.closed_within());
  CHECK(c.buffered().empty());
}

// Waits at most `bound` until the server's stderr holds `count` lines starting with `prefix`.
inline bool wait_for_lines(const server_process& server, const std::string& prefix,
                           std::size_t count, milliseconds bound = default_bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (count_lines(server.errors(), prefix) < count) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

// curl, silent but for errors, its run time bounded; `args` are shell words.
inline command_result curl(const std::string& args, const temp_folder& scratch) {
  return run("curl -sS --max-time 10 " + args, scratch.path());
}

// `target` on `server` as a quoted URL for curl's command line.
inline std::string url(const server_process& server, std::string_view target) {
  return "'http://127.0.0.1:" + std::to_string(server.port()) + std::string(target) + "'";
}

}  // namespace kawipiko::test
