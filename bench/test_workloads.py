"""Every implementation on every workload, the same runners as ``fastreply bench``.

Grouped by workload, so pytest-benchmark's table compares fastreply's parsers
with smtplib, aiosmtplib and the smtplib drop-in side by side.  Each runner
parses the whole corpus, fed in 64 KiB chunks as socket reads would return
it, and must return every reply.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from fastreply._bench import engine
from fastreply._bench.corpus import Corpus


def measure(benchmark: Any, corpus: Corpus, key: str, parser: Any = None) -> None:
    try:
        prepared = engine.prepare(key, corpus, engine.DEFAULT_CHUNK, parser)
    except LookupError as exc:
        pytest.skip(str(exc))
    # The check pass: same codes as the corpus, nothing lost or merged.
    assert prepared.codes() == corpus.codes
    benchmark.group = corpus.workload
    benchmark.extra_info.update(
        replies=len(corpus.exchanges), bytes=len(corpus.data), implementation=key
    )
    assert benchmark(prepared.run) == len(corpus.exchanges)


def test_feed(benchmark: Any, impl: ModuleType, corpus: Corpus) -> None:
    """``ReplyParser.feed()``: Reply objects for every reply."""
    measure(benchmark, corpus, "compiled", impl.ReplyParser)


def test_feed_codes(benchmark: Any, impl: ModuleType, corpus: Corpus) -> None:
    """``ReplyParser.feed_codes()``: only the codes."""
    measure(benchmark, corpus, "codes", impl.ReplyParser)


def test_feed_validated(benchmark: Any, impl: ModuleType, corpus: Corpus) -> None:
    """``feed()`` and every reply checked against ``tables.MODERN`` for the
    command it answers."""
    measure(benchmark, corpus, "validated", impl.ReplyParser)


def test_smtplib(benchmark: Any, corpus: Corpus) -> None:
    """The baseline: ``smtplib.SMTP.getreply()`` through its buffered reader."""
    measure(benchmark, corpus, "smtplib")


def test_aiosmtplib(benchmark: Any, corpus: Corpus) -> None:
    """aiosmtplib's ``SMTPProtocol`` buffer reader (skipped when not installed)."""
    measure(benchmark, corpus, "aiosmtplib")


def test_smtplib_dropin(benchmark: Any, corpus: Corpus) -> None:
    """``fastreply.smtplib.SMTP.getreply()``."""
    measure(benchmark, corpus, "dropin")
