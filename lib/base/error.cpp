#include "base/error.hpp"

#include <cstdio>

namespace kawipiko::base {

std::string quote(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out.push_back('\'');
  for (const char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

void throw_errno(int error, std::string_view operation, std::string_view object) {
  std::string message{operation};
  message += ' ';
  message += quote(object);
  throw std::system_error(error, std::generic_category(), message);
}

void throw_error(std::string_view what, std::string_view object, std::string_view detail) {
  std::string message{what};
  message += ' ';
  message += quote(object);
  if (!detail.empty()) {
    message += ": ";
    message += detail;
  }
  throw std::runtime_error(message);
}

}  // namespace kawipiko::base
