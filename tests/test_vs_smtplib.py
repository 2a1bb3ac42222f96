"""On well-formed streams, each reply's code and text equal what the standard
library's smtplib.SMTP.getreply() returns for the same bytes."""

from __future__ import annotations

import io
import smtplib
from types import ModuleType

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import chunkings


def smtplib_replies(data: bytes) -> list[tuple[int, bytes]]:
    client = smtplib.SMTP()
    client.file = io.BufferedReader(io.BytesIO(data))  # type: ignore[assignment]
    out = []
    while True:
        try:
            out.append(client.getreply())
        except smtplib.SMTPServerDisconnected:
            return out


def stripped(text_lines: tuple[bytes, ...]) -> bytes:
    """smtplib strips spaces, tabs, CR and LF around each line's text."""
    return b"\n".join(line.strip(b" \t\r\n") for line in text_lines)


text = st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))
reply = st.builds(
    lambda code, texts, end: b"".join(b"%d-" % code + t + end for t in texts[:-1])
    + b"%d " % code + texts[-1] + end,
    st.sampled_from([211, 214, 220, 221, 235, 250, 251, 252, 334, 354, 421, 450, 451, 452,
                     500, 501, 502, 503, 504, 530, 550, 551, 552, 553, 554]),
    st.lists(text, min_size=1, max_size=12),
    st.sampled_from([b"\r\n", b"\n"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(reply, min_size=1, max_size=20).map(b"".join))
def test_same_as_smtplib(impl: ModuleType, data: bytes) -> None:
    expected = smtplib_replies(data)
    replies = impl.ReplyParser().feed(data)
    assert [(r.code, stripped(r.lines)) for r in replies] == expected


SESSION = (
    b"220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n"
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
    b"250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
    b"250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
    b"250 2.1.0 Ok\r\n"
    b"250 2.1.5 Ok\r\n"
    b"550 5.1.1 <nobody@mx.example.org>: Recipient address rejected: User unknown\r\n"
    b"554 5.7.1 <a@elsewhere.example>: Relay access denied\r\n"
    b"354 End data with <CR><LF>.<CR><LF>\r\n"
    b"250 2.0.0 Ok: queued as 4F2A31C0E1\r\n"
    b"214 2.0.0 Commands: AUTH BDAT DATA EHLO ETRN HELO HELP MAIL NOOP QUIT RCPT RSET\r\n"
    b"252 2.0.0 postmaster\r\n"
    b"502 5.5.2 Error: command not recognized\r\n"
    b"221 2.0.0 Bye\r\n"
)


def test_postfix_like_session_in_every_chunking(impl: ModuleType) -> None:
    expected = smtplib_replies(SESSION)
    assert len(expected) == 12
    for how, chunks in chunkings(SESSION):
        parser = impl.ReplyParser()
        got = [r for chunk in chunks for r in parser.feed(chunk)]
        parser.close()
        assert [(r.code, r.text) for r in got] == expected, how
