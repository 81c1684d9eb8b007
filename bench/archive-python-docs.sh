#!/usr/bin/env bash
# Archiver benchmark (not a test: nothing is asserted). Archives Debian's python3.11-doc with
# each compression setting, with --jobs 1 and --jobs 2, fresh and as a rebuild after one page
# changed, and prints time, archive size and bytes per variant as a table (also written to
# build/bench/archive-results.txt).
# Usage: bash bench/archive-python-docs.sh [build folder]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/bench}

bash cmake/install-deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" >/dev/null
kawipiko="$build/app/kawipiko"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A private copy, so that one page can be edited for the rebuild runs (symlinks resolved).
cp -rL /usr/share/doc/python3.11/html "$work/site"
page="$work/site/library/os.html"
cp "$page" "$work/os.html.orig"

results="$build/archive-results.txt"
{
  echo "# kawipiko archive on python3.11-doc ($(du -sm "$work/site" | cut -f1) MB, $(find "$work/site" -type f | wc -l) files)"
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  printf '%-12s %-5s %-8s %9s %10s %10s %10s %10s\n' compress jobs run seconds archive_MB identity_MB gzip_MB br_MB
} | tee "$results"

# Pulls a field out of the summary line, e.g. "gzip 11.5 MB" -> 11.5.
field() { sed -n "s/.*$1 \([0-9.]*\) MB.*/\1/p"; }

for compress in identity gzip brotli brotli,gzip; do
  for jobs in 1 2; do
    archive="$work/site-$compress-$jobs.cdb"
    for run in fresh rebuild; do
      if [ "$run" = fresh ]; then
        rm -f "$archive"
        cp "$work/os.html.orig" "$page"
      else
        echo "<!-- edited $(date +%s%N) -->" >>"$page"
      fi
      start=$(date +%s.%N)
      summary=$("$kawipiko" archive --sources "$work/site" --archive "$archive" \
        --compress "$compress" --jobs "$jobs" --quiet)
      end=$(date +%s.%N)
      printf '%-12s %-5s %-8s %9.2f %10.1f %10s %10s %10s\n' "$compress" "$jobs" "$run" \
        "$(echo "$end - $start" | bc)" "$(echo "$(stat -c %s "$archive") / 1000000" | bc -l)" \
        "$(echo "$summary" | field identity)" "$(echo "$summary" | field gzip)" \
        "$(echo "$summary" | field br)" | tee -a "$results"
    done
  done
done
echo "results written to $results"
