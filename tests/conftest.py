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
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator

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


@dataclass
class Fed:
    """What a caller saw while :func:`feed_chunks` fed a parser."""

    #: Everything observable, in order: for each feed, what it returned (a
    #: reply as ``(code, lines, raw, is_multiline)``, a code as itself) and
    #: then ``(buffered, offset)``; at the end ``"closed"`` (a clean close)
    #: or the error as ``(type name, offset, line, message, its replies)``.
    #: Empty unless asked for (``keep=True``).
    trace: list[Any]
    #: Every reply (or code) returned, then those the error carried (``keep``).
    replies: list[Any]
    #: How many replies (or codes) came back, the error's included.
    count: int
    #: Bytes fed, the chunk that raised included.
    fed: int
    #: The error that ended the feeding, or None.
    error: ReplyError | None


def _seen(item: Any) -> Any:
    return item if isinstance(item, int) else (item.code, item.lines, item.raw, item.is_multiline)


def feed_chunks(
    parser: Any, chunks: Iterable[bytes | bytearray | memoryview], *, close: bool = True,
    codes: bool = False, keep: bool = True, watch: Callable[[Any], None] | None = None,
) -> Fed:
    """Feed ``chunks`` to ``parser`` (``feed_codes`` with ``codes``) until they
    run out or it raises a :class:`ReplyError`; then ``close()`` it (unless
    ``close`` is false).  ``watch(parser)`` runs after every feed.  With
    ``keep=False`` only the counts are kept (for memory measurements)."""
    feed = parser.feed_codes if codes else parser.feed
    trace: list[Any] = []
    replies: list[Any] = []
    count = fed = 0
    try:
        for chunk in chunks:
            fed += len(chunk)
            got = feed(chunk)
            count += len(got)
            if keep:
                replies += got
                trace.append([_seen(item) for item in got])
                trace.append((parser.buffered, parser.offset))
            if watch is not None:
                watch(parser)
        if close:
            parser.close()
            trace.append("closed")
    except ReplyError as exc:
        count += len(exc.replies)
        if keep:
            replies += exc.replies
            trace.append((type(exc).__name__, exc.offset, exc.line, str(exc),
                          [_seen(item) for item in exc.replies]))
        return Fed(trace, replies, count, fed, exc)
    return Fed(trace, replies, count, fed, None)


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
