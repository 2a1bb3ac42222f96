"""Differential test: the compiled parser and the pure-Python reference, fed
the same random streams in the same random chunks, must agree on everything
observable: replies (per feed), buffered bytes, offsets and errors."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import feed_chunks
from fastreply.errors import ReplyError
from strategies import cut, cuts, options, stream


def observe(module: ModuleType, data: bytes, at: list[int], opts: dict[str, Any],
            codes_only: bool) -> list[Any]:
    """Everything a caller can see while feeding ``data`` cut at ``at``, and
    what a stopped parser says when fed again."""
    parser = module.ReplyParser(**opts)
    seen = feed_chunks(parser, cut(data, at), codes=codes_only).trace
    if seen[-1] != "closed":
        try:
            parser.feed(b"250 ok\r\n")
        except ReplyError as again:
            seen.append((type(again).__name__, again.offset, str(again)))
    return seen


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=stream, at=cuts, opts=options, codes_only=st.booleans())
def test_same_behaviour(both: tuple[ModuleType, ModuleType], data: bytes, at: list[int],
                        opts: dict[str, Any], codes_only: bool) -> None:
    py, c = both
    assert observe(c, data, at, opts, codes_only) == observe(py, data, at, opts, codes_only)


@settings(max_examples=300, deadline=None)
@given(data=stream, opts=options)
def test_byte_at_a_time_equals_one_chunk(both: tuple[ModuleType, ModuleType], data: bytes,
                                         opts: dict[str, Any]) -> None:
    """Replies and errors (type, offset, line) do not depend on how the stream is cut."""

    def outcome(chunks: list[bytes]) -> tuple[list[Any], Any]:
        fed = feed_chunks(module.ReplyParser(**opts), chunks)
        error = fed.error
        return ([(r.code, r.lines, r.raw) for r in fed.replies],
                None if error is None else (type(error).__name__, error.offset, error.line))

    for module in both:
        single = outcome([data[i : i + 1] for i in range(len(data))])
        assert single == outcome([data]), module.__name__
