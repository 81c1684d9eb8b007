// End-to-end tests of HTTP/2: the real `kawipiko serve` on both listeners of 127.0.0.1, h2 by ALPN
// on the TLS one and h2c by prior knowledge on the plain one, talked to with real clients: curl,
// nghttp and h2load (Debian's nghttp2-client), and a small client on Debian's python3-h2 and
// python3-hyperframe that reports the frames as they came, unchecked. Every behaviour of the
// HTTP/1.1 server is asserted over h2 on what the client received (the semantics themselves are
// test/serve's, as functions), then the flags that choose the protocols, concurrent streams,
// large bodies under flow control, the --debug line and GOAWAY on SIGTERM.

#include "serve/http2.hpp"

#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
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
using kawipiko::test::compressible_text;
using kawipiko::test::http_response;
using kawipiko::test::make_chained_pair;
using kawipiko::test::parse_byteranges;
using kawipiko::test::parse_debug_log;
using kawipiko::test::parse_response_head;
using kawipiko::test::random_bytes;
using kawipiko::test::read_file;
using kawipiko::test::request;
using kawipiko::test::serve_args;
using kawipiko::test::server_process;
using kawipiko::test::shell_quoted;
using kawipiko::test::temp_folder;
using kawipiko::test::tls_client;
using kawipiko::test::tls_client_settings;
using kawipiko::test::write_site_sources;

