-- wrk reporter for bench/run-http.sh: prints one machine-readable line when the run ends.
-- Used alone (wrk then sends its one static request, the cheapest way) or loaded by
-- wrk-random-paths.lua. "non2xx" is wrk's status error counter: responses with status > 399.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d max_us=%d" ..
    " errors=%d non2xx=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
