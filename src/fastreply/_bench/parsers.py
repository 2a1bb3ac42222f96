"""The parser benchmark, ``fastreply bench``: fastreply against what MTAs use today.

Every implementation parses the same generated reply stream
(:mod:`fastreply._bench.corpus`) and must return the same reply codes:

``compiled``    fastreply's Cython parser, ``ReplyParser.feed()`` on socket-sized reads
``fallback``    fastreply's pure-Python parser, the same way
``codes``       ``ReplyParser.feed_codes()``: codes only, no ``Reply`` objects
``validated``   ``feed_checked()``: every reply checked against ``fastreply.tables.MODERN``
                for the command it answers
``dropin``      ``fastreply.smtplib.SMTP.getreply()``
``smtplib``     the standard library's ``smtplib.SMTP.getreply()``, reading the stream
                from the buffered file it reads a socket through: the baseline
``aiosmtplib``  aiosmtplib's own reply parsing (``SMTPProtocol``'s buffer reader), fed
                the same reads (optional: skipped with a note when not installed)

Every implementation reads the stream from an in-memory file, as from a
socket (the runners are :mod:`fastreply._bench.engine`'s, which the
pytest-benchmark suite in ``bench/`` times too).

The corpus should be large (the default is 2 MB): a small one replayed over and
over lets the CPU's branch predictor learn it, which flatters the compiled
parser (up to 2x on ``ehlo`` at 100 kB).

Timing (:func:`fastreply._bench.engine.time_rounds`): after a check pass
(same codes as the corpus, same count), each implementation runs enough passes
to last ``min_time`` per measurement; a round measures every implementation
once, in an order that rotates from round to round, so a noisy machine slows
all of them alike.  Reported: the median
time of a pass (as replies/s, MB/s, ns per reply) and the median over the
rounds of each round's ratio to smtplib.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from typing import Any, Sequence

from .. import __version__
from .._parser import IMPLEMENTATION, ReplyParserC, ReplyParserPy
from .corpus import DEFAULT_SEED, WORKLOADS, Corpus, generate
from .engine import (
    BASELINE,
    DEFAULT_CHUNK,
    IMPLEMENTATIONS,
    PER_REPLY,
    BenchError,
    Candidate,
    Prepared,
    Progress,
    Runner,
    candidates,
    check,
    feeder,
    median,
    time_rounds,
)

__all__ = [
    "DEFAULT_ROUNDS",
    "measure_workload",
    "measure_feeding",
    "run_bench",
    "format_table",
    "write_plot",
    "add_arguments",
    "run_cli",
]

DEFAULT_ROUNDS = 7
DEFAULT_SIZE_MB = 2.0
DEFAULT_MIN_TIME = 0.05
DEFAULT_FEEDING_SIZE = 256 * 1024


def measure_workload(
    corpus: Corpus,
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
    for cand in chosen:
        assert cand.prepare is not None
        progress.update(f"bench {corpus.workload}: checking {cand.key}")
        prepared[cand.key] = cand.prepare(corpus, chunk_size)
        check(cand.key, prepared[cand.key], corpus)
    seconds, loops = time_rounds(
        {key: (prep.run, count) for key, prep in prepared.items()},
        rounds=rounds,
        min_time=min_time,
        progress=progress,
        prefix=f"bench {corpus.workload}: ",
    )
    stats = corpus.stats()
    results: dict[str, Any] = {}
    base = seconds[BASELINE]
    for cand in chosen:
        times = seconds[cand.key]
        per_pass = median(times)
        ratios = [b / t for b, t in zip(base, times)]
        entry: dict[str, Any] = {
            "label": cand.label,
            "replies_per_s": count / per_pass,
            "mb_per_s": stats.bytes / per_pass / 1e6,
            "ns_per_reply": per_pass / count * 1e9,
            "ratio_to_smtplib": median(ratios),
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
            entry["time_vs_compiled"] = median([t / c for t, c in zip(times, seconds["compiled"])])
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


def measure_feeding(
    size: int, seed: int, rounds: int, min_time: float, progress: Progress
) -> dict[str, Any]:
    """Cost per byte of feeding the ``mix`` stream in one chunk and one byte at a
    time (at ``size`` and a quarter of it: the same per-byte cost means linear)."""
    parsers = [("fallback", ReplyParserPy)]
    if ReplyParserC is not None:
        parsers.insert(0, ("compiled", ReplyParserC))
    full = generate("mix", size=size, seed=seed)
    quarter = generate("mix", size=max(1, size // 4), seed=seed)
    cases: dict[tuple[str, str], tuple[Runner, int]] = {}
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
            run = feeder(cls, pieces)
            if run() != expected:
                raise BenchError(f"{name} lost replies when fed {label}")
            cases[(name, label)] = (run, expected)
    seconds = time_rounds(cases, rounds=rounds, min_time=min_time, progress=progress,
                          prefix="bench feeding: ", label=" ".join).seconds
    out: dict[str, Any] = {"size": len(full.data), "quarter_size": len(quarter.data), "results": {}}
    for name, _cls in parsers:
        ns = {}
        for label in ("one_chunk", "bytewise", "bytewise_quarter"):
            nbytes = len(full.data) if label != "bytewise_quarter" else len(quarter.data)
            ns[label] = median(seconds[(name, label)]) / nbytes * 1e9
        out["results"][name] = {
            "one_chunk_ns_per_byte": ns["one_chunk"],
            "bytewise_ns_per_byte": ns["bytewise"],
            "bytewise_quarter_ns_per_byte": ns["bytewise_quarter"],
            "bytewise_over_one_chunk": ns["bytewise"] / ns["one_chunk"],
            "bytewise_full_over_quarter": ns["bytewise"] / ns["bytewise_quarter"],
        }
    return out


def run_bench(
    workloads: Sequence[str] = WORKLOADS,
    *,
    size: int = int(DEFAULT_SIZE_MB * 1_000_000),
    rounds: int = DEFAULT_ROUNDS,
    chunk_size: int = DEFAULT_CHUNK,
    seed: int = DEFAULT_SEED,
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
        corpus = generate(name, size=size, seed=seed)
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
        choices=list(WORKLOADS) + ["all"],
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
        "--seed", type=int, default=DEFAULT_SEED, help="corpus seed (default: 0)"
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
    workloads = list(WORKLOADS) if args.workload == "all" else [args.workload]
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
    """``--classify``: classification cost against getreply() (``classify``)."""
    from . import classify as classify_bench

    section = classify_bench.measure_classification(
        rounds=args.rounds, min_time=args.min_time, seed=args.seed,
        progress=Progress(stderr, quiet=args.quiet))
    report = {"fastreply": __version__, "python": platform.python_version(),
              "platform": platform.platform(), "classification": section}
    text = classify_bench.format_classification(section)
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
