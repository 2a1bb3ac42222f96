"""fastreply.smtplib: on every input, the same results and exceptions as the
standard smtplib.SMTP.getreply(), with bytes read ahead kept for the next
reply and dropped after STARTTLS.

The standard class and the drop-in read the same scripted byte streams from
fake sockets (data arriving in arbitrary chunks, errors and end of stream at
chosen points); return values, exception types and arguments, debug output
and the bytes each client sent must be equal.  Every test that takes ``impl``
runs with both parser implementations.
"""

from __future__ import annotations

import base64
import contextlib
import email.message
import importlib
import io
import os
import smtplib
import sys
import sysconfig
from collections import deque
from types import ModuleType
from typing import Any, Callable, Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastreply
from fastreply import smtplib as fsmtplib

# -- fake sockets ----------------------------------------------------------------

#: A script event: bytes arrive as (at most) one recv; ("error", args) raises
#: OSError(*args) when the reader gets there; b"" is one empty read.
Event = Any


class _RawSock(io.RawIOBase):
    """What socket.makefile() puts under its BufferedReader: readinto -> recv_into."""

    def __init__(self, sock: FakeSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)


class FakeSocket:
    """A connected socket whose incoming stream is scripted; ``server`` (if
    given) is called with everything the client sends and returns events to
    append."""

    def __init__(self, script: Sequence[Event] = (), server: Callable[[bytes], list[Event]] | None = None) -> None:
        self.events: deque[Event] = deque(script)
        self.current = b""
        self.sent = bytearray()
        self.server = server
        self.recv_calls = 0
        self.closed = False

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self.recv_calls += 1
        while not self.current:
            if not self.events:
                return b""
            event = self.events.popleft()
            if isinstance(event, tuple):
                raise OSError(*event[1])
            if not event:
                return b""
            self.current = event
        data, self.current = self.current[:bufsize], self.current[bufsize:]
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view))
        view[: len(data)] = data
        return len(data)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        assert mode == "rb"
        return io.BufferedReader(_RawSock(self))

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self.sent += data
        if self.server is not None:
            self.events.extend(self.server(bytes(data)))

    def settimeout(self, value: float | None) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """A call's result, or its exception as (type, args): comparable."""
    try:
        return ("ok", call())
    except Exception as exc:  # noqa: BLE001 - every exception is compared
        return ("raise", type(exc), exc.args)


def client_class(impl: ModuleType, base: type[smtplib.SMTP] = fsmtplib.SMTP,
                 **attributes: Any) -> type[smtplib.SMTP]:
    """The drop-in with the parser of ``impl`` (and other class attributes:
    ``pipelining=False``, say)."""
    return type("Client", (base,), {"parser": impl.ReplyParser, **attributes})


class Reference(smtplib.SMTP):
    """The standard class, plus the one thing the drop-in's sendmail() does
    on purpose that the standard one does not: after a refused DATA command
    it resets the transaction (RSET; on 421, closes), where the standard
    sendmail() leaves the MAIL and RCPT it sent open on the server."""

    def data(self, msg: Any) -> tuple[int, bytes]:
        try:
            return super().data(msg)
        except smtplib.SMTPDataError as exc:
            if exc.smtp_code == 421:
                self.close()
            else:
                self._rset()
            raise


def new_client(cls: type[smtplib.SMTP], sock: FakeSocket, debuglevel: int = 0) -> smtplib.SMTP:
    client = cls(local_hostname="client.example")  # not connected: no DNS, no socket
    client.sock = sock  # type: ignore[assignment]
    # What connect() would set (newer Pythons set it there, not in __init__;
    # starttls() passes it to wrap_socket as server_hostname).
    client._host = "mx.example.org"  # type: ignore[attr-defined]
    client.set_debuglevel(debuglevel)
    return client


def getreplies(cls: type[smtplib.SMTP], script: Sequence[Event], calls: int | None = None,
               debuglevel: int = 0) -> tuple[list[tuple[Any, ...]], str, bytes]:
    """Call getreply() until it has raised twice (after the first error the
    standard class is closed: the second shows what a closed client does) or
    ``calls`` times; return the outcomes and the debug output."""
    sock = FakeSocket(script)
    client = new_client(cls, sock, debuglevel)
    out: list[tuple[Any, ...]] = []
    errors = 0
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        while errors < 2 and (calls is None or len(out) < calls):
            result = outcome(client.getreply)
            out.append(result)
            errors += result[0] == "raise"
            assert len(out) < 10_000
    return out, stderr.getvalue(), bytes(sock.sent)


def assert_same(impl: ModuleType, script: Sequence[Event], debuglevel: int = 0) -> list[tuple[Any, ...]]:
    expected = getreplies(smtplib.SMTP, script, debuglevel=debuglevel)
    got = getreplies(client_class(impl), script, debuglevel=debuglevel)
    assert got[0] == expected[0]  # results and exceptions
    assert got[1] == expected[1]  # debug output
    assert got[2] == expected[2]  # the bytes sent (getreply() alone sends none)
    return expected[0]


@contextlib.contextmanager
def maxline(value: int) -> Iterator[None]:
    saved = smtplib._MAXLINE  # type: ignore[attr-defined]
    smtplib._MAXLINE = value  # type: ignore[attr-defined]
    try:
        yield
    finally:
        smtplib._MAXLINE = saved  # type: ignore[attr-defined]


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


