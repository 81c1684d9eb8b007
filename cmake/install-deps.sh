#!/usr/bin/env bash
# Installs what kawipiko needs to build and test on Debian 12 (as root; uses sudo otherwise).
# Only missing packages are installed, so running it again is cheap.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-all-dev zlib1g-dev libbrotli-dev libssl-dev libnghttp2-dev libseccomp-dev catch2
  tinycdb python3.11-doc chromium curl bc libgoogle-perftools4 slowhttptest gzip brotli
  openssl  # the command-line tool: the TLS tests make their certificates with it
  testssl.sh  # the TLS end-to-end test scans the server with it
  nghttp2-client python3-h2 python3-hyperframe  # HTTP/2 clients: nghttp, h2load, crafted frames
  prometheus  # promtool: the metrics test checks the server's /metrics with it
  systemd  # systemd-socket-activate and systemd-analyze: the socket activation and unit tests
  haproxy iproute2  # the scale-out test: three servers in network namespaces behind HAProxy
)
packages+=("$@")

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  sudo=()
  if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
