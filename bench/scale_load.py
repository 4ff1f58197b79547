"""The load process of bench/scale.sh: a mesh of CLUSTERS clusters simulated against a real
federation, and what it costs. Run by bench/scale.sh (arguments: API address of node 1, the
outbound address of gateway b); everything else comes in the environment."""
import http.client, json, os, sys, threading, time

api, gw_out = sys.argv[1], sys.argv[2]
N, S, SECS = int(os.environ["CLUSTERS"]), int(os.environ["SERVICES"]), int(os.environ["SECONDS_"])
NODE_PIDS = [int(p) for p in os.environ["NODE_PIDS"].split()]
NODE_APIS = os.environ["NODE_APIS"].split()
GW_PID, ADMIN, HZ = int(os.environ["GW_PID"]), os.environ["ADMIN"], int(os.environ["HZ"])
HEAD = {"authorization": "Bearer " + os.environ["WARDEN_ADMIN_TOKEN"], "content-type": "application/json"}
TTL_MS, PUBLISH_EVERY_S, THREADS = 5000, 10.0, 32
BACKEND = None
PORTS = [{"name": "http", "port": 8080, "protocol": "http"}]

def name(i): return "c%04d" % i
def svc(j): return ("ns%02d" % (j % 100), "s%05d" % j)
def exporters(j): return [(j + k) % N for k in range(3)]

def pct(v, p):
    if not v: return float("nan")
    v = sorted(v); return v[min(len(v) - 1, max(0, int(p * len(v) + 0.999) - 1))]

class Conn:
    """One keep-alive connection to the leader's API, re-made when it breaks."""
    def __init__(self, addr): self.addr, self.c = addr, None
    def send(self, method, path, body):
        for attempt in range(3):
            try:
                if self.c is None: self.c = http.client.HTTPConnection(self.addr, timeout=30)
                self.c.request(method, path, json.dumps(body), HEAD)
                r = self.c.getresponse(); r.read()
                return r.status
            except (OSError, http.client.HTTPException):
                self.c = None
        return 0

def ticks(pid):
    with open("/proc/%d/stat" % pid) as f: p = f.read().rsplit(")", 1)[1].split()
    return int(p[11]) + int(p[12])

def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"): return int(l.split()[1]) / 1024

def get(addr, path):
    c = http.client.HTTPConnection(addr, timeout=10); c.request("GET", path)
    r = c.getresponse(); return r.read().decode()

def metric(text, name):
    total = 0.0
    for l in text.splitlines():
        if l.startswith(name + " ") or l.startswith(name + "{"):
            total += float(l.rsplit(" ", 1)[1])
    return total

def raft_counters():
    e = w = 0.0
    for a in NODE_APIS:
        t = get(a, "/metrics")
        e += metric(t, "warden_raft_write_proposals_total"); w += metric(t, "warden_raft_proposed_writes_total")
    return e, w

def rebuilds():
    t = get(ADMIN, "/metrics")
    buckets = []
    for l in t.splitlines():
        if l.startswith("warden_routing_rebuild_seconds_bucket"):
            le = l.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(l.rsplit(" ", 1)[1])))
    return metric(t, "warden_routing_rebuild_seconds_count"), metric(t, "warden_routing_rebuild_seconds_sum"), buckets

def run_parallel(jobs, work):
    """Runs work(conn, job) for every job over THREADS connections; returns (latencies, errors)."""
    lock, lat, err, it = threading.Lock(), [], [0], iter(jobs)
    def worker():
        c = Conn(api)
        while True:
            with lock:
                job = next(it, None)
            if job is None: return
            t = time.monotonic(); st = work(c, job); d = time.monotonic() - t
            with lock:
                if 200 <= st < 300: lat.append(d)
                else: err[0] += 1
    ts = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in ts: t.start()
    for t in ts: t.join()
    return lat, err[0]

backend = json.loads(get(api, "/api/v1/clusters/x"))["gateway"]
print("\nbench/scale.sh: %d clusters, %d services (%d exports), 3 nodes, 1 gateway watching\n" % (N, S, 3 * S))
print("| phase | figure |")
print("|---|---|")
t0 = time.monotonic()
lat, err = run_parallel(range(N), lambda c, i: c.send("POST", "/api/v1/clusters", {
    "name": name(i), "region": "r%d" % (i % 10), "zone": "z%d" % (i % 30), "gateway": backend,
    "trust_domain": name(i) + ".bench"}))
print("| register %d clusters | %.1f s, %.0f writes/s, p99 %.1f ms, %d errors |" % (N, time.monotonic() - t0, N / (time.monotonic() - t0), pct(lat, .99) * 1e3, err))
t0 = time.monotonic()
jobs = [(j, i) for j in range(S) for i in exporters(j)]
lat, err = run_parallel(jobs, lambda c, job: c.send("PUT", "/api/v1/clusters/%s/services/%s/%s" % ((name(job[1]),) + svc(job[0])),
    {"ports": PORTS, "healthy_endpoints": 2}))
el = time.monotonic() - t0
print("| export %d services from 3 clusters each | %.1f s, %.0f writes/s, p99 %.1f ms, %d errors |" % (S, el, len(jobs) / el, pct(lat, .99) * 1e3, err))

