# Shared by up.sh, down.sh and status.sh (sourced, not run).
# Every daemon the testbed starts runs in the foreground of its own session, with its
# output in $LOGS/<name>.log and its pid in $PIDS/<name>.pid, so that down.sh can stop
# exactly what up.sh started and nothing else.

TESTBED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$TESTBED_DIR/.." && pwd)
STATE=${INTERLINK_TESTBED_STATE:-/tmp/interlink-testbed}
LOGS=$STATE/logs
PIDS=$STATE/pids
PKI=$STATE/pki
PY=${TESTBED_PYTHON:-$REPO_DIR/.venv/bin/python}
API_PORT=${TESTBED_API_PORT:-6443}
KUBELET_PORT=${TESTBED_KUBELET_PORT:-10250}
NAMESPACE=snakemake
NODE_NAME=${TESTBED_NODE:-vk-slurm}
VNODE_MODE=${TESTBED_VNODE_MODE:-slurm}

# HTCondor and S3 (radosgw) run in a Debian trixie chroot (setup-chroot.sh); both are on by
# default, TESTBED_HTCONDOR=0 / TESTBED_S3=0 leave them out.
WANT_HTCONDOR=${TESTBED_HTCONDOR:-1}
WANT_S3=${TESTBED_S3:-1}
HTCONDOR_NODE=${TESTBED_HTCONDOR_NODE:-vk-htcondor}
HTCONDOR_KUBELET_PORT=${TESTBED_HTCONDOR_KUBELET_PORT:-10350} # 10251 is kube-scheduler's
# A second taint (interLink's NodeTaints setting) keeps pods that name no node off vk-htcondor.
HTCONDOR_TAINT=testbed.interlink/site=htcondor:NoSchedule
HTCONDOR_USER=tester
# vk-local: a third node in the fast local mode (pods run as local processes, status at once)
# in its own namespace, for the load test, which runs beside the other end-to-end tests.
# Its taint keeps every other pod off it; TESTBED_LOCAL=0 leaves it out.
WANT_LOCAL_NODE=${TESTBED_LOCAL:-1}
LOCAL_NODE=vk-local
LOCAL_KUBELET_PORT=10450
LOCAL_TAINT=testbed.interlink/site=local:NoSchedule
LOCAL_NAMESPACE=snakemake-load
S3_ADDRESS=127.0.0.1:9000 # what Snakemake's TestWorkflowsMinioPlayStorageBase expects
S3_ACCESS_KEY=minio
S3_SECRET_KEY=minio123
CHROOT_DAEMONS=(condor_master radosgw)

# The order in which daemons start; down.sh stops them in reverse.
DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler munged mariadb slurmdbd slurmctld slurmd "$NODE_NAME")
((WANT_LOCAL_NODE)) && DAEMONS+=("$LOCAL_NODE")
((WANT_HTCONDOR)) && DAEMONS+=(condor_master)
((WANT_S3)) && DAEMONS+=(radosgw)
((WANT_HTCONDOR)) && DAEMONS+=("$HTCONDOR_NODE")

say() { echo "testbed: $*" >&2; }
die() { echo "testbed: error: $*" >&2; exit 1; }

pid_of() { # prints the pid of a daemon we started if it is still alive
  local f=$PIDS/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

is_up() { pid_of "$1" >/dev/null; }

start_daemon() { # name command... ; no-op when that daemon is already running
  local name=$1; shift
  if is_up "$name"; then
    say "$name already running (pid $(pid_of "$name"))"
    return 0
  fi
  mkdir -p "$LOGS" "$PIDS"
  echo "=== $(date -Is) starting: $*" >>"$LOGS/$name.log"
  # Only stdin/stdout/stderr reach the daemon: an inherited descriptor would live as long
  # as the daemon, e.g. the lock of `flock /tmp/interlink-e2e.lock testbed/up.sh`, which
  # every daemon started under it would then hold for good.
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec setsid "$@"
  ) >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
  say "started $name (pid $!), log $LOGS/$name.log"
}

stop_daemon() { # name [signal] ; TERM (or the signal given), then KILL after 15 s
  local name=$1 sig=${2:-TERM} pid i
  pid=$(pid_of "$name") || { rm -f "$PIDS/$name.pid"; return 0; }
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) ignored SIGTERM for 15 s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDS/$name.pid"
  say "stopped $name (pid $pid)"
}

