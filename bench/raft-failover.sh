#!/usr/bin/env bash
# bench/raft-failover.sh [KILLS] [HEARTBEAT_MS] [ELECTION_MIN_MS] [ELECTION_MAX_MS]: how long the
# federation cannot take writes when its leader is SIGKILLed, KILLS times in a row.
# SIGNAL=TERM stops the leader gracefully instead (a rolling restart: it hands leadership over
# before it exits). KEEP=DIR keeps the nodes' logs and the writer's outcomes in DIR; WARDEN_LOG
# sets their log filter (default warn; `info,openraft=info` shows each vote and why it was refused).
#
# Three `warden federation` processes on loopback (fsync'd logs), the Raft timings given (the
# defaults when omitted). A writer process sends export upserts one at a time, round-robin over
# the live nodes (a follower forwards to the leader), with a 300 ms timeout per attempt, and logs
# each outcome. Per kill: the time from the SIGKILL of the leader to the next acknowledged
# write (*write gap*) and to the first node reporting itself leader (*elected*); then the killed
# node is restarted on the same addresses and given 3 s to catch up. At the end the Raft term
# says how many elections happened beyond one per kill (split votes, or spurious elections).
set -euo pipefail

kills=${1:-20}
hb=${2:-}
emin=${3:-}
emax=${4:-}
signal=${SIGNAL:-KILL}
[[ $signal == KILL || $signal == TERM ]] || { echo "SIGNAL must be KILL or TERM" >&2; exit 2; }
cd "$(dirname "$0")/.."
export WARDEN_ADMIN_TOKEN=bench-raft-failover-token-0123456789 WARDEN_LOG=${WARDEN_LOG:-warn}
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
cargo build --release -q
bin=$PWD/target/release/warden
dir=$(mktemp -d)
declare -A pid
cleanup() {
    for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -n ${writer:-} ]]; then kill "$writer" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    [[ -n ${KEEP:-} ]] && cp -r "$dir" "$KEEP"
    rm -rf "$dir"
}
trap cleanup EXIT
trap "exit 130" INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A api raft
for i in 1 2 3; do
    api[$i]=127.0.0.1:$(free_port)
    raft[$i]=127.0.0.1:$(free_port)
    {
        printf 'node_id = %d\ndata_dir = "%s/node%d"\napi_listen = "%s"\nraft_listen = "%s"\n' \
            "$i" "$dir" "$i" "${api[$i]}" "${raft[$i]}"
        [[ $i == 1 ]] && printf 'bootstrap = true\n'
        printf '[raft]\n'
        [[ -n $hb ]] && printf 'heartbeat_ms = %s\n' "$hb"
        [[ -n $emin ]] && printf 'election_timeout_min_ms = %s\n' "$emin"
        [[ -n $emax ]] && printf 'election_timeout_max_ms = %s\n' "$emax"
    } >"$dir/node$i.toml"
done
start() {
    "$bin" federation --config "$dir/node$1.toml" >>"$dir/node$1.out" 2>>"$dir/node$1.log" &
    pid[$1]=$!
}
status() { curl -fsS -m 1 "http://${api[$1]}/api/v1/mesh/status" 2>/dev/null || true; }
leader() {
    local i
    for i in 1 2 3; do
        [[ -n ${pid[$i]:-} ]] || continue
        if status "$i" | grep -q '"state":"Leader"'; then
            echo "$i"
            return
        fi
    done
}
term() { status "$1" | grep -o '"term":[0-9]*' | cut -d: -f2; }
wait_leader() {
    for _ in $(seq 300); do
        l=$(leader)
        [[ -n $l ]] && return
        sleep 0.05
    done
    echo "no leader" >&2
    exit 1
}
auth=(-H "authorization: Bearer $WARDEN_ADMIN_TOKEN" -H 'content-type: application/json')

start 1
wait_leader
for i in 2 3; do
    start "$i"
    sleep 0.5
    curl -fsS "${auth[@]}" -X POST -d "{\"id\":$i,\"raft_addr\":\"${raft[$i]}\",\"api_addr\":\"${api[$i]}\"}" \
        "http://${api[1]}/api/v1/federation/members" >/dev/null