# -- hand-written edge cases ---------------------------------------------------------

MAXLINE = 8192
EDGE_CASES: dict[str, list[Event]] = {
    "one line": [b"250 OK\r\n"],
    "multiline": [b"250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"],
    "bare LF": [b"250-a\n250-b\r\n250 c\n"],
    "bare code": [b"250\r\n", b"354\n", b"221 \r\n"],
    "code changes in a reply": [b"250-a\r\n251-b\r\n452 c\r\n"],
    "spaces, tabs and CR stripped": [b"250- \ta b\t \r\n250 \t\r\r\n", b"220   x  \r\n"],
    "lone CR inside text": [b"250 a\rb\r\n"],
    "8-bit text": [b"250-\xc3\xa9t\xe9\xff\r\n250 \x00\x01\x7f\x80\r\n"],
    "pipelined replies in one chunk": [b"220 ready\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"],
    "reply split everywhere": [bytes([b]) for b in b"250-a\r\n250-bb\r\n250 ccc\r\n220 x\r\n"],
    "empty line": [b"\r\n250 after\r\n"],
    "empty line (LF)": [b"\n\n250 after\n"],
    "empty line ends a multiline reply": [b"250-a\r\n\r\n250 b\r\n"],
    "garbage": [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"],
    "non-numeric code": [b"abc def\r\n25x y\r\n2 5 z\r\n"],
    # Bytes that pass a sloppy "high nibble 3" test: 0x1a, "*" (0x2a), ":" (0x3a), "?" (0x3f).
    "non-digits close to digits": [b"1\x1a* x\r\n1\x1a*-\n220 \r\n2:0 a\r\n25? b\r\n/50 c\r\n"],
    "int() oddities": [b" 25 a\r\n+25 b\r\n-25 c\r\n2_5 d\r\n25\n", b"2\r\n"],
    "codes outside 100-599": [b"999 x\r\n600 y\r\n099 z\r\n000\r\n"],
    "separator missing": [b"250ok\r\n250xok\r\n250\tok\r\n"],
    "continuation with junk codes": [b"250-a\r\n2x0-b\r\n250 c\r\n"],
    "continuation then garbage": [b"250-a\r\nhello\r\n250 c\r\n"],
    "first-digit 6 inside a reply": [b"250-a\r\n650-b\r\n250 c\r\n"],
    "line of exactly _MAXLINE (CRLF)": [b"250 " + b"x" * (MAXLINE - 6) + b"\r\n", b"250 ok\r\n"],
    "line of exactly _MAXLINE (LF)": [b"250 " + b"x" * (MAXLINE - 5) + b"\n", b"250 ok\r\n"],
    "line of _MAXLINE + 1": [b"250 " + b"x" * (MAXLINE - 5) + b"\r\n", b"250 ok\r\n"],
    "continuation line of _MAXLINE + 1": [b"250-a\r\n250-" + b"x" * (MAXLINE - 4) + b"\n"],
    "very long line": [b"250 " + b"x" * 100_000 + b"\r\n"],
    "_MAXLINE bytes then end of stream": [b"250 " + b"x" * (MAXLINE - 4)],
    "_MAXLINE + 1 bytes then end of stream": [b"250 " + b"x" * (MAXLINE - 3)],
    "junk line of _MAXLINE + 1": [b"x" * (MAXLINE + 1) + b"\n"],
    "reply of 1001 lines": [b"250-x\r\n" * 1000 + b"250 end\r\n" + b"221 bye\r\n"],
    "reply of 5000 lines in chunks": cut(b"250-x\r\n" * 5000 + b"250 end\r\n220 ok\r\n", 4096),
    "end of stream at once": [],
    "end of stream after a reply": [b"221 bye\r\n"],
    "end of stream mid-line": [b"250 partial"],
    "end of stream mid-line, continuation": [b"250-a\r\n250-partial"],
    "end of stream after a continuation": [b"250-a\r\n"],
    "end of stream after a code": [b"25"],
    "disconnect mid-reply": [b"250-a\r\n250-b", ("error", (104, "Connection reset by peer"))],
    "disconnect between replies": [b"250 a\r\n", ("error", (110, "timed out"))],
    "disconnect at once": [("error", ())],
    "OSError with a message only": [b"250-x\r\n", ("error", ("boom",))],
    "empty read, then more data": [b"250 partial", b"", b" more\r\n250 next\r\n"],
    "empty read between lines": [b"250-a\r\n", b"", b"250 b\r\n"],
    "empty read at a reply boundary": [b"250 a\r\n", b"", b"250 b\r\n"],
    "many small replies": [b"".join(b"%d ok %d\r\n" % (250, i) for i in range(3000))],
    "good replies around a bad one": [b"250 a\r\n" * 50 + b"999-weird\r\nxx\r\n" + b"250 b\r\n" * 50],
    "bad lines everywhere": [b"".join(b"250 a\r\nx\r\n" for _ in range(500))],
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases_same_as_smtplib(impl: ModuleType, name: str) -> None:
    results = assert_same(impl, EDGE_CASES[name])
    assert results[-1][0] == "raise"  # every script ends (EOF or error)


@pytest.mark.parametrize("name", ["multiline", "garbage", "line of _MAXLINE + 1",
                                  "end of stream mid-line, continuation", "good replies around a bad one",
                                  "disconnect mid-reply", "empty read, then more data"])
@pytest.mark.parametrize("debuglevel", [1, 2])
def test_debug_output_same_as_smtplib(impl: ModuleType, name: str, debuglevel: int,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Level 2 prints the time: freeze it.
    class FrozenDatetime:
        class datetime:
            @staticmethod
            def now() -> Any:
                class Now:
                    def time(self) -> str:
                        return "12:00:00"
                return Now()

    monkeypatch.setattr(smtplib, "datetime", FrozenDatetime)
    assert_same(impl, EDGE_CASES[name], debuglevel=debuglevel)


def test_debug_output_of_read_ahead_replies(impl: ModuleType) -> None:
    # Replies parsed ahead (in one chunk) print when they are returned, as
    # the standard class prints them when it reads them.
    script = [b"220-a\r\n220 b\r\n250 c\r\n"]
    expected = getreplies(smtplib.SMTP, script, calls=1, debuglevel=1)
    sock = FakeSocket(script)
    client = new_client(client_class(impl), sock)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        first = client.getreply()
        client.set_debuglevel(1)
        second = client.getreply()
    assert (first, second) == ((220, b"a\nb"), (250, b"c"))
    assert stderr.getvalue() == "reply: b'250 c\\r\\n'\nreply: retcode (250); Msg: b'c'\n"
    assert expected[0] == [("ok", (220, b"a\nb"))]


@pytest.mark.parametrize("limit", [4, 5, 6, 7, 10, 40, 3, 2, 1, 0, -1, -2, -10])
def test_small_maxline_same_as_smtplib(impl: ModuleType, limit: int) -> None:
    # smtplib._MAXLINE is read at each call, by the standard class and the
    # drop-in.  Below 4 (the parser's smallest limit) every line is read with
    # the standard rules: "Line too long." as smtplib says it, no ValueError.
    stream = (b"250 ok\r\n25\r\n250-a\r\n250 abcdef\r\n220 " + b"y" * 40 + b"\r\n"
              b"250 0123456789012345678901234567890123\r\n221 bye\r\n")
    with maxline(limit):
        for size in (1, 3, 7, 64, 4096):
            assert_same(impl, cut(stream, size))


def test_maxline_below_the_parser_minimum_and_back(impl: ModuleType) -> None:
    script = [b"\n250 b\r\n250 c\r\n"]
    results = []
    for cls in (smtplib.SMTP, client_class(impl)):
        client = new_client(cls, FakeSocket(script))
        with maxline(3):
            first = outcome(client.getreply)  # b"\n" fits: code -1
        second = outcome(client.getreply)  # the default limit again: the fast parser
        with maxline(2):
            third = outcome(client.getreply)  # b"250" is longer than 2
        results.append((first, second, third))
    assert results[0] == results[1]
    assert results[0] == (("ok", (-1, b"")), ("ok", (250, b"b")),
                          ("raise", smtplib.SMTPResponseException, (500, "Line too long.")))


def test_maxline_changed_mid_stream(impl: ModuleType) -> None:
    # Replies already read ahead are read again with the new limit.
    script = [b"250 first\r\n250 second-is-long\r\n250 third\r\n"]
    results = []
    for cls in (smtplib.SMTP, client_class(impl)):
        client = new_client(cls, FakeSocket(script))
        first = outcome(client.getreply)
        with maxline(12):
            second = outcome(client.getreply)
        third = outcome(client.getreply)
        results.append((first, second, third))
    assert results[0] == results[1]
    assert results[0][1] == ("raise", smtplib.SMTPResponseException, (500, "Line too long."))


# -- random streams (hypothesis) ----------------------------------------------

text = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b""))
good_reply = st.builds(
    lambda code, texts, end: b"".join(b"%d-" % code + t + end for t in texts[:-1])
    + b"%d " % code + texts[-1] + end,
    st.sampled_from([220, 221, 250, 251, 334, 354, 421, 450, 500, 550, 554]),
    st.lists(text, min_size=1, max_size=5),
    st.sampled_from([b"\r\n", b"\n"]),
)
odd_line = st.builds(
    lambda code, sep, body, end: code + sep + body + end,
    st.sampled_from([b"250", b"220", b"999", b"600", b"099", b"000", b"25x", b"2x0", b" 25",
                     b"+25", b"-25", b"2_5", b"25", b"2", b"", b"abc", b"\xff\xfe\xfd"]),
    st.sampled_from([b"-", b" ", b"", b"\t", b"x", b"\r", b"--"]),
    text,
    st.sampled_from([b"\r\n", b"\n", b"\r\r\n", b"\n\n"]),
)
long_line = st.builds(
    lambda code, n, end: code + b"x" * n + end,
    st.sampled_from([b"250 ", b"250-", b"xyz"]),
    st.integers(0, 60),
    st.sampled_from([b"\r\n", b"\n"]),
)
stream_bytes = st.lists(st.one_of(good_reply, good_reply, odd_line, long_line, st.binary(max_size=10)),
                        max_size=30).map(b"".join)
ending = st.sampled_from(["eof", "error", "empty-then-more"])


def script_of(data: bytes, cuts: list[int], end: str, more: bytes) -> list[Event]:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    script: list[Event] = [data[a:b] for a, b in zip(bounds, bounds[1:])]
    if end == "error":
        script.append(("error", (54, "Connection reset by peer")))
    elif end == "empty-then-more":
        script += [b"", more]
    return script


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=stream_bytes, cuts=st.lists(st.integers(0, 10_000), max_size=12), end=ending,
       more=stream_bytes, limit=st.sampled_from([8192, 8192, 30, 12, 6, 4, 3, 2, 0, -1]))
