"""The measuring engine of ``fastreply bench`` and of the pytest-benchmark
suite (``bench/``): what each implementation runs, and how runs are timed.

A *runner* is one pass over a corpus that returns how many replies it
parsed; :func:`prepare` makes the runner of each implementation key (and a
``codes()`` pass for the check that it parses what the corpus holds),
:func:`feeder` one that feeds given pieces.  ``pytest bench`` times these
runners with pytest-benchmark; ``fastreply bench`` times them with
:func:`time_rounds`: each runner repeats its pass until a measurement lasts
``min_time``, once a round, in an order that rotates from round to round (a
noisy machine slows all of them alike).

Every implementation reads the stream as from a socket: fastreply and
aiosmtplib get a new ``bytes`` object of ``chunk_size`` bytes a read (what
``socket.recv()`` returns), smtplib and the drop-in read through the 8 KiB
buffered reader that ``SMTP.connect()`` makes.
"""

from __future__ import annotations

import gc
import io
import math
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Mapping, NamedTuple, Sequence, TypeVar

from .._common import READ_SIZE
from .._parser import IMPLEMENTATION, ReplyParser, ReplyParserC, ReplyParserPy
from ..commands import Command
from ..tables import MODERN
from .corpus import Corpus

__all__ = [
    "IMPLEMENTATIONS",
    "BASELINE",
    "DEFAULT_CHUNK",
    "PER_REPLY",
    "BenchError",
    "Prepared",
    "Candidate",
    "candidates",
    "prepare",
    "feeder",
    "FakeSocket",
    "Progress",
    "check",
    "Timings",
    "time_rounds",
    "median",
]

#: Implementation keys, in report order; ``smtplib`` is the baseline.
IMPLEMENTATIONS = ("compiled", "fallback", "codes", "validated", "dropin", "smtplib", "aiosmtplib")
BASELINE = "smtplib"
#: Bytes a socket read returns, by default.
DEFAULT_CHUNK = READ_SIZE

Runner = Callable[[], int]
CodesOf = Callable[[], list[int]]
K = TypeVar("K", bound=Hashable)


class BenchError(RuntimeError):
    """An implementation disagreed with the corpus (a bug, not a slow result)."""


@dataclass
class Prepared:
    """One implementation ready to run on one corpus."""

    run: Runner  # one pass over the corpus; returns the number of replies
    codes: CodesOf  # one pass returning every reply code, for the check


@dataclass
class Candidate:
    key: str
    label: str
    prepare: Callable[[Corpus, int], Prepared] | None
    skipped: str | None = None  # why it is not measured


# -- the implementations ------------------------------------------------------

#: ``chunk_size`` meaning one reply a read (``--chunk-size reply``): what a
#: client reads when the server answers one command at a time.
PER_REPLY = 0


def _reads(corpus: Corpus, chunk_size: int) -> Callable[[], Iterator[bytes]]:
    """What successive socket reads return, each a new ``bytes`` object as
    ``recv()`` makes: ``chunk_size`` bytes a read, or one reply a read."""
    if chunk_size == PER_REPLY:
        replies = [e.reply for e in corpus.exchanges]

        def per_reply() -> Iterator[bytes]:
            for reply in replies:
                yield bytes(bytearray(reply))  # (a copy: a read makes new bytes)

        return per_reply
    data = corpus.data

    def chunked() -> Iterator[bytes]:
        read = io.BytesIO(data).read
        while chunk := read(chunk_size):
            yield chunk

    return chunked


class _RawReads(io.RawIOBase):
    """The raw stream under smtplib's buffered reader (a socket's is Python
    too: ``SocketIO.readinto``): each ``readinto`` returns one read of
    ``reads``, or as much of it as fits."""

    def __init__(self, reads: Iterator[bytes]) -> None:
        self._reads = reads
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._rest
        if not data:
            data = next(self._reads, b"")
        size = min(len(buffer), len(data))
        buffer[:size] = data[:size]
        self._rest = data[size:]
        return size


