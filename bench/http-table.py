#!/usr/bin/env python3
"""Table for bench/run-http.sh: reads the raw results of one run from a folder and prints

  - one row per scenario, connection count and server: medians over the rounds with min-max of
    requests/s, MB/s, p50/p99 latency and server CPU time per request, and the summed errors and
    non-2xx answers;
  - the ratios kawipiko / reference (nginx, the floor, a baseline; over HTTP/2 nginx and h2o), per
    round (CPU per request: lower is better for kawipiko; requests/s: higher is better; p99:
    lower is better);
  - the hold test and the start-up times.

Nothing is asserted: timing is never a test.

usage: http-table.py RESULTS_FOLDER
  meta.txt     lines printed as they are (date, machine, command)
  runs.tsv     round scenario conns server requests duration_us bytes p50_us p99_us errors
               non2xx cpu_ticks   (cpu_ticks: utime+stime over the run, in clock ticks; p50_us,
               p99_us and non2xx empty when the client does not report them: openssl s_time,
               whose rows count connections as requests). Scenarios h2-* and h2c-* are h2load
               runs (conns connections, 10 streams each); a row with 0 requests (nothing
               answered over HTTP/2) has no CPU per request, and its ratios show 0 req/s
  hold.tsv     server connections seconds open_min requests errors non2xx connect_s rss_max_kib
               hwm_kib archive_bytes anon_max_kib
  startup.tsv  mode repeat ms
"""

import os
import statistics
import sys
from collections import defaultdict

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
SCENARIO_WIDTH = 11  # "tls-docs-gz"


def optional(field, scale=1):
    """The number in a TSV field divided by scale, or None when the client gave none."""
    return int(field) / scale if field else None


def median_of(values, width, digits):
    """The median right-aligned in width, or '-' when a client reported none."""
    values = [v for v in values if v is not None]
    return f"{statistics.median(values):>{width}.{digits}f}" if values else f"{'-':>{width}}"


def sum_of(values, width):
    values = [v for v in values if v is not None]
    return f"{sum(values):>{width}.0f}" if values else f"{'-':>{width}}"


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as tsv:
        return [line.rstrip("\n").split("\t") for line in tsv if line.strip()]