def test_random_streams_same_as_smtplib(impl: ModuleType, data: bytes, cuts: list[int], end: str,
                                        more: bytes, limit: int) -> None:
    with maxline(limit):
        assert_same(impl, script_of(data, cuts, end, more))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=stream_bytes, cuts=st.lists(st.integers(0, 10_000), max_size=6),
       limit=st.sampled_from([8192, 12, 5]))
def test_random_streams_debug_output(impl: ModuleType, data: bytes, cuts: list[int], limit: int) -> None:
    with maxline(limit):
        assert_same(impl, script_of(data, cuts, "eof", b""), debuglevel=1)


@contextlib.contextmanager
def slow_path_forbidden() -> Iterator[None]:
    """Make the line-by-line path fail: well-formed input must never need it
    (the end of the stream between replies does not need it either)."""
    original = fsmtplib._ReplyReader.to_slow

    def refuse(self: Any, data: Any) -> None:
        raise AssertionError(f"slow path used for {bytes(data)[:80]!r}")

    fsmtplib._ReplyReader.to_slow = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        fsmtplib._ReplyReader.to_slow = original  # type: ignore[method-assign]


@settings(max_examples=200, deadline=None)
@given(replies=st.lists(good_reply, min_size=1, max_size=40), size=st.integers(1, 200))
def test_well_formed_streams_take_the_fast_path(impl: ModuleType, replies: list[bytes], size: int) -> None:
    data = b"".join(replies)
    expected = getreplies(smtplib.SMTP, cut(data, size))
    with slow_path_forbidden():
        got = getreplies(client_class(impl), cut(data, size))
    assert got == expected
    assert len(got[0]) == len(replies) + 2


