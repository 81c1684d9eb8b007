#!/usr/bin/env bash
# HTTP benchmark, kawipiko side by side with nginx and, over HTTP/2, h2o (not a test: nothing is
# asserted).
#
# Method. Installs what it needs (wrk, nginx, python3.11-doc, h2load, h2o), builds kawipiko in
# Release and the floor program (bench/floor.cpp: epoll, one constant answer per "\r\n\r\n", no parsing), and
# prepares three data sets in a temp folder: hello (one 13-byte index.html), docs (Debian's
# python3.11-doc HTML, requested at random from the list of its pages by wrk-random-paths.lua,
# seeded) and big (one 10 MiB random file). nginx (Debian's, one worker, sendfile, tcp_nopush,
# open_file_cache, access_log off, gzip_static over .gz siblings made here with gzip -9; config
# from nginx.conf.in, run in the foreground with its pid, logs and temp paths in the temp folder)
# and kawipiko (one thread; archives built with --compress identity, gzip and brotli) serve the
# same files. Every server is pinned to CPU 0, wrk to CPU 1 with one thread.
#
# Runs, interleaved and rotated within each round (A B C, then B C A, ...), 10 s each, at 16, 256
# and 1024 connections:
#   hello    identity: kawipiko, nginx, floor
#   docs     identity: kawipiko, nginx
#   docs-gz  nginx gzip_static (client sends "gzip, br": nginx has only the .gz), kawipiko gzip
#            archive (client sends "gzip"), kawipiko brotli archive (client sends "gzip, br");
#            one nginx run is the reference for both kawipiko runs of the same round
#   big      the 10 MiB file at 16 connections (MB/s; nginx uses sendfile)
#   tls-hello    hello over https (identity): kawipiko, nginx
#   tls-docs-gz  the docs over https, client sends "gzip": kawipiko gzip archive, nginx gzip_static
#   tls-new      a full TLS 1.3 handshake per request: openssl s_time -new, one connection at a
#                time (HTTP/1.0 GET /index.html of hello, closed by the server), for the run's
#                duration: kawipiko, nginx
#   tls-resumed  the same with openssl s_time -reuse: every connection after a first (untimed)
#                one resumes a TLS 1.3 session from a ticket (s_time marks each connection new or
#                resumed; the script warns if one was not as wanted)
# TLS: one self-signed ECDSA P-256 certificate (127.0.0.1 and localhost) made here with openssl,
# used by both servers; TLS 1.3, the same suite and group (TLS_AES_256_GCM_SHA384, X25519: what
# kawipiko picks by default and nginx is configured to prefer, checked with openssl s_client
# before measuring, together with a resumption from a ticket on each), stateless session tickets
# on. nginx serves https from extra server blocks of the same instance; kawipiko from extra
# processes with --bind-tls only, so the plain runs are the same as without TLS. The keep-alive
# runs' CPU includes one full handshake per wrk connection at the start. wrk resumes sessions
# when it reconnects (measured: with "Connection: close" all but its first handshake per
# connection were resumed), so it cannot measure full handshakes: s_time does both. s_time gives
# no latency (p50/p99 "-"); its runs' "CPU per request" is per connection.
# HTTP/2 runs, h2load (Debian's nghttp2-client) on CPU 1 with one thread, -m 10 (10 concurrent
# streams per connection), at 16 and 256 connections, interleaved and rotated like the others:
#   h2-hello      hello over https, ALPN h2: kawipiko (--bind-tls), nginx, h2o
#   h2-docs-gz    the docs over https, ALPN h2, client sends "gzip": kawipiko gzip archive,
#                 nginx gzip_static, h2o file.send-compressed (both over the .gz siblings)
#   h2c-hello     hello over h2c by prior knowledge: kawipiko (the plain --bind listener), nginx
#                 (a plain "listen ... http2"), h2o (its plain listener)
#   h2c-docs-gz   the docs over h2c, client sends "gzip": the same three
# h2o is Debian's 2.2.5, one thread, from bench/h2o.conf.in; nginx's h2 listeners are server
# blocks of the same instance. h2load offers ALPN h2 only (no fallback to http/1.1) and the TLS 1.3
# suite TLS_AES_256_GCM_SHA384 only, so that every server uses the one the HTTP/1.1 TLS runs use;
# the docs pages go to h2load as a list of URIs (-i) in a seeded random order, which each
# connection walks through. p50/p99 come from h2load's per-request log (--log-file; it costs the
# client about a quarter of its throughput, the same for every server: measured on h2o hello,
# 543k req/s without, 396k with); "errors" is h2load's errored count, or the connection count
# when no request at all was answered (kawipiko before it speaks HTTP/2). Targets of the HTTP/2
# issue, for the reader: CPU per request <= 0.7x nginx's and <= 1.0x h2o's, p99 <= both, no errors.
#
# For each run: requests/s, MB/s, p50/p99 latency, errors and non-2xx (wrk's count of status >
# 399; h2load's 4xx and 5xx), and the server's CPU time per request: utime+stime from
# /proc/PID/stat (nginx: master and worker summed; h2o: its processes) over the run, divided by the requests. On a shared machine that last figure is
# the one least disturbed by noise (wrk saturates its own core first). Targets of the TLS issue,
# for the reader (nothing checks them): over TLS, keep-alive CPU per request <= 0.8x nginx's, a
# full handshake's CPU <= 1.0x nginx's, p99 <= nginx's.
#
# Then: a hold test (10,000 keep-alive connections, one request each every ~2 s, held 30 s,
# against fresh kawipiko and nginx on the docs: errors and the server's peak RSS), and kawipiko's
# start-up time to the first answered request, mmap vs --archive-inmem --index-all (archive in
# the page cache). With --archiver, also bench/archive-python-docs.sh (about 7 more minutes).
#
# Prints a table of medians with min-max and the ratios kawipiko/reference per round, and writes
# it to <build>/http-results.txt (raw figures in <build>/http-results/). The default run takes
# about 40 minutes on 2 cores (the HTTP/2 part about 15); --quick (one round, 2 s runs, 16 and 256
# connections, 5 s hold) is a smoke test of the harness whose figures mean little. --only h1 runs
# the HTTP/1.1 part alone (plain and TLS runs, hold test, start-up time), --only h2 the HTTP/2
# runs alone (only the servers and archives they need). Both servers run with the same keep-alive
# request limit (10,000,000) so that neither closes connections the other keeps.
# Every process started here is stopped by its PID on exit; all traffic is to 127.0.0.1.
#
# With --baseline REV, kawipiko as of git revision REV (built in Release from a temporary worktree)
# serves hello, docs and docs-gz (gzip) too, as "baseline": a change's cost, measured in the same
# run as nginx (ratios kawipiko/baseline).
#
# Usage: bash bench/run-http.sh [--quick] [--rounds N] [--only h1|h2] [--archiver] [--baseline REV]
#                               [build folder]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

