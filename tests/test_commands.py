"""Command: what a reply answers, from a command line or a name."""

from __future__ import annotations

import pytest

from fastreply.commands import Command


def test_commands_are_dense() -> None:
    assert [c.value for c in Command] == list(range(len(Command)))
    assert Command.UNKNOWN == len(Command) - 1


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"mail from:<a@b> SIZE=9", Command.MAIL),
        (b"MAIL FROM:<a@b>\r\n", Command.MAIL),
        ("rcpt TO:<x@y>", Command.RCPT),
        (b"EHLO", Command.EHLO),
        (b"ehlo client.example.org\n", Command.EHLO),
        (b"  QUIT  ", Command.QUIT),
        (b"data\r\n", Command.DATA),
        (b".\r\n", Command.DATA_END),
        (b"BDAT 1000", Command.BDAT),
        (b"bdat 0 last\r\n", Command.BDAT_LAST),
        (b"BDAT 10 LASTLY", Command.BDAT),
        (b"BDAT", Command.BDAT),
        (b"starttls", Command.STARTTLS),
        (b"AUTH PLAIN dGVzdA==", Command.AUTH),
        (b"LHLO x", Command.LHLO),
        (b"ETRN @example.org", Command.ETRN),
        (b"XCLIENT NAME=x", Command.UNKNOWN),
        (b"", Command.UNKNOWN),
        (b"\r\n", Command.UNKNOWN),
        (b"CONNECT", Command.UNKNOWN),  # not a verb a client sends
        (b"DATA_END", Command.UNKNOWN),
        (b"MAIL\xff FROM", Command.UNKNOWN),
        (bytearray(b"NOOP"), Command.NOOP),
        (memoryview(b"RSET"), Command.RSET),
        # Words are split on ASCII white space only, as a server splits them;
        # str and bytes alike.
        (b"mail\tFROM:<a@b>", Command.MAIL),
        (b"MAIL\xa0FROM:<a@b>", Command.UNKNOWN),
        ("MAIL\u00a0FROM:<a@b>", Command.UNKNOWN),
        ("QUIT\u2003", Command.UNKNOWN),
        ("vrfy \udcff", Command.VRFY),
        ("\u00df", Command.UNKNOWN),
    ],
)
def test_from_line(line: bytes | str, command: Command) -> None:
    assert Command.from_line(line) is command


def test_from_line_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="bytes or str, not int"):
        Command.from_line(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "command"),
    [("connect", Command.CONNECT), ("received data", Command.DATA_END),
     ("BDAT LAST", Command.BDAT_LAST), ("data-end", Command.DATA_END), ("Mail", Command.MAIL)],
)
def test_from_name(name: str, command: Command) -> None:
    assert Command.from_name(name) is command


def test_from_name_unknown() -> None:
    with pytest.raises(ValueError, match="unknown command name 'MAILX'.*known: CONNECT, HELO"):
        Command.from_name("MAILX")


def test_every_member_is_true_and_still_its_number() -> None:
    """``if item.command:`` tells the greeting (CONNECT, value 0) from an
    unsolicited reply (None); CONNECT still equals and indexes as 0."""
    assert all(bool(command) for command in Command)
    assert Command.CONNECT == 0 and [10, 11][Command.CONNECT] == 10


def test_every_verb_is_read_back() -> None:
    """Each command a client writes as a verb is read back from its line."""
    events = (Command.CONNECT, Command.DATA_END, Command.BDAT_LAST, Command.UNKNOWN)
    for command in Command:
        if command not in events:
            assert Command.from_line(command.name.lower() + " x") is command
