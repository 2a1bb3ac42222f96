"""The differential check behind the fuzzer: one input, both parsers, everything compared.

An input is a small header followed by the reply stream; :func:`decode` maps
*any* bytes to a :class:`Case` (so every input libFuzzer invents is a valid
case, and a mutation of the header explores the options and the chunking):

====  ==================================================================
byte  meaning
====  ==================================================================
0     flags: 1 strict, 2 ``feed_codes`` instead of ``feed``, 4 default
      limits (bytes 1-3 ignored), 8/16 how chunks are passed (see
      :data:`CHUNK_TYPES`), 32 do not call ``close()`` at the end,
      64 ``reset()`` and feed the whole stream once more after the run
1-2   ``max_line_length = 4 + (big-endian u16 % 1021)`` (4..1024)
3     ``max_reply_lines = 1 + byte % 32`` (1..32)
4     chunking: 0 the whole stream at once, 1 one byte at a time, else
      random cuts (seed bytes 4-5, chunk sizes 1..byte 5 + 1)
5     see byte 4
6...  the stream
====  ==================================================================

:func:`check` runs a case on the compiled parser and on the pure-Python
reference and raises :class:`Divergence` unless they agree on everything a
caller can observe: the replies returned by each ``feed()`` (code, lines,
raw, text, ``is_multiline``, ``to_bytes()``), ``buffered`` and ``offset`` after
each call, the error (type, offset, line, message, the replies it carries)
and what the stopped parser says when fed again, and ``close()``.  It also
checks invariants that hold for either implementation (the design contract),
so that a bug both share does not pass unnoticed:

* any exception other than a :class:`~fastreply.errors.ReplyError` is a bug;
* ``offset`` counts every byte fed; ``buffered`` is what was fed minus the raw
  bytes of the replies returned, and never exceeds
  ``max_line_length * max_reply_lines``;
* the raw bytes of the replies, concatenated, are the start of the stream;
* the replies and the error (type, offset, line) do not depend on the chunking:
  they equal the reference's on the whole stream fed at once.

This module imports neither atheris nor pytest: ``fuzz_parser.py`` drives it
under libFuzzer, and ``--replay`` runs stored inputs through it anywhere
(under the sanitizers, say).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

FLAG_STRICT = 1
FLAG_CODES = 2
FLAG_DEFAULT_LIMITS = 4
FLAG_TYPE_A = 8
FLAG_TYPE_B = 16
FLAG_NO_CLOSE = 32
FLAG_RESET_AGAIN = 64
HEADER = 6

#: Check ``buffered`` and ``offset`` of a parser stopped by an error: both
#: implementations must report 0 bytes held and every byte fed (the chunk that
#: raised included), as ``test_state_of_a_stopped_parser`` in
#: tests/test_regressions.py demands.
CHECK_STATE_AFTER_ERROR = True


def _as_bytes(chunk: bytes) -> bytes:
    return chunk


def _as_bytearray(chunk: bytes) -> bytearray:
    return bytearray(chunk)


def _as_memoryview(chunk: bytes) -> memoryview:
    return memoryview(chunk)


def _as_strided(chunk: bytes) -> memoryview:
    # A non-contiguous view: every other byte of a buffer interleaved with junk.
    doubled = bytearray(len(chunk) * 2)
    doubled[::2] = chunk
    doubled[1::2] = b"\n" * len(chunk)
    return memoryview(doubled)[::2]


#: How chunks are passed to ``feed()``, by flags 8 and 16.
CHUNK_TYPES: tuple[Callable[[bytes], Any], ...] = (
    _as_bytes,
    _as_bytearray,
    _as_memoryview,
    _as_strided,
)


@dataclass
class Case:
    options: dict[str, Any]
    codes_only: bool
    chunk_type: int
    close: bool
    reset_again: bool
    chunks: list[bytes]
    stream: bytes = field(repr=False)

    @property
    def bound(self) -> int:
        """The most bytes a parser with these limits may hold."""
        from fastreply._common import DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_REPLY_LINES

        line = self.options.get("max_line_length", DEFAULT_MAX_LINE_LENGTH)
        lines = self.options.get("max_reply_lines", DEFAULT_MAX_REPLY_LINES)
        return int(line * lines)


def decode(data: bytes) -> Case:
    """The case an input encodes (see the module docstring); total on all bytes."""
    head = data[:HEADER].ljust(HEADER, b"\0")
    flags = head[0]
    stream = bytes(data[HEADER:])
    options: dict[str, Any] = {"strict": bool(flags & FLAG_STRICT)}
    if not flags & FLAG_DEFAULT_LIMITS:
        options["max_line_length"] = 4 + struct.unpack(">H", head[1:3])[0] % 1021
        options["max_reply_lines"] = 1 + head[3] % 32
    chunks = cut(stream, head[4], head[5])
    return Case(
        options=options,
        codes_only=bool(flags & FLAG_CODES),
        chunk_type=(flags >> 3) & 3,
        close=not flags & FLAG_NO_CLOSE,
        reset_again=bool(flags & FLAG_RESET_AGAIN),
        chunks=chunks,
        stream=stream,
    )


def cut(stream: bytes, mode: int, spread: int) -> list[bytes]:
    """The chunks of ``stream``: whole (mode 0), a byte at a time (1), or
    random cuts of 1 to ``spread + 1`` bytes (seeded by mode and spread)."""
    if mode == 0 or not stream:
        return [stream]
    if mode == 1:
        return [stream[i : i + 1] for i in range(len(stream))]
    rng = random.Random(mode * 256 + spread)
    chunks = []
    i = 0
    while i < len(stream):
        step = rng.randint(1, spread + 1)
        chunks.append(stream[i : i + step])
        i += step
    return chunks


def encode(
    stream: bytes,
    *,
    strict: bool = False,
    codes_only: bool = False,
    max_line_length: int | None = None,
    max_reply_lines: int | None = None,
    chunking: int = 0,
    spread: int = 0,
    chunk_type: int = 0,
    close: bool = True,
    reset_again: bool = False,
) -> bytes:
    """The input that :func:`decode` turns into this case (for seeds and tests).
    ``max_line_length`` must be 4..1024 and ``max_reply_lines`` 1..32, or both
    None for the defaults."""
    flags = (
        (FLAG_STRICT if strict else 0)
        | (FLAG_CODES if codes_only else 0)
        | (chunk_type & 3) << 3
        | (0 if close else FLAG_NO_CLOSE)
        | (FLAG_RESET_AGAIN if reset_again else 0)
    )
    if max_line_length is None and max_reply_lines is None:
        flags |= FLAG_DEFAULT_LIMITS
        line, lines = 0, 0
    else:
        line = (max_line_length or 8192) - 4
        lines = (max_reply_lines or 1000) - 1
        if not (0 <= line < 1021 and 0 <= lines < 32):
            raise ValueError("limits outside what the header encodes")
    return bytes([flags]) + struct.pack(">H", line) + bytes([lines, chunking, spread]) + stream


class Divergence(AssertionError):
    """The compiled parser and the reference disagree, or an invariant broke."""


def _reply_view(reply: Any) -> tuple[Any, ...]:
    # is_multiline first: the compiled Reply answers it from the raw bytes
    # before the lines are split, a separate code path worth comparing.
    multiline = reply.is_multiline
    return (
        reply.code,
        reply.lines,
        reply.raw,
        reply.text,
        multiline,
        reply.to_bytes(),
        reply.message,
    )


def _error_view(exc: BaseException, codes_only: bool) -> tuple[Any, ...]:
    replies = getattr(exc, "replies", [])
    if not codes_only:
        replies = [_reply_view(r) for r in replies]
    return (
        type(exc).__name__,
        getattr(exc, "offset", None),
        getattr(exc, "line", None),
        str(exc),
        getattr(exc, "truncated", None),
        replies,
    )


def observe(module: ModuleType, case: Case) -> tuple[list[Any], list[Any], Any]:
    """Run ``case`` on ``module``; return (the trace of everything observable,
    the replies in order as (code, raw), the final error as (type, offset, line)
    or None).  Checks the implementation-independent invariants on the way."""
    from fastreply.errors import ReplyError as errors
    parser = module.ReplyParser(**case.options)
    feed = parser.feed_codes if case.codes_only else parser.feed
    wrap = CHUNK_TYPES[case.chunk_type]
    bound = case.bound
    trace: list[Any] = []
    flat: list[Any] = []
    fed = taken = 0
    final: Any = None

    def take(replies: list[Any]) -> None:
        nonlocal taken
        for reply in replies:
            if case.codes_only:
                flat.append((reply, None))
            else:
                raw = reply.raw
                if case.stream[taken : taken + len(raw)] != raw:
                    raise Divergence(f"{module.__name__}: reply raw bytes are not the stream's "
                                     f"next bytes at {taken}: {raw[:80]!r}")
                taken += len(raw)
                flat.append((reply.code, raw))

    try:
        for chunk in case.chunks:
            fed += len(chunk)  # before feed(): a chunk that raises counts as fed
            got = feed(wrap(chunk))
            take(got)
            trace.append(got if case.codes_only else [_reply_view(r) for r in got])
            buffered, offset = parser.buffered, parser.offset
            trace.append((buffered, offset))
            if offset != fed:
                raise Divergence(f"{module.__name__}: offset {offset} after {fed} bytes fed")
            if not case.codes_only and buffered != fed - taken:
                raise Divergence(f"{module.__name__}: buffered {buffered}, but {fed} bytes fed "
                                 f"and {taken} returned in replies")
            if buffered > bound:
                raise Divergence(f"{module.__name__}: buffered {buffered} > limit bound {bound}")
        if case.close:
            parser.close()
            trace.append("closed")
    except errors as exc:
        take(exc.replies)
        trace.append(_error_view(exc, case.codes_only))
        final = (type(exc).__name__, exc.offset, exc.line)
        if CHECK_STATE_AFTER_ERROR:
            stopped_at = (parser.buffered, parser.offset)
            trace.append(("stopped",) + stopped_at)
            if stopped_at != (0, fed):
                raise Divergence(f"{module.__name__}: a stopped parser reports buffered, offset "
                                 f"= {stopped_at}, not (0, {fed})")
        # The parser stays stopped, with the same message, until reset().
        for again in (lambda: parser.feed(b"250 ok\r\n"), parser.close):
            try:
                again()
            except errors as stopped:
                trace.append(_error_view(stopped, False))
            else:
                raise Divergence(f"{module.__name__}: a stopped parser accepted more input")
    except Divergence:
        raise
    except Exception as exc:  # noqa: BLE001 - anything else is a bug in itself
        raise Divergence(f"{module.__name__} raised {type(exc).__name__}: {exc}") from exc
    if case.reset_again:
        parser.reset()
        trace.append(("reset", parser.buffered, parser.offset))
        try:
            got = feed(case.stream)
            trace.append(got if case.codes_only else [_reply_view(r) for r in got])
            trace.append((parser.buffered, parser.offset))
        except errors as exc:
            trace.append(_error_view(exc, case.codes_only))
        except Exception as exc:  # noqa: BLE001
            raise Divergence(f"{module.__name__} raised {type(exc).__name__} after reset(): "
                             f"{exc}") from exc
    return trace, flat, final


def _modules() -> tuple[ModuleType, ModuleType]:
    import fastreply._parser  # noqa: F401 - the selector makes both Reply types comparable
    import fastreply._parser_c as compiled
    import fastreply._parser_py as reference

    return reference, compiled


def check(data: bytes, modules: tuple[ModuleType, ModuleType] | None = None) -> None:
    """Decode ``data``, run it on both parsers; raise :class:`Divergence` if
    anything differs or an invariant breaks."""
    reference, compiled = modules or _modules()
    case = decode(data)
    want, want_flat, want_final = observe(reference, case)
    got, got_flat, got_final = observe(compiled, case)
    if got != want:
        for index, (a, b) in enumerate(zip(got, want)):
            if a != b:
                raise Divergence(
                    f"step {index} differs for {case!r}\n  compiled:  {a!r}\n  reference: {b!r}"
                )
        raise Divergence(f"traces differ in length for {case!r}: {len(got)} vs {len(want)}")
    # Chunking must not matter: the reference, fed the stream whole.
    if len(case.chunks) > 1:
        whole = Case(
            options=case.options, codes_only=case.codes_only, chunk_type=0, close=case.close,
            reset_again=False, chunks=[case.stream], stream=case.stream,
        )
        _, one_flat, one_final = observe(reference, whole)
        if (got_flat, got_final) != (one_flat, one_final):
            raise Divergence(
                f"result depends on the chunking for {case!r}\n"
                f"  chunked: {got_flat!r} {got_final!r}\n  whole:   {one_flat!r} {one_final!r}"
            )
