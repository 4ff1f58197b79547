#!/usr/bin/env bash
# Shared helpers for the kind walkthrough scripts. Source it; do not run it.
set -euo pipefail

KIND_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$KIND_DIR/.." && pwd)"
PKI="$KIND_DIR/.pki"
# shellcheck disable=SC2034 # used by the scripts that source this file
CLUSTERS=(a b c)
NS=warden-system
IMAGE=warden:dev
export KIND_DIR REPO PKI NS IMAGE

die() {
  echo "error: $*" >&2
  exit 1
}

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required (see README, \"Run on Kubernetes\")"
  done
}

# kubectl context of a cluster letter.
ctx() {
  echo "kind-warden-$1"
}

# The kind node's address on the shared docker network "kind".
node_ip() {
  docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "warden-$1-control-plane"
}

# The warden CLI built from this repository.
warden() {
  local bin="$REPO/target/release/warden"
  if [[ ! -x "$bin" ]]; then
    (cd "$REPO" && cargo build --release --bin warden) >&2
  fi
  "$bin" "$@"
}

# YAML of namespace <ns> and a Deployment <name> of <replicas> echo servers that answer with
# x-echo-server: <server-name> on their port "http" (8080).
echo_app() {
  local ns="$1" name="$2" server="$3" replicas="$4"
  cat <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $name
  namespace: $ns
spec:
  replicas: $replicas
  selector:
    matchLabels: {app: $name}
  template:
    metadata:
      labels: {app: $name}
    spec:
      containers:
        - name: echo
          image: $IMAGE
          args: [echo, --name, $server, --listen, "0.0.0.0:8080"]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
YAML
}

# kubectl apply of a generic Secret built from files (idempotent).
apply_secret() {
  local context="$1" name="$2"
  shift 2
  local args=()
  for kv in "$@"; do
    args+=(--from-file="$kv")
  done
  kubectl --context "$context" -n "$NS" create secret generic "$name" "${args[@]}" \
    --dry-run=client -o yaml | kubectl --context "$context" apply -f -
}
