"""Stress the threading contract of both parser implementations: what may
be shared, shared.

    python ci/thread_stress.py [--impl cython|python|both] [--seconds S | --quick]
                               [--threads N] [--seed N] [--exact IMPLS]

The contract (docs/threading.md): every method of a ``ReplyParser`` runs
whole (a critical section in the compiled parser, a lock in the pure-Python
one), so a parser shared by threads never breaks; tables and replies are
immutable and may be shared freely.  Meant for free-threaded CPython
(ci/freethreaded.sh runs it there), where threads really run at once; on a
GIL build it runs too (ci/hostile.sh), with a thread switch as often as the
interpreter allows.  For each implementation, phases of ``--seconds`` each:

whole
    One ``ReplyParser`` shared by every thread, which feeds chunks that are
    whole replies (a random run of a corpus's replies), through ``feed()``,
    ``feed_codes()`` or ``feed_checked()`` at random, with one table and
    command logs of every kind (``bytes`` shared, ``bytearray``, ``list``,
    ``deque`` a thread's own).  A call that runs as one step finds the
    parser empty and leaves it empty, so its result must be exactly the
    replies of its own chunk (and the unexpected positions
    ``ReplyTable.unexpected()`` gives), and at the end ``offset`` counts
    every byte fed.  The replies are published to a pool that other threads
    read (``lines``, ``text``, hash, equality) while their lines are being
    split for the first time.
mixed
    One parser (small limits) fed by every thread at once with random
    slices of the stream, junk lines, overlong lines, empty chunks, and
    ``reset()``, ``close()``, ``buffered`` and ``offset`` in between.  What
    comes out is unpredictable, but it must be well formed: each reply
    parses again, alone, to an equal reply; each code is a valid one;
    ``buffered`` stays within the limits.
counters
    One thread feeds a reply in pieces, the others read ``offset`` (never
    going back) and ``buffered`` (never more than the pieces held).
shared tables
    One command x code engine (``CodeMasks``) and one list of replies for
    every thread: ``allows``, ``check_all``, ``unexpected``, ``lines`` and
    ``text`` give the same answers everywhere.

The pure-Python parser runs every phase a second time with a thread switch
at every line of its module (a trace function).

Then, for each implementation, a last phase on the classifier
(:func:`classify_phase`, self-contained: it shares nothing with the parser
phases above):

classify
    One ``Classifier`` (the shipped rules, on the compiled or the
    pure-Python matcher) shared by all threads, each classifying random
    replies of one workload at once (``Reply`` objects of both parsers,
    ``(code, bytes)`` and ``(code, str)`` pairs; commands and providers of
    every kind, many of them new strings that fill the classifier's caches
    while others read them; arguments it must refuse).  Every answer must be
    the one a single thread got before (and the other matcher too: the twins
    agree), every refusal the same exception; now and then a thread
    ``extend()``s the shared classifier, which must not change it, and
    checks the new one.

A call returns a correct (whole) or a well-formed (mixed) result, or raises
a ``fastreply.ReplyError`` (the parser then stays stopped until
``reset()``).  Any other exception, a thread that hangs, or a wrong result
is a failure; the first few are printed with their tracebacks and the exit
status is 1.  ``--exact IMPLS`` (default ``cython,python``) names the
implementations whose calls are atomic by design: for them a
``ReplyError`` in the whole phase is a failure too.  ``--quick`` (the short
form of ci/hostile.sh) is one second a phase.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import sysconfig
import threading
import time
import traceback
from collections import deque
from types import ModuleType
from typing import Any, Callable

import fastreply
from fastreply import tables
from fastreply._bench.corpus import generate
from fastreply.errors import ReplyError

MODULES = {"cython": "fastreply._parser_c", "python": "fastreply._parser_py"}
MAX_FAILURES = 5  # tracebacks printed


class Shared:
    """What every thread of one phase sees."""

    def __init__(self, module: ModuleType, seconds: float, seed: int) -> None:
        self.module = module
        self.deadline = time.monotonic() + seconds
        self.seed = seed
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.calls = 0
        self.errors = 0  # ReplyErrors (allowed)
        self.fed = 0  # bytes fed (the whole phase: what the parser's offset must count)
        self.pool: list[tuple[Any, int, tuple[bytes, ...]]] = []  # (reply, code, lines)

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)

    def count(self, calls: int, errors: int, fed: int = 0) -> None:
        with self.lock:
            self.calls += calls
            self.errors += errors
            self.fed += fed


def corpus_replies(size: int) -> tuple[list[bytes], list[int], list[tuple[bytes, ...]], list[int]]:
    """The corpus's replies: wire bytes, codes, lines and command numbers."""
    corpus = generate("mix", size=size, seed=0)
    wires, codes, lines, commands = [], [], [], []
    for exchange in corpus.exchanges:
        wires.append(exchange.reply)
        codes.append(exchange.code)
        try:
            command = tables.Command[exchange.command]
        except KeyError:
            command = tables.Command.UNKNOWN
        commands.append(int(command))
        body = []
        for line in exchange.reply.split(b"\n")[:-1]:
            text = line[:-1] if line.endswith(b"\r") else line
            body.append(text[4:])
        lines.append(tuple(body))
    return wires, codes, lines, commands


