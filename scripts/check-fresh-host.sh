#!/usr/bin/env bash
# Does the README's set-up work on a fresh Debian 12 or 13 machine? Debootstraps a fresh root
# of that release, installs what such a machine image has before any project step, copies a
# clean clone of this repository in (the committed HEAD of the current branch) and runs the
# README's two commands in it exactly as written, as root, each timed.
#
#   scripts/check-fresh-host.sh bookworm|trixie [--reuse-k8s-cache]
#
# --reuse-k8s-cache copies the host's Kubernetes build cache (testbed/build-k8s.sh's binaries)
# in, to save the ~10-minute build on a second run; nothing else comes from the host's caches.
# Takes about an hour (a cold set-up, then the whole test suite). Run by hand when the set-up
# changes; not part of CI.
#
# The commands run in their own network, PID, mount, UTS and IPC namespaces, so that the
# testbed inside (etcd, kube-apiserver, Slurm, munge, MariaDB, the virtual nodes, HTCondor,
# radosgw) uses the same ports, sockets and host name rules as on a real machine without
# touching a testbed running on this host. slirp4netns gives the namespace internet access (NAT,
# no route to the host's loopback). The root gets its own /proc, /sys, a fresh devpts and
# /dev/shm over the host's /dev, and an empty tmpfs on /run: a fresh machine's /run is empty,
# and the host's holds its testbed's munge and MariaDB sockets.
set -euo pipefail

# What a fresh machine of this project's kind has besides Debian's minimal base: CPython with
# pip and venv, a C compiler and Python's headers (for packages without wheels), git, TLS
# certificates, curl, ps/ip/hostname and sudo.
IMAGE_PACKAGES=(python3 python3-venv python3-pip python3-dev gcc git ca-certificates curl
  procps iproute2 hostname sudo)
MIRROR=http://deb.debian.org/debian
SECURITY=http://deb.debian.org/debian-security

# ---------------------------------------------------------------- inside the namespaces
if [ "${1:-}" = --inner ]; then
  root=$2 host=$3 results=$4 repo=$5
  shift 5
  hostname "$host"
  # The root a mount of its own, as a machine's / is: `unshare --propagation private` (the
  # tests' stand-in for a pod) changes the propagation of /, which needs / to be a mount
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc" # this PID namespace's
  mount -t sysfs sysfs "$root/sys" # this network namespace's devices
  # the machine's cgroup hierarchies as they are mounted on it (slurmd autodetects their
  # version from this layout: a cgroup2 mount over v1 controllers is "hybrid", fatal to it)
  if mountpoint -q /sys/fs/cgroup; then
    mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
    mount --make-rslave "$root/sys/fs/cgroup"
  fi
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$root/dev/pts"
  mount --bind "$root/dev/pts/ptmx" "$root/dev/ptmx"
  mount -t tmpfs -o mode=755 tmpfs "$root/run"
  # slirp4netns configures tap0 from outside once this namespace exists
  for ((i = 0; i < 60; i++)); do
    ip -4 addr show tap0 2>/dev/null | grep -q inet && break
    sleep 0.5
  done
  ip -4 addr show tap0 | grep -q inet || { echo "check: no network in the namespace" >&2; exit 1; }
  for cmd in "$@"; do
    echo "check: ==== $cmd   (in /root/$repo, $(date -u +%H:%M:%SZ))"
    start=$(date +%s)
    rc=0
    chroot "$root" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
      TERM="${TERM:-dumb}" LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      /bin/bash -c "cd /root/$repo && $cmd" </dev/null || rc=$?
    secs=$(($(date +%s) - start))
    printf '%s\texit %s\t%dm%02ds\n' "$cmd" "$rc" $((secs / 60)) $((secs % 60)) | tee -a "$results"
  done
  exit 0
fi

# ---------------------------------------------------------------- on the host
usage() { echo "usage: $0 bookworm|trixie [--reuse-k8s-cache]" >&2; exit 2; }
release=${1:-}
case $release in bookworm | trixie) ;; *) usage ;; esac
reuse=0
case ${2:-} in "") ;; --reuse-k8s-cache) reuse=1 ;; *) usage ;; esac
[ "$(id -u)" = 0 ] || { echo "check: run as root (debootstrap, namespaces, mounts)" >&2; exit 1; }
missing=()
for tool in debootstrap slirp4netns unshare git; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap slirp4netns git >/dev/null
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
name=snakemake-executor-plugin-interlink # the clone's directory, whatever this checkout's is
branch=$(git -C "$REPO" rev-parse --abbrev-ref HEAD)
commit=$(git -C "$REPO" rev-parse HEAD)
[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no)" ] ||
  echo "check: note: uncommitted changes in $REPO are not part of the check (it clones HEAD)" >&2
# The README's two commands, as written: the scripts/ lines of its first sh block
mapfile -t commands < <(awk '/^```sh/{b++; next} /^```/{if (b == 1) exit} b == 1' "$REPO/README.md" |
  sed -e 's/[[:space:]]*#.*$//' -e 's/^[[:space:]]*//' | grep '^scripts/')
