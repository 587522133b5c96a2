#!/usr/bin/env bash
# `bosun up` benchmark (issue 6), one command, root:
#   - start → Ready: from launching `bosun up` on a fresh data directory until the node is
#     Ready, the `kubernetes` Service exists (what `bosun up` prints as "Ready in N ms") and
#     the cluster DNS on 10.96.0.10 answers kubernetes.default.svc.cluster.local;
#   - the process's RSS idle (10 s after Ready);
#   - the process's RSS with 100 running pods (a Deployment of busybox sleepers), and the
#     shims' RSS reported apart.
# It deletes its pods and stops `bosun up` before it ends. Targets: ≤ 2 s; ≤ 100 MiB idle.
#
# Environment: BOSUN_BIN (default: the release build, built if missing), BOSUN_PORT (a free
# port is picked), BENCH_PODS (100).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "bench-up: bosun up runs containers and needs root; run it with sudo" >&2
    exit 1
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bosun/target}"
scripts/fetch-clients.sh >/dev/null
scripts/build-test-images.sh >/dev/null
scripts/install-net.sh >/dev/null
if [ -z "${BOSUN_BIN:-}" ]; then
    cargo build --release -p bosun
    BOSUN_BIN="$CARGO_TARGET_DIR/release/bosun"
fi
KUBECTL="${BOSUN_KUBECTL:-${BOSUN_CACHE:-$HOME/.cache/bosun}/bin/kubectl}"
PODS="${BENCH_PODS:-100}"
PORT="${BOSUN_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
KPORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
DATA="$(mktemp -d /tmp/bosun-bench-up.XXXXXX)"
export KUBECONFIG="$DATA/kubeconfig.yaml"

now_ms() { date +%s%3N; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# One DNS query for kubernetes.default.svc.cluster.local to the node's cluster DNS (an
# address on this machine's loopback); exits 0 when it answers with an A record.
dns_answers() {
    python3 - <<'EOF'
import socket, struct, sys
q = b"".join(bytes([len(p)]) + p.encode() for p in "kubernetes.default.svc.cluster.local".split(".")) + b"\0"
msg = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
try:
    s.sendto(msg, ("10.96.0.10", 53))
    data, _ = s.recvfrom(512)
except OSError:
    sys.exit(1)
sys.exit(0 if len(data) > 12 and struct.unpack(">H", data[6:8])[0] > 0 else 1)
EOF
}

T0=$(now_ms)
"$BOSUN_BIN" up --data-dir "$DATA" --bind-address 127.0.0.1 --secure-port "$PORT" \
    --kubelet-port "$KPORT" --disable-image-pull \
    --eviction-hard "memory.available<1Mi,nodefs.available<1%" --image-gc-high-threshold 100 \
    >"$DATA/up.log" 2>&1 &
UP=$!
cleanup() {
    # Pods first: containers outlive a stopped `bosun up` by design.
    "$KUBECTL" delete deployment bench-up --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 || true
    "$KUBECTL" delete pods -l app=bench-up --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
    kill -INT $UP 2>/dev/null || true
    wait $UP 2>/dev/null || true
}
trap cleanup EXIT
T_UP=""
T_DNS=""
for _ in $(seq 1 3000); do
    if [ -z "$T_UP" ] && grep -q "bosun is up" "$DATA/up.log" 2>/dev/null; then
        T_UP=$(now_ms)
    fi
    if [ -n "$T_UP" ] && dns_answers; then
        T_DNS=$(now_ms)
        break
    fi
    if ! kill -0 $UP 2>/dev/null; then
        cat "$DATA/up.log" >&2
        exit 1
    fi
    sleep 0.01
done
[ -n "$T_DNS" ] || { echo "bench-up: not Ready with DNS answering after 30 s" >&2; exit 1; }
REPORTED="$(grep -o 'Ready in [0-9]* ms' "$DATA/up.log" | head -1)"
sleep 10
IDLE=$(rss_kib $UP)

"$BOSUN_BIN" image import --data-dir "$DATA/agent" "$HOME/.cache/bosun/images/busybox.oci.tar" >/dev/null
T_PODS0=$(now_ms)
"$KUBECTL" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bench-up
spec:
  replicas: $PODS
  selector:
    matchLabels: {app: bench-up}
  template:
    metadata:
      labels: {app: bench-up}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: sleep
        image: bosun.test/busybox:latest
        command: ["sleep", "36000"]
        resources:
          requests: {cpu: 1m, memory: 1Mi}
EOF
RUNNING=0
for _ in $(seq 1 1200); do
    RUNNING=$("$KUBECTL" get pods -l app=bench-up --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l)
    [ "$RUNNING" -ge "$PODS" ] && break
    sleep 0.5
done
T_PODS=$(now_ms)
sleep 10
WITH=$(rss_kib $UP)
SHIMS=0
SHIMS_PSS=0
NSHIMS=0
for p in $(pgrep -f "shim --dir $DATA/" || true); do
    SHIMS=$((SHIMS + $(rss_kib "$p")))
    # PSS divides the pages the shims share (the bosun binary's text) among them.
    SHIMS_PSS=$((SHIMS_PSS + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
    NSHIMS=$((NSHIMS + 1))
done
PEAK=$(awk '/^VmHWM/ {print $2}' "/proc/$UP/status")

echo "bosun bench up  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary: $BOSUN_BIN"
printf '%-52s %12s   %s\n' "" "measured" "target"
printf '%-52s %9s ms   %s\n' "start → node Ready + kubernetes Service" "$((T_UP - T0))" "≤ 2,000 ($REPORTED by bosun up's own clock)"
printf '%-52s %9s ms   %s\n' "start → DNS answering as well" "$((T_DNS - T0))" "≤ 2,000"
printf '%-52s %8s MiB   %s\n' "bosun up RSS idle" "$(mib "$IDLE")" "≤ 100"
printf '%-52s %9s ms\n' "$PODS pods created → $RUNNING Running" "$((T_PODS - T_PODS0))"
printf '%-52s %8s MiB\n' "bosun up RSS with $RUNNING running pods" "$(mib "$WITH")"
printf '%-52s %8s MiB\n' "  peak (VmHWM)" "$(mib "$PEAK")"
printf '%-52s %8s MiB\n' "  shims apart: $NSHIMS shims, total RSS" "$(mib "$SHIMS")"
printf '%-52s %8s MiB\n' "  shims' total PSS (shared pages divided)" "$(mib "$SHIMS_PSS")"