def whole_worker(shared: Shared, index: int, parser: Any, data: Any) -> None:
    wires, codes, lines, commands, log, table = data
    # The shared log is bytes; the others are this thread's own (CPython
    # 3.13t's bytearray is not safe to share: its count of exported buffers
    # can lose updates), of every kind feed_checked() takes.
    logs = (log, bytearray(log), list(log), deque(log))
    rng = random.Random(shared.seed * 1000 + index)
    module = shared.module
    calls = errors = fed = 0
    while time.monotonic() < shared.deadline and len(shared.failures) < MAX_FAILURES:
        first = rng.randrange(len(wires))
        count = rng.randint(1, 40)
        stop = min(len(wires), first + count)
        chunk = b"".join(wires[first:stop])
        how = rng.choice(("feed", "codes", "checked", "bytearray", "memoryview"))
        calls += 1
        fed += len(chunk)
        try:
            if how == "codes":
                got_codes = parser.feed_codes(chunk)
                if got_codes != codes[first:stop]:
                    shared.fail(f"feed_codes() of replies {first}:{stop}: {got_codes!r}")
                continue
            if how == "checked":
                replies, bad = parser.feed_checked(chunk, table, rng.choice(logs), first)
                want_bad = table.unexpected(log, codes[first:stop], first)
                if bad != want_bad:
                    shared.fail(f"feed_checked() of replies {first}:{stop}: {bad} != {want_bad}")
            elif how == "bytearray":
                replies = parser.feed(bytearray(chunk))
            elif how == "memoryview":
                replies = parser.feed(memoryview(chunk))
            else:
                replies = parser.feed(chunk)
        except ReplyError:
            errors += 1
            parser.reset()
            continue
        got = [(r.code, r.lines) for r in replies]
        want = list(zip(codes[first:stop], lines[first:stop]))
        if got != want:
            shared.fail(f"{how} of replies {first}:{stop}: {got[:3]!r}... != {want[:3]!r}...")
        # Publish fresh replies (lines not split yet) and read others'.
        fresh = module.ReplyParser().feed(chunk)
        with shared.lock:
            shared.pool.extend((r, c, t) for r, (c, t) in zip(fresh, want))
            if len(shared.pool) > 2000:
                del shared.pool[:1000]
            sample = rng.sample(shared.pool, min(8, len(shared.pool)))
        for reply, code, text in sample:
            if reply.code != code or reply.lines != text or reply.text != b"\n".join(text):
                shared.fail(f"a shared reply reads {reply!r}, not {code} {text!r}")
            if reply != module.Reply(code, text) or hash(reply) != hash(module.Reply(code, text)):
                shared.fail(f"a shared reply compares or hashes wrongly: {reply!r}")
    shared.count(calls, errors, fed)


