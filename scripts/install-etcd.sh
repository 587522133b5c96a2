#!/usr/bin/env bash
# What the etcd store backend needs from the system, installed only when missing:
#  - protoc (Debian's protobuf-compiler) and the well-known .proto files it imports
#    (google/protobuf/descriptor.proto, struct.proto: Debian's libprotobuf-dev): the etcd-client
#    crate generates its gRPC code at build time and has no pre-generated option;
#  - etcd (Debian's etcd-server, 3.4.x on bookworm): the tests start a real member from
#    /usr/bin/etcd on loopback ports.
# Idempotent: safe to run from CI and from every session. Needs root (or sudo) for apt-get.
set -euo pipefail

missing=()
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
[ -x /usr/bin/etcd ] || command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-etcd: protoc, protobuf includes and etcd already present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-etcd: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends keeps etcd-client (the CLI) and docs out; policy-rc.d-less
# containers without systemd simply do not start the packaged service, and the tests never
# use the default port 2379 anyway.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

command -v protoc >/dev/null 2>&1 || { echo "install-etcd: protoc still missing" >&2; exit 1; }
[ -f /usr/include/google/protobuf/descriptor.proto ] || { echo "install-etcd: protobuf includes still missing" >&2; exit 1; }
[ -x /usr/bin/etcd ] || command -v etcd >/dev/null 2>&1 || { echo "install-etcd: etcd still missing" >&2; exit 1; }
echo "install-etcd: done ($(protoc --version), etcd $(etcd --version 2>/dev/null | head -n1 | awk '{print $3}'))"