command="bash bench/run-http.sh${*:+ $*}"
quick=0 rounds= with_archiver=0 build=build/bench baseline= only=
while (($# > 0)); do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --only) only=$2; shift ;;
    --archiver) with_archiver=1 ;;
    --baseline) baseline=$2; shift ;;
    -h | --help) sed -n '2,/^#  *\[build folder\]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "run-http.sh: error: unknown option '$1'" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done
# The parts run: h1 (the HTTP/1.1 runs, plain and TLS, the hold test, start-up time), h2.
case "$only" in
  '') want_h1=1 want_h2=1 ;;
  h1) want_h1=1 want_h2=0 ;;
  h2) want_h1=0 want_h2=1 ;;
  *) echo "run-http.sh: error: --only takes h1 or h2, not '$only'" >&2; exit 2 ;;
esac
if [ -n "$baseline" ] && ((!want_h1)); then
  echo "run-http.sh: error: --baseline compares HTTP/1.1 runs: not with --only h2" >&2
  exit 2
fi
h2_connection_counts=(16 256) h2_streams=10
if ((quick)); then
  duration=2 connection_counts=(16 256) rounds=${rounds:-1} warmup=1
  hold_connections=10000 hold_seconds=5 startup_repeats=3
else
  duration=10 connection_counts=(16 256 1024) rounds=${rounds:-3} warmup=2
  hold_connections=10000 hold_seconds=30 startup_repeats=5
fi
keepalive_requests=10000000

