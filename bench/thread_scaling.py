"""Thread scaling: how much more work 2 threads do than 1, for every parse path
and for classify().

    python bench/thread_scaling.py                    # compiled parser, 7 rounds of 1 s
    python bench/thread_scaling.py --impl both --rounds 3 --seconds 0.5
    python bench/thread_scaling.py --threads 1,2,4 --json scaling.json

Each thread has its own parser (one per connection, as the docs say) and
parses the same corpus (``fastreply._bench.corpus``, ``mix`` by default) in 64 KiB
reads, over and over, through one public path:

``feed``      ``ReplyParser.feed()``, a list of ``Reply`` objects a read
``codes``     ``ReplyParser.feed_codes()``, a list of ints a read
``checked``   ``ReplyParser.feed_checked()`` against ``tables.MODERN`` (shared
              by all threads) and a command log (one a thread)
``classify``  ``Classifier.classify()`` of each reply of the corpus (the first
              5,000) and the command it answers, each thread with its own
              classifier (the shipped rules) and its own ``Reply`` objects,
              both made in that thread before it is timed
              (:func:`classify_runners`)
``classify-shared``  the same with one classifier shared by all threads, as
              ``fastreply.classify`` shares its default one (on a
              free-threaded build every call then counts references to the
              same objects from every thread: docs/threading.md)

The parse runners are those of ``fastreply bench`` (``fastreply._bench.engine.prepare``).
A measurement starts N threads at a barrier, lets them parse for
``--seconds`` and counts the replies each parsed in the passes it finished
(a thread's rate is its replies over the time its finished passes took).
One round measures every path with 1 thread, then with N, one after the
other, so each ratio compares two measurements a moment apart; the table
gives the median ratio over the rounds and its spread (lowest-highest).

On a free-threaded build with the GIL off, N threads on N idle cores do N
times the work at best; on a GIL build the ratio is about 1.  The numbers
depend on what else the machine runs: nothing is asserted unless
``--min-ratio`` is given.  The last column says why a ratio falls short:
replies per second of the threads' own CPU time, N threads against 1.  About
1 when each reply costs the same CPU with N threads (a low work ratio then
means the cores were busy with something else); well below 1 when the
threads slow each other down (contended locks, cache lines bouncing between
cores), whatever the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import sysconfig
import threading
import time
from typing import Any, NamedTuple

from fastreply._bench import engine
from fastreply._parser import ReplyParserC, ReplyParserPy
from fastreply._bench.corpus import WORKLOADS, generate

PATHS = {"feed": "compiled", "codes": "codes", "checked": "validated",  # path -> bench key
         "classify": None, "classify-shared": None}  # (classify_runners)
PARSERS = {"compiled": ReplyParserC, "python": ReplyParserPy}
CLASSIFY_MATCHERS = {"compiled": "fastreply._classify_c", "python": "fastreply._classify_py"}
CLASSIFY_REPLIES = 5000


def classify_runners(impl: str, exchanges: Any, threads: int, shared: bool) -> list[Any]:
    """One runner a thread for the ``classify`` paths: each classifies its own
    ``Reply`` objects (the corpus's first CLASSIFY_REPLIES replies, parsed by
    ``impl``'s parser) and the command each answers, with a classifier on
    ``impl``'s matcher: its own, or one shared by every thread (``shared``);
    a run returns the count."""
    import importlib

    from fastreply.classification import Classifier
    from fastreply.commands import Command

    matcher = importlib.import_module(CLASSIFY_MATCHERS[impl]).Matcher
    common = Classifier(matcher=matcher)
    chosen = list(exchanges)[:CLASSIFY_REPLIES]
    commands = [Command[e.command] if e.command in Command.__members__ else Command.UNKNOWN
                for e in chosen]
    wire = b"".join(e.reply for e in chosen)

    def runner() -> Any:
        # Made in the thread that runs it (measure() calls in_thread() there):
        # on a free-threaded build, objects a thread makes are its own (its
        # reference counts need no atomic operations, and no cache line is
        # shared with another thread's objects).
        def in_thread() -> Any:
            pairs = list(zip(PARSERS[impl]().feed(wire), commands))
            classify = (common if shared else Classifier(matcher=matcher)).classify

            def run() -> int:
                for reply, command in pairs:
                    classify(reply, command)
                return len(pairs)

            return run

        return in_thread

    return [_InThread(runner()) for _ in range(threads)]


class _InThread:
    """A runner whose set-up runs in the measuring thread itself."""

    def __init__(self, setup: Any) -> None:
        self.in_thread = setup


def _ready(run: Any) -> Any:
    """The runner itself, or the one an _InThread sets up in this thread."""
    return run.in_thread() if isinstance(run, _InThread) else run


class Sample(NamedTuple):
    rate: float  # replies a second, all threads together
    cpu_rate: float  # replies a second of the threads' own CPU time
    others: float | None  # cores busy with other processes meanwhile (None: unknown)


def _busy_ticks() -> int | None:
    """CPU time (clock ticks) the whole machine has spent busy, from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait
    values = [int(v) for v in fields[1:9]]
    return sum(values) - values[3] - values[4]


def measure(runs: list[Any], threads: int, seconds: float) -> Sample:
    """``threads`` threads parse together for ``seconds`` (thread i with ``runs[i]``)."""
    barrier = threading.Barrier(threads + 1)
    stop = threading.Event()
    done = [(0, 0.0, 0.0)] * threads  # (replies, wall seconds, CPU seconds)

    def worker(index: int) -> None:
        run = _ready(runs[index])
        replies = 0
        barrier.wait()
        start = end = time.perf_counter()
        cpu_start = cpu_end = time.thread_time()
        while not stop.is_set():
            replies += run()
            end = time.perf_counter()
            cpu_end = time.thread_time()
        done[index] = (replies, end - start, cpu_end - cpu_start)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    busy, ours, wall = _busy_ticks(), time.process_time(), time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in pool:
        thread.join()
    others = None
    busy_after = _busy_ticks()
    if busy is not None and busy_after is not None:
        ticks = os.sysconf("SC_CLK_TCK")
        spent = (busy_after - busy) / ticks - (time.process_time() - ours)
        others = max(0.0, spent / (time.perf_counter() - wall))
    rate = sum(replies / wall for replies, wall, _ in done if wall > 0)
    cpu = sum(c for _, _, c in done)
    return Sample(rate, sum(r for r, _, _ in done) / cpu if cpu > 0 else 0.0, others)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--impl", choices=("compiled", "python", "both"), default="compiled")
    p.add_argument("--paths", default=",".join(PATHS), help="comma-separated (default: all)")
    p.add_argument("--threads", default="1,2", help="thread counts, the first the base (1,2)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--seconds", type=float, default=1.0, help="a measurement (default 1)")
    p.add_argument("--workload", default="mix", choices=WORKLOADS)
    p.add_argument("--size", type=int, default=1_000_000, help="corpus bytes (default 1 MB)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument(
        "--max-others", type=float, default=None, metavar="CORES",
        help="leave out the rounds in which other processes kept more than this many cores busy",
    )  # fmt: skip
    p.add_argument(
        "--min-ratio", type=float, default=None,
        help="exit 1 when a median ratio (last thread count to the first) is below this",
    )  # fmt: skip
    args = p.parse_args()
    counts = [int(n) for n in args.threads.split(",")]
    paths = [name for name in args.paths.split(",") if name]
    impls = ["compiled", "python"] if args.impl == "both" else [args.impl]
    if "compiled" in impls and ReplyParserC is None:
        print("the compiled module is not in use (FASTREPLY_NO_EXTENSIONS?)", file=sys.stderr)
        return 2
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(
        f"Python {sys.version.split()[0]}{'t' if free_threaded else ''} (GIL "
        f"{'on' if gil else 'off'}), {args.workload} corpus of {args.size:,} bytes, "
        f"{args.rounds} rounds of {args.seconds:g} s a measurement, threads {counts}",
        flush=True,
    )
    corpus = generate(args.workload, size=args.size, seed=0)
    # A runner a thread: each has its own command log, as each connection
    # would (the table is shared).
    runners = {
        (impl, path): classify_runners(impl, corpus.exchanges, max(counts),
                                       shared=path == "classify-shared")
        if path.startswith("classify") else [
            engine.prepare(PATHS[path], corpus, engine.DEFAULT_CHUNK, PARSERS[impl]).run
            for _ in range(max(counts))
        ]
        for impl in impls
        for path in paths
    }
    # rounds[key]: one {threads: Sample} per round
    rounds: dict[tuple[str, str], list[dict[int, Sample]]] = {key: [] for key in runners}
    for runs in runners.values():
        _ready(runs[0])()  # warm up (and a first check that it runs)
    for round_ in range(args.rounds):
        for key, runs in runners.items():
            rounds[key].append({n: measure(runs, n, args.seconds) for n in counts})
        print(f"  round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    base = counts[0]
    header = f"{'path':15} {'impl':9}" + "".join(f"{f'{n} thr replies/s':>17}" for n in counts)
    for n in counts[1:]:
        header += f"  {f'work {n}/{base} (spread)':>22}  {f'per CPU-s {n}/{base}':>15}"
    header += "  others (cores)  rounds"
    print(header)
    results = []
    failed = False
    for key, samples in rounds.items():
        impl, path = key
        busiest = [max((s.others or 0.0) for s in by_n.values()) for by_n in samples]
        kept = [
            by_n for by_n, load in zip(samples, busiest)
            if args.max_others is None or load <= args.max_others
        ]  # fmt: skip
        entry: dict[str, Any] = {
            "path": path,
            "impl": impl,
            "rounds": [{str(n): s._asdict() for n, s in by_n.items()} for by_n in samples],
            "kept": len(kept),
        }
        results.append(entry)
        row = f"{path:15} {impl:9}"
        if not kept:
            print(f"{row}  no round with other processes below {args.max_others} cores")
            failed = failed or args.min_ratio is not None
            continue
        row += "".join(f"{statistics.median(r[n].rate for r in kept):17,.0f}" for n in counts)
        for n in counts[1:]:
            ratios = [r[n].rate / r[base].rate for r in kept if r[base].rate]
            efficiency = statistics.median(
                r[n].cpu_rate / r[base].cpu_rate for r in kept if r[base].cpu_rate
            )
            median = statistics.median(ratios)
            row += f"  {median:10.2f} ({min(ratios):.2f}-{max(ratios):.2f})  {efficiency:15.2f}"
            entry[f"ratio_{n}"] = median
            if n == counts[-1] and args.min_ratio is not None and median < args.min_ratio:
                failed = True
        load = statistics.median(busiest[samples.index(r)] for r in kept)
        row += f"  {load:14.2f}  {len(kept)}/{len(samples)}"
        print(row)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {
                    "python": sys.version,
                    "free_threaded": free_threaded,
                    "gil_enabled": gil,
                    "settings": vars(args),
                    "results": results,
                },
                out,
                indent=2,
            )
    if failed:
        print(f"a median ratio is below --min-ratio={args.min_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
