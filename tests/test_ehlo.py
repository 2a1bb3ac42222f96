"""EHLO replies: domain, greeting, extensions and their typed helpers, and
``esmtp_features`` equal to what the standard library's ``smtplib.SMTP.ehlo()``
builds from the same bytes (run for real, against a fake socket)."""

from __future__ import annotations

import copy
import doctest
import io
import pickle
import smtplib
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastreply.ehlo
from fastreply import IncompleteReply, MalformedReply
from fastreply.ehlo import EhloInfo, parse_ehlo


class _FakeSocket:
    """Takes what smtplib sends (the EHLO command) and forgets it."""

    def __init__(self) -> None:
        self.sent = b""

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def close(self) -> None:
        pass


def smtplib_ehlo(wire: bytes) -> tuple[int, bytes, dict[str, str]]:
    """``SMTP.ehlo()`` on a server that answers ``wire``: the (code, message)
    it returns and the ``esmtp_features`` it builds."""
    client = smtplib.SMTP(local_hostname="client.example")  # no host: no connection
    sock = _FakeSocket()
    client.sock = sock  # type: ignore[assignment]
    client.file = io.BufferedReader(io.BytesIO(wire))
    code, message = client.ehlo()
    assert sock.sent == b"ehlo client.example\r\n"
    return code, message, client.esmtp_features


def parse(impl: ModuleType, wire: bytes) -> Any:
    parser = impl.ReplyParser()
    (reply,) = parser.feed(wire)
    parser.close()
    return reply


def lines(*texts: bytes, code: bytes = b"250", end: bytes = b"\r\n") -> bytes:
    """A reply with these line texts."""
    return b"".join(code + b"-" + text + end for text in texts[:-1]) + code + b" " + texts[-1] + end


POSTFIX = lines(
    b"mx.example.org", b"PIPELINING", b"SIZE 10240000", b"VRFY", b"ETRN", b"STARTTLS",
    b"ENHANCEDSTATUSCODES", b"8BITMIME", b"DSN", b"SMTPUTF8", b"CHUNKING",
)

CASES = {
    "postfix": POSTFIX,
    "one line": b"250 mx.example.org\r\n",
    "one line with greeting": b"250 mx.example.org Hello client [192.0.2.1], pleased to meet you\r\n",
    "bare code": b"250\r\n",
    "bare code then extensions": b"250-\r\n250 PIPELINING\r\n",
    "greeting over several words": lines(
        b"smtp.example.com ESMTP ready at Tue, 1 Oct 2025 10:00:00 +0000", b"SIZE 35882577",
        b"8BITMIME", b"AUTH LOGIN PLAIN XOAUTH2", b"ENHANCEDSTATUSCODES", b"PIPELINING",
        b"CHUNKING", b"SMTPUTF8",
    ),
    "free text on a second line": lines(b"mx.example.org", b"Hello there, friend", b"SIZE 100"),
    "odd spacing": lines(
        b"  mx.example.org    Hi   there  ", b"SIZE    1000   ", b"   PIPELINING", b"AUTH  PLAIN   LOGIN ",
        b"X-FOO  a  b ", b" ",
    ),
    "tabs": lines(b"mx.example.org\tHi", b"SIZE\t1000", b"AUTH\tPLAIN\tLOGIN", b"\tDSN\t", b"X-T \t x"),
    "lower case keywords": lines(
        b"mx.example.org", b"pipelining", b"Size 5000", b"auth plain login", b"starttls",
        b"8bitmime", b"Chunking",
    ),
    "old-style AUTH first": lines(b"mx", b"AUTH=LOGIN PLAIN", b"AUTH LOGIN PLAIN CRAM-MD5"),
    "old-style AUTH last": lines(b"mx", b"AUTH LOGIN PLAIN CRAM-MD5", b"AUTH=LOGIN PLAIN"),
    "old-style AUTH only": lines(b"mx", b"AUTH=LOGIN"),
    "old-style AUTH lower case": lines(b"mx", b"auth=login plain", b"Auth=CRAM-MD5"),
    "AUTH without mechanisms": lines(b"mx", b"AUTH", b"AUTH="),
    "AUTH twice": lines(b"mx", b"AUTH PLAIN", b"AUTH LOGIN PLAIN", b"AUTH"),
    "duplicate keywords": lines(b"mx", b"SIZE 1000", b"PIPELINING", b"SIZE 2000", b"PIPELINING x"),
    "odd keywords": lines(
        b"mx", b"X_FOO bar", b"-DASH", b"=EQ", b"8BITMIME", b"X-EXPS GSSAPI NTLM",
        b"XFORWARD NAME ADDR PROTO HELO", b"LIMITS RCPTMAX=100 MAILMAX=50", b"SIZE=100",
        b"AUTH =PLAIN", b"AUTH-X y", b"AUTHX z", b"X:Y", b"!",
    ),
    "empty lines": lines(b"mx", b"", b"PIPELINING", b"", b"DSN"),
    "bare LF": lines(b"mx", b"PIPELINING", b"SIZE 1", end=b"\n"),
    "CR inside and at the end": lines(b"mx\r", b"SIZE 1\r", b"X-A b\rc", b"AUTH PLAIN\rLOGIN"),
    "non-ASCII": lines(
        "mx.exämple.org Grüße".encode(), b"X-LATIN1 \xe9t\xe9", "X-UTF8 été".encode(),
        b"SIZE 100\xa0", b"X-NBSP\xa0a", b"\xa0DSN", b"AUTH PLAIN \x85LOGIN", "X-ß ß".encode(),
    ),
    "control characters": lines(b"mx", b"SIZE 10\x0b", b"X-FF \x0cx\x0c", b"\x1cDSN", b"X-NUL \x00"),
    "address literal": lines(b"[192.0.2.1]", b"PIPELINING"),
    "LMTP": lines(b"lmtp.example.org", b"PIPELINING", b"ENHANCEDSTATUSCODES", b"CHUNKING"),
}


