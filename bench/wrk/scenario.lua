-- One bench scenario for wrk: GET $BENCH_PATH, with `Cookie: $BENCH_COOKIE` when it is set
-- (wrk itself keeps no cookies, so every request without it starts a new session).
-- At the end it prints one machine-readable line for bench/run.sh:
--   RESULT requests=N seconds=S non2xx=N errors=N p50_us=N p99_us=N

local path = os.getenv("BENCH_PATH") or "/"
local cookie = os.getenv("BENCH_COOKIE")

wrk.method = "GET"
wrk.path = path
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f non2xx=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests,
    summary.duration / 1e6,
    e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50),
    latency:percentile(99)
  ))
end
