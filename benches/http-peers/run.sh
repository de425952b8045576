#!/usr/bin/env bash
# Drives spindle's examples/http_server.rs, may_minihttp and hyper (this
# crate's two binaries) with wrk, in the same run, and prints one table
# row per server and load: requests/s, p99 latency and the server's CPU
# time per request (utime + stime of the server process, from
# /proc/PID/stat before and after the measured wrk run, divided by the
# requests wrk counted). Every figure is the median of RUNS runs; the
# servers take turns within each run.
#
# Usage (from anywhere):
#   benches/http-peers/run.sh                # the peers, 1 worker
#   WORKERS=2 SERVER_CPUS=1 benches/http-peers/run.sh
#   SPREAD=1 WORKERS=2 benches/http-peers/run.sh   # spindle's two spreads
#
# Settings (environment): WORKERS (1), SERVER_CPUS (1) and CLIENT_CPUS (0)
# for taskset, CONNS (64), DURATION seconds per run (10), RUNS (3),
# DEPTH of pipelining (16), SPREAD=1 to compare spindle's SO_REUSEPORT and
# hand-off (keep-alive, pipelined and one connection per request) instead
# of the peers.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
WORKERS=${WORKERS:-1}
SERVER_CPUS=${SERVER_CPUS:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
DEPTH=${DEPTH:-16}
SPREAD=${SPREAD:-0}
PORT=${PORT:-18080}

(cd "$root" && cargo build --release --example http_server >&2)
[ "$SPREAD" = 1 ] || (cd "$here" && cargo build --release >&2)

spindle="$root/target/release/examples/http_server"
peers="$here/target/release"
ticks=$(getconf CLK_TCK)
results=$(mktemp)
trap 'rm -f "$results"' EXIT

cpu_ticks() { # utime + stime of process $1 (fields 14 and 15 of its stat)
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "server did not listen on $PORT" >&2
    return 1
}

# measure NAME LOAD CMD...: one wrk run against CMD; LOAD is keepalive,
# pipeline or close. Appends "NAME LOAD req/s p99_us cpu_ns_per_req".
measure() {
    local name=$1 load=$2
    shift 2
    taskset -c "$SERVER_CPUS" "$@" --workers "$WORKERS" --addr "127.0.0.1:$PORT" 2>/dev/null &
    local pid=$!
    wait_port
    local url="http://127.0.0.1:$PORT/plaintext" args=()
    case $load in
        pipeline) args=(-s "$here/pipeline.lua" "$url" -- "$DEPTH") ;;
        close) args=(-H "Connection: close" "$url") ;;
        *) args=("$url") ;;
    esac
    # Warm up (connections, stacks, caches), then measure.
    taskset -c "$CLIENT_CPUS" wrk -t1 -c"$CONNS" -d1s "${args[@]}" >/dev/null
    local before out after
    before=$(cpu_ticks "$pid")
    out=$(taskset -c "$CLIENT_CPUS" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "${args[@]}")
    after=$(cpu_ticks "$pid")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local requests rps p99
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub("us", "", v); print v}
          else if (v ~ /ms$/) {sub("ms", "", v); print v * 1000}
          else if (v ~ /s$/) {sub("s", "", v); print v * 1000000}}' <<<"$out")
    awk -v n="$name" -v l="$load" -v r="$rps" -v p="$p99" -v q="$requests" \
        -v c=$((after - before)) -v t="$ticks" \
        'BEGIN {printf "%s %s %.0f %.0f %.0f\n", n, l, r, p, c / t * 1e9 / q}' >>"$results"
    echo "run: $(tail -1 "$results")" >&2
}

for run in $(seq "$RUNS"); do
    echo "== run $run of $RUNS" >&2
    if [ "$SPREAD" = 1 ]; then
        for load in keepalive pipeline close; do
            measure spindle-reuseport "$load" "$spindle" --spread reuseport
            measure spindle-handoff "$load" "$spindle" --spread handoff
        done
    else
        for load in keepalive pipeline; do
            measure spindle "$load" "$spindle"
            measure may_minihttp "$load" "$peers/may_plaintext"
            measure hyper "$load" "$peers/hyper_plaintext"
        done
    fi
done

echo "workers=$WORKERS server_cpus=$SERVER_CPUS client_cpus=$CLIENT_CPUS conns=$CONNS duration=${DURATION}s runs=$RUNS depth=$DEPTH (medians)"
printf '| server | load | req/s | p99 (us) | server CPU per request (ns) |\n|---|---|---:|---:|---:|\n'
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
for key in $(awk '{print $2 "/" $1}' "$results" | sort -u); do
    load=${key%%/*} name=${key#*/}
    rows=$(awk -v n="$name" -v l="$load" '$1 == n && $2 == l' "$results")
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$load" \
        "$(awk '{print $3}' <<<"$rows" | median)" \
        "$(awk '{print $4}' <<<"$rows" | median)" \
        "$(awk '{print $5}' <<<"$rows" | median)"
done
