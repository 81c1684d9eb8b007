#include "serve/metrics_endpoint.hpp"

#include <boost/asio/ip/address.hpp>
#include <catch2/catch.hpp>
#include <string>

#include "support/server_process.hpp"

namespace serve = kawipiko::serve;
using kawipiko::test::client;
using kawipiko::test::parse_response;
using serve::serving_state;

namespace {

const serve::metrics_writer some_metrics = [](std::string& out) { out += "kawipiko_x 1\n"; };

kawipiko::test::http_response ask(std::string_view head,
                                  serving_state state = serving_state::ready) {
  return parse_response(serve::answer_operations(head, state, some_metrics));
}

}  // namespace

TEST_CASE("GET /metrics is the exposition text, version 0.0.4", "[serve][metrics]") {
  const auto got = ask("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(got.status == 200);
  CHECK(got.field("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(got.field("Connection") == "close");
  CHECK(got.body == "kawipiko_x 1\n");
  CHECK(ask("GET /metrics?x=1 HTTP/1.0\r\n\r\n").status == 200);
}

TEST_CASE("/readyz is 200 only while ready, /healthz is 200 but while starting",
          "[serve][metrics]") {
  const std::string readyz = "GET /readyz HTTP/1.1\r\n\r\n";
  const std::string healthz = "GET /healthz HTTP/1.1\r\n\r\n";
  CHECK(ask(readyz, serving_state::starting).status == 503);
  CHECK(ask(readyz, serving_state::ready).status == 200);
  CHECK(ask(readyz, serving_state::draining).status == 503);
  CHECK(ask(readyz, serving_state::draining).body == "draining\n");
  CHECK(ask(healthz, serving_state::starting).status == 503);
  CHECK(ask(healthz, serving_state::ready).body == "ok\n");
  CHECK(ask(healthz, serving_state::draining).status == 200);
}

TEST_CASE("another path is 404, another method 405, what is not a request line 400",
          "[serve][metrics]") {
  CHECK(ask("GET / HTTP/1.1\r\n\r\n").status == 404);
  CHECK(ask("GET /metrics/x HTTP/1.1\r\n\r\n").status == 404);
  const auto post = ask("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  CHECK(post.status == 405);
  CHECK(post.field("Allow") == "GET");
  CHECK(ask("HEAD /healthz HTTP/1.1\r\n\r\n").status == 405);
  CHECK(ask("hello\r\n\r\n").status == 400);
  CHECK(ask("GET /metrics SPDY/3\r\n\r\n").status == 400);
}

TEST_CASE("the endpoint answers on its own listener and tells its state as it changes",
          "[serve][metrics][net]") {
  serve::metrics_endpoint endpoint({boost::asio::ip::make_address("127.0.0.1"), 0}, some_metrics);
  REQUIRE(endpoint.port() != 0);
  endpoint.start();
  {
    client c(endpoint.port());
    CHECK(c.request("GET /readyz HTTP/1.1\r\n\r\n").status == 503);
    CHECK(c.closed_within());
  }
  endpoint.set_state(serving_state::ready);
  {
    client c(endpoint.port());
    const auto got = c.request("GET /metrics HTTP/1.1\r\n\r\n");
    CHECK(got.status == 200);
    CHECK(got.body == "kawipiko_x 1\n");
  }
  {
    client c(endpoint.port());  // its request in pieces
    c.send("GET /rea");
    c.send("dyz HTTP/1.1\r\n");
    CHECK(c.request("\r\n").status == 200);
  }
}