def _parser_feed(
    parser_cls: Any, *, codes_only: bool = False
) -> Callable[[Corpus, int], Prepared]:
    """``feed()`` on socket-sized reads, or ``feed_codes()`` with ``codes_only``."""

    def prepare(corpus: Corpus, chunk_size: int) -> Prepared:
        chunks = list(_reads(corpus, chunk_size)())
        reads = _reads(corpus, chunk_size)

        def run() -> int:
            parser = parser_cls()
            feed = parser.feed_codes if codes_only else parser.feed
            n = 0
            for chunk in reads():
                n += len(feed(chunk))
            parser.close()
            return n

        def codes() -> list[int]:
            parser = parser_cls()
            if codes_only:
                out = [code for chunk in chunks for code in parser.feed_codes(chunk)]
            else:
                out = [reply.code for chunk in chunks for reply in parser.feed(chunk)]
            parser.close()
            return out

        return Prepared(run, codes)

    return prepare


def _parser_codes(parser_cls: Any) -> Callable[[Corpus, int], Prepared]:
    return _parser_feed(parser_cls, codes_only=True)


def _validated(parser_cls: Any) -> Callable[[Corpus, int], Prepared]:
    """``feed_checked()`` against ``MODERN``, the log of the corpus's commands."""
    table = MODERN

    def to_command(name: str, line: bytes | None) -> Command:
        try:
            return Command[name]
        except KeyError:
            return Command.from_line(line) if line is not None else Command.UNKNOWN

    def prepare(corpus: Corpus, chunk_size: int) -> Prepared:
        chunks = list(_reads(corpus, chunk_size)())
        reads = _reads(corpus, chunk_size)
        # What a pipelining tracker knows: the command each reply answers.
        # (A bytearray of command numbers: the form the C check reads fastest.)
        commands = bytearray(to_command(e.command, e.line) for e in corpus.exchanges)

        def run() -> int:
            parser = parser_cls()
            feed_checked = parser.feed_checked  # the check inside the parse loop when compiled
            done = 0
            unexpected = 0
            for chunk in reads():
                replies, bad = feed_checked(chunk, table, commands, done)
                done += len(replies)
                unexpected += len(bad)
            parser.close()
            run.unexpected = unexpected  # type: ignore[attr-defined]
            return done

        def codes() -> list[int]:
            parser = parser_cls()
            out = [reply.code for chunk in chunks for reply in parser.feed(chunk)]
            parser.close()
            return out

        run.unexpected = 0  # type: ignore[attr-defined]
        return Prepared(run, codes)

    return prepare


