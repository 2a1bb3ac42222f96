"""A drop-in for the standard library's :mod:`smtplib` with a fast ``getreply()``.

:class:`SMTP`, :class:`SMTP_SSL` and :class:`LMTP` are subclasses of the
standard classes of the same names; only the way they read server replies
changes.  ``getreply()`` reads the socket in large chunks (64 KiB a read
instead of one line at a time) and parses them with fastreply's
:class:`~fastreply.ReplyParser`, keeping the bytes it read ahead for the next
reply, so a pipelined burst of replies costs one read::

    from fastreply import smtplib

    with smtplib.SMTP("mx.example.org", 25) as client:
        client.starttls()
        client.sendmail("a@example.org", ["b@example.net"], b"Subject: hi\\r\\n\\r\\nhello\\r\\n")

Everything else (exceptions, constants, helpers) is re-exported from the
standard module, so ``from fastreply import smtplib`` can replace
``import smtplib`` in code that uses ``smtplib.SMTPException`` and friends;
the exception classes *are* the standard ones.

Code that cannot change its imports can have the standard classes use the
fast reader instead: :func:`patch` / :func:`unpatch`, or the context manager
:func:`patched`.

What stays the same, on every input
-----------------------------------

For any bytes a server sends, ``getreply()`` returns exactly what the
standard ``smtplib.SMTP.getreply()`` returns and raises exactly what it
raises, including its lenient and odd cases: a line that does not start
with a number gives code ``-1`` and ends the reply, ``999`` or ``25x`` are
taken as the standard parser takes them, a line longer than
``smtplib._MAXLINE`` raises ``SMTPResponseException(500, "Line too long.")``,
the end of the stream or an ``OSError`` closes the connection and raises
``SMTPServerDisconnected``, text is stripped of spaces, tabs, CR and LF,
and debug output (``set_debuglevel``) prints the same ``reply:`` lines.
Well-formed replies take fastreply's fast path; anything fastreply's
stricter wire rules refuse is re-read line by line with the standard
library's own rules.

Read-ahead and STARTTLS
-----------------------

Bytes read beyond the current reply are kept for the next ``getreply()``
(they belong to the file object the client reads from, as the standard
class's own buffer does).  When the connection's file object is replaced,
which ``connect()``, ``close()`` and a successful ``starttls()`` all do,
everything read before is dropped: bytes a server (or an attacker in the
path) sent in plaintext before the TLS handshake are never taken as a reply
after it.
"""

from __future__ import annotations

import io
import re
import smtplib as _std
import sys
from collections import deque
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, NoReturn, Sequence

from ._common import READ_SIZE
from ._parser import ParserFactory, ReplyParser
from ._transaction import Transaction, TransactionEngine, quote_address
from .errors import ReplyError

if TYPE_CHECKING:
    from _socket import _Address as _SourceAddress
    from _typeshed import SizedBuffer

    from ._parser import Reply

# The standard module's public names, so this module can replace it.
from smtplib import (  # noqa: E402
    CRLF,
    LMTP_PORT,
    OLDSTYLE_AUTH,
    SMTP_PORT,
    SMTP_SSL_PORT,
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPDataError,
    SMTPException,
    SMTPHeloError,
    SMTPNotSupportedError,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    bCRLF,
    quoteaddr,
    quotedata,
)

__all__ = [
    "SMTP",
    "SMTP_SSL",
    "LMTP",
    "patch",
    "unpatch",
    "patched",
    "is_patched",
    "READ_SIZE",
    # re-exported from the standard smtplib
    "SMTPException",
    "SMTPNotSupportedError",
    "SMTPServerDisconnected",
    "SMTPResponseException",
    "SMTPSenderRefused",
    "SMTPRecipientsRefused",
    "SMTPDataError",
    "SMTPConnectError",
    "SMTPHeloError",
    "SMTPAuthenticationError",
    "quoteaddr",
    "quotedata",
    "SMTP_PORT",
    "SMTP_SSL_PORT",
    "LMTP_PORT",
    "CRLF",
    "bCRLF",
    "OLDSTYLE_AUTH",
]

