"""Feeding one byte at a time against one chunk: the work must stay linear.

The per-byte cost of byte-at-a-time feeding is a constant times the one-chunk
cost (the cost of a ``feed()`` call), the same at every stream size: compare
``bytewise-16k`` with ``bytewise-64k`` (ns per byte = mean / bytes).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from fastreply._bench.corpus import generate
from fastreply._bench.engine import feeder

SIZES = {"16k": 16 * 1024, "64k": 64 * 1024}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("feeding", ["one-chunk", "bytewise"])
def test_feeding(benchmark: Any, impl: ModuleType, feeding: str, size: str) -> None:
    corpus = generate("mix", size=SIZES[size], seed=0)
    data = corpus.data
    pieces = [data] if feeding == "one-chunk" else [data[i : i + 1] for i in range(len(data))]
    expected = len(corpus.exchanges)

    run = feeder(impl.ReplyParser, pieces)  # the same runner as ``fastreply bench``'s
    benchmark.group = f"feeding {impl.__name__.rsplit('.', 1)[-1]}"
    benchmark.extra_info.update(bytes=len(data), replies=expected)
    assert benchmark(run) == expected