bash cmake/install-deps.sh wrk nginx python3 nghttp2-client h2o
build_release . "$build"
kawipiko="$build/app/kawipiko"
results="$build/http-results"
mkdir -p "$results" "$build/http-archives"
rm -f "$results"/*.tsv "$results"/meta.txt

# The hold test needs 10,000 descriptors in the client and in each server, plus some.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < hold_connections + 200)); then
  hold_connections=$(($(ulimit -n) - 200))
  echo "run-http.sh: warning: descriptor limit $(ulimit -n): the hold test uses $hold_connections connections" >&2
fi

work=$(mktemp -d /tmp/kawipiko-bench.XXXXXX)
chmod 755 "$work"  # nginx's worker drops root and must read the sites
pids=()
stop_all() {
  local pid
  if [ -s "$work/startup.pid" ]; then pids+=("$(cat "$work/startup.pid")"); fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
remove_baseline() {
  if [ -n "$baseline" ] && [ -d "$work/baseline-src" ]; then git worktree remove --force "$work/baseline-src"; fi
}
trap 'stop_all; remove_baseline; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }

# --- the baseline build ---------------------------------------------------------------------
if [ -n "$baseline" ]; then
  log "building the baseline $baseline in $work/baseline-src"
  build_revision "$baseline" "$work/baseline-src" "$work/baseline-build"
  baseline_kawipiko="$work/baseline-build/app/kawipiko"
fi

# --- data sets --------------------------------------------------------------------------------
log "preparing the data sets in $work"
if ((want_h1)); then g++ -std=c++20 -O2 -o "$work/floor" bench/floor.cpp; fi
mkdir -p "$work/hello" "$work/big" "$work/nginx-temp"
printf 'Hello, world\n' >"$work/hello/index.html"
if ((want_h1)); then head -c $((10 * 1024 * 1024)) /dev/urandom >"$work/big/blob.bin"; fi
cp -rL /usr/share/doc/python3.11/html "$work/docs"
(cd "$work/docs" && find . -name '*.html' | sed 's/^\.//' | sort) >"$work/docs-paths.txt"
# h2load walks a list of URIs in order: the same pages in a seeded random order.
python3 -c 'import random, sys; paths = sys.stdin.read().split(); random.seed(1); random.shuffle(paths)
print("\n".join(paths))' <"$work/docs-paths.txt" >"$work/h2-paths.txt"

# nginx's copy of the docs: hard links plus .gz siblings, kept only where kawipiko keeps a gzip
# variant (saves at least 10% and 64 bytes; already-compressed formats are left alone).
cp -al "$work/docs" "$work/docs-nginx"
(cd "$work/docs-nginx" && find . -type f ! -regex '.*\.\(png\|jpe?g\|gif\|webp\|avif\|woff2?\|zip\|gz\|br\|mp3\|mp4\|webm\|pdf\)' -print0) \
  >"$work/gz-candidates"
(cd "$work/docs-nginx" && xargs -0 -r -n 64 -P "$(nproc)" gzip -9 -n -k -f) <"$work/gz-candidates"
while IFS= read -r -d '' file; do
  plain=$(stat -c %s "$work/docs-nginx/$file")
  packed=$(stat -c %s "$work/docs-nginx/$file.gz")
  if ((packed * 10 > plain * 9 || plain - packed < 64)); then rm "$work/docs-nginx/$file.gz"; fi
done <"$work/gz-candidates"

# One certificate for both servers: ECDSA P-256, self-signed for 127.0.0.1 and localhost (curl
# checks it against itself; s_time and wrk do not verify).
make_certificate "$work/tls"

# The archives live in the build folder: a rebuild reuses their compressed variants (brotli at
# level 11 takes about a minute on 2 cores the first time).
archives="$build/http-archives"
build_archive() { # <sources> <name> <compress>
  "$kawipiko" archive --sources "$1" --archive "$archives/$2.cdb" --compress "$3" --quiet >/dev/null
}
log "building the archives in $archives"
build_archive "$work/hello" hello identity
build_archive "$work/docs" docs-gzip gzip
if ((want_h1)); then
  build_archive "$work/big" big identity
  build_archive "$work/docs" docs-identity identity
  build_archive "$work/docs" docs-brotli brotli
fi

# --- servers ----------------------------------------------------------------------------------
declare -A port server_pids  # by server name; a name ending in -tls is an https listener
curl_tls=(--cacert "$work/tls/certificate.pem")

url_of() { # <server> <path>
  local scheme=http
  [[ $1 == *-tls ]] && scheme=https
  echo "$scheme://127.0.0.1:${port[$1]}$2"
}

# Waits until <server> answers 200 at <path> (10 s at most).
wait_ready() { # <server> <path>
  wait_for_200 "$(url_of "$1" "$2")" curl "${curl_tls[@]}"
}

start_kawipiko() { # <name> <archive> [serve options...]; <name>-tls: an https listener only
  local name=$1 archive=$2 binary=$kawipiko
  shift 2
  [[ $name == baseline-* ]] && binary=$baseline_kawipiko
  port[$name]=$(free_port)
  local listen=(--bind "127.0.0.1:${port[$name]}")
  [[ $name == *-tls ]] &&
    listen=(--bind-tls "127.0.0.1:${port[$name]}" --tls-bundle "$work/tls/bundle.pem")
  taskset -c 0 "$binary" serve --archive "$archives/$archive.cdb" "${listen[@]}" \
    --threads 1 --quiet --max-requests-per-connection "$keepalive_requests" "$@" &
  pids+=($!)
  server_pids[$name]=$!
}

# nginx, with its pid, logs and temp paths under $work/<name>; sets port[<name>-<site>] for the
# sites hello, docs, big, hello-tls and docs-tls (https), hello-h2-tls and docs-h2-tls (https, h2)
# and hello-h2c and docs-h2c (h2c; none of the last six with "plain"), and server_pids[<name>]
# (and server_pids[<name>-<site>]) to its master and worker.
nginx_sites=(hello docs big hello-tls docs-tls hello-h2-tls docs-h2-tls hello-h2c docs-h2c)
start_nginx() { # <name> [plain]
  local name=$1 master worker site
  for site in "${nginx_sites[@]}"; do port[$name-$site]=$(free_port); done
  local tls_ports=("${port[$name-hello-tls]}" "${port[$name-docs-tls]}" "${port[$name-hello-h2-tls]}"
    "${port[$name-docs-h2-tls]}" "${port[$name-hello-h2c]}" "${port[$name-docs-h2c]}")
  [ "${2:-}" = plain ] && tls_ports=()
  nginx_config "$work/$name" 127.0.0.1 "$work/tls" "$keepalive_requests" "${port[$name-hello]}" \
    "${port[$name-docs]}" "${port[$name-big]}" "${tls_ports[@]}" >"$work/$name.conf"
  mkdir -p "$work/$name/nginx-temp"
  chmod 755 "$work/$name"
  ln -s "$work/hello" "$work/docs-nginx" "$work/big" "$work/$name/"
  taskset -c 0 nginx -p "$work/$name" -e "$work/$name/nginx-error.log" -c "$work/$name.conf" &
  master=$!
  pids+=("$master")
  wait_ready "$name-hello" /index.html
  worker=$(pgrep -P "$master" | head -1)
  server_pids[$name]="$master $worker"
  for site in "${nginx_sites[@]}"; do server_pids[$name-$site]=${server_pids[$name]}; done
}

# h2o, one thread, config from h2o.conf.in: hello and the docs (file.send-compressed over the
# .gz siblings), each over https and h2c; sets port[<name>-<site>] for the sites hello-tls,
# docs-tls, hello and docs, and server_pids[<name>-<site>] to its process and children: the
# neverbleed process that holds the private key and does its signatures, and an idle helper
# that annotates crash logs. Run as root it serves as nobody (its default), so no pid file.
h2o_sites=(hello-tls docs-tls hello docs)
start_h2o() { # <name>
  local name=$1 main site
  for site in "${h2o_sites[@]}"; do port[$name-$site]=$(free_port); done
  sed -e "s|@WORK@|$work|g" -e "s|@PORT_HELLO_TLS@|${port[$name-hello-tls]}|" \
    -e "s|@PORT_DOCS_TLS@|${port[$name-docs-tls]}|" -e "s|@PORT_HELLO@|${port[$name-hello]}|" \
    -e "s|@PORT_DOCS@|${port[$name-docs]}|" -e "s|@TLS_CERTIFICATE@|$work/tls/certificate.pem|" \
    -e "s|@TLS_KEY@|$work/tls/key.pem|" -e "s|@ERROR_LOG@|$work/$name-error.log|" \
    bench/h2o.conf.in >"$work/$name.conf"
  taskset -c 0 h2o -c "$work/$name.conf" >"$work/$name.out" 2>&1 &
  main=$!
  pids+=("$main")
  wait_ready "$name-hello-tls" /index.html
  server_pids[$name]="$main $(pgrep -P "$main" | tr '\n' ' ')"
  for site in "${h2o_sites[@]}"; do server_pids[$name-$site]=${server_pids[$name]}; done
}

log "starting the servers (CPU 0)"
# Over HTTP/2 the same kawipiko processes serve: h2c on the plain listeners, h2 on the https ones.
start_kawipiko kawipiko-hello hello
start_kawipiko kawipiko-gzip docs-gzip
start_kawipiko kawipiko-hello-tls hello
start_kawipiko kawipiko-gzip-tls docs-gzip
ready=(kawipiko-hello kawipiko-gzip kawipiko-hello-tls kawipiko-gzip-tls nginx-hello-tls nginx-docs-tls)
if ((want_h1)); then
  start_kawipiko kawipiko-docs docs-identity
  start_kawipiko kawipiko-br docs-brotli
  start_kawipiko kawipiko-big big
  if [ -n "$baseline" ]; then
    start_kawipiko baseline-hello hello
    start_kawipiko baseline-docs docs-identity
    start_kawipiko baseline-gzip docs-gzip
  fi
  port[floor]=$(free_port)
  taskset -c 0 "$work/floor" "${port[floor]}" &
  pids+=($!)
  server_pids[floor]=$!
  ready+=(kawipiko-docs kawipiko-br floor ${baseline:+baseline-hello baseline-docs baseline-gzip})
fi
start_nginx nginx
if ((want_h2)); then
  start_h2o h2o
  ready+=(h2o-hello h2o-docs h2o-docs-tls)
fi
for name in "${ready[@]}"; do
  wait_ready "$name" /index.html
done
if ((want_h1)); then wait_ready kawipiko-big /blob.bin; fi

# --- what is measured -------------------------------------------------------------------------
# scenario|label|server|path ("random" = wrk-random-paths.lua, or for h2load its list of the
# docs pages)|Accept-Encoding|expected coding. Scenarios h2-* and h2c-* run h2load, the rest wrk.
targets=() scenarios=() handshake_targets=()
if ((want_h1)); then
  targets+=(
    "hello|kawipiko|kawipiko-hello|/index.html||"
    "hello|nginx|nginx-hello|/index.html||"
    "hello|floor|floor|/index.html||"
    "docs|kawipiko|kawipiko-docs|random||"
    "docs|nginx|nginx-docs|random||"
    "docs-gz|nginx-gzip_static|nginx-docs|random|gzip, br|gzip"
    "docs-gz|kawipiko-gzip|kawipiko-gzip|random|gzip|gzip"
    "docs-gz|kawipiko-br|kawipiko-br|random|gzip, br|br"
    "big|kawipiko|kawipiko-big|/blob.bin||"
    "big|nginx|nginx-big|/blob.bin||"
    "tls-hello|kawipiko|kawipiko-hello-tls|/index.html||"
    "tls-hello|nginx|nginx-hello-tls|/index.html||"
    "tls-docs-gz|nginx-gzip_static|nginx-docs-tls|random|gzip|gzip"
    "tls-docs-gz|kawipiko-gzip|kawipiko-gzip-tls|random|gzip|gzip"
  )
  # New connections (openssl s_time, one request each on hello): label|server
  handshake_targets=("kawipiko|kawipiko-hello-tls" "nginx|nginx-hello-tls")
  if [ -n "$baseline" ]; then
    targets+=(
      "hello|baseline|baseline-hello|/index.html||"
      "docs|baseline|baseline-docs|random||"
      "docs-gz|baseline-gzip|baseline-gzip|random|gzip|gzip"
    )
  fi
  scenarios+=(hello docs docs-gz big tls-hello tls-docs-gz)
fi
if ((want_h2)); then
  targets+=(
    "h2-hello|kawipiko|kawipiko-hello-tls|/index.html||"
    "h2-hello|nginx|nginx-hello-h2-tls|/index.html||"
    "h2-hello|h2o|h2o-hello-tls|/index.html||"
    "h2-docs-gz|kawipiko-gzip|kawipiko-gzip-tls|random|gzip|gzip"
    "h2-docs-gz|nginx-gzip_static|nginx-docs-h2-tls|random|gzip|gzip"
    "h2-docs-gz|h2o-compressed|h2o-docs-tls|random|gzip|gzip"
    "h2c-hello|kawipiko|kawipiko-hello|/index.html||"
    "h2c-hello|nginx|nginx-hello-h2c|/index.html||"
    "h2c-hello|h2o|h2o-hello|/index.html||"
    "h2c-docs-gz|kawipiko-gzip|kawipiko-gzip|random|gzip|gzip"
    "h2c-docs-gz|nginx-gzip_static|nginx-docs-h2c|random|gzip|gzip"
    "h2c-docs-gz|h2o-compressed|h2o-docs|random|gzip|gzip"
  )
  scenarios+=(h2-hello h2-docs-gz h2c-hello h2c-docs-gz)
fi
is_h2() { [[ $1 == h2-* || $1 == h2c-* ]]; } # <scenario>

# Checks one answer of every target before measuring: status 200, the expected coding and, when
# it can be checked here, the body; over HTTP/2 (curl --http2 over https, --http2-prior-knowledge
# over h2c), that the answer came over HTTP/2. Until kawipiko speaks HTTP/2 its h2 targets fail
# that check: a warning, and their rows show the errors.
log "checking the answers"
for target in "${targets[@]}"; do
  IFS='|' read -r scenario label server path accept coding <<<"$target"
  [ "$path" = random ] && path=/library/os.html
  protocol=()
  if is_h2 "$scenario"; then
    protocol=(--http2)
    [[ $server != *-tls ]] && protocol=(--http2-prior-knowledge)
  fi
  headers=$(curl -s "${curl_tls[@]}" "${protocol[@]}" -D - -o "$work/answer" \
    ${accept:+-H "Accept-Encoding: $accept"} "$(url_of "$server" "$path")" | tr -d '\r' || true)
  status=$(head -1 <<<"$headers" | cut -d' ' -f2)
  version=$(head -1 <<<"$headers" | cut -d' ' -f1)
  got=$(sed -n 's/^[Cc]ontent-[Ee]ncoding: *//p' <<<"$headers")
  source=${scenario#tls-}
  source=${source#h2-}
  source=${source#h2c-}
  source=$work/${source%-gz}$path
  [ "$server" = floor ] && source=
  if [ "$coding" = gzip ] && gunzip -c "$work/answer" >"$work/answer.plain" 2>/dev/null; then
    mv "$work/answer.plain" "$work/answer"
  fi
  if [ "$status" != 200 ] || [ "$got" != "$coding" ] || { is_h2 "$scenario" && [ "$version" != HTTP/2 ]; } ||
    { [ -n "$source" ] && [ "$coding" != br ] && ! cmp -s "$work/answer" "$source"; }; then
    problem="$label ($scenario) answered $path with '$version' status '$status', coding '$got'"
    problem+=" (want 200, '$coding'), or a wrong body"
    if is_h2 "$scenario" && [[ $label == kawipiko* ]]; then
      echo "run-http.sh: warning: $problem: no HTTP/2 in kawipiko yet? its $scenario rows will" \
        "show errors" >&2
      continue
    fi
    echo "run-http.sh: error: $problem" >&2
    exit 1
  fi
done

# Checks each https listener as the clients here meet it (OpenSSL's defaults, as wrk and s_time):
# TLS 1.3, the same suite, group and certificate type on both servers, 200 to s_time's request
# (HTTP/1.0: the server closes), and a second connection resumed from the first one's ticket.
s_client_get() { # <server> [openssl s_client options...]: its report and the answer
  local server=$1
  shift
  printf 'GET /index.html HTTP/1.0\r\n\r\n' |
    timeout 10 openssl s_client -connect "127.0.0.1:${port[$server]}" -ign_eof "$@" 2>&1 || true
}
tls_negotiated=
tls_servers=()
((want_h1)) && tls_servers=(kawipiko-hello-tls kawipiko-gzip-tls nginx-hello-tls nginx-docs-tls)
for server in "${tls_servers[@]}"; do
  rm -f "$work/tls/session"
  first=$(s_client_get "$server" -sess_out "$work/tls/session")
  again=$(s_client_get "$server" -sess_in "$work/tls/session")
  version=$(sed -n 's/^New, \(TLSv1\.3\), Cipher is /\1 /p' <<<"$first")
  group=$(sed -n 's/^Server Temp Key: \([^,]*\).*/\1/p' <<<"$first")
  signature=$(sed -n 's/^Peer signature type: //p' <<<"$first")
  negotiated="$version, $group, $signature certificate"
  status=$(grep -m1 '^HTTP/1' <<<"$first" | cut -d' ' -f2)
  if [ -z "$version" ] || [ "$status" != 200 ] || ! grep -q '^Reused, TLSv1\.3' <<<"$again"; then
    echo "run-http.sh: error: $server over TLS: '$negotiated', status '$status'" \
      "(want TLSv1.3, 200, and a resumed second connection)" >&2
    exit 1
  fi
  if [ -n "$tls_negotiated" ] && [ "$negotiated" != "$tls_negotiated" ]; then
    echo "run-http.sh: error: $server negotiates '$negotiated', another server '$tls_negotiated'" >&2
    exit 1
  fi
  tls_negotiated=$negotiated
done

# Checks each HTTP/2 https listener as h2load meets it (one request): ALPN h2 (h2load offers
# nothing else), and the same TLS version, suite and group on every server.
h2load_tls=(--npn-list=h2 --tls13-ciphers=TLS_AES_256_GCM_SHA384)
h2_negotiated=
for target in "${targets[@]}"; do
  IFS='|' read -r scenario label server _ <<<"$target"
  [[ $scenario == h2-* ]] || continue
  report=$(timeout 10 h2load -n 1 -c 1 "${h2load_tls[@]}" "$(url_of "$server" /index.html)" 2>&1 || true)
  negotiated="$(sed -n 's/^TLS Protocol: //p' <<<"$report"), $(sed -n 's/^Cipher: //p' <<<"$report")"
  negotiated+=", $(sed -n 's/^Server Temp Key: \([^ ]*\).*/\1/p' <<<"$report")"
  protocol=$(sed -n 's/^Application protocol: //p' <<<"$report")
  if [ "$protocol" != h2 ] || ! grep -q '^requests: .* 1 succeeded' <<<"$report"; then
    if [[ $label == kawipiko* ]]; then
      echo "run-http.sh: warning: $label ($scenario): h2load got no answer over h2 (ALPN '$protocol')" >&2
      continue
    fi
    echo "run-http.sh: error: $label ($scenario): h2load got no answer over h2 (ALPN '$protocol')" >&2
    exit 1
  fi
  if [ -n "$h2_negotiated" ] && [ "$negotiated" != "$h2_negotiated" ]; then
    echo "run-http.sh: error: $server negotiates '$negotiated' for h2load," \
      "another server '$h2_negotiated'" >&2
    exit 1
  fi
  h2_negotiated=$negotiated
done

check_alive() { # <label> <what ran> <pids...>
  local label=$1 what=$2 pid
  shift 2
  for pid in "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run-http.sh: error: $label (PID $pid) died during $what" >&2
      for file in "$work"/*.out "$work"/*-error.log "$work"/*/nginx-error.log; do
        if [ -s "$file" ]; then echo "--- the end of $file" && tail -5 "$file"; fi
      done >&2
      exit 1
    fi
  done
}

# run_wrk <round|warmup> <scenario> <label> <server> <path> <accept> <connections> <seconds>
run_wrk() {
  local round=$1 scenario=$2 label=$3 server=$4 path=$5 accept=$6 conns=$7 seconds=$8
  local script=bench/wrk-report.lua url before after output line
  url=$(url_of "$server" "$path")
  local -a cpu_pids
  read -r -a cpu_pids <<<"${server_pids[$server]}"
  if [ "$path" = random ]; then script=bench/wrk-random-paths.lua url=$(url_of "$server" /); fi
  before=$(cpu_ticks "${cpu_pids[@]}")
  output=$(BENCH_PATHS="$work/docs-paths.txt" BENCH_SEED=1 BENCH_DIR=bench \
    taskset -c 1 wrk -t1 -c"$conns" -d"${seconds}s" --timeout 10s -s "$script" \
    ${accept:+-H "Accept-Encoding: $accept"} "$url" 2>&1) || true
  after=$(cpu_ticks "${cpu_pids[@]}")
  check_alive "$label" "$scenario at $conns connections" "${cpu_pids[@]}"
  [ "$round" = warmup ] && return 0
  line=$(grep '^WRK ' <<<"$output" || true)
  if [ -z "$line" ]; then
    echo "run-http.sh: warning: wrk gave no result for $label $scenario c=$conns: $output" >&2
    return 0
  fi
  declare -A v
  for field in ${line#WRK }; do v[${field%%=*}]=${field#*=}; done
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$scenario" "$conns" "$label" \
    "${v[requests]}" "${v[duration_us]}" "${v[bytes]}" "${v[p50_us]}" "${v[p99_us]}" \
    "${v[errors]}" "${v[non2xx]}" "$((after - before))" >>"$results/runs.tsv"
  printf '   round %s %-11s c=%-5s %-18s %9.0f req/s  p99 %6.2f ms  errors %s  non2xx %s\n' "$round" \
    "$scenario" "$conns" "$label" "$(bc -l <<<"${v[requests]} * 1000000 / ${v[duration_us]}")" \
    "$(bc -l <<<"${v[p99_us]} / 1000")" "${v[errors]}" "${v[non2xx]}" >&2
}

# The h2load URI lists, one per server of a docs target: the shuffled pages, full URIs (h2load
# takes scheme, host and port from the first).
for target in "${targets[@]}"; do
  IFS='|' read -r scenario _ server path _ <<<"$target"
  if is_h2 "$scenario" && [ "$path" = random ]; then
    sed "s|^|$(url_of "$server" "")|" "$work/h2-paths.txt" >"$work/h2-uris-$server.txt"
  fi
done

# Nearest-rank percentiles <p...> (of 100) of the third column of h2load's --log-file (the
# microseconds each request took), space-separated; "" when it is empty.
log_percentiles() { # <log> <p...>
  local log=$1
  shift
  cut -f3 "$log" | sort -n -S 25% | awk -v ps="$*" '{ v[NR] = $1 } END {
    if (NR == 0) exit
    n = split(ps, p, " ")
    for (i = 1; i <= n; i++) { r = int((p[i] * NR + 99) / 100); printf "%s%d", (i > 1 ? " " : ""), v[r] }
  }'
}

# run_h2load <round|warmup> <scenario> <label> <server> <path> <accept> <connections> <seconds>:
# h2load -c <connections> -m $h2_streams for <seconds>, one thread, like run_wrk's row.
run_h2load() {
  local round=$1 scenario=$2 label=$3 server=$4 path=$5 accept=$6 conns=$7 seconds=$8
  local before after output log=$work/h2load-requests.tsv seconds_run started done errored
  local -a cpu_pids uris fields codes latency
  read -r -a cpu_pids <<<"${server_pids[$server]}"
  uris=("$(url_of "$server" "$path")")
  [ "$path" = random ] && uris=(-i "$work/h2-uris-$server.txt")
  rm -f "$log"
  before=$(cpu_ticks "${cpu_pids[@]}")
  output=$(taskset -c 1 h2load -t1 -c"$conns" -m"$h2_streams" -D"$seconds" "${h2load_tls[@]}" \
    ${accept:+-H "accept-encoding: $accept"} --log-file="$log" "${uris[@]}" 2>&1) || true
  after=$(cpu_ticks "${cpu_pids[@]}")
  check_alive "$label" "$scenario at $conns connections" "${cpu_pids[@]}"
  if [ "$round" = warmup ]; then rm -f "$log"; return 0; fi
  # "finished in 10.00s, ...", "requests: T total, S started, D done, O succeeded, F failed,
  # E errored, X timeout", "status codes: a 2xx, b 3xx, c 4xx, d 5xx", "traffic: ... (bytes) total"
  seconds_run=$(sed -n 's/^finished in \([0-9.]*\)s,.*/\1/p' <<<"$output")
  read -r -a fields <<<"$(sed -n 's/^requests: //p' <<<"$output" | tr -dc '0-9 ')"  # no digit in a word
  local n='\([0-9]*\)'
  read -r -a codes <<<"$(sed -n "s/^status codes: $n 2xx, $n 3xx, $n 4xx, $n 5xx.*/\1 \2 \3 \4/p" <<<"$output")"
  if [ -z "$seconds_run" ] || ((${#fields[@]} < 7 || ${#codes[@]} < 4)); then
    echo "run-http.sh: warning: h2load gave no result for $label $scenario c=$conns:" \
      "$(tail -3 <<<"$output")" >&2
    return 0
  fi
  started=${fields[1]} done=${fields[2]} errored=${fields[5]}
  # No request answered at all (no HTTP/2 there): every connection counts as an error.
  ((done == 0)) && errored=$((errored > conns ? errored : conns))
  read -r -a latency <<<"$(log_percentiles "$log" 50 99)"
  rm -f "$log"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$scenario" "$conns" "$label" \
    "$done" "$(bc <<<"$seconds_run * 1000000 / 1")" \
    "$(sed -n 's/^traffic: [^(]*(\([0-9]*\)) total.*/\1/p' <<<"$output")" "${latency[0]:-}" \
    "${latency[1]:-}" "$errored" "$((codes[2] + codes[3]))" "$((after - before))" >>"$results/runs.tsv"
  printf '   round %s %-11s c=%-5s %-18s %9.0f req/s  p99 %6s ms  errors %s  non2xx %s  (started %s)\n' \
    "$round" "$scenario" "$conns" "$label" "$(bc -l <<<"$done / $seconds_run")" \
    "$(if [ -n "${latency[1]:-}" ]; then bc -l <<<"scale=2; ${latency[1]} / 1000"; else echo -; fi)" \
    "$errored" "$((codes[2] + codes[3]))" "$started" >&2
}

# One run of a target: h2load for the HTTP/2 scenarios, wrk for the others.
run_target() { # <round|warmup> <scenario> <label> <server> <path> <accept> <connections> <seconds>
  if is_h2 "$2"; then run_h2load "$@"; else run_wrk "$@"; fi
}

# New connections, one at a time, each a GET /index.html over HTTP/1.0 that the server answers
# and closes, with openssl s_time for <seconds>: tls-new a full handshake each (-new), tls-resumed
# each resuming a session from a ticket (-reuse). The connection count in the table is 1.
# run_s_time <round|warmup> <tls-new|tls-resumed> <label> <server> <seconds>
run_s_time() {
  local round=$1 scenario=$2 label=$3 server=$4 seconds=$5 mode=-new want='*' before after start end
  local output line connections bytes marks
  [ "$scenario" = tls-resumed ] && mode=-reuse want=r
  local -a cpu_pids
  read -r -a cpu_pids <<<"${server_pids[$server]}"
  before=$(cpu_ticks "${cpu_pids[@]}")
  # s_time's own clock counts whole seconds; the loop runs <seconds> to <seconds> + 1.
  start=$(date +%s%N)
  output=$(taskset -c 1 openssl s_time -connect "127.0.0.1:${port[$server]}" "$mode" -tls1_3 \
    -time "$seconds" -www /index.html 2>&1) || true
  end=$(date +%s%N)
  after=$(cpu_ticks "${cpu_pids[@]}")
  check_alive "$label" "$scenario" "${cpu_pids[@]}"
  [ "$round" = warmup ] && return 0
  # "<n> connections in <user s>s; <n/s> connections/user sec, bytes read <bytes>"
  line=$(grep -E '^[0-9]+ connections in [0-9.]+s;' <<<"$output" || true)
  if [ -z "$line" ]; then
    echo "run-http.sh: warning: openssl s_time gave no result for $label $scenario:" \
      "$(tail -3 <<<"$output")" >&2
    return 0
  fi
  connections=${line%% *}
  bytes=${line##* }
  # One mark per connection, on lines of their own: '*' a full TLS 1.3 handshake, 'r' resumed.
  marks=$(grep -E '^[*r]+$' <<<"$output" | tr -d '\n')
  if [ -n "${marks//"$want"/}" ]; then
    echo "run-http.sh: warning: $label $scenario: ${#marks} connections, of which" \
      "$(tr -cd "$want" <<<"$marks" | wc -c) marked '$want' (want all)" >&2
  fi
  # No latency nor status counts from s_time: p50, p99 and non2xx stay empty; it stops at the
  # first failed connection, so a result means no errors.
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$scenario" 1 "$label" \
    "$connections" "$(((end - start) / 1000))" "$bytes" "" "" 0 "" "$((after - before))" \
    >>"$results/runs.tsv"
  printf '   round %s %-11s c=%-5s %-18s %9.0f conn/s\n' "$round" "$scenario" 1 "$label" \
    "$(bc -l <<<"$connections * 1000000000 / ($end - $start)")" >&2
}

{
  echo "# kawipiko vs nginx$( ((want_h2)) && echo ' and h2o'), $(date -u +%Y-%m-%dT%H:%MZ)," \
    "mode: $( ((quick)) && echo quick || echo full)${only:+, only $only}, $rounds round(s) of ${duration} s runs"
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)"
  echo "# kawipiko $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- lib app 2>/dev/null || echo ' (modified)'), $(nginx -v 2>&1 | sed 's/.*: //'), wrk $(dpkg-query -W -f='${Version}' wrk)"
  echo "# command: $command"
  [ -n "$baseline" ] && echo "# baseline: kawipiko $(git rev-parse --short "$baseline")"
  if ((want_h1)); then
    echo "# servers on CPU 0, wrk -t1 on CPU 1; docs: $(wc -l <"$work/docs-paths.txt") pages requested at random (seeded)"
  fi
  if ((want_h1)); then
    echo "# TLS: $tls_negotiated (P-256, self-signed) on both servers, session tickets;" \
      "tls-new/tls-resumed: $(openssl version | cut -d' ' -f1-2) s_time on CPU 1"
  fi
  if ((want_h2)); then
    echo "# HTTP/2: $(h2load --version | sed -n 's/^h2load //p') -t1 -m $h2_streams on CPU 1," \
      "h2o $(h2o --version | sed -n 's/^h2o version //p'), servers on CPU 0; h2-*: ${h2_negotiated:-?}" \
      "(P-256, self-signed), ALPN h2; h2c-*: prior knowledge; docs: the" \
      "$(wc -l <"$work/h2-paths.txt") pages in one seeded random order"
  fi
} >"$results/meta.txt"

log "warming up (${warmup} s per target, not recorded)"
for target in "${targets[@]}"; do
  IFS='|' read -r scenario label server path accept coding <<<"$target"
  run_target warmup "$scenario" "$label" "$server" "$path" "$accept" 16 "$warmup"
done
for target in "${handshake_targets[@]}"; do
  IFS='|' read -r label server <<<"$target"
  run_s_time warmup tls-new "$label" "$server" "$warmup"
done

for ((round = 1; round <= rounds; round++)); do
  log "round $round of $rounds"
  for scenario in "${scenarios[@]}"; do
    counts=("${connection_counts[@]}")
    [ "$scenario" = big ] && counts=(16)
    is_h2 "$scenario" && counts=("${h2_connection_counts[@]}")
    mine=()
    for target in "${targets[@]}"; do [ "${target%%|*}" = "$scenario" ] && mine+=("$target"); done
    for conns in "${counts[@]}"; do
      # Rotated each round, so that no server always runs first (or right after another).
      for ((i = 0; i < ${#mine[@]}; i++)); do
        IFS='|' read -r _ label server path accept coding <<<"${mine[(i + round - 1) % ${#mine[@]}]}"
        run_target "$round" "$scenario" "$label" "$server" "$path" "$accept" "$conns" "$duration"
      done
    done
  done
  for scenario in tls-new tls-resumed; do
    for ((i = 0; i < ${#handshake_targets[@]}; i++)); do
      IFS='|' read -r label server <<<"${handshake_targets[(i + round - 1) % ${#handshake_targets[@]}]}"
      run_s_time "$round" "$scenario" "$label" "$server" "$duration"
    done
  done
done
stop_all

# The HTTP/1.1 part goes on with a hold test and the start-up time (not with --only h2).
if ((want_h1)); then
  # --- hold test: fresh servers, so that the peak RSS is this test's ---------------------------
  log "hold test: $hold_connections connections for $hold_seconds s"
  hold() { # <label> <port> <pids...>
    local label=$1 hold_port=$2 line
    shift 2
    line=$(taskset -c 1 python3 bench/hold-connections.py "$hold_port" /index.html "$hold_connections" \
      "$hold_seconds" 2 "$@")
    declare -A v
    for field in ${line#HOLD }; do v[${field%%=*}]=${field#*=}; done
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$hold_connections" "$hold_seconds" \
      "${v[open_min]}" "${v[requests]}" "${v[errors]}" "${v[non2xx]}" "${v[connect_s]}" \
      "${v[rss_max_kib]}" "${v[hwm_kib]}" "$(stat -c %s "$archives/docs-identity.cdb")" \
      "${v[anon_max_kib]}" >>"$results/hold.tsv"
    echo "   $line" >&2
  }
  start_kawipiko kawipiko-hold docs-identity
  wait_ready kawipiko-hold /index.html
  hold kawipiko "${port[kawipiko-hold]}" ${server_pids[kawipiko-hold]}
  stop_all
  start_nginx nginx-hold plain
  hold nginx "${port[nginx-hold-docs]}" ${server_pids[nginx-hold]}
  stop_all

  # --- start-up time ----------------------------------------------------------------------------
  log "start-up time, $startup_repeats times each"
  for mode in mmap "--archive-inmem --index-all"; do
    for ((i = 1; i <= startup_repeats; i++)); do
      startup_port=$(free_port)
      flags=()
      [ "$mode" != mmap ] && read -r -a flags <<<"$mode"
      line=$(python3 bench/startup-time.py "$work/startup.pid" "$startup_port" / -- \
        taskset -c 0 "$kawipiko" serve --archive "$archives/docs-gzip.cdb" \
        --bind "127.0.0.1:$startup_port" --quiet "${flags[@]}")
      rm -f "$work/startup.pid"
      printf '%s\t%s\t%s\n' "docs-gzip.cdb, $mode" "$i" "${line#STARTUP ms=}" >>"$results/startup.tsv"
    done
  done
fi

python3 bench/http-table.py "$results" | tee "$build/http-results.txt"
echo "table written to $build/http-results.txt (raw figures in $results/)"

if ((with_archiver)); then
  bash bench/archive-python-docs.sh "$build"
fi