#: What the standard getreply() strips from each line's text.
_STRIP = b" \t\r\n"

#: The attribute of an SMTP object that holds its reply reader.
_STATE = "_fastreply_state"
#: The attribute of an SMTP object that holds its sending engine.
_ENGINE = "_fastreply_engine"

#: What makes the parser of the standard classes while patched (None: ReplyParser).
_patch_parser: ParserFactory | None = None

#: The standard method, put back by unpatch().
_std_getreply: Callable[[_std.SMTP], tuple[int, bytes]] = _std.SMTP.getreply

#: Window sizes for going back from line-by-line reading to the fast parser.
_FIRST_WINDOW = 256
_MAX_BACKOFF = 256
#: An attempt that took fewer bytes than this before a refusal counts as failed.
_ENOUGH_GAIN = 2048
#: The shortest line limit the parser takes: below it (``smtplib._MAXLINE``
#: set to 3, say) every reply is read line by line, with the standard rules.
_MIN_FAST_LINE = 4


def _message(reply: Reply) -> bytes:
    """The message the standard getreply() makes of a well-formed reply:
    each line's text stripped of spaces, tabs, CR and LF, joined by LF.
    (The parser's text of a line is what follows its fourth byte, minus the
    line end, which the stripping removes anyway.)"""
    message: bytes = reply._smtplib_pair()[1]
    return message


def _debug(smtp: _std.SMTP, *args: object) -> None:
    print_debug: Callable[..., None] = getattr(smtp, "_print_debug")
    print_debug(*args)