@pytest.mark.parametrize("wire", CASES.values(), ids=CASES.keys())
def test_esmtp_features_as_smtplib(impl: ModuleType, wire: bytes) -> None:
    code, message, expected = smtplib_ehlo(wire)
    assert code == 250
    reply = parse(impl, wire)
    info = parse_ehlo(reply)
    assert info.esmtp_features == expected
    assert list(info.esmtp_features.items()) == list(expected.items())  # same order too
    # smtplib's own (code, message), and the bytes as received, read the same.
    assert parse_ehlo((code, message)).esmtp_features == expected
    assert parse_ehlo(wire).esmtp_features == expected


@pytest.mark.parametrize("wire", CASES.values(), ids=CASES.keys())
def test_same_reading_from_every_kind_of_input(impl: ModuleType, wire: bytes) -> None:
    info = parse_ehlo(parse(impl, wire))
    code, message, _ = smtplib_ehlo(wire)
    for other in (parse_ehlo(wire), parse_ehlo(bytearray(wire)), parse_ehlo(memoryview(wire)),
                  parse_ehlo((code, message))):
        assert other.domain == info.domain
        assert other.greeting == info.greeting
        assert other.extensions == info.extensions


def test_postfix(impl: ModuleType) -> None:
    info = parse_ehlo(parse(impl, POSTFIX))
    assert info.domain == "mx.example.org" and info.greeting == ""
    assert dict(info.extensions) == {
        "PIPELINING": "", "SIZE": "10240000", "VRFY": "", "ETRN": "", "STARTTLS": "",
        "ENHANCEDSTATUSCODES": "", "8BITMIME": "", "DSN": "", "SMTPUTF8": "", "CHUNKING": "",
    }
    assert info.size == 10240000
    assert info.auth_mechanisms == ()
    assert info.pipelining and info.starttls and info.enhancedstatuscodes
    assert info.eightbitmime and info.dsn and info.smtputf8 and info.chunking
    assert not info.binarymime
    assert info.lines == parse(impl, POSTFIX).lines


def test_greeting_line(impl: ModuleType) -> None:
    for wire, domain, greeting in [
        (CASES["one line"], "mx.example.org", ""),
        (CASES["one line with greeting"], "mx.example.org",
         "Hello client [192.0.2.1], pleased to meet you"),
        (CASES["odd spacing"], "mx.example.org", "Hi   there"),
        (CASES["tabs"], "mx.example.org", "Hi"),
        (CASES["bare code"], "", ""),
        (CASES["address literal"], "[192.0.2.1]", ""),
        (CASES["non-ASCII"], "mx.exämple.org", "Grüße"),
        (CASES["CR inside and at the end"], "mx", ""),
        (b"250 mx.example.org \r\n", "mx.example.org", ""),
        (b"250 mx\xff hi\xfe\r\n", "mx\udcff", "hi\udcfe"),
    ]:
        info = parse_ehlo(parse(impl, wire))
        assert (info.domain, info.greeting) == (domain, greeting), wire
    one = parse_ehlo(parse(impl, CASES["one line with greeting"]))
    assert dict(one.extensions) == {} and one.esmtp_features == {}
    assert one.size is None and one.auth_mechanisms == () and not one.pipelining


