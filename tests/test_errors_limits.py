"""Limits (exactly at the limit and one past it), the error model, the
parser's state (buffered, offset, reset, close) for both implementations."""

from __future__ import annotations

import pickle
from types import ModuleType

import pytest

from conftest import chunkings, feed_chunks
from fastreply import errors


def line_of(length: int, code: bytes = b"250", sep: bytes = b" ", end: bytes = b"\r\n") -> bytes:
    """A line of exactly ``length`` bytes counted with its line end."""
    fill = length - len(code) - len(sep) - len(end)
    assert fill >= 0
    return code + sep + b"x" * fill + end


@pytest.mark.parametrize("limit", [8, 64, 100, 8192])
@pytest.mark.parametrize("end", [b"\r\n", b"\n"])
def test_line_exactly_at_limit_is_accepted(impl: ModuleType, limit: int, end: bytes) -> None:
    line = line_of(limit, end=end)
    assert len(line) == limit
    for how, chunks in chunkings(line):
        fed = feed_chunks(impl.ReplyParser(max_line_length=limit), chunks)
        assert fed.error is None, how
        assert fed.replies[0].raw == line


@pytest.mark.parametrize("limit", [8, 64, 100, 8192])
@pytest.mark.parametrize("end", [b"\r\n", b"\n"])
def test_line_one_past_limit_is_refused(impl: ModuleType, limit: int, end: bytes) -> None:
    stream = b"220 hi\r\n" + line_of(limit + 1, end=end)
    for how, chunks in chunkings(stream):
        fed = feed_chunks(impl.ReplyParser(max_line_length=limit), chunks)
        assert isinstance(fed.error, errors.LineTooLong), how
        assert fed.error.offset == 8
        assert [r.code for r in fed.replies] == [220]
        assert fed.error.line == stream[8 : 8 + min(limit, errors.LINE_PREVIEW)]


