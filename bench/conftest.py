"""Fixtures of the pytest-benchmark suite (``pytest bench``).

The same implementation fixture as the tests: every parser benchmark runs
against the compiled module and the pure-Python one, and the compiled one
must import unless ``--no-c-extensions`` is given (or
``FASTREPLY_NO_EXTENSIONS`` is set).  The workloads are the generated corpora
of :mod:`fastreply._bench.corpus`, the same ones ``fastreply bench`` measures.

``pytest bench --benchmark-disable`` runs every benchmark once, as a test
(CI does this so the suite cannot rot); ``pytest bench`` measures.
"""

from __future__ import annotations

import argparse
import importlib
import os
from types import ModuleType

import pytest

from fastreply._bench.corpus import WORKLOADS, Corpus, generate

IMPLEMENTATIONS = {"python": "fastreply._parser_py", "cython": "fastreply._parser_c"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fastreply-bench")
    group.addoption(
        "--corpus-kb",
        type=int,
        default=2000,
        metavar="KB",
        help="kilobytes of replies in each benchmark workload (default: 2000; much "
        "less overstates the compiled parser: the CPU's branch predictor learns a "
        "small input replayed over and over)",
    )
    default = not os.environ.get("FASTREPLY_NO_EXTENSIONS")
    try:
        group.addoption(
            "--c-extensions",
            action="store_true",
            dest="c_extensions",
            default=default,
            help="benchmark the compiled module too; it must import (default unless "
            "FASTREPLY_NO_EXTENSIONS is set)",
        )
        group.addoption(
            "--no-c-extensions",
            action="store_false",
            dest="c_extensions",
            help="benchmark only the pure-Python implementation",
        )
    except (ValueError, argparse.ArgumentError):
        pass  # `pytest tests bench`: tests/conftest.py already added them


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        names = ["python"]
        if metafunc.config.getoption("c_extensions"):
            names.insert(0, "cython")
        params = [
            pytest.param(name, marks=[pytest.mark.c_extension] if name == "cython" else [])
            for name in names
        ]
        metafunc.parametrize("impl", params, indirect=True, scope="session")
    if "workload" in metafunc.fixturenames:
        metafunc.parametrize("workload", WORKLOADS, scope="session")


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The parser module benchmarked: ``fastreply._parser_c`` or ``_parser_py``."""
    return importlib.import_module(IMPLEMENTATIONS[request.param])


_CORPORA: dict[tuple[str, int], Corpus] = {}


def corpus_for(config: pytest.Config, workload: str) -> Corpus:
    size = config.getoption("corpus_kb") * 1000
    key = (workload, size)
    if key not in _CORPORA:
        _CORPORA[key] = generate(workload, size=size, seed=0)
    return _CORPORA[key]


@pytest.fixture
def corpus(request: pytest.FixtureRequest, workload: str) -> Corpus:
    """The generated workload (cached for the session)."""
    return corpus_for(request.config, workload)
