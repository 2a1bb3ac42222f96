"""fastreply.aio: replies from StreamReaders and Protocols, in order, with
read-ahead kept, errors and connection loss delivered to every caller, and
cancellation losing nothing.

Everything runs under ``asyncio.run`` (no plugin); servers listen on
127.0.0.1 only and are closed by the test.  Tests that take ``impl`` run
with both parser implementations.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import ssl
import sys
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any, Awaitable, Callable, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastreply
from fastreply import aio
from fastreply.errors import IncompleteReply, LineTooLong, MalformedReply, ReplyError, TooManyLines
from tls import INJECTED, client_context, make_certificate, tls_server

T = TypeVar("T")
HOST = "127.0.0.1"
TIMEOUT = 10.0

SESSION = (
    b"220 mx.example.org ESMTP\r\n"
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"
    b"250 2.1.0 Ok\r\n"
    b"550 5.1.1 <nobody@example.org>: User unknown\r\n"
    b"354 End data with <CR><LF>.<CR><LF>\r\n"
    b"250 2.0.0 Ok: queued as 4F2A31C0E1\r\n"
    b"221 2.0.0 Bye\r\n"
)


def run(coro: Awaitable[T]) -> T:
    """asyncio.run with a watchdog: no test may hang."""
    async def guarded() -> T:
        return await asyncio.wait_for(coro, TIMEOUT)

    return asyncio.run(guarded())


def same_error(a: object, b: object) -> bool:
    """Two raises of one stored error: copies (each with its own traceback)
    that say the same: type, message, attributes and cause."""
    assert isinstance(a, BaseException) and isinstance(b, BaseException)
    return (
        a is not b
        and type(a) is type(b)
        and str(a) == str(b)
        and a.args == b.args
        and vars(a) == vars(b)
        and a.__cause__ is b.__cause__
    )


def parse_all(impl: ModuleType, data: bytes) -> list[Any]:
    return list(impl.ReplyParser().feed(data))


def stream_reader(*chunks: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    if eof:
        reader.feed_eof()
    return reader


# -- ReplyReader / read_reply on StreamReaders ------------------------------------------------


def test_read_reply_keeps_read_ahead(impl: ModuleType) -> None:
    async def main() -> None:
        reader = stream_reader(SESSION)
        first = await aio.read_reply(reader, impl.ReplyParser)
        assert first == impl.Reply(220, (b"mx.example.org ESMTP",))
        # One read took the whole burst: the rest waits, parsed, for the next calls.
        replies = aio.ReplyReader(reader)
        assert replies.pending == 6 and type(replies.parser) is impl.ReplyParser
        rest = [await aio.read_reply(reader) for _ in range(6)]
        assert [first, *rest] == parse_all(impl, SESSION)
        with pytest.raises(aio.ConnectionClosed):
            await aio.read_reply(reader)

    run(main())


def test_read_reply_in_any_chunking(impl: ModuleType) -> None:
    async def main() -> None:
        for size in (1, 2, 7, 64):
            reader = asyncio.StreamReader()
            replies = aio.ReplyReader(reader, impl.ReplyParser, read_size=5)

            async def produce() -> None:
                for i in range(0, len(SESSION), size):
                    reader.feed_data(SESSION[i : i + size])
                    await asyncio.sleep(0)
                reader.feed_eof()

            producer = asyncio.create_task(produce())
            got = [reply async for reply in replies]
            await producer
            assert got == parse_all(impl, SESSION), size

    run(main())


def test_one_state_per_stream_reader(impl: ModuleType) -> None:
    async def main() -> None:
        reader = stream_reader(b"250 a\r\n250 b\r\n250 c\r\n")
        one = aio.ReplyReader(reader, impl.ReplyParser)
        assert (await one.read_reply()).lines == (b"a",)
        two = aio.ReplyReader(reader)  # the same state: b and c were read ahead
        assert two.parser is one.parser and two.pending == 2
        assert aio.ReplyReader(reader, impl.ReplyParser).parser is one.parser  # named again
        assert (await aio.read_reply(reader)).lines == (b"b",)
        assert (await two.read_reply()).lines == (b"c",)
        with pytest.raises(ValueError, match="split the stream"):
            aio.ReplyReader(reader, functools.partial(impl.ReplyParser, strict=True))
        with pytest.raises(TypeError):
            aio.ReplyReader(asyncio.StreamReader(), strict=True)  # type: ignore[call-arg]

    run(main())


def test_state_lives_as_long_as_the_reader() -> None:
    async def main() -> None:
        reader = stream_reader(b"250 a\r\n250 b\r\n")
        await aio.read_reply(reader)
        # (the module's registry of states: what this test pins down)
        state = weakref.ref(aio._states[reader])
        reader_ref = weakref.ref(reader)
        del reader
        gc.collect()
        assert reader_ref() is None and state() is None

    run(main())


def test_parser_options_and_limits(impl: ModuleType) -> None:
    async def main() -> None:
        reader = stream_reader(b"250 ok\r\n250 " + b"x" * 100 + b"\r\n")
        replies = aio.ReplyReader(reader, functools.partial(fastreply.ReplyParser,
                                                            max_line_length=64))
        assert type(replies.parser) is fastreply.ReplyParser
        assert (await replies.read_reply()).code == 250
        with pytest.raises(LineTooLong) as info:
            await replies.read_reply()
        assert info.value.offset == 8
        reader = stream_reader(b"250-x\r\n" * 5 + b"250 y\r\n")
        with pytest.raises(TooManyLines):
            await aio.ReplyReader(reader, functools.partial(impl.ReplyParser,
                                                            max_reply_lines=3)).read_reply()

    run(main())


def test_malformed_stream(impl: ModuleType) -> None:
    async def main() -> None:
        reader = stream_reader(b"220 hi\r\n250 ok\r\nHTTP/1.1 400 Bad Request\r\n250 after\r\n")
        replies = aio.ReplyReader(reader, impl.ReplyParser)
        assert [(await replies.read_reply()).code for _ in range(2)] == [220, 250]
        with pytest.raises(MalformedReply) as first:
            await replies.read_reply()
        assert first.value.offset == 16 and first.value.line.startswith(b"HTTP/1.1")
        with pytest.raises(MalformedReply) as again:  # stays raised
            await replies.read_reply()
        assert same_error(again.value, first.value)
        # discard() (for STARTTLS) clears it, and the reader's own buffer.
        reader = stream_reader(b"220 a\r\n250 b\r\n", eof=False)
        replies = aio.ReplyReader(reader, impl.ReplyParser, read_size=8)
        assert (await replies.read_reply()).code == 220
        reader.feed_data(b"bad\r\n")
        assert replies.discard() == len(b"250 b\r\nbad\r\n")
        reader.feed_data(b"250 fresh\r\n")
        assert (await replies.read_reply()).lines == (b"fresh",)

    run(main())


def test_end_of_stream(impl: ModuleType) -> None:
    async def main() -> None:
        replies = aio.ReplyReader(stream_reader(b"250 ok\r\n"), impl.ReplyParser)
        await replies.read_reply()
        with pytest.raises(aio.ConnectionClosed) as clean:
            await replies.read_reply()
        assert isinstance(clean.value, ConnectionError)
        assert not isinstance(clean.value, ReplyError)

        replies = aio.ReplyReader(stream_reader(b"250 ok\r\n250-cut\r\n250 sh"), impl.ReplyParser)
        await replies.read_reply()
        with pytest.raises(aio.ClosedMidReply) as cut:
            await replies.read_reply()
        assert isinstance(cut.value, IncompleteReply) and isinstance(cut.value, ConnectionError)
        assert cut.value.offset == 8 and cut.value.line == b"250-cut\r\n"
        with pytest.raises(aio.ClosedMidReply):
            await replies.read_reply()
        # Iteration stops at a clean end, not at a cut one.
        assert [r.code async for r in aio.ReplyReader(stream_reader(b"250 a\r\n221 b\r\n"))] == [250, 221]
        with pytest.raises(aio.ClosedMidReply):
            [r async for r in aio.ReplyReader(stream_reader(b"250 a\r\n221"))]

    run(main())


def test_stream_reader_exception_propagates(impl: ModuleType) -> None:
    async def main() -> None:
        reader = stream_reader(b"250-a\r\n", eof=False)
        replies = aio.ReplyReader(reader, impl.ReplyParser)
        task = asyncio.create_task(replies.read_reply())
        await asyncio.sleep(0)
        reader.set_exception(ConnectionResetError(104, "reset"))
        with pytest.raises(ConnectionResetError):
            await task

    run(main())


def test_reader_cancellation_loses_nothing(impl: ModuleType) -> None:
    async def main() -> None:
        reader = stream_reader(eof=False)
        replies = aio.ReplyReader(reader, impl.ReplyParser)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(replies.read_reply(), 0.01)
        reader.feed_data(b"250-par")
        task = asyncio.create_task(replies.read_reply())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        reader.feed_data(b"tial\r\n250 end\r\n221 bye\r\n")
        assert (await replies.read_reply()).lines == (b"partial", b"end")
        assert (await replies.read_reply()).code == 221

    run(main())


def test_concurrent_reader_calls_are_served_in_order(impl: ModuleType) -> None:
    async def main() -> None:
        reader = stream_reader(eof=False)
        replies = aio.ReplyReader(reader, impl.ReplyParser)
        tasks = [asyncio.create_task(replies.read_reply()) for _ in range(5)]
        await asyncio.sleep(0)
        tasks[1].cancel()
        reader.feed_data(b"".join(b"250 %d\r\n" % i for i in range(3)))
        await asyncio.sleep(0)
        reader.feed_data(b"250 3\r\n")
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(done[1], asyncio.CancelledError)
        assert [r.lines[0] for r in done if not isinstance(r, BaseException)] == [b"0", b"1", b"2", b"3"]

    run(main())


def test_read_ahead_does_not_jump_the_queue(impl: ModuleType) -> None:
    # A caller that finds replies read ahead still waits for the callers
    # before it (one of them was woken and has not run yet).
    async def main() -> None:
        reader = stream_reader(eof=False)
        replies = aio.ReplyReader(reader, impl.ReplyParser)
        first = asyncio.create_task(replies.read_reply())
        second = asyncio.create_task(replies.read_reply())
        await asyncio.sleep(0)
        reader.feed_data(b"250 one\r\n250 two\r\n250 three\r\n")
        await asyncio.sleep(0)  # first runs, takes "one", hands the turn to second
        assert first.done() and not second.done() and replies.pending == 2
        late = replies.read_reply()
        pending = late.send(None)  # must wait its turn: no StopIteration
        assert pending is not None
        late.close()
        assert (await first).lines == (b"one",)
        assert (await second).lines == (b"two",)
        assert (await replies.read_reply()).lines == (b"three",)

    run(main())


# -- ReplyQueue / ReplyProtocol with a fake transport ----------------------------------------------


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.reading = True
        self.closing = False
        self.pauses = 0

    def write(self, data: Any) -> None:
        self.written += data

    def is_reading(self) -> bool:
        return self.reading

    def pause_reading(self) -> None:
        self.reading = False
        self.pauses += 1

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def connected(impl: ModuleType, **options: Any) -> tuple[aio.ReplyProtocol, FakeTransport]:
    proto = aio.ReplyProtocol(functools.partial(impl.ReplyParser, **options))
    transport = FakeTransport()
    proto.connection_made(transport)
    return proto, transport


def test_protocol_replies_in_order(impl: ModuleType) -> None:
    async def main() -> None:
        proto, transport = connected(impl)
        for i in range(0, len(SESSION), 3):
            proto.data_received(SESSION[i : i + 3])
        assert proto.replies.pending == 7
        got = [await proto.next_reply() for _ in range(7)]
        assert got == parse_all(impl, SESSION)
        task = asyncio.create_task(proto.command("NOOP"))
        await asyncio.sleep(0)
        assert transport.written == b"NOOP\r\n"
        proto.data_received(b"250 2.0.0 Ok\r\n")
        assert (await task).code == 250

    run(main())


def test_waiters_are_served_first_come_first_served(impl: ModuleType) -> None:
    async def main() -> None:
        proto, _ = connected(impl)
        tasks = [asyncio.create_task(proto.next_reply()) for _ in range(6)]
        await asyncio.sleep(0)
        assert proto.replies.waiting == 6
        proto.data_received(b"250 0\r\n250 1\r\n250-2")
        # A caller arriving now queues behind the waiting ones.
        late = asyncio.create_task(proto.next_reply())
        await asyncio.sleep(0)
        proto.data_received(b"\r\n250 2b\r\n250 3\r\n250 4\r\n250 5\r\n250 6\r\n")
        got = await asyncio.gather(*tasks, late)
        assert [r.lines[0] for r in got] == [b"0", b"1", b"2", b"3", b"4", b"5", b"6"]
        assert proto.replies.waiting == 0 and proto.replies.pending == 0

    run(main())


def test_cancelled_waiter_passes_its_reply_on(impl: ModuleType) -> None:
    async def main() -> None:
        proto, _ = connected(impl)
        first = asyncio.create_task(proto.next_reply())
        second = asyncio.create_task(proto.next_reply())
        third = asyncio.create_task(proto.next_reply())
        await asyncio.sleep(0)
        # The reply wakes the first waiter, which is cancelled before it runs.
        proto.data_received(b"250 one\r\n")
        first.cancel()
        # A waiter that was not woken is cancelled too.
        third.cancel()
        assert (await second).lines == (b"one",)
        for task in (first, third):
            with pytest.raises(asyncio.CancelledError):
                await task
        # Timeouts are cancellations: nothing is lost either.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(proto.next_reply(), 0.01)
        proto.data_received(b"250 two\r\n")
        assert (await proto.next_reply()).lines == (b"two",)
        assert proto.replies.waiting == 0

    run(main())


def test_cancellation_race_many(impl: ModuleType) -> None:
    # Many waiters, replies arriving in bursts, every other waiter cancelled
    # at once after the burst: every reply reaches exactly one caller, in order.
    async def main() -> None:
        proto, _ = connected(impl)
        tasks = [asyncio.create_task(proto.next_reply()) for _ in range(40)]
        await asyncio.sleep(0)
        proto.data_received(b"".join(b"250 %d\r\n" % i for i in range(20)))
        for task in tasks[::2]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        got = [r.lines[0] for r in results if not isinstance(r, BaseException)]
        assert got == [b"%d" % i for i in range(20)]
        assert proto.replies.pending == 0

    run(main())


def test_parse_error_reaches_the_right_waiter(impl: ModuleType) -> None:
    async def main() -> None:
        proto, _ = connected(impl)
        tasks = [asyncio.create_task(proto.next_reply()) for _ in range(4)]
        await asyncio.sleep(0)
        proto.data_received(b"250 a\r\n250 b\r\n25x bad\r\n250 ignored\r\n")
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert [r.lines for r in results[:2]] == [(b"a",), (b"b",)]  # type: ignore[union-attr]
        assert isinstance(results[2], MalformedReply) and results[2].offset == 14
        assert same_error(results[3], results[2])
        proto.data_received(b"250 later\r\n")  # ignored: the stream is broken
        with pytest.raises(MalformedReply):
            await proto.next_reply()
        assert isinstance(proto.replies.exception, MalformedReply)

    run(main())


@pytest.mark.parametrize("how", ["lost", "lost with error", "eof"])
def test_connection_loss_wakes_every_waiter(impl: ModuleType, how: str) -> None:
    async def main() -> None:
        proto, _ = connected(impl)
        tasks = [asyncio.create_task(proto.next_reply()) for _ in range(5)]
        await asyncio.sleep(0)
        proto.data_received(b"250 a\r\n")
        cause = ConnectionResetError(104, "reset")
        if how == "eof":
            assert proto.eof_received() is None
            proto.connection_lost(None)
        else:
            proto.connection_lost(cause if how == "lost with error" else None)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results[0].lines == (b"a",)  # type: ignore[union-attr]
        error = results[1]
        assert type(error) is aio.ConnectionClosed
        assert all(same_error(r, error) for r in results[2:])
        assert isinstance(error, ConnectionError)
        if how == "lost with error":
            assert error.__cause__ is cause
        with pytest.raises(aio.ConnectionClosed):
            await proto.next_reply()
        with pytest.raises(aio.ConnectionClosed):
            proto.write(b"NOOP\r\n")

    run(main())


def test_connection_lost_mid_reply(impl: ModuleType) -> None:
    async def main() -> None:
        proto, _ = connected(impl)
        tasks = [asyncio.create_task(proto.next_reply()) for _ in range(3)]
        await asyncio.sleep(0)
        proto.data_received(b"250 a\r\n250-b\r\n250 c")
        proto.connection_lost(None)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results[0].code == 250  # type: ignore[union-attr]
        assert isinstance(results[1], aio.ClosedMidReply)
        assert isinstance(results[1], IncompleteReply) and isinstance(results[1], ConnectionError)
        assert results[1].offset == 7 and results[1].line == b"250-b\r\n"
        assert same_error(results[2], results[1])

    run(main())


def test_flow_control(impl: ModuleType) -> None:
    async def main() -> None:
        proto = aio.ReplyProtocol(impl.ReplyParser, max_pending=4)
        transport = FakeTransport()
        proto.connection_made(transport)
        proto.data_received(b"250 x\r\n" * 3)
        assert transport.reading
        proto.data_received(b"250 x\r\n" * 7)
        assert not transport.reading and transport.pauses == 1
        for _ in range(7):
            await proto.next_reply()
        assert not transport.reading  # 3 left: more than half of 4
        await proto.next_reply()
        assert transport.reading
        with pytest.raises(ValueError):
            aio.ReplyQueue(max_pending=0)

    run(main())


def test_get_nowait_and_discard(impl: ModuleType) -> None:
    async def main() -> None:
        queue = aio.ReplyQueue(impl.ReplyParser)
        with pytest.raises(asyncio.QueueEmpty):
            queue.get_nowait()
        queue.feed_data(b"250 a\r\n250 b\r\n250-c")
        assert queue.get_nowait().lines == (b"a",)
        assert queue.discard() == len(b"250 b\r\n250-c")
        assert queue.pending == 0 and queue.parser.buffered == 0
        # A waiter woken for a reply that is then discarded waits on.
        waiter = asyncio.create_task(queue.next_reply())
        await asyncio.sleep(0)
        queue.feed_data(b"250 dropped\r\n")
        queue.discard()
        await asyncio.sleep(0)
        assert not waiter.done() and queue.waiting == 1
        queue.feed_data(b"250 kept\r\n")
        assert (await waiter).lines == (b"kept",)
        queue.feed_data(b"bad\r\n")
        with pytest.raises(MalformedReply):
            queue.get_nowait()
        queue.discard()  # a parse error before the handshake is dropped too
        queue.feed_data(b"250 ok\r\n")
        assert queue.get_nowait().lines == (b"ok",)
        queue.feed_eof()
        with pytest.raises(aio.ConnectionClosed):
            queue.get_nowait()

    run(main())


def test_protocol_start_tls_drops_plaintext(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        proto, transport = connected(impl)
        proto.data_received(b"220 Ready to start TLS\r\n")
        assert (await proto.next_reply()).code == 220
        proto.data_received(b"250-injected\r\n250 AUTH PLAIN\r\n250-partial")
        tls = FakeTransport()
        loop = asyncio.get_running_loop()

        async def start_tls(transport_: Any, protocol: Any, context: Any, **kwargs: Any) -> Any:
            assert transport_ is transport and protocol is proto
            assert proto.replies.pending == 0 and proto.replies.parser.buffered == 0
            return tls

        monkeypatch.setattr(loop, "start_tls", start_tls)
        await proto.start_tls(ssl.create_default_context(), server_hostname="mx.example.org")
        assert proto.transport is tls
        proto.data_received(b"250 mx.example.org\r\n")
        assert (await proto.next_reply()).lines == (b"mx.example.org",)

    run(main())


# -- differential: the queue gives what the parser gives -----------------------------------------

piece = st.one_of(
    st.sampled_from([b"250 ok\r\n", b"250-a\r\n", b"250 b\n", b"354\r\n", b"221 bye\r\n", b"xx\r\n",
                     b"999 x\r\n", b"250-" + b"y" * 70 + b"\r\n"]),
    st.binary(max_size=6),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(piece, max_size=25), cuts=st.lists(st.integers(0, 400), max_size=8),
       waiters=st.integers(0, 6), end=st.sampled_from(["eof", "lost", "open"]))
def test_queue_matches_parser(impl: ModuleType, parts: list[bytes], cuts: list[int], waiters: int,
                              end: str) -> None:
    data = b"".join(parts)
    options = {"max_line_length": 64, "max_reply_lines": 5}
    # What the parser says, fed whole.
    parser = impl.ReplyParser(**options)
    expected: list[Any] = []
    error: BaseException | None = None
    try:
        expected = parser.feed(data)
        if end != "open":
            parser.close()
    except ReplyError as exc:
        expected = [*expected, *exc.replies]
        error = exc

    async def main() -> None:
        queue = aio.ReplyQueue(functools.partial(impl.ReplyParser, **options))
        early = [asyncio.create_task(queue.next_reply()) for _ in range(waiters)]
        await asyncio.sleep(0)
        bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
        for a, b in zip(bounds, bounds[1:]):
            queue.feed_data(data[a:b])
            await asyncio.sleep(0)
        if end == "eof":
            queue.feed_eof()
        elif end == "lost":
            queue.connection_lost(OSError("gone"))
        if end == "open":
            # Still waiting for more: those callers give up (nothing is lost).
            for _ in range(3):
                await asyncio.sleep(0)
            for task in early:
                task.cancel()
        got: list[Any] = []
        outcome: BaseException | None = None
        for result in await asyncio.gather(*early, return_exceptions=True):
            if isinstance(result, asyncio.CancelledError):
                continue
            if isinstance(result, BaseException):
                outcome = result
            else:
                assert outcome is None
                got.append(result)
        while outcome is None:
            if end == "open" and not queue.pending and queue.exception is None:
                break
            try:
                got.append(await queue.next_reply())
            except BaseException as exc:  # noqa: BLE001
                outcome = exc
        assert got == expected
        if error is not None:
            assert type(outcome) in (type(error), aio.ClosedMidReply)
            if isinstance(error, IncompleteReply):
                assert isinstance(outcome, aio.ClosedMidReply)
            assert outcome.offset == error.offset  # type: ignore[attr-defined]
        elif end == "open":
            assert outcome is None
        else:
            assert type(outcome) is aio.ConnectionClosed

    run(main())


# -- real loopback servers ---------------------------------------------------------------------


async def serve(script: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
                ) -> tuple[asyncio.AbstractServer, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    server = await asyncio.start_server(handle, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    return server, port


async def smtp_script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A tiny SMTP server: the greeting, then one scripted reply per command;
    pipelined commands get their replies in one write."""
    answers = {
        b"EHLO": b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
        b"MAIL": b"250 2.1.0 Ok\r\n",
        b"RCPT": b"250 2.1.5 Ok\r\n",
        b"DATA": b"354 go\r\n",
        b"NOOP": b"250 2.0.0 Ok\r\n",
        b"QUIT": b"221 2.0.0 Bye\r\n",
    }
    writer.write(b"220 mx.example.org ESMTP\r\n")
    while True:
        data = await reader.read(65536)
        if not data:
            return
        out = b""
        for line in data.split(b"\r\n")[:-1]:
            out += answers.get(line[:4].upper(), b"502 5.5.2 Error: command not recognized\r\n")
        writer.write(out)
        await writer.drain()
        if b"221 " in out:
            return


