#!/usr/bin/env bash
# bench/policies.sh [SECONDS] [ROUNDS] [REQUESTS]: what the resilience and security policies
# cost on the request path, side by side in one run.
#
# One gateway serves two services on one echo backend: `plain` (no policy) and `guarded`, which
# has the full policy path — a circuit breaker and a rate limit (bounds the load never reaches,
# so every request is admitted after being counted), a JWT policy (RS256, keys from a JWKS file,
# the tenant claim set as a header) and two authorization policies (a deny on DELETE /admin and
# an allow on GET for tenant t1's claim). Every request carries the same valid token, as a
# client with one token does (the gateway keeps verified tokens: see docs/security.md). HAProxy
# (HTTP mode, keep-alive) proxies to the same backend. wrk (one thread, 32 connections) runs on
# CPU 0; the gateway, the backend and HAProxy share CPU 1; rounds rotate the order; the table
# shows medians of requests per second and the proxy's CPU per request (/proc/PID/stat).
# Then instructions per request under callgrind, which do not depend on what else the machine
# does. Installs wrk, haproxy, valgrind and openssl with apt-get when missing.
set -euo pipefail

secs=${1:-8}
rounds=${2:-5}
count=${3:-3000}
cd "$(dirname "$0")/.."
export WARDEN_ADMIN_TOKEN=bench-policies-token-0123456789
# shellcheck source=bench/common.sh
source bench/common.sh

b64url() { basenc --base64url -w0 | tr -d '='; }

start_node_and_backend
gateway_config plain guarded >"$dir/gw.toml"

# An RS256 key, its JWKS, and a token for tenant t1 valid for a day.
openssl genrsa -out "$dir/jwt.key" 2048 2>/dev/null
n=$(openssl rsa -in "$dir/jwt.key" -noout -modulus | cut -d= -f2 |
    python3 -c 'import sys, binascii; sys.stdout.buffer.write(binascii.unhexlify(sys.stdin.read().strip()))' | b64url)
printf '{"keys":[{"kty":"RSA","kid":"bench","alg":"RS256","use":"sig","n":"%s","e":"AQAB"}]}' "$n" >"$dir/jwks.json"
header=$(printf '{"alg":"RS256","typ":"JWT","kid":"bench"}' | b64url)
payload=$(printf '{"iss":"https://idp.bench","aud":"bench","sub":"load","tenant":"t1","exp":%d}' $(($(date +%s) + 86400)) | b64url)
signature=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$dir/jwt.key" | b64url)
token="$header.$payload.$signature"

api_put /api/v1/resilience/policies/guarded '{"service":"shop/guarded",
  "circuit_breaker":{"service":{"max_requests":100000,"max_retries":1000}},
  "rate_limits":[{"name":"all","requests":1000000000,"burst":1000000000}]}'
api_put /api/v1/security/jwt/guarded "{\"service\":\"shop/guarded\",\"providers\":[{
  \"issuer\":\"https://idp.bench\",\"audiences\":[\"bench\"],\"algorithms\":[\"RS256\"],
  \"jwks\":{\"type\":\"file\",\"path\":\"$dir/jwks.json\"},
  \"claims_to_headers\":[{\"claim\":\"tenant\",\"header\":\"x-tenant\"}]}]}"
api_put /api/v1/security/authorization/guarded-deny '{"service":"shop/guarded","action":"deny",
  "rules":[{"methods":["DELETE"],"paths":[{"type":"PathPrefix","value":"/admin"}]}]}'
api_put /api/v1/security/authorization/guarded-allow '{"service":"shop/guarded","action":"allow",
  "rules":[{"methods":["GET"],"claims":[{"name":"tenant","values":["t1"]}]}]}'

# Ready once the guarded service answers the token (JWKS loaded, every policy applied) and
# refuses a request without one.
guarded_ready() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: guarded.shop' -H "Authorization: Bearer $token" "http://$out/x") == 200 ]] &&
        [[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: guarded.shop' "http://$out/x") == 401 ]]
}
start_gateway guarded_ready taskset -c 1
start_haproxy

run() {
    case $1 in
    direct) wrk_run "$backend" be "" ;;
    haproxy) wrk_run "127.0.0.1:$hp_port" be "$hp" ;;
    plain) wrk_run "$out" plain.shop "$gw" ;;
    guarded) wrk_run "$out" guarded.shop "$gw" -H "Authorization: Bearer $token" ;;
    esac
}

targets=(direct plain guarded haproxy)
for t in plain guarded; do secs=2 run "$t" >/dev/null; done
declare -A results
for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < ${#targets[@]}; i++)); do
        t=${targets[$(((i + r) % ${#targets[@]}))]}
        results[$t]+="$(run "$t")"$'\n'
    done
done
refused=$(curl -fsS "http://$admin/metrics" | awk '/^warden_resilience_actions_total/ && /guarded/ {s += $2} END {print s + 0}')

echo
echo "Policy path, side by side ($rounds rounds of ${secs}s each, wrk -t1 -c32 on CPU 0; proxy and backend on CPU 1; medians):"
echo
echo "| path | req/s | proxy µs CPU/req | CPU vs plain |"
echo "|---|---:|---:|---:|"
base=$(cut -d' ' -f2 <<<"${results[plain]}" | grep -v '^$' | median)
for t in "${targets[@]}"; do
    rps=$(cut -d' ' -f1 <<<"${results[$t]}" | grep -v '^$' | median)
    cpu=$(cut -d' ' -f2 <<<"${results[$t]}" | grep -v '^$' | grep -v -- '-' | median || true)
    rel="-"
    case $t in guarded | haproxy) rel=$(awk -v c="$cpu" -v b="$base" 'BEGIN {printf "%+.1f %%", (c / b - 1) * 100}') ;; esac
    [[ $t == direct ]] && cpu="-"
    printf '| %s | %.0f | %s | %s |\n' "$t" "$rps" "$cpu" "$rel"
done
echo
echo "(requests the guarded policies refused or faulted during the runs: $refused)"

kill "$gw"
wait "$gw" 2>/dev/null || true
start_gateway guarded_ready valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.%p"
plain_ir=$(instructions_per_request "$count" -H 'Host: plain.shop')
guarded_ir=$(instructions_per_request "$count" -H 'Host: guarded.shop' -H "Authorization: Bearer $token")
echo
echo "Instructions per request (callgrind, $count requests per service on 4 keep-alive connections, after as many to warm up):"
echo
echo "| path | instructions/req | vs plain |"
echo "|---|---:|---:|"
printf '| plain | %d | - |\n' "$plain_ir"
printf '| guarded | %d | %s |\n' "$guarded_ir" "$(awk -v p="$guarded_ir" -v b="$plain_ir" 'BEGIN {printf "%+.1f %%", (p / b - 1) * 100}')"
