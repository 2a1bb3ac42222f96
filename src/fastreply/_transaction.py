"""The sending engine: what to write to an SMTP server, and what its replies mean.

Sans-IO, in the manner of h11: :class:`TransactionEngine` never touches a
socket.  The caller queues messages (:meth:`~TransactionEngine.submit`) and
plain commands (:meth:`~TransactionEngine.command`), writes what
:meth:`~TransactionEngine.data_to_send` returns, and hands every reply the
server sends to :meth:`~TransactionEngine.receive`, which pairs it with the
command it answers and returns the items that are now finished.  The blocking
drop-in (:mod:`fastreply.smtplib`) and the asyncio client (:mod:`fastreply.aio`)
are thin adapters over it, and the tests drive it with byte scripts.

How a message goes out (RFC 5321, RFC 2920 pipelining, RFC 3030 chunking):

* With PIPELINING, MAIL, every RCPT and DATA go in one write; the message
  follows when DATA's ``354`` arrives, and the next message's MAIL, RCPT and
  DATA go in the same write as the end of this one (RFC 2920 section 3.1
  lets the message content start a group), so a busy connection needs one
  round trip a message.  Without PIPELINING, one command a round trip.
* With CHUNKING (and ``chunking=True``), the message goes in BDAT chunks,
  written once the replies to RCPT show a recipient was accepted (so a
  message nobody takes is never sent); the next message's MAIL and RCPT
  share the write.
* When no recipient is accepted the message is not sent: DATA is refused by
  the server, or, should it answer ``354`` anyway, only the final ``.`` is
  sent.  After a failed transaction the engine sends RSET, as the standard
  library's ``sendmail()`` does, so the connection stays usable.
* A ``421`` reply, or a reply with no command waiting for it, means the
  server is going away: the item it answered fails, and every other item
  fails with :class:`smtplib.SMTPServerDisconnected`; items whose message was
  not completely sent are marked :attr:`Transaction.retryable`.

Outcomes follow ``smtplib.SMTP.sendmail()`` exactly: MAIL needs 250, RCPT
250 or 251, DATA 354, the end of data 250; the failure is the exception the
standard library would raise (:class:`smtplib.SMTPSenderRefused`,
:class:`~smtplib.SMTPRecipientsRefused`, :class:`~smtplib.SMTPDataError`)
with the same arguments.  LMTP (``lmtp=True``): the end of data gets one
reply per accepted recipient (RFC 2033 section 4.2); recipients refused
there are added to :attr:`Transaction.refused`, and only when all of them
are refused does the transaction fail (:class:`~smtplib.SMTPDataError`, with
the first refusal).

Every reply is also checked against a :class:`~fastreply.tables.ReplyTable`
(the command it answers may or may not get that code); replies the table
does not expect are listed in :attr:`Transaction.unexpected`.  Replies are
anything with a ``code`` attribute: :class:`~fastreply.Reply` objects
straight from the parser, usually.
"""

from __future__ import annotations

