#!/usr/bin/env bash
# Build the documentation (docs/, Sphinx with MyST and furo) into build/docs,
# with every warning an error:
#
#   ci/docs.sh [extra sphinx-build arguments]
#
# Uses its own venv, .venv-docs (DOCS_VENV to change it; PYTHON selects the
# interpreter, 3.11 or later): the pinned docs/requirements.txt, and fastreply
# installed from this tree as a pure-Python build (no compiler needed: the API
# reference is generated from the pure-Python classes anyway, see docs/conf.py).
# The examples on the pages are run by the test suite (tests/test_docs.py),
# not here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash ci/venv.sh "${DOCS_VENV:-.venv-docs}")"
"$PY" -m pip install --quiet --disable-pip-version-check -r docs/requirements.txt >&2
FASTREPLY_NO_EXTENSIONS=1 "$PY" -m pip install --quiet --disable-pip-version-check \
    --force-reinstall --no-deps . >&2
rm -rf build/docs
echo "== sphinx-build -W: docs/ -> build/docs =="
"$PY" -m sphinx -W --keep-going -b html docs build/docs "$@"