# -- read-ahead, state, implementation ------------------------------------------


def test_pipelined_replies_take_one_read(impl: ModuleType) -> None:
    data = b"".join(b"250 2.1.5 Ok %d\r\n" % i for i in range(1000))
    sock = FakeSocket([data])
    client = new_client(client_class(impl), sock)
    assert [client.getreply() for _ in range(1000)] == [(250, b"2.1.5 Ok %d" % i) for i in range(1000)]
    assert sock.recv_calls == 1


def test_read_ahead_is_kept_and_visible(impl: ModuleType) -> None:
    sock = FakeSocket([b"220 hi\r\n250-a\r\n250 b\r\n354 go\r\n250-par", b"tial\r\n250 done\r\n"])
    client = new_client(client_class(impl), sock)
    assert client.getreply() == (220, b"hi")
    assert client.fastreply_pending() == b"250-a\r\n250 b\r\n354 go\r\n250-par"  # type: ignore[attr-defined]
    assert client.getreply() == (250, b"a\nb")
    assert client.getreply() == (354, b"go")
    assert client.getreply() == (250, b"partial\ndone")
    assert client.fastreply_pending() == b""  # type: ignore[attr-defined]


def test_reads_large_chunks(impl: ModuleType) -> None:
    class Recorder(FakeSocket):
        sizes: list[int] = []

        def recv(self, bufsize: int, flags: int = 0) -> bytes:
            self.sizes.append(bufsize)
            return super().recv(bufsize, flags)

    sock = Recorder([b"250 ok\r\n"])
    client = new_client(client_class(impl), sock)
    client.getreply()
    assert Recorder.sizes == [fsmtplib.READ_SIZE] and fsmtplib.READ_SIZE >= 65536


class Recording:
    """A parser factory that records how it is called."""

    def __init__(self, impl: ModuleType) -> None:
        self.impl = impl
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **limits: Any) -> Any:
        self.calls.append(limits)
        return self.impl.ReplyParser(**limits)


def test_default_parser_is_the_selected_implementation(selected: ModuleType) -> None:
    assert fsmtplib.SMTP.parser is fastreply.ReplyParser is selected.ReplyParser


def test_parser_is_called_with_smtplibs_line_limit(impl: ModuleType) -> None:
    """``SMTP.parser`` makes each connection's parser, with
    ``max_line_length=smtplib._MAXLINE``: set on a subclass (a plain function
    there is not bound to the instance) or on an instance."""
    on_class = Recording(impl)
    cls = type("Client", (fsmtplib.SMTP,), {"parser": lambda **limits: on_class(**limits)})
    client = new_client(cls, FakeSocket([b"250 ok\r\n"]))
    assert client.getreply() == (250, b"ok")
    assert on_class.calls == [{"max_line_length": smtplib._MAXLINE}]  # type: ignore[attr-defined]
    on_instance = Recording(impl)
    client = new_client(fsmtplib.SMTP, FakeSocket([b"251 ok\r\n"]))
    client.parser = on_instance  # type: ignore[misc]
    assert client.getreply() == (251, b"ok")
    assert on_instance.calls == [{"max_line_length": smtplib._MAXLINE}]  # type: ignore[attr-defined]


def test_close_drops_read_ahead(impl: ModuleType) -> None:
    sock = FakeSocket([b"220 a\r\n250 b\r\n"])
    client = new_client(client_class(impl), sock)
    client.getreply()
    assert client.fastreply_pending() == b"250 b\r\n"  # type: ignore[attr-defined]
    client.close()
    assert client.fastreply_pending() == b""  # type: ignore[attr-defined]
    assert sock.closed


