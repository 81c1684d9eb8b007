#pragma once
// Test support: a visible skip, which Catch2 2.13 lacks. KAWIPIKO_SKIP prints a marker line that
// CTest's SKIP_REGULAR_EXPRESSION (set on every test in test/CMakeLists.txt) turns into
// "Skipped", counted in its summary line, and ends the test case. Only for a case that cannot
// run in this build at all; a precondition the test could arrange is arranged, or it fails.

#include <cstdio>

// Ends the current TEST_CASE as skipped because of `reason` (a string literal). The marker must
// match kawipiko_skip_marker in test/CMakeLists.txt.
#define KAWIPIKO_SKIP(reason)                           \
  do {                                                  \
    std::printf("kawipiko-test-skipped: %s\n", reason); \
    std::fflush(stdout);                                \
    return;                                             \
  } while (false)
