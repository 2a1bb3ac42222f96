"""A complete SMTP session, scripted, for the real-server tests.

:func:`run_session` drives one connection through an ``smtplib.SMTP`` class
(the standard one, fastreply's drop-in, or the standard one while
:func:`fastreply.smtplib.patch` is in effect) and returns a :class:`Session`:

* ``transcript``: ``(command line sent, (code, message))`` for every reply,
  in order, with ``(code, message)`` exactly as the class's ``getreply()``
  returned it.  The greeting's "command" is :data:`GREETING`; the reply to
  the end of a message is paired with ``"."`` (the line that ends it).
* ``events``: every byte that crossed the socket, in order, as
  ``("sent", bytes)`` and ``("recv", bytes)`` chunks, recorded by a socket
  wrapper below the class's file object (so what the server really sent,
  whatever the class read or buffered).

:func:`track` replays ``events`` through :class:`fastreply.tracker.ReplyTracker`
(the command lines with ``sent()``, the server's raw bytes with ``feed()``,
interleaved as they happened) and returns the tracked replies.
:func:`std_replies` reads raw server bytes with the standard library's own
``getreply()``, the reference every drop-in must match byte for byte.
:func:`client_script` and :func:`run_aio_session` replay a recorded client's
writes over asyncio streams, reading with ``fastreply.aio.read_reply()``.

The session (an SMTP server with a local user, VRFY on, PIPELINING
announced, relaying denied; see :class:`Addresses`):

  greeting, EHLO, MAIL, RCPT (good), RCPT (unknown user), RCPT (relay
  denied), DATA + message + end of data (``smtplib``'s ``data()``), RSET,
  VRFY (the good user), NOOP, HELP, XYZZY (an unknown command, with
  ``docmd()``), a pipelined batch (MAIL, RCPT good, RCPT unknown, DATA in one
  ``send()``, then four ``getreply()``; then the message and end of data),
  QUIT.

Shared by the real-server tests (Postfix: ``tests/test_postfix.py``); it is
not a test module itself.
"""

from __future__ import annotations

import asyncio
import io
import re
import smtplib
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple

from fastreply import Reply, ReplyParser
from fastreply._parser import ParserFactory
from fastreply.commands import Command
from fastreply.tables import MODERN, ReplyTable
from fastreply.tracker import ReplyTracker, TrackedReply

__all__ = [
    "Addresses",
    "END_OF_DATA",
    "RecordingSocket",
    "dot_stuff",
    "recording",
    "GREETING",
    "MESSAGE",
    "Session",
    "normalize",
    "mask",
    "run_session",
    "client_script",
    "run_aio_session",
    "smtplib_message",
    "std_replies",
    "track",
    "command_of",
]

#: The "command" the greeting answers, in a transcript.
GREETING = "(connect)"
#: The end of a message, in a transcript (the line that ends it).
END_OF_DATA = "."

#: The test message: headers, a body, and a line that needs dot-stuffing.
MESSAGE = (
    b"From: <fastreply-test@fastreply.test>\r\n"
    b"To: <fastreply-test@fastreply.test>\r\n"
    b"Subject: fastreply real-server session\r\n"
    b"\r\n"
    b"Hello from the fastreply tests.\r\n"
    b".A line that starts with a dot (sent as ..A line).\r\n"
)

# The standard getreply(), taken before anything can patch it.
_STD_GETREPLY: Callable[[smtplib.SMTP], tuple[int, bytes]] = smtplib.SMTP.__dict__["getreply"]
if getattr(_STD_GETREPLY, "__module__", None) != "smtplib":
    raise RuntimeError(
        "tests/sessions.py was imported while smtplib.SMTP.getreply was patched: "
        f"{_STD_GETREPLY!r}"
    )


class Addresses(NamedTuple):
    """Who the session writes to."""

    sender: str = "fastreply-test@fastreply.test"
    good: str = "fastreply-test@fastreply.test"  # a local user: 250, VRFY 252/250
    unknown: str = "no-such-user@fastreply.test"  # local domain, no such user: 550
    relay: str = "someone@example.com"  # not ours, relaying denied: 554 (Postfix)


@dataclass
class Session:
    """What :func:`run_session` saw (see the module documentation)."""

    transcript: list[tuple[str, tuple[int, bytes]]] = field(default_factory=list)
    events: list[tuple[str, bytes]] = field(default_factory=list)
    #: ``esmtp_features`` as the class built it from the EHLO reply.
    features: dict[str, str] = field(default_factory=dict)

    @property
    def received(self) -> bytes:
        """Everything the server sent, as one byte string."""
        return b"".join(data for kind, data in self.events if kind == "recv")

    @property
    def sent(self) -> bytes:
        """Everything the client sent, as one byte string."""
        return b"".join(data for kind, data in self.events if kind == "sent")


# -- recording ------------------------------------------------------------------


