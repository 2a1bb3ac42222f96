#!/usr/bin/env bash
# The test command: build and install fastreply (compiled extension required),
# run the whole suite against both implementations, then once more with
# FASTREPLY_NO_EXTENSIONS=1 (the pure-Python fallback everywhere).
#
#   ci/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash ci/setup.sh)"
# Run from the tests' own directory view of the repo, against the installed
# package (src/ is not on sys.path: pytest's rootdir conftest only).
echo "== pytest: compiled module required, both implementations =="
"$PY" -m pytest -p no:cacheprovider --c-extensions "$@"
echo "== pytest: FASTREPLY_NO_EXTENSIONS=1 (pure-Python fallback only) =="
FASTREPLY_NO_EXTENSIONS=1 "$PY" -m pytest -p no:cacheprovider --no-c-extensions "$@"
