#!/usr/bin/env bash
# Deletes the three kind clusters (the PKI in kind-configs/.pki is kept).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
need kind
for c in "${CLUSTERS[@]}"; do
  kind delete cluster --name "warden-$c"
done
