#include "serve/access_log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <system_error>
#include <utility>

#include "base/error.hpp"
#include "http/utf8.hpp"
#include "serve/output.hpp"
#include "serve/transport.hpp"

namespace kawipiko::serve {

namespace {

// Bytes of each field kept, before escaping (access_log.hpp's max_line_bytes counts on them).
constexpr std::size_t max_method = 32, max_target = 2048, max_host = 256, max_referer = 1024,
                      max_agent = 512, max_short = 64;
static_assert(6 * (max_method + max_target + max_host + max_referer + max_agent + 5 * max_short) +
                  256 <=
              max_line_bytes);

constexpr char hex_digits[] = "0123456789ABCDEF";

// Appends at a place with room enough (format_line's contract).
struct line_writer {
  char* at;

  void text(std::string_view bytes) noexcept {
    std::memcpy(at, bytes.data(), bytes.size());
    at += bytes.size();
  }
  void byte(char c) noexcept { *at++ = c; }
  void number(std::uint64_t value) noexcept { text(decimal(value).view()); }
  void escaped(std::string_view prefix, unsigned char b) noexcept {
    text(prefix);
    byte(hex_digits[b >> 4]);
    byte(hex_digits[b & 15]);
  }

  // A field of the combined format: '"', '\' and bytes outside 0x20..0x7e as \xHH.
  void combined_field(std::string_view value, std::size_t most) noexcept {
    if (value.empty()) return byte('-');
    for (const char c : value.substr(0, most)) {
      const auto b = static_cast<unsigned char>(c);
      if (b >= 0x20 && b < 0x7f && c != '"' && c != '\\') {
        byte(c);
      } else {
        escaped("\\x", b);
      }
    }
  }

  // A JSON string: '"' and '\' escaped, controls and DEL as \u00HH, UTF-8 sequences as they
  // are, any other byte as \u00HH (the code point of that byte's value).
  void json_string(std::string_view value, std::size_t most) noexcept {
    byte('"');
    if (value.empty()) byte('-');
    value = value.substr(0, most);
    for (std::size_t i = 0; i < value.size();) {
      const auto b = static_cast<unsigned char>(value[i]);
      if (b >= 0x80) {
        const auto sequence = http::decode_utf8(value.substr(i));
        if (sequence.status == http::utf8_status::valid) {
          text(value.substr(i, sequence.size));
          i += sequence.size;
          continue;
        }
      }
      if (b >= 0x20 && b < 0x7f) {
        if (b == '"' || b == '\\') byte('\\');
        byte(value[i]);
      } else {
        escaped("\\u00", b);
      }
      ++i;
    }
    byte('"');
  }

