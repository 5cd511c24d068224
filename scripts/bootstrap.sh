#!/usr/bin/env bash
# Python side of the set-up: a virtualenv in .venv with the plugin (editable) and its
# test tools. Safe to re-run; prints the venv's python on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# made by the interpreter's real file, so that the venv's python links to /usr/bin/python3.11
# rather than to the /usr/bin/python3 alias: the testbed's HTCondor chroot binds that file,
# and its own /usr/bin/python3 is another Python
[ -x .venv/bin/python ] || "$("$PY" -c 'import os, sys; print(os.path.realpath(sys.executable))')" -m venv .venv
if ! .venv/bin/python -c 'import snakemake_executor_plugin_interlink, snakemake, pytest' 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "bootstrap: installing the plugin and its test tools into .venv" >&2
  # compat mode: Snakemake finds plugins with pkgutil, which misses the default
  # editable finder
  .venv/bin/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
  touch .venv/.installed
fi
echo "$PWD/.venv/bin/python"