class _ReplyReader:
    """The read state of one connection (one file object).

    Replies move through three places, in stream order: ``ready`` (parsed by
    the fast parser, not returned yet), then either ``tail`` (the incomplete
    reply the fast parser holds: a copy of its buffer) or ``slow`` (an
    in-memory file of bytes read line by line with the standard library's
    rules, after the fast parser refused something; its position is where
    the next line starts).  ``slow`` is None in fast mode.  With a line limit
    below what the parser takes there is no parser, and ``slow`` is never
    None: everything is read line by line.
    """

    __slots__ = (
        "file",
        "read1",
        "maxline",
        "parser",
        "ready",
        "tail",
        "slow",
        "slow_size",
        "eof",
        "skip",
        "backoff",
        "readinto1",
        "view",
    )

    def __init__(self, file: Any, parser: ParserFactory, maxline: int) -> None:
        self.file = file
        read1 = getattr(file, "read1", None)
        if read1 is None:
            # A file object without read1(): its lines are the chunks.
            def read1(size: int) -> bytes:
                data: bytes = file.readline(self.maxline + 1)
                return data

        self.read1: Callable[[int], bytes] = read1
        readinto1 = getattr(file, "readinto1", None)
        if readinto1 is None:

            def readinto1(view: memoryview) -> int:
                data = read1(len(view))
                view[: len(data)] = data
                return len(data)

        # The fast path reads into one buffer of the connection's, and
        # parses from there (the parser copies what it keeps).
        self.readinto1: Callable[[memoryview], int] = readinto1
        self.view = memoryview(bytearray(READ_SIZE))
        self.maxline = maxline
        # The standard reader has no limit on the lines of a reply: a reply
        # past the parser's limit is read line by line (slower, but exact).
        self.parser: ReplyParser | None = None
        self.ready: deque[Reply] = deque()
        self.tail = bytearray()
        self.slow: io.BytesIO | None = None
        self.slow_size = 0
        if maxline >= _MIN_FAST_LINE:
            self.parser = parser(max_line_length=maxline)
        else:
            self.slow = io.BytesIO()  # line by line, for good
        self.eof = False  # an empty read seen by the fast path, not yet used
        self.skip = 0  # slow replies to read before trying the fast parser again
        self.backoff = 0

    # -- reading ------------------------------------------------------------

    def read(self, smtp: _std.SMTP) -> bytes:
        """The next chunk from the server (empty at end of stream); an
        OSError closes the connection as the standard getreply() does."""
        if self.eof:
            self.eof = False
            return b""
        try:
            return self.read1(READ_SIZE)
        except (OSError, ValueError) as exc:
            self.read_failed(smtp, exc)

    def read_failed(self, smtp: _std.SMTP, exc: OSError | ValueError) -> NoReturn:
        """Raise what the standard getreply() raises when a read fails."""
        if isinstance(exc, OSError):
            smtp.close()
            raise SMTPServerDisconnected("Connection unexpectedly closed: " + str(exc))
        file = self.file
        if getattr(file, "closed", False):
            # A file closed under us: raise what readline() raises.
            file.readline(self.maxline + 1)
        raise exc

    def to_slow(self, data: bytes | bytearray | memoryview) -> None:
        """Read ``data`` (and what follows) line by line."""
        self.slow = io.BytesIO(bytes(data))
        self.slow_size = len(data)
        self.tail = bytearray()
        if self.parser is not None:
            self.parser.reset()

    def more(self, smtp: _std.SMTP, line: bytes, limit: int) -> bytes:
        """The rest of a line that the slow buffer ended inside: what
        ``readline(limit)`` of the standard reader would return (a negative
        limit reads to the line end)."""
        while True:
            chunk = self.read(smtp)
            if not chunk:
                return line  # end of stream: the line as it is
            slow = self.slow = io.BytesIO(chunk)  # the old buffer is used up
            self.slow_size = len(chunk)
            line += slow.readline(limit - len(line) if limit >= 0 else -1)
            if line[-1:] == b"\n" or 0 <= limit <= len(line):
                return line

    # -- replies ------------------------------------------------------------

    def fill(self, smtp: _std.SMTP) -> None:
        """Fast mode, nothing ready: read until a reply is ready, or until
        the rest must be read line by line (``slow`` is set)."""
        while True:
            if smtp.debuglevel > 0:
                # Debug output prints each line as it is read, before any
                # error: read line by line, as the standard class does.
                self.to_slow(self.tail)
                return
            chunk = self.read(smtp)
            if not chunk:
                if not self.tail:
                    smtp.close()
                    raise SMTPServerDisconnected("Connection unexpectedly closed")
                # The stream ended inside a reply: read its lines as the
                # standard reader would (the last one without its line end).
                self.to_slow(self.tail)
                self.eof = True
                return
            self.feed(chunk)
            if self.ready or self.slow is not None:
                return

    def pop(self, smtp: _std.SMTP) -> tuple[int, bytes]:
        reply = self.ready.popleft()
        code = reply.code
        message = _message(reply)
        if smtp.debuglevel > 0:
            for line in reply.raw.split(b"\n")[:-1]:
                _debug(smtp, "reply:", repr(line + b"\n"))
            _debug(smtp, "reply: retcode (%s); Msg: %a" % (code, message))
        return code, message

    def feed(self, chunk: bytes) -> None:
        """Fast mode: parse the next chunk."""
        assert self.parser is not None
        try:
            replies = self.parser.feed(chunk)
        except ReplyError as exc:
            self.refused(exc, chunk)
        else:
            self.parsed(replies, chunk)

    def refused(self, exc: ReplyError, chunk: bytes | memoryview) -> None:
        """The fast parser refused a line of ``chunk``: the replies before it
        are good; from the start of the refused reply on, read line by line."""
        done = exc.replies
        self.ready.extend(done)
        consumed = sum([len(reply.raw) for reply in done])
        tail = self.tail
        if consumed >= len(tail):
            self.to_slow(memoryview(chunk)[consumed - len(tail) :])
        else:
            del tail[:consumed]
            tail += chunk
            self.to_slow(tail)

    def parsed(self, replies: list[Reply], chunk: bytes | memoryview) -> None:
        """The fast parser took ``chunk``: keep its replies, and a copy of
        the incomplete reply it holds."""
        assert self.parser is not None
        if replies:
            self.ready.extend(replies)
        held = self.parser.buffered
        tail = self.tail
        size = len(chunk)
        if not held:
            if tail:
                tail.clear()
        elif held <= size:
            tail[:] = chunk[size - held :]
        else:
            del tail[: len(tail) - (held - size)]
            tail += chunk

    def resume_fast(self, slow: io.BytesIO) -> None:
        """Go back to the fast parser for what is left after a reply read
        line by line, in growing windows, so that a refusal close to the
        start costs little; after attempts that gain little, wait longer
        before the next one."""
        pos = slow.tell()
        parser = self.parser
        assert parser is not None
        ready = self.ready
        start = pos  # where the reply the parser holds starts
        window = _FIRST_WINDOW
        while True:
            piece = slow.read(window)
            if not piece:
                break
            try:
                replies = parser.feed(piece)
            except ReplyError as exc:
                done = exc.replies
                if done:
                    ready.extend(done)
                    start += sum([len(reply.raw) for reply in done])
                parser.reset()
                slow.seek(start)
                if start - pos >= _ENOUGH_GAIN:
                    self.backoff = 0
                else:
                    self.backoff = min(2 * self.backoff or 1, _MAX_BACKOFF)
                    self.skip = self.backoff
                return
            if replies:
                ready.extend(replies)
            start = slow.tell() - parser.buffered
            window *= 2
        self.backoff = 0
        slow.seek(start)
        self.tail = bytearray(slow.read())
        self.slow = None

    def pending(self) -> bytes:
        """Every byte read and not yet returned, in stream order."""
        out = bytearray()
        for reply in self.ready:
            out += reply.raw
        out += self.tail
        if self.slow is not None:
            out += self.slow.getbuffer()[self.slow.tell() :]
        return bytes(out)


