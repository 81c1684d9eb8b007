#pragma once
// Test support for server tests: child processes (a `kawipiko serve` among them, whose start-up
// line gives its plain and TLS ports) started with posix_spawn and always stopped by their guard
// (SIGTERM, then SIGKILL of the process group after a bound), their stdout read line by line
// within a bound; a tiny blocking HTTP/1.1 client on raw sockets whose every read is bounded by a
// receive timeout, and parsers for responses and multipart/byteranges bodies.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace kawipiko::test {

using milliseconds = std::chrono::milliseconds;

inline constexpr milliseconds default_bound{10'000};

// --- Responses ---------------------------------------------------------------------------------

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

struct http_response {
  std::string status_line;  // "HTTP/1.1 200 OK", without CRLF
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> fields;  // in order, values trimmed
  std::string head;                                         // status line to the empty line
  std::string body;

  // The first field named `name` (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string> field(std::string_view name) const {
    for (const auto& [key, value] : fields) {
      if (iequals(key, name)) return value;
    }
    return std::nullopt;
  }
  [[nodiscard]] bool has(std::string_view name) const { return field(name).has_value(); }
  [[nodiscard]] std::size_t count(std::string_view name) const {
    std::size_t n = 0;
    for (const auto& [key, value] : fields) n += iequals(key, name) ? 1u : 0u;
    return n;
  }
  // The header without its status line and Date field: what two answers must share.
  [[nodiscard]] std::string head_without_date() const {
    std::string out;
    for (const auto& [key, value] : fields) {
      if (!iequals(key, "Date")) out += key + ": " + value + "\r\n";
    }
    return out;
  }
};

// Parses the status line and fields of `head` (which ends with the empty line). Throws
// std::runtime_error if it is not a well-formed HTTP/1.1 response header.
inline http_response parse_response_head(std::string_view head) {
  http_response response;
  response.head = std::string(head);
  auto line_end = head.find("\r\n");
  if (line_end == std::string_view::npos) throw std::runtime_error("no status line");
  response.status_line = std::string(head.substr(0, line_end));
  if (!response.status_line.starts_with("HTTP/1.1 ") || response.status_line.size() < 12) {
    throw std::runtime_error("bad status line: " + response.status_line);
  }
  for (std::size_t i = 9; i < 12; ++i) {
    const char c = response.status_line[i];
    if (c < '0' || c > '9') throw std::runtime_error("bad status: " + response.status_line);
    response.status = response.status * 10 + static_cast<unsigned>(c - '0');
  }
  std::size_t at = line_end + 2;
  while (at < head.size()) {
    line_end = head.find("\r\n", at);
    if (line_end == std::string_view::npos) throw std::runtime_error("unterminated field");
    if (line_end == at) break;  // the empty line
    const auto line = head.substr(at, line_end - at);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      throw std::runtime_error("bad field line: " + std::string(line));
    }
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    response.fields.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    at = line_end + 2;
  }
  return response;
}

// Whether a response to a request with this status (and method) has a body of Content-Length.
inline bool has_body(const http_response& r, bool head_request) {
  return !head_request && r.status != 304 && r.status != 204 && r.status >= 200;
}

// Parses one complete response (header and a body of exactly Content-Length bytes) from `raw`.
inline http_response parse_response(std::string_view raw, bool head_request = false) {
  const auto end = raw.find("\r\n\r\n");
  if (end == std::string_view::npos) throw std::runtime_error("no end of header");
  auto response = parse_response_head(raw.substr(0, end + 4));
  response.body = std::string(raw.substr(end + 4));
  if (has_body(response, head_request)) {
    const auto length = response.field("Content-Length");
    if (!length || std::stoull(*length) != response.body.size()) {
      throw std::runtime_error("Content-Length does not match the body");
    }
  }
  return response;
}