class FakeSocket:
    """Just enough of a connected socket for an SMTP client to read replies
    from: ``recv``/``recv_into`` return at most ``chunk`` bytes, ``makefile``
    gives the buffered reader smtplib itself would create."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._raw = io.BytesIO(data)
        self._chunk = chunk

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return self._raw.read(min(bufsize, self._chunk))

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer)
        size = min(nbytes or len(view), self._chunk)
        return self._raw.readinto(view[:size])

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(self._raw)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        pass

    def settimeout(self, value: float | None) -> None:
        pass

    def gettimeout(self) -> float | None:
        return None

    def close(self) -> None:
        pass


def _smtp_getreply(smtp_cls: Any) -> Callable[[Corpus, int], Prepared]:
    """``getreply()`` of ``smtplib.SMTP`` or a subclass, on an unconnected client
    whose socket and file read the stream from memory (no DNS, no network)."""

    def client(corpus: Corpus, chunk_size: int) -> Any:
        smtp = smtp_cls(local_hostname="localhost")  # no getfqdn()
        sock = FakeSocket(corpus.data, chunk_size or 1)
        smtp.sock = sock
        # What connect() does: a buffered reader (8 KiB, as socket.makefile).
        if chunk_size == PER_REPLY:
            smtp.file = io.BufferedReader(_RawReads(_reads(corpus, chunk_size)()))
        else:
            smtp.file = sock.makefile("rb")
        return smtp

    def prepare(corpus: Corpus, chunk_size: int) -> Prepared:
        count = len(corpus.exchanges)

        def run() -> int:
            smtp = client(corpus, chunk_size)
            getreply = smtp.getreply
            for _ in range(count):
                getreply()
            return count

        def codes() -> list[int]:
            import smtplib

            smtp = client(corpus, chunk_size)
            out = [smtp.getreply()[0] for _ in range(count)]
            try:
                extra = smtp.getreply()
            except smtplib.SMTPServerDisconnected:
                pass  # the whole stream was read, and nothing more
            else:
                out.append(extra[0])
            return out

        return Prepared(run, codes)

    return prepare


def _aiosmtplib() -> Callable[[Corpus, int], Prepared]:
    import asyncio

    from aiosmtplib.protocol import SMTPProtocol

    def protocol() -> Any:
        loop = asyncio.new_event_loop()
        try:
            proto = SMTPProtocol(loop=loop)
        finally:
            loop.close()  # the buffer reader needs no loop
        return proto

    def prepare(corpus: Corpus, chunk_size: int) -> Prepared:
        chunks = list(_reads(corpus, chunk_size)())
        reads = _reads(corpus, chunk_size)

        def run() -> int:
            proto = protocol()
            buffer = proto._buffer
            response = proto._read_response_from_buffer
            n = 0
            for chunk in reads():
                buffer.extend(chunk)
                while response() is not None:
                    n += 1
            return n

        def codes() -> list[int]:
            proto = protocol()
            out = []
            for chunk in chunks:
                proto._buffer.extend(chunk)
                while (response := proto._read_response_from_buffer()) is not None:
                    out.append(response.code)
            if proto._buffer:
                out.append(-1)  # bytes left over: not the same parse
            return out

        return Prepared(run, codes)

    return prepare


def candidates() -> list[Candidate]:
    """Every implementation, measurable or with the reason it is skipped."""
    import smtplib

    from .. import smtplib as dropin

    active = "compiled" if IMPLEMENTATION == "cython" else "pure Python"
    out: list[Candidate] = []
    if ReplyParserC is not None:
        out.append(Candidate("compiled", "fastreply compiled", _parser_feed(ReplyParserC)))
    else:
        out.append(
            Candidate(
                "compiled",
                "fastreply compiled",
                None,
                "the compiled module is not in use (FASTREPLY_NO_EXTENSIONS is set, "
                "or this is not CPython)",
            )
        )
    out.append(Candidate("fallback", "fastreply pure Python", _parser_feed(ReplyParserPy)))
    out.append(Candidate("codes", f"fastreply codes only ({active})", _parser_codes(ReplyParser)))
    out.append(Candidate("validated", f"fastreply + validation ({active})", _validated(ReplyParser)))
    out.append(Candidate("dropin", "fastreply.smtplib drop-in", _smtp_getreply(dropin.SMTP)))
    out.append(Candidate(BASELINE, "smtplib.getreply", _smtp_getreply(smtplib.SMTP)))
    try:
        out.append(Candidate("aiosmtplib", "aiosmtplib", _aiosmtplib()))
    except ImportError:
        out.append(
            Candidate(
                "aiosmtplib",
                "aiosmtplib",
                None,
                "aiosmtplib is not installed (pip install aiosmtplib, "
                "or pip install 'fastreply[compare]')",
            )
        )
    return out


def prepare(
    key: str, corpus: Corpus, chunk_size: int = DEFAULT_CHUNK, parser: Any = None
) -> Prepared:
    """``key``'s runner on ``corpus``.

    ``parser`` replaces the parser class of ``compiled``, ``fallback``,
    ``codes`` and ``validated``.  Raises :class:`LookupError` with the reason
    when ``key`` cannot run here (aiosmtplib not installed, the compiled
    module not in use).
    """
    if parser is not None:
        makers: dict[str, Callable[[Any], Callable[[Corpus, int], Prepared]]] = {
            "compiled": _parser_feed,
            "fallback": _parser_feed,
            "codes": _parser_codes,
            "validated": _validated,
        }
        if key in makers:
            return makers[key](parser)(corpus, chunk_size)
    for cand in candidates():
        if cand.key == key:
            if cand.prepare is None:
                raise LookupError(cand.skipped)
            return cand.prepare(corpus, chunk_size)
    raise ValueError(f"unknown implementation {key!r}")


def feeder(parser_cls: Any, pieces: Sequence[bytes]) -> Runner:
    """A runner that feeds ``pieces`` to a new parser of ``parser_cls``."""

    def run() -> int:
        parser = parser_cls()
        feed = parser.feed
        n = 0
        for piece in pieces:
            n += len(feed(piece))
        parser.close()
        return n

    return run


# -- timing ---------------------------------------------------------------------


class Progress:
    """One status line on stderr: rewritten in place on a terminal, a line per
    workload otherwise; nothing when quiet."""

    def __init__(self, stream: Any = None, quiet: bool = False) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._width = 0

    def update(self, text: str) -> None:
        if self.quiet or not self.tty:
            return
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()


def check(key: str, prepared: Prepared, corpus: Corpus) -> None:
    """Raise :class:`BenchError` unless ``key``'s pass finds the corpus's codes."""
    expected = corpus.codes
    got = prepared.codes()
    if got != expected:
        at = next(
            (i for i, (a, b) in enumerate(zip(got, expected)) if a != b),
            min(len(got), len(expected)),
        )
        raise BenchError(
            f"{key} disagrees with the corpus on {corpus.workload}: {len(got)} replies "
            f"instead of {len(expected)}, first difference at reply {at}"
        )


def _timed(run: Runner, loops: int, expected: int) -> float:
    """Seconds per pass, over ``loops`` passes."""
    clock = time.perf_counter
    start = clock()
    for _ in range(loops):
        if run() != expected:
            raise BenchError("a pass returned a different number of replies")
    return (clock() - start) / loops


class Timings(NamedTuple):
    """What :func:`time_rounds` measured, by runner."""

    seconds: dict[Any, list[float]]  # a pass, once a round
    loops: dict[Any, int]  # passes a measurement


def time_rounds(
    runners: Mapping[K, tuple[Runner, int]],
    *,
    rounds: int,
    min_time: float,
    progress: Progress,
    prefix: str = "",
    label: Callable[[K], str] = str,
) -> Timings:
    """Seconds a pass of each runner (given with the count its pass must
    return), measured once a round for ``rounds`` rounds, the order rotating
    from round to round.  A runner repeats its pass until a measurement lasts
    ``min_time`` (after one pass to warm up, and one to see how long it
    takes).  ``progress`` shows ``prefix``, the round and ``label(key)``.

    The runners' own objects (corpora, prepared streams) are kept out of the
    cyclic GC's full collections while it measures, which would otherwise
    charge their size to whoever allocates most (a parser in a real program
    pays for its program's heap, not for this one's)."""
    loops: dict[Any, int] = {}
    for key, (run, expected) in runners.items():
        run()  # warm up
        once = _timed(run, 1, expected)
        loops[key] = max(1, math.ceil(min_time / max(once, 1e-9)))
    keys = list(runners)
    seconds: dict[Any, list[float]] = {key: [] for key in keys}
    gc.collect()
    gc.freeze()
    try:
        for index in range(rounds):
            shift = index % len(keys)
            gc.collect()
            for key in keys[shift:] + keys[:shift]:
                progress.update(f"{prefix}round {index + 1}/{rounds}, {label(key)}")
                run, expected = runners[key]
                seconds[key].append(_timed(run, loops[key], expected))
    finally:
        gc.unfreeze()
    return Timings(seconds, loops)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))
