"""asyncio helpers: SMTP replies from a StreamReader or from a Protocol.

Two ways in, the same parser underneath (:class:`~fastreply.ReplyParser`,
its limits and its errors):

* **Streams** -- :class:`ReplyReader` (or the function :func:`read_reply`)
  reads an :class:`asyncio.StreamReader` in large chunks and returns one
  :class:`~fastreply.Reply` per call.  Replies and bytes read ahead (a
  pipelined burst arrives in one read) are kept for the next call: every
  ``ReplyReader`` of the same ``StreamReader`` shares one state, so
  ``read_reply(reader)`` can be called again and again::

      reader, writer = await asyncio.open_connection("mx.example.org", 25)
      greeting = await read_reply(reader)
      writer.write(b"EHLO client.example.org\\r\\n")
      ehlo = await read_reply(reader)

* **Protocols** -- :class:`ReplyProtocol` is an :class:`asyncio.Protocol`
  that parses what it receives and hands complete replies, in order, to
  whoever awaits :meth:`ReplyProtocol.next_reply`; :class:`ReplyQueue` is
  the same machinery for a protocol of your own (call its
  :meth:`~ReplyQueue.feed_data`, :meth:`~ReplyQueue.feed_eof` and
  :meth:`~ReplyQueue.connection_lost` from the protocol's callbacks).

Errors: a malformed stream raises the parser's
:class:`~fastreply.ReplyError` (with its ``offset`` and ``line``) to the
caller that would have got the broken reply, after the good replies before
it; it stays raised for every later call (each call raises a fresh copy of
the stored error, with its own short traceback: polling a broken
connection does not pile up memory).  When the connection ends, callers
get :class:`ConnectionClosed` (a :class:`ConnectionError`), or
:class:`ClosedMidReply` when it ended inside a reply (both a
``ConnectionClosed`` and an :class:`~fastreply.IncompleteReply`); nobody is
left waiting.  A caller that is cancelled while waiting loses nothing: the
reply it would have got goes to the next caller.

STARTTLS: bytes that came before the TLS handshake must never be read as a
reply after it.  :meth:`ReplyReader.start_tls` and
:meth:`ReplyProtocol.start_tls` upgrade the connection and drop them;
:meth:`~ReplyReader.discard` does only the dropping.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import email.message
import hmac
import smtplib as _smtplib
import socket
import weakref
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, cast

from ._common import READ_SIZE
from ._parser import ParserFactory, Reply, ReplyParser
from ._transaction import (
    Exchange,
    Item,
    Transaction,
    TransactionEngine,
    command_line,
    flatten_message,
    normalize_line_endings,
    quote_address,
    stdlib_message,
)
from .commands import Command
from .ehlo import EhloInfo, parse_ehlo
from .errors import IncompleteReply, ReplyError
from .tables import DEFAULT_TABLE, ReplyTable

if TYPE_CHECKING:
    import ssl

__all__ = [
    "ReplyReader",
    "read_reply",
    "ReplyQueue",
    "ReplyProtocol",
    "ConnectionClosed",
    "ClosedMidReply",
    "READ_SIZE",
    "DEFAULT_MAX_PENDING",
    "SMTP",
    "SMTPPool",
    "SMTPTimeoutError",
    "AUTH_MECHANISMS",
]

#: Parsed replies a :class:`ReplyQueue` holds before it pauses reading.
DEFAULT_MAX_PENDING = 10_000


class ConnectionClosed(ConnectionError):
    """The connection ended: no (more) replies will come.  The exception the
    transport reported, if any, is the ``__cause__``."""


class ClosedMidReply(IncompleteReply, ConnectionClosed):
    """The connection ended inside a reply.  An
    :class:`~fastreply.IncompleteReply` (``offset`` and ``line`` tell where
    the cut reply starts) and a :class:`ConnectionClosed`."""


def _closed(parser: ReplyParser, cause: BaseException | None) -> ConnectionClosed:
    """The exception for the end of the stream; closes the parser."""
    try:
        parser.close()
    except IncompleteReply as exc:
        error: ConnectionClosed = ClosedMidReply(exc.reason, offset=exc.offset, line=exc.line)
        error.__cause__ = cause if cause is not None else exc
        return error
    except ReplyError as exc:  # the parser was stopped by an earlier error
        error = ConnectionClosed(f"connection closed after an error: {exc}")
        error.__cause__ = exc
        return error
    if cause is None:
        return ConnectionClosed("connection closed by the server")
    error = ConnectionClosed(f"connection lost: {cause!r}")
    error.__cause__ = cause
    return error


def _fresh(error: BaseException) -> BaseException:
    """A copy of a stored error to raise: the same type, message, attributes
    and cause, and no traceback yet.  (Raising the stored exception itself
    again and again would append this call's frames to its traceback every
    time: unbounded memory for a caller that polls or retries.)"""
    try:
        twin = copy.copy(error)
    except Exception:  # noqa: BLE001 - an exception that cannot be copied
        twin = error
    if twin is error or type(twin) is not type(error):
        return error.with_traceback(None)
    twin.__dict__.update(error.__dict__)
    twin.__cause__ = error.__cause__
    twin.__suppress_context__ = error.__suppress_context__
    return twin.with_traceback(None)


# -- streams -----------------------------------------------------------------------


class _StreamState:
    """What a StreamReader's replies need between calls (no reference to
    the StreamReader itself, so a registry can hold it weakly)."""

    __slots__ = ("factory", "parser", "ready", "error", "lock", "inside", "__weakref__")

    def __init__(self, factory: ParserFactory) -> None:
        self.factory = factory  # what made the parser (a later caller may name it again)
        self.parser = factory()
        self.ready: deque[Reply] = deque()
        self.error: BaseException | None = None
        self.lock = asyncio.Lock()  # one caller reads the stream at a time, in turn
        self.inside = 0  # callers holding or waiting for the lock


#: The state of each StreamReader that replies were read from, for as long as
#: the StreamReader lives.  Module-wide on purpose: read_reply(reader) is a
#: plain function, and every ReplyReader of one StreamReader must share one
#: parser and what it read ahead (two parsers would split a reply between
#: them).  An asyncio StreamReader has no room of its own for it.
_states: weakref.WeakKeyDictionary[asyncio.StreamReader, _StreamState] = weakref.WeakKeyDictionary()


class ReplyReader:
    """Reads SMTP replies from an :class:`asyncio.StreamReader`.

    ``ReplyReader(reader)`` reads ``reader`` in chunks of ``read_size``
    bytes; replies and bytes read beyond the current reply stay for the
    next call.  There is one state per ``StreamReader``: every
    ``ReplyReader`` of the same reader, and :func:`read_reply`, share it.
    ``parser`` makes the parser (called with no arguments: a class such as
    :class:`~fastreply.ReplyParser`, the default, or
    ``functools.partial(ReplyParser, max_line_length=1024)``); it can be
    chosen only when the state is made, by the first of them (a later one
    may name the same factory, or none).

    Calls are served in order: tasks awaiting :meth:`read_reply` (or
    :meth:`read_replies`) at the same time get consecutive replies, first
    come first served.  Cancelling a call loses nothing.
    """

    __slots__ = ("_reader", "_state", "_read_size")

    def __init__(
        self,
        reader: asyncio.StreamReader,
        parser: ParserFactory | None = None,
        *,
        read_size: int = READ_SIZE,
    ) -> None:
        if read_size < 1:
            raise ValueError(f"read_size must be at least 1, got {read_size}")
        state = _states.get(reader)
        if state is None:
            state = _StreamState(ReplyParser if parser is None else parser)
            _states[reader] = state
        elif parser is not None and parser is not state.factory:
            raise ValueError(
                "this StreamReader is already read by a ReplyReader with its own parser; "
                "a second parser would split the stream"
            )
        self._reader = reader
        self._state = state
        self._read_size = read_size

    @property
    def reader(self) -> asyncio.StreamReader:
        """The StreamReader replies are read from."""
        return self._reader

    @property
    def parser(self) -> ReplyParser:
        """The parser, shared by every ReplyReader of this StreamReader."""
        return self._state.parser

    @property
    def pending(self) -> int:
        """Complete replies read ahead, waiting for a call."""
        return len(self._state.ready)

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete reply read ahead."""
        return self._state.parser.buffered

    async def read_reply(self) -> Reply:
        """The next reply.

        Raises:
            ReplyError: the stream is malformed (after the replies before the
                bad line were returned); raised again on later calls.
            ClosedMidReply: the stream ended inside a reply.
            ConnectionClosed: the stream ended before a reply started.
            Exception: whatever the StreamReader raises (a connection reset).
        """
        ready = self._state.ready
        if ready and not self._state.inside:
            return ready.popleft()  # read ahead, and nobody is before this caller
        return (await self._read(1))[0]

    async def read_replies(self, count: int) -> list[Reply]:
        """The next ``count`` replies (the answers to ``count`` pipelined
        commands), in order, taken together: no other caller's reply comes
        between them.  If the call is cancelled (``asyncio.wait_for`` timing
        out) or fails part way, the replies it had taken go back, first in
        line for the next call: nothing is lost.  Errors as :meth:`read_reply`."""
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"count must be an int, not {type(count).__name__}")
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        ready = self._state.ready
        if len(ready) >= count and not self._state.inside:
            return [ready.popleft() for _ in range(count)]
        return await self._read(count)

    async def _read(self, count: int) -> list[Reply]:
        """``count`` consecutive replies, read under the lock, in turn."""
        state = self._state
        ready = state.ready
        taken: list[Reply] = []
        state.inside += 1
        try:
            async with state.lock:
                try:
                    while len(taken) < count:
                        if ready:
                            taken.append(ready.popleft())
                            continue
                        if state.error is not None:
                            raise _fresh(state.error)
                        data = await self._reader.read(self._read_size)
                        if not data:
                            error = _closed(state.parser, None)
                            if isinstance(error, ClosedMidReply):
                                state.error = error  # the parser is closed for good
                                raise _fresh(error)
                            raise error
                        try:
                            ready.extend(state.parser.feed(data))
                        except ReplyError as exc:
                            ready.extend(exc.replies)
                            state.error = exc.with_traceback(None)
                except BaseException:
                    # Cancelled or failed part way: what was taken goes back,
                    # in order, before anything read since.
                    ready.extendleft(reversed(taken))
                    raise
            return taken
        finally:
            state.inside -= 1

    def __aiter__(self) -> ReplyReader:
        return self

    async def __anext__(self) -> Reply:
        """Iterating gives replies until the stream ends cleanly between
        replies; an end inside a reply raises :class:`ClosedMidReply`."""
        try:
            return await self.read_reply()
        except ClosedMidReply:
            raise
        except ConnectionClosed:
            raise StopAsyncIteration from None

    def discard(self) -> int:
        """Drop everything read and not yet returned: replies read ahead,
        bytes of an incomplete reply, a stored parse error, and the bytes
        waiting in the StreamReader's own buffer.  Returns how many bytes
        were dropped.  Call it when the stream changes meaning (after a TLS
        handshake: :meth:`start_tls` does)."""
        state = self._state
        dropped = sum(len(reply.raw) for reply in state.ready) + state.parser.buffered
        state.ready.clear()
        state.parser.reset()
        state.error = None
        # asyncio has no public way to empty a StreamReader: the buffer is a
        # bytearray attribute in every CPython version.
        buffer = getattr(self._reader, "_buffer", None)
        if isinstance(buffer, bytearray):
            dropped += len(buffer)
            buffer.clear()
        return dropped

    async def start_tls(
        self,
        writer: asyncio.StreamWriter,
        sslcontext: ssl.SSLContext,
        *,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
    ) -> None:
        """Upgrade the connection to TLS (``writer.start_tls()``, Python
        3.11+), dropping every byte received before the handshake.

        Call it after the server's ``220`` reply to STARTTLS was read.
        Anything the server sent after that reply in plaintext (command
        injection) is discarded, never read as a reply after the handshake.
        """
        start_tls = getattr(writer, "start_tls", None)
        if start_tls is None:
            raise RuntimeError("StreamWriter.start_tls() needs Python 3.11 or later")
        self.discard()
        await start_tls(
            sslcontext, server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout
        )
        # Again: plaintext may have come in while start_tls() drained the
        # writer.  (An SMTP server says nothing after the handshake before
        # the client's EHLO, so nothing encrypted is lost.)
        self.discard()


