"""Match replies to the commands they answer, for pipelined conversations.

An SMTP server answers commands in the order it received them (RFC 2920
section 3.2), so a client that pipelines only has to remember what it sent.
:class:`ReplyTracker` does that bookkeeping: tell it each command as it is
sent, hand it each reply as it arrives, and it says which command the reply
answers and whether the table allows that code for it.

>>> from fastreply.tracker import ReplyTracker
>>> tracker = ReplyTracker()            # the greeting is expected first
>>> for line in (b"EHLO me", b"MAIL FROM:<a@example.org>", b"RCPT TO:<b@example.org>", b"DATA"):
...     _ = tracker.sent(line)
>>> for item in tracker.feed(b"220 mx ESMTP\\r\\n250 mx\\r\\n250 2.1.0 Ok\\r\\n"
...                          b"550 5.1.1 unknown\\r\\n554 5.5.1 no valid recipients\\r\\n"):
...     print(item.command.name, item.reply.code, item.verdict.status)
CONNECT 220 expected
EHLO 250 expected
MAIL 250 expected
RCPT 550 expected
DATA 554 expected

What it knows about the protocol:

- DATA answered by 354 is followed by the reply to the end of the message
  (``DATA_END``): the tracker expects it by itself.  Telling it about the
  final ``.`` as well (``sent(b".")``) is harmless.
- LMTP (``lmtp=True``, RFC 2033 section 4.2): the end of data, and
  ``BDAT ... LAST``, get one reply per recipient that was accepted.
- AUTH answered by 334 is followed by a continuation line from the client:
  the next raw line sent is taken as part of AUTH, whatever it looks like.
- A reply with no command waiting is *unsolicited*; 421 may come that way
  at any time (RFC 5321 section 3.8), anything else is a protocol error by
  the server.  Both are returned, flagged, never dropped.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple

from ._parser import ParserFactory, Reply, ReplyParser
from .commands import Command
from .tables import DEFAULT_TABLE, ReplyTable, Verdict

if TYPE_CHECKING:
    from .classification import Classification

__all__ = ["ReplyTracker", "TrackedReply"]


class TrackedReply(NamedTuple):
    """A reply with the command it answers and the table's verdict.

    ``command`` and ``verdict`` are None for an unsolicited reply (one that
    arrived while no command was waiting for an answer)."""

    reply: Reply
    command: Command | None
    verdict: Verdict | None

    @property
    def unsolicited(self) -> bool:
        """The reply arrived while no command was waiting for one."""
        return self.command is None

    @property
    def expected(self) -> bool:
        """The reply answers a command and its table allows the code.  An
        unsolicited 421 (the server closing) counts as expected."""
        if self.verdict is None:
            return self.reply.code == 421
        return self.verdict.expected

    @property
    def classification(self) -> Classification:
        """What the reply means for the sender, for the command it answers
        (:func:`fastreply.classify`; computed when asked for)."""
        from .classification import classify

        result: Classification = classify(self.reply, self.command)
        return result


class _Pending:
    """A command waiting for its reply (or replies: LMTP end of data)."""

    __slots__ = ("command", "fanout", "auto")

    def __init__(self, command: Command, fanout: bool = False, auto: bool = False) -> None:
        self.command = command
        # LMTP: expands, when its first reply arrives, into one expectation
        # per accepted recipient.
        self.fanout = fanout
        # Expected by the tracker itself (the end of data after a 354), not
        # yet told with sent().
        self.auto = auto


class ReplyTracker:
    """Remembers the commands sent and matches each reply to one, in order.

    ``table`` judges every reply (default: :data:`fastreply.tables.MODERN`);
    ``lmtp`` selects LMTP's one-reply-per-recipient rule; ``greeting`` says
    whether the server's greeting is still to come (True for a connection
    just opened).  ``parser`` makes the parser :meth:`feed` uses, called
    with no arguments (default :class:`~fastreply.ReplyParser`;
    ``functools.partial(ReplyParser, strict=True)``, say).
    """

    def __init__(
        self,
        table: ReplyTable = DEFAULT_TABLE,
        *,
        lmtp: bool = False,
        greeting: bool = True,
        parser: ParserFactory = ReplyParser,
    ) -> None:
        if not isinstance(table, ReplyTable):
            raise TypeError(f"table must be a ReplyTable, not {type(table).__name__}")
        self.table = table
        self.lmtp = lmtp
        self.parser = parser()
        self._pending: deque[_Pending] = deque()
        if greeting:
            self._pending.append(_Pending(Command.CONNECT))
        self._accepted = 0  # recipients accepted in the current transaction
        self._auth_continues = False
        #: Count of commands told with :meth:`sent`.
        self.commands_sent = 0
        #: Count of replies matched to a command.
        self.replies_matched = 0
        #: Count of unsolicited replies (421 included).
        self.unsolicited = 0

    # -- the client side ------------------------------------------------

    def sent(self, command: Command | bytes | bytearray | str) -> Command:
        """Record one command as sent: a :class:`Command` or the command line
        itself (``b"RCPT TO:<b@example.org>\\r\\n"``).  Returns the command
        it was taken as."""
        if isinstance(command, Command):
            cmd = command
            self._auth_continues = False
        elif isinstance(command, (bytes, bytearray, str)):
            if self._auth_continues:
                cmd = Command.AUTH  # a SASL response line, not a verb
                self._auth_continues = False
            else:
                cmd = Command.from_line(command)
        else:
            raise TypeError(
                f"sent() takes a Command or a command line, not {type(command).__name__}"
            )
        self.commands_sent += 1
        if cmd is Command.DATA_END:
            for pending in self._pending:
                if pending.auto:
                    pending.auto = False  # the "." the tracker already expects
                    return cmd
        self._pending.append(_Pending(cmd, fanout=self.lmtp and cmd is Command.BDAT_LAST))
        return cmd

    @property
    def pending(self) -> tuple[Command, ...]:
        """The commands still waiting for a reply, oldest first."""
        return tuple(p.command for p in self._pending)

    @property
    def sasl_response_next(self) -> bool:
        """AUTH got a 334: the next line :meth:`sent` is a SASL response,
        taken as part of AUTH whatever it looks like (an empty line too)."""
        return self._auth_continues

    @property
    def end_of_data_untold(self) -> bool:
        """DATA got a 354: the tracker expects the reply to the end of the
        message by itself, and the final ``.`` was not told with
        :meth:`sent` yet (telling it now expects nothing more)."""
        return any(p.auto for p in self._pending)

    # -- the server side ------------------------------------------------

    def received(self, reply: Reply) -> TrackedReply:
        """Match one reply to the oldest command waiting for it."""
        command = self._match(reply.code)
        if command is None:
            return TrackedReply(reply, None, None)
        return TrackedReply(reply, command, self.table.check(command, reply))

    def _match(self, code: int) -> Command | None:
        """The command a reply with ``code`` answers (None: unsolicited), and
        what the reply changes in the conversation."""
        if not self._pending:
            self.unsolicited += 1
            return None
        pending = self._pending[0]
        command = pending.command
        if pending.fanout:
            # LMTP: one reply per accepted recipient (at least one).
            pending.fanout = False
            for _ in range(self._accepted - 1):
                self._pending.insert(1, _Pending(command))
        if command is Command.AUTH and code == 334:
            self._auth_continues = True
        self._pending.popleft()
        self._advance(command, code)
        self.replies_matched += 1
        return command

    def feed(self, data: bytes | bytearray | memoryview) -> list[TrackedReply]:
        """Parse the next bytes from the server and match the replies they
        complete.  Parser errors propagate (see :class:`~fastreply.ReplyError`)
        with the replies completed before the error still on the exception,
        unmatched.

        The replies are checked against the table inside the parse loop
        (``feed_checked()``), each against the command waiting for it now;
        a reply that changes what the next ones answer (a 354 to DATA, a
        reply to LMTP's end of data) leaves those to be checked one by one.
        """
        expected = bytearray(pending.command for pending in self._pending)
        replies, unexpected = self.parser.feed_checked(data, self.table, expected)
        refused = set(unexpected)
        table = self.table
        out = []
        for index, reply in enumerate(replies):
            command = self._match(reply.code)
            if command is None:
                out.append(TrackedReply(reply, None, None))
            elif index < len(expected) and command == expected[index]:
                out.append(TrackedReply(reply, command, Verdict(
                    command, reply.code, index not in refused, table.name)))
            else:
                out.append(TrackedReply(reply, command, table.check(command, reply)))
        return out

    def _advance(self, command: Command, code: int) -> None:
        """What a reply changes in the conversation."""
        if command in (Command.MAIL, Command.RSET, Command.HELO, Command.EHLO, Command.LHLO):
            self._accepted = 0
        elif command is Command.RCPT and code // 100 == 2:
            self._accepted += 1
        elif command is Command.DATA and code == 354:
            if not (self._pending and self._pending[0].command is Command.DATA_END):
                self._pending.appendleft(_Pending(Command.DATA_END, fanout=self.lmtp, auto=True))
            elif self.lmtp:
                self._pending[0].fanout = True
        elif command in (Command.DATA_END, Command.BDAT_LAST) and not self._pending_for(command):
            self._accepted = 0

    def _pending_for(self, command: Command) -> bool:
        return bool(self._pending) and self._pending[0].command is command

    def match_all(self, replies: Iterable[Reply]) -> list[TrackedReply]:
        """:meth:`received` for each reply, in order."""
        return [self.received(reply) for reply in replies]
