#!/usr/bin/env bash
# Load comparison: express-session for Rust against bare axum, tower-sessions and Node's
# express-session, over a memory store and over Redis. Prints one table.
#
#   bash bench/run.sh [memory|redis|all]      (default all: memory first, then redis)
#
# Every server serves the same routes (/hello, /, /get, /inc, /count; see
# examples/bench_server.rs) on 127.0.0.1 and is pinned to CPU $BENCH_SERVER_CPU (0); wrk (one
# thread, $BENCH_CONNS connections) and the benchmark's own Redis are pinned to $BENCH_WRK_CPU (1).
# Each (server, scenario) gets a fresh server process, a warm-up of $BENCH_WARMUP (2s) and a
# measured run of $BENCH_DURATION (6s), once in each of $BENCH_ROUNDS (3) rounds; the table gives
# the median and the spread over the rounds (single runs on a shared machine vary by ±15%).
# Scenarios:
#   hello  GET /hello, no cookie (the layer on a request that never uses the session)
#   new    GET /      without a cookie: every request creates and saves a session
#   read   GET /get   with one session's cookie
#   write  GET /inc   with one session's cookie, all connections incrementing the same counter;
#          afterwards GET /count is compared with the successful increments ("lost" updates)
# Redis runs use a private redis-server on 127.0.0.1:$BENCH_REDIS_PORT, started and shut down
# here (so `INFO commandstats` counts only this benchmark, and no key outlives it).
# Not part of CI. Needs cargo, node/npm, redis-server, wrk and taskset (wrk is installed with
# apt-get if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

groups=${1:-all}
duration=${BENCH_DURATION:-6s}
warmup=${BENCH_WARMUP:-2s}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNS:-64}
port=${BENCH_PORT:-3700}
redis_port=${BENCH_REDIS_PORT:-6391}
server_cpu=${BENCH_SERVER_CPU:-0}
wrk_cpu=${BENCH_WRK_CPU:-1}
lib_target=${CARGO_TARGET_DIR:-$root/target}
peer_target=$root/bench/target
work=$peer_target/run
mkdir -p "$work"
results=$work/results-$(date -u +%Y%m%dT%H%M%SZ).md
base=http://127.0.0.1:$port

case $groups in memory | redis | all) ;; *)
  echo "usage: bash bench/run.sh [memory|redis|all]" >&2
  exit 2
  ;;
esac

say() { printf '%s\n' "$*" | tee -a "$results"; }
log() { printf '# %s\n' "$*" >&2; }

# --- tools and builds ------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
for tool in taskset redis-server redis-cli node npm curl cargo; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

log "building (release)"
CARGO_TARGET_DIR=$lib_target cargo build --quiet --release --features redis --example bench_server
CARGO_TARGET_DIR=$peer_target cargo build --quiet --release --manifest-path bench/Cargo.toml
if [ ! -d bench/node/node_modules ]; then
  (cd bench/node && npm ci --no-audit --no-fund --loglevel=error)
fi
ours=$lib_target/release/examples/bench_server
peers=$peer_target/release

# --- processes -------------------------------------------------------------------------------
server_pid=""
redis_dir=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
stop_redis() {
  if [ -n "$redis_dir" ]; then
    redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$redis_dir"
    redis_dir=""
  fi
}
cleanup() {
  stop_server
  stop_redis
}
trap cleanup EXIT

start_redis() {
  redis_dir=$(mktemp -d /tmp/es-bench-redis.XXXXXX)
  taskset -c "$wrk_cpu" redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" \
    --save "" --appendonly no --dir "$redis_dir" --logfile "$redis_dir/log" >/dev/null
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis-server on port $redis_port did not start" >&2
  exit 1
}

# Total calls of every command except the benchmark's own INFO.
redis_calls() {
  redis-cli -h 127.0.0.1 -p "$redis_port" info commandstats |
    awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" { n += $3 } END { print n + 0 }'
}