async def read_reply(reader: asyncio.StreamReader, parser: ParserFactory | None = None) -> Reply:
    """Read the next SMTP reply from ``reader``.

    Bytes and replies read ahead are kept for the next call on the same
    reader (the state lives as long as the reader does).  ``parser`` makes
    the parser on the first call for a reader (as for :class:`ReplyReader`);
    later calls may name the same factory or none.  See
    :meth:`ReplyReader.read_reply` for the errors.
    """
    return await ReplyReader(reader, parser).read_reply()


# -- protocols ---------------------------------------------------------------------


class ReplyQueue:
    """Parses data fed from a protocol and hands complete replies, in order,
    to the tasks awaiting :meth:`next_reply`.

    For a protocol of your own: call :meth:`feed_data` from
    ``data_received``, :meth:`feed_eof` from ``eof_received`` and
    :meth:`connection_lost` from ``connection_lost``; give the transport
    (:meth:`set_transport`) for flow control.

    * Callers are served first come, first served.  A caller cancelled while
      it waits (``asyncio.wait_for`` timing out, say) loses nothing: the
      reply goes to the next caller.  Leaving the line costs the same
      whatever the caller's place in it (thousands of waiters can time out
      at once).
    * A parse error (:class:`~fastreply.ReplyError`) is raised to the caller
      that would have got the broken reply, after every good reply before
      it, and to every later caller (a fresh copy each time: see
      :attr:`exception`); later data is ignored.
    * When the connection ends, waiting and later callers get
      :class:`ConnectionClosed` (:class:`ClosedMidReply` if it ended inside
      a reply), after the replies that were complete.
    * More than ``max_pending`` replies waiting for callers pause reading on
      the transport, until half of them are taken.

    ``parser`` makes the parser (called with no arguments; default
    :class:`~fastreply.ReplyParser`).
    """

    def __init__(
        self,
        parser: ParserFactory = ReplyParser,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._parser = parser()
        self._replies: deque[Reply] = deque()
        # The callers waiting, in order: a token per caller and the future it
        # awaits (replaced when it must wait again).  An OrderedDict is a
        # linked list: a caller leaves from any place in O(1).
        self._waiters: OrderedDict[object, asyncio.Future[None]] = OrderedDict()
        self._error: BaseException | None = None
        self._closed = False
        self._max_pending = max_pending
        self._transport: asyncio.BaseTransport | None = None
        self._paused = False

    @property
    def parser(self) -> ReplyParser:
        return self._parser

    @property
    def pending(self) -> int:
        """Complete replies waiting for a caller."""
        return len(self._replies)

    @property
    def waiting(self) -> int:
        """Callers waiting for a reply."""
        return len(self._waiters)

    @property
    def closed(self) -> bool:
        """Whether the connection has ended (no more data will be parsed)."""
        return self._closed

    @property
    def exception(self) -> BaseException | None:
        """The error callers get once the replies before it are taken, if any
        (each caller gets a copy of it, with its own traceback)."""
        return self._error

    def set_transport(self, transport: asyncio.BaseTransport | None) -> None:
        """The transport to pause while too many replies wait for callers."""
        self._transport = transport
        self._paused = False
        self._flow()

    # -- what the protocol calls ------------------------------------------------

    def feed_data(self, data: bytes | bytearray | memoryview) -> None:
        """Parse received bytes (from ``data_received``)."""
        if self._error is not None or self._closed:
            return  # the stream is broken or over: nothing more is read
        try:
            replies = self._parser.feed(data)
        except ReplyError as exc:
            self._replies.extend(exc.replies)
            self._error = exc.with_traceback(None)
        else:
            if not replies:
                return
            self._replies.extend(replies)
            self._flow()
        self._wake()

    def feed_eof(self) -> None:
        """The server closed its side (from ``eof_received``)."""
        self._end(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection is gone (from ``connection_lost``)."""
        self._end(exc)
        self._transport = None

    def _end(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._error is None:
            self._error = _closed(self._parser, exc)
        self._wake()

    # -- what callers use ----------------------------------------------------------

    async def next_reply(self) -> Reply:
        """The next reply; see the class documentation for errors."""
        waiters = self._waiters
        if not waiters:
            if self._replies:
                return self._take()
            if self._error is not None:
                raise _fresh(self._error)
        loop = asyncio.get_running_loop()
        token = object()
        future: asyncio.Future[None] = loop.create_future()
        waiters[token] = future
        try:
            while True:
                await future
                if self._replies or self._error is not None:
                    break
                # Woken for a reply that discard() dropped since: wait
                # again, first in line still.
                future = waiters[token] = loop.create_future()
        except BaseException:
            # Cancelled: leave the line; if it was this caller's turn, it
            # passes to the next one, with the reply it was woken for.
            del waiters[token]
            self._wake()
            raise
        del waiters[token]  # the first in line: this caller's turn
        if self._replies:
            return self._take()  # (which wakes the next caller if there is more)
        error = self._error
        assert error is not None
        self._wake()  # every caller in line gets the error
        raise _fresh(error)

    def get_nowait(self) -> Reply:
        """The next reply if one is waiting and no caller is ahead; else
        raise :class:`asyncio.QueueEmpty` (or the stored error)."""
        if self._waiters:
            raise asyncio.QueueEmpty
        if self._replies:
            return self._take()
        if self._error is not None:
            raise _fresh(self._error)
        raise asyncio.QueueEmpty

    def discard(self) -> int:
        """Drop replies waiting for callers, the bytes of an incomplete reply
        and a stored parse error (not the end of the connection); return how
        many bytes were dropped.  For STARTTLS: nothing received before the
        handshake may be read as a reply after it."""
        dropped = sum(len(reply.raw) for reply in self._replies) + self._parser.buffered
        self._replies.clear()
        self._parser.reset()
        if not self._closed:
            self._error = None
        self._flow()
        return dropped

    # -- internals -----------------------------------------------------------------

    def _take(self) -> Reply:
        reply = self._replies.popleft()
        if self._paused:
            self._flow()
        self._wake()
        return reply

    def _wake(self) -> None:
        """Wake the first caller in line if there is something for it."""
        if self._waiters and (self._replies or self._error is not None):
            head = next(iter(self._waiters.values()))
            if not head.done():
                head.set_result(None)

    def _flow(self) -> None:
        transport = self._transport
        if transport is None or not isinstance(transport, asyncio.ReadTransport):
            return
        count = len(self._replies)
        if not self._paused and count >= self._max_pending:
            if transport.is_reading():
                transport.pause_reading()
            self._paused = True
        elif self._paused and count <= self._max_pending // 2:
            self._paused = False
            if not transport.is_closing():
                transport.resume_reading()


class ReplyProtocol(asyncio.Protocol):
    """An :class:`asyncio.Protocol` for the client side of an SMTP
    connection: it parses what the server sends and hands replies, in order,
    to the tasks awaiting :meth:`next_reply` (see :class:`ReplyQueue`)::

        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_connection(ReplyProtocol, "mx.example.org", 25)
        greeting = await proto.next_reply()
        ehlo = await proto.command(b"EHLO client.example.org")
        proto.write(b"MAIL FROM:<a@example.org>\\r\\nRCPT TO:<b@example.net>\\r\\nDATA\\r\\n")
        mail, rcpt, data = [await proto.next_reply() for _ in range(3)]   # pipelined

    ``parser`` (what makes the parser) and ``max_pending`` go to the queue.
    """

    def __init__(
        self,
        parser: ParserFactory = ReplyParser,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.replies = ReplyQueue(parser, max_pending=max_pending)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.replies.set_transport(transport)

    def data_received(self, data: bytes) -> None:
        self.replies.feed_data(data)

    def eof_received(self) -> bool | None:
        self.replies.feed_eof()
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.replies.connection_lost(exc)
        self.transport = None

    async def next_reply(self) -> Reply:
        """The next reply from the server (see :class:`ReplyQueue`)."""
        return await self.replies.next_reply()

    def write(self, data: bytes) -> None:
        """Send bytes (commands, with their CRLF) to the server."""
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ConnectionClosed("the connection is closed")
        transport.write(data)

    async def command(self, line: bytes | str) -> Reply:
        """Send one command line (CRLF is added) and return the next reply.
        With commands still unanswered, that is the reply to the oldest."""
        if isinstance(line, str):
            line = line.encode("ascii")
        self.write(line + b"\r\n")
        return await self.next_reply()

    async def start_tls(
        self,
        sslcontext: ssl.SSLContext,
        *,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
    ) -> None:
        """Upgrade the connection to TLS (``loop.start_tls()``), dropping every
        byte received before the handshake.

        Call it after the server's ``220`` reply to STARTTLS was read.
        Anything the server sent after that reply in plaintext (command
        injection) is discarded, never read as a reply after the handshake.
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ConnectionClosed("the connection is closed")
        self.replies.discard()
        loop = asyncio.get_running_loop()
        new_transport = await loop.start_tls(
            transport,
            self,
            sslcontext,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
        )
        if new_transport is None:
            raise ConnectionClosed("the connection closed during the TLS handshake")
        self.transport = new_transport
        self.replies.set_transport(new_transport)
        self.replies.discard()


# -- the SMTP client -----------------------------------------------------------------


class SMTPTimeoutError(_smtplib.SMTPServerDisconnected, TimeoutError):
    """The server sent nothing for ``timeout`` seconds while a reply was
    awaited (or the connection could not be opened in time); the connection
    is closed.  An :class:`smtplib.SMTPServerDisconnected`, as the standard
    library's socket timeout becomes, and a :class:`TimeoutError`."""


def _auth_plain(username: str, password: str, challenge: bytes | None) -> str:
    return f"\0{username}\0{password}"


def _auth_login(username: str, password: str, challenge: bytes | None) -> str:
    # The initial response is the user name; the one challenge is for the password.
    return username if challenge is None else password


def _auth_cram_md5(username: str, password: str, challenge: bytes | None) -> str:
    if challenge is None:
        raise ValueError("CRAM-MD5 answers a challenge")
    return f"{username} {hmac.HMAC(password.encode('utf-8'), challenge, 'md5').hexdigest()}"


#: AUTH mechanisms :meth:`SMTP.login` knows, in the order it prefers them
#: (the standard ``smtplib.SMTP.login()``'s order).
AUTH_MECHANISMS = ("CRAM-MD5", "PLAIN", "LOGIN")
_AUTH: dict[str, Callable[[str, str, bytes | None], str]] = {
    "CRAM-MD5": _auth_cram_md5,
    "PLAIN": _auth_plain,
    "LOGIN": _auth_login,
}


class _SMTPProtocol(asyncio.Protocol):
    """One connection: the parser, the sending engine, and the futures of
    the callers waiting for their items.  Replies go from the parser
    straight to the engine in ``data_received``, and what the engine has to
    write next is written there too, without waiting for a task to run."""

    def __init__(self, parser: ReplyParser, engine: TransactionEngine, timeout: float | None) -> None:
        self.parser = parser
        self.engine = engine
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        #: Why the connection is over (None while it is open).
        self.closed: BaseException | None = None
        #: STARTTLS was sent: once it is answered, nothing more is read
        #: until the handshake is done.
        self.tls_pending: Exchange | None = None
        self.paused = False
        self.last_heard = 0.0
        #: The server's greeting, expected once connected.
        self.greeting = Exchange(b"", Command.CONNECT)
        #: Told (``listener.finished(items)`` / ``listener.lost()``) when items
        #: finish and when the connection ends: how a pool keeps count.
        self.listener: _PoolMember | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._resumed: asyncio.Future[None] | None = None

    # -- asyncio callbacks ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        # The greeting is awaited from now on (it may come before the
        # client's next step runs).
        self.submit(self.greeting)

    def data_received(self, data: bytes) -> None:
        self.last_heard = self.loop.time()
        tls = self.tls_pending
        if tls is not None and tls.done:
            return  # plaintext after the reply to STARTTLS: never a reply
        try:
            replies = self.parser.feed(data)
        except ReplyError as exc:
            self._process(exc.replies)
            error = _smtplib.SMTPServerDisconnected(f"the server sent a malformed reply: {exc}")
            error.__cause__ = exc
            self.abort(error)
            return
        if replies:
            self._process(replies)

    def _process(self, replies: list[Reply]) -> None:
        engine = self.engine
        tls = self.tls_pending
        if tls is None:
            self._resolve(engine.receive(replies))
        else:
            # Up to the reply to STARTTLS; whatever came with it is dropped.
            for reply in replies:
                self._resolve(engine.receive((reply,)))
                if tls.done:
                    self.parser.reset()
                    break
        data = engine.data_to_send()
        if data:
            transport = self.transport
            if transport is not None:
                transport.write(data)
        if engine.closing is not None and self.closed is None:
            # A 421, or a reply out of turn: the server is going away.
            self.abort(engine.closing)

    def eof_received(self) -> bool | None:
        return None  # let the transport close: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed is None:
            self.closed = exc if exc is not None else _smtplib.SMTPServerDisconnected(
                "Connection unexpectedly closed"
            )
        self.transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._resolve(self.engine.connection_lost(exc))
        self.resume_writing()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        resumed, self._resumed = self._resumed, None
        if resumed is not None and not resumed.done():
            resumed.set_result(None)

    # -- what the client calls ------------------------------------------------

    async def writable(self) -> None:
        """Wait while the transport's write buffer is full."""
        while self.paused and self.closed is None:
            if self._resumed is None:
                self._resumed = self.loop.create_future()
            await self._resumed

    def submit(self, item: Item, future: asyncio.Future[Any] | None = None) -> asyncio.Future[Any]:
        """Queue an item on the engine, write what can be written, and
        return the future (``future``, or a new one) whose result is set
        (to None) when the item is finished."""
        if future is None:
            future = self.loop.create_future()
        item.waiter = future
        engine = self.engine
        was_waiting = engine.expecting
        engine.submit(item)  # type: ignore[type-var]
        if item.done:  # refused at once: the connection is closing
            future.set_result(None)
            return future
        data = engine.data_to_send()
        if data:
            transport = self.transport
            if transport is not None:
                transport.write(data)
        if engine.expecting and not was_waiting:
            self.last_heard = self.loop.time()  # the wait for the server starts now
            if self._timer is None and self.timeout is not None:
                self._timer = self.loop.call_later(self.timeout, self._check_timeout)
        return future

    def abort(self, error: BaseException) -> None:
        """Close the connection at once; every item not finished fails with
        ``error`` (made an :class:`smtplib.SMTPServerDisconnected`)."""
        if self.closed is None:
            self.closed = error
        self._resolve(self.engine.connection_lost(error))
        transport = self.transport
        if transport is not None:
            transport.abort()

    # -- internals -----------------------------------------------------------------

    def _resolve(self, items: list[Item]) -> None:
        for item in items:
            waiter = item.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        listener = self.listener
        if listener is not None:
            if self.closed is not None or self.engine.closing is not None:
                listener.lost()  # first: nothing new goes to this connection
            if items:
                listener.finished(items)

    def _check_timeout(self) -> None:
        """The one timer of the connection: it fires ``timeout`` seconds
        after the server was last heard while a reply is awaited."""
        self._timer = None
        if self.closed is not None or self.timeout is None or not self.engine.expecting:
            return
        silent = self.loop.time() - self.last_heard
        if silent >= self.timeout:
            self.abort(SMTPTimeoutError(f"no reply from the server in {self.timeout:g} seconds"))
        else:
            self._timer = self.loop.call_later(self.timeout - silent, self._check_timeout)


def _failure(tx: Transaction) -> BaseException:
    """The exception for a failed message: a fresh copy of its error, with
    the transaction (every reply, and ``classification()``) as ``transaction``."""
    assert tx.error is not None
    error = _fresh(tx.error)
    error.transaction = tx  # type: ignore[attr-defined]
    return error


class SMTP:
    """An asyncio SMTP client whose replies go straight from fastreply's
    parser to a pipelining transaction engine.

    Method names and arguments follow aiosmtplib's where they mean the same
    thing (``connect``, ``ehlo``, ``starttls``, ``login``, ``sendmail``,
    ``send_message``, ``noop``, ``rset``, ``quit``, ``close``, ``async
    with``); replies are :class:`~fastreply.Reply` objects, whose ``code``
    and ``message`` are what aiosmtplib's ``SMTPResponse`` holds; failures
    raise the standard library's exceptions (:class:`smtplib.SMTPSenderRefused`,
    :class:`~smtplib.SMTPRecipientsRefused`, :class:`~smtplib.SMTPDataError`,
    :class:`~smtplib.SMTPServerDisconnected`, ...) with the arguments
    ``smtplib`` would give.

    ``sendmail()`` may be called by many tasks at once: their messages share
    the connection, pipelined (RFC 2920) when the server announces
    PIPELINING, so that a busy connection needs one round trip a message.
    At most ``max_pending`` messages are queued or in flight; more callers
    wait for a place, as they do while the transport's write buffer is full.

    Args:
        hostname, port: the server (port 25, or 465 with ``use_tls``).
        local_hostname: the name given with EHLO (default: this host's
            fully qualified name).
        source_address: ``(host, port)`` to bind the client socket to.
        timeout: seconds to wait for the connection and for each reply
            (``None``: no limit).  A server silent that long while a reply
            is awaited gets the connection closed, and every caller waiting
            on it :class:`SMTPTimeoutError`.
        use_tls: TLS from the start (SMTPS).
        start_tls: STARTTLS after EHLO: True (required), False (never) or
            None (when the server offers it, unless ``use_tls``).
        tls_context: the :class:`ssl.SSLContext` (default: one from
            :func:`ssl.create_default_context`, which checks certificates
            unless ``validate_certs`` is false).
        username, password: AUTH after EHLO (and STARTTLS), when both given.
        pipelining: pipeline when the server announces PIPELINING.
        chunking: send messages in BDAT chunks when the server announces
            CHUNKING (no dot-stuffing; the message goes once the replies to
            RCPT show that someone takes it).
        lmtp: speak LMTP (LHLO; one reply per recipient at the end of data).
        max_pending: messages queued or in flight on the connection at once.
        parser: makes the connection's parser, called with no arguments
            (default: :class:`fastreply.ReplyParser`, with its default
            limits; ``functools.partial(ReplyParser, strict=True)``, say).
        table: the table every reply is checked against.
    """

    def __init__(
        self,
        hostname: str | None = None,
        port: int | None = None,
        *,
        local_hostname: str | None = None,
        source_address: tuple[str, int] | None = None,
        timeout: float | None = 60,
        use_tls: bool = False,
        start_tls: bool | None = None,
        tls_context: ssl.SSLContext | None = None,
        validate_certs: bool = True,
        username: str | None = None,
        password: str | None = None,
        pipelining: bool = True,
        chunking: bool = True,
        lmtp: bool = False,
        max_pending: int = 256,
        parser: ParserFactory = ReplyParser,
        table: ReplyTable = DEFAULT_TABLE,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an int of at least 1, got {max_pending!r}")
        if use_tls and start_tls:
            raise ValueError("use_tls and start_tls cannot both be true")
        self.hostname = hostname
        self.port = port
        self.local_hostname = local_hostname
        self.source_address = source_address
        self.timeout = timeout
        self.use_tls = use_tls
        self.start_tls = start_tls
        self.tls_context = tls_context
        self.validate_certs = validate_certs
        self.username = username
        self.password = password
        self.pipelining = pipelining
        self.chunking = chunking
        self.lmtp = lmtp
        self.max_pending = max_pending
        self.parser = parser
        self.table = table
        #: What the server announced in its reply to EHLO (None before it, or after HELO).
        self.esmtp: EhloInfo | None = None
        #: The server's greeting.
        self.greeting: Reply | None = None
        self._protocol: _SMTPProtocol | None = None
        self._pending = 0  # messages submitted and not finished
        self._slots: deque[asyncio.Future[None]] = deque()  # callers waiting for a place
        self._setup: asyncio.Lock | None = None  # held while STARTTLS or AUTH change the connection
        self._encoding = "ascii"
        self._size_offered = False  # MAIL gets SIZE=

    # -- state -----------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Whether the connection is open and usable."""
        protocol = self._protocol
        return protocol is not None and protocol.closed is None and protocol.engine.closing is None

    def supports_extension(self, keyword: str) -> bool:
        """Whether the server announced ``keyword`` in its reply to EHLO."""
        return self.esmtp is not None and self.esmtp.supports(keyword)

    @property
    def pending(self) -> int:
        """Messages submitted on this connection and not finished."""
        return self._pending

    def _conn(self) -> _SMTPProtocol:
        protocol = self._protocol
        if protocol is None:
            raise _smtplib.SMTPServerDisconnected("not connected: call connect() first")
        if protocol.closed is not None or protocol.engine.closing is not None:
            raise _smtplib.SMTPServerDisconnected(
                f"the connection is closed: {protocol.engine.closing or protocol.closed}"
            )
        return protocol

    # -- the session -----------------------------------------------------------------

    async def connect(self, hostname: str | None = None, port: int | None = None) -> Reply:
        """Open the connection, read the greeting, say EHLO (HELO when EHLO
        is refused), then STARTTLS and AUTH as configured; return the
        greeting.  Raises :class:`smtplib.SMTPConnectError` when the
        greeting is not 220, :class:`smtplib.SMTPHeloError` when neither
        EHLO nor HELO is accepted."""
        if hostname is not None:
            self.hostname = hostname
        if port is not None:
            self.port = port
        if self.hostname is None:
            raise ValueError("no hostname to connect to")
        if self._protocol is not None and self._protocol.closed is None:
            raise _smtplib.SMTPException("already connected: close() first")
        port = self.port if self.port is not None else (465 if self.use_tls else 25)
        loop = asyncio.get_running_loop()
        self.esmtp = self.greeting = None
        self._encoding = "ascii"
        self._size_offered = False
        engine = TransactionEngine(pipelining=False, lmtp=self.lmtp, table=self.table)
        protocol = _SMTPProtocol(self.parser(), engine, self.timeout)
        context = self._context() if self.use_tls else None
        opening = loop.create_connection(
            lambda: protocol,
            self.hostname,
            port,
            ssl=context,
            local_addr=self.source_address,
            server_hostname=self.hostname if context is not None else None,
        )
        try:
            await (opening if self.timeout is None else asyncio.wait_for(opening, self.timeout))
        except asyncio.TimeoutError:
            raise SMTPTimeoutError(
                f"could not connect to {self.hostname}:{port} in {self.timeout:g} seconds"
            ) from None
        self._protocol = protocol
        self._setup = asyncio.Lock()
        try:
            greeting: Reply = await self._wait(protocol, protocol.greeting.waiter, protocol.greeting)
            self.greeting = greeting
            if greeting.code != 220:
                raise _smtplib.SMTPConnectError(greeting.code, stdlib_message(greeting))
            await self._hello()
            want_tls = self.start_tls
            if want_tls is None:
                want_tls = not self.use_tls and self.supports_extension("STARTTLS")
            if want_tls:
                await self.starttls()
            if self.username is not None and self.password is not None:
                await self.login(self.username, self.password)
        except BaseException:
            self.close()
            raise
        return greeting

    async def _hello(self) -> Reply:
        """EHLO (LHLO for LMTP), else HELO, as ``smtplib`` does."""
        reply = await self.ehlo()
        if not reply.is_positive and not self.lmtp:
            reply = await self.helo()
        if not reply.is_positive:
            raise _smtplib.SMTPHeloError(reply.code, stdlib_message(reply))
        return reply

    def _local_name(self) -> str:
        if self.local_hostname is None:
            self.local_hostname = socket.getfqdn()
        return self.local_hostname

    async def ehlo(self, hostname: str | None = None) -> Reply:
        """Say EHLO (LHLO for LMTP).  On success :attr:`esmtp` holds what the
        server announced, and pipelining and chunking follow it."""
        verb = "LHLO" if self.lmtp else "EHLO"
        reply = await self.execute_command(f"{verb} {hostname or self._local_name()}")
        if reply.code == 250:
            self.esmtp = info = parse_ehlo(reply)
            self._size_offered = info.size is not None
            self._conn().engine.configure(
                pipelining=self.pipelining and info.pipelining,
                chunking=self.chunking and info.chunking,
            )
        else:
            self.esmtp = None
            self._size_offered = False
        return reply

    async def helo(self, hostname: str | None = None) -> Reply:
        """Say HELO: no extensions, one command at a time."""
        reply = await self.execute_command(f"HELO {hostname or self._local_name()}")
        if reply.code == 250:
            self.esmtp = None
            self._size_offered = False
            self._conn().engine.configure(pipelining=False, chunking=False)
        return reply

    def _context(self) -> ssl.SSLContext:
        import ssl

        if self.tls_context is not None:
            return self.tls_context
        context = ssl.create_default_context()
        if not self.validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def starttls(self, tls_context: ssl.SSLContext | None = None) -> Reply:
        """STARTTLS, the TLS handshake, then EHLO again; returns the reply
        to STARTTLS.  Nothing the server sent before the handshake is read
        after it.  Raises :class:`smtplib.SMTPNotSupportedError` when the
        server does not offer STARTTLS and
        :class:`smtplib.SMTPResponseException` when it refuses it."""
        if self.esmtp is None or not self.esmtp.starttls:
            raise _smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server.")
        assert self._setup is not None
        async with self._setup:
            await self._idle()
            protocol = self._conn()
            exchange = Exchange(b"STARTTLS\r\n", Command.STARTTLS)
            protocol.tls_pending = exchange
            try:
                reply: Reply = await self._wait(protocol, protocol.submit(exchange), exchange)
                if reply.code != 220:
                    raise _smtplib.SMTPResponseException(reply.code, stdlib_message(reply))
                transport = protocol.transport
                if transport is None:
                    raise _smtplib.SMTPServerDisconnected("the connection was lost during STARTTLS")
                try:
                    new = await protocol.loop.start_tls(
                        transport,
                        protocol,
                        tls_context or self._context(),
                        server_hostname=self.hostname,
                        ssl_handshake_timeout=self.timeout,
                    )
                except (OSError, asyncio.TimeoutError) as exc:
                    error = _smtplib.SMTPServerDisconnected(f"TLS handshake failed: {exc}")
                    protocol.abort(error)
                    raise error from exc
                if new is None:
                    raise _smtplib.SMTPServerDisconnected("the connection closed during the TLS handshake")
                protocol.transport = new
                protocol.parser.reset()
            finally:
                protocol.tls_pending = None
        self.esmtp = None
        self._size_offered = False
        await self._hello()
        return reply

    async def login(self, username: str, password: str, *, mechanism: str | None = None) -> Reply:
        """AUTH with the first of CRAM-MD5, PLAIN and LOGIN that the server
        offers (or with ``mechanism``), trying the next one if the server
        refuses, as ``smtplib.SMTP.login()`` does.  Raises
        :class:`smtplib.SMTPAuthenticationError` with the last refusal."""
        if self.esmtp is None or not self.esmtp.supports("AUTH"):
            raise _smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
        if mechanism is not None:
            chosen = [mechanism.upper()]
            if chosen[0] not in _AUTH:
                raise ValueError(
                    f"unknown AUTH mechanism {mechanism!r} (known: {', '.join(AUTH_MECHANISMS)})"
                )
        else:
            offered = self.esmtp.auth_mechanisms
            chosen = [name for name in AUTH_MECHANISMS if name in offered]
            if not chosen:
                raise _smtplib.SMTPException("No suitable authentication method found.")
        reply: Reply | None = None
        for name in chosen:
            reply = await self._auth(name, username, password)
            if reply.code in (235, 503):  # 503: already authenticated
                return reply
        assert reply is not None
        raise _smtplib.SMTPAuthenticationError(reply.code, stdlib_message(reply))

    async def _auth(self, name: str, username: str, password: str) -> Reply:
        answer = _AUTH[name]
        assert self._setup is not None
        async with self._setup:
            await self._idle()
            if name == "CRAM-MD5":
                line = f"AUTH {name}"
            else:
                initial = answer(username, password, None).encode("utf-8")
                line = f"AUTH {name} {base64.b64encode(initial).decode('ascii')}"
            reply = await self._exchange(Exchange(command_line(line), Command.AUTH))
            while reply.code == 334:
                challenge = base64.b64decode(reply.lines[0].strip() or b"=")
                response = answer(username, password, challenge).encode("utf-8")
                reply = await self._exchange(
                    Exchange(command_line(base64.b64encode(response)), Command.AUTH)
                )
        return reply

    async def execute_command(self, line: str | bytes) -> Reply:
        """Send one command line (CRLF added) and return its reply (after
        the replies to everything sent before it)."""
        if isinstance(line, str):
            line = line.encode(self._encoding)
        line = command_line(line)
        return await self._exchange(Exchange(line, Command.from_line(line)))

    async def noop(self) -> Reply:
        """NOOP."""
        return await self.execute_command(b"NOOP")

    async def rset(self) -> Reply:
        """RSET."""
        return await self.execute_command(b"RSET")

    async def vrfy(self, address: str) -> Reply:
        """VRFY ``address``."""
        return await self.execute_command(f"VRFY {quote_address(address)}")

    async def quit(self) -> Reply:
        """QUIT (after everything sent before it is answered), then close."""
        try:
            return await self.execute_command(b"QUIT")
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection now: whatever is not finished fails with
        :class:`smtplib.SMTPServerDisconnected`."""
        protocol = self._protocol
        if protocol is not None and protocol.closed is None:
            protocol.abort(_smtplib.SMTPServerDisconnected("the connection was closed by the client"))
        self._wake_slots()

    async def __aenter__(self) -> SMTP:
        if self._protocol is None or self._protocol.closed is not None:
            await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self.is_connected:
            self.close()
            return
        try:
            await self.quit()
        except (_smtplib.SMTPException, OSError):
            self.close()

    # -- sending ---------------------------------------------------------------------

    def transaction(
        self,
        sender: str,
        recipients: str | Sequence[str],
        message: str | bytes,
        mail_options: Iterable[str] = (),
        rcpt_options: Iterable[str] = (),
    ) -> Transaction:
        """The transaction :meth:`sendmail` sends for a message on this
        connection: its MAIL and RCPT lines (SIZE added when the server
        announced it) and its content with CRLF line ends."""
        if isinstance(recipients, str):
            recipients = [recipients]
        encoding = self._encoding
        options = ""
        binary = False
        if mail_options:
            mail_options = tuple(mail_options)
            upper = [option.upper() for option in mail_options]
            if "SMTPUTF8" in upper:
                if self.esmtp is None or not self.esmtp.smtputf8:
                    raise _smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
                encoding = "utf-8"
            binary = "BODY=BINARYMIME" in upper
            options = " " + " ".join(mail_options)
        if rcpt_options:
            rcpt_extra = " " + " ".join(rcpt_options)
        else:
            rcpt_extra = ""
        if (options or rcpt_extra) and self.esmtp is None:
            raise _smtplib.SMTPNotSupportedError("MAIL and RCPT parameters need ESMTP (EHLO was refused)")
        if isinstance(message, str):
            message = message.encode(encoding)
        message = normalize_line_endings(message)
        if self._size_offered:
            options = " SIZE=%d%s" % (len(message), options)
        mail = f"MAIL FROM:{quote_address(sender)}{options}\r\n"
        rcpts = [f"RCPT TO:{quote_address(to)}{rcpt_extra}\r\n" for to in recipients]
        # One check for CR or LF anywhere but at the line ends: an address or
        # an option cannot smuggle in another command.
        lines = "".join(rcpts) + mail
        if lines.count("\n") != len(rcpts) + 1 or lines.count("\r") != len(rcpts) + 1:
            raise ValueError(f"command line contains prohibited newline characters: {lines!r}")
        return Transaction(
            sender,
            recipients,
            message,
            mail.encode(encoding),
            [line.encode(encoding) for line in rcpts],
            binary,
        )

    async def sendmail(
        self,
        sender: str,
        recipients: str | Sequence[str],
        message: str | bytes,
        *,
        mail_options: Iterable[str] = (),
        rcpt_options: Iterable[str] = (),
    ) -> tuple[dict[str, Reply], Reply]:
        """Send a message; return the refused recipients (each with its
        reply) and the reply to the end of the data.

        Raises the standard library's exceptions with its arguments:
        :class:`smtplib.SMTPSenderRefused`,
        :class:`~smtplib.SMTPRecipientsRefused` (every recipient refused),
        :class:`~smtplib.SMTPDataError` (DATA or the message refused),
        :class:`~smtplib.SMTPServerDisconnected` (the connection ended
        first; :class:`SMTPTimeoutError` when the server fell silent).
        Line ends are made CRLF; dot-stuffing (or BDAT) is done here.
        """
        tx = self.transaction(sender, recipients, message, mail_options, rcpt_options)
        await self.send(tx)
        return dict(tx.refused), tx.end_replies[-1]

    async def send_message(
        self,
        msg: email.message.Message,
        sender: str | None = None,
        recipients: str | Sequence[str] | None = None,
        *,
        mail_options: Iterable[str] = (),
        rcpt_options: Iterable[str] = (),
    ) -> tuple[dict[str, Reply], Reply]:
        """Send an :class:`email.message.Message` as
        ``smtplib.SMTP.send_message()`` does: sender and recipients from
        its headers unless given (the Resent- ones when present), Bcc
        removed, SMTPUTF8 when an address needs it."""
        smtputf8 = self.esmtp is not None and self.esmtp.smtputf8
        sender, recipient_list, data, extra = flatten_message(msg, sender, recipients, smtputf8)
        return await self.sendmail(
            sender, recipient_list, data, mail_options=(*mail_options, *extra), rcpt_options=rcpt_options
        )

    async def send(self, tx: Transaction) -> None:
        """Send a transaction made by :meth:`transaction` and wait until it is
        finished; raise its error (its :attr:`~Transaction.retryable` flag
        says whether it may be sent again elsewhere)."""
        setup = self._setup
        if setup is not None and setup.locked():
            async with setup:  # STARTTLS or AUTH first
                pass
        if self._pending >= self.max_pending:
            await self._wait_slot()
        protocol = self._conn()
        if protocol.paused:
            await protocol.writable()
            protocol = self._conn()
        self._pending += 1
        try:
            await self._wait(protocol, protocol.submit(tx), tx)
        finally:
            self._pending -= 1
            if self._slots:
                self._wake_slots()
        if tx.error is not None:
            raise _failure(tx)

    async def _wait(self, protocol: _SMTPProtocol, future: asyncio.Future[Any], item: Item) -> Any:
        """Wait for ``item`` to finish.  A caller cancelled while it waits
        withdraws its item (see :meth:`TransactionEngine.cancel`): one not
        written yet is dropped; a message whose content is not sent yet is
        not delivered (the connection is reset, or closed when nothing else
        can stop it); a message whose content went out finishes unseen."""
        try:
            await future
        except asyncio.CancelledError:
            protocol.engine.cancel(item)
            raise
        if isinstance(item, Exchange):
            if item.error is not None:
                raise _fresh(item.error)
            return item.reply
        return None

    async def _exchange(self, exchange: Exchange) -> Reply:
        protocol = self._conn()
        reply: Reply = await self._wait(protocol, protocol.submit(exchange), exchange)
        return reply

    async def _idle(self) -> None:
        """Wait until nothing is queued or in flight (STARTTLS and AUTH
        change the connection under everything after them)."""
        while not self._conn().engine.idle:
            await self.noop()

    async def _wait_slot(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending >= self.max_pending and self.is_connected:
            future: asyncio.Future[None] = loop.create_future()
            self._slots.append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._wake_slots()  # woken, then cancelled: the place goes to the next one
                raise

    def _wake_slots(self) -> None:
        """Let the next waiting caller in (all of them once the connection
        is closed); a cancelled waiter is skipped, at no cost to the others."""
        slots = self._slots
        while slots:
            future = slots.popleft()
            if future.done():
                continue
            future.set_result(None)
            if self.is_connected:
                return


# -- the pool ----------------------------------------------------------------------------


class _Request:
    """A message waiting in a pool, and the future its sender awaits."""

    __slots__ = ("sender", "recipients", "message", "mail_options", "rcpt_options", "future", "tx", "member")

    def __init__(
        self,
        sender: str,
        recipients: str | Sequence[str],
        message: str | bytes,
        mail_options: tuple[str, ...],
        rcpt_options: tuple[str, ...],
    ) -> None:
        self.sender = sender
        self.recipients = [recipients] if isinstance(recipients, str) else list(recipients)
        self.message = message
        self.mail_options = mail_options
        self.rcpt_options = rcpt_options
        self.future: asyncio.Future[None] | None = None
        self.tx: Transaction | None = None
        self.member: _PoolMember | None = None  # the connection it was given to


class _PoolMember:
    """One connection of a pool and how many of the pool's messages it has
    in flight; its protocol tells it when they finish and when it ends."""

    __slots__ = ("pool", "client", "protocol", "inflight", "gone", "listed")

    def __init__(self, pool: SMTPPool, client: SMTP, protocol: _SMTPProtocol) -> None:
        self.pool = pool
        self.client = client
        self.protocol = protocol
        self.inflight = 0
        self.gone = False
        self.listed = False  # in the pool's list of connections with room

    def finished(self, items: list[Item]) -> None:
        done = 0
        for item in items:
            if type(item) is Transaction:
                done += 1
        if done:
            self.inflight -= done
            self.pool._spare_capacity(self)

    def lost(self) -> None:
        if not self.gone:
            self.gone = True
            self.pool._lost(self)


class SMTPPool:
    """Up to ``connections`` connections to one server, opened as messages
    need them, sharing the messages of every :meth:`sendmail` caller.

    Each connection keeps up to ``depth`` messages in flight, pipelined, and
    takes the next waiting message as soon as one finishes, so the pool
    spreads the load over its connections by itself.  A connection that the
    server closes (a 421, a disconnect, a timeout) is dropped and replaced
    when messages wait; the messages it had that the server had not taken
    (:attr:`Transaction.retryable`: refused with 421 or cut off before their
    data was sent) are sent again on another connection, up to ``retries``
    times each, so none is lost and none is sent twice.  A message whose
    data was sent when the connection died gets
    :class:`smtplib.SMTPServerDisconnected`: whether the server kept it
    cannot be known.

    ``smtp_options`` go to each :class:`SMTP` (``timeout``, ``start_tls``,
    ``username``, ``password``, ...).  ``async with SMTPPool(...) as pool``
    closes every connection (QUIT) at the end.
    """

    def __init__(
        self,
        hostname: str,
        port: int | None = None,
        *,
        connections: int = 10,
        depth: int = 3,
        retries: int = 1,
        **smtp_options: Any,
    ) -> None:
        for name, value, least in (("connections", connections, 1), ("depth", depth, 1), ("retries", retries, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an int of at least {least}, got {value!r}")
        SMTP(hostname, port, **smtp_options)  # the options are checked now, not at the first connection
        self.hostname = hostname
        self.port = port
        self.connections = connections
        self.depth = depth
        self.retries = retries
        self.smtp_options = smtp_options
        self._members: set[_PoolMember] = set()
        self._spare: deque[_PoolMember] = deque()  # members that can take a message (may repeat)
        self._queue: deque[_Request] = deque()  # messages waiting for a connection
        self._opening = 0
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        #: Connections opened and dropped so far (for logs and tests).
        self.opened = 0
        self.dropped = 0
        #: Why the latest connection could not be opened (None if none failed).
        #: While other connections are open, the messages wait for them; with
        #: none, the waiting messages fail with this error.
        self.open_error: BaseException | None = None

    @property
    def size(self) -> int:
        """Open connections."""
        return len(self._members)

    @property
    def waiting(self) -> int:
        """Messages waiting for a connection."""
        return len(self._queue)

    async def sendmail(
        self,
        sender: str,
        recipients: str | Sequence[str],
        message: str | bytes,
        *,
        mail_options: Iterable[str] = (),
        rcpt_options: Iterable[str] = (),
    ) -> tuple[dict[str, Reply], Reply]:
        """:meth:`SMTP.sendmail` on one of the pool's connections."""
        if self._closed:
            raise _smtplib.SMTPServerDisconnected("the pool is closed")
        request = _Request(sender, recipients, message, tuple(mail_options), tuple(rcpt_options))
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            future: asyncio.Future[None] = loop.create_future()
            request.future = future
            if request.tx is None:
                self._queue.append(request)
            else:  # again: ahead of the messages that have not had a turn yet
                request.tx = request.member = None
                self._queue.appendleft(request)
            self._dispatch()
            try:
                await future
            except asyncio.CancelledError:
                self._cancelled(request)
                raise
            tx = request.tx
            assert tx is not None
            error = tx.error
            if error is None:
                return dict(tx.refused), tx.end_replies[-1]
            if tx.retryable and not self._closed:
                if not tx.written:
                    continue  # it never left: not an attempt
                if attempt < self.retries:
                    attempt += 1
                    continue
            raise _failure(tx)

    async def send_message(
        self,
        msg: email.message.Message,
        sender: str | None = None,
        recipients: str | Sequence[str] | None = None,
        *,
        mail_options: Iterable[str] = (),
        rcpt_options: Iterable[str] = (),
    ) -> tuple[dict[str, Reply], Reply]:
        """:meth:`SMTP.send_message` on one of the pool's connections (an
        address that needs SMTPUTF8 is sent with it: the server must offer it)."""
        sender, recipient_list, data, extra = flatten_message(msg, sender, recipients, True)
        return await self.sendmail(
            sender, recipient_list, data, mail_options=(*mail_options, *extra), rcpt_options=rcpt_options
        )

    # -- connections ---------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Give waiting messages to connections with room; open connections
        when messages are left and the pool may grow."""
        queue = self._queue
        spare = self._spare
        depth = self.depth
        while queue and spare:
            member = spare[0]
            if member.gone or member.inflight >= depth:
                spare.popleft()
                member.listed = False
                continue
            request = queue.popleft()
            if request.future is None or request.future.done():
                continue  # its sender gave up
            self._start(member, request)
        if queue and not self._closed and len(self._members) + self._opening < self.connections:
            room = self.connections - len(self._members) - self._opening
            wanted = -(-len(queue) // depth) - self._opening
            for _ in range(min(room, wanted)):
                self._opening += 1
                task = asyncio.get_running_loop().create_task(self._open())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _start(self, member: _PoolMember, request: _Request) -> None:
        client = member.client
        try:
            tx = client.transaction(
                request.sender, request.recipients, request.message, request.mail_options, request.rcpt_options
            )
        except Exception as exc:  # the message cannot be sent at all (a bad address, say)
            assert request.future is not None
            request.future.set_exception(exc)
            return
        request.tx = tx
        request.member = member
        member.inflight += 1
        member.protocol.submit(tx, request.future)

    def _spare_capacity(self, member: _PoolMember) -> None:
        if member.gone:
            return
        if not member.listed:
            member.listed = True
            self._spare.append(member)
        if self._queue:
            self._dispatch()

    def _lost(self, member: _PoolMember) -> None:
        self._members.discard(member)
        self.dropped += 1
        if self._queue and not self._closed:
            self._dispatch()  # a replacement, if messages wait

    def _cancelled(self, request: _Request) -> None:
        """A sender gave up: withdraw its message (see :meth:`SMTP._wait`)."""
        member, tx = request.member, request.tx
        if member is None or tx is None:
            try:
                self._queue.remove(request)  # (rare: a caller giving up before its turn)
            except ValueError:
                pass
        elif not tx.done:
            member.protocol.engine.cancel(tx)

    async def _open(self) -> None:
        client = SMTP(self.hostname, self.port, **self.smtp_options)
        try:
            await client.connect()
        except BaseException as exc:
            self._opening -= 1
            self.open_error = exc
            if not self._members and not self._opening:
                # Nothing to send the waiting messages on: they fail with why.
                while self._queue:
                    request = self._queue.popleft()
                    if request.future is not None and not request.future.done():
                        request.future.set_exception(exc if isinstance(exc, Exception) else _smtplib.SMTPServerDisconnected(str(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        self._opening -= 1
        protocol = client._conn()
        if self._closed:
            await client.quit()
            return
        member = _PoolMember(self, client, protocol)
        protocol.listener = member
        self._members.add(member)
        self.opened += 1
        self._spare_capacity(member)

    async def close(self) -> None:
        """Wait for the messages in flight, then QUIT every connection;
        messages still waiting for a connection fail with
        :class:`smtplib.SMTPServerDisconnected`."""
        self._closed = True
        while self._queue:
            request = self._queue.popleft()
            if request.future is not None and not request.future.done():
                request.future.set_exception(_smtplib.SMTPServerDisconnected("the pool was closed"))
        for task in list(self._tasks):
            task.cancel()
        members = list(self._members)
        results = await asyncio.gather(*(m.client.quit() for m in members), return_exceptions=True)
        for member, result in zip(members, results):
            if isinstance(result, BaseException):
                member.client.close()
        self._members.clear()
        self._spare.clear()

    async def __aenter__(self) -> SMTPPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
