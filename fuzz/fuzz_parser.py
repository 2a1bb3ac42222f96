"""Fuzz the compiled reply parser against the pure-Python reference (atheris).

Three targets, each a harness module with ``check(data)`` and its own seeds
(``--target NAME`` first on the command line; default ``parser``):

* ``parser`` (``harness.py``, ``fuzz/corpus``): reply streams in any chunks;
* ``checked`` (``harness_checked.py``, ``fuzz/corpus-checked``):
  ``feed_checked()`` with command logs of every kind, lying ones included;
* ``aio`` (``harness_aio.py``, ``fuzz/corpus-aio``): ``fastreply.aio`` with
  callers that come, go and are cancelled at random;
* ``classify`` (``harness_classify.py``, ``fuzz/corpus-classify``): the
  compiled classifier matcher against the pure-Python one, any reply,
  command and provider argument, the shipped rules;
* ``classify-rules`` (``harness_classify_rules.py``,
  ``fuzz/corpus-classify-rules``): the same with random user rules and
  providers, compiled through ``Classifier(...)`` and ``extend()``.

Fuzzing (libFuzzer options pass through; ``ci/fuzz.sh`` sets them)::

    python fuzz/fuzz_parser.py -runs=200000 -dict=fuzz/smtp.dict WORKDIR fuzz/corpus

Every input is decoded into a case (options, chunking, stream: see
``harness.py``) and run on both implementations; any difference, any
exception that is not a ``ReplyError``, or a broken invariant is reported as
a crash, and libFuzzer writes the input to ``-artifact_prefix``.

Coverage: the reference parser (pure Python) is instrumented by atheris, so
libFuzzer is guided by the branches of the wire rules.  The compiled module
is not instrumented (that would need a clang build with
``-fsanitize=fuzzer-no-link`` and a libFuzzer-linked sanitizer runtime, which
the atheris wheel does not ship): its own paths are reached through the
random chunking and buffer types that the header of every input chooses.

Replaying stored inputs needs no atheris (the sanitizer build uses this)::

    python fuzz/fuzz_parser.py --replay fuzz/corpus [more files or folders]

Random mutations of the corpus without libFuzzer (for builds atheris cannot
drive, such as the ASan one, and as ``ci/fuzz.sh``'s fallback where atheris
cannot be installed; deterministic for a given seed)::

    python fuzz/fuzz_parser.py --random 20000 [--seconds 60] [--seed N] fuzz/corpus [more folders]

Minimising a failing input (greedy: drop stream bytes, simplify the header,
keep whatever still fails), then printing the case it decodes to::

    python fuzz/fuzz_parser.py --minimize build/fuzz/artifacts/crash-... build/fuzz/min
"""

from __future__ import annotations

import importlib
import os
import random
import sys
import time
import traceback
from types import ModuleType

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

#: Target name -> (harness module, seed folder).
TARGETS = {
    "parser": ("harness", "corpus"),
    "checked": ("harness_checked", "corpus-checked"),
    "aio": ("harness_aio", "corpus-aio"),
    "classify": ("harness_classify", "corpus-classify"),
    "classify-rules": ("harness_classify_rules", "corpus-classify-rules"),
}
harness: ModuleType  # the target's harness, set by main()


def _select(name: str) -> None:
    global harness
    harness = importlib.import_module(TARGETS[name][0])


def replay(paths: list[str]) -> int:
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(
                os.path.join(path, name)
                for name in os.listdir(path)
                if os.path.isfile(os.path.join(path, name)) and not name.startswith(".")
            )
        else:
            files.append(path)
    modules = harness._modules()
    failed = 0
    start = time.perf_counter()
    for name in files:
        with open(name, "rb") as handle:
            data = handle.read()
        try:
            harness.check(data, modules)
        except Exception:  # noqa: BLE001 - report every failing input, then fail
            failed += 1
            print(f"FAILED: {name}", file=sys.stderr)
            traceback.print_exc()
    elapsed = time.perf_counter() - start
    print(f"replay: {len(files)} inputs, {failed} failed ({elapsed:.1f}s)")
    return 1 if failed or not files else 0


