"""classify() on realistic replies with unique ids, next to the baseline it must
not exceed: smtplib's getreply() parsing the same replies (the same runners as
``fastreply bench --classify``).  Grouped together so pytest-benchmark's table
shows the ratio."""

from __future__ import annotations

from typing import Any

import pytest

from fastreply._bench import classify as classify_bench
from fastreply.classification import Classifier

COUNT = 5_000


@pytest.fixture(scope="module")
def replies() -> tuple[bytes, list[Any]]:
    return classify_bench.make_replies(COUNT, seed=0)


def test_getreply(benchmark: Any, replies: tuple[bytes, list[Any]]) -> None:
    stream, _ = replies
    benchmark.group = "classify"
    assert benchmark(classify_bench.getreply_runner(stream, COUNT)) == COUNT


def test_classify(benchmark: Any, impl: Any, replies: tuple[bytes, list[Any]]) -> None:
    """The matcher of the same implementation as the parser (``impl``)."""
    import importlib

    matcher = "cython" if impl.__name__.endswith("_c") else "python"
    module = importlib.import_module(f"fastreply._classify_{'c' if matcher == 'cython' else 'py'}")
    classifier = Classifier(matcher=module.Matcher)
    stream, commands = replies
    parsed = impl.ReplyParser().feed(stream)
    assert len(parsed) == COUNT
    first = [classifier.classify(r, c) for r, c in zip(parsed[:18], commands)]
    assert {r.category for r in first} >= {"delivered", "invalid_recipient", "greylisted",
                                          "dnsbl_listed", "reputation_block"}
    benchmark.group = "classify"
    benchmark.extra_info.update(replies=COUNT, matcher=matcher)
    run = classify_bench.classify_runner(classifier.classify, list(zip(parsed, commands)))
    assert benchmark(run) == COUNT
