"""Every wire rule of docs/wire-rules.md, table-driven, against both implementations,
each stream fed whole, one byte at a time and in random splits."""

from __future__ import annotations

from types import ModuleType

import pytest

from conftest import chunkings, feed_chunks
from fastreply.errors import ReplyError

# (stream, options, expected [(code, lines), ...])
VALID = [
    ("crlf", b"250 OK\r\n", {}, [(250, (b"OK",))]),
    ("bare lf", b"250 OK\n", {}, [(250, (b"OK",))]),
    ("bare code crlf", b"250\r\n", {}, [(250, (b"",))]),
    ("bare code lf", b"250\n", {}, [(250, (b"",))]),
    ("code and space", b"250 \r\n", {}, [(250, (b"",))]),
    ("multiline", b"250-a\r\n250 b\r\n", {}, [(250, (b"a", b"b"))]),
    ("multiline empty continuation", b"250-\r\n250 b\r\n", {}, [(250, (b"", b"b"))]),
    ("multiline bare last", b"250-a\r\n250\r\n", {}, [(250, (b"a", b""))]),
    ("mixed line ends", b"250-a\n250-b\r\n250 c\n", {}, [(250, (b"a", b"b", b"c"))]),
    ("lone cr is text", b"250 a\rb\r\n", {}, [(250, (b"a\rb",))]),
    ("cr before crlf is text", b"250 a\r\r\n", {}, [(250, (b"a\r",))]),
    ("trailing spaces kept", b"250  two  spaces \r\n", {}, [(250, (b" two  spaces ",))]),
    ("tab kept", b"250 \tx\r\n", {}, [(250, (b"\tx",))]),
    ("nul and 8-bit kept", b"250 \x00\xff\xe9t\xe9\r\n", {}, [(250, (b"\x00\xff\xe9t\xe9",))]),
    ("dash in text", b"250 a-b - c\r\n", {}, [(250, (b"a-b - c",))]),
    ("several replies", b"220 hi\r\n250 ok\r\n221 bye\r\n", {},
     [(220, (b"hi",)), (250, (b"ok",)), (221, (b"bye",))]),
    ("lenient last code wins", b"250-a\r\n251-b\r\n252 c\r\n", {}, [(252, (b"a", b"b", b"c"))]),
    ("lenient 1xx", b"199 x\r\n", {}, [(199, (b"x",))]),
    ("lenient 5xx upper", b"599 x\r\n", {}, [(599, (b"x",))]),
    ("lenient 260 and 569", b"269 a\r\n569 b\r\n", {}, [(269, (b"a",)), (569, (b"b",))]),
    ("strict ok", b"250-a\r\n250 b\r\n", {"strict": True}, [(250, (b"a", b"b"))]),
    ("strict range edges", b"200 a\r\n559 b\r\n", {"strict": True},
     [(200, (b"a",)), (559, (b"b",))]),
    ("empty stream", b"", {}, []),
]

