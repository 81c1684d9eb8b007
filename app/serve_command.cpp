// `kawipiko serve`: not built yet (it is the next issue); says so clearly.

#include <cstdio>
#include <cstring>

#include "commands.hpp"

namespace kawipiko::app {

int serve_command(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::puts(
          "usage: kawipiko serve --archive <path> [options]\n\n"
          "The server is not built yet in this version.");
      return 0;
    }
  }
  std::fputs("kawipiko serve: error: the server is not built yet in this version\n", stderr);
  return 1;
}

}  // namespace kawipiko::app