class RecordingSocket(socket.socket):
    """A socket that logs every chunk sent and received into ``events``.

    It takes over the file descriptor of a connected socket.  smtplib reads
    through ``makefile("rb")``, whose raw layer calls ``recv_into()``, and
    writes with ``sendall()``: both are logged, as are ``recv()`` and
    ``send()`` for anything else."""

    def __init__(self, sock: socket.socket, events: list[tuple[str, bytes]]) -> None:
        timeout = sock.gettimeout()
        super().__init__(sock.family, sock.type, sock.proto, fileno=sock.detach())
        self.settimeout(timeout)
        self.events = events

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        n = super().recv_into(buffer, nbytes, flags)
        if n:
            self.events.append(("recv", bytes(memoryview(buffer)[:n])))
        return n

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if data:
            self.events.append(("recv", data))
        return data

    def sendall(self, data: Any, flags: int = 0) -> None:
        self.events.append(("sent", bytes(data)))
        super().sendall(data, flags)

    def send(self, data: Any, flags: int = 0) -> int:
        n = super().send(data, flags)
        self.events.append(("sent", bytes(memoryview(data)[:n])))
        return n


def recording(cls: type[smtplib.SMTP]) -> type[smtplib.SMTP]:
    """A subclass of ``cls`` whose socket is a :class:`RecordingSocket` and
    that keeps every ``(code, message)`` its ``getreply()`` returned (in
    ``replies``).  ``getreply`` is whatever ``cls`` has (patched or not)."""

    class Recording(cls):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.events: list[tuple[str, bytes]] = []
            self.replies: list[tuple[int, bytes]] = []
            super().__init__(*args, **kwargs)

        def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
            sock = super()._get_socket(host, port, timeout)
            return RecordingSocket(sock, self.events)

        def getreply(self) -> tuple[int, bytes]:
            reply: tuple[int, bytes] = super().getreply()
            self.replies.append(reply)
            return reply

    Recording.__name__ = Recording.__qualname__ = f"Recording{cls.__name__}"
    return Recording


# -- the session ------------------------------------------------------------------


def dot_stuff(message: bytes) -> bytes:
    """The message as sent after DATA, with the line that ends it."""
    body = re.sub(rb"(?m)^\.", b"..", message)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _command_lines(sent: bytes) -> list[str]:
    """The command lines in bytes a client sent: a message after DATA counts
    as one line, ``"."`` (whatever the client said before 354, the session
    sends a message only after one)."""
    lines: list[str] = []
    data = False
    for raw in sent.split(b"\r\n")[:-1]:
        if data:
            if raw == b".":
                lines.append(END_OF_DATA)
                data = False
            continue
        line = raw.decode("ascii")
        lines.append(line)
        data = Command.from_line(line) is Command.DATA
    return lines


def run_session(
    cls: type[smtplib.SMTP],
    host: str,
    port: int,
    *,
    addresses: Addresses = Addresses(),
    message: bytes = MESSAGE,
    timeout: float = 10.0,
    local_hostname: str = "client.fastreply.test",
) -> Session:
    """Run the whole session (see the module documentation) through ``cls``.

    Every step is one call of the class's own API (``connect()``, ``ehlo()``,
    ``mail()``, ``rcpt()``, ``data()``, ``rset()``, ``verify()``, ``noop()``,
    ``help()``, ``docmd()``, ``send()`` + ``getreply()``, ``quit()``); the
    transcript pairs each line the step sent with each reply its
    ``getreply()`` returned.  Raises ``AssertionError`` when a step sent a
    different number of command lines than it got replies (a reply lost or
    one too many), and RuntimeError when the server does not announce
    PIPELINING (the batch would be a protocol error)."""
    client = recording(cls)(local_hostname=local_hostname, timeout=timeout)
    session = Session(events=client.events)  # type: ignore[attr-defined]
    replies: list[tuple[int, bytes]] = client.replies  # type: ignore[attr-defined]

    def step(call: Callable[[], object], *, greeting: bool = False) -> None:
        sent_mark = len(session.events)
        reply_mark = len(replies)
        call()
        sent = b"".join(d for k, d in session.events[sent_mark:] if k == "sent")
        got = replies[reply_mark:]
        lines = [GREETING] if greeting else _command_lines(sent)
        assert len(lines) == len(got), (
            f"sent {lines!r} and got {len(got)} replies: {got!r}"
        )
        session.transcript.extend(zip(lines, got))

    a = addresses
    try:
        step(lambda: client.connect(host, port), greeting=True)
        step(client.ehlo)
        session.features = dict(client.esmtp_features)
        if not client.has_extn("pipelining"):
            raise RuntimeError(f"{host}:{port} does not announce PIPELINING: {client.ehlo_resp!r}")
        step(lambda: client.mail(a.sender))
        step(lambda: client.rcpt(a.good))
        step(lambda: client.rcpt(a.unknown))
        step(lambda: client.rcpt(a.relay))
        step(lambda: client.data(message))
        step(client.rset)
        step(lambda: client.verify(a.good))
        step(client.noop)
        step(client.help)
        step(lambda: client.docmd("XYZZY"))

        def pipelined() -> None:
            # RFC 2920: MAIL, RCPT, RCPT and DATA in one write, then the four
            # replies, in order; the message only after DATA's 354.
            client.send(
                f"MAIL FROM:<{a.sender}>\r\nRCPT TO:<{a.good}>\r\n"
                f"RCPT TO:<{a.unknown}>\r\nDATA\r\n".encode("ascii")
            )
            batch = [client.getreply() for _ in range(4)]
            if batch[-1][0] == 354:
                client.send(dot_stuff(message))
                client.getreply()

        step(pipelined)
        step(client.quit)
    finally:
        client.close()
    return session


