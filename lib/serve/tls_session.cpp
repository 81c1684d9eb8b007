#include "serve/tls_session.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "serve/tls_context.hpp"

namespace kawipiko::serve {

// The BIO between OpenSSL and a tls_session: reads take the records the session was given, writes
// go to the worker's cipher_out buffer (or, once the sender stalls, to the connection's unsent
// bytes). Writes never fail and never ask to retry, so SSL_write always takes all it is given;
// the session bounds how much it encrypts ahead of the sender.
struct tls_bio {
  static BIO_METHOD* method() {
    static BIO_METHOD* const made = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kawipiko");
      if (m == nullptr) throw std::bad_alloc();
      BIO_meth_set_write_ex(m, &write);
      BIO_meth_set_read_ex(m, &read);
      BIO_meth_set_ctrl(m, &control);
      BIO_meth_set_create(m, [](BIO* b) {
        BIO_set_init(b, 1);
        return 1;
      });
      return m;
    }();
    return made;
  }

  static tls_session& owner(BIO* b) { return *static_cast<tls_session*>(BIO_get_data(b)); }

  static int write(BIO* b, const char* data, std::size_t size, std::size_t* written) {
    owner(b).bio_write(data, size);
    *written = size;
    return 1;
  }

  static int read(BIO* b, char* into, std::size_t size, std::size_t* got) {
    BIO_clear_retry_flags(b);
    const int n = owner(b).bio_read(into, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    if (n <= 0) {
      BIO_set_retry_read(b);
      *got = 0;
      return 0;
    }
    *got = static_cast<std::size_t>(n);
    return 1;
  }

  static long control(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }
};

tls_session::tls_session(SSL_CTX* context, tls_buffers& buffers, record_sender& sender)
    : buffers_(buffers), sender_(sender) {
  ssl_ = SSL_new(context);
  BIO* bio = ssl_ != nullptr ? BIO_new(tls_bio::method()) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl_);
    throw std::bad_alloc();
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  SSL_set_accept_state(ssl_);
}

tls_session::~tls_session() {
  SSL_free(ssl_);
}

std::string_view tls_session::alpn() const noexcept {
  const unsigned char* name = nullptr;
  unsigned length = 0;
  SSL_get0_alpn_selected(ssl_, &name, &length);
  return {reinterpret_cast<const char*>(name), length};
}

const served_certificate* tls_session::certificate() const noexcept {
  return served_certificate_of(ssl_);
}

bool tls_session::has_buffered_input() const noexcept {
  return SSL_pending(ssl_) > 0 || (!input_.empty() && !starved_);
}

void tls_session::take_records(std::string_view fresh) noexcept {
  starved_ = false;
  if (unread_.empty()) {
    input_ = fresh;
  } else {
    unread_.append(fresh);
    input_ = unread_;
  }
}

int tls_session::bio_read(char* into, int size) noexcept {
  const auto n = std::min(input_.size(), static_cast<std::size_t>(size));
  std::memcpy(into, input_.data(), n);
  input_.remove_prefix(n);
  return static_cast<int>(n);
}

// What OpenSSL has not read stays for the next read: the records taken are the caller's.
void tls_session::keep_unread() noexcept {
  if (input_.empty()) {
    unread_.clear();
  } else if (input_.data() >= unread_.data() && input_.data() < unread_.data() + unread_.size()) {
    unread_.erase(0, static_cast<std::size_t>(input_.data() - unread_.data()));
  } else {
    unread_.assign(input_);
  }
  input_ = unread_;
}

tls_session::step tls_session::decrypt(std::span<char> into) noexcept {
  const auto result = [this](int rc) -> step {
    switch (SSL_get_error(ssl_, rc)) {
      case SSL_ERROR_WANT_READ:
        return {outcome::again};
      case SSL_ERROR_ZERO_RETURN:
        return {outcome::end};
      default:
        ERR_clear_error();  // a bad record or a refused handshake: routine, not logged
        return {outcome::failed};
    }
  };
  step s{outcome::again};
  if (!SSL_is_init_finished(ssl_)) {
    const int rc = SSL_do_handshake(ssl_);
    if (rc != 1) s = result(rc);
  }
  if (SSL_is_init_finished(ssl_)) {
    std::size_t got = 0;
    const int rc = SSL_read_ex(ssl_, into.data(), into.size(), &got);
    s = rc == 1 ? step{outcome::data, got} : result(rc);
  }
  keep_unread();
  starved_ = s.what == outcome::again;  // what is left is not a whole record
  // Handshake messages, tickets and alerts: sent now, or kept for the next write.
  if (!flush() && s.what != outcome::data) s.what = outcome::failed;
  return s;
}

