#!/usr/bin/env bash
# Installs what the active-response tests need, idempotently: nft and iptables (the firewall
# drop and its fallback), iproute2 (`ip netns`, null routes) and procps. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/install.sh
. scripts/lib/install.sh
ensure_apt nftables iptables iproute2 procps
