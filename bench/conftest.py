"""Fixtures of the pytest-benchmark suite (``pytest bench``).

The implementation options and fixture are the test suite's
(``tests/implementations.py``): every parser benchmark runs against the
compiled module and the pure-Python one, and the compiled one must import
unless ``--no-c-extensions`` is given (or ``FASTREPLY_NO_EXTENSIONS`` is
set).  The workloads are the generated corpora of
:mod:`fastreply._bench.corpus`, and the runners those of
:mod:`fastreply._bench.engine`: what ``fastreply bench`` measures.

``pytest bench --benchmark-disable`` runs every benchmark once, as a test
(CI does this so the suite cannot rot); ``pytest bench`` measures.
"""

from __future__ import annotations

import os
import sys

import pytest

# The implementation options, parametrisation and fixture of the test suite.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))

from fastreply._bench.corpus import WORKLOADS, Corpus, generate  # noqa: E402
from implementations import add_options, generate_tests, impl  # noqa: E402, F401


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    parser.getgroup("fastreply-bench").addoption(
        "--corpus-kb",
        type=int,
        default=2000,
        metavar="KB",
        help="kilobytes of replies in each benchmark workload (default: 2000; much "
        "less overstates the compiled parser: the CPU's branch predictor learns a "
        "small input replayed over and over)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    generate_tests(metafunc)
    if "workload" in metafunc.fixturenames:
        metafunc.parametrize("workload", WORKLOADS, scope="session")


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
