"""The benchmark behind ``fastreply bench``: fastreply against what MTAs use today.

Every implementation parses the same generated reply stream
(:mod:`fastreply.corpus`) and must return the same reply codes:

``compiled``    fastreply's Cython parser, ``ReplyParser.feed()`` on socket-sized reads
``fallback``    fastreply's pure-Python parser, the same way
``codes``       ``ReplyParser.feed_codes()``: codes only, no ``Reply`` objects
``validated``   ``feed_checked()``: every reply checked against ``fastreply.tables.MODERN``
                for the command it answers (when :mod:`fastreply.tables` exists)
``dropin``      ``fastreply.smtplib.SMTP.getreply()`` (when that module exists)
``smtplib``     the standard library's ``smtplib.SMTP.getreply()``, reading the stream
                from the buffered file it reads a socket through: the baseline
``aiosmtplib``  aiosmtplib's own reply parsing (``SMTPProtocol``'s buffer reader), fed
                the same reads (optional: skipped with a note when not installed)

Every implementation reads the stream from an in-memory file, as from a
socket: fastreply and aiosmtplib get a new ``bytes`` object of ``chunk_size``
bytes a read (what ``socket.recv()`` returns), smtplib and the drop-in read
through the 8 KiB buffered reader that ``SMTP.connect()`` makes.

The corpus should be large (the default is 2 MB): a small one replayed over and
over lets the CPU's branch predictor learn it, which flatters the compiled
parser (up to 2x on ``ehlo`` at 100 kB).

Timing: after a check pass (same codes as the corpus, same count), each
implementation runs enough passes to last ``min_time`` per measurement; a
round measures every implementation once, in an order that rotates from round
to round, so a noisy machine slows all of them alike.  Reported: the median
time of a pass (as replies/s, MB/s, ns per reply) and the median over the
rounds of each round's ratio to smtplib.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from . import __version__, corpus as _corpus
from ._parser import IMPLEMENTATION, ReplyParser, ReplyParserC, ReplyParserPy

__all__ = [
    "IMPLEMENTATIONS",
    "BenchError",
    "prepare",
    "run_bench",
    "format_table",
    "write_plot",
    "add_arguments",
    "run_cli",
]

#: Implementation keys, in report order; ``smtplib`` is the baseline.
IMPLEMENTATIONS = ("compiled", "fallback", "codes", "validated", "dropin", "smtplib", "aiosmtplib")
BASELINE = "smtplib"
DEFAULT_ROUNDS = 7
DEFAULT_SIZE_MB = 2.0
DEFAULT_CHUNK = 64 * 1024
DEFAULT_MIN_TIME = 0.05
DEFAULT_FEEDING_SIZE = 256 * 1024

Runner = Callable[[], int]
CodesOf = Callable[[], list[int]]


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
    prepare: Callable[[_corpus.Corpus, int], Prepared] | None
    skipped: str | None = None  # why it is not measured


# -- the implementations ------------------------------------------------------

#: ``chunk_size`` meaning one reply a read (``--chunk-size reply``): what a
#: client reads when the server answers one command at a time.
PER_REPLY = 0


def _reads(corpus: _corpus.Corpus, chunk_size: int) -> Callable[[], Iterator[bytes]]:
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
) -> Callable[[_corpus.Corpus, int], Prepared]:
    """``feed()`` on socket-sized reads, or ``feed_codes()`` with ``codes_only``."""

    def prepare(corpus: _corpus.Corpus, chunk_size: int) -> Prepared:
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


def _parser_codes(parser_cls: Any) -> Callable[[_corpus.Corpus, int], Prepared]:
    return _parser_feed(parser_cls, codes_only=True)


def _validated(parser_cls: Any, tables: Any) -> Callable[[_corpus.Corpus, int], Prepared]:
    table = tables.MODERN
    command_type = tables.Command

    def to_command(name: str, line: bytes | None) -> Any:
        try:
            return command_type[name]
        except KeyError:
            return command_type.from_line(line) if line is not None else command_type.UNKNOWN

    def prepare(corpus: _corpus.Corpus, chunk_size: int) -> Prepared:
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


class _FakeSocket:
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


def _smtp_getreply(smtp_cls: Any) -> Callable[[_corpus.Corpus, int], Prepared]:
    """``getreply()`` of ``smtplib.SMTP`` or a subclass, on an unconnected client
    whose socket and file read the stream from memory (no DNS, no network)."""

    def client(corpus: _corpus.Corpus, chunk_size: int) -> Any:
        smtp = smtp_cls(local_hostname="localhost")  # no getfqdn()
        sock = _FakeSocket(corpus.data, chunk_size or 1)
        smtp.sock = sock
        # What connect() does: a buffered reader (8 KiB, as socket.makefile).
        if chunk_size == PER_REPLY:
            smtp.file = io.BufferedReader(_RawReads(_reads(corpus, chunk_size)()))
        else:
            smtp.file = sock.makefile("rb")
        return smtp

    def prepare(corpus: _corpus.Corpus, chunk_size: int) -> Prepared:
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


def _aiosmtplib() -> Callable[[_corpus.Corpus, int], Prepared]:
    import asyncio

    from aiosmtplib.protocol import SMTPProtocol

    def protocol() -> Any:
        loop = asyncio.new_event_loop()
        try:
            proto = SMTPProtocol(loop=loop)
        finally:
            loop.close()  # the buffer reader needs no loop
        return proto

    def prepare(corpus: _corpus.Corpus, chunk_size: int) -> Prepared:
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
    try:
        from . import tables

        out.append(
            Candidate(
                "validated", f"fastreply + validation ({active})", _validated(ReplyParser, tables)
            )
        )
    except ImportError as exc:
        out.append(
            Candidate(
                "validated",
                "fastreply + validation",
                None,
                f"fastreply.tables is not available ({exc})",
            )
        )
    try:
        from . import smtplib as dropin

        out.append(Candidate("dropin", "fastreply.smtplib drop-in", _smtp_getreply(dropin.SMTP)))
    except ImportError as exc:
        out.append(
            Candidate(
                "dropin",
                "fastreply.smtplib drop-in",
                None,
                f"fastreply.smtplib is not available ({exc})",
            )
        )
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
    key: str, corpus: _corpus.Corpus, chunk_size: int = DEFAULT_CHUNK, parser: Any = None
) -> Prepared:
    """``key``'s runner on ``corpus`` (for ``pytest bench`` and other harnesses).

    ``parser`` replaces the parser class of ``compiled``, ``fallback``,
    ``codes`` and ``validated``.  Raises :class:`LookupError` with the reason
    when ``key`` cannot run here (a missing optional module).
    """
    if parser is not None:
        makers: dict[str, Callable[[Any], Callable[[_corpus.Corpus, int], Prepared]]] = {
            "compiled": _parser_feed,
            "fallback": _parser_feed,
            "codes": _parser_codes,
        }
        if key in makers:
            return makers[key](parser)(corpus, chunk_size)
        if key == "validated":
            try:
                from . import tables
            except ImportError as exc:
                raise LookupError(f"fastreply.tables is not available ({exc})") from None
            return _validated(parser, tables)(corpus, chunk_size)
    for cand in candidates():
        if cand.key == key:
            if cand.prepare is None:
                raise LookupError(cand.skipped)
            return cand.prepare(corpus, chunk_size)
    raise ValueError(f"unknown implementation {key!r}")


# -- measuring ------------------------------------------------------------------


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


def _timed(run: Runner, loops: int, expected: int) -> float:
    """Seconds per pass, over ``loops`` passes."""
    clock = time.perf_counter
    start = clock()
    for _ in range(loops):
        if run() != expected:
            raise BenchError("a pass returned a different number of replies")
    return (clock() - start) / loops


def _check(key: str, prepared: Prepared, corpus: _corpus.Corpus) -> None:
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


def _loops(run: Runner, expected: int, min_time: float) -> int:
    once = _timed(run, 1, expected)
    return max(1, math.ceil(min_time / max(once, 1e-9)))


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def measure_workload(
    corpus: _corpus.Corpus,
    chosen: Sequence[Candidate],
    *,
    rounds: int,
    chunk_size: int,
    min_time: float,
    progress: Progress,
) -> dict[str, Any]:
    """Run ``chosen`` on ``corpus``; return the workload's JSON section."""
    count = len(corpus.exchanges)
    prepared: dict[str, Prepared] = {}
    loops: dict[str, int] = {}
    for cand in chosen:
        assert cand.prepare is not None
        progress.update(f"bench {corpus.workload}: checking {cand.key}")
        prep = cand.prepare(corpus, chunk_size)
        _check(cand.key, prep, corpus)
        prep.run()  # warm up
        loops[cand.key] = _loops(prep.run, count, min_time)
        prepared[cand.key] = prep
    keys = [c.key for c in chosen]
    seconds: dict[str, list[float]] = {key: [] for key in keys}
    # The corpus and the prepared runners are the benchmark's own objects, not
    # the parser's: keep them out of the cyclic GC's full collections, which
    # would otherwise charge their size to whoever allocates most (a parser
    # in a real program pays for its program's heap, not for this one's).
    gc.collect()
    gc.freeze()
    try:
        for index in range(rounds):
            shift = index % len(keys)
            order = keys[shift:] + keys[:shift]  # alternate who goes first
            gc.collect()
            for key in order:
                progress.update(f"bench {corpus.workload}: round {index + 1}/{rounds}, {key}")
                seconds[key].append(_timed(prepared[key].run, loops[key], count))
    finally:
        gc.unfreeze()
    stats = corpus.stats()
    results: dict[str, Any] = {}
    base = seconds[BASELINE]
    for cand in chosen:
        times = seconds[cand.key]
        per_pass = _median(times)
        ratios = [b / t for b, t in zip(base, times)]
        entry: dict[str, Any] = {
            "label": cand.label,
            "replies_per_s": count / per_pass,
            "mb_per_s": stats.bytes / per_pass / 1e6,
            "ns_per_reply": per_pass / count * 1e9,
            "ratio_to_smtplib": _median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "loops": loops[cand.key],
            "seconds": times,
            "ratios": ratios,
        }
        if cand.key == "validated":
            entry["unexpected_replies"] = getattr(prepared[cand.key].run, "unexpected", None)
        if (
            cand.key in ("validated", "codes")
            and "compiled" in seconds
            and IMPLEMENTATION == "cython"
        ):
            entry["time_vs_compiled"] = _median([t / c for t, c in zip(times, seconds["compiled"])])
        results[cand.key] = entry
    return {
        "replies": stats.replies,
        "lines": stats.lines,
        "bytes": stats.bytes,
        "mean_lines": stats.mean_lines,
        "mean_bytes": stats.mean_bytes,
        "error_share": stats.error_share,
        "results": results,
    }


