#!/usr/bin/env bash
# Which testbed daemons are up, and how the virtual node looks to Kubernetes.
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
  node=$(curl -fsS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $token" \
    "https://127.0.0.1:$API_PORT/api/v1/nodes/$NODE_NAME" 2>/dev/null)
  if [ -n "$node" ]; then
    echo "node $NODE_NAME: Ready=$(jq -r '.status.conditions[] | select(.type=="Ready") | .status + " (" + .message + ")"' <<<"$node")," \
      "mode $(cat "$STATE/vnode.mode" 2>/dev/null), taints: $(jq -c '[.spec.taints[]? | .key]' <<<"$node")"
  fi
fi
if is_up slurmctld; then
  echo "slurm: $(sinfo -h -o '%P %T %C' 2>/dev/null | head -1) (partition state cpus A/I/O/T); jobs in squeue: $(squeue -h 2>/dev/null | wc -l)"
fi
[ -s "$STATE/env" ] && echo "env: source $STATE/env"
exit $rc
