#include "serve/date_line.hpp"

#include <catch2/catch.hpp>
#include <ctime>
#include <string>
#include <string_view>

namespace serve = kawipiko::serve;

TEST_CASE("the Date line is an IMF-fixdate in GMT ending with CRLF", "[serve][date_line]") {
  struct expectation {
    std::time_t second;
    std::string_view line;
  };
  for (const auto& [second, line] : {
           expectation{784111777, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"},  // RFC 9110's
           expectation{0, "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"},
           expectation{951782400, "Date: Tue, 29 Feb 2000 00:00:00 GMT\r\n"},
           expectation{253402300799, "Date: Fri, 31 Dec 9999 23:59:59 GMT\r\n"},
       }) {
    INFO(second);
    serve::date_line date;
    CHECK(date.at(second) == line);
  }
}

TEST_CASE("the Date line of the current second has the IMF-fixdate shape", "[serve][date_line]") {
  serve::date_line date;
  const std::string line(date.get());
  REQUIRE(line.size() == 37);
  CHECK(line.starts_with("Date: "));
  CHECK(line.substr(9, 2) == ", ");
  CHECK(line.ends_with(" GMT\r\n"));
  // "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
  for (const std::size_t at : {10u, 13u, 17u, 22u}) CHECK(line[at] == ' ');
  CHECK(line[25] == ':');
  CHECK(line[28] == ':');
}

TEST_CASE("a call in the same second reuses the line and a new second reformats it",
          "[serve][date_line]") {
  serve::date_line date;
  const auto first = date.at(784111777);
  const std::string kept(first);
  const auto again = date.at(784111777);
  CHECK(again.data() == first.data());
  CHECK(again == kept);
  CHECK(first == kept);  // an earlier view stays valid and unchanged within the second

  CHECK(date.at(784111778) == "Date: Sun, 06 Nov 1994 08:49:38 GMT\r\n");
  CHECK(date.at(784111778) == "Date: Sun, 06 Nov 1994 08:49:38 GMT\r\n");
  // Any other second, even an earlier one, is formatted anew.
  CHECK(date.at(784111777) == kept);
  CHECK(date.at(0) == "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n");
}
