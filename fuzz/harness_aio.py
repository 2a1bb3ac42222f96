"""The check behind the ``aio`` fuzz target: ``fastreply.aio`` under callers that
come, go and are cancelled at random, on both parsers.

An input is a header and a script; :func:`decode` maps *any* bytes to one.
Byte 0: flags (1 a ``ReplyReader`` over a ``StreamReader``, else a
``ReplyQueue``; 2 strict; 4 the stream has a malformed line after reply
``byte 1 % 48``).  Bytes 2-5 seed the reply stream (64 replies of 1-3 lines).
Each further byte is an operation, ``byte & 7`` with argument ``byte >> 3``:

====  ===========================================================================
op    queue (``ReplyQueue``)                 reader (``ReplyReader``)
====  ===========================================================================
0     feed the next ``4 * arg + 1`` bytes      the same, into the ``StreamReader``
1     a caller awaits ``next_reply()``        a caller awaits ``read_reply()``
2     cancel the live caller ``arg`` % n      the same
3     let the loop run ``arg % 4 + 1`` turns  the same
4     ``get_nowait()``                        a caller awaits ``read_replies(arg % 4)``
5     ``discard()`` (when ``arg`` < 2)        a caller awaits and is cancelled at once
6     when ``arg`` < 4, the connection ends  (``arg`` even: EOF, else lost; reader: EOF)
7     a caller that is cancelled at once      ``read_replies(arg % 4 + 1)``
====  ===========================================================================

At the end the rest of the stream is fed, the connection ends and the loop
runs until every caller is done.  :func:`check` then holds, for each parser:

* every reply taken, in the order taken, plus those dropped by ``discard()``
  and those still pending, is exactly the stream's replies in order (nothing
  lost, nothing twice; a cancelled caller takes nothing);
* callers are served in the order they came (a batch counts as one caller);
* every caller ends: with replies, cancelled, or with the stream's error or
  the end of the connection (a copy for each caller, never the same object);
* nothing else is raised;

and the two parsers give the same trace.
"""

from __future__ import annotations

import asyncio
import functools
import random
from types import ModuleType
from typing import Any

from harness import Divergence, _modules  # the parser target's (fuzz/ is on sys.path)

HEADER = 6
FLAG_READER = 1
FLAG_STRICT = 2
FLAG_BAD = 4

CODES = (220, 221, 250, 251, 354, 421, 450, 550)


def stream_of(head: bytes) -> tuple[bytes, list[bytes]]:
    """The reply stream of a case and the raw bytes of its good replies."""
    rng = random.Random(int.from_bytes(head[2:6], "big"))
    bad_after = head[1] % 48 if head[0] & FLAG_BAD else -1
    out, raws = [], []
    for index in range(64):
        code = rng.choice(CODES)
        lines = rng.randint(1, 3)
        raw = b"".join(b"%d-%s\r\n" % (code, b"x" * rng.randint(0, 9)) for _ in range(lines - 1))
        raw += b"%d %s\r\n" % (code, b"y" * rng.randint(0, 30))
        out.append(raw)
        raws.append(raw)
        if index == bad_after:
            out.append(b"bad line\r\n")
            break
    return b"".join(out), raws


