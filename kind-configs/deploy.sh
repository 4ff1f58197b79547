#!/usr/bin/env bash
# Applies each cluster's overlay with the kind nodes' addresses filled in, then waits for the
# federation nodes and gateways. The gateways register their clusters and trust bundles
# through the federation API themselves.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
need kubectl docker

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$REPO/deploy/multicluster" "$work/"
a="$(node_ip a)" b="$(node_ip b)" c_ip="$(node_ip c)"
find "$work/multicluster/overlays" -name '*.toml' -exec sed -i \
  -e "s/@CLUSTER_A_IP@/$a/g" -e "s/@CLUSTER_B_IP@/$b/g" -e "s/@CLUSTER_C_IP@/$c_ip/g" {} +

for c in "${CLUSTERS[@]}"; do
  kubectl --context "$(ctx "$c")" apply -k "$work/multicluster/overlays/cluster-$c"
done
for c in "${CLUSTERS[@]}"; do
  kubectl --context "$(ctx "$c")" -n "$NS" rollout status statefulset/warden-federation --timeout=180s
  kubectl --context "$(ctx "$c")" -n "$NS" rollout status deployment/warden-gateway --timeout=180s
done
echo "deployed; federation API of cluster-a: https://$a:30700"