JUNK = (
    b"garbage\r\n",
    b"25\r\n",
    b"250ok\r\n",
    b"\r\n",
    b"699 out of range\r\n",
    b"250-" + b"x" * 300 + b"\r\n",  # longer than the mixed phase's max_line_length
    b"250-a\r\n" * 30,  # more lines than its max_reply_lines
    b"\x00\xff\n",
)


def mixed_worker(shared: Shared, index: int, parser: Any, data: Any) -> None:
    wires = data[0]
    rng = random.Random(shared.seed * 1000 + 500 + index)
    module = shared.module
    limit = parser.max_line_length * parser.max_reply_lines
    calls = errors = 0
    table, log = data[5], data[4]
    while time.monotonic() < shared.deadline and len(shared.failures) < MAX_FAILURES:
        first = rng.randrange(len(wires))
        stream = b"".join(wires[first : first + rng.randint(1, 6)])
        if rng.random() < 0.2:
            stream += rng.choice(JUNK)
        cuts = sorted(rng.sample(range(len(stream) + 1), min(3, len(stream) + 1)))
        pieces = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
        for piece in pieces:
            op = rng.random()
            calls += 1
            try:
                if op < 0.05:
                    parser.reset()
                    continue
                if op < 0.08:
                    parser.close()
                    continue
                if op < 0.12:
                    held = parser.buffered
                    offset = parser.offset
                    if not 0 <= held <= limit or offset < 0:
                        shared.fail(f"buffered={held}, offset={offset} (limit {limit})")
                    continue
                if op < 0.40:
                    out = parser.feed_codes(piece)
                    if any(type(c) is not int or not 100 <= c <= 599 for c in out):
                        shared.fail(f"feed_codes() returned {out!r}")
                    continue
                if op < 0.65:
                    out, bad = parser.feed_checked(piece, table, log, rng.randrange(len(log) + 5))
                    if (any(type(i) is not int or not 0 <= i < len(out) for i in bad)
                            or bad != sorted(set(bad))):
                        shared.fail(f"feed_checked() returned the positions {bad!r} "
                                    f"for {len(out)} replies")
                else:
                    out = parser.feed(piece)
            except ReplyError:
                errors += 1
                if rng.random() < 0.7:
                    parser.reset()
                continue
            for reply in out:
                alone = module.ReplyParser(
                    max_line_length=parser.max_line_length, max_reply_lines=parser.max_reply_lines
                )
                try:
                    again = alone.feed(reply.raw)
                except ReplyError as exc:
                    again = [exc]
                if again != [reply] or not 100 <= reply.code <= 599:
                    shared.fail(f"a reply that does not parse again to itself: {reply.raw!r} "
                                f"gives {again!r}")  # fmt: skip
    shared.count(calls, errors)


def counters_worker(shared: Shared, index: int, parser: Any, data: Any) -> None:
    """Thread 0 feeds a reply in three pieces, again and again; the others
    read ``offset`` and ``buffered`` meanwhile: the offset never goes back,
    what is held never exceeds the longest piece held."""
    calls = 0
    if index == 0:
        while time.monotonic() < shared.deadline and len(shared.failures) < MAX_FAILURES:
            for piece in (b"250-a\r\n", b"250-b\r\n250 ", b"c\r\n"):
                parser.feed(piece)
                calls += 1
    else:
        last = 0
        while time.monotonic() < shared.deadline and len(shared.failures) < MAX_FAILURES:
            offset, held = parser.offset, parser.buffered
            calls += 1
            if offset < last or not 0 <= held <= 18:
                shared.fail(f"offset went from {last} to {offset}, {held} bytes held")
            last = offset
    shared.count(calls, 0)