def test_keywords_and_parameters(impl: ModuleType) -> None:
    def ext(name: str) -> dict[str, str]:
        return dict(parse_ehlo(parse(impl, CASES[name])).extensions)

    assert ext("odd spacing") == {"SIZE": "1000", "PIPELINING": "", "AUTH": "PLAIN LOGIN",
                                  "X-FOO": "a  b"}
    assert ext("tabs") == {"SIZE": "1000", "AUTH": "PLAIN LOGIN", "DSN": "", "X-T": "x"}
    assert ext("lower case keywords") == {
        "PIPELINING": "", "SIZE": "5000", "AUTH": "plain login", "STARTTLS": "",
        "8BITMIME": "", "CHUNKING": "",
    }
    assert ext("duplicate keywords") == {"SIZE": "2000", "PIPELINING": "x"}  # the last wins
    assert ext("empty lines") == {"PIPELINING": "", "DSN": ""}
    assert ext("bare code then extensions") == {"PIPELINING": ""}
    assert ext("odd keywords") == {
        "X_FOO": "bar", "-DASH": "", "=EQ": "", "8BITMIME": "", "X-EXPS": "GSSAPI NTLM",
        "XFORWARD": "NAME ADDR PROTO HELO", "LIMITS": "RCPTMAX=100 MAILMAX=50", "SIZE=100": "",
        "AUTH": "=PLAIN", "AUTH-X": "y", "AUTHX": "z", "X:Y": "", "!": "",
    }
    assert ext("non-ASCII") == {
        "X-LATIN1": "\udce9t\udce9",  # not UTF-8: kept as surrogate escapes
        "X-UTF8": "été",
        # Latin-1 NO-BREAK SPACE and NEXT LINE (white space to smtplib's
        # str.strip()) are text here, and not UTF-8: surrogate escapes.
        "SIZE": "100\udca0",
        "X-NBSP\udca0A": "",  # ASCII letters upper-cased, the rest untouched
        "\udca0DSN": "",
        "AUTH": "PLAIN \udc85LOGIN",
        "X-ß": "ß",
    }
    # CR, VT and FF separate words as SP and HT do.
    assert ext("CR inside and at the end") == {"SIZE": "1", "X-A": "b\rc", "AUTH": "PLAIN LOGIN"}
    assert ext("control characters") == {"SIZE": "10", "X-FF": "x", "\x1cDSN": "", "X-NUL": "\x00"}


@pytest.mark.parametrize(
    "case, extension, mechanisms",
    [
        ("old-style AUTH first", "LOGIN PLAIN CRAM-MD5", ("LOGIN", "PLAIN", "CRAM-MD5")),
        ("old-style AUTH last", "LOGIN PLAIN CRAM-MD5", ("LOGIN", "PLAIN", "CRAM-MD5")),
        ("old-style AUTH only", "LOGIN", ("LOGIN",)),
        ("old-style AUTH lower case", "login plain CRAM-MD5", ("LOGIN", "PLAIN", "CRAM-MD5")),
        ("AUTH without mechanisms", "", ()),
        ("AUTH twice", "PLAIN LOGIN", ("PLAIN", "LOGIN")),
        ("lower case keywords", "plain login", ("PLAIN", "LOGIN")),
        ("greeting over several words", "LOGIN PLAIN XOAUTH2", ("LOGIN", "PLAIN", "XOAUTH2")),
        ("postfix", None, ()),
    ],
)
def test_auth(impl: ModuleType, case: str, extension: str | None,
              mechanisms: tuple[str, ...]) -> None:
    info = parse_ehlo(parse(impl, CASES[case]))
    assert info.extensions.get("AUTH") == extension
    assert info.auth_mechanisms == mechanisms
    assert info.supports("auth") is (extension is not None)


