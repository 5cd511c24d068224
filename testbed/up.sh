#!/usr/bin/env bash
# Bring the whole testbed up: Kubernetes control plane, Slurm with accounting, the virtual
# node agent standing in for interLink + its Slurm plugin (vk-slurm), and in a trixie chroot
# HTCondor with a second agent (vk-htcondor) and an S3 server (radosgw on 127.0.0.1:9000).
# Idempotent: what already runs is kept.
#
#   testbed/up.sh                       # Slurm mode (every pod is a real sbatch job)
#   TESTBED_VNODE_MODE=local testbed/up.sh   # fast local mode (pods run as subprocesses)
#   TESTBED_VNODE_POLL=5 TESTBED_VNODE_ARGS="--cfg-timeout 20" testbed/up.sh   # agent options
#   TESTBED_HTCONDOR=0 TESTBED_S3=0 testbed/up.sh   # without HTCondor / S3 (on by default)
#   TESTBED_HTCONDOR_VNODE_ARGS="--plugin-build head" testbed/up.sh   # vk-htcondor options
#   TESTBED_LOCAL=0 testbed/up.sh        # without vk-local (the load test's node, local mode)
#   TESTBED_SANDBOX=none testbed/up.sh   # vk-slurm's containers on the host, not in bubblewrap
#
# State, logs and pid files live in ${INTERLINK_TESTBED_STATE:-/tmp/interlink-testbed};
# `source $STATE/env` gives the kubeconfigs, namespace and node name to tests and scripts.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case $VNODE_MODE in slurm | local) ;; *) die "TESTBED_VNODE_MODE must be slurm or local, not '$VNODE_MODE'" ;; esac

BIN=$("$TESTBED_DIR/setup.sh" | tail -n 1)
for b in kube-apiserver etcd; do [ -x "$BIN/$b" ] || die "setup.sh did not provide $BIN/$b"; done
mkdir -p "$STATE" "$LOGS" "$PIDS" "$PKI"
say "state in $STATE, logs in $LOGS"

# ---------------------------------------------------------------- certificates, tokens
make_pki() {
  cd "$PKI"
  if [ ! -s ca.crt ]; then
    # keyUsage: Python >= 3.13 verifies strictly (VERIFY_X509_STRICT) and refuses a CA without it
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj /CN=interlink-testbed-ca -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  fi
  if [ ! -s apiserver.crt ]; then
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj /CN=kube-apiserver 2>/dev/null
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc' \
      'extendedKeyUsage=serverAuth' 'keyUsage=digitalSignature,keyEncipherment' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
  fi
  if [ ! -s sa.key ]; then
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  fi
  if [ ! -s tokens.csv ]; then
    # token,user,uid[,"group,..."]: an admin in system:masters and the unprivileged executor
    (umask 077 && printf '%s,admin,admin,system:masters\n%s,snakemake-executor,snakemake-executor\n' \
      "$(openssl rand -hex 24)" "$(openssl rand -hex 24)" >tokens.csv)
  fi
  cd - >/dev/null
}

write_kubeconfig() { # file user token namespace
  local ca
  ca=$(base64 -w0 <"$PKI/ca.crt")
  (umask 077 && cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@testbed
  context:
    cluster: testbed
    user: $2
    namespace: $4
current-context: $2@testbed
EOF
  )
}

make_pki
ADMIN_TOKEN=$(awk -F, '$2=="admin"{print $1}' "$PKI/tokens.csv")
EXECUTOR_TOKEN=$(awk -F, '$2=="snakemake-executor"{print $1}' "$PKI/tokens.csv")
ADMIN_KUBECONFIG=$STATE/admin.kubeconfig
EXECUTOR_KUBECONFIG=$STATE/executor.kubeconfig
write_kubeconfig "$ADMIN_KUBECONFIG" admin "$ADMIN_TOKEN" default
write_kubeconfig "$EXECUTOR_KUBECONFIG" snakemake-executor "$EXECUTOR_TOKEN" "$NAMESPACE"

