#!/usr/bin/env bash
# Free-threaded CPython, here and now: build one (once; it is cached), then
# run fastreply's suite, the shared-parser thread stress and the thread
# scaling benchmark on it.
#
#   ci/freethreaded.sh [--quick]
#
# The interpreter comes from Debian's own source package, fetched with
# `apt-get source` through a private sources list (deb-src lines for the
# suites below, on the Debian mirror this machine's apt already uses; the
# system's apt configuration and lists are not touched), and is built with
# `./configure --disable-gil && make -j2` into the cache directory:
#
#   FASTREPLY_FT_CACHE     cache directory (default ~/.cache/fastreply-ft)
#   FASTREPLY_FT_VERSIONS  CPython versions to try, in order (default "3.14 3.13":
#                          3.14t is the ABI the wheels ship; 3.13t when no 3.14
#                          source package is reachable)
#   FASTREPLY_FT_SUITES    Debian suites of the deb-src lines (default "trixie forky")
#   FASTREPLY_FT_REFRESH=1 ask apt again even when an interpreter is cached
#                          (a newer version or Debian revision gets built)
#
# Time: the first build takes about 4-6 minutes on 2 cores (configure, make
# -j2, make install; the build tree is deleted afterwards, the installed
# interpreter kept, about 250 MB).  Once it is cached a rerun starts at once.
# Build dependencies missing on the machine are installed with apt-get (root).
#
# Then, in .venv-ft (made by ci/setup.sh with the built interpreter, fastreply
# installed from this tree with the compiled module required):
#   1. importing fastreply must leave the GIL off (sys._is_gil_enabled());
#   2. the test suite, compiled module required, both implementations;
#   3. ci/thread_stress.py: parsers, tables and replies shared by several threads;
#   4. bench/thread_scaling.py: private parsers, 1 and 2 threads side by side,
#      every parse path; the ratios are printed, not asserted (the machine's
#      other load decides them too).
# --quick: the suite with -x -q, a shorter stress and fewer scaling rounds;
# a few minutes once the interpreter is cached (.ci/run runs this form).
set -euo pipefail
shopt -s inherit_errexit  # (the build runs in a command substitution)
cd "$(dirname "$0")/.."
QUICK=0
case "${1:-}" in
    --quick) QUICK=1 ;;
    "") ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
START=$SECONDS
banner() { echo; echo "######## [freethreaded $((SECONDS - START))s] $*"; }

CACHE="${FASTREPLY_FT_CACHE:-$HOME/.cache/fastreply-ft}"
VERSIONS="${FASTREPLY_FT_VERSIONS:-3.14 3.13}"
SUITES="${FASTREPLY_FT_SUITES:-trixie forky}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"

# -- the interpreter ------------------------------------------------------------

# A built interpreter: $CACHE/cpython-<Debian version>-ft/bin/python<X.Y>t,
# with a file "complete" beside bin/ once `make install` has finished.  (No
# pip in it: Debian's ensurepip refuses the base interpreter and serves venvs.)
cached_python() {
    local version prefix
    for version in $VERSIONS; do
        for prefix in $(ls -d "$CACHE"/cpython-"$version".*-ft 2>/dev/null | sort -rV); do
            if [ -f "$prefix/complete" ] && [ -x "$prefix/bin/python${version}t" ]; then
                echo "$prefix/bin/python${version}t"
                return 0
            fi
        done
    done
    return 1
}

# The Debian mirror this machine's apt uses (deb822 "URIs:" or a one-line
# "deb" entry); deb.debian.org when none names a Debian archive.
debian_mirror() {
    local uri
    uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
        sed -n -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?//p' |
        tr ' ' '\n' | grep -E '^https?://.*/debian/?$' | head -n 1 || true)"
    echo "${uri:-http://deb.debian.org/debian}"
}