namespace {

const std::string binary = KAWIPIKO_BINARY;
// Debian's, which python3-h2 is installed for (not whatever `python3` is first on the PATH).
const std::string python = "/usr/bin/python3";

// The client on python3-h2, run as `python3 h2_client.py MODE PORT plain|tls ARGS...`.
constexpr std::string_view h2_client_source = R"py(
import signal, socket, ssl, sys
import h2.config, h2.connection, h2.events, hpack, hyperframe.frame as frames

def open_socket(port, tls):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if not tls:
        return sock
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(sock, server_hostname="localhost")
    if sock.selected_alpn_protocol() != "h2":
        sys.exit("ALPN did not choose h2")
    return sock

# fetch: each spec "METHOD|TARGET|name: value|..." on a stream of one connection, all at once;
# then per stream "stream ID DATA-BYTES HOW-IT-ENDED" and its fields as they came, raw (h2's
# checks of inbound fields are off), and an empty line.
def fetch(sock, scheme, specs):
    config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                       validate_inbound_headers=False,
                                       normalize_inbound_headers=False)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    answers = {}
    for spec in specs:
        method, target, *fields = spec.split("|")
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", method), (":scheme", scheme), (":path", target),
                                   (":authority", "localhost")] +
                          [tuple(part.strip() for part in f.split(":", 1)) for f in fields],
                          end_stream=True)
        answers[stream] = {"fields": [], "data": 0, "end": "open"}
    sock.sendall(conn.data_to_send())
    waiting = set(answers)
    while waiting:
        data = sock.recv(65536)
        if not data:
            sys.exit("connection closed with streams open")
        for event in conn.receive_data(data):
            answer = answers.get(getattr(event, "stream_id", None))
            if isinstance(event, h2.events.ResponseReceived):
                answer["fields"] = event.headers
                answer["end"] = "with-headers" if event.stream_ended else answer["end"]
            elif isinstance(event, h2.events.DataReceived):
                answer["data"] += len(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                answer["end"] = "with-data" if answer["end"] == "open" else answer["end"]
                waiting.discard(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                answer["end"] = "reset-%d" % event.error_code
                waiting.discard(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                sys.exit("GOAWAY %d" % event.error_code)
        sock.sendall(conn.data_to_send())
    for stream, answer in sorted(answers.items()):
        print("stream %d %d %s" % (stream, answer["data"], answer["end"]))
        for name, value in answer["fields"]:
            print("%s: %s" % (name.decode("latin-1"), value.decode("latin-1")))
        print()

def read_frames(sock):
    buffer = b""
    while True:
        if len(buffer) >= 9:
            frame, length = frames.Frame.parse_frame_header(memoryview(buffer[:9]))
            if len(buffer) >= 9 + length:
                frame.parse_body(memoryview(buffer[9:9 + length]))
                buffer = buffer[9 + length:]
                yield frame
                continue
        data = sock.recv(65536)
        if not data:
            return
        buffer += data

# idle | busy: GET TARGET on stream 1, then a line each for "answered BYTES" (its end), "goaway
# ERROR LAST-STREAM", "reset ERROR", and "closed" at the end of the connection. busy: the
# stream's window is 1000 bytes until SIGUSR1, which is awaited after "stalled BYTES". On frames
# rather than h2's state machine, which refuses the DATA a server sends after its GOAWAY to
# finish the streams it took up.
def goaway(sock, scheme, busy, target):
    window = 1000 if busy else 1 << 24
    request = hpack.Encoder().encode([(":method", "GET"), (":scheme", scheme),
                                      (":path", target), (":authority", "localhost")])
    settings = {frames.SettingsFrame.INITIAL_WINDOW_SIZE: window}
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
                 frames.SettingsFrame(0, settings=settings).serialize() +
                 frames.WindowUpdateFrame(0, window_increment=1 << 24).serialize() +
                 frames.HeadersFrame(1, request, flags=["END_HEADERS", "END_STREAM"]).serialize())
    received, stalled = 0, busy
    for frame in read_frames(sock):
        if isinstance(frame, frames.SettingsFrame) and "ACK" not in frame.flags:
            sock.sendall(frames.SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(frame, frames.DataFrame) and frame.stream_id == 1:
            received += len(frame.data)
            if "END_STREAM" in frame.flags:
                print("answered %d" % received, flush=True)
        elif isinstance(frame, frames.RstStreamFrame):
            print("reset %d" % frame.error_code, flush=True)
        elif isinstance(frame, frames.GoAwayFrame):
            print("goaway %d %d" % (frame.error_code, frame.last_stream_id), flush=True)
        if stalled and received >= window:
            print("stalled %d" % received, flush=True)
            signal.sigwait([signal.SIGUSR1])
            stalled = False
            sock.sendall(frames.WindowUpdateFrame(1, window_increment=1 << 24).serialize())
    print("closed", flush=True)

signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
mode, tls = sys.argv[1], sys.argv[3] == "tls"
sock, scheme = open_socket(int(sys.argv[2]), tls), "https" if tls else "http"
if mode == "fetch":
    fetch(sock, scheme, sys.argv[4:])
else:
    goaway(sock, scheme, mode == "busy", sys.argv[4])
)py";

// The fixture site of served_site.hpp, 4 MiB of random bytes in big.bin (stored identity only),
// and a certificate for localhost signed by a CA of its own, which curl is given. Compressed at
// level 1: quick, and every compressible file still has its br and gzip variants.
struct h2_site {
  temp_folder folder;
  const std::string page = compressible_text(20000);
  const std::string data = random_bytes(1000, 7);
  const std::string big = random_bytes(4 << 20, 13);
  const kawipiko::test::chained_pair certificates = make_chained_pair(folder);
  fs::path archive;

  h2_site() {
    write_site_sources(folder, page, data);
    folder.write("src/big.bin", big);
    archive = archive_sources(binary, folder, "--compress-level 1");
  }
};

// `kawipiko serve` of an h2_site on a plain and a TLS listener, with `flags`.
struct h2_server {
  h2_site site;
  server_process server;

  explicit h2_server(const std::vector<std::string>& flags = {})
      : server(binary, serve_args(site.archive, listener_flags(site, flags))) {}

  static std::vector<std::string> listener_flags(const h2_site& site,
                                                 const std::vector<std::string>& flags) {
    std::vector<std::string> all = {"--bind-tls",    "127.0.0.1:0",
                                    "--tls-public",  site.certificates.leaf.certificate.string(),
                                    "--tls-private", site.certificates.leaf.key.string()};
    all.insert(all.end(), flags.begin(), flags.end());
    return all;
  }
};

// How curl reaches the server.
enum class route { h2c, h2, http1, http1_tls };

const std::vector<route> h2_routes = {route::h2c, route::h2};

std::string name_of(route way) {
  switch (way) {
    case route::h2c:
      return "h2c by prior knowledge";
    case route::h2:
      return "h2 over TLS";
    case route::http1:
      return "HTTP/1.1";
    case route::http1_tls:
      return "HTTP/1.1 over TLS";
  }
  return "";
}

// curl's options and URL for `target` on `s` by `way`: over TLS to localhost (the certificate's
// name), checked against the site's CA.
std::string curl_to(const h2_server& s, route way, std::string_view target) {
  const auto port = std::to_string(s.server.tls_port());
  const std::string tls = " --cacert " + shell_quoted(s.site.certificates.ca) +
                          " --resolve localhost:" + port + ":127.0.0.1 'https://localhost:" + port +
                          std::string(target) + "'";
  switch (way) {
    case route::h2c:
      return "--http2-prior-knowledge " + kawipiko::test::url(s.server, target);
    case route::h2:
      return "--http2" + tls;
    case route::http1:
      return "--http1.1 " + kawipiko::test::url(s.server, target);
    case route::http1_tls:
      return "--http1.1" + tls;
  }
  return "";
}

// What curl received.
struct answer {
  command_result run;      // curl's exit code and stderr
  std::string version;     // its %{http_version}: "2", "1.1"
  http_response response;  // the head as it came (status_line "HTTP/2 200 "), the body
};

// curl's dump of a response head (-D), HTTP/2's ("HTTP/2 200 ") or HTTP/1.1's, as an
// http_response whose status_line is as curl wrote it; an empty one if there is none.
http_response parse_dumped_head(const std::string& dumped) {
  const auto line_end = dumped.find("\r\n");
  const auto space = dumped.find(' ');
  if (line_end == std::string::npos || space > line_end) return {};
  auto response = parse_response_head("HTTP/1.1 " + dumped.substr(space + 1, 3) + " X" +
                                      dumped.substr(line_end));
  response.status_line = dumped.substr(0, line_end);
  return response;
}

// `target` from `s` by `way` with curl, `options` (shell words) added.
answer fetch(const h2_server& s, route way, std::string_view target,
             const std::string& options = "") {
  const auto& folder = s.site.folder;
  const auto head = folder / "head.txt";
  const auto body = folder / "body.bin";
  fs::remove(head);
  fs::remove(body);
  answer got{
      kawipiko::test::curl("-D " + shell_quoted(head) + " -o " + shell_quoted(body) +
                               " -w '%{http_version}' " + options + " " + curl_to(s, way, target),
                           folder),
      "",
      {}};
  got.version = got.run.out;
  got.response = parse_dumped_head(read_file(head));
  got.response.body = read_file(body);
  return got;
}

// `got` came over HTTP/2 with `status`, and curl was content.
void check_h2(const answer& got, unsigned status) {
  INFO("curl: " << got.run.err);
  CHECK(got.run.exit_code == 0);
  CHECK(got.version == "2");
  CHECK(got.response.status == status);
}

// A stream as the python3-h2 client saw it.
struct raw_answer {
  std::size_t data_bytes = 0;  // DATA payload
  std::string end;             // "with-headers" (END_STREAM on HEADERS), "with-data", "reset-N"
  std::vector<std::pair<std::string, std::string>> fields;  // as they came, ":status" first

  [[nodiscard]] std::optional<std::string> field(std::string_view name) const {
    for (const auto& [key, value] : fields) {
      if (key == name) return value;
    }
    return std::nullopt;
  }
};

// Runs the python3-h2 client with `arguments` (shell words) in `s`'s folder, bounded.
command_result run_h2_client(const h2_server& s, const std::string& arguments) {
  const auto script = s.site.folder.write("h2_client.py", std::string(h2_client_source));
  return kawipiko::test::run("timeout 60 " + python + " " + shell_quoted(script) + " " + arguments,
                             s.site.folder.path());
}

// The answers to `specs` ("METHOD|TARGET|name: value|...") sent at once on one connection, h2 over
// TLS or h2c, in order. Fails the test if the client did.
std::vector<raw_answer> raw_fetch(const h2_server& s, bool tls,
                                  const std::vector<std::string>& specs) {
  std::string arguments = tls ? "fetch " + std::to_string(s.server.tls_port()) + " tls"
                              : "fetch " + std::to_string(s.server.port()) + " plain";
  for (const auto& spec : specs) arguments += " '" + spec + "'";
  const auto result = run_h2_client(s, arguments);
  INFO("h2 client: " << result.err);
  REQUIRE(result.exit_code == 0);
  std::vector<raw_answer> answers;
  std::istringstream lines(result.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("stream ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string id;
      answers.emplace_back();
      words >> id >> answers.back().data_bytes >> answers.back().end;
    } else if (!line.empty() && !answers.empty()) {
      const auto colon = line.find(": ", 1);  // past the ':' of a pseudo-header
      answers.back().fields.emplace_back(line.substr(0, colon), line.substr(colon + 2));
    }
  }
  return answers;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

// A bounded external command in `s`'s folder.
command_result bounded(const h2_server& s, const std::string& command) {
  return kawipiko::test::run("timeout 60 " + command, s.site.folder.path());
}

// Waits at most `bound` until 127.0.0.1:`port` refuses connections (a draining server has closed
// its listeners). Returns whether it did.
bool refused_within(unsigned short port, std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      const client probe(port);
    } catch (const std::runtime_error&) {
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// The fields of `r` in a form to compare across protocols: names in lower case, without `date`,
// sorted.
std::multiset<std::pair<std::string, std::string>> comparable_fields(const http_response& r) {
  std::multiset<std::pair<std::string, std::string>> fields;
  for (auto [name, value] : r.fields) {
    std::transform(name.begin(), name.end(), name.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
    if (name != "date") fields.emplace(name, value);
  }
  return fields;
}

}  // namespace

TEST_CASE("curl gets GET and HEAD over h2 and h2c: HEAD has GET's fields and no body",
          "[e2e][serve][http2][net]") {
  const h2_server s;
  for (const auto way : h2_routes) {
    INFO(name_of(way));
    const auto got = fetch(s, way, "/");
    check_h2(got, 200);
    CHECK(got.response.status_line == "HTTP/2 200 ");
    CHECK(got.response.body == s.site.page);
    CHECK(got.response.field("content-length") == "20000");
    const auto headed = fetch(s, way, "/", "-I");
    check_h2(headed, 200);
    CHECK(headed.response.head_without_date() == got.response.head_without_date());
  }
  // On the frames: HEAD's HEADERS end the stream and no DATA follows, GET's DATA has the body.
  const auto raw = raw_fetch(s, false, {"GET|/", "HEAD|/", "HEAD|/big.bin"});
  REQUIRE(raw.size() == 3);
  CHECK(raw[0].data_bytes == 20000);
  CHECK(raw[0].end == "with-data");
  CHECK(raw[1].data_bytes == 0);
  CHECK(raw[1].end == "with-headers");
  CHECK(raw[1].field("content-length") == "20000");
  CHECK(raw[2].data_bytes == 0);
  CHECK(raw[2].end == "with-headers");
  CHECK(raw[2].field("content-length") == std::to_string(s.site.big.size()));
}

TEST_CASE("over h2 known methods get 405 with allow, unknown ones 501, and the connection goes on",
          "[e2e][serve][http2][net]") {
  const h2_server s;
  for (const auto way : h2_routes) {
    INFO(name_of(way));
    for (const std::string method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
      INFO(method);
      const auto got = fetch(s, way, "/hello.txt", "-X " + method);
      check_h2(got, 405);
      CHECK(got.response.field("allow") == "GET, HEAD");
      CHECK(got.response.body != "hello");
    }
    for (const std::string method : {"FOO", "BREW"}) {
      INFO(method);
      const auto got = fetch(s, way, "/hello.txt", "-X " + method);
      check_h2(got, 501);
      CHECK_FALSE(got.response.has("allow"));
    }
  }
  const auto raw = raw_fetch(s, true, {"POST|/hello.txt", "FOO|/hello.txt", "GET|/hello.txt"});
  REQUIRE(raw.size() == 3);
  CHECK(raw[0].field(":status") == "405");
  CHECK(raw[1].field(":status") == "501");
  CHECK(raw[2].field(":status") == "200");
  CHECK(raw[2].data_bytes == 5);
}

TEST_CASE("over h2 accept-encoding chooses the br, gzip or identity variant, with vary",
          "[e2e][serve][http2][net]") {
  const h2_server s;
  for (const auto way : h2_routes) {
    INFO(name_of(way));
    for (const std::string coding : {"br", "gzip"}) {
      INFO(coding);
      const auto got = fetch(s, way, "/", "-H 'accept-encoding: " + coding + "'");
      check_h2(got, 200);
      CHECK(got.response.field("content-encoding") == coding);
      CHECK(got.response.field("vary") == "Accept-Encoding");
      CHECK(got.response.field("content-length") == std::to_string(got.response.body.size()));
      CHECK(got.response.body.size() < s.site.page.size());
      // curl decodes it back to the page.
      const auto decoded = fetch(s, way, "/", "--compressed -H 'accept-encoding: " + coding + "'");
      check_h2(decoded, 200);
      CHECK(decoded.response.body == s.site.page);
    }
    for (const std::string options : {"", "-H 'accept-encoding: identity'"}) {
      INFO("options: " << options);
      const auto got = fetch(s, way, "/", options);
      check_h2(got, 200);
      CHECK_FALSE(got.response.has("content-encoding"));
      CHECK(got.response.field("vary") == "Accept-Encoding");
      CHECK(got.response.body == s.site.page);
    }
    // Random bytes have no compressed variant: identity whatever is offered.
    const auto data = fetch(s, way, "/data.bin", "-H 'accept-encoding: br, gzip'");
    check_h2(data, 200);
    CHECK_FALSE(data.response.has("content-encoding"));
    CHECK(data.response.body == s.site.data);
  }
}

TEST_CASE("over h2 an etag is revalidated with 304 and no body, a failing if-match gets 412",
          "[e2e][serve][http2][net]") {
  const h2_server s;
  std::string tag;
  for (const auto way : h2_routes) {
    INFO(name_of(way));
    const auto got = fetch(s, way, "/hello.txt");
    check_h2(got, 200);
    tag = got.response.field("etag").value_or("");
    REQUIRE(tag.size() == 34);
    const auto revalidated = fetch(s, way, "/hello.txt", "-H 'if-none-match: " + tag + "'");
    check_h2(revalidated, 304);
    CHECK(revalidated.response.body.empty());
    CHECK(revalidated.response.field("etag") == tag);
    const auto failed = fetch(s, way, "/hello.txt", "-H 'if-match: \"nope\"'");
    check_h2(failed, 412);
    CHECK(failed.response.body != "hello");
    const auto matched = fetch(s, way, "/hello.txt", "-H 'if-match: " + tag + "'");
    check_h2(matched, 200);
    CHECK(matched.response.body == "hello");
  }
  const auto raw = raw_fetch(s, false, {"GET|/hello.txt|if-none-match: " + tag});
  REQUIRE(raw.size() == 1);
  CHECK(raw[0].field(":status") == "304");
  CHECK(raw[0].end == "with-headers");
  CHECK(raw[0].data_bytes == 0);
}

TEST_CASE("over h2 a range gets 206 with its bytes, several get multipart/byteranges, 416 past",
          "[e2e][serve][http2][net]") {
  const h2_server s;
  const auto& data = s.site.data;
  for (const auto way : h2_routes) {
    INFO(name_of(way));
    const auto one = fetch(s, way, "/data.bin", "-H 'range: bytes=100-199'");
    check_h2(one, 206);
    CHECK(one.response.field("content-range") == "bytes 100-199/1000");
    CHECK(one.response.field("content-length") == "100");
    CHECK(one.response.body == data.substr(100, 100));

    const auto several = fetch(s, way, "/data.bin", "-H 'range: bytes=0-9, 500-599, 990-'");
    check_h2(several, 206);
    const auto type = several.response.field("content-type").value_or("");
    const std::string prefix = "multipart/byteranges; boundary=";
    REQUIRE_THAT(type, StartsWith(prefix));
    CHECK(several.response.field("content-length") == std::to_string(several.response.body.size()));
    const auto parts = parse_byteranges(several.response.body, type.substr(prefix.size()));
    REQUIRE(parts.size() == 3);
    const std::vector<std::pair<std::size_t, std::size_t>> expected = {
        {0, 10}, {500, 100}, {990, 10}};
    for (std::size_t i = 0; i < parts.size(); ++i) {
      INFO("part " << i);
      const auto [first, size] = expected[i];
      CHECK(parts[i].content_type == one.response.field("content-type"));
      CHECK(parts[i].content_range ==
            "bytes " + std::to_string(first) + "-" + std::to_string(first + size - 1) + "/1000");
      CHECK(parts[i].data == data.substr(first, size));
    }

    const auto past = fetch(s, way, "/data.bin", "-H 'range: bytes=2000-'");
    check_h2(past, 416);
    CHECK(past.response.field("content-range") == "bytes */1000");
    CHECK(past.response.body.empty());
  }
}

TEST_CASE(
    "over h2 the redirects keep the query (slash, and --https-redirect on h2c), and missing "
    "paths get the fallbacks",
    "[e2e][serve][http2][net]") {
  const h2_server s;
  for (const auto way : h2_routes) {
    INFO(name_of(way));
    const auto moved = fetch(s, way, "/docs?a=1&b");
    check_h2(moved, 308);
    CHECK(moved.response.field("location") == "/docs/?a=1&b");
    CHECK(moved.response.body.empty());
    const auto folder = fetch(s, way, "/docs/");
    check_h2(folder, 200);
    CHECK(folder.response.body == "docs index");
    const auto missing = fetch(s, way, "/nothing");
    check_h2(missing, 404);
    CHECK(missing.response.body == "404 Not Found\n");
    const auto custom = fetch(s, way, "/private/nothing");
    check_h2(custom, 404);
    CHECK(custom.response.body == "custom not found");
    const auto wildcard = fetch(s, way, "/app/any/thing");
    check_h2(wildcard, 200);
    CHECK(wildcard.response.body == "wildcard");
  }
  // The plain listener of --https-redirect sends h2c clients to https too; TLS is served.
  const h2_server redirecting({"--https-redirect"});
  const auto sent = fetch(redirecting, route::h2c, "/docs?a=1&b");
  check_h2(sent, 308);
  CHECK(sent.response.field("location") ==
        "https://127.0.0.1:" + std::to_string(redirecting.server.tls_port()) + "/docs?a=1&b");
  const auto served = fetch(redirecting, route::h2, "/hello.txt");
  check_h2(served, 200);
  CHECK(served.response.body == "hello");
}

TEST_CASE(
    "over h2 the security headers and date are sent, --security-headers-disable drops them, "
    "--security-headers-tls adds strict-transport-security over TLS",
    "[e2e][serve][http2][net]") {
  const std::vector<std::string> security = {"x-content-type-options", "referrer-policy",
                                             "x-frame-options"};
  {
    const h2_server s({"--security-headers-tls"});
    for (const auto way : h2_routes) {
      INFO(name_of(way));
      for (const std::string target : {"/hello.txt", "/docs", "/nothing"}) {
        INFO(target);
        const auto got = fetch(s, way, target);
        CHECK(got.run.exit_code == 0);
        CHECK(got.version == "2");
        CHECK(got.response.field("x-content-type-options") == "nosniff");
        CHECK(got.response.field("referrer-policy") == "strict-origin-when-cross-origin");
        CHECK(got.response.field("x-frame-options") == "SAMEORIGIN");
        CHECK(got.response.count("date") == 1);
        CHECK(got.response.field("date").value_or("").ends_with(" GMT"));
        if (way == route::h2) {
          CHECK(got.response.field("strict-transport-security") == "max-age=31536000");
        } else {
          CHECK_FALSE(got.response.has("strict-transport-security"));
        }
      }
    }
  }
  const h2_server s({"--security-headers-disable"});
  for (const auto way : h2_routes) {
    INFO(name_of(way));
    for (const std::string target : {"/hello.txt", "/docs", "/nothing"}) {
      INFO(target);
      const auto got = fetch(s, way, target);
      CHECK(got.version == "2");
      for (const auto& name : security) CHECK_FALSE(got.response.has(name));
      CHECK_FALSE(got.response.has("strict-transport-security"));
      CHECK(got.response.has("date"));
    }
  }
}

TEST_CASE(
    "every h2 answer, seen on the frames, has lower-case names, :status first, date, and no "
    "connection-specific field",
    "[e2e][serve][http2][net]") {
  const h2_server s({"--security-headers-tls"});
  const auto tag = fetch(s, route::h2c, "/hello.txt").response.field("etag").value_or("");
  REQUIRE(!tag.empty());
  // One of every kind of answer, and its status.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"GET|/", "200"},
      {"HEAD|/", "200"},
      {"GET|/|accept-encoding: br", "200"},
      {"GET|/hello.txt|accept-encoding: gzip", "200"},
      {"GET|/data.bin|range: bytes=0-9", "206"},
      {"GET|/data.bin|range: bytes=0-9, 20-29", "206"},
      {"GET|/data.bin|range: bytes=5000-", "416"},
      {"GET|/hello.txt|if-none-match: " + tag, "304"},
      {"GET|/hello.txt|if-match: \"nope\"", "412"},
      {"GET|/docs?x=1", "308"},
      {"GET|/nothing", "404"},
      {"GET|/private/nothing", "404"},
      {"POST|/", "405"},
      {"FOO|/", "501"},
      {"GET|/big.bin", "200"},
  };
  std::vector<std::string> specs;
  for (const auto& [spec, status] : cases) specs.push_back(spec);
  const std::set<std::string> connection_specific = {"connection", "keep-alive", "proxy-connection",
                                                     "transfer-encoding", "upgrade"};
  for (const bool tls : {false, true}) {
    INFO((tls ? "h2 over TLS" : "h2c"));
    const auto answers = raw_fetch(s, tls, specs);
    REQUIRE(answers.size() == cases.size());
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const auto& got = answers[i];
      INFO(cases[i].first);
      REQUIRE(!got.fields.empty());
      CHECK(got.fields.front() == std::pair<std::string, std::string>(":status", cases[i].second));
      std::size_t dates = 0;
      for (const auto& [name, value] : got.fields) {
        INFO(name << ": " << value);
        CHECK(std::none_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
        CHECK_FALSE(connection_specific.contains(name));
        CHECK((name == ":status" || name.front() != ':'));
        dates += name == "date" ? 1u : 0u;
      }
      CHECK(dates == 1);
      CHECK(got.field("strict-transport-security").has_value() == tls);
      const bool bodiless = cases[i].first.starts_with("HEAD") || cases[i].second == "304";
      if (bodiless) {
        CHECK(got.end == "with-headers");
        CHECK(got.data_bytes == 0);
      } else {
        CHECK(std::to_string(got.data_bytes) == got.field("content-length").value_or("none"));
      }
    }
  }
}

TEST_CASE("curl gets the same status, fields and body over h2 and h2c as over HTTP/1.1",
          "[e2e][serve][http2][net]") {
  const h2_server s({"--security-headers-tls"});
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"/", ""},
      {"/", "-H 'accept-encoding: br'"},
      {"/", "-H 'accept-encoding: gzip'"},
      {"/hello.txt", "-H 'if-none-match: *'"},
      {"/hello.txt", "-H 'if-match: \"nope\"'"},
      {"/data.bin", "-H 'range: bytes=1-2, 30-40'"},
      {"/data.bin", "-H 'range: bytes=-10'"},
      {"/data.bin", "-H 'range: bytes=3000-'"},
      {"/docs?q", ""},
      {"/hello", ""},
      {"/nothing", ""},
      {"/private/x", ""},
      {"/app/x", ""},
      {"/", "-X POST"},
      {"/", "-X FOO"},
  };
  const std::vector<std::pair<route, route>> pairs = {{route::h2c, route::http1},
                                                      {route::h2, route::http1_tls}};
  for (const auto& [over_h2, over_http1] : pairs) {
    INFO(name_of(over_h2) << " against " << name_of(over_http1));
    for (const auto& [target, options] : requests) {
      INFO(target << " " << options);
      const auto h2 = fetch(s, over_h2, target, options);
      const auto http1 = fetch(s, over_http1, target, options);
      check_h2(h2, http1.response.status);
      CHECK(http1.version == "1.1");
      CHECK(comparable_fields(h2.response) == comparable_fields(http1.response));
      CHECK(h2.response.body == http1.response.body);
    }
  }
}

TEST_CASE(
    "a body of 4 MiB arrives intact over h2 and h2c, to curl and within nghttp's 64 KiB "
    "windows",
    "[e2e][serve][http2][net]") {
  const h2_server s;
  const auto& big = s.site.big;
  for (const auto way : h2_routes) {
    INFO(name_of(way));
    const auto got = fetch(s, way, "/big.bin");
    check_h2(got, 200);
    CHECK_FALSE(got.response.has("content-encoding"));
    CHECK(got.response.field("content-length") == std::to_string(big.size()));
    CHECK(got.response.body.size() == big.size());
    CHECK((got.response.body == big));  // not decomposed: Catch would print MiBs
  }
  // nghttp's windows are 64 KiB (stream and connection): the server must wait for its
  // WINDOW_UPDATEs, 64 times over.
  for (const auto& url :
       {"http://127.0.0.1:" + std::to_string(s.server.port()) + "/big.bin",
        "https://127.0.0.1:" + std::to_string(s.server.tls_port()) + "/big.bin"}) {
    INFO(url);
    const auto got = bounded(s, "nghttp " + url);
    INFO("nghttp: " << got.err);
    CHECK(got.exit_code == 0);
    CHECK(got.out.size() == big.size());
    CHECK((got.out == big));
  }
}

TEST_CASE("many concurrent streams on one connection are all answered, and HTTP/1.1 still is",
          "[e2e][serve][http2][net]") {
  h2_server s;
  const auto plain = "http://127.0.0.1:" + std::to_string(s.server.port());
  const auto tls = "https://127.0.0.1:" + std::to_string(s.server.tls_port());
  {
    // 50 streams of one URI at once on one connection (nghttp's limit is the server's 128).
    const auto got = bounded(s, "nghttp -nv -m 50 " + plain + "/hello.txt");
    INFO(got.out << got.err);
    CHECK(got.exit_code == 0);
    CHECK(occurrences(got.out, "] Connected") == 1);
    CHECK(occurrences(got.out, ":status: ") == 50);
    CHECK(occurrences(got.out, ":status: 200") == 50);
    CHECK(contains(got.out, "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):128]"));
  }
  for (const auto& base : {plain, tls}) {
    // 2 connections of 20 streams at a time each, 500 requests of the 20 KB page.
    const auto got = bounded(s, "h2load -n 500 -c 2 -m 20 " + base + "/");
    INFO(got.out << got.err);
    CHECK(got.exit_code == 0);
    CHECK(contains(got.out,
                   "\nrequests: 500 total, 500 started, 500 done, 500 succeeded, 0 "
                   "failed, 0 errored, 0 timeout\n"));
    CHECK(contains(got.out, "\nstatus codes: 500 2xx, 0 3xx, 0 4xx, 0 5xx\n"));
    if (base == tls) {
      CHECK(contains(got.out, "\nApplication protocol: h2\n"));
    }
  }
  client plain_client(s.server.port());
  CHECK(plain_client.request(request("/hello.txt")).body == "hello");
  tls_client secure(s.server.tls_port(), tls_client_settings{.alpn = {"http/1.1"}});
  CHECK(secure.alpn() == "http/1.1");
  CHECK(secure.request(request("/hello.txt")).body == "hello");
  CHECK(s.server.stop() == 0);
}

TEST_CASE("the --debug line of an h2 request ends with HTTP/2", "[e2e][serve][http2][net]") {
  h2_server s({"--debug"});
  check_h2(fetch(s, route::h2c, "/hello.txt"), 200);
  check_h2(fetch(s, route::h2, "/nothing"), 404);
  CHECK(fetch(s, route::http1, "/hello.txt").response.status == 200);
  CHECK(s.server.stop() == 0);
  const auto log = s.server.errors();
  INFO(log);
  const auto lines = parse_debug_log(log);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].target == "/hello.txt");
  CHECK(lines[0].status == 200);
  CHECK(lines[0].bytes == 5);
  CHECK(lines[0].line.ends_with("us HTTP/2"));
  CHECK(lines[1].target == "/nothing");
  CHECK(lines[1].status == 404);
  CHECK(lines[1].line.ends_with("us HTTP/2"));
  CHECK(lines[2].line.ends_with("us HTTP/1.1"));
}

