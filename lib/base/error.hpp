#pragma once
// Error helpers for cold paths: exceptions whose message names the operation and the object, in
// the form users see on one line ("cannot open 'site.cdb': No such file or directory").

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace kawipiko::base {

// An option that a library entry point (serve::run, archive::build) refuses. The message names the
// option as the command line spells it ("--threads must be 1 to 1024"), so that the applets can
// show it as it is, as a usage error (exit 2), and each option is checked in one place.
class invalid_option : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Quotes a path or name for a message: 'x'. Control bytes are shown as \xNN so that a hostile
// file name cannot break the one-line message.
std::string quote(std::string_view name);

// Throws std::system_error for errno `error`, with "<operation> '<object>'" as its message.
[[noreturn]] void throw_errno(int error, std::string_view operation, std::string_view object);

// Throws std::runtime_error with "<what> '<object>'" (plus ": <detail>" when not empty).
[[noreturn]] void throw_error(std::string_view what, std::string_view object,
                              std::string_view detail = {});

}  // namespace kawipiko::base
