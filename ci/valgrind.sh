#!/usr/bin/env bash
# Valgrind memcheck of the test suite on the normal build of the compiled
# parser and classifier (not the sanitizer build): invalid reads and writes,
# uses of uninitialised memory and definite leaks.  The run fails on any
# error that touches fastreply's compiled modules (_parser_c, _classify_c);
# CPython's and glibc's own noise is suppressed (ci/valgrind-python.supp) or
# counted and shown, not failed on.
#
#   ci/valgrind.sh [--quick] [--no-selfcheck] [extra pytest arguments]
#
#   (default)  the whole suite, compiled modules required (about 10 minutes
#              here), the fuzz corpora of the parser and the classifier
#              replayed, 20,000 random mutations of the parser's and 2,000
#              of the classifier's
#   --quick    the limit, hostile-input and regression tests and a part of
#              the classifier's tests against the compiled modules only (no
#              pure-Python parametrisations, no tracemalloc measurements;
#              the regression tests replay the parser targets' corpora, the
#              classifier's are left to the full form), 500 random mutations
#              of the parser's corpus (about 80-90 s here, with FASTREPLY_PY set)
#   --no-selfcheck  skip the first step, which proves that the report does
#              fail on an error in a module named _parser_c or _classify_c (a
#              1-byte heap overread in throw-away extensions built for that
#              purpose)
#
# Why these options: PYTHONMALLOC=malloc makes every Python object a malloc
# block memcheck can check (pymalloc's arenas would hide overruns);
# --track-origins=yes tells where an uninitialised value came from, which is
# how an error seen later in interpreter code is still traced back to the
# extension; --errors-for-leak-kinds=definite because the interpreter keeps
# much of its memory "possibly lost" or "still reachable" at exit by design.
# Reports are written per process (build/valgrind/*.xml) and judged by
# ci/valgrind_report.py.  FASTREPLY_PY=/path/to/python skips the set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
SELFCHECK=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; shift ;;
        --no-selfcheck) SELFCHECK=0; shift ;;
        *) break ;;
    esac
done
START=$SECONDS
step() { echo "== [valgrind $((SECONDS - START))s] $*"; }
if ! command -v valgrind >/dev/null; then
    step "installing valgrind"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
PY="${FASTREPLY_PY:-}"
if [ -z "$PY" ]; then
    PY="$(bash ci/setup.sh .venv-hostile)"
fi
"$PY" -c 'import fastreply; assert fastreply.IMPLEMENTATION == "cython", fastreply.IMPLEMENTATION'
# A venv given by FASTREPLY_PY must hold this tree's fastreply, not an older one:
# the same .py files, and a compiled module built after the .pyx last changed.
"$PY" ci/check_installed.py
OUT=build/valgrind
rm -rf "$OUT"
mkdir -p "$OUT"
unset FASTREPLY_NO_EXTENSIONS
VG=(valgrind --tool=memcheck --track-origins=yes --leak-check=full
    --show-leak-kinds=definite --errors-for-leak-kinds=definite
    --suppressions=ci/valgrind-python.supp --child-silent-after-fork=yes
    --num-callers=40 --xml=yes)

if [ "$SELFCHECK" = 1 ]; then
    step "self-check: an overread in a module named _parser_c or _classify_c must fail the report"
    mkdir -p "$OUT/selfcheck"
    cat >"$OUT/selfcheck/probe.c" <<'EOF'
