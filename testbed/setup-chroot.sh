#!/usr/bin/env bash
# A Debian trixie chroot holding HTCondor (minihtcondor) and Ceph radosgw (S3 with the
# SQLite "dbstore" backend): neither exists for bookworm in a runnable form. Built once
# with debootstrap and cached outside the checkout, keyed by suite and package set.
# Prints the chroot's path on its last line. Mounts are made by up.sh, not here.
set -euo pipefail
CACHE=${INTERLINK_TESTBED_CACHE:-$HOME/.cache/snakemake-executor-plugin-interlink}
PACKAGES="minihtcondor radosgw"
KEY=$(echo "trixie $PACKAGES v1" | sha256sum | cut -c1-12)
ROOT=$CACHE/chroot-trixie-$KEY
if [ -f "$ROOT/.ready" ]; then echo "$ROOT"; exit 0; fi

echo "testbed: building the trixie chroot ($PACKAGES) in $ROOT (about 3 minutes, once)" >&2
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
rm -rf "$ROOT.tmp"
debootstrap --variant=minbase trixie "$ROOT.tmp" http://deb.debian.org/debian >&2
printf '#!/bin/sh\nexit 101\n' >"$ROOT.tmp/usr/sbin/policy-rc.d"
chmod +x "$ROOT.tmp/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT.tmp/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$ROOT.tmp/proc"
trap 'umount "$ROOT.tmp/proc" 2>/dev/null || true' EXIT
chroot "$ROOT.tmp" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES" >&2
chroot "$ROOT.tmp" sh -c 'id tester >/dev/null 2>&1 || useradd -m tester'
umount "$ROOT.tmp/proc"
trap - EXIT
touch "$ROOT.tmp/.ready"
mv "$ROOT.tmp" "$ROOT"
echo "$ROOT"