def test_connect_drops_read_ahead(impl: ModuleType) -> None:
    socks = [FakeSocket([b"220 first\r\n250 stale\r\n"]), FakeSocket([b"220 second\r\n250 fresh\r\n"])]
    cls = client_class(impl)
    client = cls(local_hostname="client.example")
    client._get_socket = lambda host, port, timeout: socks.pop(0)  # type: ignore[method-assign]
    assert client.connect("mx.example.org", 25) == (220, b"first")
    # Connect again without closing: what the first connection read ahead is gone.
    assert client.connect("mx.example.org", 25) == (220, b"second")
    assert client.getreply() == (250, b"fresh")


def test_new_file_object_drops_read_ahead(impl: ModuleType) -> None:
    # Whoever replaces the file (starttls does) starts a new stream.
    client = new_client(client_class(impl), FakeSocket([b"220 a\r\n250 stale\r\n"]))
    client.getreply()
    client.sock = FakeSocket([b"250 fresh\r\n"])  # type: ignore[assignment]
    client.file = None
    assert client.getreply() == (250, b"fresh")


def test_user_closed_file_raises_like_smtplib(impl: ModuleType) -> None:
    results = []
    for cls in (smtplib.SMTP, client_class(impl)):
        client = new_client(cls, FakeSocket([b"220 a\r\n"]))
        client.file = client.sock.makefile("rb")  # type: ignore[union-attr]
        client.file.close()
        results.append(outcome(client.getreply))
    assert results[0] == results[1]
    assert results[0][1] is ValueError


def test_file_without_read1(impl: ModuleType) -> None:
    class LinesOnly:
        def __init__(self, data: bytes) -> None:
            self._f = io.BytesIO(data)

        def readline(self, limit: int = -1) -> bytes:
            return self._f.readline(limit)

        def close(self) -> None:
            pass

    data = b"220 a\r\n250-b\r\n250 c\r\n999 d\r\nxx\r\n250 " + b"z" * 9000 + b"\r\n"
    results = []
    for cls in (smtplib.SMTP, client_class(impl)):
        client = new_client(cls, FakeSocket())
        client.file = LinesOnly(data)
        results.append([outcome(client.getreply) for _ in range(7)])
    assert results[0] == results[1]


# -- STARTTLS ----------------------------------------------------------------------------


class Server:
    """A scripted SMTP server: answers each command (or DATA block) with the
    next of ``replies``; a reply may hold several (plaintext injection)."""

    def __init__(self, replies: Sequence[bytes]) -> None:
        self.replies = deque(replies)
        self.pending = b""
        self.in_data = False
        self.last_command = b""

    def __call__(self, sent: bytes) -> list[Event]:
        self.pending += sent
        out: list[Event] = []
        while True:
            if self.in_data:
                end = self.pending.find(b"\r\n.\r\n")
                if end < 0:
                    return out
                self.pending = self.pending[end + 5 :]
                self.in_data = False
                unit = b"<data>"
            else:
                end = self.pending.find(b"\r\n")
                if end < 0:
                    return out
                unit, self.pending = self.pending[:end], self.pending[end + 2 :]
            if not self.replies:
                return out
            reply = self.replies.popleft()
            if reply:
                out.append(reply)
            self.in_data = unit.upper() == b"DATA" and reply.startswith(b"354")
            self.last_command = unit


class FakeContext:
    """An ssl context whose wrap_socket hands over to the 'TLS' socket."""

    def __init__(self, tls_sock: FakeSocket) -> None:
        self.tls_sock = tls_sock
        self.wrapped: list[Any] = []

    def wrap_socket(self, sock: Any, server_hostname: str | None = None, **kwargs: Any) -> FakeSocket:
        self.wrapped.append(sock)
        return self.tls_sock


EHLO_PLAIN = b"250-mx.example.org\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
EHLO_TLS = b"250-mx.example.org\r\n250-SIZE 1000\r\n250 AUTH PLAIN\r\n"
INJECTED = b"250-evil.example\r\n250 AUTH PLAIN LOGIN\r\n250 2.1.0 injected\r\n"


def starttls_session(cls: type[smtplib.SMTP], injected: bytes) -> dict[str, Any]:
    plain = FakeSocket([b"220 mx.example.org ESMTP\r\n"],
                       Server([EHLO_PLAIN, b"220 2.0.0 Ready to start TLS\r\n" + injected]))
    tls = FakeSocket([], Server([EHLO_TLS, b"250 2.1.0 Ok\r\n", b"221 bye\r\n"]))
    client = new_client(cls, plain)
    context = FakeContext(tls)
    out: dict[str, Any] = {}
    out["greeting"] = client.getreply()
    out["starttls"] = outcome(lambda: client.starttls(context=context))  # type: ignore[arg-type]
    out["wrapped"] = context.wrapped == [plain]
    out["ehlo"] = outcome(client.ehlo)
    out["features"] = dict(client.esmtp_features)
    out["mail"] = outcome(lambda: client.mail("a@example.org"))
    out["quit"] = outcome(client.quit)
    out["sent_tls"] = bytes(tls.sent)
    return out