api() { curl -fsS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$API_PORT$1"; }

# ---------------------------------------------------------------- ports
# Every daemon here listens on a fixed port below 32768. HTCondor's master, tuning the
# kernel (now off: configs/condor-99-testbed), had set the ephemeral range to 1024-65535,
# and a client connection (the API server's to etcd) once held 127.0.0.1:3306 when mariadb
# started: "Address already in use", and up.sh failed. Linux's own default range keeps
# client ports above the testbed's.
range_file=/proc/sys/net/ipv4/ip_local_port_range
if [ -w "$range_file" ] && [ "$(awk '{print $1}' "$range_file")" -lt 32768 ]; then
  say "ephemeral ports were $(tr '\t' - <"$range_file"); using 32768-60999, above the testbed's"
  echo "32768 60999" >"$range_file"
fi

# ---------------------------------------------------------------- Kubernetes control plane
start_daemon etcd "$BIN/etcd" --name testbed --data-dir "$STATE/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster testbed=http://127.0.0.1:2380 --unsafe-no-fsync
wait_for etcd 30 curl -fsS http://127.0.0.1:2379/health

start_daemon kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
  --secure-port="$API_PORT" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" --authorization-mode=RBAC \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range=10.0.0.0/24 \
  --allow-privileged=true --kubelet-preferred-address-types=InternalIP
wait_for kube-apiserver 60 api /readyz

start_daemon kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$ADMIN_KUBECONFIG" --authentication-kubeconfig="$ADMIN_KUBECONFIG" \
  --authorization-kubeconfig="$ADMIN_KUBECONFIG" --bind-address=127.0.0.1 --secure-port=10257 \
  --leader-elect=false --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=false
start_daemon kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$ADMIN_KUBECONFIG" --authentication-kubeconfig="$ADMIN_KUBECONFIG" \
  --authorization-kubeconfig="$ADMIN_KUBECONFIG" --bind-address=127.0.0.1 --secure-port=10259 \
  --leader-elect=false
wait_for "the controller-manager (default service account)" 60 api /api/v1/namespaces/default/serviceaccounts/default

say "applying namespace $NAMESPACE and $TESTBED_DIR/rbac.yaml"
"$BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" apply -f "$TESTBED_DIR/rbac.yaml" >&2
if ((WANT_LOCAL_NODE)); then # the same namespace and Role for the load test
  sed -E "s/^( *(name|namespace): )$NAMESPACE\$/\1$LOCAL_NAMESPACE/" "$TESTBED_DIR/rbac.yaml" |
    "$BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" apply -f - >&2
fi

# ---------------------------------------------------------------- Slurm with accounting
HOST=$(hostname -s)
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm
sed -e "s/HOSTNAME/$HOST/g" -e "s/^MinJobAge=.*/MinJobAge=${TESTBED_SLURM_MIN_JOB_AGE:-300}/" \
  -e "s|^SlurmctldLogFile=.*|SlurmctldLogFile=$LOGS/slurmctld.log|" \
  -e "s|^SlurmdLogFile=.*|SlurmdLogFile=$LOGS/slurmd.log|" \
  "$TESTBED_DIR/configs/slurm.conf" >/etc/slurm/slurm.conf.new
slurm_conf_changed=0
if cmp -s /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf; then
  rm /etc/slurm/slurm.conf.new
else
  mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf
  slurm_conf_changed=1
fi
sed -e "s|^LogFile=.*|LogFile=$LOGS/slurmdbd.log|" "$TESTBED_DIR/configs/slurmdbd.conf" >/etc/slurm/slurmdbd.conf.new
install -m 600 /etc/slurm/slurmdbd.conf.new /etc/slurm/slurmdbd.conf && rm -f /etc/slurm/slurmdbd.conf.new

[ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key && chown munge:munge /etc/munge/munge.key; }
mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
start_daemon munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
wait_for munge 20 sh -c 'munge -n | unmunge'

mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
start_daemon mariadb /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --log-error="$LOGS/mariadb.log"
wait_for mariadb 60 mariadb -e 'select 1'
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

start_daemon slurmdbd /usr/sbin/slurmdbd -D
wait_for slurmdbd 60 sacctmgr -n list cluster
if ! sacctmgr -n -P list cluster format=cluster | grep -qx testbed; then
  sacctmgr -i add cluster testbed >&2
fi
if ((slurm_conf_changed)) && is_up slurmctld; then
  say "slurm.conf changed: scontrol reconfigure"
  scontrol reconfigure >&2
fi
start_daemon slurmctld /usr/sbin/slurmctld -D
wait_for slurmctld 30 scontrol ping
start_daemon slurmd /usr/sbin/slurmd -D
node_usable() { sinfo -h -n "$HOST" -o %T | grep -qE '^(idle|mixed|allocated|completing)'; }
for _ in 1 2 3 4 5 6; do node_usable && break; sleep 0.5; done
if ! node_usable && sinfo -h -n "$HOST" -o %T | grep -qE 'down|drain'; then
  say "Slurm node $HOST is $(sinfo -h -n "$HOST" -o %T); resuming it"
  scontrol update nodename="$HOST" state=resume >&2 || true
fi
wait_for "Slurm node $HOST (idle)" 60 node_usable

# ---------------------------------------------------------------- the virtual nodes
api_node_ready() { # node ; Ready, and the node-lifecycle controller has lifted the
  # not-ready/unreachable taints of an earlier outage (a pod made before that is unschedulable)
  api "/api/v1/nodes/$1" | jq -e '(.status.conditions[] | select(.type == "Ready") | .status == "True")
    and ([.spec.taints[]? | select(.key == "node.kubernetes.io/not-ready" or .key == "node.kubernetes.io/unreachable")] | length == 0)'
}

start_vnode() { # name command... ; (re)starts the agent when its command line changed
  local name=$1 cmdfile=$STATE/$1.cmd
  shift
  if is_up "$name" && [ "$(cat "$cmdfile" 2>/dev/null)" != "$*" ]; then
    say "virtual node $name: options changed; restarting it"
    stop_daemon "$name"
  fi
  echo "$*" >"$cmdfile"
  start_daemon "$name" "$@"
}

VNODE_STATE=$STATE/vnode
mkdir -p "$VNODE_STATE"
IMAGE_PATH=${TESTBED_IMAGE_PATH:-$REPO_DIR/.venv/bin}
# TESTBED_SANDBOX=bwrap (default): vk-slurm runs every container in bubblewrap over the job
# image (setup-image.sh), as `singularity exec --containall` would; none: on the host
SANDBOX=${TESTBED_SANDBOX:-bwrap}
sandbox_args=()
IMAGE_ROOT=""
case $SANDBOX in
  none) ;;
  bwrap)
    IMAGE_ROOT=$(TESTBED_PYTHON="$PY" "$TESTBED_DIR/setup-image.sh" | tail -n 1)
    [ -x "$IMAGE_ROOT/opt/snakemake/bin/python" ] || die "setup-image.sh did not provide the job image in '$IMAGE_ROOT'"
    sandbox_args=(--sandbox bwrap --image-root "$IMAGE_ROOT")
    ;;
  *) die "TESTBED_SANDBOX must be none or bwrap, not '$SANDBOX'" ;;
