"""Instructions per classify() call, under valgrind's callgrind.

    python bench/profile_classify.py --impl compiled   # or --impl python
    python bench/profile_classify.py --impl compiled --annotate   # per function

Runs this script twice under ``valgrind --tool=callgrind``: once classifying
the replies of ``fastreply bench --classify`` (realistic, unique ids) ``base``
times, once ``base + extra`` times; the difference divided by the extra calls
is the cost of one call, set-up and interpreter start-up cancelled out.
Repeatable where wall-clock timing on a shared machine is not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def run(impl: str, calls: int) -> int:
    from fastreply import ReplyParser
    from fastreply._bench import classify as classify_bench
    from fastreply.classification import Classifier

    if impl == "compiled":
        from fastreply import _classify_c as module
    else:
        from fastreply import _classify_py as module
    # The matcher's own classify(reply, command, provider): what fastreply.classify runs.
    classify = Classifier(matcher=module.Matcher)._matcher.classify
    stream, commands = classify_bench.make_replies(2000, seed=0)
    pairs = list(zip(ReplyParser().feed(stream), commands))
    done = 0
    while done < calls:
        for reply, command in pairs[: calls - done]:
            classify(reply, command, None)
        done += min(len(pairs), calls - done)
    return done


def instructions(path: str) -> int:
    with open(path) as handle:
        for line in handle:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--impl", choices=["compiled", "python"], default="compiled")
    p.add_argument("--base", type=int, default=2000)
    p.add_argument("--extra", type=int, default=8000)
    p.add_argument("--annotate", action="store_true", help="also print the costliest functions")
    p.add_argument("--run", type=int, help=argparse.SUPPRESS)  # the measured child
    args = p.parse_args()
    if args.run is not None:
        run(args.impl, args.run)
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is needed")
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for calls in (args.base, args.base + args.extra):
            out = os.path.join(tmp, f"cg.{calls}")
            subprocess.run([valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
                            sys.executable, __file__, "--impl", args.impl, "--run", str(calls)],
                           check=True, capture_output=True)
            counts.append(instructions(out))
        per_call = (counts[1] - counts[0]) / args.extra
        print(f"{args.impl}: {per_call:.0f} instructions per classify() "
              f"({args.extra} extra calls, realistic replies with unique ids)")
        annotate = shutil.which("callgrind_annotate")
        if args.annotate and annotate:
            text = subprocess.run([annotate, out], capture_output=True, text=True).stdout
            print("\n".join(line for line in text.splitlines()[:60]
                            if re.search(r"\d", line)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
