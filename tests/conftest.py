"""Shared fixtures and helpers of the test suite.

Which implementation each test runs (``impl``, ``classifier_impl``,
``selected``, ``both``, the ``--c-extensions`` options) comes from
``implementations.py``, which the benchmark suite shares; here are the
helpers that feed a parser and record what a caller sees.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator

import pytest

from fastreply.errors import ReplyError
from implementations import (  # noqa: F401 - fixtures, found here by pytest
    add_options,
    c_extensions_enabled,
    classifier_impl,
    generate_tests,
    impl,
    selected,
)

pytest_addoption = add_options
pytest_generate_tests = generate_tests


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


@pytest.fixture(scope="session")
def classifier(classifier_impl: ModuleType) -> Any:
    """A classifier with the shipped rules on the matcher under test."""
    from fastreply.classification import Classifier

    return Classifier(matcher=classifier_impl.Matcher)
