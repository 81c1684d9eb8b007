#!/usr/bin/env bash
# Time to first byte of large pages over TLS on a link with delay, kawipiko side by side with
# nginx (not a test: nothing is asserted). Run as root: it makes network namespaces.
#
# Why: a TLS record is decrypted only once all of it has come, and a fresh connection's server
# sends ~10 segments (~14 KB) before the client's first ACK comes back. A 16 KiB first record
# therefore waits a round trip for its last segment; records that fit one segment do not
# (lib/serve/tls_session.hpp, README "TLS").
#
# Method. Two network namespaces (server and client) joined by a link that bench/delay-link.py
# makes between two TUN devices, with the addresses 10.203.0.1 (server) and 10.203.0.2 (client)
# inside the namespaces only: no traffic leaves the machine. The link adds a delay each way and,
# in one profile, a rate each way, as `tc qdisc ... netem delay D rate R` would (these machines'
# kernels are built without sch_netem, so the delay is made in user space):
#   rtt50         25 ms each way (50 ms round trip), no rate limit
#   rtt20-10mbit  10 ms each way (20 ms round trip), 10 Mbit/s each way (1,000 packets queued)
# TCP metrics are not cached between connections (net.ipv4.tcp_no_metrics_save=1 in both
# namespaces), so every connection starts alike. In the server namespace: kawipiko (this tree,
# Release; with --baseline REV also kawipiko as of REV, built from a temporary worktree) with
# --bind-tls and one thread, and nginx (nginx.conf.in: one worker, TLS 1.3, its default 16 KiB
# records, ssl_buffer_size), all with one ECDSA P-256 certificate made here (the kind
# --tls-self-signed makes, but in a file nginx can read too). Pages, archived with --compress
# identity and served by nginx from the same files: 500,000 and 2,000,000 random bytes, and
# Debian's python3.11-doc library/os.html (755 KB). Every answer is compared with its file
# before measuring.
#
# Each run is one curl (--http1.1, a new process: a fresh connection, a full TLS 1.3 handshake,
# no resumption) per page and server, the servers in a rotated order. From curl's -w timings:
# TTFB = time_starttransfer - time_appconnect (the first byte of the answer after the
# handshake: one round trip at best), and time_total. N runs (30 by default) per profile, page
# and server; the table gives the median and the 90th percentile (nearest rank), in ms, and is
# written to <build>/tls-ttfb-results.txt (raw figures in <build>/tls-ttfb.tsv). About 8 minutes
# with 30 runs and a baseline, its build included. The load average before and after is
# printed: the figures are latency-bound, but a busy machine delays the user-space link.
#
# Every process is stopped by its PID and the namespaces are deleted on exit.
#
# Usage: bash bench/tls-ttfb.sh [--runs N] [--baseline REV] [build folder]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

command="bash bench/tls-ttfb.sh${*:+ $*}"
runs=30 baseline= build=build/bench
while (($# > 0)); do
  case "$1" in
    --runs) runs=$2; shift ;;
    --baseline) baseline=$2; shift ;;
    -h | --help) sed -n '2,/^# Usage/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "tls-ttfb.sh: error: unknown option '$1'" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done
if [ "$(id -u)" != 0 ]; then
  echo "tls-ttfb.sh: error: run as root (it makes network namespaces)" >&2
  exit 1
fi

log() { echo "== $*" >&2; }

bash cmake/install-deps.sh nginx python3
log "building kawipiko in $build"
build_release . "$build"

work=$(mktemp -d /tmp/kawipiko-ttfb.XXXXXX)
chmod 755 "$work"  # nginx's worker drops root and must read the site
server_ns=kawipiko-ttfb-server-$$ client_ns=kawipiko-ttfb-client-$$
server_address=10.203.0.1 client_address=10.203.0.2
pids=() link_pid=
stop_servers() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
stop_link() {
  if [ -n "$link_pid" ]; then
    kill -TERM "$link_pid" 2>/dev/null || true
    wait "$link_pid" 2>/dev/null || true
  fi
  link_pid=
}
clean_up() {
  stop_servers
  stop_link
  ip netns delete "$server_ns" 2>/dev/null || true
  ip netns delete "$client_ns" 2>/dev/null || true
  if [ -n "$baseline" ] && [ -d "$work/baseline-src" ]; then git worktree remove --force "$work/baseline-src"; fi
  rm -rf "$work"
}
trap clean_up EXIT
trap 'exit 130' INT TERM

