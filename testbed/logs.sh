#!/usr/bin/env bash
# Print the last lines of every testbed log (CI calls it when a test fails).
#   testbed/logs.sh [lines]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
n=${1:-60}
for log in "$LOGS"/*.log; do
  [ -e "$log" ] || continue
  echo "===== $log (last $n lines)"
  tail -n "$n" "$log"
done