import copy
import email.generator
import email.message
import email.utils
import io
import re
from collections import deque
from smtplib import (
    SMTPDataError,
    quoteaddr,
    SMTPNotSupportedError,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TypeVar

from .commands import Command
from .tables import DEFAULT_TABLE, ReplyTable

if TYPE_CHECKING:
    from .classification import Classification

__all__ = [
    "TransactionEngine",
    "Transaction",
    "Exchange",
    "Item",
    "command_line",
    "flatten_message",
    "stdlib_message",
    "dot_stuff",
    "normalize_line_endings",
    "quote_address",
]

#: The largest BDAT chunk the engine writes (bigger messages go in several).
BDAT_CHUNK = 1 << 20

# What each expected reply answers (the first element of an expectation).
_MAIL = 0
_RCPT = 1
_DATA = 2
_END = 3  # the end of data, or BDAT ... LAST
_BDAT = 4  # a BDAT chunk before the last
_RSET = 5  # the RSET after a failed transaction
_COMMAND = 6  # a plain command (Exchange)

# RFC 2920 section 3.1: these may only end a group of pipelined commands.
_GROUP_ENDERS = frozenset(
    {
        Command.CONNECT,
        Command.EHLO,
        Command.HELO,
        Command.LHLO,
        Command.DATA,
        Command.VRFY,
        Command.EXPN,
        Command.TURN,
        Command.QUIT,
        Command.NOOP,
        Command.STARTTLS,
        Command.AUTH,
        Command.HELP,
        Command.ETRN,
        Command.UNKNOWN,
    }
)

_CRLF = b"\r\n"
_DOT_LINE = re.compile(rb"(?m)^\.")
_BARE_LINE_END = re.compile(rb"\r\n|\r|\n")
_STRIP = b" \t\r\n"


def stdlib_message(reply: Any) -> bytes:
    """The message ``smtplib.SMTP.getreply()`` returns for a reply: the text
    of each line stripped of spaces, tabs, CR and LF, joined by LF."""
    lines = reply.lines
    if len(lines) == 1:
        return bytes(lines[0].strip(_STRIP))
    return b"\n".join([line.strip(_STRIP) for line in lines])


def dot_stuff(message: bytes) -> bytes:
    """The message as DATA sends it, exactly as ``smtplib.SMTP.data()`` does:
    a dot at the start of a line doubled, a CRLF added when the message does
    not end with one, then the final ``.`` line."""
    if message[:1] == b"." or b"\n." in message:
        message = _DOT_LINE.sub(b"..", message)
    if message[-2:] != _CRLF:
        return message + b"\r\n.\r\n"
    return message + b".\r\n"


def normalize_line_endings(message: bytes) -> bytes:
    """Every line end (CRLF, a bare LF, a bare CR) made CRLF, as RFC 5321
    requires of message content; a message that has only CRLF is returned
    as it is."""
    crlf = message.count(_CRLF)
    if message.count(b"\n") == crlf and message.count(b"\r") == crlf:
        return message
    return _BARE_LINE_END.sub(_CRLF, message)


# A plain mailbox that needs no quoting: a dot-atom local part, an "@" and
# a domain of letters, digits, hyphens and dots (what email.utils.parseaddr
# gives back unchanged).
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


def quote_address(address: str) -> str:
    """``<address>`` for the MAIL and RCPT commands, exactly as
    ``smtplib.quoteaddr()`` makes it (``"Name <a@example.org>"`` gives
    ``<a@example.org>``), without its cost for plain addresses."""
    try:
        return _quoted[address]
    except (KeyError, TypeError):
        pass
    if isinstance(address, str) and _PLAIN_ADDRESS.fullmatch(address):
        quoted = f"<{address}>"
    else:
        quoted = quoteaddr(address)
    if len(_quoted) >= _QUOTED_MAX:
        _quoted.clear()
    _quoted[address] = quoted
    return quoted


def flatten_message(
    msg: email.message.Message,
    sender: str | None = None,
    recipients: str | Sequence[str] | None = None,
    smtputf8: bool = False,
) -> tuple[str, list[str], bytes, tuple[str, ...]]:
    """What ``smtplib.SMTP.send_message()`` sends for ``msg``: the sender
    (the Sender, else the From header; Resent-Sender/Resent-From when the
    message has one Resent- block), the recipients (To, Bcc and Cc, or their
    Resent- forms), the message flattened with CRLF line ends and without
    its Bcc headers, and the extra MAIL parameters (SMTPUTF8 and
    BODY=8BITMIME when an address is not ASCII, which ``smtputf8`` must
    allow: :class:`smtplib.SMTPNotSupportedError` otherwise)."""
    resent = msg.get_all("Resent-Date")
    if resent is None:
        prefix = ""
    elif len(resent) == 1:
        prefix = "Resent-"
    else:
        raise ValueError("message has more than one 'Resent-' header block")
    if sender is None:
        field = msg[prefix + "Sender"] if (prefix + "Sender") in msg else msg[prefix + "From"]
        sender = email.utils.getaddresses([field])[0][1]
    if recipients is None:
        fields = [f for f in (msg[prefix + "To"], msg[prefix + "Bcc"], msg[prefix + "Cc"]) if f is not None]
        recipients = [address for _, address in email.utils.getaddresses(fields)]
    elif isinstance(recipients, str):
        recipients = [recipients]
    copied = copy.copy(msg)
    del copied["Bcc"]
    del copied["Resent-Bcc"]
    international = not "".join([sender, *recipients]).isascii()
    if international and not smtputf8:
        raise SMTPNotSupportedError(
            "One or more source or delivery addresses require internationalized email "
            "support, but the server does not advertise the required SMTPUTF8 capability"
        )
    with io.BytesIO() as out:
        if international:
            policy: Any = msg.policy
            generator = email.generator.BytesGenerator(out, policy=policy.clone(utf8=True))
        else:
            generator = email.generator.BytesGenerator(out)
        generator.flatten(copied, linesep="\r\n")
        data = out.getvalue()
    extra = ("SMTPUTF8", "BODY=8BITMIME") if international else ()
    return sender, list(recipients), data, extra


# Addresses quoted lately (senders repeat, recipients often do).
_quoted: dict[str, str] = {}
_QUOTED_MAX = 4096


def command_line(line: bytes | str) -> bytes:
    """A command line to send: CRLF added when missing; CR or LF inside
    refused (``ValueError``), as ``smtplib`` refuses them, so that one
    argument cannot smuggle in another command."""
    if type(line) is not bytes:
        line = line.encode("ascii") if isinstance(line, str) else bytes(line)
    if line[-2:] == _CRLF:
        line = line[:-2]
    if b"\r" in line or b"\n" in line:
        raise ValueError(f"command line contains prohibited newline characters: {line!r}")
    return line + _CRLF


def _commands_for(chunking: bool) -> tuple[Command, ...]:
    """What each kind of expected reply answers, indexed by kind."""
    return (
        Command.MAIL,
        Command.RCPT,
        Command.DATA,
        Command.BDAT_LAST if chunking else Command.DATA_END,
        Command.BDAT,
        Command.RSET,
    )


class Item:
    """Something queued on the engine: a :class:`Transaction` or an
    :class:`Exchange`.  ``done`` is set once it is finished, ``error`` when
    it failed; ``waiter`` is free for the front end (a future, say)."""

    __slots__ = ("done", "error", "waiter", "retryable", "unexpected", "_state")

    def __init__(self) -> None:
        self.done = False
        #: The exception the standard library would raise for this item, or
        #: None when it succeeded.
        self.error: BaseException | None = None
        self.waiter: Any = None
        #: Failed before anything of it could take effect on the server (not
        #: written, or refused by a closing server before its message was
        #: sent): safe to send again on another connection.
        self.retryable = False
        #: ``(command, reply)`` for each reply the table does not expect.
        self.unexpected: tuple[tuple[Command, Any], ...] = ()
        self._state = _QUEUED

    @property
    def written(self) -> bool:
        """Whether any of it has been handed out by ``data_to_send()``."""
        return self._state != _QUEUED


# Item states.
_QUEUED = 0  # nothing written
_ENVELOPE = 1  # envelope written, its replies awaited
_CONTENT = 2  # the message written (or being written), its end awaited
_FINISHED = 3


class Exchange(Item):
    """A plain command (NOOP, RSET, QUIT, VRFY, ...) and its reply."""

    __slots__ = ("line", "command", "reply")

    def __init__(self, line: bytes, command: Command) -> None:
        super().__init__()
        self.line = line
        self.command = command
        self.reply: Any = None

    def __repr__(self) -> str:
        return f"<Exchange {self.line!r} reply={self.reply!r}>"


class Transaction(Item):
    """One message: its envelope, its content, and how it ended.

    Made by :meth:`TransactionEngine.submit`.  Once :attr:`done`:
    :attr:`mail_reply`, :attr:`rcpt_replies` (one per recipient, in order;
    None where no reply came), :attr:`data_reply` (DATA's ``354`` or its
    refusal; None with BDAT), :attr:`end_replies` (the reply to the end of
    data, or with LMTP one per accepted recipient), :attr:`refused`
    (recipient -> reply, for each one refused) and :attr:`error` (None when
    the message was accepted).
    """

    __slots__ = (
        "sender",
        "recipients",
        "message",
        "mail_line",
        "rcpt_lines",
        "binary",
        "mail_reply",
        "rcpt_replies",
        "data_reply",
        "end_replies",
        "refused",
        "accepted",
        "sent",
        "content_sent",
        "withdrawn",
        "decided_by",
        "_failed",
    )

    def __init__(
        self,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        mail_line: bytes,
        rcpt_lines: Sequence[bytes],
        binary: bool = False,
    ) -> None:
        super().__init__()
        self.sender = sender
        self.recipients = tuple(recipients)
        self.message = message
        self.mail_line = mail_line
        self.rcpt_lines = tuple(rcpt_lines)
        #: BODY=BINARYMIME: the message may only go in BDAT chunks.
        self.binary = binary
        self.mail_reply: Any = None
        self.rcpt_replies: list[Any] = []
        self.data_reply: Any = None
        self.end_replies: list[Any] = []
        self.refused: dict[str, Any] = {}
        #: Recipients accepted at RCPT (in order).
        self.accepted: list[str] = []
        #: Bytes of the message written in BDAT chunks so far.
        self.sent = 0
        #: The whole message (with the final ``.``, or the last BDAT chunk)
        #: has been handed out by ``data_to_send()``.
        self.content_sent = False
        #: Given up by its sender (:meth:`TransactionEngine.cancel`): its
        #: content will not be sent.
        self.withdrawn = False
        #: ``(command, reply)``: the reply that decided how the message ended
        #: (the end of data when it was accepted), or None when none did
        #: (the connection ended first).
        self.decided_by: tuple[Command | None, Any] | None = None
        self._failed = False  # the outcome is decided (an error), replies still drain


    def classification(self, recipient: str | None = None, *, provider: str | None = None,
                       classifier: Any = None) -> Classification | None:
        """What happened, as :func:`fastreply.classify` reads it: for the
        message (the reply that decided its end), or for one ``recipient``
        (its refusal at RCPT, or with LMTP at the end of data; else the
        message's).  None when no reply decided (the connection ended
        first).  ``classifier``: a :class:`~fastreply.classification.Classifier`
        of your own rules (default: the shipped ones)."""
        decided = self.decided_by
        if recipient is not None:
            refusal = self.refused.get(recipient)
            if refusal is None and len(self.end_replies) > 1 and recipient in self.accepted:
                # LMTP: each recipient accepted at RCPT has its own end of data.
                decided = (Command.DATA_END, self.end_replies[self.accepted.index(recipient)])
            elif refusal is not None:
                index = self.recipients.index(recipient)
                command = (
                    Command.RCPT
                    if index < len(self.rcpt_replies) and self.rcpt_replies[index] is refusal
                    else Command.DATA_END
                )
                decided = (command, refusal)
        if decided is None:
            return None
        if classifier is None:
            from .classification import classify

            return classify(decided[1], decided[0], provider=provider)
        result: Classification = classifier.classify(decided[1], decided[0], provider=provider)
        return result

    def __repr__(self) -> str:
        state = "done" if self.done else ("written" if self.written else "queued")
        return (
            f"<Transaction {self.sender!r} -> {len(self.recipients)} recipient(s), "
            f"{len(self.message)} bytes, {state}, error={self.error!r}>"
        )


ItemT = TypeVar("ItemT", Transaction, Exchange)


class TransactionEngine:
    """The state of one SMTP connection, after the greeting and EHLO, as far
    as sending goes.

    Args:
        pipelining: the server announced PIPELINING and the client may use it.
        chunking: the server announced CHUNKING and the client may use BDAT.
        lmtp: the peer is an LMTP server (one reply per recipient at the end
            of data).
        table: the table every reply is checked against.
        message_of: the message text of a reply for the exceptions, as the
            standard library's ``getreply()`` would give it (default:
            :func:`stdlib_message`).
        smtplib_spelling: spell DATA and RSET as ``smtplib`` does
            (``data``/``rset``), so the drop-in sends the standard bytes.
    """

    __slots__ = (
        "pipelining",
        "chunking",
        "lmtp",
        "table",
        "_message_of",
        "_data_line",
        "_rset_line",
        "_queue",
        "_expect",
        "_out",
        "_blocked",
        "_withdrawing",
        "closing",
        "_allows",
        "_commands",
        "sent_bytes",
    )

    def __init__(
        self,
        *,
        pipelining: bool = True,
        chunking: bool = False,
        lmtp: bool = False,
        table: ReplyTable = DEFAULT_TABLE,
        message_of: Callable[[Any], bytes] = stdlib_message,
        smtplib_spelling: bool = False,
    ) -> None:
        if not isinstance(table, ReplyTable):
            raise TypeError(f"table must be a ReplyTable, not {type(table).__name__}")
        self.pipelining = bool(pipelining)
        self.chunking = bool(chunking)
        self.lmtp = bool(lmtp)
        self.table = table
        self._allows = table.allows
        self._commands = _commands_for(self.chunking)
        self._message_of = message_of
        self._data_line = b"data\r\n" if smtplib_spelling else b"DATA\r\n"
        self._rset_line = b"rset\r\n" if smtplib_spelling else b"RSET\r\n"
        self._queue: deque[Item] = deque()  # not written yet
        # One entry a reply awaited, in order: (what it answers, item).
        self._expect: deque[tuple[int, Any]] = deque()  # (an Item: Transaction or Exchange)
        self._out: list[bytes] = []
        # Nothing more may be written until the reply that this item awaits
        # arrives (DATA's 354, the replies to an envelope before BDAT, a
        # command that ends a group, or any command without pipelining).
        self._blocked: Item | None = None
        self._withdrawing = False  # a withdrawn message needs the connection closed
        #: Why the connection is unusable (a 421, a reply out of turn, the
        #: connection lost), or None while it is usable.
        self.closing: BaseException | None = None
        #: Bytes handed out by data_to_send().
        self.sent_bytes = 0

    # -- state ---------------------------------------------------------------

    @property
    def expecting(self) -> int:
        """How many replies the engine waits for."""
        return len(self._expect)

    @property
    def queued(self) -> int:
        """Items submitted and not written yet."""
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing to write, no reply awaited."""
        return not (self._queue or self._expect or self._out)

    # -- the client side -----------------------------------------------------

    def submit(self, item: ItemT) -> ItemT:
        """Queue a message (a :class:`Transaction`) or a command (an
        :class:`Exchange`).  It is written as soon as the conversation allows
        (at once when the connection is idle); returns it."""
        if item._state != _QUEUED or item.done:
            raise ValueError("this item was already submitted")
        if type(item) is Transaction and item.binary and not self.chunking:
            raise SMTPNotSupportedError(
                "BODY=BINARYMIME needs CHUNKING (BDAT), which is not in use on this connection"
            )
        if self.closing is not None:
            self._fail_unwritten(item)
            return item
        self._queue.append(item)
        if self._blocked is None:
            self._advance()
        return item

    def command(self, line: bytes | str, command: Command | None = None) -> Exchange:
        """Queue a plain command line (see :func:`command_line`); ``command``
        says what it is when :meth:`Command.from_line` cannot tell (a SASL
        response after AUTH's ``334`` is :attr:`Command.AUTH`)."""
        line = command_line(line)
        return self.submit(Exchange(line, Command.from_line(line) if command is None else command))

    def greeting(self) -> Exchange:
        """Expect the server's greeting (a connection just opened): an item
        that writes nothing and gets one reply."""
        return self.submit(Exchange(b"", Command.CONNECT))

    def configure(self, *, pipelining: bool, chunking: bool) -> None:
        """Say what the server announced (after EHLO, or HELO: neither);
        only while the engine is idle."""
        if not self.idle:
            raise RuntimeError("configure() needs an idle engine (nothing queued or awaited)")
        self.pipelining = bool(pipelining)
        self.chunking = bool(chunking)
        self._commands = _commands_for(self.chunking)

    def cancel(self, item: Item) -> bool:
        """Withdraw an item whose sender gave up on it; True when it will
        not take effect.

        An item not written yet is taken out of the queue.  A message whose
        envelope is written but whose content is not is withdrawn at the
        first moment that harms nothing else: with BDAT (or one command at a
        time) a RSET replaces what was still to come; after DATA's ``354``
        nothing but closing the connection stops the message (the server
        discards a transaction cut off before the final ``.``), so the
        engine then closes it (:attr:`closing` is set, the front end hangs
        up) -- at that point nothing else is on the way, and the items
        queued behind fail :attr:`~Item.retryable`.  A message whose content
        was sent cannot be withdrawn: False."""
        if item.done:
            return False
        if item._state == _QUEUED:
            try:
                self._queue.remove(item)
            except ValueError:
                return False
            item.done = True  # (its state stays queued: it was never written)
            item.error = SMTPServerDisconnected("withdrawn before it was sent")
            item.retryable = True
            return True
        if type(item) is Transaction and not item.content_sent:
            item.withdrawn = True
            return True
        return False

    def data_to_send(self) -> bytes:
        """What to write to the server now (empty when the engine waits for
        replies).  Call it after every :meth:`submit`, :meth:`command` and
        :meth:`receive`."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.sent_bytes += len(data)
        return data

    def _advance(self) -> None:
        """Write what may be written now: queued items, in order, until one
        of them must wait for a reply."""
        queue = self._queue
        out = self._out
        expect = self._expect
        pipelining = self.pipelining
        while queue and self._blocked is None:
            item = queue.popleft()
            if type(item) is Transaction:
                tx = item
                tx._state = _ENVELOPE
                if not pipelining:
                    out.append(tx.mail_line)
                    expect.append((_MAIL, tx))
                    self._blocked = tx
                    return
                out.append(tx.mail_line)
                expect.append((_MAIL, tx))
                out.extend(tx.rcpt_lines)
                for _ in tx.rcpt_lines:
                    expect.append((_RCPT, tx))
                if not self.chunking:
                    out.append(self._data_line)
                    expect.append((_DATA, tx))
                # DATA ends the group; with BDAT, the chunks wait for the
                # replies to RCPT.
                self._blocked = tx
                return
            item._state = _ENVELOPE
            if item.line:  # type: ignore[attr-defined]
                out.append(item.line)  # type: ignore[attr-defined]
            expect.append((_COMMAND, item))
            if not pipelining or item.command in _GROUP_ENDERS:  # type: ignore[attr-defined]
                self._blocked = item
                return

    # -- the server side -----------------------------------------------------

    def receive(self, replies: Iterable[Any]) -> list[Item]:
        """Take replies from the server, in order; return the items they
        finished.  Write :meth:`data_to_send` afterwards."""
        finished: list[Item] = []
        expect = self._expect
        allows = self._allows
        commands = self._commands
        for reply in replies:
            code = reply.code
            if not expect:
                self._unsolicited(reply, finished)
                continue
            kind, item = expect.popleft()
            if kind == _COMMAND:
                if not allows(item.command, code):
                    item.unexpected += ((item.command, reply),)
                item.reply = reply
                self._finish(item, finished)
                if self._blocked is item:
                    self._blocked = None
                if code == 421 and item.command is not Command.QUIT:
                    self._server_closing(reply, finished)
                    break
                continue
            tx: Transaction = item
            if kind == _RSET:
                if self._blocked is tx:
                    self._blocked = None
                if code == 421:
                    self._server_closing(reply, finished)
                    break
                continue
            command = commands[kind]
            if not allows(command, code):
                tx.unexpected += ((command, reply),)
            if kind == _MAIL:
                self._on_mail(tx, reply, code)
            elif kind == _RCPT:
                self._on_rcpt(tx, reply, code)
            elif kind == _DATA:
                self._on_data(tx, reply, code)
            elif kind == _END:
                self._on_end(tx, reply, code, finished)
            else:
                self._on_chunk(tx, reply, code)
            if code == 421:
                self._server_closing(reply, finished, tx)
                break
            if self._withdrawing:
                self._finish(tx, finished)
                self._shut(
                    SMTPServerDisconnected("the connection was closed to withdraw a cancelled message"),
                    finished,
                )
                break
            if tx._failed and not tx.done and not self._awaits(tx):
                self._end_failed(tx, finished)
        if self._blocked is None and self.closing is None and self._queue:
            self._advance()
        return finished

    def _awaits(self, tx: Item) -> bool:
        """Whether a reply is still awaited for ``tx`` (the replies of one
        item come one after another, so it would be the next in line)."""
        expect = self._expect
        return bool(expect) and expect[0][1] is tx

    def _on_mail(self, tx: Transaction, reply: Any, code: int) -> None:
        tx.mail_reply = reply
        if code != 250:
            self._fail(tx, SMTPSenderRefused(code, self._message_of(reply), tx.sender),
                       Command.MAIL, reply)
        elif not self.pipelining:
            self._write_next_rcpt(tx)
        elif self.chunking and not tx.recipients:
            self._after_recipients(tx)

    def _write_next_rcpt(self, tx: Transaction) -> None:
        """Without pipelining: the next RCPT, or what follows the last one."""
        index = len(tx.rcpt_replies)
        if tx.withdrawn:
            self._fail(tx, _withdrawn())
        elif index < len(tx.rcpt_lines):
            self._out.append(tx.rcpt_lines[index])
            self._expect.append((_RCPT, tx))
        else:
            self._after_recipients(tx)

    def _on_rcpt(self, tx: Transaction, reply: Any, code: int) -> None:
        index = len(tx.rcpt_replies)
        tx.rcpt_replies.append(reply)
        if code == 250 or code == 251:
            tx.accepted.append(tx.recipients[index])
        else:
            tx.refused[tx.recipients[index]] = reply
            if code == 421 and not tx._failed:
                self._fail(tx, SMTPRecipientsRefused(self._std_refused(tx)), Command.RCPT, reply)
        if tx._failed:
            return
        if not self.pipelining:
            self._write_next_rcpt(tx)
        elif self.chunking and index == len(tx.recipients) - 1:
            self._after_recipients(tx)

    def _after_recipients(self, tx: Transaction) -> None:
        """Every RCPT is answered and MAIL was accepted (written one at a
        time, or with BDAT): send the message, or give up on it."""
        if tx.withdrawn:
            self._fail(tx, _withdrawn())
        elif len(tx.refused) == len(tx.recipients):
            self._fail(tx, SMTPRecipientsRefused(self._std_refused(tx)), *self._last_refusal(tx))
        elif self.chunking:
            tx._state = _CONTENT
            self._write_chunk(tx)
        else:
            self._out.append(self._data_line)
            self._expect.append((_DATA, tx))

    def _write_chunk(self, tx: Transaction) -> None:
        """With pipelining, every BDAT chunk of the message; without, the
        next one (the rest follows its reply)."""
        message = tx.message
        size = len(message)
        out = self._out
        while True:
            start = tx.sent
            if size - start > BDAT_CHUNK:
                out.append(b"BDAT %d\r\n" % BDAT_CHUNK)
                out.append(message[start : start + BDAT_CHUNK])
                self._expect.append((_BDAT, tx))
                tx.sent = start + BDAT_CHUNK
                if self.pipelining:
                    continue
                return
            out.append(b"BDAT %d LAST\r\n" % (size - start))
            if start < size:
                out.append(message[start:] if start else message)
            tx.sent = size
            tx.content_sent = True
            self._expect_end(tx)
            if self.pipelining and self._blocked is tx:
                self._blocked = None  # the next envelope may follow the last chunk
            return

    def _on_chunk(self, tx: Transaction, reply: Any, code: int) -> None:
        """The reply to a BDAT chunk before the last."""
        if tx._failed:
            return
        if code != 250:
            self._fail(tx, SMTPDataError(code, self._message_of(reply)), Command.BDAT, reply)
        elif not self.pipelining:
            if tx.withdrawn:
                # Some chunks are in, the last is not: only hanging up drops them.
                self._fail(tx, _withdrawn())
                self._withdrawing = True
            else:
                self._write_chunk(tx)

    def _expect_end(self, tx: Transaction) -> None:
        """The end of the data awaits one reply (LMTP: one per recipient
        accepted)."""
        expect = self._expect
        for _ in range(len(tx.accepted) if self.lmtp and tx.accepted else 1):
            expect.append((_END, tx))

    def _on_data(self, tx: Transaction, reply: Any, code: int) -> None:
        tx.data_reply = reply
        if code == 354:
            tx._state = _CONTENT
            if tx._failed or not tx.accepted:
                # DATA accepted although MAIL or every RCPT was refused (the
                # server should have refused it): end the data at once,
                # sending nothing of the message.
                if not tx._failed:
                    self._fail(tx, SMTPRecipientsRefused(self._std_refused(tx)), *self._last_refusal(tx))
                self._out.append(b".\r\n")
                self._expect.append((_END, tx))
            elif tx.withdrawn:
                # Only hanging up stops it now; nothing else is on the way.
                self._fail(tx, _withdrawn())
                self._withdrawing = True
            else:
                self._out.append(dot_stuff(tx.message))
                tx.content_sent = True
                self._expect_end(tx)
        elif not tx._failed:
            if len(tx.refused) == len(tx.recipients):
                self._fail(tx, SMTPRecipientsRefused(self._std_refused(tx)), *self._last_refusal(tx))
            else:
                self._fail(tx, SMTPDataError(code, self._message_of(reply)), Command.DATA, reply)
        if self.pipelining and self._blocked is tx:
            self._blocked = None  # the next envelope may follow the data

    def _on_end(self, tx: Transaction, reply: Any, code: int, finished: list[Item]) -> None:
        if tx._failed:
            return  # the "." that closed the data of a lost transaction
        tx.end_replies.append(reply)
        if self.lmtp and tx.accepted:
            # One reply per accepted recipient, in the order of RCPT.
            if code != 250:
                tx.refused[tx.accepted[len(tx.end_replies) - 1]] = reply
            if self._awaits(tx):
                return
            failures = [r for r in tx.end_replies if r.code != 250]
            if len(failures) == len(tx.end_replies):
                first = failures[0]
                self._fail(tx, SMTPDataError(first.code, self._message_of(first)),
                           self._commands[_END], first)
                return
        elif code != 250:
            self._fail(tx, SMTPDataError(code, self._message_of(reply)), self._commands[_END], reply)
            return
        tx.decided_by = (self._commands[_END], reply)
        self._finish(tx, finished)
        if self._blocked is tx:
            self._blocked = None

    def _std_refused(self, tx: Transaction) -> dict[str, tuple[int, bytes]]:
        """The refused recipients as ``SMTPRecipientsRefused`` carries them."""
        message_of = self._message_of
        return {rcpt: (reply.code, message_of(reply)) for rcpt, reply in tx.refused.items()}

    def _fail(
        self, tx: Transaction, error: BaseException, command: Command | None = None, reply: Any = None
    ) -> None:
        """Decide that ``tx`` failed (by ``reply`` to ``command``, when a reply
        decided it); it finishes once its last reply is in."""
        tx._failed = True
        tx.error = error
        if reply is not None:
            tx.decided_by = (command, reply)

    @staticmethod
    def _last_refusal(tx: Transaction) -> tuple[Command, Any]:
        """What decided that every recipient is refused: the last refusal."""
        if tx.refused:
            return Command.RCPT, next(reversed(tx.refused.values()))
        return Command.MAIL, tx.mail_reply  # (no recipient at all)

    def _end_failed(self, tx: Transaction, finished: list[Item]) -> None:
        """A failed transaction has had its last reply: report it, and reset
        the server's side as ``smtplib.SMTP.sendmail()`` does.  After the end
        of the data the server has ended the transaction by itself: RSET is
        then sent only while nothing else is on the way (the next message's
        commands may already follow the data, and a RSET after its DATA
        would be read as its content)."""
        ended = tx._state == _CONTENT
        self._finish(tx, finished)
        if ended and self._expect:
            if self._blocked is tx:
                self._blocked = None
            return
        self._out.append(self._rset_line)
        self._expect.append((_RSET, tx))
        if self.pipelining:
            if self._blocked is tx:
                self._blocked = None
        else:
            self._blocked = tx  # one command at a time: RSET is answered first

    def _finish(self, item: Item, finished: list[Item]) -> None:
        item._state = _FINISHED
        item.done = True
        finished.append(item)

    # -- the end of the connection ----------------------------------------------

    def _unsolicited(self, reply: Any, finished: list[Item]) -> None:
        """A reply with no command waiting: a 421 announcing the close (RFC
        5321 section 3.8), or a server out of step; either way the
        connection is over."""
        if reply.code == 421:
            self._server_closing(reply, finished)
            return
        error = SMTPResponseException(
            reply.code, b"reply with no command waiting for it: " + self._message_of(reply)
        )
        self._shut(error, finished)

    def _server_closing(self, reply: Any, finished: list[Item], tx: Transaction | None = None) -> None:
        """The server said 421: it closes the connection.  ``tx`` (if given)
        got the 421 as its outcome; every other item fails."""
        if tx is not None and not tx.done:
            if not tx._failed:
                self._fail(tx, SMTPDataError(421, self._message_of(reply)), self._commands[_END], reply)
            # Refused, before or at the end of its data: nothing delivered.
            tx.retryable = True
            self._finish(tx, finished)
        error = SMTPServerDisconnected(
            "the server is closing the connection: %d %s"
            % (reply.code, self._message_of(reply).decode("utf-8", "replace"))
        )
        self._shut(error, finished)

    def connection_lost(self, exc: BaseException | None = None) -> list[Item]:
        """The connection ended (or the front end gave up on it): every item
        not finished fails with :class:`smtplib.SMTPServerDisconnected`.
        Returns the items it finished."""
        finished: list[Item] = []
        if isinstance(exc, SMTPServerDisconnected):
            error: BaseException = exc
        else:
            error = SMTPServerDisconnected(
                "Connection unexpectedly closed" + ("" if exc is None else f": {exc}")
            )
            error.__cause__ = exc
        self._shut(error, finished)
        return finished

    def _shut(self, error: BaseException, finished: list[Item]) -> None:
        """No more replies will come: fail every item not finished."""
        if self.closing is None:
            self.closing = error
        for _, item in self._expect:
            if item.done:
                continue  # (an RSET's transaction, or an item already seen)
            if not (isinstance(item, Transaction) and item._failed):
                item.error = _copy_error(error)
            # Safe to send again if its message was not sent (not even in part).
            item.retryable = item._state == _ENVELOPE and isinstance(item, Transaction)
            self._finish(item, finished)
        self._expect.clear()
        while self._queue:
            item = self._queue.popleft()
            self._fail_unwritten(item)
            finished.append(item)
        self._out.clear()
        self._blocked = None

    def _fail_unwritten(self, item: Item) -> None:
        """``item`` was never written (its state stays queued: ``written``
        is false), and never will be."""
        assert self.closing is not None
        item.error = _copy_error(self.closing)
        item.retryable = True
        item.done = True


def _withdrawn() -> SMTPServerDisconnected:
    return SMTPServerDisconnected("withdrawn: its sender cancelled it before its content was sent")


def _copy_error(error: BaseException) -> BaseException:
    """A fresh exception like ``error`` (one exception object raised in many
    places would collect every traceback)."""
    copy = type(error)(*error.args)
    copy.__cause__ = error.__cause__
    return copy

