#include "serve/metrics.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

namespace serve = kawipiko::serve;

namespace {

std::string exposition(const serve::metrics_store& store) {
  std::string out;
  store.write(out);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

serve::response_info answer(
    unsigned status, int host = -1,
    kawipiko::archive::encoding coding = kawipiko::archive::encoding::identity,
    std::uint64_t bytes = 0) {
  serve::response_info info;
  info.status = status;
  info.host = host;
  info.coding = coding;
  info.body_bytes = bytes;
  return info;
}

}  // namespace

TEST_CASE(
    "answers are counted by site, protocol, method, status class and encoding, summed over "
    "threads and processes",
    "[serve][metrics]") {
  const serve::metrics_store store(2, 2, {"example.com", "*.example.org"}, {"site.cdb"});
  serve::request get;
  serve::request head;
  head.verb = serve::method::head;
  auto one = store.thread(0, 0);
  auto other = store.thread(1, 1);
  one.answered(serve::wire_protocol::http11, &get, answer(200, -1, {}, 100));
  other.answered(serve::wire_protocol::http11, &get, answer(204, -1, {}, 5));
  one.answered(serve::wire_protocol::http2, &head, answer(404, 1));
  other.answered(serve::wire_protocol::http10, nullptr, answer(400));
  one.answered(serve::wire_protocol::http11, &get,
               answer(206, 0, kawipiko::archive::encoding::br, 7));
  const auto text = exposition(store);
  CHECK(has_line(text, "# TYPE kawipiko_requests_total counter"));
  CHECK(has_line(text,
                 "kawipiko_requests_total{host=\"_default\",protocol=\"HTTP/1.1\","
                 "method=\"GET\",code=\"2xx\",encoding=\"identity\"} 2"));
  CHECK(has_line(text,
                 "kawipiko_requests_total{host=\"*.example.org\",protocol=\"HTTP/2.0\","
                 "method=\"HEAD\",code=\"4xx\",encoding=\"identity\"} 1"));
  CHECK(has_line(text,
                 "kawipiko_requests_total{host=\"_default\",protocol=\"HTTP/1.0\","
                 "method=\"-\",code=\"4xx\",encoding=\"identity\"} 1"));
  CHECK(has_line(text,
                 "kawipiko_requests_total{host=\"example.com\",protocol=\"HTTP/1.1\","
                 "method=\"GET\",code=\"2xx\",encoding=\"br\"} 1"));
  CHECK(has_line(text, "kawipiko_response_body_bytes_total{host=\"_default\"} 105"));
  CHECK(has_line(text, "kawipiko_response_body_bytes_total{host=\"example.com\"} 7"));
  CHECK(text.find("code=\"3xx\"") == std::string::npos);  // no sample for what never happened
}

TEST_CASE("open connections are those accepted and not closed, a dead process's are none",
          "[serve][metrics]") {
  serve::metrics_store store(2, 1, {}, {"site.cdb"});
  auto first = store.thread(0, 0);
  auto second = store.thread(1, 0);
  for (int i = 0; i < 3; ++i) first.accepted(false);
  first.closed(false);
  second.accepted(true);
  second.accepted(true);
  second.handshake(true);
  second.handshake(false);
  auto text = exposition(store);
  CHECK(has_line(text, "kawipiko_connections_accepted_total{transport=\"tcp\"} 3"));
  CHECK(has_line(text, "kawipiko_connections_closed_total{transport=\"tcp\"} 1"));
  CHECK(has_line(text, "kawipiko_connections_open{transport=\"tcp\"} 2"));
  CHECK(has_line(text, "kawipiko_connections_open{transport=\"tls\"} 2"));
  CHECK(has_line(text, "kawipiko_tls_handshakes_total 1"));
  CHECK(has_line(text, "kawipiko_tls_handshake_failures_total 1"));
  store.forget_connections(1);
  text = exposition(store);
  CHECK(has_line(text, "kawipiko_connections_open{transport=\"tls\"} 0"));
  CHECK(has_line(text, "kawipiko_connections_accepted_total{transport=\"tls\"} 2"));
}

TEST_CASE("each archive's reloads are summed, its build, generation and size are the latest load",
          "[serve][metrics]") {
  const serve::metrics_store store(2, 1, {"a.example"}, {"site.cdb", "a.cdb"});
  auto first = store.process(0);
  auto second = store.process(1);
  first.archive_state(0, 1, 1000, "00000000000000aa");
  second.archive_state(0, 2, 2000, "00000000000000bb");
  second.reload_done(0);
  first.reload_refused(0);
  first.archive_state(1, 1, 50, "0123456789abcdef");
  second.archive_state(1, 1, 50, "0123456789abcdef");
  first.dropped_lines(3);
  second.dropped_lines(4);
  const auto text = exposition(store);
  CHECK(has_line(text, "kawipiko_archive_reloads_total{archive=\"site.cdb\",result=\"done\"} 1"));
  CHECK(
      has_line(text, "kawipiko_archive_reloads_total{archive=\"site.cdb\",result=\"refused\"} 1"));
  CHECK(has_line(text, "kawipiko_archive_info{archive=\"site.cdb\",build=\"00000000000000aa\"} 1"));
  CHECK(has_line(text, "kawipiko_archive_info{archive=\"site.cdb\",build=\"00000000000000bb\"} 1"));
  CHECK(has_line(text, "kawipiko_archive_generation{archive=\"site.cdb\"} 2"));
  CHECK(has_line(text, "kawipiko_archive_size_bytes{archive=\"site.cdb\"} 2000"));
  CHECK(has_line(text, "kawipiko_archive_info{archive=\"a.cdb\",build=\"0123456789abcdef\"} 1"));
  CHECK(has_line(text, "kawipiko_archive_size_bytes{archive=\"a.cdb\"} 50"));
  CHECK(has_line(text, "kawipiko_access_log_dropped_lines_total 7"));
}

TEST_CASE("label values escape backslashes, quotes and line feeds", "[serve][metrics]") {
  const serve::metrics_store store(1, 1, {}, {"we\"ird\\name\n.cdb"});
  const auto text = exposition(store);
  CHECK(has_line(text, "kawipiko_archive_generation{archive=\"we\\\"ird\\\\name\\n.cdb\"} 0"));
}

TEST_CASE("a forked process counts into the same store", "[serve][metrics]") {
  const serve::metrics_store store(2, 1, {}, {"site.cdb"});
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto counters = store.thread(1, 0);
    for (int i = 0; i < 5; ++i) counters.accepted(false);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  store.thread(0, 0).accepted(false);
  CHECK(has_line(exposition(store), "kawipiko_connections_accepted_total{transport=\"tcp\"} 6"));
}
