#!/usr/bin/env bash
# Create (or reuse) a virtual environment with an up-to-date pip, and print
# its python path (relative to the current directory when VENV is).
#
#   ci/venv.sh VENV        (PYTHON selects the interpreter; default python3)
#
# Used by ci/setup.sh (the test venvs) and ci/docs.sh (the docs venv).
set -euo pipefail
VENV="$1"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
echo "$VENV/bin/python"