APT=()
private_apt() {
    local mirror suite
    mirror="$(debian_mirror)"
    mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/cache/archives/partial"
    : >"$CACHE/apt/sources.list"
    for suite in $SUITES; do
        echo "deb-src $mirror $suite main" >>"$CACHE/apt/sources.list"
    done
    APT=(-o "Dir::Etc::sourcelist=$CACHE/apt/sources.list" -o "Dir::Etc::sourceparts=-"
         -o "Dir::State::Lists=$CACHE/apt/lists" -o "Dir::Cache=$CACHE/apt/cache"
         -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
    echo "private apt sources ($CACHE/apt/sources.list):" >&2
    cat "$CACHE/apt/sources.list" >&2
    apt-get "${APT[@]}" -q update >&2
}

# Build dependencies (headers for ssl, ctypes, zlib, bz2, lzma, sqlite3,
# readline, curses, uuid, expat), installed with apt when missing.
BUILD_DEPS=(build-essential dpkg-dev pkg-config libssl-dev libffi-dev zlib1g-dev libbz2-dev
            liblzma-dev libsqlite3-dev libreadline-dev libncurses-dev uuid-dev libexpat1-dev)
install_build_deps() {
    local missing=() pkg
    for pkg in "${BUILD_DEPS[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
    done
    [ "${#missing[@]}" = 0 ] && return 0
    echo "installing build dependencies: ${missing[*]}" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
        apt-get -q update >&2  # a fresh machine may have no package lists yet
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    fi
}

build_python() {
    local version package debver prefix src built_in
    private_apt
    for version in $VERSIONS; do
        package="python$version"
        # Each Debian version of it the suites list, newest first (an index
        # may list a source package that the mirror does not serve).
        for debver in $(apt-cache "${APT[@]}" showsrc "$package" 2>/dev/null |
                        sed -n 's/^Version: //p' | sort -rVu); do
            prefix="$CACHE/cpython-${debver//[^A-Za-z0-9.+~-]/_}-ft"
            if [ -f "$prefix/complete" ] && [ -x "$prefix/bin/python${version}t" ]; then
                echo "$prefix/bin/python${version}t"
                return 0
            fi
            rm -rf "$CACHE/src" "$prefix"
            mkdir -p "$CACHE/src"
            if ! (cd "$CACHE/src" && apt-get "${APT[@]}" -q source --download-only "$package=$debver" >&2); then
                echo "source package $package $debver is listed but not served" >&2
                continue
            fi
            install_build_deps
            echo "building free-threaded $package $debver into $prefix" >&2
            built_in=$SECONDS
            # Upstream's tarball as Debian ships it, without Debian's patches:
            # those serve the system python (they disable ensurepip, and their
            # site.py looks for a venv's packages in lib/python3.X/, not in the
            # lib/python3.Xt/ of a free-threaded build).
            tar -xf "$(ls "$CACHE/src/${package}_"*.orig.tar.* | head -n 1)" -C "$CACHE/src"
            src="$(find "$CACHE/src" -mindepth 1 -maxdepth 1 -type d -name "Python-*" | head -n 1)"
            [ -n "$src" ] || { echo "the $package source package holds no Python-* tree" >&2; return 1; }
            (
                cd "$src"
                ./configure --prefix="$prefix" --disable-gil --with-ensurepip=no >"$CACHE/src/configure.log" 2>&1 ||
                    { tail -n 40 "$CACHE/src/configure.log" >&2; exit 1; }
                make -j2 >"$CACHE/src/make.log" 2>&1 || { tail -n 60 "$CACHE/src/make.log" >&2; exit 1; }
                make install >"$CACHE/src/install.log" 2>&1 || { tail -n 40 "$CACHE/src/install.log" >&2; exit 1; }
            )
            # What did not build (an optional module without its headers) is
            # listed by make; ssl, ctypes, zlib and sqlite3 are needed here.
            "$prefix/bin/python${version}t" -c 'import ssl, ctypes, zlib, bz2, lzma, sqlite3, readline, sys; assert not sys._is_gil_enabled()' >&2
            grep -A3 -E 'modules? (were|was) not (found|built)|Failed to build' "$CACHE/src/make.log" >&2 || true
            echo "$package $debver built in $((SECONDS - built_in)) s" | tee "$prefix/complete" >&2
            rm -rf "$CACHE/src"
            echo "$prefix/bin/python${version}t"
            return 0
        done
        echo "no source package $package to be had from: $SUITES" >&2
    done
    echo "no free-threaded CPython built: none of $VERSIONS" >&2
    return 1
}

banner "free-threaded CPython (cache: $CACHE)"
if [ "${FASTREPLY_FT_REFRESH:-}" != 1 ] && FTPY="$(cached_python)"; then
    echo "cached: $FTPY ($(cat "$(dirname "$(dirname "$FTPY")")/complete"))"
else
    FTPY="$(build_python)"
fi
"$FTPY" -VV

# -- fastreply on it ---------------------------------------------------------------

banner "venv .venv-ft: fastreply from this tree, compiled module required"
VENV=.venv-ft
if [ -f "$VENV/pyvenv.cfg" ] && ! grep -qx "executable = $FTPY" "$VENV/pyvenv.cfg"; then
    rm -rf "$VENV"  # made with another interpreter
fi
# The newest hypothesis may come only as a source build needing Rust on a
# free-threaded Python: take the newest that has a wheel here.
PY="$(PIP_ONLY_BINARY=hypothesis PYTHON="$FTPY" bash ci/setup.sh "$VENV")"
unset PYTHON_GIL  # (PYTHON_GIL=0 would hide an extension that turns the GIL on)
"$PY" -W error - <<'PYEOF'
import sys, fastreply, fastreply._parser_c
assert fastreply.IMPLEMENTATION == "cython", fastreply.IMPLEMENTATION
assert not sys._is_gil_enabled(), "importing fastreply turned the GIL on"
print(f"{sys.version.split()[0]}t: GIL off after importing fastreply {fastreply.__version__}")
PYEOF

banner "test suite (compiled module required, both implementations)"
if [ "$QUICK" = 1 ]; then
    "$PY" -m pytest -p no:cacheprovider --c-extensions -x -q
else
    "$PY" -m pytest -p no:cacheprovider --c-extensions
fi

# Both implementations: the compiled parser holds a per-object lock for each
# call, the pure-Python one a threading.Lock.
banner "thread stress: one parser shared by 4 threads (both implementations)"
"$PY" ci/thread_stress.py --impl both --seconds "$([ "$QUICK" = 1 ] && echo 3 || echo 15)"

banner "thread scaling: private parsers, 1 and 2 threads (printed, not asserted)"
if [ "$QUICK" = 1 ]; then
    "$PY" bench/thread_scaling.py --impl compiled --rounds 3 --seconds 0.5
else
    "$PY" bench/thread_scaling.py --impl both --rounds 7 --seconds 1
fi
banner "done"