// Takes one response (a body of Content-Length bytes, none for HEAD and 304) off the front of
// `buffer`, calling `receive()` for more bytes while it is incomplete: `receive` appends to
// `buffer` and returns false at the end of the stream. Throws std::runtime_error on an end of
// stream before a complete response, or on a malformed one (and whatever `receive` throws).
template <class Receive>
http_response take_response(std::string& buffer, Receive&& receive, bool head_request = false) {
  std::size_t end;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (!receive()) throw std::runtime_error("connection closed before a response header");
  }
  auto response = parse_response_head(std::string_view(buffer).substr(0, end + 4));
  buffer.erase(0, end + 4);
  if (has_body(response, head_request)) {
    const auto length_field = response.field("Content-Length");
    if (!length_field) throw std::runtime_error("response without Content-Length");
    const std::size_t length = std::stoull(*length_field);
    while (buffer.size() < length) {
      if (!receive()) throw std::runtime_error("connection closed inside a body");
    }
    response.body = buffer.substr(0, length);
    buffer.erase(0, length);
  }
  return response;
}

struct byterange_part {
  std::string content_type;
  std::string content_range;
  std::string data;
};

// The parts of a multipart/byteranges body with the given boundary. Throws std::runtime_error
// when the framing is wrong (missing delimiter, no closing delimiter, trailing bytes).
inline std::vector<byterange_part> parse_byteranges(std::string_view body,
                                                    std::string_view boundary) {
  const std::string delimiter = "\r\n--" + std::string(boundary);
  if (!body.starts_with(delimiter)) throw std::runtime_error("body does not start with boundary");
  std::vector<byterange_part> parts;
  std::size_t at = 0;
  while (true) {
    at += delimiter.size();
    if (body.substr(at) == "--\r\n") break;  // the close delimiter ends the body
    if (body.substr(at, 2) != "\r\n") throw std::runtime_error("bad delimiter line");
    at += 2;
    const auto head_end = body.find("\r\n\r\n", at);
    if (head_end == std::string_view::npos) throw std::runtime_error("unterminated part header");
    const auto head =
        parse_response_head("HTTP/1.1 200 X\r\n" + std::string(body.substr(at, head_end + 4 - at)));
    const auto data_at = head_end + 4;
    const auto next = body.find(delimiter, data_at);
    if (next == std::string_view::npos) throw std::runtime_error("no closing delimiter");
    parts.push_back({head.field("Content-Type").value_or(""),
                     head.field("Content-Range").value_or(""),
                     std::string(body.substr(data_at, next - data_at))});
    at = next;
  }
  return parts;
}

// --- Child processes and the server process ---------------------------------------------------

class child_process {
 public:
  // Starts `binary` with `args` in a process group of its own, its stdout on a pipe (or, with
  // `stdout_to_pipe` false, with its stderr), its stderr in an anonymous temp file, stdin from
  // /dev/null. Throws std::runtime_error if it cannot.
  child_process(const std::string& binary, const std::vector<std::string>& args,
                bool stdout_to_pipe = true) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    stdout_ = out[0];
    std::FILE* errors = std::tmpfile();
    if (errors == nullptr) {
      ::close(out[1]);
      throw std::runtime_error("tmpfile failed");
    }
    stderr_ = ::dup(::fileno(errors));
    std::fclose(errors);
    ::fcntl(stderr_, F_SETFD, FD_CLOEXEC);

