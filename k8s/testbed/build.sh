#!/usr/bin/env bash
# Builds the Kubernetes control plane that modelport's Kubernetes test tier runs against, once, into
# a cache folder outside the checkout, and prints the folder holding the binaries (last line of stdout).
#
#   k8s/testbed/build.sh            # build if needed, print the bin folder
#   MODELPORT_K8S_CACHE=/some/dir k8s/testbed/build.sh
#
# What it builds: kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 from Debian
# bookworm's `kubernetes` source package (the only full Kubernetes source tree any reachable
# registry ships) with Debian's Go 1.19, and etcd 3.4.23 taken from Debian's `etcd-server` .deb.
# Why and how is in docs/kubernetes.md; the steps follow the project's testbed research notes.
# The cache key is this script's own hash, so editing the recipe builds into a fresh folder.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
KEY=$(sha256sum "$HERE/build.sh" | cut -c1-12)
CACHE=${MODELPORT_K8S_CACHE:-$HOME/.cache/modelport-k8s}
DEST="$CACHE/v1.20.2-$KEY"
BIN="$DEST/bin"
log() { echo "k8s-testbed: $*" >&2; }

if [ -f "$BIN/.complete" ]; then
    echo "$BIN"
    exit 0
fi

mkdir -p "$DEST"
# One build at a time per cache folder: a second caller waits, then finds the finished binaries.
exec 9>"$DEST/.lock"
flock 9
if [ -f "$BIN/.complete" ]; then
    echo "$BIN"
    exit 0
fi

SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
export DEBIAN_FRONTEND=noninteractive
START=$(date +%s)

if [ ! -x /usr/lib/go-1.19/bin/go ] || ! command -v rsync >/dev/null || ! command -v openssl >/dev/null; then
    log "installing golang-1.19-go, rsync and openssl from Debian"
    $SUDO apt-get update -q >/dev/null
    # rsync is used by Kubernetes' own make (gen_openapi places its generator with it)
    $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=300 golang-1.19-go rsync openssl >/dev/null
fi

W="$DEST/work"
rm -rf "$W" "$BIN.tmp"
mkdir -p "$W" "$BIN.tmp"

# A deb-src index in a private apt state folder, derived from the machine's own Debian sources
# (same mirror); the system's apt configuration is left untouched.
mkdir -p "$W/apt/lists/partial" "$W/apt/sources.list.d"
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        >"$W/apt/sources.list.d/debian-src.sources"
else
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$W/apt/sources.list.d/debian-src.list"
fi
APT=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$W/apt/sources.list.d"
     -o Dir::State::Lists="$W/apt/lists")
log "fetching the kubernetes source package"
apt-get "${APT[@]}" update -q >/dev/null
cd "$W"
apt-get "${APT[@]}" source --download-only kubernetes=1.20.5+really1.20.2-1.1+deb12u1 >/dev/null 2>&1
tar xzf kubernetes_1.20.5+really1.20.2.orig.tar.gz

# Go >= 1.18 crashes the apiserver with the vendored reflect2 v1.0.1 (json-iterator map encoding):
# swap in Debian's reflect2 1.0.2 and json-iterator 1.1.12 (source-only -dev packages).
apt-get download golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev etcd-server \
    >/dev/null 2>&1
for f in golang-github-modern-go-reflect2-dev_*.deb golang-github-json-iterator-go-dev_*.deb; do
    dpkg-deb -x "$f" debx
done
V=kubernetes-1.20.2/vendor/github.com
rm -rf "$V/modern-go/reflect2" "$V/json-iterator/go"
cp -r debx/usr/share/gocode/src/github.com/modern-go/reflect2 "$V/modern-go/"
cp -r debx/usr/share/gocode/src/github.com/json-iterator/go "$V/json-iterator/"
find "$V/modern-go/reflect2" "$V/json-iterator/go" -name '*_test.go' -delete

# Kubernetes 1.20 builds in GOPATH mode (module mode fails with "updates to go.mod needed").
export GOPATH="$W/gopath" GOCACHE="$W/gocache" GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
export PATH=/usr/lib/go-1.19/bin:$PATH
mkdir -p "$GOPATH/src/k8s.io"
ln -sfn "$W/kubernetes-1.20.2" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
log "generating openapi definitions"
# pkg/generated/openapi is generated at build time, not shipped in the source tree
make gen_openapi KUBE_VERBOSE=0 >/dev/null
# The version variables must be named by their vendor/ import paths in GOPATH mode, otherwise
# /version reports v0.0.0-master.
LDF="-s -w"
for p in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
    LDF="$LDF -X $p.gitVersion=v1.20.2 -X $p.gitMajor=1 -X $p.gitMinor=20 -X $p.gitTreeState=clean"
done
for c in kube-apiserver kube-controller-manager kube-scheduler; do
    log "building $c"
    nice -n 10 go build -p "${BUILD_JOBS:-$(nproc)}" -ldflags "$LDF" -o "$BIN.tmp/$c" "./cmd/$c"
done

# etcd: extracted from the .deb, not installed (installing would start a system service).
cd "$W"
dpkg-deb -x etcd-server_*.deb etcdx
cp etcdx/usr/bin/etcd "$BIN.tmp/etcd"

"$BIN.tmp/kube-apiserver" --version >&2
touch "$BIN.tmp/.complete"
rm -rf "$BIN"
mv "$BIN.tmp" "$BIN"
# The work folder (sources, Go cache: about 2 GB) is not needed once the binaries exist.
rm -rf "$W"
log "built in $(( $(date +%s) - START )) s into $BIN"
echo "$BIN"
