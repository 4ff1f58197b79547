#!/usr/bin/env bash
# bench/routes.sh [SECONDS] [ROUNDS] [REQUESTS]: what the route stage costs, side by side in one run.
#
# One gateway process serves three services on one echo backend: `plain` (no route), `r10` and
# `r50` (a route of 10 and 50 rules: N-1 rules matching a header the load never sends, then a
# catch-all, so every request walks all N). HAProxy (HTTP mode, keep-alive) proxies to the same
# backend. The load generator (wrk, one thread, 32 connections) is pinned to CPU 0; the gateway,
# the backend and HAProxy share CPU 1. Rounds rotate the order; the table shows medians:
# requests per second and the proxy's CPU per request (from /proc/PID/stat).
#
# Then the instructions per request, which do not depend on what else the machine does: the
# same gateway under callgrind, REQUESTS requests per service on keep-alive connections, with
# collection switched on only around each batch (KEEP_CALLGRIND=DIR keeps each dump there for
# callgrind_annotate). Installs wrk, haproxy and valgrind with apt-get when missing (bench/common.sh).
set -euo pipefail

secs=${1:-8}
rounds=${2:-5}
count=${3:-3000}
cd "$(dirname "$0")/.."
export WARDEN_ADMIN_TOKEN=bench-routes-token-0123456789
# shellcheck source=bench/common.sh
source bench/common.sh

start_node_and_backend
gateway_config plain r10 r50 >"$dir/gw.toml"

# A route for shop/SERVICE with N rules, the last a catch-all.
route() {
    local service=$1 n=$2 rules="" i
    for ((i = 1; i < n; i++)); do
        rules+="{\"name\":\"miss-$i\",\"matches\":[{\"headers\":[{\"name\":\"x-bench-$i\",\"value\":\"on\"}]}],\"backends\":[{\"weight\":1}]},"
    done
    rules+="{\"name\":\"all\",\"backends\":[{\"weight\":1}]}"
    api_put "/api/v1/routes/$service" "{\"service\":\"shop/$service\",\"rules\":[$rules]}"
}
routes_ready() { curl -fsS "http://$admin/explain?authority=r50.shop" 2>/dev/null | grep -q '"all"'; }

route r10 10
route r50 50
start_gateway routes_ready taskset -c 1
start_haproxy

# One run: TARGET → "req/s µs-CPU-per-request" (CPU of the proxy's PID; "-" for direct).
run() {
    case $1 in
    direct) wrk_run "$backend" be "" ;;
    haproxy) wrk_run "127.0.0.1:$hp_port" be "$hp" ;;
    *) wrk_run "$out" "$1.shop" "$gw" ;;
    esac
}

targets=(direct plain r10 r50 haproxy)
for t in plain r10 r50; do secs=2 run "$t" >/dev/null; done
declare -A results
for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < ${#targets[@]}; i++)); do
        t=${targets[$(((i + r) % ${#targets[@]}))]}
        results[$t]+="$(run "$t")"$'\n'
    done
done

echo
echo "Route stage, side by side ($rounds rounds of ${secs}s each, wrk -t1 -c32 on CPU 0; proxy and backend on CPU 1; medians):"
echo
echo "| path | req/s | proxy µs CPU/req | CPU vs plain |"
echo "|---|---:|---:|---:|"
base=$(cut -d' ' -f2 <<<"${results[plain]}" | grep -v '^$' | median)
for t in "${targets[@]}"; do
    rps=$(cut -d' ' -f1 <<<"${results[$t]}" | grep -v '^$' | median)
    cpu=$(cut -d' ' -f2 <<<"${results[$t]}" | grep -v '^$' | grep -v -- '-' | median || true)
    rel="-"
    case $t in r10 | r50 | haproxy) rel=$(awk -v c="$cpu" -v b="$base" 'BEGIN {printf "%+.1f %%", (c / b - 1) * 100}') ;; esac
    [[ $t == direct ]] && cpu="-"
    printf '| %s | %.0f | %s | %s |\n' "$t" "$rps" "$cpu" "$rel"
done

# Instructions per request under callgrind (collection on only around each batch; probes are
# every 30 s, so the background work in a batch is small beside the requests).
kill "$gw"
wait "$gw" 2>/dev/null || true
start_gateway routes_ready valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.%p"
echo
echo "Instructions per request (callgrind, $count requests per service on 4 keep-alive connections, after as many to warm up):"
echo
echo "| path | instructions/req | vs no route |"
echo "|---|---:|---:|"
plain_ir=""
for t in plain r10 r50; do
    per=$(instructions_per_request "$count" -H "Host: $t.shop")
    [[ -z $plain_ir ]] && plain_ir=$per
    rel=$(awk -v p="$per" -v b="$plain_ir" 'BEGIN {printf "%+.1f %%", (p / b - 1) * 100}')
    printf '| %s | %d | %s |\n' "$t" "$per" "$rel"
done
