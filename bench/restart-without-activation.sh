#!/usr/bin/env bash
# What a restart of kawipiko costs its clients, without socket activation and with it (not a
# test: nothing is asserted; the figures go to a table).
#
# Method. Builds kawipiko in Release and archives a small site (one 4 KB page). A client
# (bench/restart-client.py: Python threads at 127.0.0.1, each request on a new connection with
# "Connection: close", so that every request is a connection attempt) asks for / throughout a
# run, while the server is restarted every <interval> (SIGTERM: the answers in flight finish),
# <restarts> times, the first after a 1 s warm-up. It counts the requests answered and those
# that failed, by kind: refused (nothing listened), reset (an accept queue thrown away), closed
# before a complete response, timeout. Three ways to restart, one run each, a fresh port each:
#   stop-start  the server binds --bind itself; SIGTERM, wait for its exit, start a new one,
#               wait for its start-up line: between the two nothing listens (refused).
#   overlap     the same, but the new one starts first (SO_REUSEPORT lets both bind the port)
#               and the old one is stopped once the new one listens: nothing is refused, but the
#               kernel spreads connections over both sockets, and those waiting in the old one's
#               accept queue when it closes are reset.
#   activated   Debian's systemd-socket-activate binds the port and passes it (LISTEN_FDS, named
#               "http") to a bash loop that starts the server again whenever it exits, as
#               systemd's socket unit holds the socket across a service restart: the socket and
#               its queue never close, so connection attempts wait in it while no server runs.
#               The server's PID is written by the loop; the restart is SIGTERM to that PID.
#
# Prints a table and writes it to <build>/restart-results.txt (the client's lines and the
# servers' logs in <build>/restart-results/). Every process started here is stopped by its PID
# on exit; all traffic is to 127.0.0.1.
#
# Usage: bash bench/restart-without-activation.sh [--restarts N] [--interval S] [--threads N]
#        [build folder]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

command="bash bench/restart-without-activation.sh${*:+ $*}"
restarts=20 interval=0.5 threads=4 build=build/bench
while (($# > 0)); do
  case "$1" in
    --restarts) restarts=$2; shift ;;
    --interval) interval=$2; shift ;;
    --threads) threads=$2; shift ;;
    -h | --help) sed -n '2,/^#  *Usage:/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "restart-without-activation.sh: error: unknown option '$1'" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done

bash cmake/install-deps.sh python3 systemd
build_release . "$build"
kawipiko=$(realpath "$build/app/kawipiko")
results="$build/restart-results"
mkdir -p "$results"
rm -f "$results"/*.txt "$results"/*.log
work=$(mktemp -d /tmp/kawipiko-restart.XXXXXX)
pid_file="$work/server.pid"
# Stops what is still running, by PID: this shell's jobs, and the server the activated loop
# started last (if that PID is still a kawipiko).
cleanup() {
  local pid
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
  if [ -f "$pid_file" ]; then
    pid=$(cat "$pid_file")
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$kawipiko" ] && kill "$pid"
  fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/site"
head -c 3000 /dev/urandom | base64 -w 76 | sed 's|^|<p>|' >"$work/site/index.html"
"$kawipiko" archive --quiet --sources "$work/site" --archive "$work/site.cdb" >/dev/null
seconds=$(echo "1 + $restarts * $interval + 1" | bc)

# Waits (10 s at most) until <log> has the server's start-up line.
wait_started() { # <log>
  local i
  for ((i = 0; i < 1000; i++)); do
    grep -q '^kawipiko serve: serving ' "$1" 2>/dev/null && return 0
    sleep 0.01
  done
  echo "restart-without-activation.sh: error: the server did not start; see $1" >&2
  exit 1
}

# Starts a server binding 127.0.0.1:<port> itself, logging to <log>; sets `server`.
start_server() { # <port> <log>
  "$kawipiko" serve --archive "$work/site.cdb" --bind "127.0.0.1:$1" >"$2" 2>&1 &
  server=$!
  wait_started "$2"
}

run_client() { # <port> <mode>
  python3 bench/restart-client.py "$1" "$threads" "$seconds" >"$results/$2-client.txt" &
  client=$!
}

run_stop_start() {
  local port i
  port=$(free_port)
  start_server "$port" "$results/stop-start-0.log"
  run_client "$port" stop-start
  sleep 1
  for ((i = 1; i <= restarts; i++)); do
    kill -TERM "$server"
    wait "$server" || true
    start_server "$port" "$results/stop-start-$i.log"
    sleep "$interval"
  done
  wait "$client"
  kill -TERM "$server"
  wait "$server" || true
}

run_overlap() {
  local port i old
  port=$(free_port)
  start_server "$port" "$results/overlap-0.log"
  run_client "$port" overlap
  sleep 1
  for ((i = 1; i <= restarts; i++)); do
    old=$server
    start_server "$port" "$results/overlap-$i.log"
    kill -TERM "$old"
    wait "$old" || true
    sleep "$interval"
  done
  wait "$client"
  kill -TERM "$server"
  wait "$server" || true
}

run_activated() {
  local port i loop
  port=$(free_port)
  rm -f "$pid_file"
  # The loop's subshell writes its PID, then execs the server: LISTEN_PID is the server's.
  # shellcheck disable=SC2016
  /usr/bin/systemd-socket-activate -l "127.0.0.1:$port" --fdname=http bash -c \
    'while :; do (echo $BASHPID >"$0"; export LISTEN_PID=$BASHPID; exec "$@") || break; done' \
    "$pid_file" "$kawipiko" serve --archive "$work/site.cdb" >"$results/activated.log" 2>&1 &
  loop=$!
  run_client "$port" activated  # its first connection makes systemd-socket-activate exec the loop
  sleep 1
  for ((i = 1; i <= restarts; i++)); do
    kill -TERM "$(cat "$pid_file")"
    sleep "$interval"
  done
  wait "$client"
  kill -TERM "$loop"  # the loop first, so that it starts no other server
  wait "$loop" 2>/dev/null || true
  kill -TERM "$(cat "$pid_file")" 2>/dev/null || true
}

run_stop_start
run_overlap
run_activated

# One row per way to restart, from the client's line.
row() { # <mode>
  local line answered failed
  line=$(grep '^RESTART ' "$results/$1-client.txt")
  field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" ${line#RESTART }"; }
  answered=$(field answered)
  failed=$(($(field refused) + $(field reset) + $(field closed) + $(field timeout) + $(field other)))
  printf '%-11s %8s %9s %7s %8s %6s %7s %7s %6s %8s\n' "$1" "$restarts" "$answered" "$failed" \
    "$(field refused)" "$(field reset)" "$(field closed)" "$(field timeout)" "$(field other)" \
    "$(awk "BEGIN { printf \"%.1f\", $failed / $restarts }")"
}

{
  echo "$command: $(date -u +%Y-%m-%dT%H:%MZ), kawipiko $(git rev-parse --short HEAD)," \
    "$threads client threads, a restart every ${interval} s after 1 s, ${seconds} s per run"
  printf '%-11s %8s %9s %7s %8s %6s %7s %7s %6s %8s\n' way restarts answered failed refused \
    reset closed timeout other "failed/restart"
  row stop-start
  row overlap
  row activated
} | tee "$build/restart-results.txt"
