"""Where the time goes: profiles of one implementation on one workload.

    python bench/profile_parsers.py --impl compiled --callgrind   # instructions per reply
    python bench/profile_parsers.py --impl fallback --cprofile    # Python functions

``--callgrind`` runs this script twice under ``valgrind --tool=callgrind``
(``passes`` and ``passes + extra`` parsing passes over the same corpus) and
divides the difference of the instruction counts by the replies parsed in the
extra passes: instructions per reply, everything included (the feed call,
Reply objects, the list, freeing them, the interpreter's loop), nothing of
the set-up.  Then it lists the functions with the most inclusive cost in
the longer run.  Instruction counts do not depend on the machine's load.

``--cprofile`` runs the passes under cProfile and prints the functions with
the most own time, per reply.

The runners are those of ``fastreply bench`` (``fastreply._bench.engine.prepare``).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile

from fastreply._bench import engine
from fastreply._bench.corpus import WORKLOADS, generate


#: What the breakdown counts, per implementation: the parser's feed methods.
TOGGLES = {
    "compiled": "__pyx_pw_*ReplyParser*feed",
    "codes": "__pyx_pw_*ReplyParser*feed_codes",
    "validated": "__pyx_pw_*ReplyParser*feed",
}


def run_passes(impl: str, workload: str, size: int, passes: int, chunk: int) -> int:
    corpus = generate(workload, size=size, seed=0)
    prepared = engine.prepare(impl, corpus, chunk)
    replies = 0
    for _ in range(passes):
        replies += prepared.run()
    return replies


def callgrind(args: argparse.Namespace) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    counts = []
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same instructions every run
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            tmp = args.keep
        outs = []
        for passes in (args.passes, args.passes + args.extra):
            out = os.path.join(tmp, f"callgrind.{passes}")
            outs.append(out)
            cmd = [
                valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, __file__, "--impl", args.impl, "--workload", args.workload,
                "--size", str(args.size), "--passes", str(passes), "--chunk", str(args.chunk),
            ]  # fmt: skip
            print("running:", " ".join(cmd), file=sys.stderr)
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            match = re.search(r"Collected : (\d+)", done.stderr)
            assert match, done.stderr
            counts.append(int(match.group(1)))
        corpus = generate(args.workload, size=args.size, seed=0)
        replies = len(corpus.exchanges) * args.extra
        per_reply = (counts[1] - counts[0]) / replies
        per_byte = (counts[1] - counts[0]) / (len(corpus.data) * args.extra)
        print(
            f"{args.impl} on {args.workload}: {per_reply:,.0f} instructions a reply, "
            f"{per_byte:.1f} a byte ({replies:,} replies in {args.extra} extra passes; "
            f"{corpus.stats().mean_lines:.2f} lines, {corpus.stats().mean_bytes:.0f} bytes a reply)"
        )
        toggle = args.toggle or TOGGLES.get(args.impl)
        annotate = shutil.which("callgrind_annotate")
        if toggle and annotate:
            # The breakdown: only what runs inside the feed call.
            out = os.path.join(tmp, "callgrind.inside")
            passes = args.passes + args.extra
            cmd = [
                valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
                "--collect-atstart=no", f"--toggle-collect={toggle}",
                sys.executable, __file__, "--impl", args.impl, "--workload", args.workload,
                "--size", str(args.size), "--passes", str(passes), "--chunk", str(args.chunk),
            ]  # fmt: skip
            print("running:", " ".join(cmd), file=sys.stderr)
            subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            replies = len(corpus.exchanges) * passes
            for inclusive in ("no", "yes"):
                done = subprocess.run(
                    [annotate, "--auto=no", f"--inclusive={inclusive}",
                     f"--threshold={args.threshold}", out],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                kind = "inclusive" if inclusive == "yes" else "own (exclusive)"
                print(f"\n{kind} instructions inside {toggle}, per reply:")
                print(_per_reply_table(done.stdout, replies))
    return 0


def _per_reply_table(text: str, replies: int) -> str:
    """callgrind_annotate's function lines, with instructions per reply added."""
    out = []
    for line in text.splitlines():
        match = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S.*)", line)
        if not match:
            continue
        count = int(match.group(1).replace(",", ""))
        name = match.group(3)
        name = re.sub(r" \[/.*\]$", "", name)
        if float(match.group(2)) >= 99.95 and out:
            continue  # the callers around the counted region
        name = re.sub(r"^.*/Python-[\d.]+/", "", name)
        out.append(f"{count / replies:10.1f} /reply {match.group(2):>6}%  {name[:110]}")
    return "\n".join(out[:30])


def profile(args: argparse.Namespace) -> int:
    corpus = generate(args.workload, size=args.size, seed=0)
    prepared = engine.prepare(args.impl, corpus, args.chunk)
    prepared.run()  # warm up
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.passes):
        prepared.run()
    profiler.disable()
    replies = len(corpus.exchanges) * args.passes
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(
        f"{args.impl} on {args.workload}: {total / replies * 1e9:,.0f} ns a reply under "
        f"cProfile ({replies:,} replies; the profiler's own overhead included)"
    )
    rows = []
    for (filename, line, name), (cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, f"{os.path.basename(filename)}:{line}({name})"))
    rows.sort(reverse=True)
    print(f"{'own ns/reply':>12} {'incl ns/reply':>13} {'calls/reply':>11}  function")
    for tt, ct, nc, where in rows[:25]:
        print(
            f"{tt / replies * 1e9:12.1f} {ct / replies * 1e9:13.1f} {nc / replies:11.3f}  {where}"
        )
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--impl", default="compiled", choices=engine.IMPLEMENTATIONS)
    p.add_argument("--workload", default="mix", choices=WORKLOADS)
    p.add_argument("--size", type=int, default=300_000, help="corpus bytes (default 300000)")
    p.add_argument("--chunk", type=int, default=engine.DEFAULT_CHUNK)
    p.add_argument("--passes", type=int, default=1, help="passes (the base run's, for callgrind)")
    p.add_argument("--extra", type=int, default=4, help="callgrind: passes added in the second run")
    p.add_argument(
        "--threshold", type=float, default=99, help="callgrind_annotate: cover this %% of the cost"
    )
    p.add_argument("--keep", metavar="DIR", help="callgrind: keep the output files in DIR")
    p.add_argument("--toggle", help="callgrind: count only inside this function (glob)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--callgrind", action="store_true", help="instructions per reply")
    mode.add_argument("--cprofile", action="store_true", help="cProfile, per reply")
    args = p.parse_args()
    if args.callgrind:
        return callgrind(args)
    if args.cprofile:
        return profile(args)
    print(run_passes(args.impl, args.workload, args.size, args.passes, args.chunk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
