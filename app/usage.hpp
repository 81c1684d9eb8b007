#pragma once
// What the applets' command lines share: a table of flags (one row per flag: name, what it takes
// and where it stores it, help), parsing argv against it, and usage errors, which are shown as
// one line and a hint, exit 2.

#include <boost/program_options.hpp>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/error.hpp"

namespace kawipiko::app {

// A wrong command line. The libraries throw the same type for the options they refuse, so that
// each option is checked in one place and every refusal reads the same.
using usage_error = base::invalid_option;

// One row of a flag table: the flag without "--" ("help,h" adds -h), what it takes and where it
// stores it (one of the builders below; nullptr: a switch that stores nothing), its help text.
struct flag {
  const char* name;
  boost::program_options::value_semantic* value;
  std::string help;
};

// `--flag <value_name>`, parsed as a T into `target`. Without the flag the target keeps its value:
// the default of the options struct it belongs to.
template <class T>
boost::program_options::value_semantic* stores(T& target, const char* value_name) {
  return boost::program_options::value(&target)->value_name(value_name);
}

// `--flag <value_name>`, parsed as a T into `target`, which stays empty without the flag.
template <class T>
boost::program_options::value_semantic* stores(std::optional<T>& target, const char* value_name) {
  return boost::program_options::value<T>()
      ->value_name(value_name)
      ->notifier([&target](const T& value) { target = value; });
}

// A switch: `when_given` runs if the flag is on the command line.
boost::program_options::value_semantic* on_switch(std::function<void()> when_given);

// A switch that sets each of its targets to true.
template <class... Bools>
boost::program_options::value_semantic* sets(Bools&... targets) {
  static_assert((std::is_same_v<Bools, bool> && ...));
  return on_switch([&targets...] { ((targets = true), ...); });
}

// A switch that sets its target to false.
inline boost::program_options::value_semantic* clears(bool& target) {
  return on_switch([&target] { target = false; });
}

// " (default: <text>)", to end a help text with a default taken from an options struct.
[[nodiscard]] std::string default_is(std::string_view text);
template <class Number>
requires std::is_arithmetic_v<Number>
[[nodiscard]] std::string default_is(Number value) {
  return default_is(std::to_string(value));
}

// The table as `--help` prints it.
[[nodiscard]] boost::program_options::options_description describe(
    std::initializer_list<flag> table);

// Parses argv (argv[0] is the applet) and stores into the table's targets. Throws usage_error for
// a flag that is unknown, lacks its value or whose value does not parse.
[[nodiscard]] boost::program_options::variables_map parse(
    int argc, char** argv, const boost::program_options::options_description& flags);

// Runs an applet's body. A usage_error (its own or a library's) becomes "<applet>: error: <what>"
// and "Try '<applet> --help'." on stderr and exit 2; anything else goes on to main's one catch.
int run_applet(std::string_view applet, const std::function<int()>& body);

}  // namespace kawipiko::app
