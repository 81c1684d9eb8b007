#!/usr/bin/env bash
# Live deploys under load: kawipiko serving while its archive is swapped by rename, every
# response checked (not a test: nothing is asserted; the figures go to a table).
#
# Method. Builds kawipiko in Release and two builds of Debian's python3.11-doc HTML: "a" as
# packaged, "b" the same with one more line at the end of every HTML page (so every page's bodies
# and ETags differ), each archived with --compress gzip. bench/reload-client.py then makes the
# table of what each build must send, per page and coding: the entry read with Debian's
# `cdb -q`, its ETag from the header block, the SHA-256 and length of the body at its position
# in the archive file, that body checked against the build's source file (decompressed for gzip).
# The live name and its copies sit in a tmpfs folder (/dev/shm when there is one), so that
# copying the archive every 100 ms measures no disk. kawipiko serves the live name (one thread,
# inotify watching it, pinned to CPU 0); the client (reload-client.py: asyncio, raw keep-alive
# connections, pages at random, seeded, "Accept-Encoding: gzip"; on CPU 1) checks every
# response: status 200, a complete body, Content-Encoding, ETag, length and SHA-256 those of
# one build's row for the page (the ETag says which build the response claims; the body must be
# that build's). Counts errors (connections reset or closed before a complete response,
# timeouts), non-2xx and mismatches.
#
# Runs, interleaved over the rounds, each with a fresh server, after a 2 s warm-up:
#   steady  256 connections for 20 s, no swap
#   swaps   the same while the archive is swapped every 100 ms, b, a, b, ...: cp of the build
#           to a temp name beside the live one, then mv over it (the swapper on CPU 1 too,
#           as is this script once the archives are built)
# For each run: requests/s, errors, non2xx, mismatches, responses per build, swaps done and
# reloads logged by the server, and the server's CPU per request (utime+stime from
# /proc/PID/stat over the run): the whole process, and its serving thread alone (the main
# thread does the reloads: open, validate, hash the new archive) with its minor page faults
# per request (a new generation's pages are faulted in again), and the main thread's CPU per
# reload. The machine's load: CPU 0's busy time during the run that was not the server's
# ("others on CPU 0").
# Then the leak check: a fresh server, 4 connections of the same client throughout, the
# server's RSS (VmRSS, RssAnon, RssFile, RssShmem from /proc/PID/status; the archive's pages
# count as RssShmem on tmpfs) and its mappings of archive files (lines of /proc/PID/maps under
# the live folder, and the distinct files they map), 1 s after the first swap, the 100th and
# the 200th (swaps every 100 ms).
#
# Prints a table (medians over the rounds, min-max) and writes it to <build>/reload-results.txt
# (raw figures in <build>/reload-results/). The default run takes about 3 minutes; --quick (one
# round, 5 s runs, 20 swaps in the leak check) is a smoke test of the harness. Every process
# started here is stopped by its PID on exit; all traffic is to 127.0.0.1.
#
# Usage: bash bench/reload-under-load.sh [--quick] [--rounds N] [build folder]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

