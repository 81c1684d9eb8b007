#pragma once
// The "Date: <IMF-fixdate>\r\n" header line, formatted at most once per second per thread; the
// same cache serves the access log's time stamps, in their own formats.

#include <ctime>
#include <string_view>

namespace kawipiko::serve {

class date_line {
 public:
  // The Date header line.
  date_line() noexcept = default;
  // Another text of the second, in UTC: `format` is strftime's (a literal; at most 63 bytes out).
  explicit date_line(const char* format) noexcept : format_(format) {}

  // The line for the current second (CLOCK_REALTIME_COARSE: a vDSO read, no system call).
  [[nodiscard]] std::string_view get() noexcept {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    return at(now.tv_sec);
  }
  // The line for `second` (seconds since the epoch), formatted only when it differs from the
  // previous call's. The view stays valid, and unchanged, until a call for another second.
  [[nodiscard]] std::string_view at(std::time_t second) noexcept {
    if (length_ == 0 || second != second_) format(second);
    return {text_, length_};
  }

 private:
  void format(std::time_t second) noexcept {
    std::tm parts{};
    ::gmtime_r(&second, &parts);
    length_ = std::strftime(text_, sizeof text_, format_, &parts);
    second_ = second;
  }

  const char* format_ = "Date: %a, %d %b %Y %H:%M:%S GMT\r\n";
  std::time_t second_ = 0;
  char text_[64] = {};
  std::size_t length_ = 0;
};

}  // namespace kawipiko::serve
