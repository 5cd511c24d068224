#!/usr/bin/env bash
# Install what the testbed needs: Debian packages of the host (Slurm, munge, MariaDB: the
# host's release's own, bookworm's or trixie's), the Python client libraries in the project's
# venv, the Kubernetes control plane with kubectl and etcd (pinned: built in a bookworm root)
# and the trixie chroot with HTCondor and radosgw (both built once, cached outside the checkout).
# A fast no-op when everything is present. Prints the Kubernetes binary directory last.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${TESTBED_PYTHON:-$(cd "$HERE/.." && pwd)/.venv/bin/python}

packages=(openssl curl jq slurm-wlm munge slurmdbd mariadb-server bubblewrap debootstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "testbed: installing Debian packages: ${missing[*]}" >&2
  # Daemons are started by up.sh, never by the packages' maintainer scripts (no systemd here):
  # a policy-rc.d that says 101 keeps invoke-rc.d from starting munge/mariadb behind our back.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
fi

if [ ! -x "$PY" ]; then
  echo "testbed: no Python at $PY (set TESTBED_PYTHON or create the venv at .venv)" >&2
  exit 1
fi
if ! "$PY" -c 'import kubernetes, httpx, yaml' 2>/dev/null; then
  echo "testbed: installing kubernetes and httpx into $PY's environment" >&2
  "$PY" -m pip install -q kubernetes httpx >&2
fi

# HTCondor and radosgw live in a cached trixie chroot (about 3 minutes to build, once).
if [ "${TESTBED_HTCONDOR:-1}" != 0 ] || [ "${TESTBED_S3:-1}" != 0 ]; then
  "$HERE/setup-chroot.sh" >&2
fi

# kube-apiserver, scheduler, controller-manager, kubectl (the testbed applies rbac.yaml with
# it, the docs' kubectl commands run with it) and etcd, all from bookworm (build-k8s.sh)
BIN=$("$HERE/build-k8s.sh" | tail -n 1)
echo "$BIN"
