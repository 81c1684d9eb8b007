// Fuzz target: the TLS and HTTP/1.1 path a TLS connection runs, over memory. The server side is
// serve::tls_session (the I/O-free TLS the TLS transport runs over a socket) feeding
// serve::http1_protocol and the handler; its records go to a memory sender that takes only part
// of what it is given when the input says so, so that records wait and are sent later.
//
// The first byte chooses:
// - even: the rest is what a client sent, records and all (a hostile or broken handshake): the
//   session must refuse it or go on asking for more, never crash, and say nothing after failing;
// - odd: an OpenSSL client (in memory, TLS 1.2 or 1.3 by the second byte) completes a handshake,
//   then sends the rest as its plaintext requests; the decrypted answers must be HTTP/1.1
//   responses, the session must not fail, and the bytes decrypted per call are bounded by the
//   room given (the third byte).

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "serve/handler.hpp"
#include "serve/http1.hpp"
#include "serve/options.hpp"
#include "serve/output.hpp"
#include "serve/site.hpp"
#include "serve/tls_context.hpp"
#include "serve/tls_session.hpp"

namespace serve = kawipiko::serve;

namespace {

constexpr std::string_view date = "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n";

std::unique_ptr<serve::site> site;
std::unique_ptr<serve::tls_context> server_tls;
SSL_CTX* client_context = nullptr;
std::unique_ptr<serve::tls_buffers> buffers;
std::unique_ptr<serve::output> batch;

// Records the server sends, taken `budget` bytes at a time (0: all) so that some wait.
struct memory_sender final : serve::record_sender {
  std::string sent;
  std::size_t budget = 0;
  bool stalled_once = false;

  serve::io_result send(std::span<const iovec> records) noexcept override {
    std::size_t taken = 0;
    for (const auto& r : records) {
      std::size_t n = r.iov_len;
      if (budget != 0) n = std::min(n, budget > taken ? budget - taken : 0);
      sent.append(static_cast<const char*>(r.iov_base), n);
      taken += n;
      if (n < r.iov_len) break;
    }
    if (taken == 0 && budget != 0) return {serve::io_status::would_block};
    return {serve::io_status::done, taken};
  }
};

// The server side of one connection.
struct server_side {
  memory_sender sender;
  serve::tls_session session{server_tls->current().get(), *buffers, sender};
  serve::options opts;
  serve::handler answers{*site, serve::answer_settings{}};
  serve::protocol_context ctx{answers, opts};
  serve::http1_protocol protocol;
  std::string plain;  // the worker's read buffer
  bool failed = false;

  explicit server_side(std::size_t room) : plain(room, '\0') {}

  // Records from the client; what can be decrypted is answered. Returns whether it went on.
  bool take(std::string_view records) {
    session.take_records(records);
    for (int round = 0; round < 10000; ++round) {
      const auto kept = std::string(protocol.kept());
      if (kept.size() >= plain.size()) return false;  // the connection would answer 431 first
      std::memcpy(plain.data(), kept.data(), kept.size());
      const auto step =
          session.decrypt(std::span<char>(plain).subspan(kept.size()));
      using outcome = serve::tls_session::outcome;
      if (step.what == outcome::failed) {
        failed = true;
        return false;
      }
      if (step.what != outcome::data) return step.what == outcome::again;
      KAWIPIKO_FUZZ_CHECK(step.bytes <= plain.size() - kept.size());
      auto next = protocol.on_input({plain.data(), kept.size() + step.bytes}, false, date, ctx,
                                    *batch);
      write_all();
      while (next == serve::http1_protocol::next::answer) {
        next = protocol.on_input(std::string(protocol.kept()), false, date, ctx, *batch);
        write_all();
      }
      if (next == serve::http1_protocol::next::close) return false;
      if (!session.has_buffered_input()) return true;
    }
    return true;
  }

  // The batch, through the session: a stalled sender is called again as a socket would be
  // (a session that never finishes is caught by libFuzzer's timeout).
  void write_all() {
    const std::vector<iovec> parts(batch->parts().begin(), batch->parts().end());
    std::size_t offset = 0;
    for (;;) {
      std::vector<iovec> rest;
      std::size_t skip = offset;
      for (const auto& p : parts) {
        if (skip >= p.iov_len) {
          skip -= p.iov_len;
          continue;
        }
        rest.push_back({static_cast<char*>(p.iov_base) + skip, p.iov_len - skip});
        skip = 0;
      }
      const auto r = session.write(rest, {});
      KAWIPIKO_FUZZ_CHECK(r.status != serve::io_status::failed);
      offset += r.bytes;
      if (r.status == serve::io_status::done && r.bytes == total(rest)) return;
    }
  }