def _reader(smtp: _std.SMTP, file: Any, old: _ReplyReader | None) -> _ReplyReader:
    # An instance's own ``parser``, else its class's (read from the class: a
    # function there is not bound to the instance), else patch()'s.
    parser = (smtp.__dict__.get("parser") or getattr(type(smtp), "parser", None)
              or _patch_parser or ReplyParser)
    maxline = _std._MAXLINE  # type: ignore[attr-defined]
    state = _ReplyReader(file, parser, maxline)
    if old is not None and old.file is file:
        # Same connection, new limit (smtplib._MAXLINE was changed): keep
        # every byte read, and read it again with the new limit.
        pending = old.pending()
        if pending:
            state.to_slow(pending)
        state.eof = old.eof
    smtp.__dict__[_STATE] = state
    return state


def _prepare(smtp: _std.SMTP) -> _ReplyReader:
    """The reader of the connection's current file (made as the standard
    class makes it)."""
    file = smtp.file
    if file is None:
        file = smtp.file = smtp.sock.makefile("rb")  # type: ignore[union-attr]
    old: _ReplyReader | None = smtp.__dict__.get(_STATE)
    if old is not None and old.file is file and old.maxline == _std._MAXLINE:  # type: ignore[attr-defined]
        return old
    return _reader(smtp, file, old)


