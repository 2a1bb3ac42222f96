"""A real Postfix on 127.0.0.1: the drop-ins must get exactly what the
standard smtplib gets, and the tracker must match and accept every reply.

The server is Debian's postfix, installed, configured and started by
``ci/postfix.sh``, which prints ``FASTREPLY_POSTFIX=127.0.0.1:PORT``; these
tests talk to the address in that variable.  ``.ci/run`` always runs the
script and exports the variable (and fails if the server cannot be set up),
so in CI these tests always run (and with FASTREPLY_REQUIRE_SERVERS=1 set,
a missing variable fails them instead).  Without the variable (a developer's
machine where the script was not run) they are skipped, saying why:

    eval "export $(sudo bash ci/postfix.sh | tail -1)"
    python -m pytest tests/test_postfix.py

The session (``tests/sessions.py``): greeting, EHLO, MAIL, RCPT good /
unknown user / relay denied, DATA and end of data, RSET, VRFY, NOOP, HELP,
an unknown command, a pipelined MAIL+RCPT+RCPT+DATA batch and its message,
QUIT.  Run through the standard ``smtplib.SMTP``, through
``fastreply.smtplib.SMTP`` (with each parser implementation), through the
standard class while ``fastreply.smtplib.patch()`` is in effect, and (the
standard client's writes replayed) over asyncio streams with
``fastreply.aio.read_reply()``.
"""

from __future__ import annotations

import importlib
import os
import smtplib
from types import ModuleType

import pytest

import sessions
from fastreply import ReplyParser
from fastreply.commands import Command
from fastreply.tables import MODERN
from fastreply.tracker import TrackedReply

pytestmark = pytest.mark.server

VARIABLE = "FASTREPLY_POSTFIX"

# What this Postfix answers, step by step (ci/postfix.sh's configuration).
# Postfix has no HELP command: HELP and XYZZY both get "command not
# recognized" (500 5.5.2 from Postfix 3.7; 502 from some other versions).
EXPECTED_CODES: list[tuple[str, set[int]]] = [
    (sessions.GREETING, {220}),
    ("ehlo client.fastreply.test", {250}),
    ("mail FROM:<fastreply-test@fastreply.test>", {250}),
    ("rcpt TO:<fastreply-test@fastreply.test>", {250}),
    ("rcpt TO:<no-such-user@fastreply.test>", {550}),
    ("rcpt TO:<someone@example.com>", {554}),
    ("data", {354}),
    (".", {250}),
    ("rset", {250}),
    ("vrfy fastreply-test@fastreply.test", {250, 252}),
    ("noop", {250}),
    ("help", {500, 502}),
    ("XYZZY", {500, 502}),
    ("MAIL FROM:<fastreply-test@fastreply.test>", {250}),
    ("RCPT TO:<fastreply-test@fastreply.test>", {250}),
    ("RCPT TO:<no-such-user@fastreply.test>", {550}),
    ("DATA", {354}),
    (".", {250}),
    ("quit", {221}),
]


@pytest.fixture(scope="module")
def postfix() -> tuple[str, int]:
    """(host, port) of the Postfix that ci/postfix.sh started."""
    value = os.environ.get(VARIABLE)
    if not value:
        if os.environ.get("FASTREPLY_REQUIRE_SERVERS"):
            pytest.fail(f"{VARIABLE} is not set (and FASTREPLY_REQUIRE_SERVERS is): "
                        "run ci/postfix.sh and export the line it prints")
        pytest.skip(
            f"{VARIABLE} is not set: run `bash ci/postfix.sh` (as root) and export the "
            "FASTREPLY_POSTFIX=host:port line it prints (.ci/run always does)"
        )
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        pytest.fail(f"{VARIABLE} must be host:port, not {value!r}")
    return host, int(port)


@pytest.fixture(scope="module")
def fsmtplib() -> ModuleType:
    """fastreply.smtplib (imported here, so that the tests of the standard
    class alone still run if the drop-in does not import)."""
    return importlib.import_module("fastreply.smtplib")


@pytest.fixture(scope="module")
def standard(postfix: tuple[str, int]) -> sessions.Session:
    """The session through the standard smtplib.SMTP: the reference."""
    return sessions.run_session(smtplib.SMTP, *postfix)


def drop_in_class(fsmtplib: ModuleType, impl: ModuleType) -> type[smtplib.SMTP]:
    cls: type[smtplib.SMTP] = type("SMTP", (fsmtplib.SMTP,), {"parser": impl.ReplyParser})
    return cls


@pytest.fixture
def drop_in(postfix: tuple[str, int], fsmtplib: ModuleType, impl: ModuleType) -> sessions.Session:
    """The session through fastreply.smtplib.SMTP, parsing with ``impl``."""
    return sessions.run_session(drop_in_class(fsmtplib, impl), *postfix)


@pytest.fixture
def patched(postfix: tuple[str, int], fsmtplib: ModuleType, impl: ModuleType) -> sessions.Session:
    """The session through the standard class with patch() in effect."""
    assert not fsmtplib.is_patched()
    with fsmtplib.patched(impl.ReplyParser):
        assert smtplib.SMTP.getreply is fsmtplib.getreply
        session = sessions.run_session(smtplib.SMTP, *postfix)
    assert not fsmtplib.is_patched()
    assert smtplib.SMTP.__dict__["getreply"].__module__ == "smtplib"
    return session




# -- the server is what the tests need ------------------------------------------------