def test_stream_session_with_a_real_server(impl: ModuleType) -> None:
    async def main() -> None:
        server, port = await serve(smtp_script)
        async with server:
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                assert (await aio.read_reply(reader, impl.ReplyParser)).code == 220
                writer.write(b"EHLO client.example\r\n")
                ehlo = await aio.read_reply(reader, impl.ReplyParser)
                assert ehlo.lines == (b"mx.example.org", b"PIPELINING", b"SIZE 1000")
                writer.write(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
                             b"RCPT TO:<c@example.net>\r\nDATA\r\n")
                replies = await aio.ReplyReader(reader).read_replies(4)
                assert [r.code for r in replies] == [250, 250, 250, 354]
                writer.write(b"XYZZY\r\nQUIT\r\n")
                assert [r.code for r in await aio.ReplyReader(reader).read_replies(2)] == [502, 221]
                with pytest.raises(aio.ConnectionClosed):
                    await aio.read_reply(reader)
            finally:
                writer.close()
                await writer.wait_closed()

    run(main())


def test_protocol_session_with_a_real_server(impl: ModuleType) -> None:
    async def main() -> None:
        server, port = await serve(smtp_script)
        async with server:
            loop = asyncio.get_running_loop()
            transport, proto = await loop.create_connection(
                lambda: aio.ReplyProtocol(impl.ReplyParser), HOST, port
            )
            try:
                assert (await proto.next_reply()).code == 220
                assert (await proto.command("EHLO client.example")).is_multiline
                proto.write(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nNOOP\r\n")
                codes = await asyncio.gather(*(proto.next_reply() for _ in range(3)))
                assert [r.code for r in codes] == [250, 250, 250]
                assert (await proto.command(b"QUIT")).code == 221
                with pytest.raises(aio.ConnectionClosed):
                    await proto.next_reply()
            finally:
                transport.close()

    run(main())


def test_protocol_server_hangs_up_mid_reply(impl: ModuleType) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hi\r\n250-cut off")
        await writer.drain()

    async def main() -> None:
        server, port = await serve(script)
        async with server:
            loop = asyncio.get_running_loop()
            transport, proto = await loop.create_connection(
                lambda: aio.ReplyProtocol(impl.ReplyParser), HOST, port
            )
            try:
                waiters = [asyncio.create_task(proto.next_reply()) for _ in range(3)]
                results = await asyncio.gather(*waiters, return_exceptions=True)
                assert results[0].code == 220  # type: ignore[union-attr]
                assert isinstance(results[1], aio.ClosedMidReply)
                assert same_error(results[2], results[1])
            finally:
                transport.close()

    run(main())


# -- STARTTLS with a real handshake ------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


async def wait_for_bytes(get: Callable[[], int], count: int) -> None:
    """Let the injected bytes arrive (one loopback write; a few loop turns)."""
    for _ in range(200):
        if get() >= count:
            return
        await asyncio.sleep(0.005)


@pytest.mark.server
@pytest.mark.parametrize("injected", [b"", INJECTED])
def test_protocol_real_starttls_drops_plaintext(impl: ModuleType, certificate: tuple[Path, Path],
                                                injected: bytes) -> None:
    port, thread, errors = tls_server(certificate, injected, ehlo_first=False)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_connection(
            lambda: aio.ReplyProtocol(impl.ReplyParser), HOST, port
        )
        try:
            assert (await proto.next_reply()).code == 220
            assert (await proto.command(b"STARTTLS")).code == 220
            await wait_for_bytes(lambda: proto.replies.pending, 1 if injected else 0)
            assert proto.replies.pending == (1 if injected else 0)  # the injected EHLO reply
            await proto.start_tls(client_context(certificate), server_hostname="localhost")
            ehlo = await proto.command(b"EHLO client.example")
            assert ehlo.lines == (b"mx.example.org", b"SIZE 1000")
            assert (await proto.command(b"QUIT")).code == 221
        finally:
            if proto.transport is not None:
                proto.transport.close()
            transport.close()

    run(main())
    thread.join(TIMEOUT)
    assert not thread.is_alive() and not errors, errors


@pytest.mark.server
@pytest.mark.skipif(sys.version_info < (3, 11), reason="StreamWriter.start_tls() is new in 3.11")
@pytest.mark.parametrize("injected", [b"", INJECTED])
def test_stream_real_starttls_drops_plaintext(impl: ModuleType, certificate: tuple[Path, Path],
                                              injected: bytes) -> None:
    port, thread, errors = tls_server(certificate, injected, ehlo_first=False)

    async def main() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            replies = aio.ReplyReader(reader, impl.ReplyParser, read_size=16)
            assert (await replies.read_reply()).code == 220
            writer.write(b"STARTTLS\r\n")
            assert (await replies.read_reply()).code == 220
            # Small reads: part of the injection is parsed ahead, the rest
            # still waits in the StreamReader; both must go.
            await wait_for_bytes(lambda: len(getattr(reader, "_buffer", b"")) + replies.buffered
                                 + replies.pending, 1 if injected else 0)
            await replies.start_tls(writer, client_context(certificate), server_hostname="localhost")
            writer.write(b"EHLO client.example\r\n")
            ehlo = await replies.read_reply()
            assert ehlo.lines == (b"mx.example.org", b"SIZE 1000")
            writer.write(b"QUIT\r\n")
            assert (await replies.read_reply()).code == 221
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError):
                pass

    run(main())
    thread.join(TIMEOUT)
    assert not thread.is_alive() and not errors, errors


