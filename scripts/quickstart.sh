#!/usr/bin/env bash
# Quickstart (root): build bosun, start a one-node cluster with `bosun up`, and run something
# real on it with the real kubectl — the seed's `myweb`, five replicas of a web server
# (busybox httpd from the project's test image, as this machine cannot pull tomcat) behind a
# NodePort Service on 30001, answered with curl; then scale, logs and exec. The seed's own
# manifests (examples/seed) are stored and shown too; their mysql/tomcat images need a
# registry that has them, so those pods wait in ImagePullBackOff here.
#
# Environment: BOSUN_DATA_DIR (default: a new /tmp directory), BOSUN_PORT (6443),
# BOSUN_BIN (a bosun binary to use instead of building the release one),
# BOSUN_EVICTION_HARD (the agent's hard eviction thresholds; upstream's default, so a disk
# more than 90 % full reports DiskPressure and keeps pods off the node).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "quickstart: bosun up runs containers and needs root; run it with sudo" >&2
    exit 1
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bosun/target}"
scripts/fetch-clients.sh >/dev/null
scripts/build-test-images.sh >/dev/null
scripts/install-net.sh >/dev/null
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
if [ -z "${BOSUN_BIN:-}" ]; then
    cargo build --release -p bosun
    BOSUN_BIN="$CARGO_TARGET_DIR/release/bosun"
fi
KUBECTL="${BOSUN_KUBECTL:-${BOSUN_CACHE:-$HOME/.cache/bosun}/bin/kubectl}"
DATA="${BOSUN_DATA_DIR:-$(mktemp -d /tmp/bosun-quickstart.XXXXXX)}"
PORT="${BOSUN_PORT:-6443}"

"$BOSUN_BIN" up --data-dir "$DATA" --bind-address 127.0.0.1 --secure-port "$PORT" \
    --disable-image-pull \
    --eviction-hard "${BOSUN_EVICTION_HARD:-memory.available<100Mi,nodefs.available<10%}" \
    >"$DATA/up.log" 2>&1 &
UP=$!
trap 'kill $UP 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    grep -q "bosun is up" "$DATA/up.log" 2>/dev/null && break
    if ! kill -0 $UP 2>/dev/null; then
        cat "$DATA/up.log" >&2
        exit 1
    fi
    sleep 0.1
done
grep "bosun is up" "$DATA/up.log"
export KUBECONFIG="$DATA/kubeconfig.yaml"
"$BOSUN_BIN" image import --data-dir "$DATA/agent" "$HOME/.cache/bosun/images/busybox.oci.tar"

k() { echo "+ kubectl $*"; "$KUBECTL" "$@"; }
k get nodes -o wide
k apply -f - <<'EOF'
apiVersion: v1
kind: ReplicationController
metadata:
  name: myweb
spec:
  replicas: 5
  selector:
    app: myweb
  template:
    metadata:
      labels:
        app: myweb
    spec:
      containers:
      - name: myweb
        image: bosun.test/busybox:latest
        command: ["sh", "-c", "echo \"<h1>Congratulations!! served by $(hostname)</h1>\" > /tmp/index.html && echo \"myweb: serving on :8080\" && exec httpd -f -p 8080 -h /tmp"]
        ports:
        - containerPort: 8080
        readinessProbe:
          tcpSocket:
            port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: myweb
spec:
  type: NodePort
  selector:
    app: myweb
  ports:
  - port: 8080
    nodePort: 30001
EOF
k wait --for=condition=Ready pod -l app=myweb --timeout=120s
k get rc,svc,endpoints myweb
k get pods -l app=myweb -o wide
NODE_IP="$("$KUBECTL" get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')"
echo "+ curl http://$NODE_IP:30001/  (three times: the Service spreads requests over the pods)"
for _ in 1 2 3; do
    curl -sS --max-time 5 "http://$NODE_IP:30001/" || true
done
k scale rc myweb --replicas=3
POD="$("$KUBECTL" get pods -l app=myweb -o jsonpath='{.items[0].metadata.name}')"
k exec "$POD" -- sh -c 'hostname; ip -4 addr show eth0 | grep inet; cat /etc/resolv.conf'
k logs "$POD"

# The seed's own manifests: stored, scheduled and shown (their images are not pullable here).
k create -f examples/seed/development-ns.yaml
for f in mysql-rc mysql-svc tomcat-deployment tomcat-service php-apache-hpa pv0003 busybox-pod resources-pod; do
    k create -f "examples/seed/$f.yaml"
done
k get rc,svc,deployments,hpa,pv
echo
echo "bosun keeps running until you press Ctrl-C (containers keep running; the next"
echo "\`bosun up --data-dir $DATA\` adopts them). Try:"
echo "  export KUBECONFIG=$KUBECONFIG"
echo "  $KUBECTL get all -A"
echo "  $BOSUN_BIN ctl get pods -o wide"
wait $UP