def test_postfix_answers_the_session_as_configured(standard: sessions.Session) -> None:
    # (compared without case: smtplib wrote "mail FROM:", 3.13.15 writes "mail from:")
    sent = [line.lower() for line, _ in standard.transcript]
    assert sent == [line.lower() for line, _ in EXPECTED_CODES]
    for (line, (code, message)), (_, allowed) in zip(standard.transcript, EXPECTED_CODES):
        assert code in allowed, (line, code, message)
    replies = dict(
        (line.lower(), message) for line, (_code, message) in standard.transcript if line != "."
    )
    assert b"Relay access denied" in replies["rcpt to:<someone@example.com>"]
    assert b"User unknown" in replies["rcpt to:<no-such-user@fastreply.test>"]
    for keyword in ("pipelining", "vrfy", "enhancedstatuscodes", "size"):
        assert keyword in standard.features, standard.features


def test_standard_replies_are_the_raw_bytes_read_by_the_standard_getreply(
    standard: sessions.Session,
) -> None:
    # The recording is faithful: the standard getreply() over the raw bytes
    # gives back what the standard client got on the socket.
    assert sessions.std_replies(standard.received) == [r for _, r in standard.transcript]


# -- the drop-ins get exactly what the standard class gets -----------------------------


def check_same(session: sessions.Session, standard: sessions.Session) -> None:
    # Exactly what the standard getreply() makes of the bytes this server sent
    # on this connection (no masking at all) ...
    assert [r for _, r in session.transcript] == sessions.std_replies(session.received)
    # ... and the same session as the standard class's, up to the queue id.
    assert sessions.normalize(session.transcript) == sessions.normalize(standard.transcript)
    assert session.features == standard.features
    # The client sent the very same bytes.
    assert session.sent == standard.sent


def test_drop_in_same_replies_as_standard(
    drop_in: sessions.Session, standard: sessions.Session
) -> None:
    check_same(drop_in, standard)


def test_patched_standard_class_same_replies(
    patched: sessions.Session, standard: sessions.Session
) -> None:
    check_same(patched, standard)


# -- asyncio: read_reply() over the same conversation ---------------------------------


def test_aio_read_reply_same_replies(
    postfix: tuple[str, int], standard: sessions.Session, impl: ModuleType
) -> None:
    # The standard client's writes, replayed over asyncio streams; every reply
    # read with fastreply.aio.read_reply().
    script = sessions.client_script(standard)
    assert sum(count for _, count in script) == len(standard.transcript)
    replies = sessions.run_aio_session(*postfix, script, parser=impl.ReplyParser)
    assert [(r.code, sessions.mask(sessions.smtplib_message(r))) for r in replies] == [
        reply for _, reply in sessions.normalize(standard.transcript)
    ]
    # Lossless: the raw replies are the server's bytes, byte for byte.
    assert sessions.mask(b"".join(r.raw for r in replies)) == sessions.mask(standard.received)


# -- the tracker matches and accepts every reply ----------------------------------------


def check_tracked(session: sessions.Session, chunk: int | None = None) -> list[TrackedReply]:
    events = session.events
    if chunk is not None:
        # The same conversation with the server's bytes cut into small pieces.
        pieces = []
        for kind, data in events:
            if kind == "recv":
                pieces += [(kind, data[i : i + chunk]) for i in range(0, len(data), chunk)]
            else:
                pieces.append((kind, data))
        events = pieces
    tracked, tracker = sessions.track(events, MODERN)
    assert len(tracked) == len(session.transcript)
    mismatches = []
    for item, (line, (code, message)) in zip(tracked, session.transcript):
        assert not item.unsolicited, (line, item)
        assert item.command is sessions.command_of(line), (line, item.command)
        assert item.reply.code == code
        assert sessions.smtplib_message(item.reply) == message
        assert item.verdict is not None
        if not item.verdict.expected:
            mismatches.append((line, str(item.verdict), item.reply.raw))
    assert not mismatches, f"replies the MODERN table does not expect: {mismatches}"
    assert tracker.pending == ()
    assert tracker.parser.buffered == 0
    assert tracker.unsolicited == 0
    assert tracker.replies_matched == len(session.transcript)
    return tracked


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_tracker_matches_standard_session(standard: sessions.Session, chunk: int | None) -> None:
    check_tracked(standard, chunk)


def test_tracker_matches_drop_in_session(drop_in: sessions.Session) -> None:
    check_tracked(drop_in)


def test_pipelined_batch_matched_in_order(standard: sessions.Session) -> None:
    tracked = check_tracked(standard)
    # The batch: the last MAIL and what follows it, up to QUIT.
    start = max(i for i, item in enumerate(tracked) if item.command is Command.MAIL)
    batch = [(item.command, item.reply.code) for item in tracked[start:-1]]
    assert batch == [
        (Command.MAIL, 250),
        (Command.RCPT, 250),
        (Command.RCPT, 550),
        (Command.DATA, 354),
        (Command.DATA_END, 250),
    ]
    # The client wrote the four commands at once, and the server's bytes
    # between that write and the message hold exactly the four replies.
    batch_write = (
        b"MAIL FROM:<fastreply-test@fastreply.test>\r\nRCPT TO:<fastreply-test@fastreply.test>\r\n"
        b"RCPT TO:<no-such-user@fastreply.test>\r\nDATA\r\n"
    )
    events = standard.events
    (at,) = [i for i, (kind, data) in enumerate(events) if kind == "sent" and data == batch_write]
    after = next(i for i in range(at + 1, len(events)) if events[i][0] == "sent")
    between = b"".join(data for kind, data in events[at + 1 : after] if kind == "recv")
    assert [r.code for r in ReplyParser().feed(between)] == [250, 250, 550, 354]