TOKENS = [b"250", b"250-", b"250 ", b"\r\n", b"\n", b"\r", b"-", b" ", b"\x00", b"\xff",
          b"220 ", b"550 5.1.1 ", b"599", b"199", b"600", b"099", b"/", b":", b".", b"*",
          b"\x1a", b"\x1f"]


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """One to four random edits of ``data`` (header included; the target's
    own ``HEADER`` size and ``MUTATION_TOKENS`` when it has them)."""
    tokens = getattr(harness, "MUTATION_TOKENS", TOKENS)
    head = getattr(harness, "HEADER", 6)
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        action = rng.randrange(7)
        i = rng.randrange(len(out) + 1)
        if action == 0 and out:  # flip a byte
            out[min(i, len(out) - 1)] = rng.randrange(256)
        elif action == 1:  # insert a token
            out[i:i] = rng.choice(tokens)
        elif action == 2 and out:  # delete a run
            del out[i : i + rng.randint(1, 16)]
        elif action == 3:  # repeat a run
            run = out[i : i + rng.randint(1, 32)]
            out[i:i] = run * rng.randint(1, 64)
        elif action == 4 and pool:  # splice another input's stream in
            other = rng.choice(pool)[head:]
            j = rng.randrange(len(other) + 1)
            out[i:i] = other[j : j + rng.randint(1, 200)]
        elif action == 5:  # a new header
            out[:head] = bytes(rng.randrange(256) for _ in range(head))
        else:  # insert random bytes
            out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(out[:4096])


def random_inputs(count: int, paths: list[str], seed: int = 0, seconds: float = 0.0,
                  artifacts: str | None = None, keep_going: bool = False) -> int:
    """``count`` random mutations of the inputs in ``paths`` through the check
    (at most ``seconds`` when > 0).  A failing input is written to
    ``artifacts`` (default build/fuzz/artifacts) and ends the run, or, with
    ``keep_going`` (the sanitizer and valgrind runs, whose verdict is about
    memory and needs every input run), is counted and the run goes on; the
    exit status is 1 if any failed."""
    pool = []
    for path in paths:
        for name in sorted(os.listdir(path)):
            if name.startswith("."):
                continue
            with open(os.path.join(path, name), "rb") as handle:
                pool.append(handle.read())
    if not pool:
        print("no inputs to mutate", file=sys.stderr)
        return 2
    modules = harness._modules()
    rng = random.Random(seed)
    start = time.perf_counter()
    deadline = start + seconds if seconds > 0 else float("inf")
    done = failed = 0
    folder = artifacts or os.path.join(HERE, os.pardir, "build", "fuzz", "artifacts")
    for index in range(count):
        if index % 256 == 0 and time.perf_counter() > deadline:
            break
        data = mutate(rng, rng.choice(pool), pool)
        done += 1
        try:
            harness.check(data, modules)
        except Exception as exc:  # noqa: BLE001
            failed += 1
            os.makedirs(folder, exist_ok=True)
            name = os.path.join(folder, f"random-{seed}-{index}")
            if failed <= 20:
                with open(name, "wb") as handle:
                    handle.write(data)
            if failed == 1 or not keep_going:
                traceback.print_exc()
            if failed <= 20:
                print(f"random: input {index} (seed {seed}) failed ({type(exc).__name__}), "
                      f"written to {name}; replay: python fuzz/fuzz_parser.py --replay {name}",
                      file=sys.stderr)
            if not keep_going:
                return 1
    elapsed = time.perf_counter() - start
    print(f"random: {done} mutated inputs (seed {seed}, {len(pool)} to mutate), {failed} failed "
          f"({elapsed:.1f}s, {done / elapsed if elapsed else 0:.0f}/s)")
    return 1 if failed else 0


