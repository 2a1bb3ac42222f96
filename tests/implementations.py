"""Which implementation a test runs: the options, the parametrisation and the
fixtures shared by the test suite (``tests/conftest.py``) and the benchmark
suite (``bench/conftest.py``).

Every parser test runs against the compiled module and the pure-Python one
(the ``impl`` fixture; the classifier's matchers: ``classifier_impl``).  The
compiled module is required unless ``--no-c-extensions`` is given (or
``FASTREPLY_NO_EXTENSIONS`` is set, which forces the fallback everywhere): a
build that silently fell back to pure Python fails the run instead of testing
the wrong thing.  The ``selected`` fixture proves which implementation
``import fastreply`` runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

import pytest

PARSERS = {"python": "fastreply._parser_py", "cython": "fastreply._parser_c"}
CLASSIFIERS = {"python": "fastreply._classify_py", "cython": "fastreply._classify_c"}


def add_options(parser: pytest.Parser) -> None:
    """``--c-extensions`` / ``--no-c-extensions`` (once, whichever suite's
    conftest comes first: ``pytest tests bench`` loads both)."""
    group = parser.getgroup("fastreply")
    default = not os.environ.get("FASTREPLY_NO_EXTENSIONS")
    try:
        group.addoption(
            "--c-extensions",
            action="store_true",
            dest="c_extensions",
            default=default,
            help="run against the compiled module too; it must import (default unless "
            "FASTREPLY_NO_EXTENSIONS is set)",
        )
    except ValueError:
        return  # added by the other suite's conftest
    group.addoption(
        "--no-c-extensions",
        action="store_false",
        dest="c_extensions",
        help="run against the pure-Python implementation only",
    )


def c_extensions_enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("c_extensions"))


def params(config: pytest.Config) -> list[Any]:
    """The implementation names to run a test with, the compiled one marked."""
    names = ["cython", "python"] if c_extensions_enabled(config) else ["python"]
    return [
        pytest.param(name, marks=[pytest.mark.c_extension] if name == "cython" else [])
        for name in names
    ]


def generate_tests(metafunc: pytest.Metafunc) -> None:
    """``pytest_generate_tests``: ``impl`` and ``classifier_impl`` take each
    implementation in turn."""
    for name in ("impl", "classifier_impl"):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, params(metafunc.config), indirect=True, scope="session")


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The parser module under test: ``fastreply._parser_c`` or ``_parser_py``."""
    # An ImportError here fails the test run: the compiled module was asked for.
    return importlib.import_module(PARSERS[request.param])


@pytest.fixture(scope="session")
def classifier_impl(request: pytest.FixtureRequest) -> ModuleType:
    """The classifier matcher module under test: ``fastreply._classify_c`` or
    ``fastreply._classify_py`` (the compiled one must import unless
    ``--no-c-extensions``)."""
    return importlib.import_module(CLASSIFIERS[request.param])


def expected_implementation(config: pytest.Config) -> str | None:
    """What ``fastreply.IMPLEMENTATION`` must be in this run, or None when
    either is right (``--no-c-extensions`` with the compiled module installed
    and the variable unset)."""
    if os.environ.get("FASTREPLY_NO_EXTENSIONS"):
        return "python"
    if c_extensions_enabled(config):
        return "cython"  # the guard against a build that silently fell back
    if sys.implementation.name != "cpython" or importlib.util.find_spec(PARSERS["cython"]) is None:
        return "python"  # another interpreter, or a pure-Python build
    return None


@pytest.fixture(scope="session")
def selected(request: pytest.FixtureRequest) -> ModuleType:
    """The parser module ``import fastreply`` runs, checked against what this
    run asked for: ``fastreply.IMPLEMENTATION``, ``ReplyParser``, ``Reply``,
    ``CodeMasks`` and the classifier's matcher all come from the expected
    implementation."""
    import fastreply
    from fastreply import _parser, classification

    name = expected_implementation(request.config) or fastreply.IMPLEMENTATION
    module = importlib.import_module(PARSERS[name])
    assert fastreply.IMPLEMENTATION == classification.IMPLEMENTATION == name
    assert fastreply.ReplyParser is module.ReplyParser
    assert fastreply.Reply is module.Reply
    assert _parser.CodeMasks is module.CodeMasks
    assert fastreply.classify.__module__ == CLASSIFIERS[name]
    return module
