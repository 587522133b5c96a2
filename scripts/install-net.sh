#!/usr/bin/env bash
# System tools the network tests need: nft (service proxy rules) and ip (namespaces).
set -euo pipefail
if command -v nft >/dev/null && command -v ip >/dev/null && command -v nsenter >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq nftables iproute2 util-linux