  static std::size_t total(const std::vector<iovec>& parts) {
    std::size_t total = 0;
    for (const auto& p : parts) total += p.iov_len;
    return total;
  }
};

std::string drain(BIO* bio) {
  std::string out;
  char chunk[16384];
  int n;
  while ((n = BIO_read(bio, chunk, sizeof chunk)) > 0) out.append(chunk, static_cast<std::size_t>(n));
  return out;
}

void raw_records(std::string_view input, std::size_t room) {
  server_side server(room);
  server.take(input);
  if (server.failed) {
    // After a failure nothing more is decrypted.
    const std::size_t sent = server.sender.sent.size();
    server.take({});
    KAWIPIKO_FUZZ_CHECK(server.sender.sent.size() == sent);
  }
}

void conversation(std::string_view requests, bool tls12, std::size_t room, std::size_t budget) {
  server_side server(room);
  server.sender.budget = budget;
  SSL* client = SSL_new(client_context);
  BIO* from_server = BIO_new(BIO_s_mem());
  BIO* to_server = BIO_new(BIO_s_mem());
  SSL_set_bio(client, from_server, to_server);
  SSL_set_connect_state(client);
  SSL_set_max_proto_version(client, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
  bool ok = true;
  for (int round = 0; round < 50 && ok && SSL_is_init_finished(client) == 0; ++round) {
    (void)SSL_do_handshake(client);
    ok = server.take(drain(to_server));
    std::string& sent = server.sender.sent;
    BIO_write(from_server, sent.data(), static_cast<int>(sent.size()));
    sent.clear();
    // Records the sender held back go out when the "socket" takes more.
    while (ok && server.session.write({}, {}).status == serve::io_status::would_block) {
      BIO_write(from_server, sent.data(), static_cast<int>(sent.size()));
      sent.clear();
    }
    BIO_write(from_server, sent.data(), static_cast<int>(sent.size()));
    sent.clear();
  }
  KAWIPIKO_FUZZ_CHECK(SSL_is_init_finished(client) == 1);
  KAWIPIKO_FUZZ_CHECK(!server.failed);
  if (!requests.empty()) {
    KAWIPIKO_FUZZ_CHECK(SSL_write(client, requests.data(), static_cast<int>(requests.size())) > 0);
    (void)server.take(drain(to_server));
    KAWIPIKO_FUZZ_CHECK(!server.failed);
    std::string& sent = server.sender.sent;
    BIO_write(from_server, sent.data(), static_cast<int>(sent.size()));
    std::string answers;
    char chunk[16384];
    int n;
    while ((n = SSL_read(client, chunk, sizeof chunk)) > 0) answers.append(chunk, static_cast<std::size_t>(n));
    if (!answers.empty()) KAWIPIKO_FUZZ_CHECK(answers.starts_with("HTTP/1.1 "));
  }
  SSL_free(client);
  ERR_clear_error();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const kawipiko::fuzz::fixture_archive fixture;
  serve::options options;
  options.archive = fixture.path();
  options.in_memory = true;  // the fixture's folder goes
  site = std::make_unique<serve::site>(options);
  serve::tls_settings settings;
  settings.self_signed = true;
  server_tls = std::make_unique<serve::tls_context>(settings, std::vector<std::string>{"http/1.1"},
                                                    serve::make_ticket_master());
  client_context = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(client_context, SSL_VERIFY_NONE, nullptr);
  buffers = std::make_unique<serve::tls_buffers>();
  batch = std::make_unique<serve::output>();
  // Before OpenSSL's own clean-up at exit (registered earlier, so run later), which would leave
  // the contexts' ex_data unfreeable.
  std::atexit([] {
    server_tls.reset();
    SSL_CTX_free(client_context);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The room for plaintext: 1 to 64 KiB; the sender's budget: all, or 1 to 255 bytes a call.
  const std::size_t room = 1 + static_cast<std::size_t>(data[2]) * 256;
  const std::size_t budget = data[3] % 4 == 0 ? 0 : data[3];
  if (data[0] % 2 == 0) {
    raw_records(input.substr(4), room);
  } else {
    conversation(input.substr(4), data[1] % 2 == 0, room, budget);
  }
  return 0;
}
