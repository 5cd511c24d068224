#!/usr/bin/env bash
# The main job: on a fresh machine, install what is missing, bring up the testbed (a real
# kube-apiserver, an interLink-like virtual node and Slurm), run examples/hello with
# `snakemake --executor interlink`, show the outputs and job logs, and tear the testbed
# down unless KEEP_TESTBED=1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(scripts/bootstrap.sh)
export PATH="$PWD/.venv/bin:$PATH"
testbed/up.sh
. "${INTERLINK_TESTBED_STATE:-/tmp/interlink-testbed}/env"
[ "${KEEP_TESTBED:-0}" = 1 ] || trap "$PWD/testbed/down.sh" EXIT

work=${DEMO_DIR:-/tmp/interlink-demo}
rm -rf "$work" && mkdir -p "$work" && cp -r examples/hello "$work/"
cd "$work/hello"
echo "== snakemake --executor interlink in $PWD"
set -x
snakemake --executor interlink --jobs 10 \
  --interlink-kubeconfig "$TESTBED_EXECUTOR_KUBECONFIG" \
  --interlink-namespace "$TESTBED_NAMESPACE"
set +x
echo "== outputs ($PWD/results)"
cat results/summary.txt
echo "== job logs"
find "$PWD/.snakemake/interlink_logs" -name '*.log' | sort