def getreply(self: _std.SMTP) -> tuple[int, bytes]:
    """Get a reply from the server.

    Returns a tuple of the reply code (an int; -1 when the code cannot be
    read) and the text of the reply (bytes; the lines of a multiline reply
    joined by ``b"\\n"``), exactly as the standard ``smtplib.SMTP.getreply()``.

    Raises SMTPServerDisconnected if end-of-file is reached.
    """
    try:
        state: _ReplyReader = self._fastreply_state  # type: ignore[attr-defined]
    except AttributeError:
        state = _prepare(self)
    else:
        if state.file is not self.file or state.maxline != _std._MAXLINE:  # type: ignore[attr-defined]
            state = _prepare(self)
    ready = state.ready
    if not ready and not state.tail and state.slow is None and not state.eof and self.debuglevel <= 0:
        # The common case when replies come one a read: one read, one parse,
        # and the pair straight from the reply.
        try:
            size = state.readinto1(state.view)
        except (OSError, ValueError) as exc:
            state.read_failed(self, exc)
        if size:
            chunk = state.view[:size]
            parser = state.parser  # (there is one: slow mode would be on otherwise)
            try:
                replies = parser.feed(chunk)  # type: ignore[union-attr]
            except ReplyError as exc:
                state.refused(exc, chunk)
            else:
                if len(replies) == 1 and not parser.buffered:  # type: ignore[union-attr]
                    return replies[0]._smtplib_pair()
                state.parsed(replies, chunk)
        else:
            state.eof = True
    while True:
        if ready:
            if self.debuglevel > 0:
                return state.pop(self)
            # A reply the fast parser read ahead.
            return ready.popleft()._smtplib_pair()
        slow = state.slow
        if slow is not None:
            break
        state.fill(self)
        ready = state.ready
    # Line by line, exactly as the standard getreply() (which reads with
    # self.file.readline(_MAXLINE + 1)).
    maxline = state.maxline
    limit = maxline + 1
    readline = slow.readline
    resp = []
    while True:
        line = readline(limit)
        if line[-1:] != b"\n" and (limit < 0 or len(line) < limit):
            line = state.more(self, line, limit)  # the buffer ends inside the line
            readline = state.slow.readline  # type: ignore[union-attr]
        if not line:
            self.close()
            raise SMTPServerDisconnected("Connection unexpectedly closed")
        if self.debuglevel > 0:
            _debug(self, "reply:", repr(line))
        if len(line) > maxline:
            self.close()
            raise SMTPResponseException(500, "Line too long.")
        resp.append(line[4:].strip(_STRIP))
        code = line[:3]
        try:
            errcode = int(code)
        except ValueError:
            errcode = -1
            break
        if line[3:4] != b"-":
            break
    errmsg = b"\n".join(resp)
    if self.debuglevel > 0:
        _debug(self, "reply: retcode (%s); Msg: %a" % (errcode, errmsg))
    # What is left: back to the fast parser, or more line by line.
    slow = state.slow
    if slow is not None and state.parser is not None:
        if slow.tell() >= state.slow_size:
            state.slow = None
        elif state.skip:
            state.skip -= 1
        else:
            state.resume_fast(slow)
    return errcode, errmsg


def _drop_state(smtp: _std.SMTP) -> None:
    smtp.__dict__.pop(_STATE, None)


# -- sending -----------------------------------------------------------------


class _Pair:
    """A reply read with the standard library's rules (``getreply()``'s
    ``(code, message)``), for the sending engine, which needs only ``code``."""

    __slots__ = ("code", "message")

    def __init__(self, code: int, message: bytes) -> None:
        self.code = code
        self.message = message


def _pair_message(reply: Any) -> bytes:
    """The message ``getreply()`` gave, or would give, for a reply."""
    if type(reply) is _Pair:
        return reply.message
    return _message(reply)


_fix_eols: Callable[[str], str] = getattr(_std, "_fix_eols", None) or (
    lambda data: re.sub(r"(?:\r\n|\n|\r(?!\n))", CRLF, data)
)


def _command(smtp: _std.SMTP, cmd: str, args: str) -> bytes:
    """A command line exactly as ``SMTP.putcmd(cmd, args)`` sends it."""
    line = f"{cmd} {args}"
    if "\r" in line or "\n" in line:
        line = line.replace("\n", "\\n").replace("\r", "\\r")
        raise ValueError(f"command and arguments contain prohibited newline characters: {line}")
    return (line + CRLF).encode(smtp.command_encoding)


def _spelling() -> tuple[str, str]:
    """How this Python's ``smtplib`` writes MAIL's and RCPT's arguments
    (``FROM:``/``TO:`` up to 3.12, ``from:``/``to:`` from 3.13 on): asked of
    its own ``mail()`` and ``rcpt()``, so that the drop-in sends the very same
    bytes."""

    class Probe(_std.SMTP):
        def __init__(self) -> None:  # (no socket, no name lookup)
            self.does_esmtp = False
            self.sent: list[str] = []

        def putcmd(self, cmd: str, args: str = "") -> None:
            self.sent.append(args)

        def getreply(self) -> tuple[int, bytes]:
            return 250, b""

    try:
        probe = Probe()
        _std.SMTP.mail(probe, "a@b")
        _std.SMTP.rcpt(probe, "c@d")
        mail, rcpt = (args[: args.index("<")] for args in probe.sent)
    except Exception:  # noqa: BLE001 - an smtplib unlike any seen: the classic spelling
        return "FROM:", "TO:"
    return mail, rcpt


