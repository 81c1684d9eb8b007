#pragma once
// Test support: an HTTP/2 client in memory (nghttp2's client session), talking to an
// http2_protocol through byte strings, with no socket: what it sends, what it received per
// stream (status, fields, body, how the stream ended) and the GOAWAY it saw.

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "serve/http2.hpp"
#include "serve/output.hpp"

namespace kawipiko::test {

class h2_memory_client {
 public:
  struct stream {
    std::vector<std::pair<std::string, std::string>> fields;  // in order, :status first
    std::string body;
    bool closed = false;
    std::uint32_t reset_code = 0;  // the RST_STREAM code (NO_ERROR when it ended normally)
    bool end_on_headers = false;   // the response's HEADERS frame ended the stream

    [[nodiscard]] std::string field(const std::string& name) const {
      for (const auto& [n, v] : fields) {
        if (n == name) return v;
      }
      return {};
    }
    [[nodiscard]] bool has(const std::string& name) const {
      for (const auto& f : fields) {
        if (f.first == name) return true;
      }
      return false;
    }
  };

  // `settings`: the client's SETTINGS (its initial window, for one). It sends no WINDOW_UPDATE
  // of its own.
  explicit h2_memory_client(const std::vector<nghttp2_settings_entry>& settings = {}) {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_close);
    // Windows open only when a test opens them (open_window).
    nghttp2_option* option = nullptr;
    nghttp2_option_new(&option);
    nghttp2_option_set_no_auto_window_update(option, 1);
    nghttp2_session* session = nullptr;
    const int made = nghttp2_session_client_new2(&session, callbacks, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(callbacks);
    if (made != 0) throw std::runtime_error("nghttp2_session_client_new failed");
    session_.reset(session);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  }

  // A request on a new stream; `fields` after the pseudo-headers, then `body` as DATA when it
  // is not empty. Returns the stream id.
  std::int32_t request(const std::string& method, const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& fields = {},
                       std::string body = {}) {
    std::vector<std::pair<std::string, std::string>> all = {
        {":method", method}, {":scheme", "https"}, {":authority", "example.com"}, {":path", path}};
    all.insert(all.end(), fields.begin(), fields.end());
    std::vector<nghttp2_nv> list;
    for (auto& [n, v] : all) {
      list.push_back({reinterpret_cast<std::uint8_t*>(n.data()),
                      reinterpret_cast<std::uint8_t*>(v.data()), n.size(), v.size(),
                      NGHTTP2_NV_FLAG_NONE});
    }
    body_ = std::move(body);
    nghttp2_data_provider provider{};
    provider.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buf,
                                std::size_t length, std::uint32_t* flags, nghttp2_data_source*,
                                void* user) -> ssize_t {
      auto& self = *static_cast<h2_memory_client*>(user);
      const auto n = std::min(length, self.body_.size());
      std::copy_n(self.body_.data(), n, buf);
      self.body_.erase(0, n);
      if (self.body_.empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    };
    const auto id = nghttp2_submit_request(session_.get(), nullptr, list.data(), list.size(),
                                           body_.empty() ? nullptr : &provider, nullptr);
    if (id < 0) throw std::runtime_error("nghttp2_submit_request failed");
    streams_[id];
    return id;
  }

  void open_window(std::int32_t id, std::int32_t bytes) {
    nghttp2_submit_window_update(session_.get(), NGHTTP2_FLAG_NONE, id, bytes);
  }

  // What the client has to send now.
  std::string outgoing() {
    std::string bytes;
    for (;;) {
      const std::uint8_t* data = nullptr;
      const auto n = nghttp2_session_mem_send(session_.get(), &data);
      if (n <= 0) break;
      bytes.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    return bytes;
  }

  // Takes what the server sent; false if nghttp2 found it malformed.
  bool incoming(const std::string& bytes) {
    const auto n = nghttp2_session_mem_recv(
        session_.get(), reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    return n == static_cast<ssize_t>(bytes.size());
  }

  [[nodiscard]] const stream& at(std::int32_t id) const { return streams_.at(id); }
  [[nodiscard]] bool saw_goaway() const noexcept { return goaway_; }
  [[nodiscard]] std::uint32_t goaway_code() const noexcept { return goaway_code_; }
  [[nodiscard]] std::int32_t goaway_last_stream() const noexcept { return goaway_last_; }
  [[nodiscard]] std::size_t data_frames() const noexcept { return data_frames_; }

 private:
  static h2_memory_client& self(void* user) { return *static_cast<h2_memory_client*>(user); }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t name_size, const std::uint8_t* value, std::size_t value_size,
                       std::uint8_t, void* user) {
    self(user).streams_[frame->hd.stream_id].fields.emplace_back(
        std::string(reinterpret_cast<const char*>(name), name_size),
        std::string(reinterpret_cast<const char*>(value), value_size));
    return 0;
  }
  static int on_data(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                     std::size_t size, void* user) {
    self(user).streams_[id].body.append(reinterpret_cast<const char*>(data), size);
    return 0;
  }
  static int on_frame(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = self(user);
    if (frame->hd.type == NGHTTP2_DATA) ++c.data_frames_;
    if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      c.streams_[frame->hd.stream_id].end_on_headers = true;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      c.goaway_ = true;
      c.goaway_code_ = frame->goaway.error_code;
      c.goaway_last_ = frame->goaway.last_stream_id;
    }
    return 0;
  }
  static int on_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* user) {
    auto& s = self(user).streams_[id];
    s.closed = true;
    s.reset_code = code;
    return 0;
  }

  struct session_deleter {
    void operator()(nghttp2_session* s) const noexcept { nghttp2_session_del(s); }
  };
  std::unique_ptr<nghttp2_session, session_deleter> session_;
  std::map<std::int32_t, stream> streams_;
  std::string body_;
  bool goaway_ = false;
  std::uint32_t goaway_code_ = 0;
  std::int32_t goaway_last_ = 0;
  std::size_t data_frames_ = 0;
};

// The bytes of a batch, in order.
inline std::string concatenate(const serve::output& out) {
  std::string bytes;
  for (const auto& part : out.parts()) {
    bytes.append(static_cast<const char*>(part.iov_base), part.iov_len);
  }
  return bytes;
}

}  // namespace kawipiko::test
