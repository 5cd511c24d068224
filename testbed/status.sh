#!/usr/bin/env bash
# Which testbed daemons are up, how the virtual nodes look to Kubernetes, Slurm, HTCondor, S3.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rc=0
for name in "${DAEMONS[@]}"; do
  if pid=$(pid_of "$name"); then
    printf '%-24s up    pid %-7s log %s\n' "$name" "$pid" "$LOGS/$name.log"
  else
    printf '%-24s DOWN\n' "$name"
    rc=1
  fi
done
if [ -s "$PKI/tokens.csv" ] && is_up kube-apiserver; then
  token=$(awk -F, '$2=="admin"{print $1}' "$PKI/tokens.csv")
  nodes=("$NODE_NAME")
  ((WANT_HTCONDOR)) && nodes+=("$HTCONDOR_NODE")
  for name in "${nodes[@]}"; do
    node=$(curl -fsS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $token" \
      "https://127.0.0.1:$API_PORT/api/v1/nodes/$name" 2>/dev/null)
    if [ -n "$node" ]; then
      echo "node $name: Ready=$(jq -r '.status.conditions[] | select(.type=="Ready") | .status + " (" + .message + ")"' <<<"$node")," \
        "runtime $(jq -r .status.nodeInfo.containerRuntimeVersion <<<"$node"), taints: $(jq -c '[.spec.taints[]? | .key]' <<<"$node")"
    else
      echo "node $name: not registered"
    fi
  done
fi
if is_up slurmctld; then
  echo "slurm: $(sinfo -h -o '%P %T %C' 2>/dev/null | head -1) (partition state cpus A/I/O/T); jobs in squeue: $(squeue -h 2>/dev/null | wc -l)"
fi
if [ -s "$(chroot_path_file)" ]; then
  root=$(cat "$(chroot_path_file)")
  echo "chroot: $root, $(awk -v r="$root/" 'index($5, r) == 1' /proc/self/mountinfo | wc -l) mounts"
fi
if is_up condor_master; then
  echo "htcondor: slots $(in_chroot condor_status -af Name State Cpus Memory 2>/dev/null | tr '\n' ';')" \
    "jobs in condor_q: $(in_chroot condor_q -allusers -af ClusterId 2>/dev/null | wc -l)"
fi
if is_up radosgw; then
  echo "s3: http://$S3_ADDRESS answers HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://$S3_ADDRESS/"), user $S3_ACCESS_KEY"
fi
[ -s "$STATE/env" ] && echo "env: source $STATE/env"
exit $rc
