#!/usr/bin/env bash
# Python side of the set-up: a virtualenv in .venv with the plugin (editable) and its
# test tools. Safe to re-run; prints the venv's python on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if ! .venv/bin/python -c 'import snakemake_executor_plugin_interlink, snakemake, pytest' 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "bootstrap: installing the plugin and its test tools into .venv" >&2
  # compat mode: Snakemake finds plugins with pkgutil, which misses the default
  # editable finder
  .venv/bin/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
  touch .venv/.installed
fi
echo "$PWD/.venv/bin/python"