# -- hostile callers: polling a broken stream, batches, mass cancellation -------------


def _traceback_length(exc: BaseException) -> int:
    length, tb = 0, exc.__traceback__
    while tb is not None:
        length, tb = length + 1, tb.tb_next
    return length


def test_a_stored_error_raised_again_does_not_grow(impl: ModuleType) -> None:
    """Each later call raises a copy with its own traceback: the stored error
    collected a frame per call before (400,007 entries after 200,000 calls)."""
    async def main() -> None:
        proto, _ = connected(impl)
        proto.data_received(b"250 ok\r\nnonsense\r\n")
        assert (await proto.next_reply()).code == 250
        queue = proto.replies
        reader = aio.ReplyReader(stream_reader(b"250 ok\r\n250-cut"), impl.ReplyParser)
        assert (await reader.read_reply()).code == 250
        lengths: dict[str, list[int]] = {"queue": [], "nowait": [], "reader": []}
        for _ in range(500):
            for name, call in (("queue", queue.next_reply), ("reader", reader.read_reply)):
                try:
                    await call()
                except ReplyError as exc:
                    lengths[name].append(_traceback_length(exc))
            try:
                queue.get_nowait()
            except ReplyError as exc:
                lengths["nowait"].append(_traceback_length(exc))
        for name, seen in lengths.items():
            assert len(seen) == 500 and max(seen) == seen[0] <= 4, (name, seen[0], max(seen))
        stored = queue.exception
        assert isinstance(stored, MalformedReply) and _traceback_length(stored) <= 2
        assert str(stored).startswith("line does not start with a three-digit reply code")

    run(main())