def minimize(source: str, target: str, budget: int = 20000) -> int:
    modules = harness._modules()
    with open(source, "rb") as handle:
        data = handle.read()

    def fails(candidate: bytes) -> bool:
        try:
            harness.check(candidate, modules)
        except Exception:  # noqa: BLE001
            return True
        return False

    if not fails(data):
        print(f"{source} does not fail: nothing to minimise", file=sys.stderr)
        return 1
    tries = 0
    head, body = bytearray(data[: harness.HEADER].ljust(harness.HEADER, b"\0")), data[harness.HEADER :]
    changed = True
    while changed and tries < budget:
        changed = False
        # Simpler header first: default chunking, then each flag cleared.
        # (Each change only ever simplifies, so the loop ends.)  Only the
        # parser target's header is known here; the others shrink their body.
        simpler: list[tuple[int, int]] = []
        if harness.__name__ == "harness":
            simpler = [(4, 0), (4, 1)] if head[4] > 1 else ([(4, 0)] if head[4] == 1 else [])
            simpler += [(5, 0)] if head[4] > 1 and head[5] else []
            simpler += [(0, -(1 << b)) for b in range(7) if head[0] & (1 << b)]
        for index, value in simpler:
            if value < 0:  # clear one flag of the current header
                value = head[0] & ~-value
            if head[index] != value:
                trial = bytearray(head)
                trial[index] = value
                tries += 1
                if fails(bytes(trial) + body):
                    head, changed = trial, True
        size = max(1, len(body) // 2)
        while size >= 1 and tries < budget:
            i = 0
            while i < len(body) and tries < budget:
                trial_body = body[:i] + body[i + size :]
                tries += 1
                if fails(bytes(head) + trial_body):
                    body, changed = trial_body, True
                else:
                    i += size
            size //= 2
    result = bytes(head) + body
    with open(target, "wb") as out:
        out.write(result)
    print(f"minimised {len(data)} -> {len(result)} bytes in {tries} tries: {target}")
    if harness.__name__ == "harness":
        case = harness.decode(result)
        print(f"options={case.options} codes_only={case.codes_only} "
              f"chunk_type={case.chunk_type} close={case.close} reset_again={case.reset_again}")
        print(f"chunks={case.chunks!r}")
    elif hasattr(harness, "decode"):
        print(f"case={harness.decode(result)!r}")
    try:
        harness.check(result, modules)
    except Exception as exc:  # noqa: BLE001
        print(f"fails with: {type(exc).__name__}: {exc}")
    return 0


def fuzz(argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["fastreply"]):
        import fastreply._parser  # noqa: F401
        import fastreply._parser_py  # noqa: F401
        import fastreply.aio  # noqa: F401
        import fastreply.classification  # noqa: F401
        import fastreply.errors  # noqa: F401
        import fastreply.tables  # noqa: F401

    modules = harness._modules()
    assert modules[1].__name__ in ("fastreply._parser_c", "fastreply._classify_c"), modules
    print(f"fuzzing {modules[1].__file__} against {modules[0].__file__}", file=sys.stderr)

    def test_one_input(data: bytes) -> None:
        harness.check(data, modules)

    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def main() -> int:
    name = "parser"
    if len(sys.argv) > 2 and sys.argv[1] == "--target":
        name = sys.argv[2]
        if name not in TARGETS:
            print(f"unknown target {name!r} (known: {', '.join(TARGETS)})", file=sys.stderr)
            return 2
        del sys.argv[1:3]
    _select(name)
    if len(sys.argv) > 1 and sys.argv[1] == "--replay":
        if len(sys.argv) < 3:
            print("usage: fuzz_parser.py --replay FILE_OR_DIR...", file=sys.stderr)
            return 2
        return replay(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "--random":
        import argparse

        parser = argparse.ArgumentParser(prog="fuzz_parser.py --random")
        parser.add_argument("count", type=int)
        parser.add_argument("corpus", nargs="+")
        parser.add_argument("--seconds", type=float, default=0.0,
                            help="stop after this long even if COUNT is not reached")
        parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "0")))
        parser.add_argument("--artifacts", help="where a failing input is written")
        parser.add_argument("--keep-going", action="store_true",
                            help="count failing inputs and go on (exit 1 at the end)")
        args = parser.parse_args(sys.argv[2:])
        return random_inputs(args.count, args.corpus, args.seed, args.seconds, args.artifacts,
                             args.keep_going)
    if len(sys.argv) > 1 and sys.argv[1] == "--minimize":
        if len(sys.argv) != 4:
            print("usage: fuzz_parser.py --minimize CRASH_FILE OUTPUT_FILE", file=sys.stderr)
            return 2
        return minimize(sys.argv[2], sys.argv[3])
    fuzz(sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
