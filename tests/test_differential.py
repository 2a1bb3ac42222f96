"""Differential test: the compiled parser and the pure-Python reference, fed
the same random streams in the same random chunks, must agree on everything
observable: replies (per feed), buffered bytes, offsets and errors."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastreply.errors import ReplyError

CODES = [b"220", b"250", b"251", b"354", b"421", b"450", b"500", b"550", b"199", b"599",
         b"600", b"099", b"260", b"2x0", b"25"]

text_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))

valid_line = st.builds(
    lambda code, sep, text, end: code + sep + text + end,
    st.sampled_from(CODES[:10]),
    st.sampled_from([b"-", b" ", b""]),
    text_bytes,
    st.sampled_from([b"\r\n", b"\n"]),
)
reply = st.builds(
    lambda code, texts, end: b"".join(code + b"-" + t + end for t in texts[:-1])
    + code + b" " + texts[-1] + end,
    st.sampled_from(CODES[:10]),
    st.lists(text_bytes, min_size=1, max_size=6),
    st.sampled_from([b"\r\n", b"\n"]),
)
# Three bytes where a code goes: any byte values, not only digits (the
# compiled parser checks them with word arithmetic).
any_code = st.binary(min_size=3, max_size=3)
junk_line = st.builds(
    lambda code, sep, text, end: code + sep + text + end,
    st.one_of(st.sampled_from(CODES), any_code),
    st.sampled_from([b"-", b" ", b"", b"\t", b"x", b"\r"]),
    text_bytes,
    st.sampled_from([b"\r\n", b"\n", b"\r", b""]),
)
piece = st.one_of(reply, reply, valid_line, junk_line, st.binary(max_size=12))
stream = st.one_of(
    st.lists(st.one_of(reply, valid_line), max_size=25).map(b"".join),  # mostly well formed
    st.lists(piece, max_size=25).map(b"".join),  # anything goes
)
options = st.fixed_dictionaries(
    {},
    optional={
        "strict": st.booleans(),
        "max_line_length": st.integers(4, 60),
        "max_reply_lines": st.integers(1, 8),
    },
)


def observe(module: ModuleType, data: bytes, cuts: list[int], opts: dict[str, Any],
            codes_only: bool) -> list[Any]:
    """Everything a caller can see while feeding ``data`` cut at ``cuts``."""
    parser = module.ReplyParser(**opts)
    seen: list[Any] = []
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    feed = parser.feed_codes if codes_only else parser.feed
    try:
        for start, end in zip(bounds, bounds[1:]):
            got = feed(data[start:end])
            seen.append(got if codes_only else [(r.code, r.lines, r.raw) for r in got])
            seen.append((parser.buffered, parser.offset))
        parser.close()
        seen.append("closed")
    except ReplyError as exc:
        replies = exc.replies if codes_only else [(r.code, r.lines, r.raw) for r in exc.replies]
        seen.append((type(exc).__name__, exc.offset, exc.line, str(exc), replies))
        # and the parser stays stopped, with the same message
        try:
            parser.feed(b"250 ok\r\n")
        except ReplyError as again:
            seen.append((type(again).__name__, again.offset, str(again)))
    return seen


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=stream, cuts=st.lists(st.integers(0, 10_000), max_size=8), opts=options,
       codes_only=st.booleans())
def test_same_behaviour(both: tuple[ModuleType, ModuleType], data: bytes, cuts: list[int],
                        opts: dict[str, Any], codes_only: bool) -> None:
    py, c = both
    assert observe(c, data, cuts, opts, codes_only) == observe(py, data, cuts, opts, codes_only)


def collect(module: ModuleType, chunks: list[bytes], opts: dict[str, Any]) -> tuple[list[Any], Any]:
    parser = module.ReplyParser(**opts)
    replies: list[Any] = []
    try:
        for chunk in chunks:
            replies += [(r.code, r.lines, r.raw) for r in parser.feed(chunk)]
        parser.close()
    except ReplyError as exc:
        replies += [(r.code, r.lines, r.raw) for r in exc.replies]
        return replies, (type(exc).__name__, exc.offset, exc.line)
    return replies, None


@settings(max_examples=300, deadline=None)
@given(data=stream, opts=options)
def test_byte_at_a_time_equals_one_chunk(both: tuple[ModuleType, ModuleType], data: bytes,
                                         opts: dict[str, Any]) -> None:
    """Replies and errors (type, offset, line) do not depend on how the stream is cut."""
    for module in both:
        whole = collect(module, [data], opts)
        single = collect(module, [data[i : i + 1] for i in range(len(data))], opts)
        assert single == whole, module.__name__
