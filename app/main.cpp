// kawipiko: one multi-call binary. The applet is chosen by argv[0]'s basename
// (kawipiko-archiver, kawipiko-server) or by the first argument (kawipiko archive|serve).

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "commands.hpp"

namespace {

constexpr std::string_view usage_text =
    "usage: kawipiko <command> [options]\n"
    "\n"
    "A static HTTP server that answers from one precompiled, read-only CDB archive.\n"
    "\n"
    "commands:\n"
    "  archive   compile a folder into an archive   (also: kawipiko-archiver)\n"
    "  serve     serve an archive over HTTP         (also: kawipiko-server)\n"
    "\n"
    "options:\n"
    "  -h, --help      show this help\n"
    "  -V, --version   show the version\n"
    "\n"
    "Run 'kawipiko <command> --help' for the options of a command.\n";

std::string_view basename_of(const char* path) {
  std::string_view name(path);
  const auto slash = name.rfind('/');
  return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

}  // namespace

int main(int argc, char** argv) {
  namespace app = kawipiko::app;
  std::string applet = "kawipiko";
  try {
    const std::string_view self = argc > 0 ? basename_of(argv[0]) : "kawipiko";
    if (self == "kawipiko-archiver") {
      applet = "kawipiko archive";
      return app::archive_command(argc, argv);
    }
    if (self == "kawipiko-server") {
      applet = "kawipiko serve";
      return app::serve_command(argc, argv);
    }
    if (argc < 2) {
      std::fputs(usage_text.data(), stderr);
      return 2;
    }
    const std::string_view command = argv[1];
    if (command == "-h" || command == "--help" || command == "help") {
      std::fputs(usage_text.data(), stdout);
      return 0;
    }
    if (command == "-V" || command == "--version") {
      std::printf("kawipiko %s\n", KAWIPIKO_VERSION);
      return 0;
    }
    if (command == "archive") {
      applet = "kawipiko archive";
      return app::archive_command(argc - 1, argv + 1);
    }
    if (command == "serve") {
      applet = "kawipiko serve";
      return app::serve_command(argc - 1, argv + 1);
    }
    std::fprintf(stderr, "kawipiko: error: unknown command '%s'\nTry 'kawipiko --help'.\n",
                 argv[1]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", applet.c_str(), e.what());
    return 1;
  }
}
