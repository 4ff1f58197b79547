#!/usr/bin/env bash
# bench/gateway.sh [SECONDS] [ROUNDS] [RATE] [IDLE]: one gateway hop, and the cross-cluster
# hop, side by side with a direct connection, HAProxy and nginx, in one run.
#
# Every process is real and on loopback. The load generators (wrk for saturation, oha for a
# fixed rate) run on CPU 0 alone; the proxies, the echo backend and the federation node share
# CPU 1 (niced load generator, so it never takes the measured core). Rows:
#   direct        wrk/oha -> backend
#   warden        -> gateway `east` outbound (Host: cart.shop) -> backend (default telemetry:
#                 1% of traces recorded, the golden signals' sampler on)
#   warden-quiet  the same hop with telemetry off (no trace recorded, no signals sampler)
#   warden-traced the same hop with every trace recorded and exported over OTLP/HTTP to a sink
#                 (a second echo process on CPU 1, answering 200)
#   warden-2hop   -> gateway `west` -> pooled HTTP/2 east-west (plaintext, loopback) -> gateway
#                 `east` -> backend (remote.shop exists only in east)
#   warden-mtls   the same over mTLS (gateways `north` -> `south`, each with its own CA;
#                 secure.shop exists only in south)
#   haproxy       HTTP mode, keep-alive to the backend (http-reuse always)
#   nginx         one worker, proxy_http_version 1.1 + upstream keepalive
# Each round runs every row in a rotated order (interleaved); the tables show medians over
# ROUNDS rounds of SECONDS seconds:
#   saturation    wrk -t1 -c64: req/s, proxy CPU µs per request (utime+stime of the proxy's
#                 processes from /proc, both gateways for the two-hop rows), backend CPU µs per
#                 request, proxy RSS after the run
#   fixed rate    oha -q RATE -c64 --latency-correction (open loop, no coordinated omission):
#                 p50/p99 and what each row adds over direct (errors: non-200 answers and
#                 failed requests; requests still in flight when the run ends do not count)
# Then memory per 10,000 idle client connections: IDLE connections opened to each proxy (no
# request sent), RSS before and after, and the time until the proxy has accepted them all.
# Access logs are off in every proxy (Warden's `telemetry.access_log`, HAProxy without `log`,
# nginx `access_log off`); Warden's trace context, authorization, retries and limits stay on.
#
# Installs wrk, haproxy, nginx (apt-get) and oha (cargo install, into target/bench-tools) when
# missing. Prints Markdown tables; docs/benchmarks.md holds the latest.
set -euo pipefail

secs=${1:-8}
rounds=${2:-5}
rate=${3:-2000}
idle=${4:-8000}
cd "$(dirname "$0")/.."
export WARDEN_ADMIN_TOKEN=bench-gateway-token-0123456789
# shellcheck source=bench/common.sh
source bench/common.sh

command -v nginx >/dev/null || apt-get install -y -qq nginx >/dev/null
tools=$PWD/target/bench-tools
oha=$(command -v oha || echo "$tools/bin/oha")
if [[ ! -x $oha ]]; then
    cargo install oha --locked --quiet --root "$tools"
fi
ulimit -n "$(ulimit -Hn)"
load() { taskset -c 0 nice -n 5 "$@"; }

start_node_and_backend

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The config of gateway NAME (cluster NAME) with shop/SVC on the backend for each SVC, plus
# the TOML in $extra.
config() {
    local name=$1 s
    shift
    printf '[cluster]\nname = "%s"\nregion = "r1"\nzone = "z1"\ntrust_domain = "%s.bench"\n' "$name" "$name"
    printf '[federation]\nendpoints = ["http://%s"]\n' "$api"
    printf '[listeners]\noutbound = "127.0.0.1:0"\neastwest = "127.0.0.1:0"\nadmin = "127.0.0.1:0"\n'
    printf '[discovery]\nallow_loopback_endpoints = true\n[health]\ninterval_ms = 30000\n'
    printf '[telemetry]\naccess_log = false\n%s\n' "${telemetry:-}"
    printf '[limits]\nheader_read_timeout_ms = 300000\nmax_connections = 15000\n'
    printf '%s\n' "${extra:-}"
    for s in "$@"; do
        printf '[[services]]\nnamespace = "shop"\nname = "%s"\nendpoints = ["%s"]\nprobe = "/healthz"\n' "$s" "$backend"
    done
}

