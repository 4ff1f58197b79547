#!/usr/bin/env bash
# Teaches each kind cluster's stock CoreDNS the MCS name: <svc>.<ns>.svc.clusterset.local is
# rewritten to the derived Service Warden keeps for it, <svc>-clusterset.<ns>.svc.cluster.local
# (docs/kubernetes.md#calling-a-remote-service). Idempotent: a Corefile that has the rule
# already is left as it is.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
need kubectl python3

rule='    rewrite stop name regex ^([^.]+)\.([^.]+)\.svc\.clusterset\.local\.$ {1}-clusterset.{2}.svc.cluster.local. answer auto'
for c in "${CLUSTERS[@]}"; do
  context="$(ctx "$c")"
  corefile="$(kubectl --context "$context" -n kube-system get configmap coredns -o jsonpath='{.data.Corefile}')"
  if grep -q 'svc\\.clusterset\\.local' <<<"$corefile"; then
    echo "cluster-$c: CoreDNS knows clusterset.local already"
    continue
  fi
  # The rule goes first in the server block of ".:53", before the kubernetes plugin.
  patched="$(RULE="$rule" python3 -c '
import os, sys
text = sys.stdin.read()
head, sep, rest = text.partition(".:53 {\n")
if not sep:
    sys.exit("no .:53 server block in the Corefile")
sys.stdout.write(head + sep + os.environ["RULE"] + "\n" + rest)
' <<<"$corefile")"
  kubectl --context "$context" -n kube-system create configmap coredns \
    --from-literal=Corefile="$patched" --dry-run=client -o yaml |
    kubectl --context "$context" apply -f -
  kubectl --context "$context" -n kube-system rollout restart deployment/coredns
  kubectl --context "$context" -n kube-system rollout status deployment/coredns --timeout=120s
  echo "cluster-$c: CoreDNS rewrites clusterset.local"
done
