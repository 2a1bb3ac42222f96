#!/usr/bin/env bash
# The compiled parser and classifier under AddressSanitizer and
# UndefinedBehaviorSanitizer: both extensions (_parser_c, _classify_c) are
# built with -fsanitize=address,undefined (gcc by default), installed into
# their own venv, and the whole test suite plus the fuzz corpora run against
# them.  Any ASan report or undefined behaviour aborts the run.
#
#   ci/sanitize.sh [--quick] [extra pytest arguments]
#
#   --quick   the suite without its slowest differential (hypothesis) test,
#             15,000 random mutations of the parser target's corpus instead of
#             200,000, 5,000 of the feed_checked() target's instead of 50,000,
#             1,000 of the aio target's instead of 10,000, 1,000 of the
#             classify target's instead of 10,000 and 100 of classify-rules'
#             instead of 1,000 (every corpus is replayed in full either way);
#             about 2 minutes here, build included
#
# Environment: SANITIZE_CC=clang builds with clang instead (installed with
# apt-get when missing); FASTREPLY_SANITIZE_DIR (default
# ${TMPDIR:-/tmp}/fastreply-sanitize) is where the tree is copied, built and
# its venv kept.  The source tree and its venvs are never touched.
#
# How the sanitizers meet an ordinary CPython:
#  * CPython is not built with ASan, so the ASan runtime must be loaded before
#    anything else: LD_PRELOAD of the compiler's libasan (clang: libclang_rt.asan).
#  * PYTHONMALLOC=malloc: every Python object (the reply bytes included) then
#    comes from malloc, where ASan puts red zones around it, instead of from
#    pymalloc's arenas, where an overrun would go unseen.
#  * detect_leaks=0: CPython deliberately does not free everything at exit
#    (interned strings, static types, module state), so LeakSanitizer would
#    report thousands of "leaks"; they cannot be told from ours by stack,
#    since every allocation of the extension is made below interpreter
#    frames too.  Leaks of the extension are checked instead by
#    tests/test_hostile.py (tracemalloc sees the PyMem buffer and every bytes
#    object) and by ci/valgrind.sh (definite losses with a frame of either
#    compiled module).
#  * halt_on_error / -fno-sanitize-recover=undefined: the first report ends
#    the process with a non-zero status, so pytest cannot swallow it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
QUICK=0
if [ "${1:-}" = "--quick" ]; then
    QUICK=1
    shift
fi
WORK="${FASTREPLY_SANITIZE_DIR:-${TMPDIR:-/tmp}/fastreply-sanitize}"
CC_NAME="${SANITIZE_CC:-gcc}"
PYTHON="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')"
unset FASTREPLY_NO_EXTENSIONS PYTHONPATH
export PIP_DISABLE_PIP_VERSION_CHECK=1
START=$SECONDS
step() { echo "== [sanitize $((SECONDS - START))s] $*"; }

if ! command -v "$CC_NAME" >/dev/null; then
    step "installing $CC_NAME"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$CC_NAME" >/dev/null
fi
case "$CC_NAME" in
    *clang*) RUNTIME="$("$CC_NAME" -print-file-name=libclang_rt.asan-x86_64.so)" ;;
    *) RUNTIME="$("$CC_NAME" -print-file-name=libasan.so)" ;;
esac
if [ ! -e "$RUNTIME" ]; then
    echo "sanitize: no ASan runtime for $CC_NAME ($RUNTIME)" >&2
    exit 1
fi
RUNTIME="$(readlink -f "$RUNTIME")"

step "copying the tree to $WORK/tree"
mkdir -p "$WORK"
rm -rf "$WORK/tree"
mkdir -p "$WORK/tree"
(cd "$ROOT" && tar cf - --exclude='*.so' --exclude='*.c' --exclude='__pycache__' \
    src setup.py pyproject.toml README.md LICENSE MANIFEST.in) | (cd "$WORK/tree" && tar xf -)