command="bash bench/reload-under-load.sh${*:+ $*}"
quick=0 rounds= build=build/bench
while (($# > 0)); do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    -h | --help) sed -n '2,/^#  *Usage:/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "reload-under-load.sh: error: unknown option '$1'" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done
connections=256 interval_ms=100 warmup=2 seed=1
if ((quick)); then
  seconds=5 rounds=${rounds:-1} leak_swaps=20
else
  seconds=20 rounds=${rounds:-2} leak_swaps=200
fi

bash cmake/install-deps.sh python3 tinycdb python3.11-doc
build_release . "$build"
kawipiko="$build/app/kawipiko"
results="$build/reload-results"
mkdir -p "$results"
rm -f "$results"/*.tsv "$results"/*.txt "$results"/*.log
ulimit -n 4096 2>/dev/null || true

scratch=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && scratch=/dev/shm
work=$(mktemp -d "$scratch/kawipiko-reload.XXXXXX")
live=$work/live
mkdir -p "$live"
pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }

# --- the two builds, their archives and the table of what each must send ---------------------
log "preparing builds a and b of the docs in $work"
cp -rL /usr/share/doc/python3.11/html "$work/a"
cp -r "$work/a" "$work/b"
find "$work/b" -name '*.html' -print0 |
  xargs -0 -r sh -c 'for f; do echo "<!-- kawipiko reload bench: build b -->" >>"$f"; done' sh
(cd "$work/a" && find . -name '*.html' | sed 's/^\.//' | sort) >"$work/paths.txt"
for name in a b; do
  "$kawipiko" archive --sources "$work/$name" --archive "$work/$name.cdb" --compress gzip --quiet >/dev/null
done
table=$(python3 bench/reload-client.py table "$work/table.tsv" "$work/paths.txt" \
  "a=$work/a.cdb=$work/a" "b=$work/b.cdb=$work/b")
echo "   $table" >&2
# From here on this script and what it starts run on CPU 1 (the client's), the server on CPU 0.
taskset -p -c 1 $$ >/dev/null

# --- the server and the swapper ---------------------------------------------------------------
server_pid= server_port=
start_server() { # <log file>: a fresh server on the live name, build a
  cp "$work/a.cdb" "$live/site.cdb"
  server_port=$(free_port)
  taskset -c 0 "$kawipiko" serve --archive "$live/site.cdb" --bind "127.0.0.1:$server_port" \
    --threads 1 --quiet --max-requests-per-connection 10000000 2>"$1" &
  server_pid=$!
  pids+=("$server_pid")
  wait_for_200 "http://127.0.0.1:$server_port/index.html" curl
}

check_alive() { # <what ran>
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "reload-under-load.sh: error: kawipiko (PID $server_pid) died during $1" >&2
    exit 1
  fi
}

# Swaps b, a, b, ... over the live name, <count> times (0: until <seconds> have passed), one every
# $interval_ms from the start (at once when a copy took longer); writes the count done to <file>.
swap_loop() { # <count> <seconds> <file>
  local count=$1 end=$(($(date +%s%N) + $2 * 1000000000)) start now next done=0 build
  start=$(date +%s%N)
  while true; do
    now=$(date +%s%N)
    if ((count > 0 ? done >= count : now >= end)); then break; fi
    build=b
    ((done % 2)) && build=a
    cp "$work/$build.cdb" "$live/site.cdb.new"
    mv -f "$live/site.cdb.new" "$live/site.cdb"
    done=$((done + 1))
    next=$((start + done * interval_ms * 1000000))
    now=$(date +%s%N)
    if ((next > now)); then sleep "$(printf '0.%09d' $((next - now)))"; fi
  done
  echo "$done" >"$3"
}

# Minor page faults of <pid>, or of one thread given as "<pid>/task/<tid>".
minor_faults() { # <pid>
  local stat fields
  stat=$(<"/proc/$1/stat")
  read -r -a fields <<<"${stat##*) }"
  echo "${fields[7]}"
}

# Busy clock ticks of CPU <n> since boot (user, nice, system, irq, softirq, steal).
cpu_busy() { # <n>
  awk -v cpu="cpu$1" '$1 == cpu { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

client() { # <connections> <seconds> <report file>: prints the client's CHECK line
  taskset -c 1 python3 bench/reload-client.py run "$server_port" "$work/table.tsv" "$1" "$2" \
    "$seed" "$3"
}

# One run: a fresh server, a warm-up, then the client for $seconds with or without swaps.
run() { # <round> <steady|swaps>
  local round=$1 kind=$2 before before_main before_cpu0 after after_main after_cpu0 line swaps=0
  local faults_before faults_after
  local serve_log=$results/serve-$kind-$round.log
  start_server "$serve_log"
  client 16 "$warmup" /dev/null >/dev/null
  rm -f "$work/swaps"
  before=$(cpu_ticks "$server_pid") before_main=$(cpu_ticks "$server_pid/task/$server_pid")
  before_cpu0=$(cpu_busy 0)
  faults_before=$(($(minor_faults "$server_pid") - $(minor_faults "$server_pid/task/$server_pid")))
  if [ "$kind" = swaps ]; then
    swap_loop 0 "$seconds" "$work/swaps" &
    pids+=($!)
  fi
  line=$(client "$connections" "$seconds" "$results/client-$kind-$round.txt")
  after=$(cpu_ticks "$server_pid") after_main=$(cpu_ticks "$server_pid/task/$server_pid")
  after_cpu0=$(cpu_busy 0)
  faults_after=$(($(minor_faults "$server_pid") - $(minor_faults "$server_pid/task/$server_pid")))
  check_alive "the $kind run"
  if [ "$kind" = swaps ]; then
    wait "${pids[-1]}"
    swaps=$(<"$work/swaps")
  fi
  declare -A v
  for field in ${line#CHECK }; do v[${field%%=*}]=${field#*=}; done
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$kind" \
    "${v[requests]}" "${v[duration_us]}" "${v[errors]}" "${v[non2xx]}" "${v[mismatches]}" \
    "${v[build_a]:-0}" "${v[build_b]:-0}" "$swaps" "$(grep -c ' reloaded: ' "$serve_log" || true)" \
    "$((after - before))" "$((after_main - before_main))" \
    "$((after_cpu0 - before_cpu0 - (after - before)))" "$(getconf CLK_TCK)" \
    "$((faults_after - faults_before))" >>"$results/runs.tsv"
  printf '   round %s %-6s %8.0f req/s  errors %s  non2xx %s  mismatches %s  a %s  b %s  swaps %s  %s\n' \
    "$round" "$kind" "$(bc -l <<<"${v[requests]} * 1000000 / ${v[duration_us]}")" "${v[errors]}" \
    "${v[non2xx]}" "${v[mismatches]}" "${v[build_a]:-0}" "${v[build_b]:-0}" "$swaps" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
  stop_all
}

{
  echo "# kawipiko reload under load, $(date -u +%Y-%m-%dT%H:%MZ), mode: $( ((quick)) && echo quick || echo full)," \
    "$rounds round(s) of ${seconds} s runs, swaps every $interval_ms ms"
  echo "# machine: $(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)"
  echo "# kawipiko $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- lib app 2>/dev/null || echo ' (modified)')"
  echo "# command: $command"
  echo "# data: python3.11-doc, builds a and b (b: one more line in every HTML page), gzip archives of" \
    "$(stat -c %s "$work/a.cdb") and $(stat -c %s "$work/b.cdb") bytes in $scratch; ${table#TABLE }"
  echo "# server on CPU 0 (1 thread), reload-client.py on CPU 1 at $connections connections"
} >"$results/meta.txt"

for ((round = 1; round <= rounds; round++)); do
  log "round $round of $rounds"
  if ((round % 2)); then run "$round" steady; run "$round" swaps; else run "$round" swaps; run "$round" steady; fi
done

# --- the leak check ---------------------------------------------------------------------------
log "leak check: $leak_swaps swaps under a light load"
memory() { # <label>: one row of RSS and archive mappings
  local kib maps files
  kib=$(awk '$1 ~ /^(VmRSS|RssAnon|RssFile|RssShmem):$/ { printf "%s\t", $2 }' "/proc/$server_pid/status")
  maps=$(grep -c -F "$live/" "/proc/$server_pid/maps" || true)
  files=$(grep -F "$live/" "/proc/$server_pid/maps" | awk '{ print $4, $5 }' | sort -u | wc -l)
  printf '%s\t%s%s\t%s\n' "$1" "$kib" "$maps" "$files" >>"$results/memory.tsv"
}
start_server "$results/serve-leak.log"
leak_seconds=$((4 + leak_swaps * interval_ms / 1000 + 3))
taskset -c 1 python3 bench/reload-client.py run "$server_port" "$work/table.tsv" 4 "$leak_seconds" \
  "$seed" "$results/client-leak.txt" >"$work/leak-check" &
client_pid=$!
pids+=("$client_pid")
sleep 0.5
swap_loop 1 0 "$work/swaps"
sleep 1
memory "after 1 swap"
swap_loop $((leak_swaps / 2 - 1)) 0 "$work/swaps"
sleep 1
memory "after $((leak_swaps / 2)) swaps"
swap_loop $((leak_swaps - leak_swaps / 2)) 0 "$work/swaps"
sleep 1
memory "after $leak_swaps swaps"
check_alive "the leak check"
wait "$client_pid"
echo "$(<"$work/leak-check") reloads=$(grep -c ' reloaded: ' "$results/serve-leak.log" || true)" >"$results/leak-client.txt"
stop_all

python3 - "$results" <<'EOF' | tee "$build/reload-results.txt"
import statistics, sys
results = sys.argv[1]
print(open(f"{results}/meta.txt").read(), end="")
rows = [line.rstrip("\n").split("\t") for line in open(f"{results}/runs.tsv")]
by_kind = {}
for r in rows:
    (rnd, kind, requests, duration_us, errors, non2xx, mismatches, a, b, swaps, reloads, ticks, main_ticks,
     others, hz, faults) = r
    requests, hz = int(requests), int(hz)
    by_kind.setdefault(kind, []).append({
        "req/s": requests * 1e6 / int(duration_us),
        "cpu us/req": int(ticks) / hz * 1e6 / requests,
        "serving us/req": (int(ticks) - int(main_ticks)) / hz * 1e6 / requests,
        "serving faults/req": int(faults) / requests,
        "main ms/reload": int(main_ticks) / hz * 1e3 / int(reloads) if int(reloads) else 0.0,
        "others on CPU 0 %": int(others) / hz * 1e6 / int(duration_us) * 100,
        "errors": int(errors), "non2xx": int(non2xx), "mismatches": int(mismatches),
        "build a": int(a), "build b": int(b), "swaps": int(swaps), "reloads": int(reloads)})
med = lambda runs, key: statistics.median(run[key] for run in runs)
span = lambda runs, key, f: f"{f.format(med(runs, key))} ({f.format(min(r[key] for r in runs))}-{f.format(max(r[key] for r in runs))})"
columns = [("req/s", "{:.0f}"), ("cpu us/req", "{:.2f}"), ("serving us/req", "{:.2f}"),
           ("serving faults/req", "{:.3f}"),            ("main ms/reload", "{:.1f}"), ("others on CPU 0 %", "{:.0f}")]
sums = ["errors", "non2xx", "mismatches", "build a", "build b", "swaps", "reloads"]
print()
print(f"{'run':<7} {'runs':>4} " + " ".join(f"{name:>24}" for name, _ in columns))
for kind, runs in by_kind.items():
    print(f"{kind:<7} {len(runs):>4} " + " ".join(f"{span(runs, name, f):>24}" for name, f in columns))
print()
print(f"{'run':<7} " + " ".join(f"{name:>10}" for name in sums) + "   (sums over the rounds)")
for kind, runs in by_kind.items():
    print(f"{kind:<7} " + " ".join(f"{sum(r[name] for r in runs):>10}" for name in sums))
if "steady" in by_kind and "swaps" in by_kind:
    for name in ("cpu us/req", "serving us/req"):
        print(f"{name} swaps/steady: {med(by_kind['swaps'], name) / med(by_kind['steady'], name):.3f} (target <= 1.05)")
print()
print(f"{'leak check':<18} {'VmRSS KiB':>10} {'RssAnon':>10} {'RssFile':>10} {'RssShmem':>10} {'maps':>6} {'files':>6}")
for line in open(f"{results}/memory.tsv"):
    label, *v = line.rstrip("\n").split("\t")
    print(f"{label:<18} " + " ".join(f"{x:>10}" for x in v[:4]) + " " + " ".join(f"{x:>6}" for x in v[4:]))
print("leak check client (4 connections):", open(f"{results}/leak-client.txt").read().strip())
EOF
echo "table written to $build/reload-results.txt (raw figures in $results/)"
