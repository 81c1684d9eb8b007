#!/usr/bin/env bash
# The main job (README.rst): installs what is missing, builds in Release, archives Debian's
# python3.11-doc HTML (a real 67 MB site) and serves it on 127.0.0.1:8080.
# Usage: bash cmake/demo-site.sh [build folder]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}

bash cmake/install-deps.sh

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
cmake --build "$build" -j "$(nproc)"

"$build/app/kawipiko" archive \
  --sources /usr/share/doc/python3.11/html \
  --archive "$build/python-docs.cdb"

echo "open http://127.0.0.1:8080/ (Ctrl-C stops the server)"
exec "$build/app/kawipiko" serve --archive "$build/python-docs.cdb" --bind 127.0.0.1:8080 \
  --threads "$(nproc)"
