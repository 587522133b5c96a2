#!/usr/bin/env bash
# Quickstart: build bosun, start its API server on this machine, and walk the seed's
# manifests through it with the real kubectl. Until the node agent lands (issue 4), pods
# are accepted, stored and shown, but stay Pending: there is no machine to run them yet.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bosun/target}"
scripts/install-etcd.sh >/dev/null
scripts/fetch-clients.sh >/dev/null
cargo build --release -p bosun
BOSUN="$CARGO_TARGET_DIR/release/bosun"
KUBECTL="${BOSUN_KUBECTL:-${BOSUN_CACHE:-$HOME/.cache/bosun}/bin/kubectl}"
DATA="${BOSUN_DATA_DIR:-$(mktemp -d /tmp/bosun-quickstart.XXXXXX)}"
PORT="${BOSUN_PORT:-6443}"

"$BOSUN" server --data-dir "$DATA" --bind-address 127.0.0.1 --secure-port "$PORT" >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
export KUBECONFIG="$DATA/kubeconfig.yaml"
for _ in $(seq 1 100); do
    [ -f "$KUBECONFIG" ] && "$KUBECTL" get --raw /readyz >/dev/null 2>&1 && break
    sleep 0.1
done

k() { echo "+ kubectl $*"; "$KUBECTL" "$@"; }
k create -f examples/seed/development-ns.yaml
for f in mysql-rc mysql-svc myweb-rc myweb-svc tomcat-deployment tomcat-service php-apache-hpa pv0003 busybox-pod resources-pod; do
    k create -f "examples/seed/$f.yaml"
done
k get rc,svc,deployments,hpa,pv
k get pods --all-namespaces
k scale rc myweb --replicas=3
k get rc myweb
k describe svc myweb
echo
echo "The server keeps running until you press Ctrl-C. Try:"
echo "  export KUBECONFIG=$KUBECONFIG"
echo "  $KUBECTL get all -A"
wait $SERVER
