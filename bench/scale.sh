#!/usr/bin/env bash
# bench/scale.sh [CLUSTERS] [SERVICES] [SECONDS]: the federation at mesh scale, simulated by one
# load process instead of a thousand gateways.
#
# Three federation nodes on CPU 1 (fsync on every node); one load process on CPU 0 that registers
# CLUSTERS (1000) clusters and exports SERVICES (10000) services from three clusters each, then for
# SECONDS (60) renews every cluster's lease at the gateway's rate (TTL 5 s, every TTL/3) and
# publishes a health change per cluster every 10 s, as gateways do; and one real gateway
# (cluster b, on CPU 0, following a follower) watching it all. Prints: what the setup and the
# steady load cost (writes/s, Raft entries/s, write latency, the nodes' CPU), the gateway's RSS
# and routing-snapshot rebuilds (count, mean, p99 bucket), propagation of a new export to b under
# that load, the snapshot size and build time, and a follower's restart and catch-up time.
set -euo pipefail

clusters=${1:-1000}
services=${2:-10000}
seconds=${3:-60}
cd "$(dirname "$0")/.."
export WARDEN_ADMIN_TOKEN=bench-scale-token-0123456789
# shellcheck source=bench/common.sh
source bench/common.sh

# Node 1 (and the echo backend every simulated cluster names as its gateway), with info logs for
# the snapshot lines.
WARDEN_LOG=info,openraft=warn start_node_and_backend
node_pids=("${pids[0]}")
follow=""
for i in 2 3; do
    WARDEN_LOG=info,openraft=warn add_node "$i"
    node_pids+=("$n_pid")
    [[ $i == 2 ]] && follow=$n_api
    if [[ $i == 3 ]]; then
        node3_api=$n_api
        node3_raft=$n_raft
    fi
done
curl -fsS -X POST -H "authorization: Bearer $WARDEN_ADMIN_TOKEN" -H 'content-type: application/json' \
    -d "{\"name\":\"x\",\"region\":\"r2\",\"zone\":\"z2\",\"gateway\":\"$backend\",\"trust_domain\":\"x.bench\"}" \
    "http://$api/api/v1/clusters" >/dev/null
gateway_config "" >"$dir/gw.toml"
sed -i "/^\[\[services\]\]/,\$d" "$dir/gw.toml"
sed -i -e 's/name = "east"/name = "b"/; s/trust_domain = "east.bench"/trust_domain = "b.bench"/' \
    -e "s|endpoints = \\[\"http://$api\"\\]|endpoints = [\"http://$follow\"]|" "$dir/gw.toml"
b_ready() { curl -fsS -o /dev/null "http://$admin/readyz" 2>/dev/null; }
start_gateway b_ready taskset -c 0

# Node 3 is restarted at the end: its config and data directory stay.
node3_pid=${node_pids[2]}
CLUSTERS=$clusters SERVICES=$services SECONDS_=$seconds NODE_PIDS="${node_pids[*]}" GW_PID=$gw \
    NODE_APIS="$api $follow $node3_api" ADMIN=$admin HZ=$hz \
    taskset -c 0 python3 bench/scale_load.py "$api" "$out"

# A follower's restart: stop node 3, write on, start it again and time until it answers ready and
# holds the leader's revision.
kill "$node3_pid"
wait "$node3_pid" 2>/dev/null || true
curl -fsS -X PUT -H "authorization: Bearer $WARDEN_ADMIN_TOKEN" -H 'content-type: application/json' \
    -d '{"ports":[{"name":"http","port":80,"protocol":"http"}],"healthy_endpoints":1}' \
    "http://$api/api/v1/clusters/x/services/shop/after-restart" >/dev/null
# The same addresses as before: they are what the membership holds.
sed -i -e "s|^api_listen = .*|api_listen = \"$node3_api\"|" -e "s|^raft_listen = .*|raft_listen = \"$node3_raft\"|" "$dir/node3.toml"
t0=$(date +%s%N)
WARDEN_LOG=info,openraft=warn taskset -c 1 "$bin" federation --config "$dir/node3.toml" \
    >"$dir/node3b.out" 2>"$dir/node3b.log" &
pids+=($!)
n3=$(addr_of "$dir/node3b.out" api)
python3 - "$api" "$n3" <<'PY' || { tail -5 "$dir/node3b.log"; exit 1; }
import http.client, json, sys, time
def status(addr):
    c = http.client.HTTPConnection(addr, timeout=5); c.request("GET", "/api/v1/mesh/status")
    r = c.getresponse(); return json.loads(r.read()) if r.status == 200 else {}
want = status(sys.argv[1])["revision"]
t0 = time.monotonic()
while time.monotonic() - t0 < 120:
    try:
        if status(sys.argv[2]).get("revision", 0) >= want: break
    except OSError:
        pass
    time.sleep(0.02)
else:
    raise SystemExit("the restarted follower did not reach revision %d in 120 s" % want)
PY
t1=$(date +%s%N)
echo "| follower restart: process start -> holds the leader's revision | $(((t1 - t0) / 1000000)) ms |"
# The last snapshot a node built (logs without colour codes).
snap=$(sed 's/\x1b\[[0-9;]*m//g' "$dir"/node*.log | grep -o "snapshot built.*" | tail -1 || true)
echo "| last snapshot built | ${snap:-none (fewer than raft.snapshot_after_logs entries)} |"