def _feeder(cls: Any, pieces: list[bytes]) -> Runner:
    def run() -> int:
        parser = cls()
        feed = parser.feed
        n = 0
        for piece in pieces:
            n += len(feed(piece))
        parser.close()
        return n

    return run


def measure_feeding(
    size: int, seed: int, rounds: int, min_time: float, progress: Progress
) -> dict[str, Any]:
    """Cost per byte of feeding the ``mix`` stream in one chunk and one byte at a
    time (at ``size`` and a quarter of it: the same per-byte cost means linear)."""
    parsers = [("fallback", ReplyParserPy)]
    if ReplyParserC is not None:
        parsers.insert(0, ("compiled", ReplyParserC))
    full = _corpus.generate("mix", size=size, seed=seed)
    quarter = _corpus.generate("mix", size=max(1, size // 4), seed=seed)
    cases: dict[tuple[str, str], tuple[Runner, int, int]] = {}
    for name, cls in parsers:
        for label, data, pieces in (
            ("one_chunk", full.data, [full.data]),
            ("bytewise", full.data, [full.data[i : i + 1] for i in range(len(full.data))]),
            (
                "bytewise_quarter",
                quarter.data,
                [quarter.data[i : i + 1] for i in range(len(quarter.data))],
            ),
        ):
            expected = len(full.exchanges) if data is full.data else len(quarter.exchanges)
            run = _feeder(cls, pieces)
            if run() != expected:
                raise BenchError(f"{name} lost replies when fed {label}")
            cases[(name, label)] = (run, _loops(run, expected, min_time), expected)
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in cases}
    keys = list(cases)
    for index in range(rounds):
        shift = index % len(keys)
        gc.collect()
        for key in keys[shift:] + keys[:shift]:
            progress.update(f"bench feeding: round {index + 1}/{rounds}, {key[0]} {key[1]}")
            runner, loops, expected = cases[key]
            seconds[key].append(_timed(runner, loops, expected))
    out: dict[str, Any] = {"size": len(full.data), "quarter_size": len(quarter.data), "results": {}}
    for name, _cls in parsers:
        ns = {}
        for label in ("one_chunk", "bytewise", "bytewise_quarter"):
            nbytes = len(full.data) if label != "bytewise_quarter" else len(quarter.data)
            ns[label] = _median(seconds[(name, label)]) / nbytes * 1e9
        out["results"][name] = {
            "one_chunk_ns_per_byte": ns["one_chunk"],
            "bytewise_ns_per_byte": ns["bytewise"],
            "bytewise_quarter_ns_per_byte": ns["bytewise_quarter"],
            "bytewise_over_one_chunk": ns["bytewise"] / ns["one_chunk"],
            "bytewise_full_over_quarter": ns["bytewise"] / ns["bytewise_quarter"],
        }
    return out


def run_bench(
    workloads: Sequence[str] = _corpus.WORKLOADS,
    *,
    size: int = int(DEFAULT_SIZE_MB * 1_000_000),
    rounds: int = DEFAULT_ROUNDS,
    chunk_size: int = DEFAULT_CHUNK,
    seed: int = _corpus.DEFAULT_SEED,
    min_time: float = DEFAULT_MIN_TIME,
    implementations: Sequence[str] | None = None,
    feeding: int | None = DEFAULT_FEEDING_SIZE,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure; return the results as the JSON-ready dictionary ``--json`` writes."""
    progress = progress or Progress(quiet=True)
    wanted = set(IMPLEMENTATIONS if implementations is None else implementations) | {BASELINE}
    unknown = wanted - set(IMPLEMENTATIONS)
    if unknown:
        raise ValueError(f"unknown implementation(s): {', '.join(sorted(unknown))}")
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    all_candidates = [c for c in candidates() if c.key in wanted]
    chosen = [c for c in all_candidates if c.prepare is not None]
    skipped = {c.key: c.skipped for c in all_candidates if c.prepare is None}
    started = time.perf_counter()
    report: dict[str, Any] = {
        "fastreply": __version__,
        "implementation": IMPLEMENTATION,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "settings": {
            "size": size,
            "rounds": rounds,
            "chunk_size": chunk_size,
            "seed": seed,
            "min_time": min_time,
            "workloads": list(workloads),
            "implementations": [c.key for c in chosen],
        },
        "labels": {c.key: c.label for c in all_candidates},
        "skipped": skipped,
        "workloads": {},
    }
    for name in workloads:
        t0 = time.perf_counter()
        progress.update(f"bench {name}: generating the corpus")
        corpus = _corpus.generate(name, size=size, seed=seed)
        report["workloads"][name] = measure_workload(
            corpus,
            chosen,
            rounds=rounds,
            chunk_size=chunk_size,
            min_time=min_time,
            progress=progress,
        )
        ratio = report["workloads"][name]["results"].get("compiled", {}).get("ratio_to_smtplib")
        note = f", compiled {ratio:.1f}x smtplib" if ratio else ""
        progress.line(f"bench {name}: done in {time.perf_counter() - t0:.1f} s{note}")
    if feeding:
        t0 = time.perf_counter()
        report["feeding"] = measure_feeding(feeding, seed, rounds, min_time, progress)
        progress.line(f"bench feeding: done in {time.perf_counter() - t0:.1f} s")
    report["seconds"] = time.perf_counter() - started
    return report


# -- reporting ------------------------------------------------------------------


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def _bytes(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def format_table(report: dict[str, Any]) -> str:
    """The human-readable report: one table per workload, then the ratios."""
    settings = report["settings"]
    labels = report["labels"]
    out = [
        f"fastreply {report['fastreply']} ({report['implementation']} implementation), "
        f"{report['python_implementation']} {report['python']}, {report['platform']}",
        f"corpus seed {settings['seed']}, {settings['size'] / 1e6:g} MB a workload, "
        + ("one reply a read; " if settings["chunk_size"] == PER_REPLY
           else f"fed in {_bytes(settings['chunk_size'])} chunks; ")
        + f"{settings['rounds']} rounds alternating the implementations; medians",
        "",
    ]
    keys = [k for k in IMPLEMENTATIONS if k in settings["implementations"]]
    width = max([len(labels[k]) for k in keys] + [14])
    for name, section in report["workloads"].items():
        out.append(
            f"{name}: {section['replies']:,} replies, {section['bytes'] / 1e6:.2f} MB "
            f"({section['mean_lines']:.2f} lines, {section['mean_bytes']:.0f} bytes a reply, "
            f"{section['error_share']:.0%} 4xx/5xx)"
        )
        out.append(
            f"  {'implementation':<{width}}  {'replies/s':>9}  {'MB/s':>8}  {'ns/reply':>9}  "
            f"{'x smtplib':>9}  (min-max)"
        )
        for key in keys:
            r = section["results"][key]
            extra = ""
            if "time_vs_compiled" in r:
                extra = f"  {r['time_vs_compiled'] - 1:+.0%} time vs compiled"
            if r.get("unexpected_replies"):
                extra += f"  ({r['unexpected_replies']} replies not in the table)"
            out.append(
                f"  {labels[key]:<{width}}  {_si(r['replies_per_s']):>9}  {r['mb_per_s']:>8.1f}  "
                f"{r['ns_per_reply']:>9.0f}  {_ratio(r['ratio_to_smtplib']):>9}  "
                f"({_ratio(r['ratio_min'])}-{_ratio(r['ratio_max'])}){extra}"
            )
        out.append("")
    if report["workloads"]:
        cols = [k for k in keys if k != BASELINE]
        heads = {
            "compiled": "compiled",
            "fallback": "fallback",
            "codes": "codes-only",
            "validated": "validated",
            "dropin": "drop-in",
            "aiosmtplib": "aiosmtplib",
        }
        out.append("ratio to smtplib.getreply (median of per-round ratios; higher is faster)")
        out.append(f"  {'workload':<8}" + "".join(f"  {heads[k]:>10}" for k in cols))
        for name, section in report["workloads"].items():
            out.append(
                f"  {name:<8}"
                + "".join(
                    f"  {_ratio(section['results'][k]['ratio_to_smtplib']):>10}" for k in cols
                )
            )
        out.append("")
    feeding = report.get("feeding")
    if feeding:
        out.append(
            f"feeding the mix stream ({feeding['size'] / 1024:.0f} KiB; "
            f"{feeding['quarter_size'] / 1024:.0f} KiB for the linearity check), ns per byte"
        )
        out.append(
            f"  {'parser':<9}  {'one chunk':>9}  {'1 byte at a time':>16}  {'ratio':>7}  "
            f"{'same, 1/4 size':>14}  {'linear?':>8}"
        )
        for name, r in feeding["results"].items():
            linear = abs(r["bytewise_full_over_quarter"] - 1) < 0.5
            out.append(
                f"  {name:<9}  {r['one_chunk_ns_per_byte']:>9.2f}  "
                f"{r['bytewise_ns_per_byte']:>16.1f}  {r['bytewise_over_one_chunk']:>6.0f}x  "
                f"{r['bytewise_quarter_ns_per_byte']:>14.1f}  "
                f"{'yes' if linear else 'NO':>8}"
            )
        out.append("")
    for key, reason in report["skipped"].items():
        out.append(f"note: {labels[key]} not measured: {reason}")
    return "\n".join(out).rstrip() + "\n"


PLOT_MISSING = (
    "--plot needs matplotlib, which is not installed: pip install matplotlib "
    "(or pip install 'fastreply[plot]')"
)


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_plot(report: dict[str, Any], path: str) -> None:
    """A PNG bar chart of the ratios to smtplib, one group per workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    labels = report["labels"]
    keys = [k for k in IMPLEMENTATIONS if k in report["settings"]["implementations"]]
    workloads = list(report["workloads"])
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
    width = 0.8 / max(1, len(keys))
    for i, key in enumerate(keys):
        values = [report["workloads"][w]["results"][key]["ratio_to_smtplib"] for w in workloads]
        xs = [j + (i - (len(keys) - 1) / 2) * width for j in range(len(workloads))]
        bars = ax.bar(xs, values, width, label=labels[key])
        for bar, value in zip(bars, values):
            ax.annotate(
                _ratio(value),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads)
    ax.set_ylabel("speed relative to smtplib.getreply (log scale)")
    ax.set_title(
        f"fastreply {report['fastreply']}: replies parsed per second, relative to smtplib\n"
        f"{report['python_implementation']} {report['python']}, {report['machine']}, "
        f"median of {report['settings']['rounds']} round(s)",
        fontsize=10,
    )
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}x"))
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * 1.6)  # room for the value labels
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.07), frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