if [ ! -x "$WORK/venv/bin/python" ]; then
    "$PYTHON" -m venv "$WORK/venv"
fi
PY="$WORK/venv/bin/python"
"$PY" -m pip install --quiet -r "$ROOT/ci/requirements-test.txt" >"$WORK/pip.log" 2>&1 ||
    { tail -n 30 "$WORK/pip.log" >&2; exit 1; }

step "building the extensions with $CC_NAME -fsanitize=address,undefined"
FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
CC="$CC_NAME" LDSHARED="$CC_NAME -shared" CFLAGS="$FLAGS" LDFLAGS="-fsanitize=address,undefined" \
    "$PY" -m pip install --quiet --force-reinstall --no-deps --no-cache-dir "$WORK/tree" >"$WORK/build.log" 2>&1 ||
    { tail -n 40 "$WORK/build.log" >&2; exit 1; }
# (found without importing them: they cannot load before the ASan runtime is preloaded)
so_path() {
    "$PY" -c 'import glob, sys, sysconfig; s = sysconfig.get_config_var("EXT_SUFFIX"); print(glob.glob(sysconfig.get_paths()["platlib"] + "/fastreply/" + sys.argv[1] + s)[0])' "$1"
}
SO="$(so_path _parser_c)"
CLASSIFY_SO="$(so_path _classify_c)"
for so in "$SO" "$CLASSIFY_SO"; do
    nm -D "$so" >"$WORK/symbols.txt"
    if ! grep -q '__asan_report_load' "$WORK/symbols.txt"; then
        echo "sanitize: $so is not instrumented by ASan" >&2
        exit 1
    fi
    if ! grep -q '__ubsan_handle' "$WORK/symbols.txt"; then
        echo "sanitize: $so is not instrumented by UBSan" >&2
        exit 1
    fi
    echo "instrumented: $so"
done

export LD_PRELOAD="$RUNTIME"
export PYTHONMALLOC=malloc
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"

step "self-check: ASan is live in this interpreter (an overread must be caught)"
if "$PY" -c 'import ctypes; b = bytes(16); ctypes.string_at(id(b), 4096)' 2>"$WORK/selfcheck.log"; then
    echo "sanitize: an out-of-bounds read went unnoticed: ASan is not active" >&2
    exit 1
fi
grep -q 'AddressSanitizer: heap-buffer-overflow' "$WORK/selfcheck.log" ||
    { cat "$WORK/selfcheck.log" >&2; echo "sanitize: self-check did not report as expected" >&2; exit 1; }
