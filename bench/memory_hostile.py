"""Hundreds of MB of hostile reply streams: peak memory growth, time, and the error each ends with.

    python bench/memory_hostile.py                      # 256 MB of each stream, both implementations
    python bench/memory_hostile.py --size-mb 32         # the short form (ci/hostile.sh --quick)
    python bench/memory_hostile.py --impl cython --stream endless-line

Every stream is generated on the fly from a few pre-built blocks (the
script itself holds no more than a few MB of it), fed to a parser in a
child process of its own, and measured there: peak RSS growth is the
kernel's high-water mark (VmHWM, reset through /proc/self/clear_refs just
before feeding) minus the resident size at that moment, so imports and
set-up do not count.  Replies are counted and dropped as they come.

A hostile server is refused long before it has sent S bytes (--size-mb):
with the default limits an endless line ends after 8 KB.  So that S bytes
really go through one process, an attack is repeated, as a long-lived
client meets it on connection after connection: when the parser refuses
the stream with the expected error, the same parser is ``reset()`` and the
attack starts again, until S bytes have been fed in all ("attacks" column).
Every attack must end with the expected error at the expected offset, and
the peak over all of them must stay within the bound, so memory kept by one
refused attack (a leak per error) would add up and show.

The streams:

``endless-line``            ``250 `` and then never a line end; default limits
``endless-line-raised``     the same with ``max_line_length`` = S/4: the limit,
                            not the input, decides what is held
``endless-continuations``   ``250-`` lines forever; default limits
``continuations-raised``    the same with ``max_reply_lines`` so that S/4 is
                            accepted
``tiny-chunks``             replies exactly at both default limits (1000 lines
                            of 8192 bytes: 8 MB each), fed 1-16 bytes at a time
                            (millions of chunks; --tiny-mb in all, default S/8),
                            then a line that is not a reply
``nul-lines``               S bytes of well-formed replies whose text is runs
                            of NUL, lines at the length limit, then a line of
                            NULs
``8bit-lines``              the same with bytes 0x80-0xff
``well-formed``             S bytes of the ``mix`` workload (realistic
                            sessions), reply by reply; must end cleanly and
                            hold memory flat

Each row is checked: the right error (type and stream offset) for every
attack, or a clean end, and peak growth within the bound the limits set
(``max_line_length * max_reply_lines``, what one incomplete reply may hold)
times a factor plus a constant (see ALLOWANCE); the script exits 1 if a row
fails.  The factor covers what completing or growing a held reply costs on
top of holding it: the compiled parser's buffer grows by doubling (old and
new block alive during the copy: 3x), a completed reply is copied into its
Reply's raw bytes, the reference keeps per-line text copies.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from typing import Any, Callable, Iterator

MB = 1 << 20
KB = 1 << 10
DEFAULT_LINE = 8192
DEFAULT_LINES = 1000
BLOCK = 64 * KB
# Allowed peak RSS growth: FACTOR * held + CONSTANT, per implementation, where
# "held" is the most that the limits let this stream make a parser hold.
ALLOWANCE = {"cython": (4.0, 8 * MB), "python": (4.0, 16 * MB)}
IMPLEMENTATIONS = {"cython": "fastreply._parser_c", "python": "fastreply._parser_py"}
STREAMS = [
    "endless-line",
    "endless-line-raised",
    "endless-continuations",
    "continuations-raised",
    "tiny-chunks",
    "nul-lines",
    "8bit-lines",
    "well-formed",
]


def _status(key: str) -> int:
    with open("/proc/self/status") as handle:
        match = re.search(rf"^{key}:\s+(\d+) kB", handle.read(), re.M)
    assert match, key
    return int(match.group(1)) * KB


def _repeat(block: bytes, total: int) -> Iterator[bytes]:
    """``total`` bytes as repeats of ``block`` (the last one cut)."""
    full, rest = divmod(total, len(block))
    for _ in range(full):
        yield block
    if rest:
        yield block[:rest]


def _sliced(block: bytes, count: int) -> Callable[[], Iterator[bytes]]:
    """``block`` ``count`` times, in BLOCK-sized chunks as a socket would give
    them (cut anywhere, replies split across chunks); the pieces are made now,
    before measuring."""
    pieces = [block[i : i + BLOCK] for i in range(0, len(block), BLOCK)]

    def chunks() -> Iterator[bytes]:
        for _ in range(count):
            yield from pieces

    return chunks


def _lines_block(fill: bytes, length: int, per_reply: int, target: int) -> bytes:
    """Whole replies of ``per_reply`` lines of exactly ``length`` bytes (CRLF
    included) whose text is ``fill`` repeated; about ``target`` bytes."""
    text = (fill * length)[: length - 6]
    reply = (b"250-" + text + b"\r\n") * (per_reply - 1) + b"250 " + text + b"\r\n"
    return reply * max(1, target // len(reply))


class Plan:
    """What to feed, with which limits, and how it must end."""

    def __init__(self, chunks: Callable[[], Iterator[bytes]], expect: str | None,
                 offset: int | None, held: int, line: int = DEFAULT_LINE,
                 lines: int = DEFAULT_LINES, note: str = "", repeat: bool = False) -> None:
        self.chunks = chunks
        self.repeat = repeat  # the attack is shorter than S: repeat it after reset()
        self.held = held
        self.expect = expect
        self.offset = offset
        self.line = line
        self.lines = lines
        self.note = note


def plan(name: str, size: int, tiny: int) -> Plan:
    if name == "endless-line":
        block = b"x" * BLOCK
        return Plan(lambda: iter([b"250 ", *_repeat(block, size)]), "LineTooLong", 0,
                    held=DEFAULT_LINE, repeat=True)
    if name == "endless-line-raised":
        block = b"x" * BLOCK
        limit = size // 4
        return Plan(lambda: iter([b"250 ", *_repeat(block, size)]), "LineTooLong", 0,
                    held=limit, line=limit, note=f"max_line_length={limit}", repeat=True)
    cont = b"250-" + b"c" * 70 + b"\r\n"  # 76 bytes
    cont_block = cont * (BLOCK // len(cont))
    if name == "endless-continuations":
        return Plan(lambda: _repeat(cont_block, size), "TooManyLines",
                    (DEFAULT_LINES - 1) * len(cont), held=DEFAULT_LINES * len(cont), repeat=True)
    if name == "continuations-raised":
        lines = size // 4 // len(cont)
        return Plan(lambda: _repeat(cont_block, size), "TooManyLines", (lines - 1) * len(cont),
                    held=lines * len(cont), lines=lines, note=f"max_reply_lines={lines}",
                    repeat=True)
    if name == "tiny-chunks":
        reply = _lines_block(b"t", DEFAULT_LINE, DEFAULT_LINES, 1)  # one reply at both limits
        count = max(1, tiny // len(reply))
        tail = b"HTTP/1.1 400 Bad Request\r\n"
        # Chunk sizes cycle through 1..16: fed straight from memoryview slices.
        sizes = list(range(1, 17))

        def chunks() -> Iterator[Any]:  # memoryview slices, then bytes
            view = memoryview(reply)
            for _ in range(count):
                i = k = 0
                n = len(reply)
                while i < n:
                    step = sizes[k & 15]
                    yield view[i : i + step]
                    i += step
                    k += 1
            yield tail

        return Plan(chunks, "MalformedReply", count * len(reply), held=len(reply),
                    note=f"{count} replies of {len(reply)} bytes in 1-16 byte chunks")
    if name in ("nul-lines", "8bit-lines"):
        fill = b"\x00" if name == "nul-lines" else bytes(range(128, 256))
        block = _lines_block(fill, DEFAULT_LINE, 10, 4 * MB)
        count = max(1, size // len(block))
        tail = (fill * 100)[:100] + b"\r\n"
        body = _sliced(block, count)
        return Plan(lambda: itertools.chain(body(), [tail]), "MalformedReply",
                    count * len(block), held=10 * DEFAULT_LINE)
    if name == "well-formed":
        from fastreply._bench.corpus import generate

        block = generate("mix", size=4 * MB, seed=3).data
        count = max(1, -(-size // len(block)))  # at least S bytes
        return Plan(_sliced(block, count), None, None, held=DEFAULT_LINE * 4)
    raise SystemExit(f"unknown stream {name!r}")


def child(name: str, impl: str, size: int, tiny: int) -> dict[str, Any]:
    from fastreply.errors import ReplyError

    module = importlib.import_module(IMPLEMENTATIONS[impl])
    spec = plan(name, size, tiny)
    target = tiny if name == "tiny-chunks" else size
    parser = module.ReplyParser(max_line_length=spec.line, max_reply_lines=spec.lines)
    feed = parser.feed
    gc.collect()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets VmHWM to the current RSS
    base = _status("VmRSS")
    total = count = pieces = attacks = 0
    error: Any = None
    wrong: Any = None
    start = time.perf_counter()
    while True:
        attacks += 1
        error = None
        try:
            for chunk in spec.chunks():
                total += len(chunk)
                pieces += 1
                count += len(feed(chunk))
            parser.close()
        except ReplyError as exc:
            count += len(exc.replies)
            error = (type(exc).__name__, exc.offset)
        if not spec.repeat or error != (spec.expect, spec.offset) or total >= target:
            if spec.expect is not None and error != (spec.expect, spec.offset):
                wrong = error
            break
        parser.reset()  # the next connection, the same attack
    elapsed = time.perf_counter() - start
    peak = _status("VmHWM")
    return {
        "stream": name, "impl": impl, "fed": total, "chunks": pieces, "replies": count,
        "attacks": attacks, "error": wrong if wrong is not None else error,
        "seconds": elapsed, "growth": peak - base, "peak": peak, "base": base,
        "held": spec.held, "bound": spec.line * spec.lines, "expect": spec.expect,
        "offset": spec.offset, "note": spec.note,
    }


def verdict(row: dict[str, Any], errors_only: bool = False) -> str:
    problems = []
    if row["expect"] is None:
        if row["error"] is not None:
            problems.append(f"unexpected {row['error'][0]} at {row['error'][1]}")
    elif row["error"] is None:
        problems.append(f"no error, expected {row['expect']}")
    elif tuple(row["error"]) != (row["expect"], row["offset"]):
        problems.append(f"got {row['error'][0]}@{row['error'][1]}, expected "
                        f"{row['expect']}@{row['offset']}")
    factor, constant = ALLOWANCE[row["impl"]]
    if not errors_only and row["growth"] > factor * row["held"] + constant:
        problems.append(f"growth {row['growth'] / MB:.1f} MB > {factor} x held + "
                        f"{constant // MB} MB")
    return "; ".join(problems)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=256, help="size S of each stream (256)")
    parser.add_argument("--tiny-mb", type=int, default=None,
                        help="bytes fed in tiny chunks (default S/8)")
    parser.add_argument("--impl", choices=["cython", "python", "both"], default="both")
    parser.add_argument("--stream", action="append", choices=STREAMS,
                        help="only these streams (repeatable)")
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--quiet", action="store_true", help="only failures and the summary")
    parser.add_argument("--errors-only", action="store_true",
                        help="check how each stream ends, not memory (for sanitizer builds, "
                        "whose quarantine and red zones inflate RSS)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = args.size_mb * MB
    tiny = (args.tiny_mb * MB) if args.tiny_mb else max(8 * MB + 1, size // 8)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], size, tiny)))
        return 0
    impls = ["cython", "python"] if args.impl == "both" else [args.impl]
    streams = args.stream or STREAMS
    rows = []
    failed = 0
    if not args.quiet:
        print(f"{'stream':22} {'impl':6} {'fed MB':>7} {'chunks':>9} {'attacks':>7} "
              f"{'replies':>8} {'each ends with':>25} {'held MB':>8} {'growth MB':>9} "
              f"{'peak RSS':>8} {'s':>6} {'MB/s':>6}")
    for name in streams:
        for impl in impls:
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--child", name, impl,
                 "--size-mb", str(args.size_mb), "--tiny-mb", str(tiny // MB or 1)],
                capture_output=True, text=True, timeout=1800,
            )
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                print(f"FAILED {name} {impl}: child exited {out.returncode}")
                failed += 1
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["problem"] = verdict(row, args.errors_only)
            rows.append(row)
            ends = f"{row['error'][0]}@{row['error'][1]}" if row["error"] else "clean close"
            rate = row["fed"] / MB / row["seconds"] if row["seconds"] else 0.0
            line = (f"{name:22} {impl:6} {row['fed'] / MB:7.1f} {row['chunks']:9d} "
                    f"{row['attacks']:7d} {row['replies']:8d} {ends:>25} "
                    f"{row['held'] / MB:8.2f} {row['growth'] / MB:9.2f} "
                    f"{row['peak'] / MB:8.1f} {row['seconds']:6.2f} {rate:6.0f}")
            if row["problem"]:
                failed += 1
                print(f"{line}  FAIL: {row['problem']}")
            elif not args.quiet:
                print(f"{line}  {row['note']}".rstrip())
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    if not args.quiet:
        print("(held: the most the limits let the stream make a parser hold; growth: peak RSS "
              "while feeding minus RSS before; peak RSS: the process's high-water mark, MB)")
    print(f"memory_hostile: {len(rows)} runs of {args.size_mb} MB each "
          f"(tiny chunks: {tiny // MB} MB), {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