def test_default_line_limit_is_smtplibs(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    assert parser.max_line_length == 8192 and parser.max_reply_lines == 1000
    assert parser.feed(line_of(8192))[0].code == 250
    with pytest.raises(errors.LineTooLong):
        parser.feed(line_of(8193))


def test_overlong_line_refused_before_it_is_buffered(impl: ModuleType) -> None:
    # The line never ends, yet the parser refuses it as soon as it has
    # max_line_length bytes without a line end: nothing more is buffered.
    parser = impl.ReplyParser(max_line_length=100)
    parser.feed(b"250 ")
    with pytest.raises(errors.LineTooLong) as info:
        for _ in range(1000):
            parser.feed(b"x" * 10)
            assert parser.buffered < 100
    assert info.value.offset == 0
    assert info.value.truncated is False or len(info.value.line) == errors.LINE_PREVIEW


def test_overlong_line_in_one_big_chunk(impl: ModuleType) -> None:
    parser = impl.ReplyParser(max_line_length=1000)
    with pytest.raises(errors.LineTooLong) as info:
        parser.feed(b"220 ok\r\n250 " + b"x" * 10_000_000)
    assert info.value.offset == 8
    assert [r.code for r in info.value.replies] == [220]
    assert info.value.truncated


@pytest.mark.parametrize("limit", [1, 2, 5, 1000])
def test_reply_with_exactly_max_lines_is_accepted(impl: ModuleType, limit: int) -> None:
    stream = b"250-x\r\n" * (limit - 1) + b"250 last\r\n"
    for how, chunks in chunkings(stream):
        if how == "bytes" and limit > 100:
            continue  # the whole-chunk and random cases cover it; keep the run short
        fed = feed_chunks(impl.ReplyParser(max_reply_lines=limit), chunks)
        assert fed.error is None, how
        assert len(fed.replies[0].lines) == limit


@pytest.mark.parametrize("limit", [1, 2, 5, 1000])
def test_reply_one_line_past_max_lines_is_refused(impl: ModuleType, limit: int) -> None:
    stream = b"220 hi\r\n" + b"250-x\r\n" * limit + b"250 last\r\n"
    fed = feed_chunks(impl.ReplyParser(max_reply_lines=limit), [stream])
    assert isinstance(fed.error, errors.TooManyLines)
    # The line that asks for one line more than the limit is named.
    assert fed.error.offset == 8 + 7 * (limit - 1)
    assert fed.error.line == b"250-x\r\n"
    assert [r.code for r in fed.replies] == [220]


def test_endless_continuations_stop_at_the_limit(impl: ModuleType) -> None:
    parser = impl.ReplyParser(max_reply_lines=50)
    with pytest.raises(errors.TooManyLines):
        for _ in range(10_000):
            parser.feed(b"250-more\r\n")
    assert parser.buffered <= 50 * len(b"250-more\r\n")


@pytest.mark.parametrize(
    ("option", "value", "exc"),
    [
        ("max_line_length", 3, ValueError),
        ("max_line_length", 0, ValueError),
        ("max_line_length", "10", TypeError),
        ("max_line_length", 1.5, TypeError),
        ("max_reply_lines", 0, ValueError),
        ("max_reply_lines", None, TypeError),
        ("max_reply_lines", True, TypeError),
    ],
)
def test_bad_limits(impl: ModuleType, option: str, value: object, exc: type) -> None:
    with pytest.raises(exc, match=option):
        impl.ReplyParser(**{option: value})


def test_limits_are_keyword_only(impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.ReplyParser(100)


def test_error_carries_replies_offset_and_line(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    parser.feed(b"220 hi\r\n")
    with pytest.raises(errors.MalformedReply) as info:
        parser.feed(b"250 a\r\n251 b\r\nBAD LINE\r\n252 c\r\n")
    exc = info.value
    assert [r.code for r in exc.replies] == [250, 251]
    assert exc.offset == 8 + 14
    assert exc.line == b"BAD LINE\r\n"
    assert "offset 22" in str(exc) and "BAD LINE" in str(exc)
    assert isinstance(exc, ValueError) and isinstance(exc, errors.ReplyError)


def test_feed_codes_error_carries_codes(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    with pytest.raises(errors.MalformedReply) as info:
        parser.feed_codes(b"250 a\r\n354 b\r\nBAD\r\n")
    assert info.value.replies == [250, 354]


def test_parser_refuses_input_after_error_until_reset(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    with pytest.raises(errors.MalformedReply):
        parser.feed(b"220 hi\r\nxyz\r\n")
    with pytest.raises(errors.MalformedReply, match="call reset") as info:
        parser.feed(b"250 ok\r\n")
    assert info.value.offset == 8
    with pytest.raises(errors.MalformedReply, match="call reset"):
        parser.close()
    parser.reset()
    assert parser.feed(b"250 ok\r\n")[0].code == 250
    assert parser.offset == 8


def test_close(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    parser.feed(b"220 hi\r\n")
    parser.close()  # nothing pending: fine
    parser.feed(b"250-a\r\n250 b")
    with pytest.raises(errors.IncompleteReply) as info:
        parser.close()
    assert info.value.offset == 8
    assert info.value.line == b"250-a\r\n"
    assert "12 bytes buffered" in str(info.value)


def test_buffered_offset_and_reset(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    assert parser.buffered == 0 and parser.offset == 0
    assert [r.code for r in parser.feed(b"220 hi\r\n250-a")] == [220]
    assert parser.buffered == 5 and parser.offset == 13
    parser.feed(b"\r\n")
    assert parser.buffered == 7
    assert len(parser.feed(b"250 b\r\n")) == 1
    assert parser.buffered == 0 and parser.offset == 22
    parser.feed(b"250")
    parser.reset()
    assert parser.buffered == 0 and parser.offset == 0
    parser.reset()
    parser.reset()
    assert parser.feed(b"250 ok\r\n")[0].lines == (b"ok",)


def test_reset_clears_a_partial_line(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    parser.feed(b"250-a\r\n25")
    parser.reset()
    with pytest.raises(errors.MalformedReply) as info:
        parser.feed(b"0 ok\r\n")
    assert info.value.offset == 0


def test_errors_pickle(impl: ModuleType) -> None:
    exc = feed_chunks(impl.ReplyParser(), [b"250 a\r\nxx\r\n"]).error
    assert exc is not None
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc)
    assert (again.offset, again.line, str(again)) == (exc.offset, exc.line, str(exc))
    assert [r.code for r in again.replies] == [250]


def test_hierarchy() -> None:
    for cls in (
        errors.MalformedReply,
        errors.LineTooLong,
        errors.TooManyLines,
        errors.InconsistentReply,
        errors.IncompleteReply,
    ):
        assert issubclass(cls, errors.ReplyError)
        assert issubclass(cls, ValueError)


def test_an_error_keeps_nothing_alive_without_the_gc(impl: ModuleType) -> None:
    """Refused bytes are freed when the caller drops the exception, without
    waiting for the cyclic GC (no reference cycle through the traceback)."""
    import gc
    import tracemalloc

    attack = b"250 " + b"x" * 200_000
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            parser = impl.ReplyParser(max_line_length=100_000)
            with pytest.raises(errors.LineTooLong):
                parser.feed(attack)
            parser.reset()
            with pytest.raises(errors.LineTooLong):
                parser.feed(attack)
            del parser  # dropped while stopped, without reset()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
        gc.enable()
    assert held < 64 * 1024, held
