#!/usr/bin/env bash
# Differential fuzzing of the compiled parser against the pure-Python
# reference with atheris (libFuzzer), fuzz/fuzz_parser.py.
#
#   ci/fuzz.sh --quick                        (150,000 inputs or 45 s: .ci/run)
#   ci/fuzz.sh [ITERATIONS] [MAX_SECONDS]     (defaults: 2,000,000 inputs, at most 1200 s)
#
# e.g. `ci/fuzz.sh 20000000 3600` (an hour).  Whichever limit comes first
# ends the run.  Seeds: fuzz/corpus (read only); what the fuzzer learns goes
# to build/fuzz/corpus (kept between runs, never committed); a crashing or
# diverging input goes to build/fuzz/artifacts/ and the script fails,
# printing how to replay it.  A failing input becomes a test in
# tests/test_regressions.py (minimise it first: see fuzz/README.md).
#
# Environment: FASTREPLY_PY=/path/to/python skips the set-up (a venv where
# fastreply is installed with its compiled module); otherwise ci/setup.sh
# builds .venv-hostile.  atheris comes from PyPI as a binary wheel (it bundles
# libFuzzer; no clang needed).  Where atheris cannot be installed (no wheel
# for this Python or platform), or with FUZZ_ENGINE=random, the same check
# runs under the plain random-mutation driver (fuzz_parser.py --random: the
# same harness, mutations of the corpus without coverage feedback) for the
# same number of inputs and time, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--quick" ]; then
    shift
    set -- 150000 45
fi
RUNS="${1:-2000000}"
MAX_TIME="${2:-1200}"
START=$SECONDS
PY="${FASTREPLY_PY:-}"
if [ -z "$PY" ]; then
    PY="$(bash ci/setup.sh .venv-hostile)"
fi
"$PY" -c 'import fastreply; assert fastreply.IMPLEMENTATION == "cython", fastreply.IMPLEMENTATION'
# A venv given by FASTREPLY_PY must hold this tree's fastreply, not an older one:
# the same .py files, and a compiled module built after the .pyx last changed.
"$PY" ci/check_installed.py

OUT=build/fuzz
mkdir -p "$OUT/corpus" "$OUT/artifacts"
LOG="$OUT/fuzz.log"
ENGINE="${FUZZ_ENGINE:-atheris}"
if [ "$ENGINE" = atheris ] && ! "$PY" -c 'import atheris' 2>/dev/null; then
    "$PY" -m pip install --quiet --disable-pip-version-check atheris >"$OUT/pip-atheris.log" 2>&1 || true
    if ! "$PY" -c 'import atheris' 2>/dev/null; then
        echo "== fuzz: atheris cannot be installed for $("$PY" -c 'import sys; print(sys.version.split()[0])')" \
            "(see $OUT/pip-atheris.log): using the random-mutation driver instead"
        ENGINE=random
    fi
fi
if [ "$ENGINE" = random ]; then
    echo "== fuzz (random-mutation driver, no coverage feedback): $RUNS inputs or $MAX_TIME s," \
        "seeds fuzz/corpus and build/fuzz/corpus"
    CORPORA=(fuzz/corpus)
    if [ -n "$(ls -A "$OUT/corpus")" ]; then
        CORPORA+=("$OUT/corpus")
    fi
    FUZZ_SEED="${FUZZ_SEED:-$RANDOM}" "$PY" fuzz/fuzz_parser.py --random "$RUNS" \
        --seconds "$MAX_TIME" --artifacts "$OUT/artifacts" "${CORPORA[@]}"
    echo "fuzz: done in $((SECONDS - START)) s (random-mutation driver)"
    exit 0
fi
echo "== fuzz: $RUNS runs or $MAX_TIME s, seeds fuzz/corpus ($(ls fuzz/corpus | wc -l) files), log $LOG"
set +e
# The reference is instrumented by atheris; -max_len keeps single inputs
# small enough for byte-at-a-time chunking to stay fast.  rss_limit guards
# against a parser that holds memory it should not (2 GB; normal is ~50 MB).
"$PY" fuzz/fuzz_parser.py \
    -runs="$RUNS" -max_total_time="$MAX_TIME" -max_len=2048 -timeout=20 \
    -rss_limit_mb=2048 -dict=fuzz/smtp.dict -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/" "$OUT/corpus" fuzz/corpus >"$LOG" 2>&1
rc=$?
set -e
grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)" "$LOG" || true
grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb|Done )' "$LOG" || true
if [ "$rc" -ne 0 ]; then
    echo "== fuzz FAILED (exit $rc); the end of the log:" >&2
    tail -n 40 "$LOG" >&2
    for artifact in "$OUT"/artifacts/*; do
        [ -e "$artifact" ] || continue
        echo "replay: $PY fuzz/fuzz_parser.py --replay $artifact" >&2
    done
    exit "$rc"
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG")
echo "fuzz: ${runs:-?} inputs, 0 crashes, 0 divergences ($(ls "$OUT/corpus" | wc -l) inputs in build/fuzz/corpus) in $((SECONDS - START)) s"
