-- wrk script for bench/run-http.sh: every request asks for a random page from a list, the same
-- sequence on every run (seeded). The requests are formatted once, in init, so that wrk spends
-- its core on the sockets rather than on building strings.
--   BENCH_PATHS  file with one request path per line (e.g. /library/os.html)
--   BENCH_SEED   random seed (default 1)
--   BENCH_DIR    folder of wrk-report.lua (the done() callback)
local requests_by_index = {}

function init(args)
  for path in io.lines(os.getenv("BENCH_PATHS")) do
    requests_by_index[#requests_by_index + 1] = wrk.format("GET", path)
  end
  math.randomseed(tonumber(os.getenv("BENCH_SEED") or "1"))
end

function request()
  return requests_by_index[math.random(#requests_by_index)]
end

dofile(os.getenv("BENCH_DIR") .. "/wrk-report.lua")
