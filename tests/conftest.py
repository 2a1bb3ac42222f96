"""Shared fixtures: every parser test runs against both implementations.

The compiled module is required unless ``--no-c-extensions`` is given (or
``FASTREPLY_NO_EXTENSIONS`` is set, which forces the fallback everywhere):
a build that silently fell back to pure Python fails the run instead of
testing the wrong thing.
"""

from __future__ import annotations

import importlib
import os
import random
from types import ModuleType
from typing import Any, Iterator, Sequence

import pytest

from fastreply.errors import ReplyError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fastreply")
    default = not os.environ.get("FASTREPLY_NO_EXTENSIONS")
    group.addoption(
        "--c-extensions",
        action="store_true",
        dest="c_extensions",
        default=default,
        help="test the compiled module too; it must import (default unless "
        "FASTREPLY_NO_EXTENSIONS is set)",
    )
    group.addoption(
        "--no-c-extensions",
        action="store_false",
        dest="c_extensions",
        help="test only the pure-Python implementation",
    )


def c_extensions_enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("c_extensions"))


IMPLEMENTATIONS = {"python": "fastreply._parser_py", "cython": "fastreply._parser_c"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        names = ["python"]
        if c_extensions_enabled(metafunc.config):
            names.insert(0, "cython")
        params = [
            pytest.param(name, marks=[pytest.mark.c_extension] if name == "cython" else [])
            for name in names
        ]
        metafunc.parametrize("impl", params, indirect=True, scope="session")
    if "classifier_impl" in metafunc.fixturenames:
        metafunc.parametrize(
            "classifier_impl", _classifier_params(metafunc.config), indirect=True, scope="session"
        )


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The parser module under test: ``fastreply._parser_c`` or ``_parser_py``."""
    # An ImportError here fails the test run: the compiled module was asked for.
    return importlib.import_module(IMPLEMENTATIONS[request.param])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that compare the two implementations mean nothing without the
    # compiled one: leave them out of a --no-c-extensions run (reported as
    # deselected) rather than skipping them.
    if c_extensions_enabled(config):
        return
    keep, drop = [], []
    for item in items:
        (drop if "both" in getattr(item, "fixturenames", ()) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def both() -> tuple[ModuleType, ModuleType]:
    """(reference, compiled) for differential tests."""
    return (
        importlib.import_module("fastreply._parser_py"),
        importlib.import_module("fastreply._parser_c"),
    )


def chunkings(data: bytes, seed: int = 0) -> Iterator[tuple[str, list[bytes]]]:
    """The same stream cut in several ways: whole, byte by byte, random splits."""
    yield "whole", [data]
    yield "bytes", [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(seed)
    for round_ in range(3):
        pieces = []
        i = 0
        while i < len(data):
            step = rng.randint(1, 17)
            pieces.append(data[i : i + step])
            i += step
        yield f"random{round_}", pieces


def run_stream(
    module: ModuleType, chunks: Sequence[bytes | bytearray | memoryview], close: bool = True,
    **options: Any,
) -> tuple[list[Any], BaseException | None]:
    """Feed ``chunks`` to a new parser; return every reply and the error, if any
    (replies attached to the error are included in the list)."""
    parser = module.ReplyParser(**options)
    replies: list[Any] = []
    try:
        for chunk in chunks:
            replies.extend(parser.feed(chunk))
        if close:
            parser.close()
    except ReplyError as exc:
        replies.extend(exc.replies)
        return replies, exc
    return replies, None


# -- the classifier's two matchers --------------------------------------------

CLASSIFIERS = {"python": "fastreply._classify_py", "cython": "fastreply._classify_c"}


def _classifier_params(config: pytest.Config) -> list[Any]:
    names = ["python"]
    if c_extensions_enabled(config):
        names.insert(0, "cython")
    return [
        pytest.param(name, marks=[pytest.mark.c_extension] if name == "cython" else [])
        for name in names
    ]


@pytest.fixture(scope="session")
def classifier_impl(request: pytest.FixtureRequest) -> ModuleType:
    """The classifier matcher module under test: ``fastreply._classify_c`` or
    ``fastreply._classify_py`` (the compiled one must import unless
    ``--no-c-extensions``)."""
    # An ImportError here fails the run: the compiled module was asked for.
    return importlib.import_module(CLASSIFIERS[request.param])


@pytest.fixture(scope="session")
def classifier(classifier_impl: ModuleType) -> Any:
    """A classifier with the shipped rules on the matcher under test."""
    from fastreply.classification import Classifier

    return Classifier(matcher=classifier_impl.Matcher)
