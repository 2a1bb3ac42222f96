"""SMTP commands, as far as reply validation needs to tell them apart.

A reply is judged against the command it answers.  :class:`Command` names
every command of RFC 821, RFC 5321 and the extensions fastreply knows, plus
three events that are answered like commands: the server's greeting
(``CONNECT``), the end of a message sent with DATA (``DATA_END``, the reply
after the final ``.``) and the last chunk of a BDAT transfer (``BDAT_LAST``).

>>> Command.from_line(b"mail from:<a@example.org> SIZE=9\\r\\n")
<Command.MAIL: 4>
>>> Command.from_line("BDAT 1000 LAST")
<Command.BDAT_LAST: 9>
"""

from __future__ import annotations

import enum

__all__ = ["Command"]


class Command(enum.IntEnum):
    """What a reply answers.  The values are dense (0 to ``len(Command) - 1``)
    so that tables can index arrays with them.

    Every member is true, ``CONNECT`` included although its value is 0 (it
    still equals 0 and indexes as 0): ``if item.command:`` tells a reply that
    answers a command, the greeting too, from an unsolicited one, whose
    command is None.  Test ``is None`` or compare with a member, never the
    value's truth."""

    CONNECT = 0  #: the greeting, sent when the connection opens
    HELO = 1
    EHLO = 2
    LHLO = 3  #: LMTP's EHLO (RFC 2033)
    MAIL = 4
    RCPT = 5
    DATA = 6  #: the DATA command itself (answered by 354 when it goes on)
    DATA_END = 7  #: the final "." after the message (RFC 5321 "received data")
    BDAT = 8  #: a BDAT chunk that is not the last (RFC 3030)
    BDAT_LAST = 9  #: ``BDAT n LAST``
    RSET = 10
    VRFY = 11
    EXPN = 12
    HELP = 13
    NOOP = 14
    QUIT = 15
    TURN = 16
    SEND = 17
    SOML = 18
    SAML = 19
    STARTTLS = 20  #: RFC 3207
    AUTH = 21  #: RFC 4954 (the command and its continuation lines)
    ETRN = 22  #: RFC 1985
    UNKNOWN = 23  #: anything else: a verb no table knows

    def __bool__(self) -> bool:
        return True

    @classmethod
    def from_line(cls, line: bytes | bytearray | memoryview | str) -> Command:
        """The command a client command line sends.

        Case-insensitive; arguments and a trailing CRLF (or LF) are allowed
        and ignored, except that ``BDAT <size> LAST`` gives
        :attr:`BDAT_LAST`.  A line holding only ``.`` (the end of a message)
        gives :attr:`DATA_END`.  Anything not recognised gives
        :attr:`UNKNOWN`, never an error.
        """
        if isinstance(line, (bytes, bytearray, memoryview)):
            data = bytes(line)
        elif isinstance(line, str):
            data = line.encode("utf-8", "surrogatepass")  # verbs are ASCII
        else:
            raise TypeError(
                f"from_line() takes bytes or str, not {type(line).__name__}"
            )
        # Words as a server reads them: separated by ASCII white space only.
        words = data.split(None, 3)
        if not words:
            return cls.UNKNOWN
        verb = words[0].upper()
        if verb == b"BDAT":
            return cls.BDAT_LAST if len(words) > 2 and words[2].upper() == b"LAST" else cls.BDAT
        if verb == b"." and len(words) == 1:
            return cls.DATA_END
        command = _VERBS.get(verb)
        return command if command is not None else cls.UNKNOWN

    @classmethod
    def from_name(cls, name: str) -> Command:
        """A command from its name as tables and the CLI write it:
        ``"MAIL"``, ``"mail"``, ``"connect"``, ``"received data"``,
        ``"data end"``, ``"BDAT LAST"``.  Raises :class:`ValueError` naming
        the known names when ``name`` is none of them."""
        key = "_".join(name.replace("-", " ").split()).upper()
        key = _NAME_ALIASES.get(key, key)
        try:
            return cls[key]
        except KeyError:
            known = ", ".join(c.name for c in cls)
            raise ValueError(f"unknown command name {name!r} (known: {known})") from None


# Verbs a client writes.  CONNECT, DATA_END, BDAT_LAST and UNKNOWN are not verbs.
_VERBS: dict[bytes, Command] = {
    c.name.encode("ascii"): c
    for c in Command
    if c not in (Command.CONNECT, Command.DATA_END, Command.BDAT_LAST, Command.UNKNOWN)
}

# Other spellings of the pseudo-commands (the RFC tables' own words among them).
_NAME_ALIASES = {
    "GREETING": "CONNECT",
    "BANNER": "CONNECT",
    "RECEIVED_DATA": "DATA_END",
    "END_OF_DATA": "DATA_END",
    "DOT": "DATA_END",
    ".": "DATA_END",
}
