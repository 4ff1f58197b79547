#!/usr/bin/env bash
# Calls a service of another cluster by its MCS name, the app unchanged: deploys an echo
# service "orders" in cluster-b only, exported with a ServiceExport; cluster-a's gateway
# keeps a ServiceImport and the derived Service orders-clusterset for it; a client pod in
# cluster-a calls http://orders.demo.svc.clusterset.local/ and is answered by cluster-b, then
# the same over orders' raw TCP port 7000 (a pod port of its own on cluster-a's gateways).
# Run after deploy.sh and coredns-clusterset.sh.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
need kubectl

ctx_a="$(ctx a)" ctx_b="$(ctx b)"
{
  echo_app demo orders orders-b 1
  cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: orders
  namespace: demo
spec:
  selector: {app: orders}
  ports:
    - {name: http, port: 80, targetPort: http, appProtocol: http}
    # A raw TCP port (no appProtocol, no http name): spliced, never parsed.
    - {name: raw, port: 7000, targetPort: http}
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata:
  name: orders
  namespace: demo
YAML
} | kubectl --context "$ctx_b" apply -f -
kubectl --context "$ctx_b" -n demo rollout status deployment/orders --timeout=120s

# The importing side: the namespace must exist (MCS namespace sameness).
kubectl --context "$ctx_a" create namespace demo --dry-run=client -o yaml |
  kubectl --context "$ctx_a" apply -f -
echo "== waiting for cluster-a's ServiceImport demo/orders"
for _ in $(seq 60); do
  ip="$(kubectl --context "$ctx_a" -n demo get serviceimport orders -o jsonpath='{.spec.ips[0]}' 2>/dev/null || true)"
  [[ -n "$ip" ]] && break
  sleep 2
done
[[ -n "${ip:-}" ]] || die "no ServiceImport demo/orders in cluster-a"
kubectl --context "$ctx_a" -n demo get serviceimport orders
kubectl --context "$ctx_a" -n demo get service orders-clusterset

echo "== from a pod in cluster-a: curl http://orders.demo.svc.clusterset.local/"
kubectl --context "$ctx_a" -n demo run clusterset-client --rm -i --restart=Never \
  --image=curlimages/curl:8.11.1 --command -- \
  sh -c 'for i in 1 2 3; do curl -s -D - -o /dev/null http://orders.demo.svc.clusterset.local/ | grep -i "^x-echo-server"; done'

echo "== the raw TCP port: cluster-a's derived Service sends port 7000 to a gateway pod port"
kubectl --context "$ctx_a" -n demo get service orders-clusterset \
  -o jsonpath='{range .spec.ports[*]}{.name} {.port} -> {.targetPort}{"\n"}{end}'
kubectl --context "$ctx_a" -n demo run clusterset-tcp-client --rm -i --restart=Never \
  --image=curlimages/curl:8.11.1 --command -- \
  sh -c 'curl -s -D - -o /dev/null http://orders.demo.svc.clusterset.local:7000/ | grep -i "^x-echo-server"'
