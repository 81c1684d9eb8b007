#include "serve/tls_session.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "support/tls_memory_pair.hpp"

// The sizes of a connection's records over its life (small first, full later, small again after
// an idle time), read off the wire by an OpenSSL client in memory, with the clock given to each
// write.

namespace serve = kawipiko::serve;
using kawipiko::test::tls_memory_pair;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

using time_point = tls_memory_pair::time_point;

constexpr std::size_t small = serve::tls_session::small_record;
constexpr std::size_t full = serve::tls_session::full_record;
constexpr auto small_count = static_cast<std::size_t>(serve::tls_session::small_records);

// `count` records of `size`, then what is left of `total` in full ones.
std::vector<std::size_t> expected_sizes(std::size_t total, std::size_t count, std::size_t size) {
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i < count && total > 0; ++i) {
    sizes.push_back(std::min(total, size));
    total -= sizes.back();
  }
  for (; total > 0; total -= sizes.back()) sizes.push_back(std::min(total, full));
  return sizes;
}

const std::string header = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n";
const std::string date = "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n";
const std::string body(100000, 'x');
const time_point start = time_point{} + std::chrono::hours(1);

}  // namespace

TEST_CASE("a connection's first records fit one segment, with the header pieces in the first",
          "[serve][tls]") {
  tls_memory_pair pair;
  const auto result = pair.write({header, date, body}, start);
  CHECK(result.status == serve::io_status::done);
  CHECK(result.bytes == header.size() + date.size() + body.size());
  std::string received;
  const auto sizes = pair.read_records(&received);
  CHECK(sizes == expected_sizes(result.bytes, small_count, small));
  CHECK(received == header + date + body);
}

TEST_CASE("a small answer is one record, header pieces and body together", "[serve][tls]") {
  tls_memory_pair pair;
  const std::string hello = "Hello, world\n";
  REQUIRE(pair.write({header, date, hello}, start).status == serve::io_status::done);
  CHECK(pair.read_records() ==
        std::vector<std::size_t>{header.size() + date.size() + hello.size()});
}

TEST_CASE("once its small records are out, a busy connection sends full records", "[serve][tls]") {
  tls_memory_pair pair;
  const std::string hello = "Hello, world\n";
  // Sixteen small answers use up the small records, one each.
  for (int i = 0; i < serve::tls_session::small_records; ++i) {
    REQUIRE(pair.write({header, date, hello}, start + i * milliseconds(10)).status ==
            serve::io_status::done);
  }
  CHECK(pair.read_records().size() == small_count);
  const auto later = start + milliseconds(999);
  REQUIRE(pair.write({header, date, body}, later).status == serve::io_status::done);
  CHECK(pair.read_records() == expected_sizes(header.size() + date.size() + body.size(), 0, full));
}

TEST_CASE("after a second without writes, a connection starts with small records again",
          "[serve][tls]") {
  tls_memory_pair pair;
  const std::size_t total = header.size() + date.size() + body.size();
  REQUIRE(pair.write({header, date, body}, start).status == serve::io_status::done);
  REQUIRE(pair.read_records().size() > small_count);
  REQUIRE(pair.write({header, date, body}, start + milliseconds(999)).status ==
          serve::io_status::done);
  CHECK(pair.read_records() == expected_sizes(total, 0, full));
  REQUIRE(pair.write({header, date, body}, start + milliseconds(999) + seconds(1)).status ==
          serve::io_status::done);
  CHECK(pair.read_records() == expected_sizes(total, small_count, small));
}

TEST_CASE("a write that finds records still waiting for the socket is not after an idle time",
          "[serve][tls]") {
  tls_memory_pair pair;
  REQUIRE(pair.write({header, date, body}, start).status == serve::io_status::done);
  REQUIRE(pair.read_records().size() > small_count);
  // The socket takes nothing: the records made wait, and the rest of a large answer is not
  // taken (more than the worker's record buffer holds).
  const std::string answer = header + date + std::string(300000, 'y');
  pair.sender().stalled = true;
  const auto stalled = pair.write({answer}, start + milliseconds(10));
  REQUIRE(stalled.status == serve::io_status::would_block);
  REQUIRE(stalled.bytes < answer.size());
  // Seconds later the socket takes them, and the rest of the answer follows in full records.
  pair.sender().stalled = false;
  const std::string_view rest = std::string_view(answer).substr(stalled.bytes);
  const auto resumed = pair.write({rest}, start + seconds(5));
  CHECK(resumed.status == serve::io_status::done);
  CHECK(resumed.bytes == rest.size());
  std::string received;
  CHECK(pair.read_records(&received) == expected_sizes(answer.size(), 0, full));
  CHECK((received == answer));  // not decomposed: Catch would print 300 KB
}
