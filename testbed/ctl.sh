#!/usr/bin/env bash
# Stop or start one testbed daemon, for tests that inject faults:
#   testbed/ctl.sh stop kube-apiserver     # also: slurmctld, vk-slurm, ...
#   testbed/ctl.sh start kube-apiserver    # (re)starts whatever is down, via up.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
case "${1:-}" in
  stop) stop_daemon "${2:?daemon name}"; say "stopped ${2}" ;;
  start)
    # with the running testbed's options unless the caller sets them: restarting one
    # part must not change how the others run (a sandboxed vk-slurm stays sandboxed)
    if [ -f "$STATE/env" ]; then
      for var in TESTBED_SANDBOX TESTBED_VNODE_STATUS; do
        [ -n "${!var+x}" ] || export "$var=$(sed -n "s/^export $var=//p" "$STATE/env")"
      done
    fi
    "$TESTBED_DIR/up.sh" >&2
    ;;
  *) die "usage: ctl.sh stop|start DAEMON" ;;
esac
