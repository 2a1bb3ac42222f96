#!/usr/bin/env bash
# The main job: build and install fastreply, then run it on the sample reply
# stream shipped with the package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash ci/setup.sh)"
"$PY" -m fastreply --version
"$PY" -m fastreply parse "$("$PY" -c 'import fastreply, os; print(os.path.join(os.path.dirname(fastreply.__file__), "data", "sample_session.txt"))')"
