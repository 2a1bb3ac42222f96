"""The reference's line checker is the specification; its regular expression
is an accelerator.

``_parser_py.ReplyParser._line`` checks one line against every wire rule, in
order, and names what is wrong: it is what "well formed" means (and the
compiled parser's ``check_line`` follows it rule for rule).  ``_fast_path``
builds, from the same rules and the limits, a pattern that takes a whole run
of well-formed replies in one call at a reply boundary.  It may take less
than it could (the line checker then reads the rest), never more, and what it
takes must be what the line checker would have made of it.  These tests hold
the two together on random streams: a parser reading line by line only (its
accelerator replaced by ``_parser_py._LINE_BY_LINE``, which takes nothing)
against the parser as shipped.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import feed_chunks
from fastreply import _parser_py
from strategies import cut, cuts, edge_stream, options, stream

streams = st.one_of(stream, edge_stream)


def line_by_line(**opts: Any) -> _parser_py.ReplyParser:
    """A reference parser that reads everything with ``_line``."""
    parser = _parser_py.ReplyParser(**opts)
    parser._fast = _parser_py._LINE_BY_LINE
    return parser


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=streams, at=cuts, opts=options, codes_only=st.booleans())
def test_the_accelerator_changes_nothing_a_caller_sees(
    data: bytes, at: list[int], opts: dict[str, Any], codes_only: bool
) -> None:
    chunks = cut(data, at)
    shipped = feed_chunks(_parser_py.ReplyParser(**opts), chunks, codes=codes_only)
    specified = feed_chunks(line_by_line(**opts), chunks, codes=codes_only)
    assert shipped.trace == specified.trace


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=streams, opts=options)
def test_the_accelerator_takes_only_what_the_line_checker_accepts(
    data: bytes, opts: dict[str, Any]
) -> None:
    """Each reply the pattern cuts from the stream is one reply to ``_line``,
    whole, with the same code; what it leaves starts where they end."""
    strict = opts.get("strict", False)
    max_line = opts.get("max_line_length", _parser_py.DEFAULT_MAX_LINE_LENGTH)
    max_lines = opts.get("max_reply_lines", _parser_py.DEFAULT_MAX_REPLY_LINES)
    matches = _parser_py._fast_path(max_line, max_lines, strict)(data)
    rest = matches.pop()[2] if matches and matches[-1][2] else b""
    taken = [(raw, int(code)) for raw, code, _ in matches]
    assert b"".join(raw for raw, _ in taken) + rest == data
    for raw, code in taken:
        fed = feed_chunks(line_by_line(**opts), [raw])
        assert fed.error is None, (raw, fed.error)
        assert [(r.code, r.raw) for r in fed.replies] == [(code, raw)]


def test_the_line_by_line_parser_takes_nothing_at_once() -> None:
    """The stand-in the tests above use really bypasses the pattern."""
    assert _parser_py._LINE_BY_LINE(b"250 ok\r\n250 ok\r\n") == [(b"", b"", b"250 ok\r\n250 ok\r\n")]
    assert _parser_py._fast_path(8192, 1000, False)(b"250 ok\r\n") == [(b"250 ok\r\n", b"250", b"")]
