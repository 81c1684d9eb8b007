#!/usr/bin/env bash
# Proves test/e2e/h2_probe.py against reference HTTP/2 servers before kawipiko speaks HTTP/2:
# Debian's h2o (2.2.5) and nginx (`listen ... http2`), on 127.0.0.1 and ports the kernel picks,
# serving a temp folder (a small index.html and a 16 MiB random big.bin for zero-window) with a
# self-signed ECDSA P-256 certificate made here by openssl. Every case of the probe runs against
# each server over TLS (ALPN h2) and over h2c by prior knowledge (both servers accept it on a
# plain listener), and a table says what each server did. Not a CTest test: it tests the probe
# and the reference servers, not kawipiko. A reference server failing a case is a finding about
# that server (the probe's expectations are RFC 9113's), reported, not hidden.
#
# Usage: bash test/e2e/h2_probe_reference.sh [--json] [case...]
#   --json  also print each run's JSON line, and the servers' error logs at the end;
#   cases: those of h2_probe.py (default: all).
# Exit status: 0 when every run passed, 1 when one failed, 2 when a server did not start.
# Every process started here is stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

probe=test/e2e/h2_probe.py
show_json=0
cases=()
for argument in "$@"; do
  case "$argument" in
    --json) show_json=1 ;;
    -h | --help) sed -n '2,/^# Exit/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "h2_probe_reference.sh: error: unknown option '$argument'" >&2; exit 2 ;;
    *) cases+=("$argument") ;;
  esac
done
if ((${#cases[@]} == 0)); then
  cases=(rapid-reset continuation-flood hpack-bomb settings-flood ping-flood zero-window
    too-many-streams bad-pseudo uppercase-name connection-specific get-with-body)
fi

work=$(mktemp -d /tmp/kawipiko-h2ref.XXXXXX)
chmod 755 "$work"  # both servers drop root and must read the site
pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

mkdir -p "$work/site" "$work/nginx-temp"
printf '<!doctype html><title>h2 probe</title><p>Hello from the reference server.</p>\n' \
  >"$work/site/index.html"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$work/site/big.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$work/key.pem" \
  -out "$work/certificate.pem" 2>/dev/null

declare -A port server_pids
for listener in h2o-tls h2o-h2c nginx-tls nginx-h2c; do port[$listener]=$(free_port); done

# h2o: one thread, its defaults otherwise (a reference as Debian ships it); no pid file (it has
# dropped root to nobody when it writes one), no OCSP stapling (a helper process, no CA here).
cat >"$work/h2o.conf" <<EOF
num-threads: 1
error-log: $work/h2o-error.log
listen:
  host: 127.0.0.1
  port: ${port[h2o-tls]}
  ssl:
    certificate-file: $work/certificate.pem
    key-file: $work/key.pem
    ocsp-update-interval: 0
listen:
  host: 127.0.0.1
  port: ${port[h2o-h2c]}
hosts:
  default:
    paths:
      /:
        file.dir: $work/site
EOF

# nginx: one worker, its HTTP/2 defaults (128 concurrent streams, keepalive_requests 1000).
cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  client_body_temp_path $work/nginx-temp/body;
  proxy_temp_path $work/nginx-temp/proxy;
  fastcgi_temp_path $work/nginx-temp/fastcgi;
  uwsgi_temp_path $work/nginx-temp/uwsgi;
  scgi_temp_path $work/nginx-temp/scgi;
  ssl_certificate $work/certificate.pem;
  ssl_certificate_key $work/key.pem;
  server {
    listen 127.0.0.1:${port[nginx-tls]} ssl http2;
    listen 127.0.0.1:${port[nginx-h2c]} http2;
    root $work/site;
  }
}
EOF

wait_ready() { # <listener>: an HTTP/2 200 for /index.html within 10 s
  local i answer url=https://127.0.0.1:${port[$1]}/index.html flag=--http2
  [[ $1 == *-h2c ]] && url=http://127.0.0.1:${port[$1]}/index.html flag=--http2-prior-knowledge
  for ((i = 0; i < 200; i++)); do
    answer=$(curl -sk "$flag" -o /dev/null -w '%{http_code} %{http_version}' "$url" || true)
    if [ "$answer" = "200 2" ]; then return 0; fi
    sleep 0.05
  done
  echo "h2_probe_reference.sh: error: no HTTP/2 answer at $url" >&2
  exit 2
}

h2o -c "$work/h2o.conf" >"$work/h2o.out" 2>&1 &
pids+=($!)
server_pids[h2o]=$!
nginx -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" &
pids+=($!)
for listener in h2o-tls h2o-h2c nginx-tls nginx-h2c; do wait_ready "$listener"; done
# The processes that serve (whose memory zero-window watches): nginx's worker, h2o itself.
server_pids[nginx]=$(pgrep -P "${pids[1]}" | tr '\n' ' ')

# One line of the table from a run's JSON: the verdict's reason, the GOAWAY, the failed sub-cases.
cat >"$work/summary.py" <<'EOF'
import json, sys
run = json.loads(sys.argv[1])
text = run.get("reason") or run.get("error", "")
if run.get("goaway"):
    text += f" [GOAWAY {run['goaway']['error']}, last stream {run['goaway']['last_stream_id']}]"
for case in run.get("cases", []):
    if not case["pass"]:
        goaway = (case["goaway"] or {}).get("error")
        text += f"; {case['name']}: status {case['status']}, reset {case['reset']}, GOAWAY {goaway}"
print(text)
EOF

echo "h2o $(h2o --version | sed -n 's/^h2o version //p'), $(nginx -v 2>&1 | sed 's/.*: //')," \
  "python3-h2 $(dpkg-query -W -f='${Version}' python3-h2)"
printf '%-6s %-4s %-20s %-6s %s\n' server via case result "what the server did"
printf '%s\n' "$(printf '%.0s-' {1..100})"
failures=0
for server in h2o nginx; do
  for via in tls h2c; do
    for case_name in "${cases[@]}"; do
      options=(--port "${port[$server-$via]}" --path /index.html)
      [ "$via" = tls ] && options+=(--tls)
      if [ "$case_name" = zero-window ]; then
        options=("${options[@]/\/index.html//big.bin}" --expect-file "$work/site/big.bin")
        for pid in ${server_pids[$server]}; do options+=(--server-pid "$pid"); done
      fi
      status=0
      line=$(/usr/bin/python3 "$probe" "$case_name" "${options[@]}") || status=$?
      case $status in
        0) result=pass ;;
        1) result=FAIL failures=$((failures + 1)) ;;
        *) result=error failures=$((failures + 1)) ;;
      esac
      summary=$(/usr/bin/python3 "$work/summary.py" "$line" 2>/dev/null || echo "$line")
      printf '%-6s %-4s %-20s %-6s %s\n' "$server" "$via" "$case_name" "$result" "$summary"
      ((show_json)) && echo "       $line"
    done
  done
done
stop_all
if ((show_json)); then
  for log in "$work"/h2o-error.log "$work"/nginx-error.log; do
    echo "--- $(basename "$log")"
    cat "$log"
  done
fi
((failures == 0))
