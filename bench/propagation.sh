#!/usr/bin/env bash
# bench/propagation.sh [TRIALS] [NODES]: how long an export written for cluster x takes to change what
# cluster b's gateway does with a request — through the real store write, the watch stream, the
# catalog view and the routing rebuild.
#
# NODES (3, or 1) federation nodes — writes go to the leader, gateway b follows a follower —,
# cluster b's gateway (a real process), cluster x registered through the API
# with an echo server as its east-west address (lease renewed by the bench). Per trial: a new
# service shop/pN is exported for x (PUT, admin token), and a client polls b's outbound listener
# with `Host: pN.shop` every ~0.5 ms until b answers 200 (it routes the request to x); then
# the export is set to 0 healthy endpoints and the client polls until b answers `no_healthy_upstream`
# again (a health change); then a traffic policy on shop/pol (exported by x and by y) has its
# failover order turned round and the client polls until b's answers come from the new first (a
# policy change). Prints p50/p99/max of the three over TRIALS trials.
set -euo pipefail

trials=${1:-100}
nodes=${2:-3}
cd "$(dirname "$0")/.."
export WARDEN_ADMIN_TOKEN=bench-propagation-token-0123456789
# shellcheck source=bench/common.sh
source bench/common.sh

start_node_and_backend
# NODES=3: two more members; gateway b follows node 2 (a follower), so every change crosses the
# quorum commit and replication before b sees it.
follow=$api
if ((nodes == 3)); then
    for i in 2 3; do
        add_node "$i"
        [[ $i == 2 ]] && follow=$n_api
    done
fi
# Cluster x is written through the API only, with the echo backend as its east-west address (it
# answers the forwarded HTTP/2 request itself: a 200 means b routed to x); its lease is renewed
# between trials (never inside a timed window).
for c in x y; do
    curl -fsS -X POST -H "authorization: Bearer $WARDEN_ADMIN_TOKEN" -H 'content-type: application/json' \
        -d "{\"name\":\"$c\",\"region\":\"r-$c\",\"zone\":\"z-$c\",\"gateway\":\"$backend\",\"trust_domain\":\"$c.bench\"}" \
        "http://$api/api/v1/clusters" >/dev/null
done
gateway_config "" >"$dir/gw.toml"
sed -i "/^\[\[services\]\]/,\$d" "$dir/gw.toml" # no local service
sed -i -e 's/name = "east"/name = "b"/; s/trust_domain = "east.bench"/trust_domain = "b.bench"/' \
    -e "s|endpoints = \\[\"http://$api\"\\]|endpoints = [\"http://$follow\"]|" "$dir/gw.toml"
b_ready() { curl -fsS -o /dev/null "http://$admin/readyz" 2>/dev/null; }
start_gateway b_ready taskset -c 1

NODES=$nodes python3 - "$api" "$out" "$trials" <<'PY'
import http.client, json, os, sys, time
api, out, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
head = {"authorization": "Bearer " + os.environ["WARDEN_ADMIN_TOKEN"], "content-type": "application/json"}
ctl = http.client.HTTPConnection(api, timeout=5)
probe = http.client.HTTPConnection(out, timeout=5)

def put(path, body):
    ctl.request("PUT", path, json.dumps(body), head)
    r = ctl.getresponse(); r.read()
    assert 200 <= r.status < 300, (path, r.status)

def cause(host):
    probe.request("GET", "/x", headers={"host": host})
    r = probe.getresponse(); r.read()
    return r.getheader("x-warden-error") or str(r.status)

def served(host):
    """The cluster b's answer came from (b stamps it), or the error."""
    probe.request("GET", "/x", headers={"host": host})
    r = probe.getresponse(); r.read()
    return r.getheader("x-warden-cluster") or r.getheader("x-warden-error") or str(r.status)

renewed = [0.0]
def renew():
    if time.monotonic() - renewed[0] > 5:
        for c in ("x", "y"):
            put("/api/v1/clusters/%s/lease" % c, {"ttl_ms": 30000})
        renewed[0] = time.monotonic()

def until(host, done, limit=10.0, probe_fn=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if done((probe_fn or cause)(host)):
            return time.monotonic()
        time.sleep(0.0005)
    raise SystemExit("%s: not propagated within %.0f s" % (host, limit))

export, health, policy = [], [], []
renew()
# Policy flips: shop/pol is exported by x and by y; a traffic policy's failover order says which
# one b sends to, and each trial turns it round.
for c in ("x", "y"):
    put("/api/v1/clusters/%s/services/shop/pol" % c, {"ports": [{"name": "http", "port": 80, "protocol": "http"}], "healthy_endpoints": 1})
put("/api/v1/traffic/policies/pol", {"service": "shop/pol", "failover_order": ["x", "y"]})
until("pol.shop", lambda c: c == "x", probe_fn=served)
time.sleep(0.5)
for i in range(trials):
    renew()
    host = "p%d.shop" % i
    path = "/api/v1/clusters/x/services/shop/p%d" % i
    assert cause(host) == "unknown_service"
    t0 = time.monotonic()
    put(path, {"ports": [{"name": "http", "port": 80, "protocol": "http"}], "healthy_endpoints": 1})
    export.append((until(host, lambda c: c == "200") - t0) * 1e3)
    t0 = time.monotonic()
    put(path, {"ports": [{"name": "http", "port": 80, "protocol": "http"}], "healthy_endpoints": 0})
    health.append((until(host, lambda c: c == "no_healthy_upstream") - t0) * 1e3)
    first, second = ("y", "x") if i % 2 == 0 else ("x", "y")
    t0 = time.monotonic()
    put("/api/v1/traffic/policies/pol", {"service": "shop/pol", "failover_order": [first, second]})
    policy.append((until("pol.shop", lambda c: c == first, probe_fn=served) - t0) * 1e3)

def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, max(0, int(p * len(v) + 0.999) - 1))]
print()
print("Propagation to another cluster's gateway (%d trials, %s federation nodes; store write -> watch -> routing rebuild):" % (trials, os.environ.get("NODES", "?")))
print()
print("| change written for cluster x | p50 ms | p99 ms | max ms |")
print("|---|---:|---:|---:|")
for name, v in [("new export -> b routes to x", export), ("healthy endpoints 1 -> 0 -> b stops routing to x", health),
                ("traffic policy failover order turned round -> b routes to the new first", policy)]:
    print("| %s | %.1f | %.1f | %.1f |" % (name, pct(v, 0.5), pct(v, 0.99), max(v)))
PY