servers=(kawipiko nginx)
declare -A binary=([kawipiko]="$build/app/kawipiko") port=([kawipiko]=8443 [nginx]=8444)
if [ -n "$baseline" ]; then
  log "building the baseline $baseline in $work/baseline-src"
  build_revision "$baseline" "$work/baseline-src" "$work/baseline-build"
  servers+=(baseline)
  binary[baseline]="$work/baseline-build/app/kawipiko"
  port[baseline]=8445
fi

log "preparing the pages in $work"
mkdir -p "$work/site" "$work/nginx/nginx-temp"
head -c 500000 /dev/urandom >"$work/site/random-500k.bin"
head -c 2000000 /dev/urandom >"$work/site/random-2m.bin"
cp -L /usr/share/doc/python3.11/html/library/os.html "$work/site/os.html"
pages=(random-500k.bin random-2m.bin os.html)
"${binary[kawipiko]}" archive --sources "$work/site" --archive "$work/site.cdb" \
  --compress identity --quiet >/dev/null
make_certificate "$work/tls"
for site in hello docs-nginx big; do ln -s "$work/site" "$work/nginx/$site"; done
# The plain listeners of the configuration are not measured; nginx's https one is docs-tls.
nginx_config "$work/nginx" "$server_address" "$work/tls" 1000 8080 8081 8082 8083 \
  "${port[nginx]}" >"$work/nginx.conf"

log "making the namespaces $server_ns and $client_ns"
for ns in "$server_ns" "$client_ns"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_no_metrics_save=1
done
in_client() { ip netns exec "$client_ns" "$@"; }

# The link between the namespaces: <one-way delay ms> [<rate Mbit/s>]. The TUN devices are made
# by delay-link.py in this namespace, then moved.
start_link() {
  local server_dev=kwt$$s client_dev=kwt$$c
  coproc link { exec python3 bench/delay-link.py "$server_dev" "$client_dev" "$@"; }
  link_pid=$link_PID
  local ready
  read -r ready <&"${link[0]}"
  [ "$ready" = ready ] || { echo "tls-ttfb.sh: error: the delayed link did not start" >&2; exit 1; }
  ip link set "$server_dev" netns "$server_ns"
  ip link set "$client_dev" netns "$client_ns"
  ip -n "$server_ns" addr add "$server_address" peer "$client_address" dev "$server_dev"
  ip -n "$client_ns" addr add "$client_address" peer "$server_address" dev "$client_dev"
  ip -n "$server_ns" link set "$server_dev" up
  ip -n "$client_ns" link set "$client_dev" up
}

start_servers() {
  local name
  for name in "${servers[@]}"; do
    # `ip netns exec` runs the server in its own process: $! is the server's PID.
    if [ "$name" = nginx ]; then
      ip netns exec "$server_ns" nginx -p "$work/nginx" -e "$work/nginx/nginx-error.log" \
        -c "$work/nginx.conf" &
    else
      ip netns exec "$server_ns" "${binary[$name]}" serve --archive "$work/site.cdb" --threads 1 \
        --quiet --bind-tls "$server_address:${port[$name]}" --tls-bundle "$work/tls/bundle.pem" &
    fi
    pids+=($!)
  done
  for name in "${servers[@]}"; do
    wait_for_200 "$(url_of "$name" /os.html)" in_client curl --insecure
  done
}

url_of() { echo "https://$server_address:${port[$1]}$2"; }