@pytest.mark.parametrize("injected", [b"", INJECTED, INJECTED[:20], b"garbage\r\n" + INJECTED])
def test_starttls_drops_plaintext_read_ahead(impl: ModuleType, injected: bytes) -> None:
    expected = starttls_session(smtplib.SMTP, injected)
    got = starttls_session(client_class(impl), injected)
    assert got == expected
    assert got["ehlo"] == ("ok", (250, b"mx.example.org\nSIZE 1000\nAUTH PLAIN"))
    assert got["features"] == {"size": "1000", "auth": " PLAIN"}
    assert got["mail"] == ("ok", (250, b"2.1.0 Ok"))


def test_starttls_read_ahead_really_was_read(impl: ModuleType) -> None:
    # The injected bytes arrive with the 220 in one chunk: the drop-in has
    # them buffered when the handshake starts, and must not use them after it.
    plain = FakeSocket([b"220 mx ESMTP\r\n"], Server([EHLO_PLAIN, b"220 Ready\r\n" + INJECTED]))
    client = new_client(client_class(impl), plain)
    client.getreply()
    client.ehlo()
    seen: list[bytes] = []

    class Context(FakeContext):
        def wrap_socket(self, sock: Any, server_hostname: str | None = None, **kwargs: Any) -> FakeSocket:
            seen.append(client.fastreply_pending())  # type: ignore[attr-defined]
            return super().wrap_socket(sock, server_hostname)

    client.starttls(context=Context(FakeSocket([EHLO_TLS])))  # type: ignore[arg-type]
    assert seen == [INJECTED]
    assert client.fastreply_pending() == b""  # type: ignore[attr-defined]
    assert client.ehlo() == (250, b"mx.example.org\nSIZE 1000\nAUTH PLAIN")


def test_starttls_refused_keeps_read_ahead(impl: ModuleType) -> None:
    # No handshake (454): the stream goes on, read-ahead included, as in smtplib.
    results = []
    for cls in (smtplib.SMTP, client_class(impl)):
        plain = FakeSocket([b"220 mx\r\n"], Server([EHLO_PLAIN, b"454 4.7.0 TLS not available\r\n250 next\r\n"]))
        client = new_client(cls, plain)
        client.getreply()
        results.append((outcome(client.starttls), outcome(client.getreply)))
    assert results[0] == results[1]
    assert results[0][1] == ("ok", (250, b"next"))


def test_patched_starttls_drops_plaintext_read_ahead(impl: ModuleType) -> None:
    expected = starttls_session(smtplib.SMTP, INJECTED)
    with fsmtplib.patched(parser=impl.ReplyParser):
        got = starttls_session(smtplib.SMTP, INJECTED)
    assert got == expected
    assert got["features"] == {"size": "1000", "auth": " PLAIN"}


# -- whole flows through scripted servers ------------------------------------------------

GREETING = b"220 mx.example.org ESMTP\r\n"
EHLO = (b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
        b"250-AUTH PLAIN LOGIN CRAM-MD5\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n")


def run_flow(cls: type[smtplib.SMTP], greeting: bytes, replies: Sequence[bytes],
             flow: Callable[[smtplib.SMTP], Any], chunk: int | None = None) -> dict[str, Any]:
    server = Server(replies)

    def chunked(sent: bytes) -> list[Event]:
        events = server(sent)
        if chunk is None:
            return events
        return [piece for event in events for piece in cut(event, chunk)]

    sock = FakeSocket(cut(greeting, chunk) if chunk else [greeting], chunked)
    client = cls(local_hostname="client.example")
    client._get_socket = lambda host, port, timeout: sock  # type: ignore[method-assign]
    out: dict[str, Any] = {"connect": outcome(lambda: client.connect("mx.example.org", 25))}
    out["flow"] = outcome(lambda: flow(client))
    out["sent"] = bytes(sock.sent)
    out["features"] = dict(client.esmtp_features)
    out["ehlo_resp"] = client.ehlo_resp
    out["does_esmtp"] = client.does_esmtp
    return out


def message() -> email.message.EmailMessage:
    msg = email.message.EmailMessage()
    msg["From"] = "Ann <ann@example.org>"
    msg["To"] = "bob@example.net, Carl <carl@example.net>"
    msg["Subject"] = "Grüße"
    msg.set_content("Hello\n.leading dot\n")
    return msg