TEST_CASE("with --http2-disable TLS falls back to HTTP/1.1 and the preface gets 505 and a close",
          "[e2e][serve][http2][net]") {
  h2_server s({"--http2-disable"});
  const auto fallback = fetch(s, route::h2, "/hello.txt");
  INFO("curl: " << fallback.run.err);
  CHECK(fallback.run.exit_code == 0);
  CHECK(fallback.version == "1.1");
  CHECK(fallback.response.body == "hello");
  tls_client offered(s.server.tls_port(), tls_client_settings{.alpn = {"h2", "http/1.1"}});
  CHECK(offered.alpn() == "http/1.1");

  const auto prior = fetch(s, route::h2c, "/hello.txt");
  CHECK(prior.run.exit_code != 0);
  CHECK(prior.version != "2");
  client c(s.server.port());
  c.send(kawipiko::serve::http2_protocol::preface);
  const auto refused = c.read_response();
  CHECK(refused.status == 505);
  CHECK(refused.field("Connection") == "close");
  CHECK(c.closed_within());
  CHECK(s.server.stop() == 0);
}

TEST_CASE("with --http1-disable HTTP/1.1 gets 505 on both listeners and h2 is served",
          "[e2e][serve][http2][net]") {
  h2_server s({"--http1-disable"});
  const auto refused = fetch(s, route::http1_tls, "/hello.txt");
  CHECK(refused.version == "1.1");
  CHECK(refused.response.status == 505);
  CHECK(refused.response.body != "hello");
  {
    tls_client secure(s.server.tls_port(), tls_client_settings{.alpn = {"http/1.1"}});
    CHECK(secure.alpn().empty());
    const auto got = secure.request(request("/hello.txt"));
    CHECK(got.status == 505);
    CHECK(got.field("Connection") == "close");
  }
  client plain(s.server.port());
  const auto got = plain.request(request("/hello.txt"));
  CHECK(got.status == 505);
  CHECK(got.field("Connection") == "close");
  CHECK(plain.closed_within());

  tls_client offered(s.server.tls_port(), tls_client_settings{.alpn = {"h2", "http/1.1"}});
  CHECK(offered.alpn() == "h2");
  for (const auto way : h2_routes) {
    INFO(name_of(way));
    const auto served = fetch(s, way, "/hello.txt");
    check_h2(served, 200);
    CHECK(served.response.body == "hello");
  }
  CHECK(s.server.stop() == 0);
}