# A CA for trust domain NAME.bench and the gateway's certificate: the [tls] table.
tls_table() {
    local name=$1 d=$dir/pki-$1
    "$bin" trust init --trust-domain "$name.bench" --dir "$d" >/dev/null
    "$bin" trust issue --ca-dir "$d" --spiffe-id "spiffe://$name.bench/ns/warden/sa/gateway" --out "$d/gateway" >/dev/null
    printf '[tls]\ncert = "%s/gateway.pem"\nkey = "%s/gateway.key"\nca_bundle = "%s/ca.pem"\n' "$d" "$d" "$d"
}

declare -A pid addr
# Starts gateway NAME on CPU 1 from $dir/NAME.toml: pid[NAME], addr[NAME] (outbound).
gateway() {
    local name=$1
    taskset -c 1 "$bin" gateway --config "$dir/$name.toml" >"$dir/$name.out" 2>"$dir/$name.log" &
    pid[$name]=$!
    pids+=($!)
    addr[$name]=$(addr_of "$dir/$name.out" outbound)
}

# Waits until ADDR answers 200 for HOST.
ready() {
    for _ in $(seq 300); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" "http://$1/x" || true) == 200 ]] && return
        sleep 0.1
    done
    echo "$1 never answered for $2: $(curl -s -o /dev/null -w "%{http_code}" -H "Host: $2" "http://$1/x" || true)" >&2
    cat "$dir/haproxy.log" "$dir/nginx.stderr" >&2 2>/dev/null || true
    exit 1
}

config east cart remote >"$dir/east.toml"
telemetry=$'sample_per_million = 0\nrecent_requests = 0\nsignals = false' config quiet cart >"$dir/quiet.toml"
taskset -c 1 "$bin" echo --name otlp-sink --listen 127.0.0.1:0 >"$dir/sink.out" 2>&1 &
pids+=($!)
sink=$(addr_of "$dir/sink.out" addr)
telemetry='sample_per_million = 1000000' extra=$(printf '[telemetry.otlp]\nendpoint = "http://%s"' "$sink") \
    config traced cart >"$dir/traced.toml"
config west >"$dir/west.toml"
extra=$(tls_table south) config south secure >"$dir/south.toml"
extra=$(tls_table north) config north >"$dir/north.toml"
for g in east quiet traced west south north; do gateway "$g"; done
ready "${addr[east]}" cart.shop
ready "${addr[quiet]}" cart.shop
ready "${addr[traced]}" cart.shop
ready "${addr[west]}" remote.shop
ready "${addr[north]}" secure.shop

hp_port=$(free_port)
cat >"$dir/haproxy.cfg" <<HAPROXY
global
  maxconn 9500
defaults
  mode http
  timeout connect 2s
  timeout client 300s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$hp_port
  default_backend be
backend be
  http-reuse always
  server s1 $backend
HAPROXY
taskset -c 1 haproxy -f "$dir/haproxy.cfg" -db >/dev/null 2>"$dir/haproxy.log" &
pid[haproxy]=$!
pids+=($!)
addr[haproxy]=127.0.0.1:$hp_port