#include <Python.h>
#include <stdlib.h>
#define INIT_(name) PyInit_##name
#define INIT(name) INIT_(name)
#define TEXT_(name) #name
#define TEXT(name) TEXT_(name)
static PyObject *overread(PyObject *self, PyObject *args) {
    volatile char *p = malloc(8);
    char c;
    p[0] = 0;
    c = p[8];           /* one byte past the block */
    free((void *)p);
    return PyLong_FromLong(c);
}
static PyMethodDef methods[] = {{"overread", overread, METH_NOARGS, NULL}, {NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, TEXT(NAME), NULL, -1, methods};
PyMODINIT_FUNC INIT(NAME)(void) { return PyModule_Create(&mod); }
EOF
    INC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    SUFFIX="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
    for name in _parser_c_selfcheck _classify_c_selfcheck; do
        cc -shared -fPIC -O0 -g -DNAME="$name" -I"$INC" "$OUT/selfcheck/probe.c" \
            -o "$OUT/selfcheck/$name$SUFFIX"
    done
    # One process, both probes: two errors, one blamed on each module name.
    PYTHONMALLOC=malloc PYTHONPATH="$OUT/selfcheck" "${VG[@]}" --xml-file="$OUT/selfcheck/probe-%p.xml" \
        "$PY" -c 'import _parser_c_selfcheck as p, _classify_c_selfcheck as c; p.overread(); c.overread()' \
        2>/dev/null
    if "$PY" ci/valgrind_report.py "$OUT"/selfcheck/probe-*.xml >"$OUT/selfcheck/report.txt"; then
        cat "$OUT/selfcheck/report.txt"
        echo "valgrind: the self-check errors were not caught; the report cannot be trusted" >&2
        exit 1
    fi
    for name in _parser_c_selfcheck _classify_c_selfcheck; do
        grep -A3 'FASTREPLY ERROR InvalidRead' "$OUT/selfcheck/report.txt" | grep -q "$name" ||
            { cat "$OUT/selfcheck/report.txt" >&2
              echo "valgrind: the overread in $name was not blamed on fastreply" >&2; exit 1; }
    done
    echo "self-check: caught ($(grep -c 'FASTREPLY ERROR' "$OUT/selfcheck/report.txt") errors:" \
        "one in each of _parser_c_selfcheck and _classify_c_selfcheck)"
fi

if [ "$QUICK" = 1 ]; then
    # (the tracemalloc measurements of test_hostile.py are left to the
    # normal runs: here memcheck's own leak check does that job, 10x faster)
    # The classifier (compiled matcher): its regression tests, a few tests of
    # what it reads from hostile bytes, and the labelled set's dev part; its
    # fuzz corpora (replayed by the regression tests, a minute under
    # memcheck) and the rest of its tests wait for the full form.
    KEEP="not python and not traced_memory and not no_memory_kept and not does_not_pin"
    KEEP+=" and not classify_fuzz_targets and not classify_harness"
    CLASSIFIER=()
    for name in odd_bytes_are_safe bad_replies retry_after first_provider_token_wins \
                enhanced_codes_of_later_lines_are_not_words own_rules_only; do
        CLASSIFIER+=("tests/test_classification.py::test_$name")
    done
    SELECT=(tests/test_errors_limits.py tests/test_hostile.py tests/test_regressions.py
            "${CLASSIFIER[@]}" "tests/test_classification_cases.py::test_development_agreement[cython-cython-dev]"
            -k "$KEEP")
    step "quick: limits, hostile input, regressions, the parser's fuzz corpus and the classifier's tests (compiled modules) under memcheck"
else
    SELECT=()
    step "the whole test suite under memcheck"
fi
set +e
PYTHONMALLOC=malloc "${VG[@]}" --xml-file="$OUT/suite-%p.xml" \
    "$PY" -m pytest -p no:cacheprovider --c-extensions -q "${SELECT[@]}" "$@"
suite=$?
corpus=0
if [ "$QUICK" = 0 ]; then
    step "the fuzz corpus replayed under memcheck"
    PYTHONMALLOC=malloc "${VG[@]}" --xml-file="$OUT/corpus-%p.xml" \
        "$PY" fuzz/fuzz_parser.py --replay fuzz/corpus
    corpus=$?
    for target in classify classify-rules; do
        step "the $target fuzz corpus replayed under memcheck"
        PYTHONMALLOC=malloc "${VG[@]}" --xml-file="$OUT/corpus-$target-%p.xml" \
            "$PY" fuzz/fuzz_parser.py --target "$target" --replay "fuzz/corpus-$target" ||
            corpus=$?
    done
    step "2000 random mutations of the classify corpus under memcheck"
    PYTHONMALLOC=malloc "${VG[@]}" --xml-file="$OUT/corpus-random-classify-%p.xml" \
        "$PY" fuzz/fuzz_parser.py --target classify --random 2000 --keep-going fuzz/corpus-classify ||
        corpus=$?
fi
RANDOM_INPUTS=20000
if [ "$QUICK" = 1 ]; then
    RANDOM_INPUTS=500
fi
step "$RANDOM_INPUTS random mutations of the fuzz corpus under memcheck"
PYTHONMALLOC=malloc "${VG[@]}" --xml-file="$OUT/random-%p.xml" \
    "$PY" fuzz/fuzz_parser.py --random "$RANDOM_INPUTS" --keep-going fuzz/corpus
random=$?
set -e
step "report"
report=0
"$PY" ci/valgrind_report.py "$OUT"/suite-*.xml "$OUT"/random-*.xml \
    $(ls "$OUT"/corpus-*.xml 2>/dev/null) || report=$?
if [ "$suite" -ne 0 ] || [ "$corpus" -ne 0 ] || [ "$random" -ne 0 ] || [ "$report" -ne 0 ]; then
    echo "valgrind FAILED (suite exit $suite, corpus exit $corpus, random inputs exit $random," \
        "report exit $report)" >&2
    exit 1
fi
step "valgrind: clean"
