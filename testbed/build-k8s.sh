#!/usr/bin/env bash
# Build kube-apiserver, kube-scheduler and kube-controller-manager from Debian bookworm's own
# `kubernetes` source package (no binary release is reachable from these machines), and take
# kubectl and etcd from bookworm's kubernetes-client and etcd-server packages. Everything is
# done inside a debootstrapped bookworm root with bookworm's apt and Go, whatever the host's
# release (trixie's source package is 1.32 and client-only, its Go 1.24), so the result is the
# same on Debian 12 and 13. The Go binaries are static; etcd needs only libc.
# The result is cached outside the checkout, keyed by version and recipe, so only the first
# run pays (~10 minutes). Prints the binary directory on its last line.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-1.20.2}
SUITE=bookworm # bookworm ships kubernetes 1.20.5+really1.20.2: the tree is v1.20.2
MIRROR=http://deb.debian.org/debian
CACHE=${INTERLINK_TESTBED_CACHE:-$HOME/.cache/snakemake-executor-plugin-interlink}
# Change RECIPE when the build changes: a new key is a new directory, so binaries of an older
# recipe (still used by a testbed that is running) are never overwritten.
RECIPE="k8s=$K8S_VERSION suite=$SUITE go=$SUITE reflect2=1.0.2 kubectl,etcd=$SUITE-debs v1"
KEY=$(echo "$RECIPE" | sha256sum | cut -c1-12)
DIR=$CACHE/k8s-$K8S_VERSION-$SUITE-$KEY
BIN=$DIR/bin
ROOT=$DIR/root
files=(kube-apiserver kube-scheduler kube-controller-manager kubectl etcd)

have_all() {
  for f in "${files[@]}"; do [ -x "$BIN/$f" ] || return 1; done
  [ "$(cat "$BIN/.recipe" 2>/dev/null)" = "$RECIPE" ]
}
if have_all; then echo "$BIN"; exit 0; fi

# One build at a time: a second caller waits for the first and then finds the cache filled.
mkdir -p "$DIR"
exec 9>"$DIR.lock"
if ! flock -n 9; then
  echo "testbed: another build of Kubernetes v$K8S_VERSION is running; waiting for it" >&2
  flock 9
fi
if have_all; then echo "$BIN"; exit 0; fi
echo "testbed: building Kubernetes v$K8S_VERSION in a $SUITE root, into $BIN (cold: about 10 minutes)" >&2

# The build root: kept until the binaries are in place (a failed build resumes in it), then
# removed: it holds ~3 GB of Go caches and sources, and a new recipe needs a new root anyway.
if [ ! -f "$ROOT/.ready" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends debootstrap debian-archive-keyring >/dev/null; }
  rm -rf "$ROOT"
  debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >&2
  printf 'deb %s %s main\ndeb-src %s %s main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$ROOT/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"
  touch "$ROOT/.ready"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" # the host's current one
# /proc is mounted only while commands run in the root
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/build/home LANG=C.UTF-8 chroot "$ROOT" "$@"; }
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
trap 'umount "$ROOT/proc" 2>/dev/null || umount -l "$ROOT/proc" 2>/dev/null || true' EXIT

in_root sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  golang-go golang-github-modern-go-reflect2-dev make rsync dpkg-dev >/dev/null' >&2

cat >"$ROOT/build.sh" <<'EOF'
# Runs inside the root: fetch, patch and build; the results go to /build/out.
set -euo pipefail
K8S_VERSION=$1
mkdir -p /build/out /build/home /build/debs
cd /build/debs
ls kubernetes-client_*.deb >/dev/null 2>&1 || apt-get download -qq kubernetes-client etcd-server
for pair in kubernetes-client:kubectl etcd-server:etcd; do
  [ -x "/build/out/${pair#*:}" ] && continue
  dpkg-deb --fsys-tarfile "${pair%%:*}"_*.deb | tar -xO "./usr/bin/${pair#*:}" >"/build/out/${pair#*:}.tmp"
  chmod 755 "/build/out/${pair#*:}.tmp" && mv "/build/out/${pair#*:}.tmp" "/build/out/${pair#*:}"
done
cd /build
ls kubernetes_*.orig.tar.gz >/dev/null 2>&1 || apt-get source --download-only kubernetes >/dev/null
grep -q "really$K8S_VERSION\|_$K8S_VERSION" <<<"$(ls kubernetes_*.orig.tar.gz)" ||
  { echo "testbed: Debian's kubernetes source is not v$K8S_VERSION" >&2; exit 1; }
[ -d src ] || { mkdir -p src.tmp && tar xzf kubernetes_*.orig.tar.gz -C src.tmp --strip-components=1 && mv src.tmp src; }
cd src
# The tree vendors modern-go/reflect2 v1.0.1, which breaks under Go >= 1.18: the apiserver
# panics (nil pointer in reflect2.Type2) on the first JSON decode of a map-bearing type,
# e.g. any POST of a Namespace. Debian's golang-github-modern-go-reflect2-dev is v1.0.2,
# the upstream fix; it replaces the vendored copy.
if ! grep -qs 'reflect2 1.0.2' vendor/github.com/modern-go/reflect2/.testbed-version; then
  rm -rf vendor/github.com/modern-go/reflect2
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
  echo 'reflect2 1.0.2 (Debian golang-github-modern-go-reflect2-dev)' >vendor/github.com/modern-go/reflect2/.testbed-version
fi
export GOCACHE=/build/gocache CGO_ENABLED=0
ls pkg/generated/openapi/zz_generated.openapi.go >/dev/null 2>&1 || make gen_openapi
mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
export GOPATH=$PWD/.go GO111MODULE=off
cd .go/src/k8s.io/kubernetes
V=k8s.io/kubernetes/vendor/k8s.io/component-base/version
for c in kube-apiserver kube-scheduler kube-controller-manager; do
  [ -x "/build/out/$c" ] && continue
  echo "testbed: go build $c ($(go version))"
  go build -ldflags "-s -w -X $V.gitVersion=v$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=20" -o "/build/out/$c.tmp" "./cmd/$c"
  mv "/build/out/$c.tmp" "/build/out/$c"
done
EOF
in_root bash /build.sh "$K8S_VERSION" >&2
umount "$ROOT/proc"
trap - EXIT

rm -rf "$BIN.tmp" && mkdir -p "$BIN.tmp"
for f in "${files[@]}"; do cp "$ROOT/build/out/$f" "$BIN.tmp/$f"; done
echo "$RECIPE" >"$BIN.tmp/.recipe"
rm -rf "$BIN" && mv "$BIN.tmp" "$BIN"
rm -rf "$ROOT"
echo "$BIN"
