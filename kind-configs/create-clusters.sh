#!/usr/bin/env bash
# Creates the three kind clusters (distinct pod and service subnets) unless they exist.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
need kind docker kubectl

for c in "${CLUSTERS[@]}"; do
  if kind get clusters 2>/dev/null | grep -qx "warden-$c"; then
    echo "cluster warden-$c exists"
  else
    kind create cluster --config "$KIND_DIR/cluster-$c.yaml" --wait 120s
  fi
done
for c in "${CLUSTERS[@]}"; do
  echo "warden-$c: node $(node_ip "$c"), context $(ctx "$c")"
done
