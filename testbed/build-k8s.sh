#!/usr/bin/env bash
# Build kube-apiserver, kube-scheduler and kube-controller-manager from Debian's own
# `kubernetes` source package (no binary release is reachable from these machines).
# The result is cached outside the checkout, keyed by version, so only the first run pays
# the ~7 minutes. Prints the binary directory on its last line.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-1.20.2}
CACHE=${INTERLINK_TESTBED_CACHE:-$HOME/.cache/snakemake-executor-plugin-interlink}
BIN=$CACHE/k8s-$K8S_VERSION/bin
components=(kube-apiserver kube-scheduler kube-controller-manager)

# Bump when the build recipe changes, so that stale cached binaries get rebuilt.
BUILD_ID="k8s=$K8S_VERSION reflect2=1.0.2"
have_all() {
  for c in "${components[@]}"; do [ -x "$BIN/$c" ] || return 1; done
  [ "$(cat "$BIN/.build-id" 2>/dev/null)" = "$BUILD_ID" ]
}
if have_all; then echo "$BIN"; exit 0; fi

# One build at a time: a second caller waits for the first and then finds the cache filled.
mkdir -p "$CACHE"
exec 9>"$CACHE/k8s-$K8S_VERSION.lock"
if ! flock -n 9; then
  echo "testbed: another build of Kubernetes v$K8S_VERSION is running; waiting for it" >&2
  flock 9
fi
if have_all; then echo "$BIN"; exit 0; fi

echo "testbed: building Kubernetes v$K8S_VERSION into $BIN (cold build: about 7 minutes)" >&2
src=/etc/apt/sources.list.d/debian-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$src"
  apt-get update -qq
fi
command -v go >/dev/null || apt-get install -y -qq --no-install-recommends golang-go rsync make dpkg-dev >/dev/null
# The tree vendors modern-go/reflect2 v1.0.1, which breaks under Go >= 1.18: the apiserver
# panics (nil pointer in reflect2.Type2) on the first JSON decode of a map-bearing type,
# e.g. any POST of a Namespace. Debian's golang-github-modern-go-reflect2-dev is v1.0.2,
# the upstream fix; it replaces the vendored copy below.
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
[ -f "$REFLECT2/reflect2.go" ] || apt-get install -y -qq --no-install-recommends golang-github-modern-go-reflect2-dev >/dev/null

work=$CACHE/k8s-$K8S_VERSION/build
mkdir -p "$work" "$BIN"
cd "$work"
# bookworm ships it as kubernetes_1.20.5+really1.20.2: the tree is v1.20.2
ls kubernetes_*.orig.tar.gz >/dev/null 2>&1 || apt-get source --download-only kubernetes >/dev/null
[ -d src ] || { mkdir -p src.tmp && tar xzf kubernetes_*.orig.tar.gz -C src.tmp --strip-components=1 && mv src.tmp src; }
cd src
grep -q "really$K8S_VERSION\|^$K8S_VERSION" <<<"$(ls ../kubernetes_*.orig.tar.gz)" || { echo "testbed: Debian's kubernetes source is not v$K8S_VERSION" >&2; exit 1; }
if ! grep -qs 'reflect2 1.0.2' vendor/github.com/modern-go/reflect2/.testbed-version; then
  rm -rf vendor/github.com/modern-go/reflect2
  cp -r "$REFLECT2" vendor/github.com/modern-go/reflect2
  echo 'reflect2 1.0.2 (Debian golang-github-modern-go-reflect2-dev)' >vendor/github.com/modern-go/reflect2/.testbed-version
fi
export HOME=$work/home GOCACHE=$work/gocache CGO_ENABLED=0
[ -d pkg/generated/openapi ] && ls pkg/generated/openapi/zz_generated.openapi.go >/dev/null 2>&1 || make gen_openapi >&2
mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
export GOPATH=$PWD/.go GO111MODULE=off
cd .go/src/k8s.io/kubernetes
V=k8s.io/kubernetes/vendor/k8s.io/component-base/version
[ "$(cat "$BIN/.build-id" 2>/dev/null)" = "$BUILD_ID" ] || rm -f "$BIN"/kube-* "$BIN/.build-id"
for c in "${components[@]}"; do
  [ -x "$BIN/$c" ] && continue
  echo "testbed: go build $c" >&2
  go build -ldflags "-s -w -X $V.gitVersion=v$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=20" -o "$BIN/$c.tmp" "./cmd/$c"
  mv "$BIN/$c.tmp" "$BIN/$c"
done
echo "$BUILD_ID" >"$BIN/.build-id"
rm -rf "$work"
echo "$BIN"
