#!/usr/bin/env bash
# bench/all.sh [OUT_DIR]: every performance figure the project tracks, from one command.
#
# Runs, one after another (never two at once: each needs the machine's cores to itself):
#   bench/gateway.sh          one gateway hop and the cross-cluster mTLS hop against a direct
#                             connection, HAProxy and nginx; idle connections
#   warden bench raft         the store against etcd, 1 and 64 writers
#   bench/raft-failover.sh    20 leader SIGKILLs, then 20 graceful leader stops (SIGNAL=TERM)
#   bench/propagation.sh      100 trials of export / health / policy change -> routed in b
#   bench/scale.sh            1,000 clusters x 10,000 services, 60 s of steady renewal load
# and prints one table with every target, the figure from this run and its anchor, and met /
# not met. Each bench's own output is kept in OUT_DIR (a new temporary directory when omitted).
# Shorter runs for a quick look: GATEWAY_ARGS="4 3", RAFT_SECONDS=5, KILLS=5, TRIALS=30,
# SCALE_ARGS="300 3000 30" (the table then says which sizes it ran). REPORT_ONLY=1 prints the
# table again from the outputs already in OUT_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
read -r -a gateway_args <<<"${GATEWAY_ARGS:-8 5 2000 8000}"
raft_seconds=${RAFT_SECONDS:-10}
kills=${KILLS:-20}
trials=${TRIALS:-100}
read -r -a scale_args <<<"${SCALE_ARGS:-1000 10000 60}"

started=$(date -u +%Y-%m-%dT%H:%MZ)
run() {
    local name=$1
    shift
    echo "== $name: $*" >&2
    local t0=$SECONDS
    "$@" >"$out/$name.txt" 2>"$out/$name.err" || {
        echo "$name failed (exit $?); its output is in $out/$name.txt and $out/$name.err" >&2
        tail -5 "$out/$name.err" >&2
        return 1
    }
    echo "   done in $((SECONDS - t0)) s" >&2
}
if [[ -z ${REPORT_ONLY:-} ]]; then
    cargo build --release -q
    run gateway bench/gateway.sh "${gateway_args[@]}"
    run raft ./target/release/warden bench raft --seconds "$raft_seconds" --no-restart
    run failover-kill env SIGNAL=KILL bench/raft-failover.sh "$kills"
    run failover-term env SIGNAL=TERM bench/raft-failover.sh "$kills"
    run propagation bench/propagation.sh "$trials" 3
    run scale bench/scale.sh "${scale_args[@]}"
fi

verdict() { awk -v ok="$1" 'BEGIN { print (ok ? "met" : "**not met**") }'; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }
# The value in column N (1-based, after the row name) of the first Markdown row "| NAME | ..."
# in bench output BENCH, after the first line starting with AFTER (when given).
cell() {
    awk -F'|' -v name="$2" -v n="$3" -v after="${4:-}" '
        after != "" && !seen { seen = index($0, after) == 1; next }
        { r = $2; gsub(/^ +| +$/, "", r) }
        r == name { v = $(n + 2); gsub(/^ +| +$/, "", v); print v; exit }' "$out/$1.txt"
}

echo
echo "bench/all.sh, $started, $(nproc) cores, $(uname -r), release build"
echo
echo "| target | this run | anchor (same run) | verdict |"
echo "|---|---|---|---|"
# The gateway bench computes its own verdicts from the medians of interleaved rounds.
sed -n 's/^- \(.*\): \(met\|not met\)$/\1|\2/p' "$out/gateway.txt" | while IFS='|' read -r what v; do
    row "$what" "(as stated)" "HAProxy, direct" "$([[ $v == met ]] && echo met || echo '**not met**')"
done
w_idle=$(cell gateway warden 1 "Idle client connections")
h_idle=$(cell gateway haproxy 1 "Idle client connections")
if [[ -n $w_idle && -n $h_idle ]]; then
    row "one hop, memory per 10k idle connections <= HAProxy's" "$w_idle MiB" "HAProxy $h_idle MiB" \
        "$(verdict "$(awk -v w="$w_idle" -v h="$h_idle" 'BEGIN { print (w <= h) }')")"
fi
for c in 1 64; do
    x=$(grep -o "warden/etcd at c=$c: throughput [0-9.]*x" "$out/raft.txt" | grep -o '[0-9.]*x$' | tr -d x || true)
    want=$([[ $c == 1 ]] && echo 2 || echo 5)
    if [[ -n $x ]]; then
        row "Raft, $c writer(s): writes/s >= ${want}x etcd's" "${x}x" "etcd, c=$c" \
            "$(verdict "$(awk -v x="$x" -v w="$want" 'BEGIN { print (x >= w) }')")"
    else
        row "Raft, $c writer(s): writes/s >= ${want}x etcd's" "(no etcd row)" "-" "-"
    fi
done
el=$(cell failover-kill "elected (kill -> a node reports leader)" 2)
row "re-election after a leader SIGKILL, p99 over $kills <= 1500 ms" "$el ms" "-" \
    "$(verdict "$(awk -v x="$el" 'BEGIN { print (x != "" && x <= 1500) }')")"
gap=$(cell failover-term "write gap (kill -> next acknowledged write)" 3)
row "graceful leader stop: write gap, max over $kills <= 200 ms" "$gap ms" "-" \
    "$(verdict "$(awk -v x="$gap" 'BEGIN { print (x != "" && x <= 200) }')")"
for r in "new export -> b routes to x" "healthy endpoints 1 -> 0 -> b stops routing to x" \
    "traffic policy failover order turned round -> b routes to the new first"; do
    p=$(cell propagation "$r" 2)
    row "propagation p99 <= 200 ms: $r" "$p ms" "-" "$(verdict "$(awk -v x="$p" 'BEGIN { print (x != "" && x <= 200) }')")"
done
size="${scale_args[0]} clusters x ${scale_args[1]} services"
cpu=$(cell scale "CPU of the 3 nodes together" 1 | grep -o '[0-9.]*' | head -1)
row "$size: store CPU <= 1 core (steady renewals)" "$cpu cores" "-" "$(verdict "$(awk -v x="$cpu" 'BEGIN { print (x != "" && x <= 1) }')")"
rss=$(cell scale "gateway b: CPU, RSS" 1 | grep -o '[0-9.]* MiB' | grep -o '[0-9.]*')
row "$size: gateway RSS <= 256 MiB" "$rss MiB" "-" "$(verdict "$(awk -v x="$rss" 'BEGIN { print (x != "" && x <= 256) }')")"
rb=$(cell scale "gateway b: routing rebuilds" 1 | grep -o 'mean [0-9.]*' | cut -d' ' -f2)
row "$size: routing rebuild per change <= 50 ms (mean)" "$rb ms" "-" "$(verdict "$(awk -v x="$rb" 'BEGIN { print (x != "" && x <= 50) }')")"
pp=$(grep -o 'propagation under load.*' "$out/scale.txt" | grep -o 'p99 [0-9.]*' | cut -d' ' -f2 || true)
row "$size: propagation p99 under load <= 200 ms" "$pp ms" "-" "$(verdict "$(awk -v x="$pp" 'BEGIN { print (x != "" && x <= 200) }')")"
echo
echo "Each bench's full output: $out"