ng_port=$(free_port)
mkdir -p "$dir/nginx"
cat >"$dir/nginx.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile 19000;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 18000; }
http {
    access_log off;
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    upstream be { server $backend; keepalive 64; }
    server {
        listen 127.0.0.1:$ng_port;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
NGINX
taskset -c 1 nginx -c "$dir/nginx.conf" >/dev/null 2>"$dir/nginx.stderr" &
pid[nginx]=$!
pids+=($!)
addr[nginx]=127.0.0.1:$ng_port
addr[direct]=$backend
ready "${addr[haproxy]}" be
ready "${addr[nginx]}" be
backend_pid=${pids[1]} # start_node_and_backend: the node, then the backend

# The processes whose CPU and memory count for ROW.
procs() {
    case $1 in
    direct) ;;
    warden) echo "${pid[east]}" ;;
    warden-quiet) echo "${pid[quiet]}" ;;
    warden-traced) echo "${pid[traced]}" ;;
    warden-2hop) echo "${pid[west]} ${pid[east]}" ;;
    warden-mtls) echo "${pid[north]} ${pid[south]}" ;;
    haproxy) echo "${pid[haproxy]}" ;;
    nginx) echo "${pid[nginx]} $(pgrep -P "${pid[nginx]}" | tr '\n' ' ')" ;;
    esac
}
target() {
    case $1 in
    warden) echo "${addr[east]}" ;;
    warden-quiet) echo "${addr[quiet]}" ;;
    warden-traced) echo "${addr[traced]}" ;;
    warden-2hop) echo "${addr[west]}" ;;
    warden-mtls) echo "${addr[north]}" ;;
    *) echo "${addr[$1]}" ;;
    esac
}
host() {
    case $1 in
    warden | warden-quiet | warden-traced) echo cart.shop ;;
    warden-2hop) echo remote.shop ;;
    warden-mtls) echo secure.shop ;;
    *) echo be ;;
    esac
}
ticks() {
    local t=0 p
    for p in "$@"; do t=$((t + $(cpu_ticks "$p"))); done
    echo "$t"
}
rss_kib() {
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done
    echo "$t"
}

# Saturation: "req/s proxy-µs/req backend-µs/req rss-MiB" (proxy figures "-" for direct).
saturate() {
    local row=$1 ps before after bb ba res rps reqs
    read -ra ps <<<"$(procs "$row")"
    before=$(ticks "${ps[@]}")
    bb=$(ticks "$backend_pid")
    res=$(load wrk -t1 -c64 -d"${secs}s" -H "Host: $(host "$row")" "http://$(target "$row")/x")
    after=$(ticks "${ps[@]}")
    ba=$(ticks "$backend_pid")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
    reqs=$(awk '/requests in/ {print $1}' <<<"$res")
    if grep -q "Non-2xx\|Socket errors" <<<"$res"; then
        echo "$row: wrk saw errors: $(grep "Non-2xx\|Socket errors" <<<"$res")" >&2
    fi
    awk -v r="$rps" -v n="$reqs" -v p=$((after - before)) -v b=$((ba - bb)) -v hz="$hz" \
        -v rss="$([[ ${#ps[@]} -gt 0 ]] && rss_kib "${ps[@]}" || echo -)" -v has="${#ps[@]}" \
        'BEGIN { if (has > 0) printf "%s %.1f %.1f %.1f\n", r, p / hz * 1e6 / n, b / hz * 1e6 / n, rss / 1024;
                 else printf "%s - %.1f -\n", r, b / hz * 1e6 / n }'
}

# Fixed rate: "p50-ms p99-ms" (oha, open loop, latency correction).
fixed() {
    local row=$1 json
    json=$(load "$oha" --no-tui --output-format json -z "${secs}s" -q "$rate" -c 64 \
        --latency-correction -H "Host: $(host "$row")" "http://$(target "$row")/x")
    python3 -c 'import json,sys; d=json.load(sys.stdin); p=d["latencyPercentiles"]; s=d["statusCodeDistribution"];
bad=sum(v for k,v in s.items() if k!="200")+sum(v for k,v in d.get("errorDistribution",{}).items() if "deadline" not in k)
print("%.3f %.3f %d" % (p["p50"]*1e3, p["p99"]*1e3, bad))' <<<"$json"
}