def shared_tables_worker(shared: Shared, index: int, engine: Any, data: Any) -> None:
    """One command x code engine and one set of replies for every thread:
    ``allows``, ``check_all``, ``unexpected``, ``lines`` and ``text`` give
    the same answers everywhere (the replies' lines split while others read)."""
    wires, codes, lines, commands, log, table = data
    module = shared.module
    chunk = b"".join(wires[:200])
    want = list(zip(codes[:200], lines[:200]))
    cmds = list(log[:200])
    expected = table.unexpected(cmds, codes[:200])
    calls = 0
    while time.monotonic() < shared.deadline and len(shared.failures) < MAX_FAILURES:
        with shared.lock:
            if not shared.pool or index == 0:
                shared.pool[:] = [(r, c, t) for r, (c, t) in zip(module.ReplyParser().feed(chunk),
                                                                 want)]
            replies = [r for r, _, _ in shared.pool]
        calls += 1
        if [(r.code, r.lines) for r in replies] != want:
            shared.fail("the shared replies' lines differ")
        if [r.text for r in replies] != [b"\n".join(t) for _, t in want]:
            shared.fail("the shared replies' text differs")
        if engine.unexpected(cmds, replies) != expected:
            shared.fail("unexpected() differs")
        if engine.check_all(cmds, replies) != [i not in expected for i in range(len(cmds))]:
            shared.fail("check_all() differs")
        if engine.allows(cmds[0], replies[0].code) != (0 not in expected):
            shared.fail("allows() differs")
    shared.count(calls, 0)