# start_server NAME: starts it pinned to the server CPU, waits (bounded) until it answers.
start_server() {
  local name=$1 redis_url=redis://127.0.0.1:$redis_port
  local env=(PORT="$port" REDIS_URL="$redis_url")
  case $name in
    axum) cmd=("$peers/bare") ;;
    ours-memory) cmd=("$ours") env+=(BENCH_STORE=memory) ;;
    ours-redis) cmd=("$ours") env+=(BENCH_STORE=redis BENCH_PREFIX=bench-rs:) ;;
    tower-sessions-memory) cmd=("$peers/ts_memory") ;;
    tower-sessions-redis) cmd=("$peers/ts_redis") ;;
    express-memory) cmd=(node "$root/bench/node/app.js") env+=(BENCH_STORE=memory NODE_ENV=production) ;;
    express-redis) cmd=(node "$root/bench/node/app.js") env+=(BENCH_STORE=redis NODE_ENV=production) ;;
    *) echo "unknown server $name" >&2; exit 1 ;;
  esac
  env "${env[@]}" taskset -c "$server_cpu" "${cmd[@]}" >>"$work/$name.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -s --max-time 1 -o /dev/null "$base/hello" && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start; see $work/$name.log" >&2
  exit 1
}

# The session cookie (name=value) a fresh GET / hands out.
new_cookie() {
  curl -s --max-time 5 -D - -o /dev/null "$base/" |
    awk 'tolower($1) == "set-cookie:" { sub(/;.*/, "", $2); print $2; exit }' | tr -d '\r'
}

# run_wrk DURATION PATH COOKIE: prints the RESULT line.
run_wrk() {
  BENCH_PATH=$2 BENCH_COOKIE=$3 taskset -c "$wrk_cpu" \
    wrk -t1 -c"$conns" -d"$1" --timeout 2s -s "$root/bench/wrk/scenario.lua" "$base" | grep '^RESULT'
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# Results of every measurement, by "store:server:scenario:round" (bare axum runs in both groups).
declare -A rps p50 p99 errs rss cmds lost
servers_of() { echo "axum ours-$1 tower-sessions-$1 express-$1"; }
scenarios="hello new read write"

# measure SERVER SCENARIO ROUND: one fresh server, warm-up, measured run; keeps the numbers.
measure() {
  local name=$1 scenario=$2 round=$3 path cookie="" calls0=0 calls1=0 key=$store:$1:$2:$3
  start_server "$name"
  case $scenario in
    hello) path=/hello ;;
    new) path=/ ;;
    read) path=/get ;;
    write) path=/inc ;;
  esac
  if [ "$name" != axum ] && { [ "$scenario" = read ] || [ "$scenario" = write ]; }; then
    cookie=$(new_cookie)
    [ -n "$cookie" ] || { echo "$name gave no session cookie" >&2; exit 1; }
  fi
  local warm res requests seconds non2xx
  warm=$(run_wrk "$warmup" "$path" "$cookie")
  [[ $name == *redis ]] && calls0=$(redis_calls)
  res=$(run_wrk "$duration" "$path" "$cookie")
  [[ $name == *redis ]] && calls1=$(redis_calls)
  requests=$(field requests "$res")
  seconds=$(field seconds "$res")
  non2xx=$(field non2xx "$res")
  rps[$key]=$(awk -v r="$requests" -v s="$seconds" 'BEGIN { printf "%.0f", r / s }')
  p50[$key]=$(field p50_us "$res")
  p99[$key]=$(field p99_us "$res")
  errs[$key]=$((non2xx + $(field errors "$res")))
  lost[$key]=-
  if [ "$scenario" = write ] && [ "$name" != axum ]; then
    local ok count
    ok=$(($(field requests "$warm") - $(field non2xx "$warm") + requests - non2xx))
    count=$(curl -s --max-time 5 -H "Cookie: $cookie" "$base/count")
    lost[$key]=$((ok - count))
  fi
  rss[$key]=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$server_pid/status")
  stop_server
  cmds[$key]=-
  if [[ $name == *redis ]]; then
    cmds[$key]=$(awk -v c=$((calls1 - calls0)) -v r="$requests" 'BEGIN { printf "%.2f", c / r }')
  fi
  log "$name $scenario round $round: ${rps[$key]} req/s"
}