# (stream, options, error class name, offset, replies before it)
INVALID = [
    ("letters", b"25x ok\r\n", {}, "MalformedReply", 0, 0),
    ("no separator", b"250ok\r\n", {}, "MalformedReply", 0, 0),
    ("short code", b"25\r\n", {}, "MalformedReply", 0, 0),
    ("leading space", b" 250 ok\r\n", {}, "MalformedReply", 0, 0),
    ("plus sign", b"+25 ok\r\n", {}, "MalformedReply", 0, 0),
    ("empty line", b"\r\n", {}, "MalformedReply", 0, 0),
    ("empty lf line", b"250 a\r\n\n", {}, "MalformedReply", 7, 1),
    ("tab separator", b"250\tok\r\n", {}, "MalformedReply", 0, 0),
    ("first digit 0", b"050 x\r\n", {}, "MalformedReply", 0, 0),
    ("first digit 6", b"650 x\r\n", {}, "MalformedReply", 0, 0),
    ("strict 1xx", b"150 x\r\n", {"strict": True}, "MalformedReply", 0, 0),
    ("strict second digit", b"260 x\r\n", {"strict": True}, "MalformedReply", 0, 0),
    ("strict bare lf", b"250 ok\n", {"strict": True}, "MalformedReply", 0, 0),
    ("strict inconsistent", b"250-a\r\n251 b\r\n", {"strict": True}, "InconsistentReply", 7, 0),
    ("error after replies", b"220 hi\r\n250 ok\r\nxyz\r\n", {}, "MalformedReply", 16, 2),
    ("error mid reply", b"220 hi\r\n250-a\r\n25 b\r\n", {}, "MalformedReply", 15, 1),
    ("incomplete line", b"220 hi\r\n250 o", {}, "IncompleteReply", 8, 1),
    ("incomplete reply", b"250-a\r\n", {}, "IncompleteReply", 0, 0),
    ("only cr", b"250 ok\r", {}, "IncompleteReply", 0, 0),
    ("http response", b"HTTP/1.1 400 Bad Request\r\n", {}, "MalformedReply", 0, 0),
]


@pytest.mark.parametrize(("name", "stream", "options", "expected"), VALID, ids=[v[0] for v in VALID])
def test_valid(impl: ModuleType, name: str, stream: bytes, options: dict, expected: list) -> None:
    for how, chunks in chunkings(stream):
        fed = feed_chunks(impl.ReplyParser(**options), chunks)
        assert fed.error is None, (how, fed.error)
        assert [(r.code, r.lines) for r in fed.replies] == expected, how
        # The raw bytes of the replies are the stream, byte for byte.
        assert b"".join(r.raw for r in fed.replies) == stream, how


@pytest.mark.parametrize(
    ("name", "stream", "options", "error", "offset", "before"), INVALID, ids=[v[0] for v in INVALID]
)
def test_invalid(
    impl: ModuleType, name: str, stream: bytes, options: dict, error: str, offset: int, before: int
) -> None:
    for how, chunks in chunkings(stream):
        fed = feed_chunks(impl.ReplyParser(**options), chunks)
        exc = fed.error
        assert type(exc).__name__ == error, (how, exc)
        assert isinstance(exc, ReplyError)
        assert exc.offset == offset, how
        assert len(fed.replies) == before, how
        # The offending line is on the error, as received.
        assert stream[offset:].startswith(exc.line[: len(stream) - offset]), how


def test_lenient_accepts_what_strict_refuses(impl: ModuleType) -> None:
    stream = b"250-a\r\n251 b\n"
    lenient = feed_chunks(impl.ReplyParser(), [stream])
    assert lenient.error is None and lenient.replies[0].code == 251
    strict = feed_chunks(impl.ReplyParser(strict=True), [stream])
    assert isinstance(strict.error, ReplyError)


@pytest.mark.parametrize("code", [100, 199, 200, 250, 300, 354, 421, 500, 559, 599])
def test_every_code_kept(impl: ModuleType, code: int) -> None:
    fed = feed_chunks(impl.ReplyParser(), [b"%d x\r\n" % code])
    assert fed.error is None
    assert fed.replies[0].code == code


def test_all_three_digit_codes_lenient_and_strict(impl: ModuleType) -> None:
    for code in range(1000):
        line = b"%03d ok\r\n" % code
        fed = feed_chunks(impl.ReplyParser(), [line])
        if 100 <= code <= 599:
            assert fed.error is None and fed.replies[0].code == code, code
        else:
            assert type(fed.error).__name__ == "MalformedReply", code
        digits = b"%03d" % code
        strict_ok = digits[0:1] in b"2345" and digits[1:2] in b"012345"
        fed = feed_chunks(impl.ReplyParser(strict=True), [line])
        if strict_ok:
            assert fed.error is None and fed.replies[0].code == code, code
        else:
            assert type(fed.error).__name__ == "MalformedReply", code