  void json_key(std::string_view key) noexcept {
    byte(',');
    byte('"');
    text(key);
    text("\":");
  }
};

// client - - [time] "method target protocol" status bytes "referer" "user agent"
void combined_line(line_writer& w, const access_entry& e, std::string_view time) noexcept {
  w.combined_field(e.client, max_short);
  w.text(" - - [");
  w.text(time.substr(0, max_short));
  w.text("] \"");
  if (e.method.empty() && e.target.empty()) {
    w.byte('-');
  } else {
    w.combined_field(e.method, max_method);
    w.byte(' ');
    w.combined_field(e.target, max_target);
    w.byte(' ');
    w.combined_field(e.protocol, max_short);
  }
  w.text("\" ");
  w.number(e.status);
  w.byte(' ');
  w.number(e.bytes);
  w.text(" \"");
  w.combined_field(e.referer, max_referer);
  w.text("\" \"");
  w.combined_field(e.user_agent, max_agent);
  w.text("\"\n");
}

void json_line(line_writer& w, const access_entry& e, std::string_view time) noexcept {
  w.text("{\"time\":");
  w.json_string(time, max_short);
  const std::pair<std::string_view, std::pair<std::string_view, std::size_t>> strings[] = {
      {"client", {e.client, max_short}},     {"host", {e.host, max_host}},
      {"method", {e.method, max_method}},    {"target", {e.target, max_target}},
      {"protocol", {e.protocol, max_short}},
  };
  for (const auto& [key, value] : strings) {
    w.json_key(key);
    w.json_string(value.first, value.second);
  }
  w.json_key("status");
  w.number(e.status);
  w.json_key("bytes");
  w.number(e.bytes);
  w.json_key("encoding");
  w.json_string(e.encoding, max_short);
  w.json_key("duration_us");
  w.number(static_cast<std::uint64_t>(std::max<std::int64_t>(e.duration_us, 0)));
  w.json_key("generation");
  if (e.generation == 0) {
    w.text("null");
  } else {
    w.number(e.generation);
  }
  w.json_key("referer");
  w.json_string(e.referer, max_referer);
  w.json_key("user_agent");
  w.json_string(e.user_agent, max_agent);
  w.text("}\n");
}

struct destination {
  base::unique_fd fd;
  bool socket = false;
};

// stdout, in a way that never blocks the writer: a file as it is; a socket (journald's stream)
// with send(MSG_DONTWAIT); a pipe or terminal through an open file description of our own,
// non-blocking, so that no other writer of it is affected.
destination open_stdout() {
  struct stat status {};
  if (::fstat(STDOUT_FILENO, &status) != 0) {
    base::throw_errno(errno, "cannot write the access log to", "stdout");
  }
  if (!S_ISREG(status.st_mode) && !S_ISSOCK(status.st_mode)) {
    base::unique_fd own(::open("/proc/self/fd/1", O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC));
    if (own) return {std::move(own), false};
  }
  base::unique_fd copy(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
  if (!copy) base::throw_errno(errno, "cannot write the access log to", "stdout");
  return {std::move(copy), S_ISSOCK(status.st_mode)};
}

// The file, for appending. Non-blocking, which a regular file ignores and which makes a FIFO
// one that never blocks the writer (and refuses to open while it has no reader).
destination open_destination(const std::string& path) {
  if (path == "-") return open_stdout();
  base::unique_fd fd(
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644));
  if (!fd) base::throw_errno(errno, "cannot open the access log", path);
  return {std::move(fd), false};
}

}  // namespace

const char* time_format(access_log_format format) noexcept {
  return format == access_log_format::json ? "%Y-%m-%dT%H:%M:%SZ" : "%d/%b/%Y:%H:%M:%S +0000";
}

std::size_t format_line(access_log_format format, const access_entry& e, std::string_view time,
                        char* out) noexcept {
  line_writer w{out};
  if (format == access_log_format::json) {
    json_line(w, e, time);
  } else {
    combined_line(w, e, time);
  }
  return static_cast<std::size_t>(w.at - out);
}

// ---- the writer ---------------------------------------------------------------------------------

access_log_writer::access_log_writer(std::string path, access_log_format format)
    : path_(std::move(path)), format_(format) {
  auto opened = open_destination(path_);
  fd_ = std::move(opened.fd);
  is_socket_ = opened.socket;
  spare_.reserve(max_queued);
}

access_log_writer::~access_log_writer() {
  stop();
}

void access_log_writer::start(std::optional<process_counters> counters) {
  counters_ = counters;
  thread_ = std::thread([this] { run(); });
}

void access_log_writer::hand_over(log_chunk& chunk) noexcept {
  if (chunk.lines == 0) return;
  log_chunk empty;
  bool queued = false;
  {
    const std::lock_guard lock(mutex_);
    if (queued_count_ < max_queued) {
      ring_[(ring_head_ + queued_count_) % max_queued] = std::move(chunk);
      ++queued_count_;
      queued = true;
      if (!spare_.empty()) {
        empty = std::move(spare_.back());
        spare_.pop_back();
      }
    }
  }
  if (!queued) {
    drop(chunk.lines);
  } else {
    wake_.notify_one();
    chunk = std::move(empty);
    if (!chunk.bytes) chunk.bytes.reset(new (std::nothrow) char[log_chunk::capacity]);
  }
  chunk.size = chunk.lines = 0;
}

void access_log_writer::drop(std::uint64_t lines) noexcept {
  dropped_.fetch_add(lines, std::memory_order_relaxed);
  if (counters_) counters_->dropped_lines(lines);
}

void access_log_writer::reopen() noexcept {
  {
    const std::lock_guard lock(mutex_);
    if (thread_.joinable()) {
      reopen_wanted_ = true;
      wake_.notify_one();
      return;
    }
  }
  reopen_now();
}

void access_log_writer::reopen_now() noexcept {
  if (path_ == "-") return;
  try {
    auto opened = open_destination(path_);
    fd_ = std::move(opened.fd);
    is_socket_ = opened.socket;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kawipiko serve: warning: %s; the access log goes on to the file it had\n",
                 e.what());
  }
}

void access_log_writer::stop() noexcept {
  {
    const std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    give_up_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    stopping_.store(true, std::memory_order_release);
  }
  wake_.notify_one();
  thread_.join();
}

