# Sourced by k8s/testbed/build-node.sh: fetch_kubernetes_source WORKDIR unpacks Debian bookworm's
# `kubernetes` 1.20.2 source tree into WORKDIR/kubernetes-1.20.2 with the two vendored Go
# libraries swapped that Go >= 1.18 needs, and leaves the Debian .debs it downloaded in WORKDIR.
# The recipe is the one of k8s/testbed/build.sh (the control plane), which keeps its own copy so
# that its cache key (its own hash) did not change when the node build was added.

fetch_kubernetes_source() {
    local W=$1
    shift
    # A deb-src index in a private apt state folder, derived from the machine's own Debian sources
    # (same mirror); the system's apt configuration is left untouched.
    mkdir -p "$W/apt/lists/partial" "$W/apt/sources.list.d"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
            >"$W/apt/sources.list.d/debian-src.sources"
    else
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$W/apt/sources.list.d/debian-src.list"
    fi
    local APT=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$W/apt/sources.list.d"
               -o Dir::State::Lists="$W/apt/lists")
    apt-get "${APT[@]}" update -q >/dev/null
    (
        cd "$W"
        apt-get "${APT[@]}" source --download-only kubernetes=1.20.5+really1.20.2-1.1+deb12u1 >/dev/null 2>&1
        tar xzf kubernetes_1.20.5+really1.20.2.orig.tar.gz
        # Go >= 1.18 crashes with the vendored reflect2 v1.0.1 (json-iterator map encoding): swap in
        # Debian's reflect2 1.0.2 and json-iterator 1.1.12 (source-only -dev packages).
        apt-get download golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev "$@" \
            >/dev/null 2>&1
        for f in golang-github-modern-go-reflect2-dev_*.deb golang-github-json-iterator-go-dev_*.deb; do
            dpkg-deb -x "$f" debx
        done
        local V=kubernetes-1.20.2/vendor/github.com
        rm -rf "$V/modern-go/reflect2" "$V/json-iterator/go"
        cp -r debx/usr/share/gocode/src/github.com/modern-go/reflect2 "$V/modern-go/"
        cp -r debx/usr/share/gocode/src/github.com/json-iterator/go "$V/json-iterator/"
        find "$V/modern-go/reflect2" "$V/json-iterator/go" -name '*_test.go' -delete
    )
}

# go_env WORKDIR: GOPATH mode (1.20 fails in module mode: "updates to go.mod needed"), Debian's Go.
go_env() {
    export GOPATH="$1/gopath" GOCACHE="$1/gocache" GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
    export PATH=/usr/lib/go-1.19/bin:$PATH
    mkdir -p "$GOPATH/src/k8s.io"
    ln -sfn "$1/kubernetes-1.20.2" "$GOPATH/src/k8s.io/kubernetes"
}

# The version variables must be named by their vendor/ import paths in GOPATH mode, otherwise
# /version reports v0.0.0-master.
version_ldflags() {
    local LDF="-s -w" p
    for p in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
        LDF="$LDF -X $p.gitVersion=v1.20.2 -X $p.gitMajor=1 -X $p.gitMinor=20 -X $p.gitTreeState=clean"
    done
    echo "$LDF"
}