@pytest.mark.parametrize(
    "line, size",
    [
        (None, None),
        (b"SIZE", 0),  # RFC 1870: no number, no fixed maximum
        (b"SIZE 0", 0),
        (b"SIZE 35882577", 35882577),
        (b"size 1000", 1000),
        (b"SIZE 00100", 100),
        (b"SIZE 10 20", 10),
        (b"SIZE\t52428800", 52428800),
        (b"SIZE abc", 0),  # not a number: no stated maximum
        (b"SIZE -5", 0),
        (b"SIZE 1e6", 0),
        ("SIZE ٣".encode(), 0),  # a digit, but not an ASCII one
        (b"SIZE " + b"9" * 5000, 0),  # more digits than int() takes
        (b"SIZE " + b"0" * 5000 + b"1", 1),
        (b"SIZE " + b"9" * 40, 10**40 - 1),
    ],
)
def test_size(impl: ModuleType, line: bytes | None, size: int | None) -> None:
    texts = [b"mx", b"PIPELINING"] + ([line] if line is not None else [])
    info = parse_ehlo(parse(impl, lines(*texts)))
    assert info.size == size


def test_flags(impl: ModuleType) -> None:
    info = parse_ehlo(parse(impl, lines(
        b"mx", b"pipelining", b"8BITMIME", b"SMTPUTF8", b"Chunking", b"BINARYMIME", b"STARTTLS",
        b"DSN", b"ENHANCEDSTATUSCODES",
    )))
    assert all((info.pipelining, info.eightbitmime, info.smtputf8, info.chunking,
                info.binarymime, info.starttls, info.dsn, info.enhancedstatuscodes))
    none = parse_ehlo(parse(impl, lines(b"mx", b"X-PIPELINING", b"8BITMIMEX", b"SIZE 1")))
    assert not any((none.pipelining, none.eightbitmime, none.smtputf8, none.chunking,
                    none.binarymime, none.starttls, none.dsn, none.enhancedstatuscodes))
    assert info.supports("Pipelining") and "pipelining" in info and "PIPELINING" in info
    assert not info.supports("SIZE") and "SIZE" not in info and 8 not in info


def test_refused_ehlo(impl: ModuleType) -> None:
    for wire in (b"502 5.5.1 Unrecognized command.\r\n", b"554 no ESMTP here\r\n",
                 b"421-4.7.0 Try again later\r\n421 4.7.0 closing\r\n",
                 b"220 mx.example.org ESMTP\r\n",  # a 2xx that is not 250
                 b"250-mx.example.org\r\n550 PIPELINING\r\n"):  # the last line's code counts
        code, message, features = smtplib_ehlo(wire)
        assert features == {} and code != 250
        with pytest.raises(ValueError, match="not 250"):
            parse_ehlo(parse(impl, wire))
        with pytest.raises(ValueError, match="not 250"):
            parse_ehlo((code, message))
        with pytest.raises(ValueError, match="not 250"):
            parse_ehlo(wire)


def test_last_line_code_counts_as_in_smtplib(impl: ModuleType) -> None:
    wire = b"550-mx.example.org\r\n250 PIPELINING\r\n"
    code, _, features = smtplib_ehlo(wire)
    assert code == 250 and features == {"pipelining": ""}
    assert parse_ehlo(parse(impl, wire)).esmtp_features == features


def test_bytes_input_must_be_one_complete_reply() -> None:
    with pytest.raises(ValueError, match="one EHLO reply, got 2"):
        parse_ehlo(b"250 mx\r\n250 mx\r\n")
    with pytest.raises(ValueError, match="got 0"):
        parse_ehlo(b"")
    with pytest.raises(IncompleteReply):
        parse_ehlo(b"250-mx\r\n250 PIPELINING")
    with pytest.raises(MalformedReply):
        parse_ehlo(b"250mx\r\n")


def test_pair_input_checks() -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        parse_ehlo((250, "mx\nPIPELINING"))  # type: ignore[arg-type]
    assert parse_ehlo((250, b"mx\nPIPELINING")).pipelining