# Steady state: every cluster renews every TTL/3 and publishes one health change every 10 s.
stop = time.monotonic() + SECS + 15
steady = {"lease": [], "health": [], "err": 0, "late": 0}
lock = threading.Lock()
def steady_worker(k):
    c = Conn(api)
    mine = list(range(k, N, THREADS))
    # Spread each cluster's first renewal and publication over the period.
    due = []
    for i in mine:
        due.append([time.monotonic() + (i / N) * TTL_MS / 3000, "lease", i, 0])
        due.append([time.monotonic() + (i / N) * PUBLISH_EVERY_S, "health", i, 0])
    while True:
        due.sort(key=lambda d: d[0])
        d = due[0]
        now = time.monotonic()
        if d[0] > stop: return
        if d[0] > now: time.sleep(d[0] - now)
        elif now - d[0] > 1.0:
            with lock: steady["late"] += 1
        t = time.monotonic()
        if d[1] == "lease":
            st = c.send("PUT", "/api/v1/clusters/%s/lease" % name(d[2]), {"ttl_ms": TTL_MS})
            d[0] += TTL_MS / 3000
        else:
            j = (d[2] - (d[3] % 3)) % N  # a service this cluster exports
            st = c.send("PUT", "/api/v1/clusters/%s/services/%s/%s" % ((name(d[2]),) + svc(j)),
                        {"ports": PORTS, "healthy_endpoints": 2 + d[3] % 2})
            d[3] += 1
            d[0] += PUBLISH_EVERY_S
        dt = time.monotonic() - t
        with lock:
            if 200 <= st < 300: steady[d[1]].append(dt)
            else: steady["err"] += 1
threads = [threading.Thread(target=steady_worker, args=(k,)) for k in range(THREADS)]
for t in threads: t.start()
time.sleep(15)  # warm up: every cluster renewed a few times
cpu0 = sum(ticks(p) for p in NODE_PIDS); gcpu0 = ticks(GW_PID)
e0, w0 = raft_counters(); rb0 = rebuilds()
n_lease0, n_health0 = len(steady["lease"]), len(steady["health"])
t0 = time.monotonic()

# Propagation under the load: a new export of cluster x until gateway b routes to it.
probe = http.client.HTTPConnection(gw_out, timeout=5); ctl = Conn(api)
def cause(host):
    probe.request("GET", "/x", headers={"host": host}); r = probe.getresponse(); r.read()
    return r.getheader("x-warden-error") or str(r.status)
prop = []
trials = missed = 0
while time.monotonic() - t0 < SECS - 2 and trials < 100:
    trials += 1
    ctl.send("PUT", "/api/v1/clusters/x/lease", {"ttl_ms": 60000})
    host = "q%d.shop" % trials
    ts = time.monotonic()
    ctl.send("PUT", "/api/v1/clusters/x/services/shop/q%d" % trials, {"ports": PORTS, "healthy_endpoints": 1})
    while cause(host) != "200":
        if time.monotonic() - ts > 10:
            break
        time.sleep(0.0005)
    else:
        prop.append(time.monotonic() - ts)
    if time.monotonic() - ts > 10:
        missed += 1
        n_, s_, _ = rebuilds()
        print("| q%d not routed within 10 s | gateway at revision %s; %d rebuilds, %.0f ms in all so far |" % (
            trials, metric(get(ADMIN, "/metrics"), 'warden_federation_revision{kind="revision"}'), n_, s_ * 1e3))
    time.sleep(max(0, (SECS - 2) / 100 - (time.monotonic() - ts)))
el = time.monotonic() - t0
cpu1 = sum(ticks(p) for p in NODE_PIDS); gcpu1 = ticks(GW_PID)
e1, w1 = raft_counters(); rb1 = rebuilds()
leases, health = steady["lease"][n_lease0:], steady["health"][n_health0:]
for t in threads: t.join()

print("| steady load offered | %.0f lease renewals/s + %.0f health publications/s (%d writers) |" % (N / (TTL_MS / 3000), N / PUBLISH_EVERY_S, THREADS))
print("| steady load served (%.0f s measured) | %.0f renewals/s (p50 %.1f, p99 %.1f ms) + %.0f publications/s (p99 %.1f ms); %d errors, %d sends over 1 s late |" % (
    el, len(leases) / el, pct(leases, .5) * 1e3, pct(leases, .99) * 1e3, len(health) / el, pct(health, .99) * 1e3, steady["err"], steady["late"]))
print("| Raft entries/s for API writes (writes per entry) | %.0f (%.1f) |" % ((e1 - e0) / el, (w1 - w0) / max(1, e1 - e0)))
print("| CPU of the 3 nodes together | %.2f cores |" % ((cpu1 - cpu0) / HZ / el))
n, s_, buckets = rb1[0] - rb0[0], rb1[1] - rb0[1], [(le, c - c0) for (le, c), (_, c0) in zip(rb1[2], rb0[2])]
p99 = next((le for le, c in buckets if c >= 0.99 * n), float("nan")) if n else float("nan")
print("| gateway b: routing rebuilds | %.1f/s, mean %.1f ms, p99 <= %s ms |" % (n / el, s_ / max(n, 1) * 1e3, "%.1f" % (p99 * 1e3)))
print("| gateway b: CPU, RSS | %.2f cores, %.0f MiB |" % ((gcpu1 - gcpu0) / HZ / el, rss_mib(GW_PID)))
print("| propagation under load: new export of x -> b routes to it (%d trials, %d not within 10 s) | p50 %.1f ms, p99 %.1f ms, max %.1f ms |" % (
    len(prop), missed, pct(prop, .5) * 1e3, pct(prop, .99) * 1e3, max(prop or [float("nan")]) * 1e3))
for i, a in enumerate(NODE_APIS):
    print("| node %d RSS | %.0f MiB |" % (i + 1, rss_mib(NODE_PIDS[i])))
