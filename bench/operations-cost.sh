#!/usr/bin/env bash
# What the access log and the metrics cost per request (not a test: nothing is asserted).
#
# Method. Builds kawipiko in Release and archives hello world (one 13-byte index.html,
# --compress identity). Each run starts a fresh server (one thread, pinned to CPU 0) in one of
# these variants, waits for it to answer, and measures wrk (one thread, pinned to CPU 1, its one
# static request, keep-alive) for the run's duration:
#   off           neither (the reference)
#   log-combined  --access-log to a file in tmpfs (/dev/shm when there is one), combined format
#   log-json      the same, --access-log-format json (also reads the clock for the duration)
#   metrics       --metrics-bind, scraped once a second during the run (a busy Prometheus)
#   both          the combined log and the metrics
# Variants are interleaved and rotated within each round (A B C, then B C A, ...), at 16 and 256
# connections. For each run: requests/s, and the server's CPU time per request: utime+stime of
# the whole process from /proc/PID/stat over the run (so the log's writer thread and the
# metrics thread count), divided by the requests. After each logging run the log's lines are
# counted against wrk's requests, and the dropped-lines counter is read from the scrape.
#
# Prints a table (medians over the rounds with min-max, and each variant's median ratio to "off"
# of the same round) and writes it to <build>/operations-results.txt. The default run takes
# about 4 minutes (3 rounds, 5 s runs); --quick (1 round, 2 s runs) is a smoke test of the
# harness. Every process started here is stopped by its PID on exit; all traffic is to
# 127.0.0.1.
#
# Usage: bash bench/operations-cost.sh [--quick] [--rounds N] [--seconds S] [build folder]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

quick=0 rounds= seconds= build=build/bench
while (($# > 0)); do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    -h | --help) sed -n '2,/^#  *Usage:/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "operations-cost.sh: error: unknown option '$1'" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done
if ((quick)); then rounds=${rounds:-1} seconds=${seconds:-2}; fi
rounds=${rounds:-3} seconds=${seconds:-5}
connection_counts=(16 256)
variants=(off log-combined log-json metrics both)

bash cmake/install-deps.sh wrk curl
build_release . "$build"
binary=$build/app/kawipiko
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
work=$(mktemp -d "$shm/kawipiko-ops.XXXXXX")
server_pid= scraper_pid=
cleanup() {
  [ -n "$scraper_pid" ] && kill "$scraper_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/hello"
printf 'Hello world!\n' >"$work/hello/index.html"
"$binary" archive --quiet --sources "$work/hello" --archive "$work/hello.cdb" --compress identity

port=$(free_port) metrics_port=$(free_port)
results=$build/operations-results.txt
raw=$work/raw.txt
: >"$raw"

# The flags of a variant (the log at <log>).
flags_of() { # <variant> <log>
  case "$1" in
    off) ;;
    log-combined) echo "--access-log $2" ;;
    log-json) echo "--access-log $2 --access-log-format json" ;;
    metrics) echo "--metrics-bind 127.0.0.1:$metrics_port" ;;
    both) echo "--access-log $2 --metrics-bind 127.0.0.1:$metrics_port" ;;
  esac
}

# One run: a fresh server in <variant>, wrk at <conns>; appends "round variant conns req/s
# cpu_us log-lines dropped requests" to the raw figures.
run_one() { # <round> <variant> <conns>
  local log=$work/access-$2.log flags output requests before after lines=- dropped=-
  rm -f "$log"
  # shellcheck disable=SC2046
  taskset -c 0 "$binary" serve --archive "$work/hello.cdb" --bind "127.0.0.1:$port" --quiet \
    --max-requests-per-connection 10000000 $(flags_of "$2" "$log") &
  server_pid=$!
  wait_for_200 "http://127.0.0.1:$port/" curl
  if [[ $2 == metrics || $2 == both ]]; then
    (while sleep 1; do curl -s -o /dev/null "http://127.0.0.1:$metrics_port/metrics"; done) &
    scraper_pid=$!
  fi
  before=$(cpu_ticks "$server_pid")
  output=$(taskset -c 1 wrk -t1 -c"$3" -d"${seconds}s" -s bench/wrk-report.lua \
    "http://127.0.0.1:$port/")
  after=$(cpu_ticks "$server_pid")
  if [ -n "$scraper_pid" ]; then
    kill "$scraper_pid" 2>/dev/null || true
    wait "$scraper_pid" 2>/dev/null || true
    scraper_pid=
  fi
  if [[ $2 == metrics || $2 == both ]]; then
    dropped=$(curl -s "http://127.0.0.1:$metrics_port/metrics" |
      awk '/^kawipiko_access_log_dropped_lines_total/ {print $2}')
  fi
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=
  [ -f "$log" ] && lines=$(wc -l <"$log")
  requests=$(sed -n 's/.*WRK requests=\([0-9]*\) duration_us=\([0-9]*\).*/\1 \2/p' <<<"$output")
  read -r count duration <<<"$requests"
  # Ticks are 1/CLK_TCK s; CPU per request in us, requests per second.
  awk -v r="$1" -v v="$2" -v c="$3" -v n="$count" -v d="$duration" -v t=$((after - before)) \
    -v hz="$(getconf CLK_TCK)" -v l="$lines" -v x="${dropped:--}" \
    'BEGIN { printf "%s %s %s %.0f %.3f %s %s %d\n", r, v, c, n / (d / 1e6), t * 1e6 / hz / n, l, x, n }' \
    >>"$raw"
  tail -1 "$raw"
}

for ((round = 1; round <= rounds; round++)); do
  for conns in "${connection_counts[@]}"; do
    for ((i = 0; i < ${#variants[@]}; i++)); do
      variant=${variants[(i + round - 1) % ${#variants[@]}]}
      run_one "$round" "$variant" "$conns"
    done
  done
done

python3 - "$raw" "$rounds" "$seconds" <<'EOF' | tee "$results"
import statistics, sys
raw, rounds, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
runs = [line.split() for line in open(raw)]
print(f"bench/operations-cost.sh: hello world, {rounds} rounds of {seconds} s, server on CPU 0 (one thread), wrk -t1 on CPU 1")
print(f"{'variant':13} {'conns':>5} {'req/s median':>13} {'CPU us/req median [min-max]':>29} {'ratio to off, per round (median)':>34}  log lines / requests, dropped")
for conns in sorted({r[2] for r in runs}, key=int):
    off = {r[0]: float(r[4]) for r in runs if r[1] == "off" and r[2] == conns}
    for variant in ["off", "log-combined", "log-json", "metrics", "both"]:
        mine = [r for r in runs if r[1] == variant and r[2] == conns]
        if not mine:
            continue
        cpu = [float(r[4]) for r in mine]
        ratios = [float(r[4]) / off[r[0]] for r in mine if r[0] in off]
        rps = statistics.median(float(r[3]) for r in mine)
        checks = ", ".join(f"{r[5]}/{r[7]} {r[6]}" for r in mine if r[5] != "-" or r[6] != "-")
        print(f"{variant:13} {conns:>5} {rps:>13.0f} {statistics.median(cpu):>8.3f} [{min(cpu):.3f}-{max(cpu):.3f}]      "
              f"{' '.join(f'{x:.3f}' for x in ratios)} ({statistics.median(ratios):.3f})  {checks}")
EOF