    std::vector<std::string> argv_text{binary};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, stdout_to_pipe ? out[1] : stderr_, 1);
    posix_spawn_file_actions_adddup2(&actions, stderr_, 2);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setpgroup(&attributes, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes, &none);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(
        &attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const int failed =
        ::posix_spawn(&pid_, binary.c_str(), &actions, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(out[1]);
    if (failed != 0) {
      pid_ = -1;
      close_files();
      throw std::runtime_error("cannot start " + binary + ": " + std::strerror(failed));
    }
  }

  ~child_process() {
    stop();
    close_files();
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }

  // Sends `signal` (unless the process already exited) and waits at most `bound` for the exit;
  // past it, SIGKILLs the whole process group and reaps. Returns the exit code, 128 + the
  // signal number if a signal ended it, or -1 if it had to be killed. Later calls return the
  // first result.
  int stop(int signal = SIGTERM, milliseconds bound = default_bound) {
    if (exit_code_) return *exit_code_;
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    if (const auto code = wait_exit(bound)) return *code;
    // The group (the supervisor's worker processes too), while its leader is not yet reaped
    // so that the group id cannot have been reused.
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    exit_code_ = -1;
    return -1;
  }

  // Waits at most `bound` for the process to exit, sending nothing. Returns its exit code as
  // stop() does, or nullopt while it still runs.
  std::optional<int> wait_exit(milliseconds bound) {
    if (exit_code_) return exit_code_;
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (true) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      if (done < 0 && errno != EINTR) return std::nullopt;
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

  // Everything the process wrote to stderr (and stdout, unless on the pipe) so far.
  [[nodiscard]] std::string errors() const {
    std::string text;
    char chunk[4096];
    off_t at = 0;
    while (true) {
      const ssize_t got = ::pread(stderr_, chunk, sizeof chunk, at);
      if (got <= 0) break;
      text.append(chunk, static_cast<std::size_t>(got));
      at += got;
    }
    return text;
  }

  // The next line the process writes on the stdout pipe, without its newline, waiting at most
  // `bound`; nullopt if the stream ends or the bound passes first (the start of a line that came
  // stays in pending_output()).
  std::optional<std::string> read_line(milliseconds bound = default_bound) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (output_.find('\n') == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd ready{stdout_, POLLIN, 0};
      const int polled = left.count() > 0 ? ::poll(&ready, 1, static_cast<int>(left.count())) : 0;
      if (polled < 0 && errno == EINTR) continue;
      char chunk[4096];
      const ssize_t got = polled > 0 ? ::read(stdout_, chunk, sizeof chunk) : 0;
      if (got <= 0) return std::nullopt;
      output_.append(chunk, static_cast<std::size_t>(got));
    }
    const auto end = output_.find('\n');
    std::string line = output_.substr(0, end);
    output_.erase(0, end + 1);
    return line;
  }

  // What came on the stdout pipe and read_line has not returned.
  [[nodiscard]] const std::string& pending_output() const { return output_; }

 private:
  void close_files() {
    if (stdout_ >= 0) ::close(stdout_);
    if (stderr_ >= 0) ::close(stderr_);
    stdout_ = stderr_ = -1;
  }

  pid_t pid_ = -1;
  int stdout_ = -1;
  int stderr_ = -1;
  std::string output_;
  std::optional<int> exit_code_;
};

// The PIDs of `parent`'s children, from /proc (its threads' children included).
inline std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> found;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(parent) + "/task")) {
    std::ifstream list(task.path() / "children");
    pid_t pid = 0;
    while (list >> pid) found.push_back(pid);
  }
  return found;
}

// The port in the first "<scheme><ip>:<port>" of `line` ("http://", "https://"), 0 if none.
inline unsigned short listener_port(std::string_view line, std::string_view scheme) {
  const auto at = line.find(scheme);
  if (at == std::string_view::npos) return 0;
  auto address = line.substr(at + scheme.size());
  address = address.substr(0, address.find(' '));
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == address.size()) return 0;
  unsigned long port = 0;
  for (const char c : address.substr(colon + 1)) {
    if (c < '0' || c > '9') return 0;
    port = port * 10 + static_cast<unsigned long>(c - '0');
    if (port > 65535) return 0;
  }
  return static_cast<unsigned short>(port);
}

// A `kawipiko serve` process: a child_process whose start-up line names its ports.
class server_process : public child_process {
 public:
  // Starts the server as child_process does, then waits (at most `bound`) for its start-up line
  // "... on http://<ip>:<port> and https://<ip>:<port>" (either or both) and takes the ports
  // from it. Throws std::runtime_error (having stopped the process) if it exits or stays silent.
  server_process(const std::string& binary, const std::vector<std::string>& args,
                 milliseconds bound = default_bound)
      : child_process(binary, args) {
    read_startup_line(bound);
  }

  // The plain listener's port; 0 if the server has none (--bind-tls alone).
  [[nodiscard]] unsigned short port() const { return port_; }
  // The TLS listener's port; 0 if the server has none (no --bind-tls).
  [[nodiscard]] unsigned short tls_port() const { return tls_port_; }
  [[nodiscard]] const std::string& startup_line() const { return startup_line_; }