// Takes the queued chunks in order and writes each whole; wakes at least once a second for the
// report of dropped lines.
void access_log_writer::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, std::chrono::seconds(1), [this] {
      return queued_count_ > 0 || reopen_wanted_ || stopping_.load(std::memory_order_acquire);
    });
    if (reopen_wanted_) {
      reopen_wanted_ = false;
      lock.unlock();
      reopen_now();
      lock.lock();
    }
    if (queued_count_ == 0) {
      if (stopping_.load(std::memory_order_acquire)) break;
      lock.unlock();
      report(false);
      lock.lock();
      continue;
    }
    log_chunk chunk = std::move(ring_[ring_head_]);
    ring_head_ = (ring_head_ + 1) % max_queued;
    --queued_count_;
    lock.unlock();
    write_chunk(chunk);
    report(false);
    chunk.size = chunk.lines = 0;
    lock.lock();
    if (spare_.size() < spare_.capacity()) spare_.push_back(std::move(chunk));
  }
  lock.unlock();
  report(true);
}

// The chunk whole, waiting while the destination takes nothing (a full pipe), except past the
// stop's bound; what is not written is counted as dropped.
void access_log_writer::write_chunk(const log_chunk& chunk) {
  std::string_view rest(chunk.bytes.get(), chunk.size);
  while (!rest.empty()) {
    const ssize_t n = is_socket_
                          ? ::send(fd_.get(), rest.data(), rest.size(), MSG_DONTWAIT | MSG_NOSIGNAL)
                          : ::write(fd_.get(), rest.data(), rest.size());
    if (n > 0) {
      rest.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (stopping_.load(std::memory_order_acquire) &&
          std::chrono::steady_clock::now() >= give_up_at_) {
        break;
      }
      pollfd ready{fd_.get(), POLLOUT, 0};
      (void)::poll(&ready, 1, 100);
      report(false);
      continue;
    }
    write_error_ = n < 0 ? errno : EIO;  // EPIPE (no reader), ENOSPC, EIO…: this chunk is lost
    break;
  }
  if (!rest.empty()) drop(static_cast<std::uint64_t>(std::count(rest.begin(), rest.end(), '\n')));
}

// One line on stderr for what went wrong since the last one, at most once a minute (and at the
// end).
void access_log_writer::report(bool at_end) {
  const auto dropped = dropped_.load(std::memory_order_relaxed);
  if (dropped == reported_ && write_error_ == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (!at_end && now < next_report_) return;
  const auto name = path_ == "-" ? std::string("stdout") : base::quote(path_);
  if (write_error_ != 0) {
    std::fprintf(stderr, "kawipiko serve: warning: cannot write the access log %s: %s\n",
                 name.c_str(), std::strerror(write_error_));
  }
  if (dropped != reported_) {
    std::fprintf(stderr,
                 "kawipiko serve: warning: access log %s: %llu lines dropped (%llu since start): "
                 "its destination does not take them as fast as they come\n",
                 name.c_str(), static_cast<unsigned long long>(dropped - reported_),
                 static_cast<unsigned long long>(dropped));
  }
  reported_ = dropped;
  write_error_ = 0;
  next_report_ = now + std::chrono::minutes(1);
}

// ---- a serving thread's buffer ------------------------------------------------------------------

access_log_buffer::access_log_buffer(access_log_writer& writer)
    : writer_(writer), format_(writer.format()), time_(time_format(writer.format())) {
  chunk_.bytes.reset(new char[log_chunk::capacity]);
}

void access_log_buffer::add(const access_entry& e) noexcept {
  if (chunk_.size + max_line_bytes > log_chunk::capacity) writer_.hand_over(chunk_);
  if (!chunk_.bytes) {
    chunk_.bytes.reset(new (std::nothrow) char[log_chunk::capacity]);
    if (!chunk_.bytes) return writer_.drop(1);
  }
  if (chunk_.lines == 0) first_line_ = coarse_now();
  chunk_.size += format_line(format_, e, time_.get(), chunk_.bytes.get() + chunk_.size);
  ++chunk_.lines;
}

void access_log_buffer::sweep(std::chrono::steady_clock::time_point now) noexcept {
  if (chunk_.lines > 0 && now - first_line_ >= std::chrono::seconds(1)) writer_.hand_over(chunk_);
}

void access_log_buffer::flush() noexcept {
  writer_.hand_over(chunk_);
}

}  // namespace kawipiko::serve
