#!/usr/bin/env bash
# Shows the federation as a user sees it: members, clusters, exported services.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
need docker

WARDEN_API="https://$(node_ip a):30700"
export WARDEN_API
export WARDEN_API_CA_BUNDLE="$PKI/federation/ca.pem"
WARDEN_ADMIN_TOKEN="$(cat "$PKI/admin-token")"
export WARDEN_ADMIN_TOKEN
warden status
warden cluster list
warden service list