TEST_CASE(
    "SIGTERM sends GOAWAY with the last stream to an open h2 connection, lets its stream "
    "finish, and exits 0",
    "[e2e][serve][http2][net]") {
  SECTION("an idle connection") {
    h2_server s;
    const auto script = s.site.folder.write("h2_client.py", std::string(h2_client_source));
    child_process h2_client(
        python, {script.string(), "idle", std::to_string(s.server.port()), "plain", "/hello.txt"});
    CHECK(h2_client.read_line() == "answered 5");
    CHECK(s.server.stop() == 0);
    CHECK(h2_client.read_line() == "goaway 0 1");
    CHECK(h2_client.read_line() == "closed");
    CHECK(h2_client.wait_exit(10s) == std::optional<int>(0));
  }
  SECTION("a stream held by its flow-control window, over TLS") {
    h2_server s;
    const auto script = s.site.folder.write("h2_client.py", std::string(h2_client_source));
    child_process h2_client(
        python, {script.string(), "busy", std::to_string(s.server.tls_port()), "tls", "/big.bin"});
    CHECK(h2_client.read_line() == "stalled 1000");
    REQUIRE(::kill(s.server.pid(), SIGTERM) == 0);
    // The server drains (its listeners are closed) while the stream waits for the window.
    CHECK(refused_within(s.server.port(), 10s));
    REQUIRE(::kill(h2_client.pid(), SIGUSR1) == 0);
    std::set<std::string> reported;
    std::optional<std::string> line;
    while ((line = h2_client.read_line()) && *line != "closed") reported.insert(*line);
    CHECK(line == "closed");
    CHECK(reported == std::set<std::string>{"goaway 0 1", "answered 4194304"});
    CHECK(h2_client.wait_exit(10s) == std::optional<int>(0));
    CHECK(s.server.wait_exit(10s) == std::optional<int>(0));
  }
}
