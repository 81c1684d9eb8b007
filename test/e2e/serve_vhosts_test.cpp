// End-to-end tests of virtual hosts: --host <name>=<archive> beside the default --archive, chosen
// by HTTP/1.1's Host (or an absolute-form authority) and HTTP/2's :authority, over plain and TLS
// listeners; names with ports, upper case and trailing dots; wildcards; 421 without a default;
// and one host's archive reloading on its own.

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using kawipiko::test::client;
using kawipiko::test::named_site;
using kawipiko::test::server_process;
using kawipiko::test::temp_folder;

namespace {

const std::string binary = KAWIPIKO_BINARY;

struct hosted {
  named_site fallback{"default"}, example{"example"}, blog{"blog"}, other{"example, rebuilt"};

  [[nodiscard]] std::vector<std::string> host_flags() const {
    return {"--host", "Example.COM=" + example.archive.string(), "--host",
            "*.blog.example.com=" + blog.archive.string()};
  }
};

// GET `target` with `host` as the Host field, on a new connection: the status and body.
std::pair<unsigned, std::string> get(unsigned short port, const std::string& host,
                                     const std::string& target = "/") {
  client c(port);
  const auto got = c.request("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  return {got.status, got.body};
}

// curl over HTTP/2 (h2c by prior knowledge, or h2 over TLS with --resolve for `host`): the body.
std::string curl_h2(const server_process& server, const std::string& host, bool tls,
                    const temp_folder& scratch) {
  const auto port = std::to_string(tls ? server.tls_port() : server.port());
  const auto args =
      tls ? "-k --http2 --resolve " + host + ":" + port + ":127.0.0.1 https://" + host + ":" +
                port + "/"
          : "--http2-prior-knowledge -H 'Host: " + host + "' http://127.0.0.1:" + port + "/";
  const auto result = kawipiko::test::curl(args + " -w ' %{http_version} %{http_code}'", scratch);
  return result.out;
}

}  // namespace

TEST_CASE(
    "virtual hosts are chosen by Host, absolute-form and :authority, the rest go to the "
    "default",
    "[e2e][serve][net][hosts]") {
  const hosted h;
  auto args = kawipiko::test::serve_args(h.fallback.archive, h.host_flags());
  args.insert(args.end(), {"--bind-tls", "127.0.0.1:0", "--tls-self-signed"});
  server_process server(binary, args);
  const auto port = server.port();
  CHECK(get(port, "example.com").second == "example");
  CHECK(get(port, "EXAMPLE.com:8080").second == "example");
  CHECK(get(port, "example.com.").second == "example");
  CHECK(get(port, "www.blog.example.com").second == "blog");
  CHECK(get(port, "a.b.blog.example.com").second == "blog");
  CHECK(get(port, "blog.example.com").second == "default");  // *. is for names under it
  CHECK(get(port, "www.example.com").second == "default");
  CHECK(get(port, "127.0.0.1").second == "default");
  // Absolute-form: its authority, whatever Host says (RFC 9112 §3.2.2).
  CHECK(get(port, "other.org", "http://example.com/").second == "example");
  // HTTP/2: :authority, over h2c and over TLS.
  const temp_folder scratch;
  CHECK(curl_h2(server, "example.com", false, scratch) == "example 2 200");
  CHECK(curl_h2(server, "x.blog.example.com", true, scratch) == "blog 2 200");
  CHECK(curl_h2(server, "localhost", true, scratch) == "default 2 200");
  CHECK(server.stop() == 0);
}

TEST_CASE("without a default site an unknown host gets 421 Misdirected Request",
          "[e2e][serve][net][hosts]") {
  const hosted h;
  std::vector<std::string> args = {"serve", "--bind", "127.0.0.1:0"};
  for (const auto& flag : h.host_flags()) args.push_back(flag);
  server_process server(binary, args);
  CHECK(get(server.port(), "example.com") == std::pair<unsigned, std::string>{200, "example"});
  const auto [status, body] = get(server.port(), "other.org");
  CHECK(status == 421);
  CHECK(body == "421 Misdirected Request\n");
  const temp_folder scratch;
  CHECK(curl_h2(server, "other.org", false, scratch) == "421 Misdirected Request\n 2 421");
  CHECK(server.stop() == 0);
}

TEST_CASE("each virtual host's archive reloads on its own", "[e2e][serve][net][hosts][reload]") {
  const hosted h;
  // The example host's archive under a name of its own, which the server watches.
  const temp_folder live;
  const auto example = live / "example.cdb";
  fs::copy_file(h.example.archive, example);
  server_process server(binary, {"serve", "--archive", h.fallback.archive.string(), "--host",
                                 "example.com=" + example.string(), "--bind", "127.0.0.1:0"});
  CHECK(get(server.port(), "example.com").second == "example");
  const auto next = live / "example.cdb.new";
  fs::copy_file(h.other.archive, next);
  fs::rename(next, example);
  bool rebuilt = false;
  for (int i = 0; i < 250 && !rebuilt; ++i) {
    rebuilt = get(server.port(), "example.com").second == "example, rebuilt";
    if (!rebuilt) std::this_thread::sleep_for(20ms);
  }
  CHECK(rebuilt);
  CHECK(get(server.port(), "other.org").second == "default");
  CHECK(server.errors().find("'" + example.string() + "' reloaded: generation 2") !=
        std::string::npos);
  CHECK(server.stop() == 0);
}
