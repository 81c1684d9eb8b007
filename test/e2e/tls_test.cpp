// End-to-end tests of TLS: the real `kawipiko serve` with --bind-tls on 127.0.0.1 and ephemeral
// ports, certificates made by the `openssl` tool, and real clients: curl, `openssl s_client`,
// Debian's testssl.sh, headless Chromium, and support's raw clients (plain and over OpenSSL).
// Every server and client process is stopped by its guard, every external command runs under
// `timeout`, and every read is bounded.

#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/browser.hpp"
#include "support/certificates.hpp"
#include "support/served_site.hpp"
#include "support/server_process.hpp"
#include "support/temp_folder.hpp"
#include "support/tls_client.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Catch::Matchers::StartsWith;
using kawipiko::test::archive_sources;
using kawipiko::test::child_process;
using kawipiko::test::client;
using kawipiko::test::command_result;
using kawipiko::test::count_lines;
using kawipiko::test::file_fingerprint;
using kawipiko::test::handshake_line;
using kawipiko::test::make_chained_pair;
using kawipiko::test::make_pair;
using kawipiko::test::pem_pair;
using kawipiko::test::read_file;
using kawipiko::test::rsa_key;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::temp_folder;
using kawipiko::test::tls_client;
using kawipiko::test::tls_client_settings;
using kawipiko::test::transcript;
using kawipiko::test::wait_for_lines;

namespace {

const std::string binary = KAWIPIKO_BINARY;
const std::string openssl_binary = "/usr/bin/openssl";
const std::string index_body = "<p>hello over TLS</p>\n";
const std::string other_body = "the second resource\n";

std::string get(const std::string& target, const std::string& host = "localhost") {
  return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
}

// Bytes that no compressor shrinks, so that they travel as they are.
std::string random_bytes(std::size_t size) {
  std::mt19937 random(7);
  std::string bytes(size, '\0');
  for (auto& byte : bytes) byte = static_cast<char>(random());
  return bytes;
}

// The start of a ClientHello that announces 512 bytes and never sends the rest.
std::string partial_client_hello() {
  return std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + random_bytes(32);
}

// An archive of a few files, a 1 MiB one among them (and `huge_size` bytes in huge.bin if asked),
// in a temp folder that also takes the certificates. Not compressed: these tests ask for none.
struct tls_site {
  temp_folder folder;
  std::string big = random_bytes(1 << 20);
  std::string huge;
  fs::path archive;

