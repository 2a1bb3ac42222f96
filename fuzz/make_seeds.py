"""Write the seed corpora ``fuzz/corpus/`` (the parser target),
``fuzz/corpus-checked/`` and ``fuzz/corpus-aio/`` (deterministic; re-run after
changing any of them).

    python fuzz/make_seeds.py [--check]

Each seed is an input in the format of ``harness.py`` (a header with the
options and chunking, then a reply stream): the wire rules of DESIGN.md,
valid and invalid, at and around the limits, in several chunkings and
buffer types, plus a slice of the generated ``mix`` workload and the sample
session.  ``--check`` fails if the folder is not what this script writes.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness_aio  # noqa: E402
import harness_checked  # noqa: E402
from harness import encode  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")

STREAMS: list[tuple[str, bytes]] = [
    ("crlf", b"250 OK\r\n"),
    ("bare-lf", b"250 OK\n"),
    ("bare-code", b"250\r\n250 \r\n250\n"),
    ("multiline", b"250-a\r\n250 b\r\n"),
    ("mixed-ends", b"250-a\n250-b\r\n250 c\n"),
    ("lone-cr", b"250 a\rb\r\n250 a\r\r\n"),
    ("codes-differ", b"250-a\r\n251-b\r\n252 c\r\n"),
    ("ranges", b"199 x\r\n599 x\r\n200 a\r\n559 b\r\n269 a\r\n"),
    ("zero-and-8bit", b"250 \x00\xff\xe9t\xe9\r\n250-\x00\x00\r\n250 \x80\r\n"),
    ("letters", b"220 hi\r\n25x ok\r\n"),
    ("no-sep", b"250ok\r\n"),
    ("short", b"25\r\n"),
    ("lead-space", b" 250 ok\r\n"),
    ("empty-line", b"250 a\r\n\r\n"),
    ("empty-lf", b"250 a\r\n\n"),
    ("tab-sep", b"250\tok\r\n"),
    ("digit0", b"050 x\r\n"),
    ("digit6", b"650 x\r\n"),
    ("strict-260", b"260 x\r\n"),
    ("mid-reply-error", b"220 hi\r\n250-a\r\n25 b\r\n"),
    ("incomplete-line", b"220 hi\r\n250 o"),
    ("incomplete-reply", b"250-a\r\n"),
    ("http", b"220 mx ready\r\n250 OK\r\nHTTP/1.1 400 Bad Request\r\n"),
    ("ehlo", b"220 mx.example.org ESMTP\r\n250-mx.example.org\r\n250-PIPELINING\r\n"
             b"250-SIZE 10240000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"),
    ("enhanced", b"550 5.1.1 <a@b>: Recipient address rejected\r\n452 4.3.1 full\r\n"),
    ("long-line", b"250 " + b"x" * 100 + b"\r\n" + b"250-" + b"y" * 300 + b"\r\n250 z\r\n"),
    ("endless-line", b"250 " + b"x" * 1100),
    ("zero-run", b"\x00" * 300),
    ("8bit-run", bytes(range(128, 256)) * 3),
    ("continuations", b"250-ab\r\n" * 40 + b"250 end\r\n"),
    ("cr-only", b"250 a\r250 b\r"),
    # bytes next to the digits in the code's places (5bb617c took 0x1a-0x1f and
    # 0x2a-0x2f for digits in the 2nd and 3rd place: tests/test_regressions.py)
    ("code-punct", b"250 ok\r\n1.1 \n"),
    ("code-punct-cont", b"250-a\r\n2.0 b\r\n"),
    ("code-ctl", b"220 ok\r\n1\x1a* x\r\n25\x1f x\r\n"),
    ("code-colon", b"2:0 a\r\n25? b\r\n/50 c\r\n"),
]

# (suffix, encode() options)
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("", {}),
    ("-strict", {"strict": True}),
    ("-bytes1", {"chunking": 1}),
    ("-split", {"chunking": 7, "spread": 5, "chunk_type": 1}),
    ("-codes", {"codes_only": True, "chunking": 9, "spread": 3, "chunk_type": 2}),
    ("-small", {"max_line_length": 12, "max_reply_lines": 2, "chunking": 3, "spread": 2}),
    ("-strided", {"max_line_length": 64, "max_reply_lines": 4, "chunking": 5, "spread": 11,
                  "chunk_type": 3, "reset_again": True}),
    ("-noclose", {"strict": True, "close": False, "max_line_length": 9, "max_reply_lines": 1}),
]


def line_of(length: int, sep: bytes = b" ", end: bytes = b"\r\n") -> bytes:
    return b"250" + sep + b"x" * (length - 3 - len(sep) - len(end)) + end


def seeds() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, stream in STREAMS:
        for suffix, options in VARIANTS:
            out[name + suffix] = encode(stream, **options)
    # Exactly at the limits and one past them.
    for limit in (4, 5, 6, 7, 8, 63, 64, 65, 80, 81, 82, 1024):
        for end in (b"\r\n", b"\n"):
            tag = "crlf" if end == b"\r\n" else "lf"
            if limit >= 4 + len(end):
                out[f"line-at-{limit}-{tag}"] = encode(
                    line_of(limit, end=end), max_line_length=limit, max_reply_lines=1,
                    chunking=2, spread=limit % 13)
            if limit > 4 + len(end):
                out[f"line-past-{limit - 1}-{tag}"] = encode(
                    b"220 hi\r\n" + line_of(limit, end=end), max_line_length=limit - 1,
                    max_reply_lines=3, chunking=4, spread=limit % 7)
    for lines in (1, 2, 3, 32):
        body = b"250-x\r\n" * (lines - 1) + b"250 y\r\n"
        out[f"lines-at-{lines}"] = encode(body, max_line_length=16, max_reply_lines=lines)
        out[f"lines-past-{lines}"] = encode(
            b"250-x\r\n" + body, max_line_length=16, max_reply_lines=lines, chunking=1)
    # Realistic traffic: the sample session and a slice of the mix workload.
    sample = os.path.join(HERE, "..", "src", "fastreply", "data", "sample_session.txt")
    if os.path.exists(sample):
        with open(sample, "rb") as handle:
            data = handle.read()[:3000]
        out["sample-session"] = encode(data)
        out["sample-session-split"] = encode(data, chunking=11, spread=40, chunk_type=2)
    try:
        from fastreply._bench.corpus import generate
    except ImportError:
        pass
    else:
        data = generate("mix", size=2000, seed=7).data
        out["mix"] = encode(data)
        out["mix-split"] = encode(data, chunking=13, spread=20, codes_only=True)
        out["mix-strict-small"] = encode(data, strict=True, max_line_length=100,
                                         max_reply_lines=12, chunking=17, spread=60)
    return out


def checked_seeds() -> dict[str, bytes]:
    """feed_checked(): every kind of log, honest and lying, in a few shapes."""
    log = [1, 2, 4, 5, 5, 6, 7, 15, 4, 5, 6, 7, 21, 21, 21, 4]
    stream = bytes([3, 3, 4, 4, 20, 7, 4, 1, 2, 3, 4, 5, 6, 6, 9, 6, 3, 1, 0])
    out: dict[str, bytes] = {}
    for kind, _, _ in harness_checked.KINDS:
        out[f"{kind}"] = harness_checked.encode(stream, log, kind=kind, raw=False)
        out[f"{kind}-split"] = harness_checked.encode(
            stream, log[:9], kind=kind, raw=False, chunking=5, spread=9, start=2)
        out[f"{kind}-bad"] = harness_checked.encode(
            stream, log[:5] + [27, True] + log[5:], kind=kind, raw=False, chunking=1)
    raw = b"220 hi\r\n250-a\r\n250 b\r\n354 go\r\nxyz\r\n250 c\r\n"
    out["raw-malformed"] = harness_checked.encode(raw, log, raw=True, chunking=3, spread=4)
    out["py-table"] = harness_checked.encode(stream, log, raw=False, py_table=True)
    out["big-table"] = harness_checked.encode(stream, log, kind="list", raw=False,
                                              big_table=True, chunking=7, spread=3)
    out["fixed-start"] = harness_checked.encode(stream, log, kind="deque", raw=False,
                                                fixed_start=True, start=3, chunking=9, spread=2)
    out["strict"] = harness_checked.encode(b"250-a\r\n251 b\r\n", log, strict=True)
    return out


def aio_seeds() -> dict[str, bytes]:
    """aio: waiters, batches, cancellations, errors and endings."""
    out: dict[str, bytes] = {}
    feed, wait, cancel, run, four, five, end, seven = range(8)

    def ops(*pairs: tuple[int, int]) -> bytes:
        return bytes(op | (arg << 3) for op, arg in pairs)

    script = ops((wait, 0), (wait, 0), (wait, 0), (run, 0), (feed, 20), (cancel, 1), (run, 1),
                 (four, 2), (feed, 31), (run, 3), (seven, 0), (cancel, 0), (feed, 9),
                 (five, 0), (run, 2), (wait, 0), (end, 0), (run, 3))
    for reader in (False, True):
        tag = "reader" if reader else "queue"
        out[f"{tag}"] = harness_aio.encode(script, reader=reader, seed=1)
        out[f"{tag}-bad"] = harness_aio.encode(script, reader=reader, bad_after=3, seed=2)
        out[f"{tag}-strict"] = harness_aio.encode(script[::-1], reader=reader, strict=True,
                                                  seed=3)
        out[f"{tag}-lost"] = harness_aio.encode(
            ops(*[(wait, 0)] * 6, (run, 0), (feed, 3), (end, 1), (run, 3)), reader=reader,
            seed=4)
        out[f"{tag}-many-cancelled"] = harness_aio.encode(
            ops(*[(wait, 0)] * 30, (run, 0), *[(cancel, k) for k in range(0, 30, 3)],
                (feed, 31), (feed, 31), (run, 3), (seven, 3), (four, 3), (run, 3)),
            reader=reader, seed=5)
    return out


def _write(folder: str, seeds_: dict[str, bytes], check: bool) -> int:
    want = {}
    for name, data in seeds_.items():
        digest = hashlib.sha1(data).hexdigest()[:8]
        want[f"{name}-{digest}"] = data
    label = os.path.relpath(folder, os.path.join(HERE, os.pardir))
    if check:
        have = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        missing = sorted(set(want) - have)
        if missing:
            print(f"{label} is out of date: {len(missing)} seeds missing, e.g. {missing[:3]}")
            return 1
        print(f"{label}: {len(want)} seeds present")
        return 0
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    for name, data in want.items():
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(data)
    print(f"wrote {len(want)} seeds to {label}")
    return 0


def main() -> int:
    check = "--check" in sys.argv
    status = _write(CORPUS, seeds(), check)
    status |= _write(os.path.join(HERE, "corpus-checked"), checked_seeds(), check)
    status |= _write(os.path.join(HERE, "corpus-aio"), aio_seeds(), check)
    return status


if __name__ == "__main__":
    sys.exit(main())
