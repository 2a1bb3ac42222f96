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
import smtplib as _std
from collections import deque
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

from ._parser import ReplyParser
from .errors import ReplyError

if TYPE_CHECKING:
    from _socket import _Address as _SourceAddress

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

#: How many bytes one read from the server asks for.
READ_SIZE = 64 * 1024

#: What the standard getreply() strips from each line's text.
_STRIP = b" \t\r\n"

#: The attribute of an SMTP object that holds its reply reader.
_STATE = "_fastreply_state"

#: Parser class for the standard classes while patched (None: ReplyParser).
_patch_parser_class: type[ReplyParser] | None = None

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
    lines = reply.lines
    if len(lines) == 1:
        return lines[0].strip(_STRIP)
    return b"\n".join([line.strip(_STRIP) for line in lines])


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
    )

    def __init__(self, file: Any, parser_class: type[ReplyParser], maxline: int) -> None:
        self.file = file
        read1 = getattr(file, "read1", None)
        if read1 is None:
            # A file object without read1(): its lines are the chunks.
            def read1(size: int) -> bytes:
                data: bytes = file.readline(self.maxline + 1)
                return data

        self.read1: Callable[[int], bytes] = read1
        self.maxline = maxline
        # The standard reader has no limit on the lines of a reply: a reply
        # past the parser's limit is read line by line (slower, but exact).
        self.parser: ReplyParser | None = None
        self.ready: deque[Reply] = deque()
        self.tail = bytearray()
        self.slow: io.BytesIO | None = None
        self.slow_size = 0
        if maxline >= _MIN_FAST_LINE:
            self.parser = parser_class(max_line_length=maxline)
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
        except OSError as e:
            smtp.close()
            raise SMTPServerDisconnected("Connection unexpectedly closed: " + str(e))
        except ValueError:
            file = self.file
            if getattr(file, "closed", False):
                # A file closed under us: raise what readline() raises.
                file.readline(self.maxline + 1)
            raise

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
            # Replies before the refused line are good; from the start of the
            # refused reply on, read line by line.
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
            return
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
    parser_class = getattr(smtp, "parser_class", None) or _patch_parser_class or ReplyParser
    maxline = _std._MAXLINE  # type: ignore[attr-defined]
    state = _ReplyReader(file, parser_class, maxline)
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
    while True:
        ready = state.ready
        if ready:
            if self.debuglevel > 0:
                return state.pop(self)
            # The common case: a reply the fast parser read ahead.
            reply = ready.popleft()
            lines = reply.lines
            if len(lines) == 1:
                return reply.code, lines[0].strip(_STRIP)
            return reply.code, b"\n".join([line.strip(_STRIP) for line in lines])
        slow = state.slow
        if slow is not None:
            break
        state.fill(self)
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


class SMTP(_std.SMTP):
    """:class:`smtplib.SMTP` reading replies with fastreply (see the module
    documentation).  Same constructor, methods and results."""

    #: The parser class replies are parsed with (fastreply's compiled parser
    #: when it is available).  Set it on a subclass or an instance to choose
    #: another one, ``fastreply._parser.ReplyParserPy`` say; it takes effect
    #: on the next connection.
    parser_class: ClassVar[type[ReplyParser]] = ReplyParser

    getreply = getreply

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


def patch(parser_class: type[ReplyParser] | None = None) -> None:
    """Make the standard ``smtplib.SMTP`` (and so ``SMTP_SSL``, ``LMTP`` and
    every subclass that does not define its own ``getreply``) read replies
    with fastreply, for code that cannot change its imports.

    This replaces ``smtplib.SMTP.getreply`` for the whole process; call it
    before connections are opened (a connection that read replies ahead
    with fastreply must keep using it).  ``parser_class`` chooses the
    parser (default: :class:`fastreply.ReplyParser`).
    """
    global _patch_parser_class
    _patch_parser_class = parser_class
    setattr(_std.SMTP, "getreply", getreply)


def unpatch() -> None:
    """Give ``smtplib.SMTP`` its own ``getreply`` back."""
    global _patch_parser_class
    setattr(_std.SMTP, "getreply", _std_getreply)
    _patch_parser_class = None


def is_patched() -> bool:
    """Whether ``smtplib.SMTP.getreply`` is fastreply's."""
    return _std.SMTP.__dict__.get("getreply") is getreply


@contextmanager
def patched(parser_class: type[ReplyParser] | None = None) -> Iterator[None]:
    """``with patched(): ...`` runs the block with :func:`patch` in effect,
    then restores the previous state (patched or not)."""
    was_patched = is_patched()
    previous = _patch_parser_class
    patch(parser_class)
    try:
        yield
    finally:
        if was_patched:
            patch(previous)
        else:
            unpatch()