_FROM, _TO = _spelling()


def _take_replies(smtp: _std.SMTP, most: int) -> list[Any]:
    """At least one and at most ``most`` replies, read as ``getreply()``
    reads them: replies the fast parser reads are taken as they are,
    anything else goes through ``getreply()`` itself (its odd cases, debug
    output and errors included).  Replies past ``most`` stay for later
    calls."""
    state: _ReplyReader | None = smtp.__dict__.get(_STATE)
    if (
        state is None
        or smtp.debuglevel > 0
        or state.file is not smtp.file
        or state.maxline != _std._MAXLINE  # type: ignore[attr-defined]
    ):
        return [_Pair(*smtp.getreply())]
    ready = state.ready
    if not ready:
        if state.slow is None and not state.tail and not state.eof:
            # As getreply(): one read, one parse; the replies straight back
            # when the read held nothing more.
            try:
                size = state.readinto1(state.view)
            except (OSError, ValueError) as exc:
                state.read_failed(smtp, exc)
            if not size:
                state.eof = True
                return [_Pair(*smtp.getreply())]
            chunk = state.view[:size]
            parser = state.parser  # (there is one: slow mode would be on otherwise)
            try:
                replies = parser.feed(chunk)  # type: ignore[union-attr]
            except ReplyError as exc:
                state.refused(exc, chunk)
            else:
                if replies and len(replies) <= most and not parser.buffered:  # type: ignore[union-attr]
                    return replies
                state.parsed(replies, chunk)
        if not ready and state.slow is None:
            state.fill(smtp)
        if not ready:
            return [_Pair(*smtp.getreply())]
    if len(ready) <= most:
        replies = list(ready)
        ready.clear()
        return replies
    return [ready.popleft() for _ in range(most)]


def _sender(smtp: _std.SMTP) -> Callable[[bytes], None]:
    """``smtp.send`` for bytes without debug output, one call shorter: the
    same audit event, and the same errors."""
    sock = smtp.sock
    if sock is None:
        return smtp.send  # raises SMTPServerDisconnected('please run connect() first')
    sendall = sock.sendall
    audit = sys.audit

    def send(data: bytes) -> None:
        audit("smtplib.send", smtp, data)
        try:
            sendall(data)
        except OSError:
            smtp.close()
            raise SMTPServerDisconnected("Server not connected")

    return send


def _engine(smtp: SMTP, esmtp: bool) -> TransactionEngine:
    """The connection's sending engine, for what the server announced (kept
    between calls: it is idle after each)."""
    pipelining = bool(smtp.pipelining and esmtp and smtp.has_extn("pipelining"))
    chunking = bool(smtp.chunking and esmtp and smtp.has_extn("chunking"))
    engine: TransactionEngine | None = smtp.__dict__.get(_ENGINE)
    if (
        engine is None
        or engine.pipelining is not pipelining
        or engine.chunking is not chunking
        or engine.closing is not None
        or not engine.idle
    ):
        engine = smtp.__dict__[_ENGINE] = TransactionEngine(
            pipelining=pipelining,
            chunking=chunking,
            lmtp=isinstance(smtp, _std.LMTP),
            message_of=_pair_message,
            smtplib_spelling=True,
        )
    return engine


