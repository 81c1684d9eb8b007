// Fuzz target: bytes as HTTP/2 frames from a client, through serve::http2_protocol (nghttp2's
// server session) and the handler, over memory, as a connection runs them.
//
// The first byte chooses how the input is cut into reads (1 to 127 bytes each, or all at once)
// and whether the server is draining; the client's connection preface is put in front of the
// rest, so that the mutations reach the frames. What the server sends must be whole frames
// (checked by their 9-byte headers), opening with its SETTINGS, and a batch that filled up must
// be drained in a bounded number of rounds.

#include "serve/http2.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "serve/handler.hpp"
#include "serve/options.hpp"
#include "serve/output.hpp"
#include "serve/site.hpp"

namespace serve = kawipiko::serve;

namespace {

constexpr std::string_view date = "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n";

std::unique_ptr<serve::site> site;
std::unique_ptr<serve::output> batch;

// Checks that `sent` (all the server wrote) is a run of whole frames and returns their count;
// the first is SETTINGS on stream 0.
std::size_t check_frames(std::string_view sent) {
  std::size_t frames = 0;
  while (!sent.empty()) {
    KAWIPIKO_FUZZ_CHECK(sent.size() >= 9);
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(sent[i]); };
    const std::size_t length = (std::size_t{byte(0)} << 16) | (std::size_t{byte(1)} << 8) | byte(2);
    const unsigned type = byte(3);
    const std::uint32_t stream = ((std::uint32_t{byte(5)} & 0x7f) << 24) |
                                 (std::uint32_t{byte(6)} << 16) | (std::uint32_t{byte(7)} << 8) |
                                 byte(8);
    if (frames == 0) KAWIPIKO_FUZZ_CHECK(type == 0x4 && stream == 0);  // SETTINGS
    // Server frames on streams are on client-opened (odd) ones: this server never pushes.
    if (stream != 0) KAWIPIKO_FUZZ_CHECK(stream % 2 == 1);
    KAWIPIKO_FUZZ_CHECK(sent.size() - 9 >= length);
    sent.remove_prefix(9 + length);
    ++frames;
  }
  return frames;
}

void converse(std::string_view input, std::size_t read_size, bool draining) {
  serve::options opts;
  serve::handler answers(*site, serve::answer_settings{});
  serve::protocol_context ctx{answers, opts};
  serve::http2_protocol server(opts);
  std::string sent;
  const auto take = [&](std::string_view bytes) {
    auto next = server.on_input(bytes, false, date, ctx, *batch);
    for (const auto& part : batch->parts()) {
      sent.append(static_cast<const char*>(part.iov_base), part.iov_len);
    }
    for (int round = 0; next == serve::next_step::answer; ++round) {
      KAWIPIKO_FUZZ_CHECK(round < 100'000);
      next = server.on_input({}, false, date, ctx, *batch);
      for (const auto& part : batch->parts()) {
        sent.append(static_cast<const char*>(part.iov_base), part.iov_len);
      }
    }
    return next;
  };
  ctx.draining = draining;
  const std::string whole = std::string(serve::http2_protocol::preface) + std::string(input);
  std::string_view rest = whole;
  while (!rest.empty()) {
    const auto bytes = rest.substr(0, read_size);
    rest.remove_prefix(bytes.size());
    if (take(bytes) == serve::next_step::close) break;
  }
  (void)check_frames(sent);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const kawipiko::fuzz::fixture_archive fixture;
  serve::options options;
  options.archive = fixture.path();
  options.in_memory = true;  // the fixture's folder goes
  site = std::make_unique<serve::site>(options);
  batch = std::make_unique<serve::output>();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  // Low 7 bits: reads of 1 to 127 bytes, or (0) the whole input at once; high bit: draining.
  const std::size_t cut = data[0] & 0x7f;
  converse(input, cut == 0 ? input.size() + 24 : cut, (data[0] & 0x80) != 0);
  return 0;
}