wait_for() { # description seconds command... ; polls every 0.5 s
  local what=$1 secs=$2 i; shift 2
  for ((i = 0; i < secs * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "$what not ready after ${secs}s (see $LOGS/)"
}

# ---------------------------------------------------------------- the trixie chroot
# Mounted while HTCondor or radosgw run: proc, /dev and /sys (rbind), /tmp (so job files and
# working directories under /tmp have the same path inside), and read-only at their own
# paths the directories a job's "image" needs: the checkout and the Python environment
# (venv + base interpreter) that runs Snakemake and the plugin.

chroot_path_file() { echo "$STATE/chroot.path"; }

job_image_dirs() { # host directories bound read-only into the chroot at the same path
  "$PY" - "$REPO_DIR" <<'PYEOF'
import os, sys
wanted = {os.path.realpath(sys.argv[1]), os.path.realpath(sys.prefix)}
base = os.path.realpath(sys.base_prefix)
version = f"python{sys.version_info.major}.{sys.version_info.minor}"
if base == "/usr" or base.startswith("/usr/"):
    # Debian's own interpreter: its stdlib and binary (the chroot has another Python in /usr)
    wanted |= {f"/usr/lib/{version}", os.path.realpath(os.path.join(base, "bin", version))}
else:
    wanted.add(base)
chosen = sorted(p for p in wanted if p != "/tmp")
for path in chosen:
    if not any(path.startswith(other + "/") for other in chosen):
        print(path)
PYEOF
}

mount_chroot() { # root ; idempotent
  local root=$1 d src parent
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  for d in dev sys; do
    if ! mountpoint -q "$root/$d"; then
      mount --rbind "/$d" "$root/$d"
      mount --make-rslave "$root/$d" 2>/dev/null || true # unmounting must not reach the host's
    fi
  done
  mountpoint -q "$root/tmp" || mount --bind /tmp "$root/tmp"
  while read -r src; do
    [ -e "$src" ] || continue
    if [[ $src == /tmp/* ]]; then
      # seen through the /tmp bind; HTCondor's job user must traverse the host's parents
      # (a checkout in a `mktemp -d` directory sits below a 0700 one)
      parent=$(dirname "$src")
      while [ "$parent" != /tmp ]; do
        [ -n "$(find "$parent" -maxdepth 0 -perm -o+x)" ] || {
          say "making $parent traversable for the chroot's job user (chmod o+x)"
          chmod o+x "$parent"
        }
        parent=$(dirname "$parent")
      done
      continue
    fi
    if ! mountpoint -q "$root$src"; then
      # only before the first bind: once bound, a file there is the host's, and with
      # Debian's Python that is the running /usr/bin/python3.X (touch: Text file busy)
      if [ -d "$src" ]; then mkdir -p "$root$src"; else mkdir -p "$(dirname "$root$src")" && touch "$root$src"; fi
      mount --bind "$src" "$root$src"
      mount -o remount,bind,ro "$root$src"
    fi
    parent=$(dirname "$src") # the chroot's own directories on the way must be traversable
    while [ "$parent" != / ]; do
      chmod o+x "$root$parent"
      parent=$(dirname "$parent")
    done
  done < <(job_image_dirs)
  cp /etc/hosts "$root/etc/hosts" # the host name must resolve for HTCondor
}

umount_chroot() { # root ; every mount below it, deepest first
  local root=$1 m
  awk -v r="$root/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
  done
}

in_chroot() { # command... : run as root inside the chroot with a clean environment
  local root
  root=$(cat "$(chroot_path_file)" 2>/dev/null) || return 1
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$root" "$@"
}

stop_chroot() { # HTCondor (after removing its jobs), radosgw, leftovers in the chroot, its mounts
  local root proc
  stop_daemon "$HTCONDOR_NODE"
  if is_up condor_master; then
    say "removing leftover HTCondor jobs"
    in_chroot condor_rm -all >/dev/null 2>&1 || true
    stop_daemon condor_master QUIT # fast shutdown: the master stops its daemons and their jobs
  fi
  stop_daemon radosgw
  [ -s "$(chroot_path_file)" ] || return 0
  root=$(cat "$(chroot_path_file)")
  for proc in /proc/[0-9]*; do # anything still running inside the chroot was started by the testbed
    [ "$(readlink "$proc/root" 2>/dev/null)" = "$root" ] || continue
    say "killing leftover chroot process ${proc#/proc/} ($(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | cut -c1-80))"
    kill -KILL "${proc#/proc/}" 2>/dev/null || true
  done
  umount_chroot "$root"
  say "unmounted the chroot ($root)"
}