# Every page from every server, byte for byte.
check_pages() {
  local name page
  for name in "${servers[@]}"; do
    for page in "${pages[@]}"; do
      in_client curl -s --insecure --http1.1 -o "$work/answer" "$(url_of "$name" "/$page")"
      if ! cmp -s "$work/answer" "$work/site/$page"; then
        echo "tls-ttfb.sh: error: $name answered /$page with other bytes" >&2
        exit 1
      fi
    done
  done
}

results="$build/tls-ttfb.tsv"
printf 'profile\tpage\tserver\trun\tappconnect\tstarttransfer\ttotal\n' >"$results"
# One fresh connection: a line of the raw figures, or a warning.
measure() { # <profile> <page> <server> <run>
  local line code size appconnect starttransfer total
  line=$(in_client curl -s --insecure --http1.1 -o /dev/null --max-time 30 \
    -w '%{http_code} %{size_download} %{time_appconnect} %{time_starttransfer} %{time_total}' \
    "$(url_of "$3" "/$2")" || true)
  read -r code size appconnect starttransfer total <<<"$line"
  if [ "$code" != 200 ] || [ "$size" != "$(stat -c %s "$work/site/$2")" ]; then
    echo "tls-ttfb.sh: warning: $3 /$2 (run $4): '$line'" >&2
    return 0
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$appconnect" "$starttransfer" \
    "$total" >>"$results"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
profiles=("rtt50|25|" "rtt20-10mbit|10|10")
for profile in "${profiles[@]}"; do
  IFS='|' read -r name delay rate <<<"$profile"
  log "profile $name: $delay ms each way${rate:+, $rate Mbit/s}; $runs runs"
  start_link "$delay" ${rate:+"$rate"}
  start_servers
  check_pages
  for ((run = 1; run <= runs; run++)); do
    for page in "${pages[@]}"; do
      for ((i = 0; i < ${#servers[@]}; i++)); do
        measure "$name" "$page" "${servers[(i + run) % ${#servers[@]}]}" "$run"
      done
    done
  done
  stop_servers
  stop_link
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "# TLS time to first byte, $(date -u +%Y-%m-%dT%H:%MZ), $runs runs per profile, page and server"
  modified=$(git diff --quiet HEAD -- lib app 2>/dev/null || echo ' (modified)')
  echo "# kawipiko $(git rev-parse --short HEAD)$modified${baseline:+, baseline $(git rev-parse --short "$baseline")}," \
    "$(nginx -v 2>&1 | sed 's/.*: //'), $(curl --version | head -1 | cut -d' ' -f1-2)"
  echo "# command: $command"
  echo "# load average before: $load_before, after: $load_after ($(nproc) cores)"
  python3 - "$results" <<'EOF'
import collections, csv, math, statistics, sys

rows = collections.defaultdict(lambda: ([], []))
first_seen = {}  # profiles and pages in the order they ran
with open(sys.argv[1]) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        first_seen.setdefault(r["profile"], len(first_seen))
        first_seen.setdefault(r["page"], len(first_seen))
        ttfb, total = rows[(r["profile"], r["page"], r["server"])]
        ttfb.append((float(r["starttransfer"]) - float(r["appconnect"])) * 1000)
        total.append(float(r["total"]) * 1000)

def p90(values):
    return sorted(values)[math.ceil(0.9 * len(values)) - 1]

print(f"{'profile':<14} {'page':<16} {'server':<9} {'runs':>4}  {'TTFB p50':>8} {'p90':>6}"
      f"  {'total p50':>9} {'p90':>6}   (ms)")
for profile, page, server in sorted(rows, key=lambda k: (first_seen[k[0]], first_seen[k[1]], k[2])):
    ttfb, total = rows[(profile, page, server)]
    print(f"{profile:<14} {page:<16} {server:<9} {len(ttfb):>4}  {statistics.median(ttfb):8.1f}"
          f" {p90(ttfb):6.1f}  {statistics.median(total):9.1f} {p90(total):6.1f}")
EOF
} | tee "$build/tls-ttfb-results.txt"
echo "table written to $build/tls-ttfb-results.txt (raw figures in $results)"