def test_feed_accepts_bytes_bytearray_memoryview(impl: ModuleType) -> None:
    data = b"250-a\r\n250 b\r\n"
    for kind in (bytes, bytearray, memoryview):
        parser = impl.ReplyParser()
        assert parser.feed(kind(data))[0].lines == (b"a", b"b")
    # a memoryview slice into a bigger buffer
    parser = impl.ReplyParser()
    big = bytearray(b"xx" + data + b"yy")
    assert parser.feed(memoryview(big)[2:-2])[0].lines == (b"a", b"b")


def test_feed_accepts_any_memoryview(impl: ModuleType) -> None:
    import array

    data = b"250-a\r\n250 bbb\r\n"  # an even length, for 2-byte items
    parser = impl.ReplyParser()
    # a view with another item format: its bytes are what counts
    assert parser.feed(memoryview(array.array("H", data)))[0].lines == (b"a", b"bbb")
    # a strided view
    doubled = bytes(b for byte in data for b in (byte, 0))
    assert parser.feed(memoryview(doubled)[::2])[0].lines == (b"a", b"bbb")


def test_replies_do_not_alias_a_mutable_input(impl: ModuleType) -> None:
    data = bytearray(b"250 ok\r\n")
    parser = impl.ReplyParser()
    reply = parser.feed(data)[0]
    data[4:6] = b"XX"
    assert reply.lines == (b"ok",) and reply.raw == b"250 ok\r\n"


@pytest.mark.parametrize("bad", ["250 ok\r\n", 250, None, [b"250 ok\r\n"]])
def test_feed_refuses_non_bytes(impl: ModuleType, bad: object) -> None:
    parser = impl.ReplyParser()
    with pytest.raises(TypeError, match="feed\\(\\) takes bytes"):
        parser.feed(bad)
    # A TypeError does not break the parser.
    assert parser.feed(b"250 ok\r\n")[0].code == 250


def outcome(module: ModuleType, data: bytes, strict: bool) -> object:
    """The replies of ``data`` fed whole, or the error's type and offset."""
    try:
        return [(r.code, r.lines) for r in module.ReplyParser(strict=strict).feed(data)]
    except ReplyError as exc:
        return type(exc).__name__, exc.offset


@pytest.mark.parametrize("strict", [False, True])
def test_code_bytes_together(both: tuple[ModuleType, ModuleType], strict: bool) -> None:
    """Every mix of edge values in the three code bytes at once (the compiled
    parser tests them together with word arithmetic, where one byte's carry
    could reach its neighbour) gets the reference's answer."""
    edges = sorted(set(b"/0125689:") | {0x00, 0x7F, 0x80, 0xAF, 0xB0, 0xB5, 0xB6, 0xB9, 0xBA,
                                          0xCF, 0xD0, 0xFF})

    for a in edges:
        for b in edges:
            for c in edges:
                data = bytes([a, b, c]) + b"-x\r\n" + bytes([a, b, c]) + b" y\r\n"
                reference, compiled = (outcome(module, data, strict) for module in both)
                assert compiled == reference, data


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("position", [0, 1, 2, 3])
def test_every_byte_in_the_code_and_separator(both: tuple[ModuleType, ModuleType],
                                              position: int, strict: bool) -> None:
    """Each of the 256 byte values in each of the first four places of a line
    gets the same answer from both implementations (the compiled one checks
    those bytes with word arithmetic: a wrong mask once let non-digits pass)."""

    for value in range(256):
        # (a stream, where the line to change starts)
        for template, start in ((b"250 ok\r\n", 0), (b"250-a\r\n250 b\r\n", 7),
                                (b"220 hi\r\n250-a\r\n250 b\r\n", 8)):
            line = bytearray(template)
            line[start + position] = value
            data = bytes(line)
            reference, compiled = (outcome(module, data, strict) for module in both)
            assert compiled == reference, data
            if value in b"0123456789 -" or position > 0:
                continue
            assert isinstance(reference, tuple), data  # no digit first: an error