void tls_session::bio_write(const char* data, std::size_t size) noexcept {
  if (!unsent_.empty()) {
    unsent_.append(data, size);
    return;
  }
  auto& out = buffers_.cipher_out;
  while (size > 0) {
    if (buffers_.out_used == out.size()) {
      if (!flush() || !unsent_.empty()) {
        unsent_.append(data, size);
        return;
      }
    }
    const auto n = std::min(size, out.size() - buffers_.out_used);
    std::memcpy(out.data() + buffers_.out_used, data, n);
    buffers_.out_used += n;
    data += n;
    size -= n;
  }
}

// Sends the records in cipher_out, after those kept from before; keeps what the sender does not
// take. False if the sender failed.
bool tls_session::flush() noexcept {
  if (!unsent_.empty()) {
    unsent_.append(buffers_.cipher_out.data(), buffers_.out_used);
    buffers_.out_used = 0;
    const auto sent = send(unsent_.data(), unsent_.size());
    if (sent.status == io_status::failed) return false;
    unsent_.erase(0, sent.status == io_status::done ? sent.bytes : 0);
    return true;
  }
  if (buffers_.out_used == 0) return true;
  const auto sent = send(buffers_.cipher_out.data(), buffers_.out_used);
  const std::size_t bytes = sent.status == io_status::done ? sent.bytes : 0;
  if (sent.status != io_status::failed && bytes < buffers_.out_used) {
    unsent_.assign(buffers_.cipher_out.data() + bytes, buffers_.out_used - bytes);
  }
  buffers_.out_used = 0;
  return sent.status != io_status::failed;
}

io_result tls_session::send(const char* data, std::size_t size) noexcept {
  const iovec part{const_cast<char*>(data), size};
  return sender_.send({&part, 1});
}

std::size_t tls_session::record_size() const noexcept {
  return small_left_ > 0 ? small_record : full_record;
}

// While records are small, each call is one record of at most small_record bytes.
bool tls_session::encrypt(const char* data, std::size_t size) noexcept {
  if (small_left_ > 0) --small_left_;
  std::size_t written = 0;
  return SSL_write_ex(ssl_, data, size, &written) == 1;
}

io_result tls_session::write(std::span<const iovec> parts,
                             std::chrono::steady_clock::time_point now) noexcept {
  if (unsent_.empty() && now - last_write_ >= idle_restart) small_left_ = small_records;
  last_write_ = now;
  if (!flush()) return {io_status::failed};
  if (!unsent_.empty()) return {io_status::would_block, 0};
  // Pieces are gathered into staging up to a record; a piece that starts a record and fills it
  // is encrypted where it lies. Encryption stops once the socket holds records back.
  auto& staging = buffers_.staging;
  std::size_t staged = 0, taken = 0;
  const auto encrypt_staged = [&] {
    const bool ok = staged == 0 || encrypt(staging.data(), staged);
    taken += staged;
    staged = 0;
    return ok;
  };
  for (const auto& part : parts) {
    const char* data = static_cast<const char*>(part.iov_base);
    std::size_t size = part.iov_len;
    while (size > 0) {
      if (!unsent_.empty()) break;
      const std::size_t limit = record_size();
      if (staged == 0 && size >= limit) {
        // One small record, or up to four full ones in one call (OpenSSL cuts at full_record).
        const std::size_t n = limit == full_record
                                  ? std::min(size, 4 * full_record) / full_record * full_record
                                  : limit;
        if (!encrypt(data, n)) return {io_status::failed};
        taken += n;
        data += n;
        size -= n;
        continue;
      }
      const std::size_t n = std::min(size, limit - staged);
      std::memcpy(staging.data() + staged, data, n);
      staged += n;
      data += n;
      size -= n;
      if (staged == limit && !encrypt_staged()) return {io_status::failed};
    }
    if (!unsent_.empty()) break;
  }
  if (!encrypt_staged()) return {io_status::failed};
  if (!flush()) return {io_status::failed};
  return {unsent_.empty() ? io_status::done : io_status::would_block, taken};
}

void tls_session::shutdown() noexcept {
  if (!SSL_is_init_finished(ssl_)) return;
  SSL_shutdown(ssl_);
  (void)flush();
}

}  // namespace kawipiko::serve
