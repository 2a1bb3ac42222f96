"""Stress the threading contract of both parser implementations.

    python ci/threads_stress.py [--quick] [--threads N] [--rounds N]

The contract (docs/threading.md): every method of a ``ReplyParser`` runs whole
(a critical section in the compiled parser, a lock in the pure-Python one),
so a parser shared by threads never breaks; tables and replies are
immutable and may be shared freely.  Each part below runs on each
implementation, first as the threads come, then (the pure-Python parser)
with a switch forced at every line of the parser, and fails on any
exception that is not a ``ReplyError`` and on any broken promise:

* whole replies fed by many threads at once through ``feed``,
  ``feed_codes`` and ``feed_checked`` (logs of several kinds): each call
  returns exactly the replies it fed, and ``offset`` counts every byte;
* fragments of replies from many threads (a garbage stream): replies or
  ``ReplyError``, a ``reset()`` after each error, nothing else;
* counters (``buffered``, ``offset``) read while others feed;
* one table and one set of replies shared by every thread: the same answers
  (``allows``, ``check_all``, ``unexpected``, ``lines``, ``text``) everywhere.

Exit status 1 on the first part that fails.  ``--quick`` (``ci/hostile.sh
--quick``) takes a few seconds.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import deque
from types import ModuleType
from typing import Any, Callable

REPLIES = [b"250 ok\r\n", b"250-a\r\n250-b\r\n250 c\r\n", b"550 5.1.1 " + b"x" * 90 + b"\r\n",
           b"220\n", b"354 go ahead\r\n"]
PIECES = [b"250-abc\r\n250-de", b"f\r\n250-gh\r\n2", b"50 end\r\n", b"220-x\r\n220-y\r\n220 z\r\n250"]


class Failed(Exception):
    pass


def _run_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    failures: list[BaseException] = []
    start = threading.Barrier(count)

    def body(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported
            failures.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def whole_replies(impl: ModuleType, threads: int, rounds: int) -> str:
    from fastreply.commands import Command
    from fastreply.tables import MODERN

    parser = impl.ReplyParser(max_line_length=256)
    fed = [0] * threads
    logs: list[Callable[[int], Any]] = [
        lambda n: [int(Command.MAIL)] * n, lambda n: bytearray([int(Command.RCPT)] * n),
        lambda n: deque([int(Command.DATA)] * n)]

    def work(index: int) -> None:
        for round_ in range(rounds):
            count = 1 + (round_ + index) % 7
            chunk = b"".join(REPLIES[(round_ + k) % len(REPLIES)] for k in range(count))
            how = round_ % 3
            if how == 0:
                got = parser.feed(chunk)
                if b"".join(r.raw for r in got) != chunk:
                    raise Failed(f"feed() returned {len(got)} replies not its own")
            elif how == 1:
                if len(parser.feed_codes(chunk)) != count:
                    raise Failed("feed_codes() returned another count")
            else:
                got, bad = parser.feed_checked(chunk, MODERN, logs[round_ % 3](count))
                if len(got) != count or any(not 0 <= i < count for i in bad):
                    raise Failed("feed_checked() returned replies or positions not its own")
            fed[index] += len(chunk)

    failures = _run_threads(threads, work)
    if failures:
        raise Failed(f"{len(failures)} threads failed, first: {failures[0]!r}")
    if parser.offset != sum(fed) or parser.buffered:
        raise Failed(f"offset {parser.offset} after {sum(fed)} bytes, {parser.buffered} held")
    return f"{threads * rounds} calls, {sum(fed)} bytes"


def fragments(impl: ModuleType, threads: int, rounds: int) -> str:
    from fastreply.errors import ReplyError

    parser = impl.ReplyParser(max_line_length=200, max_reply_lines=50)
    counts = {"replies": 0, "errors": 0}
    lock = threading.Lock()

    def work(index: int) -> None:
        for round_ in range(rounds):
            try:
                got = parser.feed(PIECES[(index + round_) % len(PIECES)])
                with lock:
                    counts["replies"] += len(got)
            except ReplyError:
                with lock:
                    counts["errors"] += 1
                parser.reset()
            if parser.buffered < 0 or parser.offset < 0:
                raise Failed("negative counters")

    failures = _run_threads(threads, work)
    if failures:
        raise Failed(f"{len(failures)} threads failed, first: {failures[0]!r}")
    return f"{counts['replies']} replies, {counts['errors']} ReplyErrors"


def counters(impl: ModuleType, threads: int, rounds: int) -> str:
    parser = impl.ReplyParser()
    done = threading.Event()
    reads = [0]

    def feeder() -> None:
        for _ in range(rounds * 4):
            for piece in (b"250-a\r\n", b"250-b\r\n250 ", b"c\r\n"):
                parser.feed(piece)
        done.set()

    def reader() -> None:
        last = 0
        while not done.is_set():
            offset, held = parser.offset, parser.buffered
            if offset < last or not 0 <= held <= 20:
                raise Failed(f"offset went from {last} to {offset}, {held} held")
            last = offset
            reads[0] += 1

    def work(index: int) -> None:
        (feeder if index == 0 else reader)()

    failures = _run_threads(max(2, threads), work)
    if failures:
        raise Failed(f"{len(failures)} threads failed, first: {failures[0]!r}")
    return f"{reads[0]} counter reads"


def shared_values(impl: ModuleType, threads: int, rounds: int) -> str:
    from fastreply.commands import Command
    from fastreply.tables import MODERN

    engine = impl.CodeMasks()
    engine._set_masks(MODERN.masks)
    data = b"".join(REPLIES) * 20
    want = [(r.lines, r.text) for r in impl.ReplyParser().feed(data)]
    log = [int(Command.MAIL)] * len(want)
    expected = MODERN.unexpected(log, [code for code in (r.code for r in impl.ReplyParser().feed(data))])

    def work(index: int) -> None:
        for _ in range(max(1, rounds // 20)):
            shared = impl.ReplyParser().feed(data) if index == 0 else None
            replies = shared or impl.ReplyParser().feed(data)
            if [(r.lines, r.text) for r in replies] != want:
                raise Failed("lines or text differ")
            if engine.unexpected(log, replies) != expected:
                raise Failed("unexpected() differs")
            if engine.check_all(log, replies) != [i not in expected for i in range(len(log))]:
                raise Failed("check_all() differs")

    failures = _run_threads(threads, work)
    if failures:
        raise Failed(f"{len(failures)} threads failed, first: {failures[0]!r}")
    return f"{len(want)} replies checked by {threads} threads"


def _line_switcher(module_file: str) -> Callable[..., Any]:
    def each_line(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            time.sleep(0)  # gives the GIL away
        return each_line

    def calls(frame: Any, event: str, arg: Any) -> Any:
        return each_line if frame.f_code.co_filename == module_file else None

    return calls


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--quick", action="store_true", help="a few seconds")
    options.add_argument("--threads", type=int, default=4)
    options.add_argument("--rounds", type=int, default=None)
    args = options.parse_args()
    rounds = args.rounds or (200 if args.quick else 2000)
    import fastreply._parser_py as pure

    impls: list[ModuleType] = [pure]
    try:
        import fastreply._parser_c as compiled
    except ImportError:
        print("threads: the compiled module is not installed: the pure-Python parser only")
    else:
        impls.insert(0, compiled)
    parts = [whole_replies, fragments, counters, shared_values]
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    started = time.perf_counter()
    try:
        for impl in impls:
            modes = [False, True] if impl is pure else [False]
            for traced in modes:
                for part in parts:
                    if traced:
                        threading.settrace(_line_switcher(pure.__file__))
                    begin = time.perf_counter()
                    try:
                        said = part(impl, args.threads, rounds // 10 if traced else rounds)
                    except Failed as exc:
                        print(f"threads FAILED: {impl.__name__} {part.__name__}"
                              f"{' (switch at every line)' if traced else ''}: {exc}")
                        return 1
                    finally:
                        threading.settrace(None)  # type: ignore[arg-type]
                    print(f"threads: {impl.__name__:22} {part.__name__:14}"
                          f"{' traced' if traced else '':8} ok: {said} "
                          f"({time.perf_counter() - begin:.2f}s)")
    finally:
        sys.setswitchinterval(saved)
    print(f"threads: the contract holds ({time.perf_counter() - started:.1f}s, "
          f"{args.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
