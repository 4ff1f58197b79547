#!/usr/bin/env bash
# Sets up federated trust: a CA for the federation's nodes and one per cluster, certificates
# for each node and gateway, an admin token, and the Secrets the manifests mount.
# Keys stay in kind-configs/.pki (git-ignored) and in each cluster's own Secrets.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
need kubectl

mkdir -p "$PKI"
chmod 700 "$PKI"
if [[ ! -f "$PKI/federation/ca.pem" ]]; then
  warden trust init --trust-domain federation.warden.local --dir "$PKI/federation"
fi
if [[ ! -f "$PKI/admin-token" ]]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PKI/admin-token")
fi

id=0
for c in "${CLUSTERS[@]}"; do
  id=$((id + 1))
  context="$(ctx "$c")"
  td="cluster-$c.warden.local"
  [[ -f "$PKI/$c/ca.pem" ]] || warden trust init --trust-domain "$td" --dir "$PKI/$c"
  warden trust issue --ca-dir "$PKI/federation" --out "$PKI/federation/node-$id" \
    --spiffe-id "spiffe://federation.warden.local/node/$id" --hours 720
  warden trust issue --ca-dir "$PKI/$c" --out "$PKI/$c/gateway" \
    --spiffe-id "spiffe://$td/ns/$NS/sa/warden-gateway" --hours 720

  kubectl --context "$context" create namespace "$NS" --dry-run=client -o yaml |
    kubectl --context "$context" apply -f -
  apply_secret "$context" warden-admin-token "token=$PKI/admin-token"
  apply_secret "$context" warden-federation-tls \
    "cert.pem=$PKI/federation/node-$id.pem" "key.pem=$PKI/federation/node-$id.key" \
    "ca.pem=$PKI/federation/ca.pem"
  apply_secret "$context" warden-federation-ca "ca.pem=$PKI/federation/ca.pem"
  apply_secret "$context" warden-gateway-tls \
    "cert.pem=$PKI/$c/gateway.pem" "key.pem=$PKI/$c/gateway.key" "ca.pem=$PKI/$c/ca.pem"
done
echo "trust set up: federation CA and per-cluster CAs in $PKI"
