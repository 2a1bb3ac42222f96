"""Hostile input, small and fast: the limits bound what a parser holds, and each
hostile stream ends with the right error.

Nothing here is timed.  What a parser holds is read from ``parser.buffered``
after every ``feed()`` and, for the memory actually allocated, from
``tracemalloc`` (which sees the compiled parser's ``PyMem`` buffer and every
``bytes`` object either implementation makes).  ``bench/memory_hostile.py`` is
the full-size version (hundreds of MB, peak RSS and time).
"""

from __future__ import annotations

import gc
import tracemalloc
from types import ModuleType
from typing import Any, Iterator

import pytest

from conftest import feed_chunks
from fastreply import errors

KB = 1024


def line(length: int, sep: bytes = b"-", fill: bytes = b"x", code: bytes = b"250") -> bytes:
    """A line of exactly ``length`` bytes with its CRLF."""
    return code + sep + fill * (length - 6) + b"\r\n"


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class Traced:
    """Peak and retained traced memory (bytes) above the level at entry."""

    def __enter__(self) -> Traced:
        gc.collect()
        self.was_tracing = tracemalloc.is_tracing()
        if not self.was_tracing:
            tracemalloc.start()
        self.base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        return self

    def __exit__(self, *exc: object) -> None:
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        self.peak = peak - self.base
        self.retained = current - self.base
        if not self.was_tracing:
            tracemalloc.stop()


# -- buffered bytes never pass the limits ----------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 1000, 64 * KB])
def test_endless_line_is_refused_at_the_line_limit(impl: ModuleType, chunk: int) -> None:
    limit = 8192
    parser = impl.ReplyParser()

    def watch(p: Any) -> None:
        assert p.buffered < limit

    assert len(parser.feed(b"220 hi\r\n250 ")) == 1
    endless = iter(lambda: b"x" * chunk, None)  # never ends by itself
    run = feed_chunks(parser, endless, close=False, keep=False, watch=watch)
    assert isinstance(run.error, errors.LineTooLong)
    assert run.error.offset == 8
    # Refused as soon as the line passed the limit: at most one chunk later.
    assert run.fed <= limit + chunk


@pytest.mark.parametrize("chunk", [1, 5, 333, 64 * KB])
def test_endless_continuations_hold_less_than_the_bound(impl: ModuleType, chunk: int) -> None:
    length, lines = 200, 50
    parser = impl.ReplyParser(max_line_length=length, max_reply_lines=lines)
    most = 0

    def watch(p: Any) -> None:
        nonlocal most
        most = max(most, p.buffered)
        assert p.buffered < length * lines

    stream = line(length) * (lines * 3)  # continuation lines of the longest length allowed
    run = feed_chunks(parser, pieces(stream, chunk), close=False, keep=False, watch=watch)
    assert isinstance(run.error, errors.TooManyLines)
    assert run.error.offset == (lines - 1) * length  # the line that asks for one line more
    assert run.count == 0
    assert most >= (lines - 1) * length - chunk


def test_maximal_replies_in_tiny_chunks_then_garbage(impl: ModuleType) -> None:
    # Replies exactly at both limits, fed 1-3 bytes at a time: all accepted,
    # the buffer empties after each; then a line that is not a reply.
    length, lines = 64, 20
    reply = line(length) * (lines - 1) + line(length, sep=b" ")
    stream = reply * 6 + b"\x00\xff garbage\r\n"
    sizes = [1, 2, 3]
    chunks: list[bytes] = []
    i = 0
    while i < len(stream):
        size = sizes[len(chunks) % 3]
        chunks.append(stream[i : i + size])
        i += size
    parser = impl.ReplyParser(max_line_length=length, max_reply_lines=lines)
    done = 0
    try:
        for piece in chunks:
            got = parser.feed(piece)
            for r in got:
                assert r.raw == reply and len(r.lines) == lines
                done += 1
                assert parser.buffered < len(piece)
            assert parser.buffered < length * lines
    except errors.MalformedReply as exc:
        assert exc.offset == 6 * len(reply)
        assert exc.line == b"\x00\xff garbage\r\n"
        done += len(exc.replies)
    else:
        pytest.fail("the garbage line was accepted")
    assert done == 6


