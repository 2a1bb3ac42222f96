#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install fastreply into it from
# this checkout, compiling the Cython extension, plus the test requirements.
#
#   ci/setup.sh [VENV]        (default: .venv-ci; PYTHON selects the interpreter)
#
# The extension is required: if it does not compile, pip fails and so does
# this script.  Prints the venv's python path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash ci/venv.sh "${1:-.venv-ci}")"
"$PY" -m pip install --quiet --disable-pip-version-check -r ci/requirements-test.txt >&2
# Optional extras: not every Python has wheels for them (new or free-threaded
# builds); the tests that need one say so when it is missing.
"$PY" -m pip install --quiet --disable-pip-version-check --only-binary :all: \
    -r ci/requirements-extras.txt >&2 \
    || echo "setup: optional extras (ci/requirements-extras.txt) did not install" >&2
# A regular (non-editable) install: the tests run against the installed
# package, as users get it.  --force-reinstall rebuilds from this tree.
"$PY" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps . >&2
"$PY" - <<'PYEOF' >&2
import fastreply, fastreply._parser_c as c, fastreply.classification as k
print(f"fastreply {fastreply.__version__}: implementation={fastreply.IMPLEMENTATION}, compiled module {c.__file__}")
assert fastreply.IMPLEMENTATION == "cython", "the compiled module is not in use"
assert k.IMPLEMENTATION == "cython", "the compiled classifier is not in use"
PYEOF
echo "$PY"
