#include "serve/output.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

namespace serve = kawipiko::serve;

namespace {

std::string joined(const serve::output& out) {
  std::string raw;
  for (const auto& part : out.parts()) {
    raw.append(static_cast<const char*>(part.iov_base), part.iov_len);
  }
  return raw;
}

std::string_view part(const serve::output& out, std::size_t i) {
  return {static_cast<const char*>(out.parts()[i].iov_base), out.parts()[i].iov_len};
}

}  // namespace

TEST_CASE("view appends a reference to the bytes, without copying them", "[serve][output]") {
  auto out = std::make_unique<serve::output>();
  CHECK(out->empty());
  const std::string body = "archived bytes";
  out->view(body);
  REQUIRE(out->parts().size() == 1);
  CHECK(out->parts()[0].iov_base == body.data());
  CHECK(out->parts()[0].iov_len == body.size());
  CHECK_FALSE(out->in_scratch(body.data()));
  CHECK(out->bytes() == body.size());
  CHECK_FALSE(out->empty());
  out->view({});  // nothing to send: no part
  CHECK(out->parts().size() == 1);
}

TEST_CASE("text copies into the scratch area and joins the part it follows", "[serve][output]") {
  auto out = std::make_unique<serve::output>();
  std::string line = "HTTP/1.1 200 OK\r\n";
  out->text(line);
  out->text("Date: x\r\n");
  line.assign(line.size(), '#');  // the copy does not depend on the caller's bytes
  REQUIRE(out->parts().size() == 1);
  CHECK(part(*out, 0) == "HTTP/1.1 200 OK\r\nDate: x\r\n");
  CHECK(out->in_scratch(out->parts()[0].iov_base));

  const std::string block = "ETag: \"a\"\r\n";
  out->view(block);
  out->text("\r\n");  // after a view: a new part, in the scratch area again
  out->text("");      // nothing: no part
  REQUIRE(out->parts().size() == 3);
  CHECK(part(*out, 1) == block);
  CHECK(part(*out, 2) == "\r\n");
  CHECK(out->in_scratch(out->parts()[2].iov_base));
  CHECK(joined(*out) == "HTTP/1.1 200 OK\r\nDate: x\r\nETag: \"a\"\r\n\r\n");
  CHECK(out->bytes() == joined(*out).size());
}

TEST_CASE("number appends the decimal digits of a value", "[serve][output]") {
  auto out = std::make_unique<serve::output>();
  for (const std::uint64_t value :
       {std::uint64_t{0}, std::uint64_t{7}, std::uint64_t{10}, std::uint64_t{1000},
        std::uint64_t{1234567890}, std::numeric_limits<std::uint64_t>::max()}) {
    out->clear();
    out->number(value);
    CHECK(joined(*out) == std::to_string(value));
    CHECK(serve::decimal(value).view() == std::to_string(value));
  }
  out->clear();
  out->text("Content-Length: ");
  out->number(42);
  out->text("\r\n");
  CHECK(out->parts().size() == 1);
  CHECK(joined(*out) == "Content-Length: 42\r\n");
}

TEST_CASE("byte_count counts what the same calls would append to an output", "[serve][output]") {
  auto out = std::make_unique<serve::output>();
  serve::byte_count count;
  const auto write = [](serve::byte_sink auto& sink) {
    sink.text("Content-Range: bytes ");
    sink.number(0);
    sink.text("-");
    sink.number(std::numeric_limits<std::uint64_t>::max());
    sink.view("archived");
    sink.view({});
    sink.text("");
  };
  write(*out);
  write(count);
  CHECK(count.bytes() == out->bytes());
  CHECK(count.bytes() == joined(*out).size());
}

TEST_CASE("has_room_for_response keeps a worst-case response within the batch's bounds",
          "[serve][output]") {
  const std::string archived = "x";
  SECTION("parts") {
    auto out = std::make_unique<serve::output>();
    // Views only: the scratch area stays empty, the part list fills.
    std::size_t parts = 0;
    while (out->has_room_for_response()) {
      out->view(archived);
      ++parts;
    }
    CHECK(parts == serve::output::max_parts - serve::output::response_parts + 1);
    CHECK(out->parts().size() + serve::output::response_parts > serve::output::max_parts);
    // What was promised before the last view still fits.
    for (std::size_t i = 1; i < serve::output::response_parts; ++i) out->view(archived);
    CHECK(out->parts().size() == serve::output::max_parts);
  }
  SECTION("scratch bytes") {
    auto out = std::make_unique<serve::output>();
    // One growing text part: the part list stays short, the scratch area fills.
    const std::string kilobyte(1024, 't');
    std::size_t written = 0;
    while (out->has_room_for_response()) {
      out->text(kilobyte);
      written += kilobyte.size();
    }
    CHECK(out->parts().size() == 1);
    CHECK(written + serve::output::response_bytes > serve::output::scratch_size);
    CHECK(written + serve::output::response_bytes <= serve::output::scratch_size + 1024);
    CHECK(out->bytes() == written);
  }
}

TEST_CASE("clear empties the batch for reuse", "[serve][output]") {
  auto out = std::make_unique<serve::output>();
  const std::string archived = "body";
  out->text("head\r\n");
  out->view(archived);
  out->clear();
  CHECK(out->empty());
  CHECK(out->parts().empty());
  CHECK(out->bytes() == 0);
  CHECK(out->has_room_for_response());
  out->text("again");
  REQUIRE(out->parts().size() == 1);
  CHECK(part(*out, 0) == "again");
  CHECK(out->in_scratch(out->parts()[0].iov_base));
}