# median, min and max of the numbers on stdin, one a line: "median min max".
stats() { sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f %.0f %.0f\n", m, v[1], v[NR] }'; }
# values ARRAY SERVER SCENARIO: that array's value for each round of the group $store, one a line.
values() {
  local -n arr=$1
  local r
  for r in $(seq 1 "$rounds"); do echo "${arr[$store:$2:$3:$r]}"; done
}
median_of() { values "$@" | stats | cut -d' ' -f1; }

# Rounds: every (server, scenario) once per round, so slow drift of the machine touches every
# contender alike; the table gives medians over the rounds.
run_group() {
  local store=$1 round scenario server
  for round in $(seq 1 "$rounds"); do
    for scenario in $scenarios; do
      for server in $(servers_of "$store"); do
        measure "$server" "$scenario" "$round"
      done
    done
  done
}

table() {
  local store=$1 scenario server med lo hi bare ratio worst_lost
  say ""
  say "| server                | scen. | req/s (median) | min–max         | p50 ms | p99 ms | ×axum | errors | RSS MB | cmds/req | lost |"
  say "|-----------------------|-------|---------------:|-----------------|-------:|-------:|------:|-------:|-------:|---------:|-----:|"
  for scenario in $scenarios; do
    bare=$(median_of rps axum "$scenario")
    for server in $(servers_of "$store"); do
      read -r med lo hi < <(values rps "$server" "$scenario" | stats)
      ratio=$(awk -v a="$med" -v b="$bare" 'BEGIN { printf "%.2f", a / b }')
      worst_lost=$(values lost "$server" "$scenario" | sort -n | tail -1)
      say "$(printf '| %-21s | %-5s | %14s | %-15s | %6.2f | %6.2f | %5s | %6s | %6s | %8s | %4s |' \
        "$server" "$scenario" "$med" "$lo–$hi" \
        "$(awk -v u="$(median_of p50 "$server" "$scenario")" 'BEGIN { print u / 1000 }')" \
        "$(awk -v u="$(median_of p99 "$server" "$scenario")" 'BEGIN { print u / 1000 }')" \
        "$ratio" "$(values errs "$server" "$scenario" | awk '{ n += $1 } END { print n }')" \
        "$(values rss "$server" "$scenario" | sort -n | tail -1)" \
        "$(values cmds "$server" "$scenario" | tail -1)" "$worst_lost")"
    done
  done
}

# ratios STORE: ours against each contender, medians over the rounds.
ratios() {
  local store=$1 scenario o
  say ""
  say "| $store: ours ÷ | scen. | axum | tower-sessions | express |"
  say "|---|---|---:|---:|---:|"
  for scenario in $scenarios; do
    o=$(median_of rps "ours-$store" "$scenario")
    say "$(awk -v o="$o" -v a="$(median_of rps axum "$scenario")" -v t="$(median_of rps "tower-sessions-$store" "$scenario")" \
      -v e="$(median_of rps "express-$store" "$scenario")" -v s="$scenario" -v st="$store" \
      'BEGIN { printf "| %s | %s | %.2f | %.2f | %.1f |", st, s, o / a, o / t, o / e }')"
  done
}

say "# express-session for Rust: load comparison, $(date -u '+%Y-%m-%d %H:%M UTC')"
say ""
say "$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); server on CPU $server_cpu," \
  "wrk -t1 -c$conns -d$duration (after a $warmup warm-up) and Redis on CPU $wrk_cpu; loopback;" \
  "$rounds rounds, each contender once per round, a fresh server each time."
say "Load before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$groups" = memory ] || [ "$groups" = all ]; then
  run_group memory
  table memory
fi
if [ "$groups" = redis ] || [ "$groups" = all ]; then
  start_redis
  run_group redis
  stop_redis
  table redis
fi
[ "$groups" = redis ] || ratios memory
[ "$groups" = memory ] || ratios redis
say ""
say "cmds/req: Redis commands per request from INFO commandstats, which also counts the commands a"
say "Lua script runs (our compare-and-set is one EVALSHA running GET and SET: one round trip, three"
say "commands). lost: increments answered 2xx minus the final counter; wrk does not count the requests"
say "in flight when it stops (up to $conns after the warm-up and $conns after the run), so down to"
say "-$((2 * conns)) means none was lost."
say ""
say "Load after: $(cut -d' ' -f1-3 /proc/loadavg)"
log "table saved to $results"
