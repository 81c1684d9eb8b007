// What a reload costs the main thread: opens (maps, leases, validates, digests, indexes) an archive
// as `kawipiko serve` does on every reload, N times, and prints the median and the fastest open
// in microseconds, with the CPU time of the whole run per open. Not a test: nothing is asserted.
// Usage: kawipiko_bench_site_open <archive> [opens, default 50]

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "serve/options.hpp"
#include "serve/site.hpp"

namespace {

double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <archive> [opens]\n", argv[0]);
    return 2;
  }
  kawipiko::serve::options opts;
  opts.archive = argv[1];
  const int opens = argc > 2 ? std::max(1, std::atoi(argv[2])) : 50;
  try {
    std::vector<double> times;
    const double cpu_start = cpu_seconds();
    for (int i = 0; i < opens; ++i) {
      const auto start = std::chrono::steady_clock::now();
      {
        const kawipiko::serve::site opened(opts);  // and closed: a reload drops the old one
        if (i == 0) std::printf("%zu header lines, %zu indexed\n", opened.lists().size(), opened.indexed());
      }
      times.push_back(std::chrono::duration<double, std::micro>(
                          std::chrono::steady_clock::now() - start)
                          .count());
    }
    const double cpu = (cpu_seconds() - cpu_start) / opens * 1e6;
    std::sort(times.begin(), times.end());
    std::printf("%s: %d opens, median %.0f us, fastest %.0f us, CPU %.0f us per open\n", argv[1],
                opens, times[times.size() / 2], times.front(), cpu);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
