#pragma once
// The applets of the multi-call `kawipiko` binary. Each takes its own argv (argv[0] is the applet
// name used in messages) and returns the process exit code: 0 success, 1 runtime failure, 2 usage
// error. Runtime failures propagate as exceptions to main's one catch.

namespace kawipiko::app {

int archive_command(int argc, char** argv);
int serve_command(int argc, char** argv);

}  // namespace kawipiko::app
