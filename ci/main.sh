#!/usr/bin/env bash
# The main job: build and install fastreply, run it on the sample reply stream
# shipped with the package, then benchmark it against smtplib (and aiosmtplib)
# and print the comparison table; a PNG chart too when matplotlib installs.
# Then the end-to-end sending table (`fastreply bench --e2e --latency`) when
# Postfix's smtp-sink is available: installed with ci/postfix.sh --install
# when this runs as root (or with sudo -n) and apt works; otherwise it says
# why it skipped it.
#
#   ci/main.sh [extra `fastreply bench` options, e.g. --size 2 --rounds 9]
#
# Results go to $BENCH_OUT (default build/bench): bench.json, bench.png,
# e2e.json, e2e.png.  $E2E_OPTIONS adds options to the e2e run (e.g.
# "--messages 20000").
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

echo "== fastreply bench --e2e: sending end to end (progress on stderr) =="
have_sink() { PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v smtp-sink >/dev/null 2>&1; }
if ! have_sink; then
    if [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then
        bash ci/postfix.sh --install || echo "main: installing postfix failed (see above)" >&2
    else
        echo "main: smtp-sink is missing and this is not root (nor sudo -n): cannot install" \
            "Debian's postfix package" >&2
    fi
fi
if have_sink; then
    E2E_PLOT=()
    [ ${#PLOT[@]} -gt 0 ] && E2E_PLOT=(--plot "$OUT/e2e.png")
    # shellcheck disable=SC2086  # E2E_OPTIONS is a list of options
    "$PY" -m fastreply bench --e2e --latency --json "$OUT/e2e.json" "${E2E_PLOT[@]}" ${E2E_OPTIONS:-}
    echo "results: $OUT/e2e.json${E2E_PLOT:+ and $OUT/e2e.png}"
else
    echo "main: skipped the end-to-end benchmark: no smtp-sink (Debian package postfix)" >&2
fi