# -- the same conversation with asyncio -------------------------------------------


def client_script(session: Session) -> list[tuple[bytes, int]]:
    """What the client of a recorded session did, as ``(bytes written, replies
    read before the next write)`` steps; the first step writes nothing (it
    reads the greeting).  Replaying it on the same server holds the same
    conversation."""
    steps: list[tuple[bytes, bytearray]] = [(b"", bytearray())]
    for kind, data in session.events:
        if kind == "sent":
            steps.append((data, bytearray()))
        else:
            steps[-1][1].extend(data)
    return [(written, len(ReplyParser().feed(bytes(read)))) for written, read in steps]


def run_aio_session(
    host: str,
    port: int,
    script: list[tuple[bytes, int]],
    *,
    parser: ParserFactory | None = None,
    timeout: float = 10.0,
) -> list[Reply]:
    """Replay ``script`` (see :func:`client_script`) over asyncio streams,
    reading every reply with ``fastreply.aio.read_reply(reader)``."""
    from fastreply.aio import read_reply

    async def session() -> list[Reply]:
        reader, writer = await asyncio.open_connection(host, port)
        replies: list[Reply] = []
        try:
            for written, count in script:
                if written:
                    writer.write(written)
                    await writer.drain()
                for _ in range(count):
                    replies.append(await read_reply(reader, parser))
        finally:
            writer.close()
            await writer.wait_closed()
        return replies

    async def bounded() -> list[Reply]:
        return await asyncio.wait_for(session(), timeout)

    return asyncio.run(bounded())


def smtplib_message(reply: Reply) -> bytes:
    """The message ``smtplib``'s ``getreply()`` makes of a well-formed reply:
    each line stripped of spaces, tabs, CR and LF, joined by LF."""
    return b"\n".join(line.strip(b" \t\r\n") for line in reply.lines)


# -- checking -----------------------------------------------------------------------


def command_of(line: str) -> Command:
    """The command a transcript line stands for (the tracker's view)."""
    if line == GREETING:
        return Command.CONNECT
    return Command.from_line(line)


def track(
    events: Iterable[tuple[str, bytes]], table: ReplyTable = MODERN, *, lmtp: bool = False
) -> tuple[list[TrackedReply], ReplyTracker]:
    """Replay a recorded conversation through a :class:`ReplyTracker`.

    Client bytes are split into lines and told with ``sent()``; a message
    (what follows a DATA that got 354, up to the ``.`` line) is not a
    command: only its final ``.`` is told.  Server bytes go to ``feed()``
    exactly as they were received, chunk by chunk.  Returns the tracked
    replies and the tracker (for its counters and ``pending``)."""
    tracker = ReplyTracker(table, lmtp=lmtp)
    out: list[TrackedReply] = []
    in_message = False
    partial = b""
    for kind, data in events:
        if kind == "recv":
            for item in tracker.feed(data):
                out.append(item)
                if item.command is Command.DATA and item.reply.code == 354:
                    in_message = True
            continue
        partial += data
        *lines, partial = partial.split(b"\r\n")
        for line in lines:
            if in_message:
                if line == b".":
                    in_message = False
                    tracker.sent(b".\r\n")
                continue
            tracker.sent(line + b"\r\n")
    assert not partial, f"the client sent an unterminated line: {partial!r}"
    return out, tracker


def std_replies(raw: bytes) -> list[tuple[int, bytes]]:
    """Every reply in ``raw`` (bytes a server sent), as the standard
    ``smtplib.SMTP.getreply()`` reads them: the reference for any drop-in."""
    client = smtplib.SMTP(local_hostname="client.fastreply.test")
    client.file = io.BufferedReader(io.BytesIO(raw))
    out = []
    while True:
        try:
            out.append(_STD_GETREPLY(client))
        except smtplib.SMTPServerDisconnected:
            return out


_QUEUE_ID = re.compile(rb"(queued as )[0-9A-Za-z]+")


def mask(data: bytes) -> bytes:
    """``data`` with Postfix's queue ids masked (``queued as <queue id>``)."""
    return _QUEUE_ID.sub(rb"\1<queue id>", data)


def normalize(
    transcript: Iterable[tuple[str, tuple[int, bytes]]],
) -> list[tuple[str, tuple[int, bytes]]]:
    """A transcript with the one thing that differs between two runs of the
    same session on the same server masked: Postfix's queue id in the reply
    to the end of a message (``250 2.0.0 Ok: queued as 4dN2Lq1Xz6z9t``)."""
    return [(line, (code, mask(message))) for line, (code, message) in transcript]
