#pragma once
// A batch of responses on its way to one socket: the iovec list that one writev sends, and a
// scratch area for the few bytes that are made per response (status line, Date, Content-Range…).
// Header blocks and bodies are not copied: their parts point into the archive. One per worker
// thread, reused for every batch, so the steady state allocates nothing. Also a counting sink
// with the same appending interface, so that a length announced before some bytes is computed by
// the very writer that appends them.

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace kawipiko::serve {

// The decimal text of a number, in a buffer of its own.
class decimal {
 public:
  explicit decimal(std::uint64_t value) noexcept {
    do {
      digits_[sizeof digits_ - 1 - size_++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
  }
  [[nodiscard]] std::string_view view() const noexcept {
    return {digits_ + sizeof digits_ - size_, size_};
  }

 private:
  char digits_[20];  // 2^64 - 1 has 20 digits
  std::size_t size_ = 0;
};

// What a response writer appends to: `output`, or `byte_count` to learn the length first.
template <class Sink>
concept byte_sink = requires(Sink& sink, std::string_view bytes, std::uint64_t value) {
  sink.view(bytes);
  sink.text(bytes);
  sink.number(value);
};

class output {
 public:
  static constexpr std::size_t max_parts = 512;  // well under IOV_MAX (1024)
  static constexpr std::size_t scratch_size = 64 * 1024;
  // Room one more response may need at most: a 16-range multipart answer takes 105 parts
  // (6 per range) and under 2 KiB of text, a redirect copies at most max_copied_value bytes of
  // the request (response.hpp).
  static constexpr std::size_t response_parts = 112;
  static constexpr std::size_t response_bytes = 8 * 1024;

  void clear() noexcept {
    count_ = 0;
    used_ = 0;
    bytes_ = 0;
  }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] bool has_room_for_response() const noexcept {
    return count_ + response_parts <= max_parts && used_ + response_bytes <= scratch_size;
  }

  // Whether `parts` more parts with `bytes` of copied text fit (HTTP/2 frames, which come one
  // at a time), and how much text still fits.
  [[nodiscard]] bool has_room(std::size_t parts, std::size_t bytes) const noexcept {
    return count_ + parts <= max_parts && used_ + bytes <= scratch_size;
  }
  [[nodiscard]] std::size_t room_bytes() const noexcept { return scratch_size - used_; }

  // Appends bytes that stay valid until the batch is written (the archive, static text).
  void view(std::string_view bytes) noexcept {
    if (bytes.empty()) return;
    parts_[count_++] = {const_cast<char*>(bytes.data()), bytes.size()};
    bytes_ += bytes.size();
  }

  // Appends a copy of `bytes` into the scratch area, joining the previous part when that one
  // ends where the copy starts (so a response's made-up lines are one iovec).
  void text(std::string_view bytes) noexcept {
    if (bytes.empty()) return;
    char* at = scratch_.data() + used_;
    __builtin_memcpy(at, bytes.data(), bytes.size());
    used_ += bytes.size();
    bytes_ += bytes.size();
    if (count_ > 0) {
      auto& last = parts_[count_ - 1];
      if (static_cast<char*>(last.iov_base) + last.iov_len == at) {
        last.iov_len += bytes.size();
        return;
      }
    }
    parts_[count_++] = {at, bytes.size()};
  }
  // Appends a decimal number as text.
  void number(std::uint64_t value) noexcept { text(decimal(value).view()); }

  [[nodiscard]] std::span<const iovec> parts() const noexcept { return {parts_.data(), count_}; }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] bool in_scratch(const void* p) const noexcept {
    const char* c = static_cast<const char*>(p);
    return c >= scratch_.data() && c < scratch_.data() + scratch_.size();
  }

 private:
  std::array<iovec, max_parts> parts_{};
  std::array<char, scratch_size> scratch_{};
  std::size_t count_ = 0;
  std::size_t used_ = 0;
  std::size_t bytes_ = 0;
};

// A sink that appends nothing and counts the bytes an `output` would receive from the same calls.
class byte_count {
 public:
  void view(std::string_view bytes) noexcept { bytes_ += bytes.size(); }
  void text(std::string_view bytes) noexcept { bytes_ += bytes.size(); }
  void number(std::uint64_t value) noexcept { bytes_ += decimal(value).view().size(); }
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  std::uint64_t bytes_ = 0;
};

static_assert(byte_sink<output> && byte_sink<byte_count>);

}  // namespace kawipiko::serve