def _sendmail(
    smtp: SMTP,
    from_addr: str,
    to_addrs: str | Sequence[str],
    msg: SizedBuffer | str,
    mail_options: Sequence[str],
    rcpt_options: Sequence[str],
) -> dict[str, tuple[int, bytes]]:
    if smtp.helo_resp is None and smtp.ehlo_resp is None:
        smtp.ehlo_or_helo_if_needed()
    if isinstance(msg, str):
        msg = _fix_eols(msg).encode("ascii")
    elif type(msg) is not bytes:
        msg = bytes(msg)  # (any bytes-like object)
    # The MAIL and RCPT lines exactly as the standard sendmail() writes them.
    esmtp = smtp.does_esmtp
    options = ""
    if esmtp:
        esmtp_opts = ["size=%d" % len(msg)] if smtp.has_extn("size") else []
        if mail_options:
            esmtp_opts.extend(mail_options)
            if any(x.lower() == "smtputf8" for x in mail_options):
                if not smtp.has_extn("smtputf8"):
                    raise SMTPNotSupportedError("SMTPUTF8 not supported by server")
                smtp.command_encoding = "utf-8"
        if esmtp_opts:
            options = " " + " ".join(esmtp_opts)
    mail_line = _command(smtp, "mail", f"{_FROM}{quote_address(from_addr)}{options}")
    if isinstance(to_addrs, str):
        to_addrs = [to_addrs]
    rcpt_extra = " " + " ".join(rcpt_options) if rcpt_options and esmtp else ""
    rcpt_lines = [_command(smtp, "rcpt", f"{_TO}{quote_address(to)}{rcpt_extra}") for to in to_addrs]
    binary = bool(mail_options) and any(x.upper() == "BODY=BINARYMIME" for x in mail_options)

    engine = _engine(smtp, esmtp)
    tx = engine.submit(Transaction(from_addr, to_addrs, msg, mail_line, rcpt_lines, binary))
    if smtp.file is None and smtp.sock is not None:
        _prepare(smtp)  # the reader (and file) getreply() would make
    send = smtp.send if smtp.debuglevel > 0 else _sender(smtp)
    data_to_send = engine.data_to_send
    receive = engine.receive
    while True:
        data = data_to_send()
        if data:
            send(data)
        awaited = engine.expecting
        if not awaited:
            break
        try:
            replies = _take_replies(smtp, awaited)
        except SMTPServerDisconnected:
            if tx.done:
                break  # only the RSET after a failure was waiting (as smtplib's _rset())
            raise
        receive(replies)
    smtp.last_transaction = tx
    if engine.closing is not None:
        smtp.close()  # the server said 421 (or replied out of turn): it is going away
    error = tx.error
    if error is not None:
        error.transaction = tx  # type: ignore[attr-defined]
        raise error
    return {rcpt: (reply.code, _pair_message(reply)) for rcpt, reply in tx.refused.items()}