def spread(values, digits):
    """'median [min-max]' or just the value when there is one; '-' when there is none."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def main():
    folder = sys.argv[1]
    for line in read_tsv(os.path.join(folder, "meta.txt")):
        print("\t".join(line))

    runs = defaultdict(list)  # (scenario, conns, server) -> [row per round]
    order = []  # scenarios, connection counts and servers in the order they were run
    for round_, scenario, conns, server, requests, duration_us, size, p50, p99, errors, non2xx, ticks in read_tsv(
        os.path.join(folder, "runs.tsv")
    ):
        key = (scenario, int(conns), server)
        if key not in runs:
            order.append(key)
        requests = int(requests)
        seconds = int(duration_us) / 1e6
        runs[key].append(
            {
                "round": int(round_),
                "rps": requests / seconds,
                "mbps": int(size) / seconds / 1e6,
                "p50": optional(p50, 1000),
                "p99": optional(p99, 1000),
                "errors": int(errors),
                "non2xx": optional(non2xx),
                "cpu": int(ticks) * TICK_US / requests if requests else None,
            }
        )

    if runs:
        print()
        header = (
            f"{'scenario':<{SCENARIO_WIDTH}} {'conns':>5} {'server':<18}"
            f" {'req/s median [min-max]':<26}"
            f" {'MB/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'non2xx':>6}"
            f"  CPU us/req median [min-max]"
        )
        print(header)
        print("-" * len(header))
        key_order = sorted(order, key=lambda k: (scenario_rank(order, k[0]), k[1]))
        previous = None
        for key in key_order:
            scenario, conns, server = key
            if previous and previous[:2] != key[:2]:
                print()
            previous = key
            rows = runs[key]
            print(
                f"{scenario:<{SCENARIO_WIDTH}} {conns:>5} {server:<18}"
                f" {spread([r['rps'] for r in rows], 0):<26}"
                f" {statistics.median(r['mbps'] for r in rows):>7.1f}"
                f" {median_of([r['p50'] for r in rows], 7, 2)}"
                f" {median_of([r['p99'] for r in rows], 7, 2)}"
                f" {sum(r['errors'] for r in rows):>6} {sum_of([r['non2xx'] for r in rows], 6)}"
                f"  {spread([r['cpu'] for r in rows], 2)}"
            )

        if any(k[0] in ("tls-new", "tls-resumed") for k in runs):
            print()
            print("tls-new, tls-resumed: one connection at a time (openssl s_time), one request each;")
            print("req/s is connections/s and CPU us/req the server's CPU per connection; no latency.")
        if any(k[0].startswith(("h2-", "h2c-")) for k in runs):
            print()
            print("h2-*, h2c-*: h2load, conns connections with up to 10 concurrent streams each; errors")
            print("are h2load's errored requests, or the connection count when none was answered.")

        print()
        print("ratios kawipiko / reference, per round (median last)")
        header = f"{'scenario':<{SCENARIO_WIDTH}} {'conns':>5} {'pair':<36} {'CPU us/req':<22} {'req/s':<22} p99"
        print(header)
        print("-" * len(header))
        for scenario, conns in dict.fromkeys(k[:2] for k in key_order):
            servers = [k[2] for k in key_order if k[:2] == (scenario, conns)]
            for ours in (s for s in servers if s.startswith("kawipiko")):
                for theirs in (s for s in servers if not s.startswith("kawipiko")):
                    # A baseline kawipiko is compared with the same coding only.
                    if theirs.startswith("baseline") and theirs[8:] != ours[8:]:
                        continue
                    mine = {r["round"]: r for r in runs[(scenario, conns, ours)]}
                    ref = {r["round"]: r for r in runs[(scenario, conns, theirs)]}
                    rounds = sorted(set(mine) & set(ref))

                    def ratios(field):
                        values = [
                            mine[n][field] / ref[n][field]
                            for n in rounds
                            if mine[n][field] is not None and ref[n][field]
                        ]
                        if not values:
                            return "-"
                        shown = " ".join(f"{v:.2f}" for v in values)
                        if len(values) > 1:
                            shown += f" ({statistics.median(values):.2f})"
                        return shown

                    print(
                        f"{scenario:<{SCENARIO_WIDTH}} {conns:>5} {ours + ' / ' + theirs:<36}"
                        f" {ratios('cpu'):<22} {ratios('rps'):<22} {ratios('p99')}"
                    )

    hold = read_tsv(os.path.join(folder, "hold.tsv"))
    if hold:
        print()
        print("hold test: keep-alive connections held open, one request per connection every ~2 s")
        header = (
            f"{'server':<10} {'conns':>6} {'seconds':>7} {'open min':>8} {'requests':>9}"
            f" {'errors':>6} {'non2xx':>6} {'connect s':>9} {'RSS max MiB':>11}"
            f" {'VmHWM MiB':>9} {'archive MiB':>11} {'anon max MiB':>12}"
        )
        print(header)
        print("-" * len(header))
        for row in hold:
            server, conns, seconds, open_min, requests, errors, non2xx, connect_s, rss, hwm, size = row[:11]
            anon = f"{int(row[11]) / 1024:.1f}" if len(row) > 11 and row[11] else "?"
            print(
                f"{server:<10} {conns:>6} {seconds:>7} {open_min:>8} {requests:>9} {errors:>6}"
                f" {non2xx:>6} {connect_s:>9} {int(rss) / 1024:>11.1f} {int(hwm) / 1024:>9.1f}"
                f" {int(size) / 1048576:>11.1f} {anon:>12}"
            )

    startup = defaultdict(list)
    for mode, _, ms in read_tsv(os.path.join(folder, "startup.tsv")):
        startup[mode].append(float(ms))
    if startup:
        print()
        print("start-up: spawn to the first answered request, ms, median [min-max]")
        for mode, values in startup.items():
            print(f"  {mode:<44} {spread(values, 1)}")


def scenario_rank(order, scenario):
    return [k[0] for k in order].index(scenario)


if __name__ == "__main__":
    main()