esac
# TESTBED_VNODE_ARGS: extra agent options, e.g. "--cfg-timeout 20 --pods 500" (see python -m vnode -h)
# shellcheck disable=SC2206
vnode_cmd=(env PYTHONPATH="$TESTBED_DIR" PYTHONUNBUFFERED=1 "$PY" -m vnode
  --node "$NODE_NAME" --kubeconfig "$ADMIN_KUBECONFIG" --port "$KUBELET_PORT"
  --batch "$VNODE_MODE" --poll "${TESTBED_VNODE_POLL:-1.0}" --state-dir "$VNODE_STATE"
  --status-timing "${TESTBED_VNODE_STATUS:-real}" --min-job-age "${TESTBED_SLURM_MIN_JOB_AGE:-300}"
  --image-path "$IMAGE_PATH" --label testbed.interlink/batch-system="$VNODE_MODE" "${sandbox_args[@]}"
  ${TESTBED_VNODE_ARGS:-})
[ -e "$STATE/vnode.cmd" ] && mv "$STATE/vnode.cmd" "$STATE/$NODE_NAME.cmd" # the name before vk-htcondor
start_vnode "$NODE_NAME" "${vnode_cmd[@]}"
echo "$VNODE_MODE" >"$STATE/vnode.mode"
wait_for "virtual node $NODE_NAME (Ready)" 60 api_node_ready "$NODE_NAME"

if ((WANT_LOCAL_NODE)); then
  # 4 slots: the load's job processes queue (PD) instead of thrashing 2 cores; nice 10 leaves
  # the CPU to the testbed's daemons and to the end-to-end tests running beside the load test
  LOCAL_STATE=$STATE/vnode-local
  mkdir -p "$LOCAL_STATE"
  local_cmd=(env PYTHONPATH="$TESTBED_DIR" PYTHONUNBUFFERED=1 "$PY" -m vnode
    --node "$LOCAL_NODE" --kubeconfig "$ADMIN_KUBECONFIG" --port "$LOCAL_KUBELET_PORT"
    --batch local --poll 1.0 --state-dir "$LOCAL_STATE" --status-timing fast
    --image-path "$IMAGE_PATH" --label testbed.interlink/batch-system=local --taint "$LOCAL_TAINT"
    --pods 500 --local-slots 4 --local-nice 10)
  start_vnode "$LOCAL_NODE" "${local_cmd[@]}"
  wait_for "virtual node $LOCAL_NODE (Ready)" 60 api_node_ready "$LOCAL_NODE"
