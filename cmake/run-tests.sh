#!/usr/bin/env bash
# The test command (README.rst, .ci/run): installs what is missing, builds with warnings as errors
# and ASan+UBSan, and runs every test. Usage: bash cmake/run-tests.sh [build folder]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/test}

bash cmake/install-deps.sh

cmake -S . -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKAWIPIKO_WARNINGS_AS_ERRORS=ON \
  -DKAWIPIKO_SANITIZE=address,undefined
cmake --build "$build" -j "$(nproc)"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
