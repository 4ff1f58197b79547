#!/usr/bin/env bash
# Builds the warden image and loads it into every kind cluster (no registry needed).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
need docker kind

docker build -f "$REPO/deploy/Dockerfile" -t "$IMAGE" "$REPO"
for c in "${CLUSTERS[@]}"; do
  kind load docker-image "$IMAGE" --name "warden-$c"
done