class _Run:
    """One script on one parser implementation."""

    def __init__(self, module: ModuleType, data: bytes) -> None:
        import fastreply.aio as aio
        from fastreply.errors import ReplyError

        self.aio = aio
        #: What a caller may get instead of a reply.
        self.ends = (ReplyError, aio.ConnectionClosed)
        self.module = module
        head = data[:HEADER].ljust(HEADER, b"\0")
        self.ops = data[HEADER:]
        self.reader_mode = bool(head[0] & FLAG_READER)
        self.stream, self.raws = stream_of(head)
        self.make_parser = functools.partial(module.ReplyParser, strict=bool(head[0] & FLAG_STRICT))
        self.fed = 0
        self.taken: list[tuple[int, bytes]] = []  # (caller, raw) in the order taken
        self.dropped: list[bytes] = []
        self.callers: list[asyncio.Task[Any]] = []
        self.outcomes: dict[int, Any] = {}
        self.ended = False

    # -- callers ------------------------------------------------------------

    def _caller(self, coro_factory: Any, cancel_now: bool = False) -> None:
        index = len(self.callers)

        async def call() -> None:
            try:
                got = await coro_factory()
            except asyncio.CancelledError:
                self.outcomes[index] = "cancelled"
                raise
            except self.ends as exc:
                stored = getattr(self.queue, "exception", None) if not self.reader_mode else None
                if stored is not None and exc is stored:
                    raise Divergence("a caller got the stored error itself, not a copy")
                self.outcomes[index] = ("error", type(exc).__name__, str(exc))
                return
            replies = got if isinstance(got, list) else [got]
            for reply in replies:
                self.taken.append((index, reply.raw))
            self.outcomes[index] = ("ok", len(replies))

        task = asyncio.get_running_loop().create_task(call())
        self.callers.append(task)
        if cancel_now:
            task.cancel()

    def _live(self) -> list[asyncio.Task[Any]]:
        return [task for task in self.callers if not task.done()]

    # -- the script -----------------------------------------------------------

    def _feed(self, size: int) -> None:
        chunk = self.stream[self.fed : self.fed + size]
        self.fed += len(chunk)
        if not chunk:
            return
        if self.reader_mode:
            self.sreader.feed_data(chunk)
        else:
            self.queue.feed_data(chunk)

    def _end(self, arg: int) -> None:
        if self.ended:
            return
        self.ended = True
        if self.reader_mode:
            self.sreader.feed_eof()
        elif arg % 2:
            self.queue.connection_lost(ConnectionResetError(104, "reset"))
        else:
            self.queue.feed_eof()

    async def main(self) -> None:
        aio = self.aio
        if self.reader_mode:
            self.sreader = asyncio.StreamReader()
            self.rreader = aio.ReplyReader(self.sreader, self.make_parser, read_size=37)
            self.parser = self.rreader.parser
        else:
            self.queue = aio.ReplyQueue(self.make_parser)
            self.parser = self.queue.parser
        for byte in self.ops[:300]:
            op, arg = byte & 7, byte >> 3
            if op == 0:
                if not self.ended:
                    self._feed(4 * arg + 1)
            elif op == 1:
                self._caller(self.rreader.read_reply if self.reader_mode else self.queue.next_reply)
            elif op == 2:
                live = self._live()
                if live:
                    live[arg % len(live)].cancel()
            elif op == 3:
                for _ in range(arg % 4 + 1):
                    await asyncio.sleep(0)
            elif op == 4:
                if self.reader_mode:
                    count = arg % 4
                    self._caller(lambda count=count: self.rreader.read_replies(count))
                else:
                    self._nowait()
            elif op == 5:
                if self.reader_mode:
                    self._caller(self.rreader.read_reply, cancel_now=True)
                elif arg < 2 and self.parser.buffered == 0:
                    # (between replies: a reply cut in two would leave its
                    # second half to be read as replies of its own)
                    self.dropped += [reply.raw for reply in self.queue._replies]
                    self.queue.discard()
            elif op == 6:
                if arg < 4:
                    self._end(arg)
            else:
                if self.reader_mode:
                    count = arg % 4 + 1
                    self._caller(lambda count=count: self.rreader.read_replies(count))
                else:
                    self._caller(self.queue.next_reply, cancel_now=True)
        # The end: the rest of the stream, the end of the connection, and
        # every caller done.
        if not self.ended:
            self._feed(len(self.stream))
            self._end(0)
        # (an error or the end reaches the callers one after the other, each
        # waking the next: a turn of the loop each, at most)
        for _ in range(4 * len(self.callers) + 50):
            if not self._live():
                break
            await asyncio.sleep(0)
        left = self._live()
        if left:
            raise Divergence(f"{len(left)} callers still waiting after the connection ended")
        await asyncio.gather(*self.callers, return_exceptions=True)
        if self.reader_mode:
            # What the StreamReader still holds, read by one last caller.
            while True:
                try:
                    reply = await self.rreader.read_reply()
                except self.ends:
                    break
                self.taken.append((-2, reply.raw))

    def _nowait(self) -> None:
        try:
            reply = self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        except self.ends:
            return
        self.taken.append((-1, reply.raw))

    def pending(self) -> list[bytes]:
        if self.reader_mode:
            return [reply.raw for reply in self.rreader._state.ready]
        return [reply.raw for reply in self.queue._replies]