# -- command line ---------------------------------------------------------------


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _chunk_size(text: str) -> int:
    if text.strip().lower() == "reply":
        return PER_REPLY
    return _positive_int(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fastreply bench``."""
    p.add_argument(
        "--workload",
        default="all",
        choices=list(_corpus.WORKLOADS) + ["all"],
        help="which generated reply stream to parse (default: all)",
    )
    p.add_argument(
        "--size",
        type=_positive_float,
        default=DEFAULT_SIZE_MB,
        metavar="MB",
        help=f"megabytes of replies a workload (default: {DEFAULT_SIZE_MB:g})",
    )
    p.add_argument(
        "--rounds",
        type=_positive_int,
        default=DEFAULT_ROUNDS,
        metavar="N",
        help=f"rounds, each measuring every implementation once (default: {DEFAULT_ROUNDS})",
    )
    p.add_argument(
        "--chunk-size",
        type=_chunk_size,
        default=DEFAULT_CHUNK,
        metavar="BYTES",
        help=f"bytes a socket read returns (default: {DEFAULT_CHUNK}), or 'reply': one "
        "reply a read, as when a server answers one command at a time",
    )
    p.add_argument(
        "--min-time",
        type=_positive_float,
        default=DEFAULT_MIN_TIME,
        metavar="SECONDS",
        help=f"shortest measurement; fast implementations repeat passes to fill it "
        f"(default: {DEFAULT_MIN_TIME:g})",
    )
    p.add_argument(
        "--seed", type=int, default=_corpus.DEFAULT_SEED, help="corpus seed (default: 0)"
    )
    p.add_argument(
        "--implementations",
        default=None,
        metavar="LIST",
        help="comma-separated subset of "
        + ", ".join(IMPLEMENTATIONS)
        + " (smtplib, the baseline, is always measured)",
    )
    p.add_argument(
        "--feeding-size",
        type=int,
        default=DEFAULT_FEEDING_SIZE,
        metavar="BYTES",
        help="bytes of the one-chunk vs byte-at-a-time comparison; 0 leaves it out "
        f"(default: {DEFAULT_FEEDING_SIZE})",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    p.add_argument("--plot", metavar="FILE", help="also write a PNG bar chart (needs matplotlib)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--classify", action="store_true",
                   help="measure fastreply.classify() against smtplib getreply() instead")


def _unwritable(path: str) -> str | None:
    """Why a file cannot be written at ``path``, or None if it can (as far
    as can be told without creating it)."""
    if os.path.isdir(path):
        return "is a directory"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"no such directory: {folder}"
    target = path if os.path.exists(path) else folder
    if not os.access(target, os.W_OK):
        return f"permission denied: {target}"
    return None


def run_cli(args: argparse.Namespace, stdout: Any = None, stderr: Any = None) -> int:
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    if args.plot and not have_matplotlib():
        print(f"fastreply bench: {PLOT_MISSING}", file=stderr)
        return 2
    if getattr(args, "classify", False):
        return _run_classify_bench(args, stdout, stderr)
    implementations = None
    if args.implementations is not None:
        implementations = [x.strip() for x in args.implementations.split(",") if x.strip()]
        if not implementations:
            print(
                f"fastreply bench: --implementations needs at least one of "
                f"{', '.join(IMPLEMENTATIONS)}, got {args.implementations!r}",
                file=stderr,
            )
            return 2
    # Where the results go is checked before measuring, not after.
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        problem = _unwritable(path) if path and path != "-" else None
        if problem is not None:
            print(f"fastreply bench: {option} {path}: {problem}", file=stderr)
            return 2
    workloads = list(_corpus.WORKLOADS) if args.workload == "all" else [args.workload]
    try:
        report = run_bench(
            workloads,
            size=max(1, int(args.size * 1_000_000)),
            rounds=args.rounds,
            chunk_size=args.chunk_size,
            seed=args.seed,
            min_time=args.min_time,
            implementations=implementations,
            feeding=args.feeding_size if args.feeding_size > 0 else None,
            progress=Progress(stderr, quiet=args.quiet),
        )
    except ValueError as exc:
        print(f"fastreply bench: {exc}", file=stderr)
        return 2
    except BenchError as exc:
        print(f"fastreply bench: {exc}", file=stderr)
        return 1
    text = format_table(report)
    if args.json == "-":
        print(text, file=stderr, end="")
        json.dump(report, stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(text)
        if args.json:
            try:
                with open(args.json, "w", encoding="utf-8") as f:
                    json.dump(report, f, indent=2)
                    f.write("\n")
            except OSError as exc:  # checked before, but the disk may be full
                print(f"fastreply bench: cannot write {args.json}: {exc.strerror}", file=stderr)
                return 1
    if args.plot:
        try:
            write_plot(report, args.plot)
        except OSError as exc:
            print(f"fastreply bench: cannot write {args.plot}: {exc.strerror}", file=stderr)
            return 1
        print(f"fastreply bench: wrote {args.plot}", file=stderr)
    return 0


def _run_classify_bench(args: argparse.Namespace, stdout: Any, stderr: Any) -> int:
    """``--classify``: classification cost against getreply() (fastreply._classify_bench)."""
    from . import _classify_bench

    section = _classify_bench.measure_classification(
        rounds=args.rounds, min_time=args.min_time, seed=args.seed,
        progress=Progress(stderr, quiet=args.quiet))
    report = {"fastreply": __version__, "python": platform.python_version(),
              "platform": platform.platform(), "classification": section}
    text = _classify_bench.format_classification(section)
    if args.json == "-":
        print(text, file=stderr, end="")
        json.dump(report, stdout, indent=2)
        stdout.write("\n")
        return 0
    stdout.write(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0
