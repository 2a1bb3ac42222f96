#!/usr/bin/env bash
# Hostile input and load, all in one: fuzzing, sanitizers, valgrind, bounded
# memory, linear time, and the load test.
#
#   ci/hostile.sh [--quick]  the short forms, about 7 minutes here:
#                              fuzz (parser 45 s, feed_checked() logs 30 s,
#                              aio cancellations 30 s, the classifier 6 s and
#                              with user rules 3 s), ASan+UBSan (quick suite,
#                              corpora, mutations; both extensions), the
#                              threading contract (a few seconds), valgrind on
#                              the parser and classifier tests and the parser's
#                              corpus, hostile streams of 32 MB, linear
#                              time at 1 and 4 MB, load at 300 sessions
#                              (and 200 against Postfix when FASTREPLY_POSTFIX
#                              is set, as .ci/run does)
#   ci/hostile.sh --full     the full forms (well over an hour): fuzz 1 hour
#                              a target, ASan+UBSan whole suite, threading
#                              contract, valgrind whole suite,
#                              256 MB hostile streams, linear-time benchmark
#                              (1, 10, 100 MB), load at 500 sessions (1000
#                              against Postfix)
#
# Each step is its own script, runnable alone (see its header); the short
# form of each is also a line of .ci/run.  The first failing step fails the
# run.  One venv (.venv-hostile, built by ci/setup.sh from this tree,
# compiled module required; or FASTREPLY_PY if set) serves every step but the
# sanitizer build, which has its own outside the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=0
case "${1:-}" in
    --full) FULL=1 ;;
    --quick | "") ;;
    *) echo "usage: $0 [--quick|--full]" >&2; exit 2 ;;
esac
START=$SECONDS
banner() { echo; echo "######## [hostile $((SECONDS - START))s] $*"; }

if [ -z "${FASTREPLY_PY:-}" ]; then
    banner "set-up (.venv-hostile)"
    FASTREPLY_PY="$(pwd)/$(bash ci/setup.sh .venv-hostile)"
fi
export FASTREPLY_PY
"$FASTREPLY_PY" -c 'import aiosmtpd' 2>/dev/null ||
    "$FASTREPLY_PY" -m pip install --quiet --disable-pip-version-check aiosmtpd >&2

if [ "$FULL" = 1 ]; then
    banner "fuzz (full: up to 20M inputs or 1 hour)"
    bash ci/fuzz.sh 20000000 3600
    banner "ASan+UBSan (full suite)"
    bash ci/sanitize.sh
    banner "threading contract, both implementations"
    "$FASTREPLY_PY" ci/thread_stress.py --seconds 3
    banner "valgrind memcheck (full suite)"
    bash ci/valgrind.sh
    banner "hostile streams, 256 MB each"
    "$FASTREPLY_PY" bench/memory_hostile.py --size-mb 256
    banner "linear time, 1/10/100 MB"
    "$FASTREPLY_PY" bench/linear_time.py
    banner "load: 500 concurrent sessions"
    "$FASTREPLY_PY" bench/load.py --sessions 500 --timeout 300
else
    banner "fuzz (quick)"
    bash ci/fuzz.sh --quick
    banner "ASan+UBSan (quick)"
    bash ci/sanitize.sh --quick
    banner "threading contract, both implementations (quick)"
    "$FASTREPLY_PY" ci/thread_stress.py --quick
    banner "valgrind memcheck (quick)"
    bash ci/valgrind.sh --quick
    banner "hostile streams, 32 MB each"
    "$FASTREPLY_PY" bench/memory_hostile.py --size-mb 32
    banner "linear time, 1 and 4 MB"
    "$FASTREPLY_PY" bench/linear_time.py --sizes 1,4
    banner "load: 300 concurrent sessions (aiosmtpd)"
    "$FASTREPLY_PY" bench/load.py --sessions 300 --timeout 60
fi
if [ -n "${FASTREPLY_POSTFIX:-}" ]; then
    # Postfix allows 50 connections per client by default: 40 at once.
    banner "load: Postfix at $FASTREPLY_POSTFIX, $([ "$FULL" = 1 ] && echo 1000 || echo 200) sessions, 40 at once"
    "$FASTREPLY_PY" bench/load.py --server "$FASTREPLY_POSTFIX" --concurrency 40 \
        --sessions "$([ "$FULL" = 1 ] && echo 1000 || echo 200)" --timeout 120
else
    banner "load: no Postfix (FASTREPLY_POSTFIX unset, see ci/postfix.sh): aiosmtpd only"
fi
banner "hostile: all steps passed"
