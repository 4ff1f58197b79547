#!/usr/bin/env bash
# bench/ab.sh BIN_A BIN_B [SECONDS] [ROUNDS] [REQUESTS]: one gateway hop through two warden
# binaries (say, built from the commit before a change and from the change), side by side.
# TELEMETRY_A / TELEMETRY_B (TOML lines for the gateway's [telemetry] table) make the two sides
# differ in configuration instead, with the same binary given twice.
#
# A federation node and an echo backend (this checkout's release build) and the gateway under
# test share CPU 1; wrk (one thread, 32 connections, GET) runs on CPU 0. Each round starts A's
# gateway, measures it, stops it, then B's (the order alternating by round); the table shows
# medians of requests per second and the gateway's CPU per request (/proc/PID/stat). Then the
# instructions per request under callgrind, which do not depend on what else the machine does:
# GETs, and POSTs with a 1 KiB body. Access logs off; default telemetry otherwise.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: bench/ab.sh BIN_A BIN_B [SECONDS] [ROUNDS] [REQUESTS]" >&2; exit 2; }
bin_a=$(realpath "$1")
bin_b=$(realpath "$2")
secs=${3:-8}
rounds=${4:-6}
count=${5:-3000}
cd "$(dirname "$0")/.."
export WARDEN_ADMIN_TOKEN=bench-ab-token-0123456789
# shellcheck source=bench/common.sh
source bench/common.sh
node_bin=$bin

start_node_and_backend
for v in a b; do
    var=TELEMETRY_${v^^}
    {
        gateway_config cart
        printf '[telemetry]\naccess_log = false\n%s\n' "${!var:-}"
    } >"$dir/gw-$v.toml"
done
head -c 1024 /dev/zero | tr '\0' 'x' >"$dir/body"
cart_ready() { curl -fsS -o /dev/null -H 'Host: cart.shop' "http://$out/x" 2>/dev/null; }

# Starts side $1's gateway (its binary and config) under CMD..., as $gw.
gateway_of() {
    local v=$1 b=$bin_a
    shift
    [[ $v == b ]] && b=$bin_b
    cp "$dir/gw-$v.toml" "$dir/gw.toml"
    bin=$b start_gateway cart_ready "$@"
}
stop_gateway() {
    kill "$gw"
    wait "$gw" 2>/dev/null || true
}

declare -A results
for ((r = 0; r < rounds; r++)); do
    order=(a b)
    ((r % 2)) && order=(b a)
    for v in "${order[@]}"; do
        gateway_of "$v" taskset -c 1
        secs=2 wrk_run "$out" cart.shop "$gw" >/dev/null
        results[$v]+="$(wrk_run "$out" cart.shop "$gw")"$'\n'
        stop_gateway
    done
done
bin=$node_bin

col() { cut -d' ' -f"$2" <<<"${results[$1]}" | grep -v '^$' | median; }
echo
echo "One gateway hop, A vs B ($rounds rounds of ${secs}s each, wrk -t1 -c32 GET on CPU 0; gateway, backend and node on CPU 1; medians):"
echo
echo "| binary | req/s | gateway µs CPU/req | all rounds (req/s) |"
echo "|---|---:|---:|---|"
for v in a b; do
    all=$(cut -d' ' -f1 <<<"${results[$v]}" | grep -v '^$' | awk '{printf "%s%.0f", (NR > 1 ? " / " : ""), $1}')
    printf '| %s | %.0f | %s | %s |\n' "$v" "$(col "$v" 1)" "$(col "$v" 2)" "$all"
done

declare -A ir
for v in a b; do
    gateway_of "$v" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.%p"
    ir[$v-get]=$(instructions_per_request "$count" -H 'Host: cart.shop')
    ir[$v-post]=$(instructions_per_request "$count" -H 'Host: cart.shop' --data-binary "@$dir/body")
    stop_gateway
done
echo
echo "Instructions per request (callgrind, $count requests on 4 keep-alive connections, after as many to warm up):"
echo
echo "| request | A | B | B vs A |"
echo "|---|---:|---:|---:|"
for k in get post; do
    printf '| %s | %d | %d | %s |\n' "${k^^}" "${ir[a-$k]}" "${ir[b-$k]}" \
        "$(awk -v x="${ir[b-$k]}" -v y="${ir[a-$k]}" 'BEGIN {printf "%+.2f %%", (x / y - 1) * 100}')"
done