FLOWS: dict[str, tuple[Callable[[smtplib.SMTP], Any], list[bytes]]] = {
    "ehlo": (lambda c: c.ehlo(), [EHLO]),
    "helo": (lambda c: c.helo(), [b"250 mx.example.org\r\n"]),
    "ehlo refused then helo": (lambda c: (c.ehlo(), c.helo()), [b"502 no\r\n", b"250 hi\r\n"]),
    "sendmail": (
        lambda c: c.sendmail("a@example.org", ["b@example.net", "c@example.net"], b"Subject: x\r\n\r\nhi\r\n"),
        [EHLO, b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n", b"250 2.1.5 Ok\r\n", b"354 go\r\n",
         b"250 2.0.0 Ok: queued\r\n"],
    ),
    "sendmail, one recipient refused": (
        lambda c: c.sendmail("a@example.org", ["b@example.net", "nobody@example.net"], "hi"),
        [EHLO, b"250 Ok\r\n", b"250 Ok\r\n", b"550 5.1.1 <nobody@example.net>: User unknown\r\n",
         b"354 go\r\n", b"250 queued\r\n"],
    ),
    "sendmail, all recipients refused": (
        lambda c: c.sendmail("a@example.org", ["x@example.net"], "hi"),
        [EHLO, b"250 Ok\r\n", b"550 no\r\n", b"250 reset\r\n"],
    ),
    "sendmail, sender refused": (
        lambda c: c.sendmail("a@example.org", ["x@example.net"], "hi"),
        [EHLO, b"553-5.7.1 sender\r\n553 5.7.1 rejected\r\n", b"250 reset\r\n"],
    ),
    "sendmail, data refused": (
        lambda c: c.sendmail("a@example.org", ["x@example.net"], "hi"),
        [EHLO, b"250 Ok\r\n", b"250 Ok\r\n", b"354 go\r\n", b"554 5.7.1 spam\r\n", b"250 reset\r\n"],
    ),
    "sendmail, odd replies": (
        lambda c: c.sendmail("a@example.org", ["x@example.net"], "hi"),
        [b"250-mx\r\n250 SIZE 100\r\n", b"250ok\r\n", b"999 what\r\n", b"354\n", b"250 done"],
    ),
    "sendmail, server hangs up in DATA": (
        lambda c: c.sendmail("a@example.org", ["x@example.net"], "hi"),
        [EHLO, b"250 Ok\r\n", b"250 Ok\r\n", b"354 go\r\n"],
    ),
    "send_message": (
        lambda c: c.send_message(message()),
        [EHLO, b"250 Ok\r\n", b"250 Ok\r\n", b"250 Ok\r\n", b"354 go\r\n", b"250 queued\r\n"],
    ),
    "send_message, SMTPUTF8": (
        lambda c: c.send_message(message(), from_addr="ännä@example.org"),
        [EHLO, b"250 Ok\r\n", b"250 Ok\r\n", b"250 Ok\r\n", b"354 go\r\n", b"250 queued\r\n"],
    ),
    "login PLAIN": (
        lambda c: c.login("user", "secret"),
        [b"250-mx\r\n250 AUTH PLAIN\r\n", b"235 2.7.0 Authentication successful\r\n"],
    ),
    "login LOGIN": (
        lambda c: c.login("user", "secret"),
        [b"250-mx\r\n250 AUTH LOGIN\r\n", b"334 " + base64.b64encode(b"Password:") + b"\r\n",
         b"235 ok\r\n"],
    ),
    "login CRAM-MD5": (
        lambda c: c.login("user", "secret"),
        [b"250-mx\r\n250 AUTH CRAM-MD5\r\n", b"334 " + base64.b64encode(b"<1.2@mx>") + b"\r\n",
         b"235 ok\r\n"],
    ),
    "login refused, then next mechanism": (
        lambda c: c.login("user", "wrong"),
        [b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n", b"535 5.7.8 bad\r\n",
         b"334 VXNlcm5hbWU6\r\n", b"535 5.7.8 bad again\r\n"],
    ),
    "login not supported": (lambda c: c.login("u", "p"), [b"250 mx\r\n"]),
    "verify, expn, help, noop, rset": (
        lambda c: (c.verify("postmaster"), c.expn("list"), c.help(), c.noop(), c.rset()),
        [b"252 2.0.0 postmaster\r\n", b"502 5.5.1 no\r\n", b"214-Commands:\r\n214 HELO EHLO\r\n",
         b"250 2.0.0 Ok\r\n", b"250 2.0.0 Ok\r\n"],
    ),
    "quit": (lambda c: c.quit(), [b"221 2.0.0 Bye\r\n"]),
    "docmd with garbage": (lambda c: (c.docmd("XYZZY"), c.docmd("NOOP")),
                           [b"nothing happens\r\n", b"250 ok\r\n"]),
}


@pytest.mark.parametrize("name", list(FLOWS))
@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_flows_same_as_smtplib(impl: ModuleType, name: str, chunk: int | None) -> None:
    # One command at a time (pipelining off): the drop-in sends exactly the
    # standard bytes and gets exactly its results.  (Pipelined sendmail() is
    # compared in tests/test_sending.py.)
    flow, replies = FLOWS[name]
    expected = run_flow(Reference, GREETING, replies, flow, chunk)
    got = run_flow(client_class(impl, pipelining=False), GREETING, replies, flow, chunk)
    assert got == expected


@pytest.mark.parametrize("name", [name for name in FLOWS if "send" not in name])
def test_flows_without_sending_are_the_same_pipelined(impl: ModuleType, name: str) -> None:
    flow, replies = FLOWS[name]
    expected = run_flow(smtplib.SMTP, GREETING, replies, flow, 3)
    got = run_flow(client_class(impl), GREETING, replies, flow, 3)
    assert got == expected


def test_flow_results_are_the_expected_ones(impl: ModuleType) -> None:
    flow, replies = FLOWS["sendmail, one recipient refused"]
    got = run_flow(client_class(impl, pipelining=False), GREETING, replies, flow)
    assert got["connect"] == ("ok", (220, b"mx.example.org ESMTP"))
    assert got["flow"] == ("ok", {"nobody@example.net": (550, b"5.1.1 <nobody@example.net>: User unknown")})
    assert got["features"]["auth"] == " PLAIN LOGIN CRAM-MD5"