def test_read_replies_takes_its_replies_together(impl: ModuleType) -> None:
    """A read_reply() that starts while read_replies(3) waits gets the fourth
    reply, not the second (read_replies was three read_reply() calls)."""
    async def main() -> None:
        reader = stream_reader(eof=False)
        replies = aio.ReplyReader(reader, impl.ReplyParser)
        batch = asyncio.create_task(replies.read_replies(3))
        await asyncio.sleep(0)
        single = asyncio.create_task(replies.read_reply())
        for code in (250, 251, 252, 253):
            reader.feed_data(b"%d ok\r\n" % code)
            for _ in range(3):
                await asyncio.sleep(0)
        assert [r.code for r in await batch] == [250, 251, 252]
        assert (await single).code == 253
        assert await replies.read_replies(0) == []
        with pytest.raises(ValueError, match="count must not be negative"):
            await replies.read_replies(-1)

    run(main())


def test_read_replies_cancelled_part_way_loses_nothing(impl: ModuleType) -> None:
    async def main() -> None:
        reader = stream_reader(eof=False)
        replies = aio.ReplyReader(reader, impl.ReplyParser, read_size=8)
        batch = asyncio.create_task(replies.read_replies(3))
        reader.feed_data(b"250 a\r\n251 b\r\n")  # two of the three
        for _ in range(5):
            await asyncio.sleep(0)
        batch.cancel()  # asyncio.wait_for timing out does this
        with pytest.raises(asyncio.CancelledError):
            await batch
        assert replies.pending == 2  # back, first in line
        reader.feed_data(b"252 c\r\n")
        assert [r.code for r in await replies.read_replies(3)] == [250, 251, 252]
        # Failing part way: what was taken comes back before the error.
        reader.feed_data(b"253 d\r\nbad\r\n")
        with pytest.raises(MalformedReply):
            await replies.read_replies(2)
        assert (await replies.read_reply()).code == 253
        with pytest.raises(MalformedReply):
            await replies.read_reply()

    run(main())


def test_cancelling_many_waiters_costs_the_same_in_any_order(impl: ModuleType) -> None:
    """Leaving the line is O(1): cancelling the newest waiter first compared
    it with every older one (deque.remove: quadratic, 10 s for 40,000)."""
    compared = 0

    class CountingFuture(asyncio.Future):  # type: ignore[type-arg]
        def __eq__(self, other: object) -> bool:
            nonlocal compared
            compared += 1
            return self is other

        __hash__ = asyncio.Future.__hash__

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.create_future = lambda: CountingFuture(loop=loop)  # type: ignore[method-assign]
        proto, _ = connected(impl)
        tasks = [asyncio.create_task(proto.next_reply()) for _ in range(400)]
        await asyncio.sleep(0)
        assert proto.replies.waiting == 400
        for task in reversed(tasks[1:]):  # newest first, all but the oldest
            task.cancel()
            await asyncio.sleep(0)
        assert proto.replies.waiting == 1
        proto.data_received(b"250 ok\r\n")
        assert (await tasks[0]).code == 250

    run(main())
    assert compared < 400, compared
