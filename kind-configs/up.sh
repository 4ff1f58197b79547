#!/usr/bin/env bash
# The whole kind walkthrough: clusters, image, trust, deploy, status, failover, and a call to
# another cluster's service by its clusterset name.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
"$KIND_DIR/create-clusters.sh"
"$KIND_DIR/build-image.sh"
"$KIND_DIR/trust.sh"
"$KIND_DIR/deploy.sh"
"$KIND_DIR/status.sh"
"$KIND_DIR/failover.sh"
"$KIND_DIR/coredns-clusterset.sh"
"$KIND_DIR/clusterset.sh"
