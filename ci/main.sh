#!/usr/bin/env bash
# The main job: build and install fastreply, run it on the sample reply stream
# shipped with the package, then benchmark it against smtplib (and aiosmtplib)
# and print the comparison table; a PNG chart too when matplotlib installs.
#
#   ci/main.sh [extra `fastreply bench` options, e.g. --size 2 --rounds 9]
#
# Results go to $BENCH_OUT (default build/bench): bench.json, bench.png.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash ci/setup.sh)"
"$PY" -m fastreply --version
"$PY" -m fastreply parse "$("$PY" -c 'import fastreply, os; print(os.path.join(os.path.dirname(fastreply.__file__), "data", "sample_session.txt"))')"

OUT="${BENCH_OUT:-build/bench}"
mkdir -p "$OUT"
# Optional extras: the bench says what it skipped when one does not install.
pip_quiet() { "$PY" -m pip install --quiet --disable-pip-version-check "$@" >&2; }
pip_quiet aiosmtplib || echo "main: aiosmtplib did not install; the bench skips it" >&2
PLOT=()
if pip_quiet matplotlib; then
    PLOT=(--plot "$OUT/bench.png")
else
    echo "main: matplotlib did not install; no chart" >&2
fi
echo "== fastreply bench (progress on stderr) =="
"$PY" -m fastreply bench --json "$OUT/bench.json" "${PLOT[@]}" "$@"
echo "results: $OUT/bench.json${PLOT:+ and $OUT/bench.png}"
