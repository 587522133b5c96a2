#!/usr/bin/env bash
# Installs what the registry pull tests need: Debian's `docker-registry` (the CNCF distribution
# registry, run on loopback by crates/bosun-runtime/tests/pull.rs) and `skopeo` (pushes the test
# image into it). Safe to run again: does nothing when both are there.
set -euo pipefail

if command -v docker-registry >/dev/null && command -v skopeo >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-registry: docker-registry and skopeo are missing and this is not root;" >&2
    echo "install-registry: run: sudo apt-get install -y docker-registry skopeo" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends docker-registry skopeo >/dev/null ||
    { apt-get update -qq >/dev/null &&
        apt-get install -y -qq --no-install-recommends docker-registry skopeo >/dev/null; }
# The package starts a registry on :5000 as a service; the tests run their own on free ports.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
