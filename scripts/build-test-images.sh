#!/usr/bin/env bash
# Builds the test images as OCI archives from Debian's busybox-static package (no registry
# needed): ~/.cache/bosun/images/busybox.oci.tar (OCI image layout in a tar, gzip layer) and
# busybox.docker.tar (the `docker save` format, uncompressed layer), both named
# bosun.test/busybox:latest. Idempotent: does nothing when the images of this script's version
# are already there.
set -euo pipefail

OUT="${BOSUN_IMAGES_DIR:-$HOME/.cache/bosun/images}"
SCRIPT_HASH="$(sha256sum "$0" | cut -c1-16)"
STAMP="$OUT/.built-$SCRIPT_HASH"
if [ -f "$STAMP" ] && [ -f "$OUT/busybox.oci.tar" ] && [ -f "$OUT/busybox.docker.tar" ]; then
    exit 0
fi
mkdir -p "$OUT"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# busybox-static from Debian, unpacked without installing it.
DEB_CACHE="$HOME/.cache/bosun/debs"
mkdir -p "$DEB_CACHE"
DEB="$(ls "$DEB_CACHE"/busybox-static_*.deb 2>/dev/null | head -n1 || true)"
if [ -z "$DEB" ]; then
    (cd "$DEB_CACHE" && { apt-get download busybox-static >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get download busybox-static >/dev/null; }; })
    DEB="$(ls "$DEB_CACHE"/busybox-static_*.deb | head -n1)"
fi
dpkg-deb -x "$DEB" "$WORK/deb"

# The root filesystem: /bin/busybox and one symlink per applet, a minimal /etc.
ROOT="$WORK/rootfs"
mkdir -p "$ROOT"/{bin,etc,tmp,root,home,var,proc,sys,dev,usr/bin,usr/sbin,sbin}
cp "$WORK/deb/bin/busybox" "$ROOT/bin/busybox"
chmod 0755 "$ROOT/bin/busybox"
for applet in $("$ROOT/bin/busybox" --list); do
    [ "$applet" = busybox ] && continue
    ln -sf busybox "$ROOT/bin/$applet"
done
chmod 1777 "$ROOT/tmp"
chmod 0700 "$ROOT/root"
cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
mkdir -p "$ROOT/var/www"
echo "hello from bosun busybox" >"$ROOT/var/www/index.html"

sha() { sha256sum "$1" | cut -d' ' -f1; }

# One layer, reproducible (sorted, fixed mtime and owners).
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$ROOT" -cf "$WORK/layer.tar" .
DIFF_ID="$(sha "$WORK/layer.tar")"
gzip -n -c "$WORK/layer.tar" >"$WORK/layer.tar.gz"
LAYER_GZ="$(sha "$WORK/layer.tar.gz")"
LAYER_GZ_SIZE="$(stat -c %s "$WORK/layer.tar.gz")"

cat >"$WORK/config.json" <<EOF
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$DIFF_ID"]},"history":[{"created_by":"scripts/build-test-images.sh"}]}
EOF
CONFIG="$(sha "$WORK/config.json")"
CONFIG_SIZE="$(stat -c %s "$WORK/config.json")"

# OCI image layout, then as a tar (an "OCI archive").
LAYOUT="$WORK/oci"
mkdir -p "$LAYOUT/blobs/sha256"
cp "$WORK/layer.tar.gz" "$LAYOUT/blobs/sha256/$LAYER_GZ"
cp "$WORK/config.json" "$LAYOUT/blobs/sha256/$CONFIG"
cat >"$WORK/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$CONFIG","size":$CONFIG_SIZE},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$LAYER_GZ","size":$LAYER_GZ_SIZE}]}
EOF
MANIFEST="$(sha "$WORK/manifest.json")"
MANIFEST_SIZE="$(stat -c %s "$WORK/manifest.json")"
cp "$WORK/manifest.json" "$LAYOUT/blobs/sha256/$MANIFEST"
echo '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"
cat >"$LAYOUT/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$MANIFEST","size":$MANIFEST_SIZE,"annotations":{"io.containerd.image.name":"bosun.test/busybox:latest","org.opencontainers.image.ref.name":"latest"},"platform":{"architecture":"amd64","os":"linux"}}]}
EOF
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$LAYOUT" -cf "$WORK/busybox.oci.tar" .

# The `docker save` format: manifest.json, the config and an uncompressed layer.tar.
DOCKER="$WORK/docker"
mkdir -p "$DOCKER/$DIFF_ID"
cp "$WORK/layer.tar" "$DOCKER/$DIFF_ID/layer.tar"
cp "$WORK/config.json" "$DOCKER/$CONFIG.json"
cat >"$DOCKER/manifest.json" <<EOF
[{"Config":"$CONFIG.json","RepoTags":["bosun.test/busybox:latest"],"Layers":["$DIFF_ID/layer.tar"]}]
EOF
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$DOCKER" -cf "$WORK/busybox.docker.tar" .

mv "$WORK/busybox.oci.tar" "$OUT/busybox.oci.tar.tmp" && mv "$OUT/busybox.oci.tar.tmp" "$OUT/busybox.oci.tar"
mv "$WORK/busybox.docker.tar" "$OUT/busybox.docker.tar.tmp" && mv "$OUT/busybox.docker.tar.tmp" "$OUT/busybox.docker.tar"
rm -f "$OUT"/.built-*
touch "$STAMP"
echo "build-test-images: $OUT/busybox.oci.tar $OUT/busybox.docker.tar"