  explicit tls_site(std::size_t huge_size = 0) : huge(random_bytes(huge_size)) {
    folder.write("src/index.html", index_body);
    folder.write("src/other.txt", other_body);
    folder.write("src/big.bin", big);
    if (!huge.empty()) folder.write("src/huge.bin", huge);
    archive = archive_sources(binary, folder, "--compress identity");
  }
};

// The most the kernel lets a TCP send buffer grow to (net.ipv4.tcp_wmem's third field).
std::size_t send_buffer_max() {
  std::istringstream fields(read_file("/proc/sys/net/ipv4/tcp_wmem"));
  std::size_t least = 0, initial = 0, most = 0;
  fields >> least >> initial >> most;
  return most;
}

std::vector<std::string> plus(std::vector<std::string> flags,
                              const std::vector<std::string>& more) {
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

// `serve` of `archive` on both listeners, with `extra` flags.
std::vector<std::string> serve_args(const fs::path& archive,
                                    const std::vector<std::string>& extra) {
  return plus({"serve", "--archive", archive.string(), "--bind", "127.0.0.1:0", "--bind-tls",
               "127.0.0.1:0"},
              extra);
}

std::vector<std::string> pair_flags(const pem_pair& pair) {
  return {"--tls-public", pair.certificate.string(), "--tls-private", pair.key.string()};
}

// A server of a tls_site on both listeners, with a P-256 certificate of its own and `flags`.
struct tls_server {
  tls_site site;
  pem_pair pair = make_pair(site.folder, "site");
  server_process server;

  explicit tls_server(const std::vector<std::string>& flags)
      : server(binary, serve_args(site.archive, plus(pair_flags(pair), flags))) {}
};

// Runs `command` (a shell command line) under `timeout`, in `folder`.
command_result bounded(const std::string& command, const temp_folder& folder) {
  return kawipiko::test::run("timeout 60 " + command, folder.path());
}

// `openssl s_client` to the TLS port with `arguments`; `input` (a file, else /dev/null) on its
// stdin.
command_result s_client(unsigned short port, const std::string& arguments,
                        const temp_folder& folder, const std::optional<fs::path>& input = {}) {
  const std::string from = input ? shell_quoted(*input) : "/dev/null";
  return kawipiko::test::run(
      "(timeout 30 openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
          " -servername localhost " + arguments + " <" + from + ")",
      folder.path());
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// s_client with `arguments` has its handshake refused by the server's `alert`.
void check_refused(unsigned short port, const std::string& arguments, const std::string& alert,
                   const temp_folder& folder) {
  const auto refused = s_client(port, arguments, folder);
  INFO(transcript(refused));
  CHECK(refused.exit_code == 1);
  CHECK(contains(refused.err, alert));
  CHECK(handshake_line(refused.out) == "New, (NONE), Cipher is (NONE)");
}

// ---- which worker process holds a connection (/proc) ----

// The worker processes of a supervisor: its children.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> children;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto stat = read_file(entry.path() / "stat");
    const auto after_name = stat.rfind(')');
    if (after_name == std::string::npos) continue;
    std::istringstream fields(stat.substr(after_name + 1));
    std::string state;
    pid_t ppid = 0;
    fields >> state >> ppid;
    if (ppid == parent) children.push_back(std::stoi(name));
  }
  return children;
}

// The socket inodes process `pid` holds.
std::set<std::string> socket_inodes(pid_t pid) {
  std::set<std::string> inodes;
  std::error_code ignored;
  for (const auto& entry :
       fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ignored)) {
    const auto target = fs::read_symlink(entry.path(), ignored).string();
    if (target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  return inodes;
}

struct tcp_entry {
  unsigned short local_port, remote_port;
  std::string inode;
};

// The IPv4 TCP sockets of this network namespace.
std::vector<tcp_entry> tcp_table() {
  std::vector<tcp_entry> entries;
  std::istringstream lines(read_file("/proc/net/tcp"));
  std::string line;
  std::getline(lines, line);  // the heading
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
        timeout >> inode;
    const auto port_of = [](const std::string& address) {
      return static_cast<unsigned short>(
          std::stoul(address.substr(address.find(':') + 1), nullptr, 16));
    };
    entries.push_back({port_of(local), port_of(remote), inode});
  }
  return entries;
}

// Which of `workers` holds the server's end of the connection from local port `client_port` to
// `server_port`; 0 if none does.
pid_t connection_owner(unsigned short client_port, unsigned short server_port,
                       const std::vector<pid_t>& workers) {
  for (const auto& entry : tcp_table()) {
    if (entry.local_port != server_port || entry.remote_port != client_port) continue;
    for (const pid_t worker : workers) {
      if (socket_inodes(worker).contains(entry.inode)) return worker;
    }
  }
  return 0;
}

// The local port of process `pid`'s connection to `server_port`; 0 if it has none.
unsigned short client_port_of(pid_t pid, unsigned short server_port) {
  const auto inodes = socket_inodes(pid);
  for (const auto& entry : tcp_table()) {
    if (entry.remote_port == server_port && inodes.contains(entry.inode)) return entry.local_port;
  }
  return 0;
}

unsigned short local_port(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

// Replaces `file` with `content` as certificate renewals do: a new file renamed over the old.
void replace_file(const fs::path& file, const std::string& content) {
  const auto next = file.string() + ".next";
  {
    std::ofstream out(next, std::ios::binary);
    out << content;
  }
  fs::rename(next, file);
}

// A thread that requests /other.txt on one TLS connection until stopped, counting the answers
// served and the failures (an exception ends it).
class background_requests {
 public:
  explicit background_requests(unsigned short port)
      : thread_([this, port] {
          try {
            tls_client c(port);
            while (!done_) {
              ++(c.request(get("/other.txt")).body == other_body ? served_ : failed_);
              // Paced, to stay far below --max-requests-per-connection however long it runs.
              std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
          } catch (const std::exception&) {
            ++failed_;
          }
        }) {}
  ~background_requests() { stop(); }
  background_requests(const background_requests&) = delete;
  background_requests& operator=(const background_requests&) = delete;

  // Ends the thread: how many requests were served and how many failed.
  std::pair<int, int> stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    return {served_.load(), failed_.load()};
  }

 private:
  std::atomic<bool> done_{false};
  std::atomic<int> served_{0}, failed_{0};
  std::thread thread_;
};

// For each of `openings` (a name, bytes), a connection to `port` that sends the bytes: the
// server must close it within 3 s, having sent nothing in clear.
void check_closed(unsigned short port,
                  const std::vector<std::pair<std::string, std::string>>& openings) {
  for (const auto& [name, bytes] : openings) {
    INFO("sent " << name);
    client c(port);
    c.send(bytes);
    CHECK(c.closed_within(3s));
    CHECK(!contains(c.buffered(), "HTTP/"));
  }
}

// ---- testssl.sh's JSON ----

struct finding {
  std::string id, severity, text;
};

// The findings of testssl.sh's flat JSON (--jsonfile): an array of objects whose string fields
// include "id", "severity" and "finding".
std::vector<finding> parse_findings(const std::string& json) {
  std::vector<finding> findings;
  std::vector<std::string> strings;  // the strings of the current object, in order
  const auto take_object = [&] {
    finding f;
    for (std::size_t i = 0; i + 1 < strings.size(); i += 2) {
      if (strings[i] == "id") f.id = strings[i + 1];
      if (strings[i] == "severity") f.severity = strings[i + 1];
      if (strings[i] == "finding") f.text = strings[i + 1];
    }
    if (!f.id.empty()) findings.push_back(f);
    strings.clear();
  };
  for (std::size_t at = 0; at < json.size(); ++at) {
    if (json[at] == '}') take_object();
    if (json[at] != '"') continue;
    std::string value;
    for (++at; at < json.size() && json[at] != '"'; ++at) {
      if (json[at] == '\\' && at + 1 < json.size()) ++at;
      value += json[at];
    }
    strings.push_back(value);
  }
  return findings;
}

}  // namespace

TEST_CASE(
    "curl gets exact bodies over TLS from a bundle or a pair of files: keep-alive, 1 MiB, and 8 "
    "MiB read slowly",
    "[e2e][serve][tls][net]") {
  const tls_site s(8 << 20);
  REQUIRE(s.huge.size() > send_buffer_max() + (1 << 20));
  const auto files = make_chained_pair(s.folder);
  const auto bundle =
      s.folder.write("bundle.pem", read_file(files.leaf.certificate) + read_file(files.ca) +
                                       read_file(files.leaf.key));
  const auto chain =
      s.folder.write("chain.pem", read_file(files.leaf.certificate) + read_file(files.ca));
  const std::vector<std::pair<std::string, std::vector<std::string>>> sources = {
      {"bundle", {"--tls-bundle", bundle.string()}},
      {"pair", {"--tls-public", chain.string(), "--tls-private", files.leaf.key.string()}},
  };
  for (const auto& [name, flags] : sources) {
    INFO("certificate from " << name);
    server_process server(binary, serve_args(s.archive, flags));
    const std::string port = std::to_string(server.tls_port());
    const std::string url = "https://localhost:" + port;
    // curl checks the chain against the test's CA and the name against the certificate's.
    const std::string curl = "curl -sS --cacert " + shell_quoted(files.ca) +
                             " --resolve localhost:" + port + ":127.0.0.1 ";
    const auto first = s.folder / "first.out";
    const auto second = s.folder / "second.out";

    // The chain goes out with the leaf (curl alone would not tell: it trusts the CA that signed
    // the leaf).
    const auto shown = s_client(server.tls_port(), "-showcerts", s.folder);
    CHECK(count_lines(shown.out, "-----BEGIN CERTIFICATE-----") == 2);

    // Two URLs on one connection: the second one does not connect again.
    const auto both =
        bounded(curl + "-w '%{http_code} %{num_connects}\\n' -o " + shell_quoted(first) + " " +
                    url + "/ -o " + shell_quoted(second) + " " + url + "/other.txt",
                s.folder);
    INFO(transcript(both));
    REQUIRE(both.exit_code == 0);
    CHECK(both.out == "200 1\n200 0\n");
    CHECK(read_file(first) == index_body);
    CHECK(read_file(second) == other_body);

    const auto big = bounded(
        curl + "-w '%{http_code}' -o " + shell_quoted(first) + " " + url + "/big.bin", s.folder);
    INFO(transcript(big));
    REQUIRE(big.exit_code == 0);
    CHECK(big.out == "200");
    const auto received = read_file(first);
    CHECK(received.size() == s.big.size());
    CHECK((received == s.big));  // not decomposed: Catch would print a MiB

    // The server's writes waiting for the socket: a slow reader of more than the socket buffers
    // hold. (Not `curl --limit-rate`: curl 7.88 averages its rate over seconds, and read the
    // 1 MiB above with --limit-rate 200k at full speed; the kernel's send buffer alone may hold
    // that much anyway.)
    tls_client slow(server.tls_port());
    slow.send(get("/huge.bin"));
    const auto huge = slow.read_response_slowly(16 * 1024, 1ms);
    CHECK(huge.status == 200);
    CHECK(huge.body.size() == s.huge.size());
    CHECK((huge.body == s.huge));
    CHECK(slow.request(get("/")).body == index_body);  // and the connection goes on
    CHECK(server.stop() == 0);
  }
}

TEST_CASE(
    "openssl s_client: TLS 1.1 and a CBC suite are refused, TLS 1.2 and 1.3 accepted, ALPN "
    "gives h2, http/1.1 or nothing",
    "[e2e][serve][tls][net]") {
  const tls_site s;
  // RSA: with an ECDSA certificate no RSA suite could be chosen anyway, refused or not.
  const auto rsa = make_pair(s.folder, "rsa", rsa_key);
  server_process server(binary, serve_args(s.archive, pair_flags(rsa)));
  const auto port = server.tls_port();

  // SECLEVEL=0: the client itself would speak TLS 1.1; it is the server's alert that refuses.
  check_refused(port, "-tls1_1 -cipher DEFAULT@SECLEVEL=0", "alert protocol version", s.folder);
  check_refused(port, "-tls1_2 -cipher AES128-SHA256", "alert handshake failure", s.folder);
  {
    const auto tls12 = s_client(port, "-tls1_2", s.folder);
    INFO(transcript(tls12));
    CHECK(tls12.exit_code == 0);
    CHECK(contains(tls12.out, "    Protocol  : TLSv1.2\n"));
    // ECDHE, and an AEAD suite.
    const auto line = handshake_line(tls12.out);
    CHECK_THAT(line, StartsWith("New, TLSv1.2, Cipher is ECDHE-RSA-"));
    CHECK((contains(line, "-GCM-") || contains(line, "CHACHA20-POLY1305")));
  }
  {
    const auto tls13 = s_client(port, "-tls1_3", s.folder);
    INFO(transcript(tls13));
    CHECK(tls13.exit_code == 0);
    CHECK_THAT(handshake_line(tls13.out), StartsWith("New, TLSv1.3, Cipher is TLS_"));
  }
  {
    const auto alpn = s_client(port, "-alpn http/1.1", s.folder);
    INFO(transcript(alpn));
    CHECK(alpn.exit_code == 0);
    CHECK(contains(alpn.out, "\nALPN protocol: http/1.1\n"));
  }
  {
    // h2 is preferred when offered, whatever the client's order.
    const auto both = s_client(port, "-alpn http/1.1,h2", s.folder);
    INFO(transcript(both));
    CHECK(both.exit_code == 0);
    CHECK(contains(both.out, "\nALPN protocol: h2\n"));
  }
  {
    // A client offering only a protocol the server does not speak goes on without ALPN, in
    // HTTP/1.1; -ign_eof: s_client waits for the server to end the connection after its answer.
    const auto request = s.folder.write(
        "request.txt", "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    const auto other = s_client(port, "-alpn spdy/3 -ign_eof", s.folder, request);
    INFO(transcript(other));
    CHECK(other.exit_code == 0);
    CHECK(contains(other.out, "\nNo ALPN negotiated\n"));
    CHECK(contains(other.out, "\nHTTP/1.1 200 OK\r\n"));
    CHECK(contains(other.out, "\r\n\r\n" + index_body));
  }
  // The same with the raw client: http/1.1 offered gives http/1.1, no ALPN gives none.
  tls_client one(port, tls_client_settings{.alpn = {"spdy/3", "http/1.1"}});
  CHECK(one.alpn() == "http/1.1");
  CHECK(one.request(get("/")).body == index_body);
  tls_client none(port);
  CHECK(none.alpn().empty());
  CHECK(none.request(get("/")).body == index_body);
  CHECK(server.stop() == 0);
}

TEST_CASE("a session from one handshake resumes on both worker processes, in TLS 1.3 and 1.2",
          "[e2e][serve][tls][net]") {
  tls_server fixture({"--processes", "2"});
  const auto& s = fixture.site;
  auto& server = fixture.server;
  const auto port = server.tls_port();
  const auto workers = children_of(server.pid());
  REQUIRE(workers.size() == 2);
  const auto request = s.folder.write(
      "request.txt", "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");

  for (const auto& [version, protocol] : std::vector<std::pair<std::string, std::string>>{
           {"-tls1_3", "TLSv1.3"}, {"-tls1_2", "TLSv1.2"}}) {
    INFO("s_client " << version);
    // With a request on stdin, the tickets (sent before the answer) are in the file once
    // s_client has read the answer and the server closed.
    const auto session = s.folder / ("session" + version + ".pem");
    const auto first = s_client(port, version + " -sess_out " + shell_quoted(session) + " -ign_eof",
                                s.folder, request);
    INFO(transcript(first));
    REQUIRE(first.exit_code == 0);
    CHECK_THAT(handshake_line(first.out), StartsWith("New, " + protocol + ","));
    REQUIRE(fs::file_size(session) > 0);

    // SO_REUSEPORT spreads connections by a hash of their addresses, so which process takes one
    // is chance: past the 12, more connections until both processes had some (at 12 already,
    // but for 1 run in 2,048).
    std::map<pid_t, int> by_worker;
    int resumed = 0;
    while (resumed < 12 || (by_worker.size() < 2 && resumed < 64)) {
      // -ign_eof keeps the connection open (stdin is /dev/null) while its owner is looked up.
      child_process again(
          openssl_binary,
          {"s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-servername", "localhost",
           version, "-sess_in", session.string(), "-ign_eof"});
      std::optional<std::string> line;
      while ((line = again.read_line()) && handshake_line(*line + "\n").empty()) {
      }
      INFO("connection " << resumed << ": " << again.pending_output() << again.errors());
      REQUIRE(line);
      CHECK_THAT(*line, StartsWith("Reused, " + protocol + ","));
      const pid_t owner = connection_owner(client_port_of(again.pid(), port), port, workers);
      CHECK(owner != 0);
      ++by_worker[owner];
      ++resumed;
      again.stop();
    }
    CHECK(by_worker.size() == 2);
  }
  CHECK(server.stop() == 0);
}

TEST_CASE(
    "a certificate or key that does not load stops the server at start: exit 1, one line naming "
    "the file",
    "[e2e][serve][tls]") {
  const tls_site s;
  const auto a = make_pair(s.folder, "a");
  const auto b = make_pair(s.folder, "b");
  const auto empty = s.folder.write("empty.pem", "");
  const auto missing = s.folder / "missing.pem";
  struct bad_start {
    std::vector<std::string> flags;
    fs::path named;  // the file the line must name
  };
  const std::vector<bad_start> starts = {
      {{"--tls-public", a.certificate.string(), "--tls-private", b.key.string()}, b.key},
      {{"--tls-bundle", missing.string()}, missing},
      {{"--tls-public", missing.string(), "--tls-private", a.key.string()}, missing},
      {{"--tls-bundle", empty.string()}, empty},
      {{"--tls-public", empty.string(), "--tls-private", a.key.string()}, empty},
      {{"--tls-public", a.certificate.string(), "--tls-private", empty.string()}, empty},
  };
  for (const auto& start : starts) {
    child_process server(binary, serve_args(s.archive, start.flags));
    const auto code = server.wait_exit(10s);
    const auto errors = server.errors();
    INFO(start.flags[0] << " " << start.flags[1] << "\n" << errors);
    CHECK(code == 1);
    CHECK(count_lines(errors, "kawipiko serve: error: ") == 1);
    CHECK(std::count(errors.begin(), errors.end(), '\n') == 1);
    CHECK(contains(errors, "'" + start.named.string() + "'"));
    CHECK(!server.read_line(100ms));  // no start-up line
    CHECK(server.pending_output().empty());
  }
}

TEST_CASE(
    "SIGHUP: new handshakes in every process get the renewed certificate, open connections go "
    "on, a broken renewal keeps the current one",
    "[e2e][serve][tls][net]") {
  const tls_site s;
  const auto a = make_pair(s.folder, "a");
  const auto b = make_pair(s.folder, "b");
  const pem_pair live{s.folder / "live.crt", s.folder / "live.key"};
  replace_file(live.certificate, read_file(a.certificate));
  replace_file(live.key, read_file(a.key));
  server_process server(binary,
                        serve_args(s.archive, plus(pair_flags(live), {"--processes", "2"})));
  const auto port = server.tls_port();
  const auto workers = children_of(server.pid());
  REQUIRE(workers.size() == 2);
  const auto first_print = file_fingerprint(a.certificate);
  const auto renewed_print = file_fingerprint(b.certificate);
  REQUIRE(first_print != renewed_print);

  // New handshakes until each worker process answered at least twice: the fingerprints each
  // presented, by worker (a handshake no worker holds would add an entry).
  const auto presented = [&] {
    std::map<pid_t, std::set<std::string>> prints;
    std::map<pid_t, int> handshakes;
    const auto both_twice = [&] {
      return handshakes[workers[0]] >= 2 && handshakes[workers[1]] >= 2;
    };
    for (int attempt = 0; attempt < 64 && !both_twice(); ++attempt) {
      tls_client fresh(port);
      const pid_t owner = connection_owner(local_port(fresh.fd()), port, workers);
      prints[owner].insert(fresh.peer_fingerprint());
      ++handshakes[owner];
      CHECK(fresh.request(get("/")).status == 200);
    }
    std::vector<std::string> by_worker;
    for (const auto& [owner, seen] : prints) {
      std::string line = std::to_string(owner) + ":";
      for (const auto& print : seen) line += " " + print;
      by_worker.push_back(line);
    }
    return by_worker;
  };
  const auto every_worker_presents = [&](const std::string& print) {
    std::vector<std::string> expected;
    for (const pid_t worker : std::set<pid_t>(workers.begin(), workers.end())) {
      expected.push_back(std::to_string(worker) + ": " + print);
    }
    return expected;
  };
  CHECK(presented() == every_worker_presents(first_print));

  // A client that keeps requesting on one connection throughout, and one that waits between.
  tls_client kept(port);
  CHECK(kept.request(get("/")).status == 200);
  background_requests busy(port);

  replace_file(live.certificate, read_file(b.certificate));
  replace_file(live.key, read_file(b.key));
  CHECK(::kill(server.pid(), SIGHUP) == 0);
  // Every process reloads and says so.
  CHECK(wait_for_lines(
      server, "kawipiko serve: TLS certificate reloaded (SHA-256 " + renewed_print + ")", 2));
  CHECK(presented() == every_worker_presents(renewed_print));
  CHECK(kept.request(get("/")).body == index_body);
  CHECK(kept.peer_fingerprint() == first_print);

  // A renewal that does not load: one warning per process, and the renewed pair stays.
  replace_file(live.certificate, "-----BEGIN CERTIFICATE-----\nbroken\n");
  CHECK(::kill(server.pid(), SIGHUP) == 0);
  CHECK(wait_for_lines(server, "kawipiko serve: warning: ", 2));
  CHECK(count_lines(server.errors(), "kawipiko serve: warning: ") == 2);
  CHECK(contains(server.errors(), "; keeping the current certificate\n"));
  CHECK(presented() == every_worker_presents(renewed_print));
  CHECK(kept.request(get("/")).body == index_body);

  // A renewal whose key is not the certificate's: the same.
  replace_file(live.certificate, read_file(b.certificate));
  replace_file(live.key, read_file(a.key));
  CHECK(::kill(server.pid(), SIGHUP) == 0);
  CHECK(wait_for_lines(server, "kawipiko serve: warning: ", 4));
  CHECK(count_lines(server.errors(), "kawipiko serve: warning: TLS private key " +
                                         shell_quoted(live.key) + " does not match") == 2);
  CHECK(presented() == every_worker_presents(renewed_print));
  CHECK(kept.request(get("/")).body == index_body);

  const auto [served, failed] = busy.stop();
  CHECK(failed == 0);
  CHECK(served > 0);
  INFO("server stderr: " << server.errors());
  CHECK(server.stop() == 0);
}

TEST_CASE(
    "HSTS only over TLS and only when asked, and --https-redirect sends plain requests to the TLS "
    "port with 308",
    "[e2e][serve][tls][net]") {
  const tls_site s;
  const auto pair = make_pair(s.folder, "site");
  const std::string hsts = "Strict-Transport-Security";
  {
    server_process server(
        binary, serve_args(s.archive, plus(pair_flags(pair), {"--security-headers-tls"})));
    tls_client secure(server.tls_port());
    const auto over_tls = secure.request(get("/"));
    CHECK(over_tls.status == 200);
    CHECK(over_tls.field(hsts).value_or("(none)") == "max-age=31536000");
    CHECK(over_tls.count(hsts) == 1);
    client plain(server.port());
    const auto in_clear = plain.request(get("/"));
    CHECK(in_clear.status == 200);
    CHECK(!in_clear.has(hsts));
    CHECK(server.stop() == 0);
  }
  {
    server_process server(binary, serve_args(s.archive, pair_flags(pair)));
    tls_client secure(server.tls_port());
    const auto over_tls = secure.request(get("/"));
    CHECK(over_tls.status == 200);
    CHECK(!over_tls.has(hsts));
    CHECK(server.stop() == 0);
  }
  {
    server_process server(binary,
                          serve_args(s.archive, plus(pair_flags(pair), {"--https-redirect"})));
    const std::string plain_port = std::to_string(server.port());
    const std::string tls_port = std::to_string(server.tls_port());
    const auto redirected = bounded("curl -sS -o /dev/null -D - --resolve localhost:" + plain_port +
                                        ":127.0.0.1 'http://localhost:" + plain_port + "/a/b?x=1'",
                                    s.folder);
    INFO(transcript(redirected));
    REQUIRE(redirected.exit_code == 0);
    const auto response = kawipiko::test::parse_response_head(redirected.out);
    CHECK(response.status == 308);
    CHECK(response.field("Location").value_or("(none)") ==
          "https://localhost:" + tls_port + "/a/b?x=1");

    // The port of the request's Host goes; the TLS listener's comes.
    client plain(server.port());
    const auto other_host = plain.request(get("/a/b?x=1", "example.com:80"));
    CHECK(other_host.status == 308);
    CHECK(other_host.field("Location").value_or("(none)") ==
          "https://example.com:" + tls_port + "/a/b?x=1");
    // The TLS listener answers as ever.
    tls_client secure(server.tls_port());
    CHECK(secure.request(get("/")).body == index_body);
    CHECK(server.stop() == 0);
  }
}

TEST_CASE("garbage and plaintext HTTP sent to the TLS port are closed at once, nothing in clear",
          "[e2e][serve][tls][net][hostile]") {
  // A header timeout far past the checks: a connection closed here was closed for what it sent.
  tls_server fixture({"--header-timeout", "60"});
  auto& server = fixture.server;
  check_closed(server.tls_port(), {{"garbage", random_bytes(1024)}, {"plaintext HTTP", get("/")}});
  client plain(server.port());
  CHECK(plain.request(get("/")).status == 200);
  CHECK(server.stop() == 0);
}

TEST_CASE("a silent client or a stalled handshake on the TLS port is closed by the header timeout",
          "[e2e][serve][tls][net][hostile]") {
  tls_server fixture({"--header-timeout", "1"});
  auto& server = fixture.server;
  // The header timeout is 1 s, counted from the accept; its sweep is coarse.
  check_closed(server.tls_port(),
               {{"nothing", ""}, {"a partial ClientHello", partial_client_hello()}});
  CHECK(server.stop() == 0);
}

TEST_CASE("200 stalled handshakes do not keep a plain client or a TLS client from being served",
          "[e2e][serve][tls][net][hostile]") {
  // Long enough that the stalled ones stay open throughout (checked at the end).
  tls_server fixture({"--header-timeout", "60"});
  auto& server = fixture.server;
  client plain(server.port());
  tls_client secure(server.tls_port());
  const std::string partial_hello = partial_client_hello();

  std::vector<std::unique_ptr<client>> stalled;
  for (int i = 0; i < 200; ++i) {
    stalled.push_back(std::make_unique<client>(server.tls_port()));
    stalled.back()->send(partial_hello);
    if (i % 20 == 19) {
      INFO("after " << i + 1 << " stalled handshakes");
      CHECK(plain.request(get("/")).status == 200);
      CHECK(secure.request(get("/")).status == 200);
      CHECK(client(server.port()).request(get("/other.txt")).body == other_body);
      CHECK(tls_client(server.tls_port()).request(get("/other.txt")).body == other_body);
    }
  }
  // They were all still waiting (open, nothing sent to them) while the others were served.
  std::size_t open = 0;
  for (const auto& c : stalled) {
    char byte = 0;
    open += ::recv(c->fd(), &byte, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN ? 1u : 0u;
  }
  CHECK(open == stalled.size());
  CHECK(server.stop() == 0);
}

TEST_CASE("the connection cap of --max-connections holds over TLS", "[e2e][serve][tls][net]") {
  // A header timeout far past the checks: a connection closed here was closed by the cap.
  tls_server fixture({"--max-connections", "50", "--header-timeout", "60"});
  auto& server = fixture.server;
  const auto port = server.tls_port();
  std::vector<std::unique_ptr<tls_client>> held;
  for (int i = 0; i < 50; ++i) held.push_back(std::make_unique<tls_client>(port));
  {
    client extra(port);
    CHECK(extra.closed_within(5s));
    CHECK(extra.buffered().empty());
  }
  CHECK_THROWS_AS(tls_client(port), std::runtime_error);
  for (const auto& c : held) CHECK(c->request(get("/")).status == 200);

  // A connection that ends gives its place to the next one (the server notices a moment later).
  held.pop_back();
  bool served = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!served && std::chrono::steady_clock::now() < deadline) {
    try {
      served = tls_client(port).request(get("/")).status == 200;
    } catch (const std::runtime_error&) {
      std::this_thread::sleep_for(50ms);
    }
  }
  CHECK(served);
  CHECK(server.stop() == 0);
}

TEST_CASE(
    "with --tls-self-signed the start-up line's fingerprint is the certificate's the server "
    "presents",
    "[e2e][serve][tls][net]") {
  const tls_site s;
  server_process server(binary, serve_args(s.archive, {"--tls-self-signed"}));
  const auto port = std::to_string(server.tls_port());
  const auto second = server.read_line(5s);
  REQUIRE(second);
  const std::string marker = "SHA-256 fingerprint ";
  REQUIRE(contains(*second, marker));
  const auto announced = second->substr(second->find(marker) + marker.size());
  CHECK(announced.size() == 32 * 3 - 1);

  const auto presented =
      kawipiko::test::run("(timeout 30 openssl s_client -connect 127.0.0.1:" + port +
                              " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256)",
                          s.folder.path());
  INFO(transcript(presented));
  REQUIRE(presented.exit_code == 0);
  const auto equals = presented.out.find('=');
  REQUIRE(equals != std::string::npos);
  CHECK(presented.out.substr(equals + 1) == announced + "\n");
  CHECK(tls_client(server.tls_port()).peer_fingerprint() == announced);

  const auto insecure = bounded("curl -sS -k https://127.0.0.1:" + port + "/", s.folder);
  CHECK(insecure.exit_code == 0);
  CHECK(insecure.out == index_body);
  // Not trusted otherwise: curl refuses it without -k (60: the peer's certificate).
  CHECK(bounded("curl -sS https://127.0.0.1:" + port + "/", s.folder).exit_code == 60);
  CHECK(server.stop() == 0);
}

TEST_CASE("testssl.sh finds nothing vulnerable: TLS 1.2 and 1.3 only, strong AEAD suites only",
          "[e2e][serve][tls][net][slow]") {
  const tls_site s;
  const auto rsa = make_pair(s.folder, "rsa", rsa_key);
  server_process server(binary, serve_args(s.archive, plus(pair_flags(rsa), {"--threads", "2"})));
  const auto report = s.folder / "testssl.json";
  // Protocols (-p), cipher categories (-s) and the vulnerabilities (-U): about 25 s on 2 cores.
  // Server defaults, client simulations and the per-cipher list are left out: they judge
  // nothing the assertions below do not.
  const auto scan = kawipiko::test::run(
      "timeout 300 testssl --quiet --color 0 --warnings off --sneaky --ip one -p -s -U "
      "--jsonfile " +
          shell_quoted(report) + " https://127.0.0.1:" + std::to_string(server.tls_port()),
      s.folder.path());
  INFO(transcript(scan));
  REQUIRE(scan.exit_code != 124);
  const auto findings = parse_findings(read_file(report));
  std::map<std::string, std::string> by_id;
  for (const auto& f : findings) {
    INFO(f.id << " " << f.severity << ": " << f.text);
    CHECK(f.severity != "HIGH");
    CHECK(f.severity != "CRITICAL");
    CHECK(!contains(f.text, "VULNERABLE"));
    by_id[f.id] = f.text;
  }
  REQUIRE(by_id.contains("scanTime"));  // the scan ran to its end
  for (const std::string id : {"SSLv2", "SSLv3", "TLS1", "TLS1_1"}) {
    INFO(id);
    CHECK(by_id[id] == "not offered");
  }
  CHECK(by_id["TLS1_2"] == "offered");
  CHECK_THAT(by_id["TLS1_3"], StartsWith("offered"));
  for (const std::string id : {"cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT",
                               "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"}) {
    // LOW: DES, RC2 and RC4; AVERAGE: the CBC suites.
    INFO(id);
    CHECK(by_id[id] == "not offered");
  }
  CHECK(by_id["cipherlist_STRONG"] == "offered");
  CHECK_THAT(by_id["RC4"], StartsWith("not vulnerable"));
  CHECK(server.stop() == 0);
}

TEST_CASE("headless Chromium loads a python3.11-doc page over https with every subresource 200",
          "[e2e][browser][tls]") {
  {
    INFO("bash cmake/install-deps.sh installs chromium and python3.11-doc");
    REQUIRE(fs::is_directory(kawipiko::test::python_docs_folder));
    REQUIRE(fs::exists(kawipiko::test::chromium_binary));
  }
  temp_folder scratch;
  const auto archive = kawipiko::test::archive_python_docs(binary, scratch);
  const std::string target = "/library/pathlib.html";
  std::string server_log;
  {
    server_process server(binary, {"serve", "--archive", archive.string(), "--bind-tls",
                                   "127.0.0.1:0", "--tls-self-signed", "--debug"});
    const auto loaded = kawipiko::test::load_in_chromium(
        "https://127.0.0.1:" + std::to_string(server.tls_port()) + target, scratch.path(),
        "pathlib-tls", {"--ignore-certificate-errors"});
    INFO("chromium stderr: " << loaded.errors);
    REQUIRE(loaded.exit_code);
    CHECK(*loaded.exit_code == 0);
    CHECK(contains(loaded.dom, "<title>pathlib — Object-oriented filesystem paths"));
    CHECK(server.stop() == 0);  // the debug log is complete once the server has exited
    server_log = server.errors();
  }
  INFO("server log:\n" << server_log);
  const auto requests = kawipiko::test::parse_debug_log(server_log);
  REQUIRE(!requests.empty());
  for (const auto& request : requests) {
    INFO(request.line);
    CHECK(request.status == 200);
  }
  const auto* document = kawipiko::test::find_request(requests, target);
  REQUIRE(document != nullptr);
  CHECK(document->variant == "br");  // Chromium offers br over https
  std::vector<std::string> external;
  const auto expected = kawipiko::test::subresources(
      read_file(kawipiko::test::python_docs_folder + target), target, external);
  CHECK(expected.size() >= 10);
  for (const auto& subresource : expected) {
    INFO("subresource " << subresource);
    const auto* request = kawipiko::test::find_request(requests, subresource);
    REQUIRE(request != nullptr);
    CHECK(request->status == 200);
  }
}