step "self-check: UBSan stops the process (a signed overflow in a throw-away extension)"
mkdir -p "$WORK/ubsan-probe"
cat >"$WORK/ubsan-probe/probe.c" <<'EOF_PROBE'
#include <Python.h>
static PyObject *overflow(PyObject *self, PyObject *arg) {
    int x = (int)PyLong_AsLong(arg);
    return PyLong_FromLong(x + 1);     /* INT_MAX + 1: undefined */
}
static PyMethodDef methods[] = {{"overflow", overflow, METH_O, NULL}, {NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "ubsan_probe", NULL, -1, methods};
PyMODINIT_FUNC PyInit_ubsan_probe(void) { return PyModule_Create(&mod); }
EOF_PROBE
INC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
SUFFIX="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
"$CC_NAME" -shared -fPIC -O0 -g $FLAGS -I"$INC" "$WORK/ubsan-probe/probe.c" \
    -o "$WORK/ubsan-probe/ubsan_probe$SUFFIX"
set +e
PYTHONPATH="$WORK/ubsan-probe" "$PY" -c 'import ubsan_probe; ubsan_probe.overflow(2**31 - 1)' \
    2>"$WORK/ubsan-probe/log"
probe=$?
set -e
if [ "$probe" -ne 87 ] || ! grep -q 'runtime error: signed integer overflow' "$WORK/ubsan-probe/log"; then
    cat "$WORK/ubsan-probe/log" >&2
    echo "sanitize: UBSan did not stop on undefined behaviour (exit $probe)" >&2
    exit 1
fi

cd "$ROOT"
# From the directory pytest runs in: the instrumented modules are the ones imported.
SO="$SO" CLASSIFY_SO="$CLASSIFY_SO" "$PY" -c 'import os, fastreply, fastreply._parser_c as c
import fastreply._classify_c as k, fastreply.classification as kc
assert fastreply.IMPLEMENTATION == kc.IMPLEMENTATION == "cython", fastreply.IMPLEMENTATION
assert os.path.samefile(c.__file__, os.environ["SO"]), (c.__file__, os.environ["SO"])
assert os.path.samefile(k.__file__, os.environ["CLASSIFY_SO"]), (k.__file__, os.environ["CLASSIFY_SO"])'
step "test suite (compiled module required) under ASan+UBSan"
DESELECT=()
if [ "$QUICK" = 1 ]; then
    DESELECT=(--deselect tests/test_differential.py::test_same_behaviour)
fi
set +e
"$PY" -m pytest -p no:cacheprovider --c-extensions -q "${DESELECT[@]}" "$@"
suite=$?
set -e
case "$suite" in
    0) ;;
    86 | 87)
        echo "sanitize: the test suite stopped on an AddressSanitizer (86) or UBSan (87) report" \
            "(exit $suite): see above" >&2
        exit "$suite" ;;
    *)  # failing tests, not a sanitizer report: go on, fail at the end
        echo "sanitize: the test suite failed (exit $suite) without a sanitizer report;" \
            "the corpus and mutations still run under the sanitizers" >&2 ;;
esac

step "fuzz corpus replayed under ASan+UBSan"
CORPORA=(fuzz/corpus)
if [ -d build/fuzz/corpus ] && [ -n "$(ls -A build/fuzz/corpus)" ]; then
    CORPORA+=(build/fuzz/corpus)
fi
"$PY" fuzz/fuzz_parser.py --replay "${CORPORA[@]}"
RANDOM_INPUTS=200000
if [ "$QUICK" = 1 ]; then
    RANDOM_INPUTS=15000
fi
step "$RANDOM_INPUTS random mutations of the corpus under ASan+UBSan"
"$PY" fuzz/fuzz_parser.py --random "$RANDOM_INPUTS" --keep-going "${CORPORA[@]}"

for target in checked aio classify classify-rules; do
    TARGET_CORPORA=("fuzz/corpus-$target")
    if [ -d "build/fuzz/corpus-$target" ] && [ -n "$(ls -A "build/fuzz/corpus-$target")" ]; then
        TARGET_CORPORA+=("build/fuzz/corpus-$target")
    fi
    step "fuzz target $target: corpus replayed under ASan+UBSan"
    "$PY" fuzz/fuzz_parser.py --target "$target" --replay "${TARGET_CORPORA[@]}"
    case "$target" in
        checked) COUNT=50000 ;;
        aio) COUNT=10000 ;;
        classify) COUNT=10000 ;;
        classify-rules) COUNT=1000 ;;
    esac
    if [ "$QUICK" = 1 ]; then COUNT=$((COUNT / 10)); fi
    step "fuzz target $target: $COUNT random mutations under ASan+UBSan"
    "$PY" fuzz/fuzz_parser.py --target "$target" --random "$COUNT" --keep-going "${TARGET_CORPORA[@]}"
done

step "hostile streams under ASan+UBSan (bench/memory_hostile.py, 4 MB each; errors checked, not RSS)"
"$PY" bench/memory_hostile.py --size-mb 4 --impl cython --quiet --errors-only
if [ "$suite" -ne 0 ]; then
    step "sanitize: no ASan or UBSan report, but the test suite failed (exit $suite)"
    exit 1
fi
step "sanitize: clean"