def _line_switcher(module_file: str) -> Callable[..., Any]:
    """A trace function that hands the GIL over at every line of
    ``module_file`` (the pure-Python parser): races its lock must prevent
    get their chance even on a GIL build."""

    def each_line(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            time.sleep(0)
        return each_line

    def calls(frame: Any, event: str, arg: Any) -> Any:
        return each_line if frame.f_code.co_filename == module_file else None

    return calls


def run_phase(
    name: str,
    module: ModuleType,
    worker: Callable[[Shared, int, Any, Any], None],
    parser: Any,
    data: Any,
    threads: int,
    seconds: float,
    seed: int,
    traced: bool = False,
) -> Shared:
    shared = Shared(module, seconds, seed)

    def guarded(index: int) -> None:
        if traced:
            sys.settrace(_line_switcher(module.__file__ or ""))
        try:
            worker(shared, index, parser, data)
        except BaseException:  # noqa: BLE001 - anything but a ReplyError is a failure
            shared.fail(f"thread {index} died:\n{traceback.format_exc()}")

    pool = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(seconds + 60)
        if thread.is_alive():
            shared.fail(f"{thread.name} still runs 60 s after the deadline: a hang")
            break
    return shared


# -- the classifier: one Classifier shared by every thread ------------------------

CLASSIFY_MATCHERS = {"cython": "fastreply._classify_c", "python": "fastreply._classify_py"}


def classify_workload(count: int, seed: int) -> list[tuple[Any, Any, Any]]:
    """``count`` (reply, command, provider) triples: texts made of the shipped
    rules' phrases and the providers' tokens, delays, enhanced codes and
    noise, each with its own id; the replies as ``Reply`` objects of both
    parsers and as pairs; a few arguments the classifier must refuse."""
    from fastreply import _parser_py
    from fastreply.classification import shipped_providers, shipped_rules
    from fastreply.commands import Command

    parsers: list[ModuleType] = [_parser_py]
    try:
        from fastreply import _parser_c
    except ImportError:
        pass
    else:
        parsers.append(_parser_c)
    rng = random.Random(seed)
    phrases = sorted({p for r in shipped_rules() for p in r.phrases}
                     | {t for p in shipped_providers().values() for t in p["tokens"]})
    hosts = [h for p in shipped_providers().values() for h in p["hosts"]]
    codes = (250, 354, 421, 450, 451, 452, 550, 552, 553, 554, 221, -1, 999)
    enhanced = ("5.1.1 ", "4.2.1 ", "5.7.1 ", "4.7.500 ", "5.4.1 ", "2.0.0 ", "")
    delays = ("", " try again in 5 minutes", " please come back in 00:05:00", " retry in 30 s")
    items: list[tuple[Any, Any, Any]] = []
    for index in range(count):
        code = rng.choice(codes)
        lines = [
            (rng.choice(enhanced) + " ".join(rng.choice(phrases) for _ in range(rng.randint(0, 3)))
             + f" id={index:06d}{rng.randrange(10**6):06d}" + rng.choice(delays)).encode()
            for _ in range(rng.randint(1, 3))
        ]
        form = rng.randrange(4)
        if form < 2 and 100 <= code <= 599:
            wire = b"".join(b"%d-%s\r\n" % (code, line) for line in lines[:-1])
            (reply,) = rng.choice(parsers).ReplyParser().feed(wire + b"%d %s\r\n" % (code, lines[-1]))
        elif form == 2:
            reply = (code, b"\n".join(lines))
        else:
            reply = (code, b"\n".join(lines).decode())
        command = rng.choice([None, rng.choice(list(Command)), "RCPT", b"MAIL FROM:<a@b>", ".",
                              f"XUNKNOWN{index}", 5])
        provider = rng.choice([None, None, "google", rng.choice(hosts), f"mx{index}.example.net"])
        if index % 97 == 0:
            reply, command, provider = rng.choice([((1000, b"x"), None, None),
                                                   ((550, b"x"), 99, None),
                                                   ((550, b"x"), None, "nobody")])
        items.append((reply, command, provider))
    return items


def _classify_answer(classifier: Any, item: tuple[Any, Any, Any]) -> Any:
    reply, command, provider = item
    try:
        return classifier.classify(reply, command, provider=provider)
    except (TypeError, ValueError) as exc:
        return (type(exc).__name__, str(exc))


def classify_worker(shared: Shared, index: int, classifier: Any, data: Any) -> None:
    """Classify random items of the workload on the shared classifier; now and
    then extend() it (which must leave it as it was) and check the new one."""
    items, alone, rules_before = data
    rng = random.Random(shared.seed * 1000 + 700 + index)
    calls = extended = 0
    while time.monotonic() < shared.deadline and len(shared.failures) < MAX_FAILURES:
        if rng.random() < 0.005:
            new = classifier.extend([{"id": f"stress-{index}", "category": "spam_content",
                                      "phrases": [f"stress marker {index}"]}])
            extended += 1
            got = new.classify((554, b"5.7.1 stress marker %d" % index)).rule
            if got != f"stress-{index}" or classifier.rules is not rules_before:
                shared.fail(f"extend() gave rule {got!r} or changed the shared classifier")
            continue
        for k in rng.sample(range(len(items)), 64):
            calls += 1
            got = _classify_answer(classifier, items[k])
            if got != alone[k]:
                shared.fail(f"thread {index}, item {k}: {got!r} != {alone[k]!r}")
                break
    shared.count(calls, extended)  # (extend()s counted as "errors": none are allowed)


def classify_phase(impl: str, threads: int, seconds: float, seed: int,
                   items: list[tuple[Any, Any, Any]],
                   expected: list[Any]) -> tuple[str, list[str]]:
    """One classifier on ``impl``'s matcher shared by ``threads`` threads for
    ``seconds`` (run_phase); returns a summary line and the failures."""
    from fastreply.classification import Classifier

    module = importlib.import_module(CLASSIFY_MATCHERS[impl])
    classifier = Classifier(matcher=module.Matcher)
    alone = [_classify_answer(classifier, item) for item in items]  # one thread
    differs = [i for i, (got, want) in enumerate(zip(alone, expected)) if got != want]
    shared = run_phase("classify", module, classify_worker, classifier,
                       (items, alone, classifier.rules), threads, seconds, seed)
    if differs:
        i = differs[0]
        shared.fail(f"{impl} alone differs from the other matcher on {len(differs)} items, "
                    f"e.g. {i}: {alone[i]!r} != {expected[i]!r}")
    refused = sum(isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], str) for a in alone)
    verdict = "ok" if not shared.failures else f"FAILED ({len(shared.failures)})"
    return (f"{impl:6} classify: {shared.calls:,} calls on one Classifier, {shared.errors} "
            f"extend()s, {len(items):,} replies ({refused} refused alike), {verdict}"
            ), shared.failures


