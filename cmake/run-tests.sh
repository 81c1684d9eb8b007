#!/usr/bin/env bash
# The test command (README.rst, .ci/run): installs what is missing, then two builds with warnings
# as errors. The first, with ASan+UBSan, runs every test. The second, a Release build without
# sanitizers beside it ("<folder>-release"), runs the cases a sanitized binary cannot run (CTest
# label "unsanitized"; the first build reports them as skipped).
# Usage: bash cmake/run-tests.sh [build folder]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/test}
build=${build%/}
release="$build-release"

bash cmake/install-deps.sh

cmake -S . -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKAWIPIKO_WARNINGS_AS_ERRORS=ON \
  -DKAWIPIKO_SANITIZE=address,undefined
cmake --build "$build" -j "$(nproc)"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"

# Everything is built, so that warnings as errors also hold for an optimized unsanitized build.
# Release at -O2 rather than CMake's -O3: at -O3 GCC 12 reports a false -Wrestrict inside
# libstdc++ for `"text" + std::string&&` (an overlap of 2^63 bytes), which -O2 does not.
cmake -S . -B "$release" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DKAWIPIKO_WARNINGS_AS_ERRORS=ON \
  -DKAWIPIKO_SANITIZE= \
  -DBUILD_TESTING=ON
cmake --build "$release" -j "$(nproc)"
ctest --test-dir "$release" --output-on-failure -j "$(nproc)" -L unsanitized --no-tests=error
