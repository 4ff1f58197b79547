# bench/common.sh: what the side-by-side benchmarks share (sourced, not run): installing the
# tools, starting a federation node, an echo backend and HAProxy on CPU 1, a gateway under a
# given command, wrk runs pinned to CPU 0 with the proxy's CPU per request, callgrind counts,
# and medians.
# shellcheck shell=bash
# Variables set here are read by the scripts that source it, and theirs (secs) here.
# shellcheck disable=SC2034,SC2154

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
command -v valgrind >/dev/null || need+=(valgrind)
command -v taskset >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
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

# A federation node ($api) and an echo backend ($backend), both on CPU 1.
start_node_and_backend() {
    printf 'node_id = 1\ndata_dir = "%s/node"\napi_listen = "127.0.0.1:0"\nraft_listen = "127.0.0.1:0"\nbootstrap = true\n' \
        "$dir" >"$dir/node.toml"
    taskset -c 1 "$bin" federation --config "$dir/node.toml" >"$dir/node.out" 2>"$dir/node.log" &
    pids+=($!)
    api=$(addr_of "$dir/node.out" api)
    taskset -c 1 "$bin" echo --name be --listen 127.0.0.1:0 >"$dir/be.out" 2>&1 &
    pids+=($!)
    backend=$(addr_of "$dir/be.out" addr)
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://$api/readyz" 2>/dev/null && break
        sleep 0.1
    done
}

# Starts federation node ID on CPU 1 (logs at $WARDEN_LOG) and adds it to the federation at
# $api as a voter: $n_api, $n_raft and $n_pid are its addresses and PID.
add_node() {
    local i=$1
    printf 'node_id = %d\ndata_dir = "%s/node%d"\napi_listen = "127.0.0.1:0"\nraft_listen = "127.0.0.1:0"\n' \
        "$i" "$dir" "$i" >"$dir/node$i.toml"
    taskset -c 1 "$bin" federation --config "$dir/node$i.toml" >"$dir/node$i.out" 2>"$dir/node$i.log" &
    n_pid=$!
    pids+=("$n_pid")
    n_api=$(addr_of "$dir/node$i.out" api)
    n_raft=$(addr_of "$dir/node$i.out" raft)
    curl -fsS -X POST -H "authorization: Bearer $WARDEN_ADMIN_TOKEN" -H 'content-type: application/json' \
        -d "{\"id\":$i,\"raft_addr\":\"$n_raft\",\"api_addr\":\"$n_api\"}" \
        "http://$api/api/v1/federation/members" >/dev/null
}

# The gateway's config: cluster east with shop/NAME on the backend for each NAME given.
gateway_config() {
    printf '[cluster]\nname = "east"\nregion = "r1"\nzone = "z1"\ntrust_domain = "east.bench"\n'
    printf '[federation]\nendpoints = ["http://%s"]\n' "$api"
    printf '[listeners]\noutbound = "127.0.0.1:0"\neastwest = "127.0.0.1:0"\nadmin = "127.0.0.1:0"\n'
    printf '[discovery]\nallow_loopback_endpoints = true\n[health]\ninterval_ms = 30000\n'
    for s in "$@"; do
        printf '[[services]]\nnamespace = "shop"\nname = "%s"\nendpoints = ["%s"]\nprobe = "/healthz"\n' "$s" "$backend"
    done
}

# PUT BODY to the federation API PATH with the admin token.
api_put() {
    curl -fsS -X PUT -H "authorization: Bearer $WARDEN_ADMIN_TOKEN" -H 'content-type: application/json' \
        -d "$2" "http://$api$1" >/dev/null
}

# Starts the gateway under CMD... as $gw ($out, $admin), then waits until the function READY
# succeeds.
start_gateway() {
    local ready=$1
    shift
    "$@" "$bin" gateway --config "$dir/gw.toml" >"$dir/gw.out" 2>"$dir/gw.log" &
    gw=$!
    pids+=("$gw")
    out=$(addr_of "$dir/gw.out" outbound)
    admin=$(addr_of "$dir/gw.out" admin)
    for _ in $(seq 600); do
        "$ready" && return
        sleep 0.1
    done
    echo "the gateway did not become ready ($ready)" >&2
    exit 1
}

# HAProxy (HTTP mode, keep-alive) on CPU 1 in front of the backend: $hp, port $hp_port.
start_haproxy() {
    hp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf 'global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\nfrontend fe\n  bind 127.0.0.1:%s\n  default_backend be\nbackend be\n  server s1 %s\n' \
        "$hp_port" "$backend" >"$dir/haproxy.cfg"
    taskset -c 1 haproxy -f "$dir/haproxy.cfg" -db >/dev/null 2>"$dir/haproxy.log" &
    hp=$!
    pids+=("$hp")
    sleep 0.5
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One wrk run (1 thread, 32 connections, $secs seconds, on CPU 0) against ADDR with HOST and
# extra wrk ARGS...; prints "req/s µs-CPU-per-request" for PID ("-" without one).
wrk_run() {
    local addr=$1 host=$2 pid=$3 before=0 after res rps reqs
    shift 3
    [[ -n $pid ]] && before=$(cpu_ticks "$pid")
    res=$(taskset -c 0 wrk -t1 -c32 -d"${secs}s" -H "Host: $host" "$@" "http://$addr/x")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
    reqs=$(awk '/requests in/ {print $1}' <<<"$res")
    if [[ -n $pid ]]; then
        after=$(cpu_ticks "$pid")
        echo "$rps $(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
    else
        echo "$rps -"
    fi
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# Instructions the gateway $gw (under callgrind with --instr-atstart=no, dumping to
# $dir/cg.*) spends per request: COUNT requests on 4 keep-alive curl connections with curl
# ARGS..., after as many to warm up. KEEP_CALLGRIND=DIR keeps each dump.
instructions_per_request() {
    local count=$1 file ir
    shift
    for _ in $(seq $((count / 4))); do echo "url = \"http://$out/x\""; done >"$dir/urls"
    batch() {
        local c=()
        for _ in 1 2 3 4; do
            curl -fsS "$@" -K "$dir/urls" >/dev/null &
            c+=($!)
        done
        wait "${c[@]}"
    }
    batch "$@"
    callgrind_control -z "$gw" >/dev/null 2>&1
    callgrind_control -i on "$gw" >/dev/null 2>&1
    batch "$@"
    callgrind_control -i off "$gw" >/dev/null 2>&1
    callgrind_control -d "$gw" >/dev/null 2>&1
    sleep 0.5
    file=$(find "$dir" -name 'cg.*.*' | sort -t. -k3 -n | tail -1)
    [[ -n $file ]] || { echo "callgrind wrote no dump" >&2; exit 1; }
    ir=$(awk '/^totals:/ {s += $2} END {print s + 0}' "$file")
    if [[ -n ${KEEP_CALLGRIND:-} ]]; then cp "$file" "$KEEP_CALLGRIND/"; fi
    rm -f "$file"
    echo $((ir / count))
}