 private:
  void read_startup_line(milliseconds bound) {
    const auto line = read_line(bound);
    if (!line) {
      const int code = stop();
      throw std::runtime_error("server did not start (exit " + std::to_string(code) +
                               "); stdout: '" + pending_output() + "'; stderr: '" + errors() + "'");
    }
    startup_line_ = *line;
    port_ = listener_port(startup_line_, "http://");
    tls_port_ = listener_port(startup_line_, "https://");
    if (port_ == 0 && tls_port_ == 0) {
      stop();
      throw std::runtime_error("no port in start-up line: '" + startup_line_ + "'");
    }
  }

  unsigned short port_ = 0;
  unsigned short tls_port_ = 0;
  std::string startup_line_;
};

// --- The raw client ----------------------------------------------------------------------------

// The text of a request for `target` with Host and the given `fields` (each ending in CRLF).
inline std::string request(std::string_view target, std::string_view fields = {},
                           std::string_view method = "GET") {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         std::string(fields) + "\r\n";
}

class client {
 public:
  // Connects to 127.0.0.1:`port`. Every send and receive is bounded by `timeout`
  // (SO_SNDTIMEO / SO_RCVTIMEO). `receive_buffer`: SO_RCVBUF, set before connecting (a slow
  // reader; after it, the window the handshake announced would stay). Throws std::runtime_error
  // when the connection fails.
  explicit client(unsigned short port, milliseconds timeout = default_bound, int receive_buffer = 0)
      : timeout_(timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    set_timeout(SO_RCVTIMEO, timeout);
    set_timeout(SO_SNDTIMEO, timeout);  // bounds connect() too
    const int on = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      const int error = errno;
      ::close(fd_);
      throw std::runtime_error(std::string("connect failed: ") + std::strerror(error));
    }
  }
  ~client() { ::close(fd_); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Sends all of `bytes`. Throws std::runtime_error on error or timeout.
  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent <= 0) throw std::runtime_error(std::string("send failed: ") + std::strerror(errno));
      bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
  }

  // Reads one response (a body of Content-Length bytes, none for HEAD and 304). Throws
  // std::runtime_error on timeout, on end of stream before a complete response, or on a
  // malformed one.
  http_response read_response(bool head_request = false) {
    return take_response(
        buffer_, [this] { return receive(); }, head_request);
  }

  // Sends a request and reads its response.
  http_response request(std::string_view bytes, bool head_request = false) {
    send(bytes);
    return read_response(head_request);
  }

  // True if the server ends the connection (end of stream or reset) within `bound`; whatever
  // it sends before is kept in the buffer. False if the connection is still open after `bound`.
  bool closed_within(milliseconds bound = default_bound) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (true) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      set_timeout(SO_RCVTIMEO, left);
      char chunk[16384];
      const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(got));
        continue;
      }
      if (got < 0 && errno == EINTR) continue;
      set_timeout(SO_RCVTIMEO, timeout_);
      if (got == 0) return true;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      return true;  // reset
    }
  }

  // Bytes received and not yet consumed by read_response.
  [[nodiscard]] const std::string& buffered() const { return buffer_; }
  [[nodiscard]] int fd() const { return fd_; }

 private:
  // One recv into the buffer: true if bytes came, false at end of stream or reset. Throws
  // std::runtime_error on timeout.
  bool receive() {
    char chunk[65536];
    while (true) {
      const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(got));
        return true;
      }
      if (got == 0) return false;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) throw std::runtime_error("receive timed out");
      return false;
    }
  }

  void set_timeout(int option, milliseconds value) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(value.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((value.count() % 1000) * 1000);
    if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1000;  // 0 would mean "no timeout"
    ::setsockopt(fd_, SOL_SOCKET, option, &tv, sizeof tv);
  }

  int fd_ = -1;
  milliseconds timeout_;
  std::string buffer_;
};

}  // namespace kawipiko::test
