#include "serve/access_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "support/temp_folder.hpp"

namespace serve = kawipiko::serve;
using kawipiko::test::read_file;
using kawipiko::test::temp_folder;

namespace {

using format = serve::access_log_format;

std::string line_of(format f, const serve::access_entry& e, std::string_view time = "T") {
  std::vector<char> out(serve::max_line_bytes);
  const auto size = serve::format_line(f, e, time, out.data());
  REQUIRE(size <= out.size());
  return {out.data(), size};
}

serve::access_entry typical() {
  serve::access_entry e;
  e.client = "192.0.2.7";
  e.method = "GET";
  e.target = "/a?b=c";
  e.protocol = "HTTP/1.1";
  e.host = "example.com";
  e.referer = "https://example.com/";
  e.user_agent = "curl/7.88.1";
  e.status = 200;
  e.bytes = 2326;
  e.encoding = "gzip";
  e.duration_us = 17;
  e.generation = 3;
  return e;
}

// `lines` typical lines for `tag` (their target).
void add_lines(serve::access_log_buffer& buffer, int lines, std::string_view tag) {
  auto e = typical();
  for (int i = 0; i < lines; ++i) {
    e.target = tag;
    buffer.add(e);
  }
}

std::size_t count_of(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a combined line has the fields log analysers read, in their order", "[serve][log]") {
  CHECK(line_of(format::combined, typical(), "10/Oct/2000:13:55:36 +0000") ==
        "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=c HTTP/1.1\" 200 2326 "
        "\"https://example.com/\" \"curl/7.88.1\"\n");
}

TEST_CASE("a combined line writes what is unknown as -", "[serve][log]") {
  serve::access_entry e;
  e.protocol = "HTTP/1.1";
  e.status = 400;
  CHECK(line_of(format::combined, e) == "- - - [T] \"-\" 400 0 \"-\" \"-\"\n");
}

TEST_CASE(
    "a combined line escapes quotes, backslashes, controls and bytes from 0x7f as hex escapes",
    "[serve][log]") {
  auto e = typical();
  e.target = "/a\"b\\c\r\nd\x7f\xe9";
  e.user_agent = "x\" \"forged\"\n1.2.3.4 - - [";
  const auto line = line_of(format::combined, e);
  CHECK(line.find("\"GET /a\\x22b\\x5Cc\\x0D\\x0Ad\\x7F\\xE9 HTTP/1.1\"") != std::string::npos);
  CHECK(line.find("\"x\\x22 \\x22forged\\x22\\x0A1.2.3.4 - - [\"\n") != std::string::npos);
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  CHECK(count_of(line, "\"") == 6);  // the request line's, the referer's, the user agent's
}

TEST_CASE("a json line holds every field, strings escaped and unknown ones as -", "[serve][log]") {
  CHECK(line_of(format::json, typical(), "2000-10-10T13:55:36Z") ==
        "{\"time\":\"2000-10-10T13:55:36Z\",\"client\":\"192.0.2.7\",\"host\":\"example.com\","
        "\"method\":\"GET\",\"target\":\"/a?b=c\",\"protocol\":\"HTTP/1.1\",\"status\":200,"
        "\"bytes\":2326,\"encoding\":\"gzip\",\"duration_us\":17,\"generation\":3,"
        "\"referer\":\"https://example.com/\",\"user_agent\":\"curl/7.88.1\"}\n");
  serve::access_entry unknown;
  unknown.status = 431;
  const auto line = line_of(format::json, unknown);
  CHECK(line.find("\"method\":\"-\",\"target\":\"-\"") != std::string::npos);
  CHECK(line.find("\"generation\":null") != std::string::npos);
}

TEST_CASE("a json line keeps UTF-8 and writes controls and other bytes as unicode escapes",
          "[serve][log]") {
  auto e = typical();
  e.user_agent = "caf\xc3\xa9 \"q\" \\ \r\n\x01\x7f \xff\xc3 \xed\xa0\x80";
  const auto line = line_of(format::json, e);
  CHECK(line.find("\"user_agent\":\"caf\xc3\xa9 \\\"q\\\" \\\\ \\u000D\\u000A\\u0001\\u007F "
                  "\\u00FF\\u00C3 \\u00ED\\u00A0\\u0080\"}") != std::string::npos);
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
}

TEST_CASE("fields are cut to their bounds, so a hostile line fits max_line_bytes", "[serve][log]") {
  serve::access_entry e;
  const std::string huge(100'000, '\x01');
  e.client = e.method = e.target = e.protocol = e.host = e.referer = e.user_agent = e.encoding =
      huge;
  for (const auto f : {format::combined, format::json}) {
    const auto line = line_of(f, e, huge);
    CHECK(line.size() <= serve::max_line_bytes);
    CHECK(line.find('\n') == line.size() - 1);
  }
}

TEST_CASE("the time fields are the combined format's and RFC 3339, in UTC", "[serve][log]") {
  serve::date_line combined(serve::time_format(format::combined));
  serve::date_line json(serve::time_format(format::json));
  CHECK(combined.at(971186136) == "10/Oct/2000:13:55:36 +0000");
  CHECK(json.at(971186136) == "2000-10-10T13:55:36Z");
}

TEST_CASE("an access log that cannot be opened is an error naming it", "[serve][log]") {
  temp_folder folder;
  const auto path = (folder.path() / "missing" / "access.log").string();
  try {
    serve::access_log_writer writer(path, format::combined);
    FAIL("opened");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find(path) != std::string::npos);
  }
}

TEST_CASE("the writer appends every thread's lines to the file, each thread's in order",
          "[serve][log]") {
  temp_folder folder;
  const auto path = folder.path() / "access.log";
  folder.write("access.log", "an older line\n");
  {
    serve::access_log_writer writer(path.string(), format::combined);
    writer.start(std::nullopt);
    serve::access_log_buffer one(writer), two(writer);
    add_lines(one, 500, "/one");  // more than one chunk
    add_lines(two, 3, "/two");
    add_lines(one, 2, "/one-last");
    two.flush();
    one.flush();
    writer.stop();
    CHECK(writer.dropped() == 0);
  }
  const auto text = read_file(path);
  CHECK(text.starts_with("an older line\n"));
  CHECK(count_of(text, "\"GET /one HTTP/1.1\"") == 500);
  CHECK(count_of(text, "\"GET /two HTTP/1.1\"") == 3);
  CHECK(text.find("/one-last") > text.rfind("\"GET /one HTTP"));
  CHECK(std::count(text.begin(), text.end(), '\n') == 506);
}

TEST_CASE("a reopen sends the next lines to a new file under the log's name", "[serve][log]") {
  temp_folder folder;
  const auto path = folder.path() / "access.log";
  serve::access_log_writer writer(path.string(), format::combined);
  writer.start(std::nullopt);
  serve::access_log_buffer buffer(writer);
  add_lines(buffer, 2, "/before");
  buffer.flush();
  // Written once the writer thread has taken it: stop() would end it, so wait for the bytes.
  for (int i = 0; i < 500 && read_file(path).empty(); ++i) ::usleep(10'000);
  std::filesystem::rename(path, folder.path() / "access.log.1");
  writer.reopen();
  add_lines(buffer, 3, "/after");
  buffer.flush();
  writer.stop();
  CHECK(count_of(read_file(folder.path() / "access.log.1"), "/before") == 2);
  CHECK(count_of(read_file(folder.path() / "access.log.1"), "/after") == 0);
  CHECK(count_of(read_file(path), "/after") == 3);
}

TEST_CASE("a destination that takes nothing gets lines dropped and counted, never a wait",
          "[serve][log]") {
  temp_folder folder;
  const auto fifo = folder.path() / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // A reader that never reads: the writer's writes fill the pipe, then take nothing.
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(reader >= 0);
  {
    serve::access_log_writer writer(fifo.string(), format::combined);
    writer.start(std::nullopt);
    serve::access_log_buffer buffer(writer);
    constexpr int lines = 40'000;  // about 5 MB, 130 chunks: well past the pipe and the queue
    add_lines(buffer, lines, "/stalled");
    buffer.flush();
    CHECK(writer.dropped() > 0);
    writer.stop();  // gives up on what is left, within its bound
    CHECK(writer.dropped() < lines);
    CHECK(writer.dropped() > lines / 2);
  }
  ::close(reader);
}