def observe(module: ModuleType, data: bytes) -> list[Any]:
    run = _Run(module, data)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run.main())
    except Divergence:
        raise
    except Exception as exc:  # noqa: BLE001 - anything else is a bug
        raise Divergence(f"{module.__name__}: {type(exc).__name__}: {exc}") from exc
    finally:
        loop.close()
    # Nothing lost, nothing twice, in order: the replies the bytes fed hold
    # whole (the connection may have ended before the rest was fed).
    whole, end = [], 0
    for raw in run.raws:
        end += len(raw)
        if end > run.fed:
            break
        whole.append(raw)
    run.raws = whole
    seen = [raw for _, raw in run.taken] + run.pending()
    if run.dropped:
        # discard() came between takes: the taken and the dropped replies,
        # each in order, are both subsequences of the stream's replies, and
        # together they are all of them.
        _subsequence(module, seen, run.raws)
        _subsequence(module, run.dropped, run.raws)
        if sorted(seen + run.dropped) != sorted(run.raws):
            raise Divergence(f"{module.__name__}: replies lost or doubled around discard()")
    else:
        everything = seen
        if everything != run.raws[: len(everything)]:
            raise Divergence(f"{module.__name__}: replies taken and pending are not the "
                             f"stream's first {len(everything)} replies in order")
        # Everything fed was parsed: the good replies are all there (the
        # stream with a bad line stops at it).
        if len(everything) != len(run.raws):
            raise Divergence(f"{module.__name__}: {len(run.raws) - len(everything)} replies "
                             f"lost (taken or pending: {len(everything)} of {len(run.raws)})")
    callers = [index for index, _ in run.taken if index >= 0 or index == -2]
    callers = [index if index >= 0 else len(run.callers) for index in callers]
    if any(b < a for a, b in zip(callers, callers[1:])):
        raise Divergence(f"{module.__name__}: callers served out of order: {callers}")
    for index, task in enumerate(run.callers):
        if task.cancelled():
            run.outcomes.setdefault(index, "cancelled")  # (maybe before it ever ran)
        if index not in run.outcomes:
            raise Divergence(f"{module.__name__}: caller {index} ended without an outcome")
        if not task.cancelled() and task.exception() is not None:
            raise Divergence(f"{module.__name__}: caller {index} raised {task.exception()!r}")
    return [run.taken, run.dropped, [run.outcomes[i] for i in range(len(run.callers))]]


def _subsequence(module: ModuleType, part: list[bytes], whole: list[bytes]) -> None:
    position = 0
    for raw in part:
        try:
            position = whole.index(raw, position) + 1
        except ValueError:
            raise Divergence(f"{module.__name__}: a reply out of order or twice: {raw!r}") from None


def check(data: bytes, modules: tuple[ModuleType, ModuleType] | None = None) -> None:
    reference, compiled = modules or _modules()
    want = observe(reference, data)
    got = observe(compiled, data)
    if got != want:
        raise Divergence(f"the parsers' traces differ:\n  compiled:  {got!r}\n"
                         f"  reference: {want!r}")


def encode(ops: bytes, *, reader: bool = False, strict: bool = False, bad_after: int | None = None,
           seed: int = 0) -> bytes:
    """An input for :func:`decode`-free scripts (seeds)."""
    flags = ((FLAG_READER if reader else 0) | (FLAG_STRICT if strict else 0)
             | (FLAG_BAD if bad_after is not None else 0))
    return bytes([flags, bad_after or 0]) + seed.to_bytes(4, "big") + ops