rows=(direct warden warden-quiet warden-traced warden-2hop warden-mtls haproxy nginx)
for r in "${rows[@]}"; do secs=2 saturate "$r" >/dev/null; done
declare -A sat fix
for ((k = 0; k < rounds; k++)); do
    for ((i = 0; i < ${#rows[@]}; i++)); do
        r=${rows[$(((i + k) % ${#rows[@]}))]}
        sat[$r]+="$(saturate "$r")"$'\n'
        fix[$r]+="$(fixed "$r")"$'\n'
    done
    echo "round $((k + 1))/$rounds done" >&2
done

col() { cut -d' ' -f"$2" <<<"$1" | grep -v '^$' | grep -v -- '^-$' | median; }
declare -A med
for r in "${rows[@]}"; do
    med[$r, rps]=$(col "${sat[$r]}" 1)
    med[$r, cpu]=$(col "${sat[$r]}" 2 || true)
    med[$r, be]=$(col "${sat[$r]}" 3)
    med[$r, rss]=$(col "${sat[$r]}" 4 || true)
    med[$r, p50]=$(col "${fix[$r]}" 1)
    med[$r, p99]=$(col "${fix[$r]}" 2)
    med[$r, bad]=$(cut -d' ' -f3 <<<"${fix[$r]}" | grep -v '^$' | awk '{s += $1} END {print s + 0}')
done

echo
echo "Saturation and fixed rate, side by side ($rounds interleaved rounds of ${secs}s; wrk -t1 -c64 and oha -q $rate -c64 --latency-correction on CPU 0; proxies and backend on CPU 1; medians):"
echo
echo "| row | req/s | proxy µs CPU/req | CPU vs HAProxy | backend µs CPU/req | RSS MiB | p50 ms | p99 ms | added p50 µs | added p99 µs | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in "${rows[@]}"; do
    [[ $r == direct ]] && med[$r, cpu]=- && med[$r, rss]=-
    awk -v r="$r" -v rps="${med[$r, rps]}" -v cpu="${med[$r, cpu]:--}" -v hc="${med[haproxy, cpu]}" \
        -v be="${med[$r, be]}" -v rss="${med[$r, rss]:--}" -v p50="${med[$r, p50]}" -v p99="${med[$r, p99]}" \
        -v d50="${med[direct, p50]}" -v d99="${med[direct, p99]}" -v bad="${med[$r, bad]}" \
        'BEGIN { vs = (cpu == "-") ? "-" : sprintf("%.2fx", cpu / hc);
                 printf "| %s | %.0f | %s | %s | %.1f | %s | %.3f | %.3f | %+.0f | %+.0f | %d |\n",
                        r, rps, cpu, vs, be, rss, p50, p99, (p50 - d50) * 1000, (p99 - d99) * 1000, bad }'
done

echo
echo "Targets (ratios from this run):"
awk -v wc="${med[warden, cpu]}" -v hc="${med[haproxy, cpu]}" \
    -v w50="${med[warden, p50]}" -v w99="${med[warden, p99]}" \
    -v h50="${med[haproxy, p50]}" -v h99="${med[haproxy, p99]}" \
    -v t50="${med[warden-mtls, p50]}" -v t99="${med[warden-mtls, p99]}" \
    -v d50="${med[direct, p50]}" -v d99="${med[direct, p99]}" \
    -v wr="${med[warden, rss]}" -v hr="${med[haproxy, rss]}" \
    'function verdict(ok) { return ok ? "met" : "not met" }
     BEGIN {
       printf "- one hop, proxy CPU per request: %.2fx HAProxy (target <= 1.0x): %s\n", wc / hc, verdict(wc <= hc);
       printf "- one hop, added p50 at the fixed rate: %+.0f us vs HAProxy %+.0f us: %s\n", (w50 - d50) * 1e3, (h50 - d50) * 1e3, verdict(w50 <= h50);
       printf "- one hop, added p99 at the fixed rate: %+.0f us vs HAProxy %+.0f us: %s\n", (w99 - d99) * 1e3, (h99 - d99) * 1e3, verdict(w99 <= h99);
       printf "- one hop, RSS after load: %.1f MiB vs HAProxy %.1f MiB: %s\n", wr, hr, verdict(wr <= hr);
       printf "- cross-cluster mTLS hop, added p50: %+.0f us (target <= 100 us): %s\n", (t50 - d50) * 1e3, verdict((t50 - d50) * 1e3 <= 100);
       printf "- cross-cluster mTLS hop, added p99: %+.0f us (target <= 400 us): %s\n", (t99 - d99) * 1e3, verdict((t99 - d99) * 1e3 <= 400);
     }'
awk -v q="${med[warden-quiet, cpu]}" -v w="${med[warden, cpu]}" -v t="${med[warden-traced, cpu]}" \
    -v qr="${med[warden-quiet, rps]}" -v wr="${med[warden, rps]}" -v tr="${med[warden-traced, rps]}" \
    -v q99="${med[warden-quiet, p99]}" -v t99="${med[warden-traced, p99]}" \
    'BEGIN {
       printf "- telemetry cost, default (1%% traced, signals on) vs off: %+.1f us CPU/req (%+.1f%%), req/s %+.1f%%\n", w - q, (w - q) / q * 100, (wr - qr) / qr * 100;
       printf "- telemetry cost, every trace recorded and exported over OTLP vs off: %+.1f us CPU/req (%+.1f%%), req/s %+.1f%%, p99 at the fixed rate %+.0f us\n", t - q, (t - q) / q * 100, (tr - qr) / qr * 100, (t99 - q99) * 1e3;
     }'

traced_admin=$(addr_of "$dir/traced.out" admin)
echo "- spans of the traced gateway: $(curl -s "http://$traced_admin/metrics" | awk '/^warden_otlp_spans_total/ {printf "%s %s; ", $1, $2}')"

fds() {
    local a=("/proc/$1/fd/"*)
    echo "${#a[@]}"
}

# Idle client connections: IDLE sockets opened to ROW (nothing sent); prints "MiB-per-10k
# seconds-to-accept-all".
idle_conns() {
    local row=$1 ps before fds0 t0 t1 after n
    read -ra ps <<<"$(procs "$row")"
    before=$(rss_kib "${ps[@]}")
    fds0=$(fds "${ps[-1]}")
    mkfifo "$dir/idle.ctl"
    load python3 -c '
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.socket()
    s.connect((host, int(port)))
    socks.append(s)
print("connected", flush=True)
open(sys.argv[3]).read()
' "$(target "$row")" "$idle" "$dir/idle.ctl" >"$dir/idle.out" &
    local holder=$!
    t0=$(date +%s.%N)
    # Accepted: the proxy holds a descriptor per connection (the nginx worker, for nginx).
    for _ in $(seq 600); do
        n=$(($(fds "${ps[-1]}") - fds0))
        ((n >= idle)) && break
        sleep 0.05
    done
    t1=$(date +%s.%N)
    sleep 1
    after=$(rss_kib "${ps[@]}")
    echo stop >"$dir/idle.ctl"
    wait "$holder" 2>/dev/null || true
    rm -f "$dir/idle.ctl"
    awk -v a="$after" -v b="$before" -v n="$idle" -v t0="$t0" -v t1="$t1" -v got="$n" \
        'BEGIN { printf "%.1f %.2f %d\n", (a - b) / 1024 * 10000 / n, t1 - t0, got }'
}

echo
echo "Idle client connections ($idle opened to each proxy, nothing sent):"
echo
echo "| row | MiB per 10k connections | seconds until all accepted | accepted |"
echo "|---|---:|---:|---:|"
for r in warden haproxy nginx; do
    read -r mib took got <<<"$(idle_conns "$r")"
    printf '| %s | %s | %s | %s |\n' "$r" "$mib" "$took" "$got"
    sleep 2
done
