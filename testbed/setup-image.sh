#!/usr/bin/env bash
# The job image of vk-slurm's sandbox (TESTBED_SANDBOX=bwrap): a Debian bookworm root with
# Debian's Python and, in a venv at /opt/snakemake, what docs/image.md says a job image needs:
# Snakemake of the same version as the checkout's venv and the storage plugins installed
# there (snakemake-storage-plugin-s3: without a shared filesystem the jobs stage their files
# through S3, and the submitting side passes every installed storage plugin's options, which
# a job's Snakemake without that plugin refuses). Built once with debootstrap and pip, cached
# outside the checkout keyed by its recipe (suite, Debian packages, pinned Python packages).
# Prints the root's path on its last line. Every pod's image maps to this root.
#
# A venv rather than `pip --break-system-packages`: the job runs `python` (Snakemake's job
# command and the executor's end reporter), which Debian's python3 does not provide without
# python-is-python3, and the image's PATH (/.singularity.d/env, as a Docker image's ENV
# becomes) names the venv first, as snakemake/snakemake's image puts its environment first;
# Debian's own Python stays as dpkg installed it (PEP 668).
set -euo pipefail
TESTBED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${INTERLINK_TESTBED_CACHE:-$HOME/.cache/snakemake-executor-plugin-interlink}
PY=${TESTBED_PYTHON:-$TESTBED_DIR/../.venv/bin/python}
SUITE=bookworm
DEBS="python3 python3-venv python3-pip ca-certificates"
VENV=/opt/snakemake
# the job's Python packages, pinned to the versions of the submitting side
PIP_PACKAGES=$("$PY" - <<'PYEOF'
from importlib import metadata
wanted = ["snakemake", "snakemake-storage-plugin-s3"]
print(" ".join(f"{name}=={metadata.version(name)}" for name in wanted))
PYEOF
)
IMAGE_PATH="$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEY=$(echo "$SUITE $DEBS | $VENV $PIP_PACKAGES | $IMAGE_PATH v2" | sha256sum | cut -c1-12)
ROOT=$CACHE/image-$KEY
if [ -f "$ROOT/.ready" ]; then echo "$ROOT"; exit 0; fi

echo "testbed: building the job image ($SUITE, $PIP_PACKAGES) in $ROOT (a few minutes, once)" >&2
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
mkdir -p "$CACHE"
rm -rf "$ROOT.tmp"
debootstrap --variant=minbase "$SUITE" "$ROOT.tmp" http://deb.debian.org/debian >&2
printf '#!/bin/sh\nexit 101\n' >"$ROOT.tmp/usr/sbin/policy-rc.d"
chmod +x "$ROOT.tmp/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT.tmp/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$ROOT.tmp/proc"
trap 'umount "$ROOT.tmp/proc" 2>/dev/null || true' EXIT
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$ROOT.tmp" "$@"; }
in_root sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $DEBS && apt-get clean" >&2
in_root python3 -m venv "$VENV"
# pip inside the root reaches PyPI with the host's certificate bundle (a site proxy's CA
# may be only there); the bundle is removed afterwards
cp /etc/ssl/certs/ca-certificates.crt "$ROOT.tmp/tmp/host-ca.crt"
# shellcheck disable=SC2086 # PIP_PACKAGES: one word per package
in_root env PIP_CERT=/tmp/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
  "$VENV/bin/pip" install --no-cache-dir --quiet $PIP_PACKAGES >&2
rm -f "$ROOT.tmp/tmp/host-ca.crt" "$ROOT.tmp/etc/resolv.conf" "$ROOT.tmp/etc/localtime"
# mount points of the host files Apptainer binds into every container (/etc/hosts,
# /etc/localtime, /etc/resolv.conf), as an Apptainer image has them
: >"$ROOT.tmp/etc/resolv.conf"
: >"$ROOT.tmp/etc/localtime"
[ -e "$ROOT.tmp/etc/hosts" ] || : >"$ROOT.tmp/etc/hosts"
# the image's environment as Apptainer keeps a Docker image's ENV
mkdir -p "$ROOT.tmp/.singularity.d/env"
printf 'export PATH="%s"\n' "$IMAGE_PATH" >"$ROOT.tmp/.singularity.d/env/10-docker2singularity.sh"
umount "$ROOT.tmp/proc"
trap - EXIT
touch "$ROOT.tmp/.ready"
mv "$ROOT.tmp" "$ROOT"
echo "$ROOT"
