#include "usage.hpp"

#include <cstdio>
#include <utility>

namespace kawipiko::app {

namespace po = boost::program_options;

po::value_semantic* on_switch(std::function<void()> when_given) {
  return po::bool_switch()->notifier([when_given = std::move(when_given)](bool given) {
    if (given) when_given();
  });
}

std::string default_is(std::string_view text) {
  return " (default: " + std::string(text) + ")";
}

po::options_description describe(std::initializer_list<flag> table) {
  po::options_description flags("options");
  auto add = flags.add_options();
  for (const auto& row : table) {
    if (row.value == nullptr) {
      add(row.name, row.help.c_str());
    } else {
      add(row.name, row.value, row.help.c_str());
    }
  }
  return flags;
}

po::variables_map parse(int argc, char** argv, const po::options_description& flags) {
  po::variables_map values;
  try {
    po::store(po::command_line_parser(argc, argv).options(flags).run(), values);
    po::notify(values);
  } catch (const po::error& e) {
    throw usage_error(e.what());
  }
  return values;
}

int run_applet(std::string_view applet, const std::function<int()>& body) {
  try {
    return body();
  } catch (const usage_error& e) {
    const std::string name(applet);
    std::fprintf(stderr, "%s: error: %s\nTry '%s --help'.\n", name.c_str(), e.what(), name.c_str());
    return 2;
  }
}

}  // namespace kawipiko::app