fi

# ---------------------------------------------------------------- HTCondor and S3 in the trixie chroot
CHROOT=""
if ((WANT_HTCONDOR || WANT_S3)); then
  case $STATE in /tmp/*) ;; *) die "HTCondor/S3 need the state dir under /tmp (the chroot sees /tmp only), not $STATE" ;; esac
  CHROOT=$("$TESTBED_DIR/setup-chroot.sh" | tail -n 1)
  [ -x "$CHROOT/usr/sbin/condor_master" ] && [ -x "$CHROOT/usr/bin/radosgw" ] ||
    die "setup-chroot.sh did not provide HTCondor and radosgw in '$CHROOT'"
  echo "$CHROOT" >"$(chroot_path_file)"
  mount_chroot "$CHROOT"
  # HTCondor's jobs run this Python through the chroot's binds; a venv whose python links
  # to an alias (/usr/bin/python3) would run the chroot's own Python instead
  want=$("$PY" -c 'import sys; print(sys.version)')
  got=$(in_chroot "$PY" -c 'import sys; print(sys.version)' 2>&1) || true
  [ "$got" = "$want" ] || die "in the chroot, $PY is Python '$got', not '$want': make the venv again (rm -rf .venv; scripts/bootstrap.sh), so that its python links to the interpreter's real file"
fi

if ((WANT_HTCONDOR)); then
  CONDOR_STATE=$STATE/condor # the queue and the job sandboxes; HTCondor's own logs go to $LOGS/condor
  mkdir -p "$CONDOR_STATE/spool" "$CONDOR_STATE/execute" "$LOGS/condor"
  in_chroot chown condor:condor "$CONDOR_STATE/spool" "$CONDOR_STATE/execute" "$LOGS/condor"
  chmod 755 "$STATE" "$CONDOR_STATE" "$CONDOR_STATE/execute"
  conf=$CHROOT/etc/condor/config.d
  {
    cat "$TESTBED_DIR/configs/condor-99-testbed"
    printf '\n# written by testbed/up.sh: state under %s\nLOG = %s\nSPOOL = %s\nEXECUTE = %s\n' \
      "$STATE" "$LOGS/condor" "$CONDOR_STATE/spool" "$CONDOR_STATE/execute"
  } >"$conf/99-testbed.new"
  if cmp -s "$conf/99-testbed.new" "$conf/99-testbed"; then
    rm "$conf/99-testbed.new"
  else
    mv "$conf/99-testbed.new" "$conf/99-testbed"
    if is_up condor_master; then
      say "HTCondor config changed: restarting condor_master"
      stop_daemon condor_master QUIT
    fi
  fi
  in_chroot sh -c 'mkdir -p /run/condor /var/lock/condor && chown condor:condor /run/condor /var/lock/condor'
  start_daemon condor_master env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 chroot "$CHROOT" condor_master -f
  slot_unclaimed() { in_chroot condor_status -af State | grep -q Unclaimed; }
  wait_for "HTCondor (an Unclaimed slot)" 60 slot_unclaimed
fi

if ((WANT_S3)); then
  S3_DATA=$STATE/s3
  mkdir -p "$S3_DATA" "$CHROOT/var/run/ceph" "$CHROOT/var/log/ceph" "$CHROOT/etc/ceph"
  sed -e "s|@DATA@|$S3_DATA|g" -e "s|@ADDRESS@|$S3_ADDRESS|g" "$TESTBED_DIR/configs/ceph.conf" >"$CHROOT/etc/ceph/ceph.conf"
  start_daemon radosgw env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    chroot "$CHROOT" radosgw -f --no-mon-config -n client.rgw
  wait_for "radosgw on $S3_ADDRESS" 30 curl -s -o /dev/null "http://$S3_ADDRESS/"
  # radosgw-admin sometimes hangs on exit after doing its work (dbstore): bounded, judged by its output.
  rgw_user() { timeout -k 5 20 env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$CHROOT" \
    radosgw-admin --no-mon-config -n client.rgw user "$@" 2>/dev/null | grep -q "\"access_key\": \"$S3_ACCESS_KEY\""; }
  if [ ! -e "$S3_DATA/.user-$S3_ACCESS_KEY" ]; then
    rgw_user info --uid="$S3_ACCESS_KEY" ||
      rgw_user create --uid="$S3_ACCESS_KEY" --display-name="testbed S3 user" \
        --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" ||
      die "radosgw-admin could not create the S3 user $S3_ACCESS_KEY"
    touch "$S3_DATA/.user-$S3_ACCESS_KEY"
    say "S3 user $S3_ACCESS_KEY (secret $S3_SECRET_KEY) ready"
  fi
fi

if ((WANT_HTCONDOR)); then
  HTCONDOR_STATE=$STATE/vnode-htcondor
  mkdir -p "$HTCONDOR_STATE"
  chmod 755 "$HTCONDOR_STATE" # the submitting user must reach the job directories
  # TESTBED_HTCONDOR_VNODE_ARGS: extra agent options, e.g. --plugin-build head (default: working)
  # shellcheck disable=SC2206
  htcondor_cmd=(env PYTHONPATH="$TESTBED_DIR" PYTHONUNBUFFERED=1 "$PY" -m vnode
    --node "$HTCONDOR_NODE" --kubeconfig "$ADMIN_KUBECONFIG" --port "$HTCONDOR_KUBELET_PORT"
    --batch htcondor --chroot "$CHROOT" --submit-user "$HTCONDOR_USER" --poll "${TESTBED_VNODE_POLL:-1.0}"
    --status-timing "${TESTBED_VNODE_STATUS:-real}"
    --state-dir "$HTCONDOR_STATE" --image-path "$IMAGE_PATH"
    --label testbed.interlink/batch-system=htcondor --taint "$HTCONDOR_TAINT" ${TESTBED_HTCONDOR_VNODE_ARGS:-})
  start_vnode "$HTCONDOR_NODE" "${htcondor_cmd[@]}"
  wait_for "virtual node $HTCONDOR_NODE (Ready)" 60 api_node_ready "$HTCONDOR_NODE"
fi

cat >"$STATE/env" <<EOF
# Written by testbed/up.sh; source it to reach the testbed.
export TESTBED_STATE=$STATE
export TESTBED_ADMIN_KUBECONFIG=$ADMIN_KUBECONFIG
export TESTBED_EXECUTOR_KUBECONFIG=$EXECUTOR_KUBECONFIG
export TESTBED_NAMESPACE=$NAMESPACE
export TESTBED_NODE=$NODE_NAME
export TESTBED_VNODE_MODE=$VNODE_MODE
export TESTBED_VNODE_STATUS=${TESTBED_VNODE_STATUS:-real}
export TESTBED_JOBS_DIR=$VNODE_STATE/jobs
export TESTBED_LOGS=$LOGS
export TESTBED_BIN=$BIN
export TESTBED_SANDBOX=$SANDBOX
export TESTBED_IMAGE_ROOT=$IMAGE_ROOT
EOF
if ((WANT_LOCAL_NODE)); then
  cat >>"$STATE/env" <<EOF
export TESTBED_LOCAL_NODE=$LOCAL_NODE
export TESTBED_LOCAL_TOLERATION=$LOCAL_TAINT
export TESTBED_LOCAL_NAMESPACE=$LOCAL_NAMESPACE
EOF
fi
if ((WANT_HTCONDOR || WANT_S3)); then
  echo "export TESTBED_CHROOT=$CHROOT" >>"$STATE/env"
fi
if ((WANT_HTCONDOR)); then
  cat >>"$STATE/env" <<EOF
export TESTBED_HTCONDOR_NODE=$HTCONDOR_NODE
export TESTBED_HTCONDOR_TOLERATION=$HTCONDOR_TAINT
export TESTBED_HTCONDOR_JOBS_DIR=$HTCONDOR_STATE/jobs
export TESTBED_HTCONDOR_USER=$HTCONDOR_USER
EOF
fi
if ((WANT_S3)); then
  cat >>"$STATE/env" <<EOF
export TESTBED_S3_ENDPOINT=http://$S3_ADDRESS
export TESTBED_S3_ACCESS_KEY=$S3_ACCESS_KEY
export TESTBED_S3_SECRET_KEY=$S3_SECRET_KEY
EOF
fi
extra=""
((WANT_HTCONDOR)) && extra+=", node $HTCONDOR_NODE (HTCondor)"
((WANT_S3)) && extra+=", S3 on http://$S3_ADDRESS"
say "up: source $STATE/env  (executor kubeconfig: $EXECUTOR_KUBECONFIG, node $NODE_NAME in $VNODE_MODE mode$extra)"