done
curl -fsS "${auth[@]}" -X POST -d '{"name":"bench","region":"r1","zone":"z1","gateway":"127.0.0.1:15008","trust_domain":"bench.test"}' \
    "http://${api[1]}/api/v1/clusters" >/dev/null
term0=$(term "$(leader)")

# The writer: one write at a time, "epoch-seconds ok|err" per attempt.
python3 - "$dir/stop" "${api[1]}" "${api[2]}" "${api[3]}" >"$dir/writes.log" <<'PY' &
import http.client, json, os, sys, time
stop, apis = sys.argv[1], sys.argv[2:]
body = json.dumps({"ports": [{"name": "http", "port": 80, "protocol": "http"}], "healthy_endpoints": 1})
head = {"authorization": "Bearer " + os.environ["WARDEN_ADMIN_TOKEN"], "content-type": "application/json"}
conns, i, n = {}, 0, 0
while not os.path.exists(stop) and n < 2_000_000:
    n += 1
    a = apis[i % len(apis)]
    ok = False
    try:
        c = conns.get(a) or http.client.HTTPConnection(a, timeout=0.3)
        conns[a] = c
        c.request("PUT", "/api/v1/clusters/bench/services/shop/s%d" % (n % 1000), body, head)
        r = c.getresponse()
        r.read()
        ok = 200 <= r.status < 300
    except Exception:
        conns.pop(a, None)
    if not ok:
        i += 1
    print("%.6f %s" % (time.time(), "ok" if ok else "err"), flush=True)
PY
writer=$!
sleep 2

echo "kill write_gap_ms elected_ms" >"$dir/kills"
for ((k = 1; k <= kills; k++)); do
    wait_leader
    victim=$l
    t0=$(date +%s.%N)
    kill -s "$signal" "${pid[$victim]}"
    wait "${pid[$victim]}" 2>/dev/null || true
    unset "pid[$victim]"
    elected=""
    for _ in $(seq 400); do
        if [[ -n $(leader) ]]; then
            elected=$(date +%s.%N)
            break
        fi
        sleep 0.01
    done
    # The next acknowledged write after the kill.
    gap=""
    for _ in $(seq 400); do
        gap=$(awk -v t="$t0" '$1 > t && $2 == "ok" {print $1; exit}' "$dir/writes.log")
        [[ -n $gap ]] && break
        sleep 0.02
    done
    awk -v k="$k" -v t="$t0" -v g="${gap:-0}" -v e="${elected:-0}" \
        'BEGIN { printf "%d %.0f %.0f\n", k, (g - t) * 1000, (e - t) * 1000 }' >>"$dir/kills"
    start "$victim"
    sleep 3
done
touch "$dir/stop"
wait "$writer" 2>/dev/null || true
writer=""
wait_leader
term1=$(term "$l")
writes=$(grep -c ' ok$' "$dir/writes.log" || true)

pct() { sort -g | awk -v p="$1" '{a[NR] = $1} END {i = int(p * NR + 0.999); if (i < 1) i = 1; print a[i]}'; }
echo
echo "Leader SIG$signal x $kills (heartbeat ${hb:-default} ms, election timeout ${emin:-default}-${emax:-default} ms; $writes writes acknowledged):"
echo
echo "| | p50 ms | p99 ms | max ms |"
echo "|---|---:|---:|---:|"
for c in 2 3; do
    name=$([[ $c == 2 ]] && echo "write gap (kill -> next acknowledged write)" || echo "elected (kill -> a node reports leader)")
    vals=$(tail -n +2 "$dir/kills" | cut -d' ' -f"$c")
    printf '| %s | %s | %s | %s |\n' "$name" "$(pct 0.5 <<<"$vals")" "$(pct 0.99 <<<"$vals")" "$(pct 1.0 <<<"$vals")"
done
echo
echo "Raft term: $term0 -> $term1 ($((term1 - term0)) elections for $kills kills)"