@pytest.mark.parametrize("fill", [b"\x00", b"\xff", bytes(range(128, 256))])
def test_runs_without_line_end_are_refused_at_the_line_limit(impl: ModuleType,
                                                             fill: bytes) -> None:
    parser = impl.ReplyParser(max_line_length=1000)
    block = fill * (4096 // len(fill))
    run = feed_chunks(parser, (block for _ in range(1000)), close=False, keep=False)
    assert isinstance(run.error, errors.LineTooLong)
    assert run.error.offset == 0 and run.fed == 4096
    assert run.error.line == block[: errors.LINE_PREVIEW]


@pytest.mark.parametrize("fill", [b"\x00", b"\x80\xff\xfe", b"\r"])
def test_nul_and_8bit_text_is_kept_then_a_line_of_them_is_malformed(impl: ModuleType,
                                                                    fill: bytes) -> None:
    text = (fill * 3000)[:3000]
    stream = (b"250-" + text + b"\r\n") * 3 + b"250 " + text + b"\r\n" + text[:50] + b"\n"
    for size in (1, 97, len(stream)):
        parser = impl.ReplyParser()
        replies = []
        with pytest.raises(errors.MalformedReply) as info:
            for piece in pieces(stream, size):
                replies += parser.feed(piece)
        replies += info.value.replies
        assert info.value.offset == 4 * (len(text) + 6), size
        assert info.value.line == text[:50] + b"\n"
        assert [r.lines for r in replies] == [(text,) * 4], size
        assert replies[0].raw == stream[: 4 * (len(text) + 6)]


def test_large_limits_buffer_what_they_allow_and_close_says_so(impl: ModuleType) -> None:
    # Limits are the caller's to raise: then an unfinished line is held whole.
    parser = impl.ReplyParser(max_line_length=10**9)
    block = b"y" * (64 * KB)
    run = feed_chunks(parser, [b"250 "] + [block] * 40, close=False, keep=False)
    assert run.error is None and parser.buffered == run.fed
    with pytest.raises(errors.IncompleteReply) as info:
        parser.close()
    assert info.value.offset == 0 and info.value.truncated


# -- allocated memory (tracemalloc) ------------------------------------------

LIMIT_LINE, LIMIT_LINES = 1000, 100
BOUND = LIMIT_LINE * LIMIT_LINES  # the most an incomplete reply can hold: 100 KB
# Allowed peak: the held reply, its copy into a Reply's raw bytes when it
# completes, the pure-Python reference's per-line text copies, the compiled
# parser's buffer doubling, plus a small constant (one 16 KB chunk, lists).
ALLOWED_PEAK = 4 * BOUND + 64 * KB


def hostile_streams() -> dict[str, tuple[list[bytes], type[errors.ReplyError] | None]]:
    """About 4 MB each, built before measuring: maximal replies then a hostile
    tail, or a hostile run from the start."""
    maximal = line(LIMIT_LINE) * (LIMIT_LINES - 1) + line(LIMIT_LINE, sep=b" ")
    body = list(pieces(maximal * 40, 16 * KB))
    return {
        "endless line": ([b"250 "] + [b"x" * (16 * KB)] * 256, errors.LineTooLong),
        "endless continuations": (body + list(pieces(line(LIMIT_LINE) * 4000, 16 * KB)),
                                  errors.TooManyLines),
        "tiny chunks": (list(pieces(maximal * 4, 3)) + [b"HTTP/1.1 400\r\n"],
                        errors.MalformedReply),
        "nul run": (body + [b"\x00" * (16 * KB)] * 16, errors.LineTooLong),
        "8-bit lines then 8-bit garbage": (
            list(pieces((b"250 " + bytes(range(128, 256)) * 7 + b"\r\n") * 4000, 16 * KB))
            + [b"\xff\xfe\r\n"], errors.MalformedReply),
        "well formed": (body, None),
    }


@pytest.mark.parametrize("name", list(hostile_streams()))
def test_traced_memory_stays_within_the_limits(impl: ModuleType, name: str) -> None:
    chunks, expected = hostile_streams()[name]
    parser = impl.ReplyParser(max_line_length=LIMIT_LINE, max_reply_lines=LIMIT_LINES)
    with Traced() as traced:
        run = feed_chunks(parser, chunks, keep=False)
    if expected is None:
        assert run.error is None and run.fed == sum(map(len, chunks))
    else:
        assert isinstance(run.error, expected), run.error
    assert traced.peak <= ALLOWED_PEAK, f"{name}: peak {traced.peak} bytes"


def test_no_memory_kept_across_parsers_errors_and_resets(impl: ModuleType) -> None:
    big = b"250-" + b"z" * 150_000  # grows a parser buffer past 64 KiB
    with Traced() as traced:
        for _ in range(100):
            parser = impl.ReplyParser(max_line_length=200_000)
            parser.feed(big)
            parser.reset()  # gives a large buffer back
            parser.feed(big)
            with pytest.raises(errors.LineTooLong):
                parser.feed(b"z" * 60_000)
            with pytest.raises(errors.LineTooLong):
                parser.close()
            del parser
    # 100 leaked buffers would be 15-30 MB.
    assert traced.retained < 64 * KB, traced.retained


def test_a_large_reply_does_not_pin_its_buffer(impl: ModuleType) -> None:
    parser = impl.ReplyParser(max_line_length=600_000)
    big = b"250-" + b"w" * 500_000 + b"\r\n250 end\r\n"
    with Traced() as traced:
        for piece in pieces(big, 4096):
            parser.feed(piece)
        parser.feed(b"220 small\r\n")
        assert parser.buffered == 0
    # Both give a large buffer back once the reply is complete.
    assert traced.retained < 64 * KB, traced.retained
    assert traced.peak < 5 * len(big)  # buffer, its copy as raw, the reference's line texts
