#!/usr/bin/env bash
# Builds the libFuzzer targets (clang++, ASan+UBSan) and runs each for a bounded time, starting
# from its seed corpus in test/fuzz/corpus/. Fails on any crash, leak, sanitizer report or failed
# check; prints the executions per target. The repository is not written: the working corpus, the
# crash inputs and the logs go to the build folder.
# Usage: bash test/fuzz/run.sh [seconds per target, default 60] [build folder, default build/fuzz]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
build=${2:-build/fuzz}
targets=(request_path target headers cdb archive rules tls_http1 http2)
http_targets=" request_path target headers tls_http1 "

bash cmake/install-deps.sh clang libclang-rt-14-dev

cmake -S . -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKAWIPIKO_FUZZ=ON \
  -DKAWIPIKO_WARNINGS_AS_ERRORS=ON \
  -DBUILD_TESTING=OFF
cmake --build "$build" --target kawipiko_fuzzers -j "$(nproc)"

# A folded header value once pointed into a dead stack frame: look for more of that kind.
export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

work="$build/fuzz-run"
rm -rf "$work"
mkdir -p "$work"
failed=()
summary=()
for target in "${targets[@]}"; do
  seeds="test/fuzz/corpus/$target"
  corpus="$work/corpus/$target"
  mkdir -p "$corpus" "$work/artifacts"
  cp -R "$seeds/." "$corpus/"
  options=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$work/artifacts/$target-")
  if [[ $http_targets == *" $target "* ]]; then options+=(-dict=test/fuzz/http.dict); fi
  log="$work/$target.log"
  echo "fuzz: $target for ${seconds}s (log: $log)"
  status=0
  "$build/test/fuzz/fuzz_$target" "${options[@]}" "$corpus" "$seeds" >"$log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  result=ok
  if ((status != 0)) ||
    grep -qaE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|fuzz check failed' "$log"; then
    result="FAILED (exit $status)"
    failed+=("$target")
    grep -aE -A30 'fuzz check failed|ERROR: |runtime error:' "$log" | head -n 60 >&2 || true
    grep -a 'Test unit written to' "$log" >&2 || true
  fi
  summary+=("$(printf '%-13s %12s executions  %s' "$target" "${executions:-?}" "$result")")
done

echo
printf '%s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
  echo "fuzz: failed: ${failed[*]} (inputs in $work/artifacts/)" >&2
  exit 1
fi
