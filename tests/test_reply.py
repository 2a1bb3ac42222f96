"""The Reply surface, the same in both implementations."""

from __future__ import annotations

import copy
import importlib
import pickle
from types import ModuleType

import pytest

import fastreply
from fastreply import _parser


def parsed(impl: ModuleType, data: bytes):  # type: ignore[no-untyped-def]
    (reply,) = impl.ReplyParser().feed(data)
    return reply


def test_fields(impl: ModuleType) -> None:
    reply = parsed(impl, b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 100\r\n")
    assert reply.code == 250
    assert reply.lines == (b"mx.example.org", b"PIPELINING", b"SIZE 100")
    assert reply.text == b"mx.example.org\nPIPELINING\nSIZE 100"
    assert reply.message == "mx.example.org\nPIPELINING\nSIZE 100"
    assert reply.is_multiline
    assert reply.raw == b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 100\r\n"


def test_single_line_is_not_multiline(impl: ModuleType) -> None:
    assert not parsed(impl, b"250 ok\r\n").is_multiline
    assert not impl.Reply(250, [b"ok"]).is_multiline
    assert impl.Reply(250, [b"a", b"b"]).is_multiline


@pytest.mark.parametrize(
    ("code", "flags"),
    [
        (150, "preliminary"),
        (220, "positive"),
        (354, "intermediate"),
        (421, "transient"),
        (550, "permanent"),
    ],
)
def test_class_predicates(impl: ModuleType, code: int, flags: str) -> None:
    reply = parsed(impl, b"%d x\r\n" % code)
    for name in ("preliminary", "positive", "intermediate", "transient", "permanent"):
        assert getattr(reply, f"is_{name}") is (name == flags), name


def test_message_is_lossless(impl: ModuleType) -> None:
    reply = parsed(impl, b"550 caf\xc3\xa9 \xff\xfe\r\n")
    assert reply.message == "caf\u00e9 \udcff\udcfe"
    assert reply.message.encode("utf-8", "surrogateescape") == reply.text


def test_to_bytes_canonical_and_round_trip(impl: ModuleType) -> None:
    reply = parsed(impl, b"250-a\n251-\r\n252 \r\n")
    assert reply.to_bytes() == b"252-a\r\n252-\r\n252\r\n"
    again = parsed(impl, reply.to_bytes())
    assert again == reply
    assert impl.Reply(250, [b"OK"]).to_bytes() == b"250 OK\r\n"
    assert impl.Reply(5, [b""]).to_bytes() == b"005\r\n"


def test_equality_and_hash(impl: ModuleType) -> None:
    a = parsed(impl, b"250 ok\r\n")
    b = parsed(impl, b"250 ok\n")  # another line end, same reply
    c = impl.Reply(250, (b"ok",))
    assert a == b == c and hash(a) == hash(b) == hash(c)
    assert a != parsed(impl, b"251 ok\r\n")
    assert a != parsed(impl, b"250 OK\r\n")
    assert a != (250, (b"ok",))
    assert len({a, b, c}) == 1


def test_equal_across_implementations(both: tuple[ModuleType, ModuleType]) -> None:
    py, c = both
    rp = parsed(py, b"250-a\r\n250 b\r\n")
    rc = parsed(c, b"250-a\r\n250 b\r\n")
    assert rp == rc and rc == rp and hash(rp) == hash(rc)
    assert not (rp != rc)


def test_repr(impl: ModuleType) -> None:
    assert repr(parsed(impl, b"250-a\r\n250 b\r\n")) == "Reply(250, (b'a', b'b'))"


def test_immutable(impl: ModuleType) -> None:
    reply = parsed(impl, b"250 ok\r\n")
    for name, value in (("code", 1), ("lines", ()), ("text", b""), ("raw", b"")):
        with pytest.raises(AttributeError):
            setattr(reply, name, value)


def test_pickle_and_copy(impl: ModuleType) -> None:
    reply = parsed(impl, b"250-a\n250 b\r\n")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(reply, protocol))
        assert again == reply
        assert again.raw == reply.raw  # the wire form survives, not only the text
        assert isinstance(again, fastreply.Reply)
    made = impl.Reply(421, [b"bye"])
    assert pickle.loads(pickle.dumps(made)).raw == b"421 bye\r\n"
    assert copy.deepcopy(reply) == reply and copy.copy(reply) == reply


@pytest.mark.parametrize(
    ("code", "lines", "exc", "match"),
    [
        ("250", [b"x"], TypeError, "code must be an int"),
        (True, [b"x"], TypeError, "code must be an int"),
        (1000, [b"x"], ValueError, "three digits"),
        (-1, [b"x"], ValueError, "three digits"),
        (250, b"ok", TypeError, "not a single string"),
        (250, "ok", TypeError, "not a single string"),
        (250, ["ok"], TypeError, "line 0 must be bytes"),
        (250, [b"a\nb"], ValueError, "line feed"),
        (250, [], ValueError, "at least one line"),
    ],
)
def test_constructor_checks(impl: ModuleType, code: object, lines: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        impl.Reply(code, lines)


def test_constructor_copies_mutable_lines(impl: ModuleType) -> None:
    line = bytearray(b"ok")
    reply = impl.Reply(250, [line])
    line[:] = b"XX"
    assert reply.lines == (b"ok",) and type(reply.lines[0]) is bytes


def test_both_implementations_stay_importable_under_their_names(selected: ModuleType) -> None:
    """``selected`` proves what ``import fastreply`` runs; the selector also
    names each twin for tests and benchmarks."""
    assert _parser.ReplyParserPy is importlib.import_module("fastreply._parser_py").ReplyParser
    if selected.__name__ == "fastreply._parser_c":
        assert _parser.ReplyParserC is selected.ReplyParser and _parser.ReplyC is selected.Reply
