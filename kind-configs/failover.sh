#!/usr/bin/env bash
# Walks through a failover: deploys an echo service "cart" in every cluster (exported by
# annotation), calls it through cluster-a's gateway, scales cluster-a's copy to zero (traffic
# moves to cluster-b, the nearest by locality), then scales it back (traffic returns).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
need kubectl curl

app() {
  local c="$1"
  echo_app demo cart "cart-$c" 2
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: cart
  namespace: demo
  annotations:
    warden.io/export: "true"
    warden.io/probe: /healthz
spec:
  selector: {app: cart}
  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
YAML
}

for c in "${CLUSTERS[@]}"; do
  app "$c" | kubectl --context "$(ctx "$c")" apply -f -
  kubectl --context "$(ctx "$c")" -n demo rollout status deployment/cart --timeout=120s
done

ctx_a="$(ctx a)"
kubectl --context "$ctx_a" -n "$NS" port-forward svc/warden-gateway 18080:80 >/dev/null &
pf=$!
trap 'kill "$pf"' EXIT
sleep 2

sample() {
  local label="$1"
  echo "== $label: 20 requests through cluster-a's gateway, by serving backend"
  for _ in $(seq 20); do
    curl -s -D - -o /dev/null -H 'Host: cart.demo' http://127.0.0.1:18080/ | tr -d '\r' |
      awk 'tolower($1) == "x-echo-server:" { print $2; found = 1 } END { if (!found) print "failed" }'
  done | sort | uniq -c
}

sample "all local"
kubectl --context "$ctx_a" -n demo scale deployment/cart --replicas=0
sleep 5
sample "cluster-a's cart scaled to zero (failover)"
kubectl --context "$ctx_a" -n demo scale deployment/cart --replicas=2
kubectl --context "$ctx_a" -n demo rollout status deployment/cart --timeout=120s
sleep 8
sample "cluster-a's cart back (failback)"