# CHECK_COMMANDS (one per line) replaces them, to try this script itself
[ -n "${CHECK_COMMANDS:-}" ] && mapfile -t commands <<<"$CHECK_COMMANDS"
[ -n "${CHECK_COMMANDS:-}" ] || ((${#commands[@]} == 2)) || { echo "check: expected two commands in README.md's first sh block, got: ${commands[*]}" >&2; exit 1; }

WORK=$(mktemp -d "/var/tmp/check-fresh-host-$release.XXXXXX")
ROOT=$WORK/root
results=$WORK/results
ns_pid="" slirp_pid=""
unmount_all() { # everything mounted below the root in the host's mount namespace, deepest first
  awk -v r="$ROOT/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "check: could not unmount $m" >&2
  done
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # killing the namespace's init (unshare's child) kills every process in the PID namespace,
  # and with the last one the mount namespace and all its mounts go
  if [ -n "$ns_pid" ]; then
    pkill -KILL -P "$ns_pid" 2>/dev/null || true
    kill -KILL "$ns_pid" 2>/dev/null || true
    wait "$ns_pid" 2>/dev/null || true
  fi
  [ -n "$slirp_pid" ] && { kill "$slirp_pid" 2>/dev/null || true; wait "$slirp_pid" 2>/dev/null || true; }
  unmount_all
  if awk -v r="$ROOT/" 'index($5, r) == 1' /proc/self/mountinfo | grep -q .; then
    echo "check: mounts remain below $ROOT; not removing $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "check: interrupted" >&2; exit 130' INT TERM

hms() { local s=$(($(date +%s) - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
echo "check: $release, $name $branch $commit, in $WORK"
t0=$(date +%s)
debootstrap --variant=minbase "$release" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
  { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
# the sources of a Debian cloud image: the release, its updates and security
printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
  "$MIRROR" "$release" "$MIRROR" "$release" "$SECURITY" "$release" >"$ROOT/etc/apt/sources.list"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# This kind of machine reaches the internet through an egress proxy whose CA its image trusts
# (the host's /usr/local/share/ca-certificates, and pip told to use the system's bundle): the
# image of a fresh one has them too. They are certificates and configuration, not caches.
mkdir -p "$ROOT/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c \
  "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${IMAGE_PACKAGES[*]} && apt-get clean" \
  >"$WORK/image.log" 2>&1 || { tail -20 "$WORK/image.log" >&2; exit 1; }
umount "$ROOT/proc"
rm "$ROOT/usr/sbin/policy-rc.d" # a fresh machine has none
host=fresh-$release
echo "$host" >"$ROOT/etc/hostname"
# Slurm's node name is `hostname -s`: it must resolve, as on a real machine
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$host" >"$ROOT/etc/hosts"
echo "nameserver 10.0.2.3" >"$ROOT/etc/resolv.conf" # slirp4netns's DNS forwarder
git clone -q --no-local --branch "$branch" "$REPO" "$ROOT/root/$name"
[ "$(git -C "$ROOT/root/$name" rev-parse HEAD)" = "$commit" ]
if ((reuse)); then
  cache=${INTERLINK_TESTBED_CACHE:-$HOME/.cache/snakemake-executor-plugin-interlink}
  copied=0
  for bin in "$cache"/k8s-*/bin; do
    [ -f "$bin/.recipe" ] || continue # only build-k8s.sh's finished, recipe-keyed builds
    mkdir -p "$ROOT/root/.cache/snakemake-executor-plugin-interlink/$(basename "$(dirname "$bin")")"
    cp -a "$bin" "$ROOT/root/.cache/snakemake-executor-plugin-interlink/$(basename "$(dirname "$bin")")/"
    copied=1
  done
  ((copied)) || echo "check: --reuse-k8s-cache: no finished build in $cache; building inside" >&2
fi
echo "check: fresh $release root ready in $(hms "$t0") ($(chroot "$ROOT" python3 --version))"

# The namespaces; unshare's own process is in the new network namespace, slirp4netns attaches to it
unshare --net --pid --fork --mount --uts --ipc --kill-child \
  "$REPO/scripts/check-fresh-host.sh" --inner "$ROOT" "$host" "$results" "$name" "${commands[@]}" &
ns_pid=$!
for ((i = 0; i < 100; i++)); do
  [ "$(readlink "/proc/$ns_pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] && break
  sleep 0.1
done
slirp4netns --configure --mtu=65520 --disable-host-loopback "$ns_pid" tap0 >"$WORK/slirp4netns.log" 2>&1 &
slirp_pid=$!
status=0
wait "$ns_pid" || status=$?
ns_pid=""

echo "check: ==== summary: $release ($name $branch $commit), total $(hms "$t0")"
if [ -s "$results" ]; then cat "$results"; else echo "check: no command ran (namespace exited $status)"; fi
awk -F'\t' -v n=${#commands[@]} '$2 != "exit 0" {bad = 1} END {exit bad || NR != n}' "$results" 2>/dev/null