def test_lmtp_and_smtp_ssl_are_the_standard_classes(impl: ModuleType) -> None:
    assert issubclass(fsmtplib.LMTP, smtplib.LMTP) and issubclass(fsmtplib.LMTP, fsmtplib.SMTP)
    assert issubclass(fsmtplib.SMTP_SSL, smtplib.SMTP_SSL) and issubclass(fsmtplib.SMTP_SSL, fsmtplib.SMTP)
    assert fsmtplib.SMTPException is smtplib.SMTPException
    assert fsmtplib.SMTPServerDisconnected is smtplib.SMTPServerDisconnected
    # One recipient: LMTP answers the end of data once per accepted recipient,
    # and the standard sendmail() reads only one of those replies.
    def flow(c: smtplib.SMTP) -> Any:
        return c.sendmail("a@example.org", ["b@example.net"], b"Subject: x\r\n\r\nhi\r\n")

    replies = [EHLO, b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n", b"354 go\r\n", b"250 2.0.0 Ok\r\n"]
    expected = run_flow(smtplib.LMTP, GREETING, replies, flow)
    got = run_flow(client_class(impl, fsmtplib.LMTP, pipelining=False), GREETING, replies, flow)
    assert got == expected
    assert expected["sent"].startswith(b"lhlo client.example\r\n")


reply_pool = st.sampled_from([
    b"250 Ok\r\n", b"250-a\r\n250 b\r\n", b"354 go\r\n", b"354\n", b"550 5.1.1 no\r\n", b"221 bye\r\n",
    b"421 4.3.2 shutting down\r\n", b"250ok\r\n", b"999 x\r\n", b"xyz\r\n", b"\r\n", b"250-a\r\nx\r\n",
    b"250 a\r\n250 extra\r\n", b"250-a\n251 b\n", b"334 VXNlcm5hbWU6\r\n", b"235 ok\r\n",
    b"250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10\r\n", b"250 " + b"x" * 9000 + b"\r\n",
])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replies=st.lists(reply_pool, max_size=10), chunk=st.sampled_from([None, 1, 3, 64]),
       which=st.sampled_from(["sendmail", "login LOGIN", "verify, expn, help, noop, rset",
                              "send_message", "ehlo refused then helo"]))
def test_random_flows_same_as_smtplib(impl: ModuleType, replies: list[bytes], chunk: int | None,
                                      which: str) -> None:
    flow = FLOWS[which][0]
    expected = run_flow(Reference, GREETING, replies, flow, chunk)
    got = run_flow(client_class(impl, pipelining=False), GREETING, replies, flow, chunk)
    assert got == expected


# -- patch() / unpatch() / patched() ----------------------------------------------------


def test_patch_and_unpatch(impl: ModuleType) -> None:
    original = smtplib.SMTP.getreply
    assert not fsmtplib.is_patched()
    script = EDGE_CASES["good replies around a bad one"]
    expected = getreplies(smtplib.SMTP, script)
    made = Recording(impl)
    fsmtplib.patch(parser=made)
    try:
        assert fsmtplib.is_patched()
        assert smtplib.SMTP.getreply is fsmtplib.SMTP.getreply
        assert smtplib.LMTP.getreply is fsmtplib.SMTP.getreply
        got = getreplies(smtplib.SMTP, script)
        assert made.calls and all(
            call == {"max_line_length": smtplib._MAXLINE} for call in made.calls  # type: ignore[attr-defined]
        )
    finally:
        fsmtplib.unpatch()
    assert got == expected
    assert smtplib.SMTP.getreply is original
    assert not fsmtplib.is_patched()


def test_patched_context_manager_nests(impl: ModuleType) -> None:
    original = smtplib.SMTP.getreply
    outer = Recording(impl)
    with fsmtplib.patched(parser=outer):
        with fsmtplib.patched():
            assert fsmtplib.is_patched()
        assert fsmtplib.is_patched()  # the outer block is still patched, with its parser
        new_client(smtplib.SMTP, FakeSocket([b"250 ok\r\n"])).getreply()
        assert outer.calls == [{"max_line_length": smtplib._MAXLINE}]  # type: ignore[attr-defined]
    assert smtplib.SMTP.getreply is original
    with pytest.raises(KeyError):
        with fsmtplib.patched():
            raise KeyError("boom")
    assert smtplib.SMTP.getreply is original


def test_patched_flows_same_as_smtplib(impl: ModuleType) -> None:
    for name in ("sendmail, odd replies", "send_message", "login LOGIN"):
        flow, replies = FLOWS[name]
        expected = run_flow(smtplib.SMTP, GREETING, replies, flow, 3)
        with fsmtplib.patched(parser=impl.ReplyParser):
            got = run_flow(smtplib.SMTP, GREETING, replies, flow, 3)
        assert got == expected, name


def test_module_is_a_drop_in_for_smtplib() -> None:
    for name in fsmtplib.__all__:
        assert hasattr(fsmtplib, name), name
        if hasattr(smtplib, name) and name not in ("SMTP", "SMTP_SSL", "LMTP"):
            assert getattr(fsmtplib, name) is getattr(smtplib, name), name
    # "smtplib" is still the standard library's module (whatever the path of
    # the interpreter holds: its name may well contain "fastreply").
    stdlib_dir = os.path.dirname(sys.modules["smtplib"].__file__)  # type: ignore[type-var]
    assert os.path.samefile(stdlib_dir, sysconfig.get_paths()["stdlib"])
