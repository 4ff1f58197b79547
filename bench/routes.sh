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
# callgrind_annotate). Installs wrk, haproxy and valgrind with apt-get when missing.
set -euo pipefail

secs=${1:-8}
rounds=${2:-5}
count=${3:-3000}
cd "$(dirname "$0")/.."

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
command -v valgrind >/dev/null || need+=(valgrind)
command -v taskset >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q
bin=$PWD/target/release/warden
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap "exit 130" INT TERM
export WARDEN_ADMIN_TOKEN=bench-routes-token-0123456789
export WARDEN_LOG=warn
hz=$(getconf CLK_TCK)

# The value of "key":"..." on the first line of FILE that has it, waiting for it to appear.
addr_of() {
    local file=$1 key=$2 v=""
    for _ in $(seq 200); do
        v=$(grep -o "\"$key\":\"[^\"]*\"" "$file" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
        [[ -n $v ]] && break
        sleep 0.05
    done
    [[ -n $v ]] || { echo "no $key in $file" >&2; exit 1; }
    echo "$v"
}

cat >"$dir/node.toml" <<EOF
node_id = 1
data_dir = "$dir/node"
api_listen = "127.0.0.1:0"
raft_listen = "127.0.0.1:0"
bootstrap = true
EOF
taskset -c 1 "$bin" federation --config "$dir/node.toml" >"$dir/node.out" 2>"$dir/node.log" &
pids+=($!)
api=$(addr_of "$dir/node.out" api)
taskset -c 1 "$bin" echo --name be --listen 127.0.0.1:0 >"$dir/be.out" 2>&1 &
pids+=($!)
backend=$(addr_of "$dir/be.out" addr)

gateway_config() {
    cat <<EOF
[cluster]
name = "east"
region = "r1"
zone = "z1"
trust_domain = "east.bench"
[federation]
endpoints = ["http://$api"]
[listeners]
outbound = "127.0.0.1:0"
eastwest = "127.0.0.1:0"
admin = "127.0.0.1:0"
[discovery]
allow_loopback_endpoints = true
[health]
interval_ms = 30000
EOF
    for s in plain r10 r50; do
        printf '[[services]]\nnamespace = "shop"\nname = "%s"\nendpoints = ["%s"]\nprobe = "/healthz"\n' "$s" "$backend"
    done
}
gateway_config >"$dir/gw.toml"

# A route for shop/SERVICE with N rules, the last a catch-all.
route() {
    local service=$1 n=$2 rules="" i
    for ((i = 1; i < n; i++)); do
        rules+="{\"name\":\"miss-$i\",\"matches\":[{\"headers\":[{\"name\":\"x-bench-$i\",\"value\":\"on\"}]}],\"backends\":[{\"weight\":1}]},"
    done
    rules+="{\"name\":\"all\",\"backends\":[{\"weight\":1}]}"
    curl -fsS -X PUT -H "authorization: Bearer $WARDEN_ADMIN_TOKEN" -H 'content-type: application/json' \
        -d "{\"service\":\"shop/$service\",\"rules\":[$rules]}" "http://$api/api/v1/routes/$service" >/dev/null
}

# Starts the gateway (under CMD...) and waits until it routes all three services.
start_gateway() {
    "$@" "$bin" gateway --config "$dir/gw.toml" >"$dir/gw.out" 2>"$dir/gw.log" &
    gw=$!
    pids+=("$gw")
    out=$(addr_of "$dir/gw.out" outbound)
    admin=$(addr_of "$dir/gw.out" admin)
    for _ in $(seq 600); do
        if curl -fsS "http://$admin/explain?authority=r50.shop" 2>/dev/null | grep -q '"all"'; then
            return
        fi
        sleep 0.1
    done
    echo "the gateway did not apply the routes" >&2
    exit 1
}

for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://$api/readyz" 2>/dev/null && break
    sleep 0.1
done
route r10 10
route r50 50
start_gateway taskset -c 1

hp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$hp_port
  default_backend be
backend be
  server s1 $backend
EOF
taskset -c 1 haproxy -f "$dir/haproxy.cfg" -db >/dev/null 2>"$dir/haproxy.log" &
hp=$!
pids+=("$hp")
sleep 0.5

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One run: TARGET → "req/s µs-CPU-per-request" (CPU of the proxy's PID; "-" for direct).
run() {
    local name=$1 addr host pid before after res rps reqs
    case $name in
    direct) addr=$backend host=be pid="" ;;
    haproxy) addr=127.0.0.1:$hp_port host=be pid=$hp ;;
    *) addr=$out host=$name.shop pid=$gw ;;
    esac
    [[ -n $pid ]] && before=$(cpu_ticks "$pid")
    res=$(taskset -c 0 wrk -t1 -c32 -d"${secs}s" -H "Host: $host" "http://$addr/x")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
    reqs=$(awk '/requests in/ {print $1}' <<<"$res")
    if [[ -n $pid ]]; then
        after=$(cpu_ticks "$pid")
        echo "$rps $(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
    else
        echo "$rps -"
    fi
}

targets=(direct plain r10 r50 haproxy)
for t in "${targets[@]}"; do taskset -c 0 wrk -t1 -c32 -d2s -H "Host: $t.shop" "http://$out/x" >/dev/null; done
declare -A results
for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < ${#targets[@]}; i++)); do
        t=${targets[$(((i + r) % ${#targets[@]}))]}
        results[$t]+="$(run "$t")"$'\n'
    done
done

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
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
start_gateway valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.%p"
echo
echo "Instructions per request (callgrind, $count requests per service on 4 keep-alive connections, after as many to warm up):"
echo
echo "| path | instructions/req | vs no route |"
echo "|---|---:|---:|"
plain_ir=""
for t in plain r10 r50; do
    # Four keep-alive connections (curl reuses its connection across the URLs it is given).
    for _ in $(seq $((count / 4))); do echo "url = \"http://$out/x\""; done >"$dir/urls"
    batch() {
        local c=()
        for _ in 1 2 3 4; do
            curl -fsS -H "Host: $t.shop" -K "$dir/urls" >/dev/null &
            c+=($!)
        done
        wait "${c[@]}"
    }
    batch
    callgrind_control -z "$gw" >/dev/null 2>&1
    callgrind_control -i on "$gw" >/dev/null 2>&1
    batch
    callgrind_control -i off "$gw" >/dev/null 2>&1
    callgrind_control -d "$gw" >/dev/null 2>&1
    sleep 0.5
    file=$(find "$dir" -name 'cg.*.*' | sort -t. -k3 -n | tail -1)
    [[ -n $file ]] || { echo "callgrind wrote no dump" >&2; exit 1; }
    ir=$(awk '/^totals:/ {s += $2} END {print s + 0}' "$file")
    per=$((ir / count))
    [[ -z $plain_ir ]] && plain_ir=$per
    rel=$(awk -v p="$per" -v b="$plain_ir" 'BEGIN {printf "%+.1f %%", (p / b - 1) * 100}')
    printf '| %s | %d | %s |\n' "$t" "$per" "$rel"
    if [[ -n ${KEEP_CALLGRIND:-} ]]; then cp "$file" "$KEEP_CALLGRIND/callgrind.$t"; fi
    rm -f "$file"
done