@pytest.mark.parametrize(
    ("lines", "error", "message"),
    [
        (b"mx", TypeError, "not a single string"),
        ([b"mx", "SIZE 10"], TypeError, "line 1 must be bytes, not str"),
        ([b"mx", b"SIZE\n10"], ValueError, "line 1 contains a line feed"),
        ([], ValueError, "at least one line"),
    ],
)
def test_ehlo_info_checks_its_lines(lines: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        EhloInfo(lines)  # type: ignore[arg-type]
    assert EhloInfo([bytearray(b"mx"), memoryview(b"8BITMIME")]).supports("8bitmime")


def test_ehlo_info_value(impl: ModuleType) -> None:
    info = parse_ehlo(parse(impl, CASES["greeting over several words"]))
    again = EhloInfo(parse(impl, CASES["greeting over several words"]).lines)
    assert info == again and hash(info) == hash(again)
    assert info != parse_ehlo(parse(impl, POSTFIX))
    assert info != info.lines
    for clone in (pickle.loads(pickle.dumps(info)), copy.copy(info), copy.deepcopy(info)):
        assert clone == info and clone.extensions == info.extensions
    assert repr(parse_ehlo(b"250-mx hi\r\n250 SIZE 1\r\n")) == (
        "EhloInfo(domain='mx', greeting='hi', extensions={'SIZE': '1'})"
    )
    # Read-only.
    with pytest.raises(TypeError):
        info.extensions["X"] = ""  # type: ignore[index]
    with pytest.raises(AttributeError):
        info.domain = "x"  # type: ignore[misc]
    features = info.esmtp_features
    features["x"] = "y"
    assert "x" not in info.esmtp_features  # a new dict each time


def test_ehlo_info_constructor_checks() -> None:
    assert EhloInfo([b"mx", bytearray(b"DSN"), memoryview(b"SIZE 1")]).size == 1
    with pytest.raises(ValueError):
        EhloInfo([])
    with pytest.raises(TypeError):
        EhloInfo(b"mx")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EhloInfo(["mx"])  # type: ignore[list-item]


def test_documentation_examples() -> None:
    result = doctest.testmod(fastreply.ehlo)
    assert result.attempted > 0 and result.failed == 0


# -- generated replies ---------------------------------------------------------

keyword = st.sampled_from([
    b"AUTH", b"auth", b"Auth", b"AUTH=", b"auth=", b"AUTH =", b"AUTHX", b"SIZE", b"size",
    b"PIPELINING", b"8BITMIME", b"X-FOO", b"X_FOO", b"-X", b"=", b"STARTTLS", b"DSN", b"",
    b"SMTPUTF8", b"\xe9", b"\xa0", b"X-\xc3\xa9",
])
blank = st.sampled_from([b"", b" ", b"  ", b"\t", b" \t ", b"\r", b"\xa0", b"\x0b", b"\x85", b"="])
param = st.sampled_from([
    b"", b"PLAIN", b"LOGIN PLAIN", b"login", b"CRAM-MD5", b"1000", b"0", b"abc", b"PLAIN  LOGIN",
    b"a\tb", b"\xe9", b"x\ry",
])
structured_line = st.builds(lambda *parts: b"".join(parts), blank, keyword, blank, param, blank)
raw_line = st.binary(max_size=20).map(lambda b: b.replace(b"\n", b""))
ehlo_line = st.one_of(structured_line, structured_line, raw_line)


@settings(max_examples=400, deadline=None)
@given(
    first=st.one_of(st.sampled_from([b"mx.example.org", b"", b"mx hi there", b" mx\t"]), raw_line),
    rest=st.lists(ehlo_line, max_size=10),
    end=st.sampled_from([b"\r\n", b"\n"]),
)
def test_generated_replies_as_smtplib(
    impl: ModuleType, first: bytes, rest: list[bytes], end: bytes
) -> None:
    wire = lines(first, *rest, end=end)
    code, message, expected = smtplib_ehlo(wire)
    reply = parse(impl, wire)
    info = parse_ehlo(reply)
    assert info.esmtp_features == expected
    assert list(info.esmtp_features) == list(expected)
    assert parse_ehlo((code, message)).esmtp_features == expected
    # Our own reading: invariants.
    for name, value in info.extensions.items():
        assert name and not any(c in name for c in " \t\r\n\x0b\x0c")
        assert name == name.encode("utf-8", "surrogateescape").upper().decode(
            "utf-8", "surrogateescape")
        assert value == value.strip(" \t\r\x0b\x0c")
    assert all(m == m.upper() and m for m in info.auth_mechanisms)
    assert len(set(info.auth_mechanisms)) == len(info.auth_mechanisms)
    assert info.size is None or info.size >= 0
    assert (info.size is None) is ("SIZE" not in info.extensions)
