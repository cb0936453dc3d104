#!/usr/bin/env bash
# Builds what the testbed's real node runs, once, into a cache folder outside the checkout, and
# prints the folder holding the binaries (last line of stdout).
#
#   k8s/testbed/build-node.sh            # build if needed, print the bin folder
#   MODELPORT_K8S_CACHE=/some/dir k8s/testbed/build-node.sh
#
# What it builds: kubelet and kube-proxy v1.20.2 from the same Debian bookworm `kubernetes` source
# tree and recipe as the control plane (k8s/testbed/build.sh); containerd 1.6 (with its runc shim
# and ctr) and the registry (Debian's docker-registry, distribution 2.8) taken from their .debs
# rather than installed, because installing them would start system services; and the pod
# sandbox's pause program (pause.c, gcc -static). runc, the CNI plugins, iptables and buildah are
# installed from Debian by the testbed itself (k8s/testbed/packages.py).
# The cache key is the hash of this script, source.sh and pause.c: editing the recipe builds into
# a fresh folder.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
KEY=$(cat "$HERE/build-node.sh" "$HERE/source.sh" "$HERE/pause.c" | sha256sum | cut -c1-12)
CACHE=${MODELPORT_K8S_CACHE:-$HOME/.cache/modelport-k8s}
DEST="$CACHE/node-v1.20.2-$KEY"
BIN="$DEST/bin"
log() { echo "k8s-testbed: $*" >&2; }

if [ -f "$BIN/.complete" ]; then
    echo "$BIN"
    exit 0
fi

mkdir -p "$DEST"
# One build at a time per cache folder, and one Go build at a time: a node build started while
# the control plane builds (build.sh holds its folder's lock) waits for it; both saturate the machine.
exec 9>"$DEST/.lock"
flock 9
exec 8>"$CACHE/.go-build.lock"
flock 8
CONTROL_PLANE="$CACHE/v1.20.2-$(sha256sum "$HERE/build.sh" | cut -c1-12)"
if [ -f "$CONTROL_PLANE/.lock" ]; then
    exec 7>>"$CONTROL_PLANE/.lock"
    flock 7  # held by build.sh while it builds
    exec 7>&-
fi
if [ -f "$BIN/.complete" ]; then
    echo "$BIN"
    exit 0
fi

SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
export DEBIAN_FRONTEND=noninteractive
START=$(date +%s)

if [ ! -x /usr/lib/go-1.19/bin/go ] || ! command -v rsync >/dev/null || ! command -v gcc >/dev/null \
    || [ ! -f /usr/lib/x86_64-linux-gnu/libc.a ]; then
    log "installing golang-1.19-go, rsync, gcc and libc6-dev from Debian"
    $SUDO apt-get update -q >/dev/null
    # rsync is used by Kubernetes' own make (gen_openapi places its generator with it)
    $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=300 golang-1.19-go rsync gcc libc6-dev >/dev/null
fi

W="$DEST/work"
rm -rf "$W" "$BIN.tmp"
mkdir -p "$W" "$BIN.tmp"
# shellcheck source=k8s/testbed/source.sh
. "$HERE/source.sh"
log "fetching the kubernetes source package, containerd and docker-registry"
fetch_kubernetes_source "$W" containerd docker-registry

go_env "$W"
cd "$GOPATH/src/k8s.io/kubernetes"
log "generating openapi definitions"
make gen_openapi KUBE_VERBOSE=0 >/dev/null
LDF=$(version_ldflags)
for c in kubelet kube-proxy; do
    log "building $c"
    nice -n 10 go build -p "${BUILD_JOBS:-$(nproc)}" -ldflags "$LDF" -o "$BIN.tmp/$c" "./cmd/$c"
done

cd "$W"
dpkg-deb -x containerd_*.deb containerdx
dpkg-deb -x docker-registry_*.deb registryx
cp containerdx/usr/bin/containerd containerdx/usr/bin/containerd-shim-runc-v2 containerdx/usr/bin/ctr "$BIN.tmp/"
cp registryx/usr/bin/docker-registry "$BIN.tmp/registry"
gcc -static -O2 -o "$BIN.tmp/pause" "$HERE/pause.c"

"$BIN.tmp/kubelet" --version >&2
touch "$BIN.tmp/.complete"
rm -rf "$BIN"
mv "$BIN.tmp" "$BIN"
rm -rf "$W"
log "built in $(( $(date +%s) - START )) s into $BIN"
echo "$BIN"
