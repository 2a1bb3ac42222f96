#!/usr/bin/env bash
# Differential fuzzing of the compiled parser against the pure-Python
# reference with atheris (libFuzzer), fuzz/fuzz_parser.py, over three targets:
#   parser   reply streams in any chunks (fuzz/harness.py, seeds fuzz/corpus)
#   checked  feed_checked() with command logs of every kind, lying ones too
#            (fuzz/harness_checked.py, seeds fuzz/corpus-checked)
#   aio      fastreply.aio with callers cancelled at random
#            (fuzz/harness_aio.py, seeds fuzz/corpus-aio)
#   classify the compiled classifier matcher against the pure-Python one:
#            any reply, command and provider argument, the shipped rules
#            (fuzz/harness_classify.py, seeds fuzz/corpus-classify)
#   classify-rules  the same with random user rules and providers
#            (fuzz/harness_classify_rules.py, seeds fuzz/corpus-classify-rules)
#
#   ci/fuzz.sh [--target NAME] --quick        (.ci/run: parser 150,000 inputs or 45 s,
#                                              checked 40,000 or 30 s, aio 8,000 or 30 s,
#                                              classify 20,000 or 6 s,
#                                              classify-rules 2,000 or 3 s)
#   ci/fuzz.sh [--target NAME] [ITERATIONS] [MAX_SECONDS]
#                                             (defaults: 2,000,000 inputs, at most
#                                              1200 s, for each target)
#
# --target parser|checked|aio|classify|classify-rules|all (default all).
# e.g. `ci/fuzz.sh 20000000 3600` (an hour a target).  Whichever limit comes
# first ends a target's run.  Seeds: the target's folder in fuzz/ (read only;
# the classify targets' dictionary is fuzz/classify.dict, the others'
# fuzz/smtp.dict); what the fuzzer learns goes to
# build/fuzz/corpus (parser) or build/fuzz/corpus-NAME (kept between runs,
# never committed); a crashing or diverging input goes to build/fuzz/artifacts/
# and the script fails, printing how to replay it.  A failing input becomes a
# test in tests/test_regressions.py (minimise it first: see fuzz/README.md).
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
TARGET=all
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --target) TARGET="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        *) break ;;
    esac
done
case "$TARGET" in
    all) TARGETS=(parser checked aio classify classify-rules) ;;
    parser | checked | aio | classify | classify-rules) TARGETS=("$TARGET") ;;
    *) echo "usage: $0 [--target parser|checked|aio|classify|classify-rules|all]" \
            "[--quick | ITERATIONS [MAX_SECONDS]]" >&2
       exit 2 ;;
esac
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
mkdir -p "$OUT/artifacts"
ENGINE="${FUZZ_ENGINE:-atheris}"
if [ "$ENGINE" = atheris ] && ! "$PY" -c 'import atheris' 2>/dev/null; then
    "$PY" -m pip install --quiet --disable-pip-version-check atheris >"$OUT/pip-atheris.log" 2>&1 || true
    if ! "$PY" -c 'import atheris' 2>/dev/null; then
        echo "== fuzz: atheris cannot be installed for $("$PY" -c 'import sys; print(sys.version.split()[0])')" \
            "(see $OUT/pip-atheris.log): using the random-mutation driver instead"
        ENGINE=random
    fi
fi

run_target() {  # NAME RUNS MAX_TIME
    local name="$1" runs="$2" max_time="$3" seeds work log rc dict=fuzz/smtp.dict
    local begin=$SECONDS
    if [ "$name" = parser ]; then
        seeds=fuzz/corpus
        work="$OUT/corpus"
    else
        seeds="fuzz/corpus-$name"
        work="$OUT/corpus-$name"
    fi
    case "$name" in classify*) dict=fuzz/classify.dict ;; esac
    mkdir -p "$work"
    if [ "$ENGINE" = random ]; then
        echo "== fuzz $name (random-mutation driver, no coverage feedback): $runs inputs or" \
            "$max_time s, seeds $seeds and $work"
        local corpora=("$seeds")
        if [ -n "$(ls -A "$work")" ]; then
            corpora+=("$work")
        fi
        FUZZ_SEED="${FUZZ_SEED:-$RANDOM}" "$PY" fuzz/fuzz_parser.py --target "$name" \
            --random "$runs" --seconds "$max_time" --artifacts "$OUT/artifacts" "${corpora[@]}"
        echo "fuzz $name: done in $((SECONDS - begin)) s (random-mutation driver)"
        return 0
    fi
    log="$OUT/fuzz-$name.log"
    [ "$name" = parser ] && log="$OUT/fuzz.log"
    echo "== fuzz $name: $runs runs or $max_time s, seeds $seeds ($(ls "$seeds" | wc -l) files), log $log"
    set +e
    # The reference is instrumented by atheris; -max_len keeps single inputs
    # small enough for byte-at-a-time chunking to stay fast.  rss_limit guards
    # against a parser that holds memory it should not (2 GB; normal is ~50 MB).
    "$PY" fuzz/fuzz_parser.py --target "$name" \
        -runs="$runs" -max_total_time="$max_time" -max_len=2048 -timeout=20 \
        -rss_limit_mb=2048 -dict="$dict" -print_final_stats=1 \
        -artifact_prefix="$OUT/artifacts/" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    set -e
    grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)" "$log" || true
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb|Done )' "$log" || true
    if [ "$rc" -ne 0 ]; then
        echo "== fuzz $name FAILED (exit $rc); the end of the log:" >&2
        tail -n 40 "$log" >&2
        for artifact in "$OUT"/artifacts/*; do
            [ -e "$artifact" ] || continue
            echo "replay: $PY fuzz/fuzz_parser.py --target $name --replay $artifact" >&2
        done
        exit "$rc"
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz $name: ${runs:-?} inputs, 0 crashes, 0 divergences ($(ls "$work" | wc -l) inputs in $work) in $((SECONDS - begin)) s"
}

for name in "${TARGETS[@]}"; do
    if [ "$QUICK" = 1 ]; then
        case "$name" in
            parser) run_target parser 150000 45 ;;
            checked) run_target checked 40000 30 ;;
            aio) run_target aio 8000 30 ;;
            classify) run_target classify 20000 6 ;;
            classify-rules) run_target classify-rules 2000 3 ;;
        esac
    else
        run_target "$name" "${1:-2000000}" "${2:-1200}"
    fi
done
echo "fuzz: all targets clean in $((SECONDS - START)) s"