class SMTP(_std.SMTP):
    """:class:`smtplib.SMTP` reading replies with fastreply (see the module
    documentation).  Same constructor, methods and results."""

    #: What makes the parser replies are parsed with: a class or any callable
    #: returning a :class:`~fastreply.ReplyParser`, called with
    #: ``max_line_length=smtplib._MAXLINE`` (default: ``fastreply.ReplyParser``,
    #: the compiled parser when it is available).  Set it on a subclass or an
    #: instance to choose another one, ``fastreply._parser.ReplyParserPy`` say;
    #: it takes effect on the next connection.
    parser: ClassVar[ParserFactory] = ReplyParser

    getreply = getreply

    #: Pipeline MAIL, RCPT and DATA (RFC 2920) when the server announces
    #: PIPELINING.  Set it to False (on the class or an instance) to send one
    #: command at a time, as the standard class does.
    pipelining: bool = True

    #: The sending engine's record of the last message :meth:`sendmail` sent
    #: (:class:`fastreply._transaction.Transaction`): every reply, and
    #: ``classification(recipient)`` -- what the outcome means for the sender.
    #: The exceptions :meth:`sendmail` raises carry it too, as ``transaction``.
    last_transaction: Transaction | None = None

    #: Send messages in BDAT chunks (RFC 3030) when the server announces
    #: CHUNKING.  Off by default, so that the bytes sent are the standard
    #: class's (``data``, dot-stuffing); ``BODY=BINARYMIME`` needs it on.
    chunking: bool = False

    def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Sequence[str],
        msg: SizedBuffer | str,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> dict[str, tuple[int, bytes]]:
        """Send a message: :meth:`smtplib.SMTP.sendmail`, pipelined.

        Same arguments, return value (the refused recipients, each with its
        ``(code, message)``) and exceptions as the standard method, and the
        same command lines; when the server announces PIPELINING (and
        :attr:`pipelining` allows it) MAIL, every RCPT and DATA go in one
        write and their replies are read together, so a message costs two
        round trips instead of three plus one a recipient.  After a failed
        transaction the connection is reset (RSET) as the standard method
        resets it, and also after a refused DATA command, which the
        standard method leaves open; on a 421 reply it is closed.
        """
        return _sendmail(self, from_addr, to_addrs, msg, mail_options, rcpt_options)

    def connect(
        self, host: str = "localhost", port: int = 0, source_address: _SourceAddress | None = None
    ) -> tuple[int, bytes]:
        """Connect to a host on a given port (see :meth:`smtplib.SMTP.connect`);
        whatever was read on an earlier connection is dropped."""
        _drop_state(self)
        return super().connect(host, port, source_address)

    def close(self) -> None:
        """Close the connection and drop whatever was read ahead."""
        try:
            super().close()
        finally:
            _drop_state(self)

    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        """Put the connection into TLS mode (see :meth:`smtplib.SMTP.starttls`).

        Bytes read before the handshake (sent after the server's ``220``
        reply to STARTTLS, in plaintext) are dropped: replies are read only
        from what arrives over TLS.
        """
        sock = self.sock
        result: tuple[int, bytes] = super().starttls(*args, **kwargs)
        if self.sock is not sock:
            _drop_state(self)
        return result

    def fastreply_pending(self) -> bytes:
        """The bytes read from the server and not yet returned as a reply
        (read ahead of the current reply), in stream order; for logs and
        tests."""
        state: _ReplyReader | None = self.__dict__.get(_STATE)
        if state is None or state.file is not self.file:
            return b""
        return state.pending()


if hasattr(_std, "SMTP_SSL"):

    class SMTP_SSL(_std.SMTP_SSL, SMTP):
        """:class:`smtplib.SMTP_SSL` reading replies with fastreply."""


class LMTP(_std.LMTP, SMTP):
    """:class:`smtplib.LMTP` reading replies with fastreply."""

    def connect(
        self, host: str = "localhost", port: int = 0, source_address: _SourceAddress | None = None
    ) -> tuple[int, bytes]:
        """Connect to the LMTP daemon, on a Unix or a TCP socket (see
        :meth:`smtplib.LMTP.connect`); whatever was read on an earlier
        connection is dropped."""
        _drop_state(self)
        return super().connect(host, port, source_address)


# -- patching the standard classes -------------------------------------------


def patch(parser: ParserFactory | None = None) -> None:
    """Make the standard ``smtplib.SMTP`` (and so ``SMTP_SSL``, ``LMTP`` and
    every subclass that does not define its own ``getreply``) read replies
    with fastreply, for code that cannot change its imports.

    This replaces ``smtplib.SMTP.getreply`` for the whole process; call it
    before connections are opened (a connection that read replies ahead
    with fastreply must keep using it).  ``parser`` makes the parser, as
    :attr:`SMTP.parser` does (default: :class:`fastreply.ReplyParser`).
    """
    global _patch_parser
    _patch_parser = parser
    setattr(_std.SMTP, "getreply", getreply)


def unpatch() -> None:
    """Give ``smtplib.SMTP`` its own ``getreply`` back."""
    global _patch_parser
    setattr(_std.SMTP, "getreply", _std_getreply)
    _patch_parser = None


def is_patched() -> bool:
    """Whether ``smtplib.SMTP.getreply`` is fastreply's."""
    return _std.SMTP.__dict__.get("getreply") is getreply


@contextmanager
def patched(parser: ParserFactory | None = None) -> Iterator[None]:
    """``with patched(): ...`` runs the block with :func:`patch` in effect,
    then restores the previous state (patched or not)."""
    was_patched = is_patched()
    previous = _patch_parser
    patch(parser)
    try:
        yield
    finally:
        if was_patched:
            patch(previous)
        else:
            unpatch()
