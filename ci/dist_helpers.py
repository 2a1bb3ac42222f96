"""Small checks for ci/dist_check.sh (standard library only, Python 3.10+).

    python ci/dist_helpers.py cibw-option PYPROJECT KEY
        print a [tool.cibuildwheel] option as cibuildwheel joins it (arrays
        joined with spaces; test-requires items shell-quoted)
    python ci/dist_helpers.py check-sdist SDIST
        the sdist holds what a wheel build and the test suite need, and no
        generated or compiled files
    python ci/dist_helpers.py check-wheel WHEEL compiled|pure [PYTHON_TAG]
        a compiled wheel carries the extension for that interpreter, a pure
        one is py3-none-any with no binary; both ship py.typed and the stub
"""

from __future__ import annotations

import shlex
import sys
import tarfile
import zipfile
from pathlib import PurePosixPath

if sys.version_info >= (3, 11):
    import tomllib
else:  # the tools venv has tomli there (validate-pyproject needs it)
    import tomli as tomllib

# What a build from the sdist and `pytest` from its tests/ need.
SDIST_REQUIRED = [
    "PKG-INFO",
    "pyproject.toml",
    "setup.py",
    "README.md",
    "LICENSE",
    "MANIFEST.in",
    "src/fastreply/__init__.py",
    "src/fastreply/_parser_c.pyx",
    "src/fastreply/_parser_c.pyi",
    "src/fastreply/_parser_py.py",
    "src/fastreply/_parser.h",
    "src/fastreply/_common.py",
    "src/fastreply/_classify_c.pyx",
    "src/fastreply/_classify_c.pyi",
    "src/fastreply/_classify.h",
    "src/fastreply/_classify_py.py",
    "src/fastreply/data/classification_rules.json",
    "src/fastreply/py.typed",
    "tests/conftest.py",
    "ci/requirements-test.txt",
    # The documentation: its examples run in the test suite (tests/test_docs.py).
    "docs/conf.py",
    "docs/index.md",
    "docs/requirements.txt",
    ".readthedocs.yaml",
]
# Generated or compiled files never belong in an sdist (the .c is made by
# Cython at build time, with the Cython the build asks for).
FORBIDDEN_SUFFIXES = (".c", ".so", ".pyd", ".dylib", ".o", ".pyc", ".html")
WHEEL_REQUIRED = ["fastreply/__init__.py", "fastreply/py.typed", "fastreply/_parser_c.pyi",
                  "fastreply/_classify_c.pyi", "fastreply/data/classification_rules.json"]
#: The compiled modules a compiled wheel carries, one binary each.
EXTENSIONS = ("_parser_c", "_classify_c")
BINARY_SUFFIXES = (".so", ".pyd", ".dylib")


def fail(message: str) -> None:
    print(f"dist check: {message}", file=sys.stderr)
    raise SystemExit(1)


def cibw_option(pyproject: str, key: str) -> None:
    with open(pyproject, "rb") as fh:
        config = tomllib.load(fh)["tool"]["cibuildwheel"]
    value = config.get(key, "")
    if isinstance(value, list):
        quote = shlex.quote if key == "test-requires" else str
        value = " ".join(quote(str(item)) for item in value)
    print(value)


def check_sdist(path: str) -> None:
    with tarfile.open(path) as tar:
        names = [member.name for member in tar.getmembers() if member.isfile()]
    roots = {PurePosixPath(name).parts[0] for name in names}
    if len(roots) != 1:
        fail(f"{path}: expected one top-level directory, found {sorted(roots)}")
    (root,) = roots
    inside = {str(PurePosixPath(name).relative_to(root)) for name in names}
    missing = [name for name in SDIST_REQUIRED if name not in inside]
    if missing:
        fail(f"{path}: missing {missing} (MANIFEST.in / package-data)")
    bad = sorted(name for name in inside if name.endswith(FORBIDDEN_SUFFIXES))
    if bad:
        fail(f"{path}: generated or compiled files in the sdist: {bad}")
    tests = sorted(name for name in inside if name.startswith("tests/test_"))
    print(f"sdist OK: {len(inside)} files, {len(tests)} test modules")


def check_wheel(path: str, kind: str, python_tag: str | None = None) -> None:
    name = PurePosixPath(path).name
    # name-version-pythontag-abitag-platformtag.whl (no build tag here)
    pytag, abitag, plattag = name[: -len(".whl")].split("-")[-3:]
    with zipfile.ZipFile(path) as whl:
        names = whl.namelist()
    missing = [item for item in WHEEL_REQUIRED if item not in names]
    if missing:
        fail(f"{name}: missing {missing}")
    binaries = [item for item in names if item.endswith(BINARY_SUFFIXES)]
    sources = [item for item in names if item.endswith(".c")]
    if sources:
        fail(f"{name}: generated C in the wheel: {sources}")
    if kind == "pure":
        if (pytag, abitag, plattag) != ("py3", "none", "any"):
            fail(f"{name}: a pure build must be tagged py3-none-any")
        if binaries:
            fail(f"{name}: a pure wheel with binaries: {binaries}")
    else:
        if python_tag and (pytag, abitag) != (python_tag.rstrip("t"), python_tag):
            fail(f"{name}: expected the tags {python_tag.rstrip('t')}-{python_tag}")
        ext = []
        for module in EXTENSIONS:
            found = [item for item in binaries if item.startswith(f"fastreply/{module}.")]
            if len(found) != 1:
                fail(f"{name}: expected exactly one compiled fastreply/{module}, got {binaries}")
            ext += found
        if set(binaries) != set(ext):
            fail(f"{name}: unexpected binaries {sorted(set(binaries) - set(ext))}")
    print(f"{name}: OK ({kind}, {len(names)} files)")


def main(argv: list[str]) -> None:
    if len(argv) >= 3 and argv[0] == "cibw-option":
        cibw_option(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "check-sdist":
        check_sdist(argv[1])
    elif len(argv) in (3, 4) and argv[0] == "check-wheel" and argv[2] in ("compiled", "pure"):
        check_wheel(argv[1], argv[2], argv[3] if len(argv) == 4 else None)
    else:
        fail(f"usage: see {__file__}")


if __name__ == "__main__":
    main(sys.argv[1:])