def classify_phases(impls: tuple[str, ...], threads: int, seconds: float, seed: int) -> int:
    """The classify phase on each implementation; 1 when any failed."""
    items = classify_workload(4000, seed)
    # The answers one thread gets from the compiled matcher (else the pure one):
    # each implementation must give exactly these, alone and shared.
    from fastreply.classification import Classifier

    try:
        reference = importlib.import_module(CLASSIFY_MATCHERS["cython"])
    except ImportError:
        reference = importlib.import_module(CLASSIFY_MATCHERS["python"])
    expected = [_classify_answer(Classifier(matcher=reference.Matcher), item) for item in items]
    status = 0
    for name in impls:
        line, failures = classify_phase(name, threads, seconds, seed, items, expected)
        print(line)
        for failure in failures[:MAX_FAILURES]:
            print("   ", failure.replace("\n", "\n    "))
        if failures:
            status = 1
    return status


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--impl", choices=("cython", "python", "both"), default="both")
    p.add_argument("--seconds", type=float, default=10.0, help="per phase (default 10)")
    p.add_argument("--quick", action="store_true", help="one second a phase")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--exact", default="cython,python",
        help="implementations whose calls are atomic: no ReplyError allowed in the whole phase",
    )  # fmt: skip
    args = p.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    impls = ("cython", "python") if args.impl == "both" else (args.impl,)
    exact = {name for name in args.exact.split(",") if name}
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(
        f"{sys.version.split()[0]}{'t' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''}, "
        f"GIL {'on' if gil else 'off'}, fastreply {fastreply.__version__}, "
        f"{args.threads} threads, {seconds:g} s a phase"
    )
    wires, codes, lines, commands = corpus_replies(60_000)
    log = bytes(commands)
    table = tables.MODERN
    data = (wires, codes, lines, commands, log, table)
    status = 0
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # (a GIL build: switch as often as it can)
    try:
        for name in impls:
            module = importlib.import_module(MODULES[name])
            engine = module.CodeMasks()
            engine._set_masks(table.masks)
            for traced in (False, True) if name == "python" else (False,):
                phases: list[tuple[str, Callable[..., None], Any]] = [
                    ("whole", whole_worker, module.ReplyParser()),
                    ("mixed", mixed_worker,
                     module.ReplyParser(max_line_length=256, max_reply_lines=20)),
                    ("counters", counters_worker, module.ReplyParser()),
                    ("shared tables", shared_tables_worker, engine),
                ]
                for phase, worker, shared_object in phases:
                    shared = run_phase(phase, module, worker, shared_object, data, args.threads,
                                       seconds, args.seed, traced)  # fmt: skip
                    if phase == "whole":
                        if name in exact and shared.errors:
                            shared.fail(f"{shared.errors} ReplyErrors from whole replies: "
                                        "a call was not atomic")
                        parser = shared_object
                        if not shared.errors and (parser.offset, parser.buffered) != (shared.fed, 0):
                            shared.fail(f"offset {parser.offset} after {shared.fed} bytes fed, "
                                        f"{parser.buffered} bytes held")
                    verdict = "ok" if not shared.failures else f"FAILED ({len(shared.failures)})"
                    label = f"{phase}{', switch at every line' if traced else ''}"
                    print(f"{name:6} {label}: {shared.calls:,} calls, {shared.errors:,} "
                          f"ReplyErrors (allowed), {verdict}")
                    for failure in shared.failures[:MAX_FAILURES]:
                        print("   ", failure.replace("\n", "\n    "))
                    if shared.failures:
                        status = 1
    finally:
        sys.setswitchinterval(saved)
    status |= classify_phases(impls, args.threads, seconds, args.seed)
    return status


if __name__ == "__main__":
    sys.exit(main())
