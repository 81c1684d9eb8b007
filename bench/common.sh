# Helpers shared by the benchmark scripts (run-http.sh, tls-ttfb.sh, reload-under-load.sh):
# sourced, not run. Each takes what it needs as arguments and sets no variable of its caller.

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# kawipiko in Release, without the tests, from the source tree <source> into <build>.
build_release() { # <source> <build>
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$2" >/dev/null
}

# kawipiko as of git revision <rev>: checked out in a new detached worktree <source> (remove it
# with `git worktree remove --force <source>`), built in Release in <build>.
build_revision() { # <rev> <source> <build>
  git worktree add -q --detach "$2" "$1"
  build_release "$2" "$3"
}

# A port nobody listens on right now (the kernel picks it; taken again a moment later).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sum of utime+stime, in clock ticks, of the given PIDs (the comm field may hold spaces); a
# /proc/<pid>/task/<tid> folder given as "<pid>/task/<tid>" counts that one thread.
cpu_ticks() {
  local total=0 pid stat fields
  for pid in "$@"; do
    stat=$(<"/proc/$pid/stat")
    read -r -a fields <<<"${stat##*) }"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# One certificate for every server of a run, the kind --tls-self-signed makes: ECDSA P-256,
# self-signed for 127.0.0.1 and localhost, valid 2 days. Writes <dir>/certificate.pem,
# <dir>/key.pem and both in <dir>/bundle.pem (for --tls-bundle).
make_certificate() { # <dir>
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$1/key.pem" -out "$1/certificate.pem" 2>/dev/null
  cat "$1/certificate.pem" "$1/key.pem" >"$1/bundle.pem"
}

# Prints nginx.conf.in filled in. <prefix>: nginx's -p folder, for its pid, logs and temp paths
# (<prefix>/nginx-temp must exist) and the sites <prefix>/hello, docs-nginx and big (folders or
# links); every server listens on <address>; <tls>: a folder made by make_certificate. Without
# the two TLS ports, the https servers and settings are left out.
# The HTTP/2 ports come last: <hello-h2-tls> <docs-h2-tls> <hello-h2c> <docs-h2c>; without them
# (or without the TLS ones) those server blocks are left out.
nginx_config() { # <prefix> <address> <tls> <keepalive requests> <hello> <docs> <big> [<hello-tls> <docs-tls> [h2 ports]]
  local tls_only= h2_only=
  (($# < 9)) && tls_only='/@TLS_BEGIN@/,/@TLS_END@/d'
  (($# < 13)) && h2_only='/@H2_BEGIN@/,/@H2_END@/d'
  sed -e "s|@WORK@|$1|g" -e "s|@ADDRESS@|$2|g" -e "s|@TLS_CERTIFICATE@|$3/certificate.pem|" \
    -e "s|@TLS_KEY@|$3/key.pem|" -e "s|@KEEPALIVE_REQUESTS@|$4|" -e "s|@PORT_HELLO@|$5|" \
    -e "s|@PORT_DOCS@|$6|" -e "s|@PORT_BIG@|$7|" -e "s|@PORT_HELLO_TLS@|${8:-}|" \
    -e "s|@PORT_DOCS_TLS@|${9:-}|" -e "s|@PORT_HELLO_H2_TLS@|${10:-}|" \
    -e "s|@PORT_DOCS_H2_TLS@|${11:-}|" -e "s|@PORT_HELLO_H2C@|${12:-}|" \
    -e "s|@PORT_DOCS_H2C@|${13:-}|" \
    -e "s|worker_rlimit_nofile .*;|worker_rlimit_nofile $(ulimit -n);|" \
    ${tls_only:+-e "$tls_only"} ${h2_only:+-e "$h2_only"} "$bench_dir/nginx.conf.in"
}

# Waits until <url> answers 200 to <curl command...> (which may start with `ip netns exec`), 10 s
# at most; otherwise says so and exits 1.
wait_for_200() { # <url> <curl command...>
  local url=$1 i
  shift
  for ((i = 0; i < 200; i++)); do
    if [ "$("$@" -s -o /dev/null -w '%{http_code}' "$url" || true)" = 200 ]; then return 0; fi
    sleep 0.05
  done
  echo "$(basename "$0"): error: nothing answers at $url" >&2
  exit 1
}
