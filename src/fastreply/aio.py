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
import copy
import weakref
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, cast

from ._parser import Reply, ReplyParser
from .errors import IncompleteReply, ReplyError

if TYPE_CHECKING:
    import ssl

__all__ = [
    "ReplyReader",
    "read_reply",
    "reply_reader",
    "ReplyQueue",
    "ReplyProtocol",
    "ConnectionClosed",
    "ClosedMidReply",
    "READ_SIZE",
    "DEFAULT_MAX_PENDING",
]

#: How many bytes one read from a StreamReader asks for.
READ_SIZE = 64 * 1024

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


def _new_parser(parser: ReplyParser | None, options: dict[str, Any]) -> ReplyParser:
    if parser is not None:
        if options:
            raise TypeError("give either a parser or parser options, not both")
        return parser
    return ReplyParser(**options)


# -- streams -----------------------------------------------------------------------


class _StreamState:
    """What a StreamReader's replies need between calls (no reference to
    the StreamReader itself, so a registry can hold it weakly)."""

    __slots__ = ("parser", "ready", "error", "lock", "inside", "__weakref__")

    def __init__(self, parser: ReplyParser) -> None:
        self.parser = parser
        self.ready: deque[Reply] = deque()
        self.error: BaseException | None = None
        self.lock = asyncio.Lock()  # one caller reads the stream at a time, in turn
        self.inside = 0  # callers holding or waiting for the lock


_states: weakref.WeakKeyDictionary[asyncio.StreamReader, _StreamState] = weakref.WeakKeyDictionary()


class ReplyReader:
    """Reads SMTP replies from an :class:`asyncio.StreamReader`.

    ``ReplyReader(reader)`` reads ``reader`` in chunks of ``read_size``
    bytes; replies and bytes read beyond the current reply stay for the
    next call.  There is one state per ``StreamReader``: every
    ``ReplyReader`` of the same reader, and :func:`read_reply`, share it.
    The parser (or the options to make one: ``max_line_length``,
    ``max_reply_lines``, ``strict``) can be chosen only when the state is
    made, by the first of them.

    Calls are served in order: tasks awaiting :meth:`read_reply` (or
    :meth:`read_replies`) at the same time get consecutive replies, first
    come first served.  Cancelling a call loses nothing.
    """

    __slots__ = ("_reader", "_state", "_read_size")

    def __init__(
        self,
        reader: asyncio.StreamReader,
        parser: ReplyParser | None = None,
        *,
        read_size: int = READ_SIZE,
        **parser_options: Any,
    ) -> None:
        if read_size < 1:
            raise ValueError(f"read_size must be at least 1, got {read_size}")
        state = _states.get(reader)
        if state is None:
            state = _StreamState(_new_parser(parser, parser_options))
            _states[reader] = state
        elif (parser is not None and parser is not state.parser) or parser_options:
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


def reply_reader(reader: asyncio.StreamReader, parser: ReplyParser | None = None) -> ReplyReader:
    """The :class:`ReplyReader` of ``reader`` (its state is made on first use,
    with ``parser`` if given)."""
    return ReplyReader(reader, parser)


async def read_reply(reader: asyncio.StreamReader, parser: ReplyParser | None = None) -> Reply:
    """Read the next SMTP reply from ``reader``.

    Bytes and replies read ahead are kept for the next call on the same
    reader (the state lives as long as the reader does).  ``parser`` picks
    the parser on the first call for a reader; later calls may pass the
    same parser or none.  See :meth:`ReplyReader.read_reply` for the errors.
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
    """

    def __init__(
        self,
        parser: ReplyParser | None = None,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        **parser_options: Any,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._parser = _new_parser(parser, parser_options)
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

    ``parser`` or ``parser_options`` (``max_line_length``,
    ``max_reply_lines``, ``strict``) and ``max_pending`` go to the queue.
    """

    def __init__(
        self,
        parser: ReplyParser | None = None,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        **parser_options: Any,
    ) -> None:
        self.replies = ReplyQueue(parser, max_pending=max_pending, **parser_options)
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
