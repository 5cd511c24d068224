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

# The order in which daemons start; down.sh stops them in reverse.
DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler munged mariadb slurmdbd slurmctld slurmd "$NODE_NAME")

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
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
  say "started $name (pid $!), log $LOGS/$name.log"
}

stop_daemon() { # name ; TERM, then KILL after 15 s
  local name=$1 pid i
  pid=$(pid_of "$name") || { rm -f "$PIDS/$name.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
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
