#!/usr/bin/env bash
# The test command: sets up everything on a fresh machine (Debian packages, the Python
# environment, the testbed), runs lint, unit and end-to-end tests, prints the testbed's
# logs when something fails, and stops the testbed unless KEEP_TESTBED=1.
#   scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(scripts/bootstrap.sh)
export PATH="$PWD/.venv/bin:$PATH"

echo "== lint"
ruff check .
ruff format --check .
# the import contracts in pyproject.toml (the pure modules do no I/O)
lint-imports --no-cache --no-logo
mypy  # strict on the package: [tool.mypy] in pyproject.toml

echo "== unit tests"
"$PY" -m pytest -q -p no:cacheprovider tests testbed/tests -m "not e2e and not testbed" "$@"

echo "== testbed"
# headless Chromium renders the run report's timeline in an end-to-end test
command -v chromium >/dev/null || {
  echo "installing Debian's chromium" >&2
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
}
testbed/up.sh
# The load test (tests marked `load`) has a node and a namespace of its own: it runs in a
# second pytest process beside the others, and its output follows theirs.
load_log=$(mktemp)
main_log=$(mktemp)
trap 'rm -f "$load_log" "$main_log"' EXIT
TESTBED_E2E=1 "$PY" -m pytest -v -p no:cacheprovider tests/e2e -m load --durations=5 "$@" \
  >"$load_log" 2>&1 &
load_pid=$!
status=0
# a test still running after 15 minutes has its threads' stacks dumped into the log
# vk-slurm runs every job in bubblewrap over the job image (testbed/setup-image.sh, cached),
# as `singularity exec --containall` runs it at a site
# short tracebacks and wide summary lines: a CI excerpt then shows why, not Snakemake's source
COLUMNS=250 TESTBED_E2E=1 "$PY" -m pytest -v -p no:cacheprovider -o faulthandler_timeout=900 \
  --tb=short tests/e2e testbed/tests -m "(e2e or testbed) and not load" --durations=15 "$@" \
  2>&1 | tee "$main_log" || status=$?
load_status=0
wait "$load_pid" || load_status=$?
echo "== load test (ran beside the tests above)"
cat "$load_log"
# 5: pytest collected nothing (extra arguments deselected the load test)
if [ "$load_status" -ne 0 ] && [ "$load_status" -ne 5 ]; then status=$load_status; fi
if [ "$status" -ne 0 ]; then
  echo "== end-to-end tests failed; testbed logs:"
  testbed/logs.sh || true
  echo "== failed tests, in short (their output is above the testbed's logs)"
  sed -n '/short test summary info/,$p' "$main_log"
  grep -E '^(FAILED|ERROR) ' "$load_log" || true
fi
[ "${KEEP_TESTBED:-0}" = 1 ] || testbed/down.sh
exit "$status"
