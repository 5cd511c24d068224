#!/usr/bin/env bash
# Stop every daemon up.sh started (by the pids it recorded), after cancelling the Slurm and
# HTCondor jobs and local job processes left behind, and unmount the chroot. Keeps the state
# (etcd data, certificates, logs, HTCondor's queue, S3 data) for the next up.sh unless
# --purge is given; never touches the Kubernetes build cache or the cached chroot.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
case ${1:-} in
  "") ;;
  --purge) purge=1 ;;
  *) die "usage: $0 [--purge]" ;;
esac

# The agents first, so that they do not see their jobs vanish and report them.
stop_daemon "$NODE_NAME"
stop_daemon "$HTCONDOR_NODE"
for f in "$PIDS"/*.pid; do # a node agent started under another name, if any
  [ -e "$f" ] || continue
  name=$(basename "$f" .pid)
  [[ " ${DAEMONS[*]} ${CHROOT_DAEMONS[*]} " == *" $name "* ]] || stop_daemon "$name"
done

# HTCondor and radosgw (whatever TESTBED_HTCONDOR/TESTBED_S3 say now), then the chroot's mounts.
stop_chroot

# Local-mode jobs run in their own sessions; kill the ones still alive (checking that
# the pid still belongs to that job, since pids get reused).
for f in "$STATE"/vnode/jobs/*/local.pid; do
  [ -s "$f" ] || continue
  pid=$(cat "$f")
  if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$(dirname "$f")"; then
    kill -TERM -- "-$pid" 2>/dev/null && say "killed local job $pid ($(dirname "$f"))"
  fi
done

if is_up slurmctld; then
  jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    say "cancelling leftover Slurm jobs: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs || true
    sleep 1
  fi
fi

for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
  stop_daemon "${DAEMONS[i]}"
done

if ((purge)); then
  rm -rf "$STATE"
  say "removed $STATE"
fi
say "down"
