"""Write the seed corpora ``fuzz/corpus/`` (the parser target),
``fuzz/corpus-checked/``, ``fuzz/corpus-aio/``, ``fuzz/corpus-classify/`` and
``fuzz/corpus-classify-rules/``, and the classifier targets' libFuzzer
dictionary ``fuzz/classify.dict`` (the shipped rules' phrases and the
providers' tokens and hosts); deterministic: re-run after changing any of
them, or the rules.

    python fuzz/make_seeds.py [--check]

Each seed is an input in the format of ``harness.py`` (a header with the
options and chunking, then a reply stream): the wire rules (docs/wire-rules.md),
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
import harness_classify  # noqa: E402
import harness_classify_rules  # noqa: E402
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
    for kind, _, _ in harness_checked.KINDS[:harness_checked.STABLE_KINDS]:  # (every Python's)
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


LABELLED = os.path.join(HERE, os.pardir, "tests", "data", "classification_cases.json")

#: Texts for the classifier: delays, limits, odd bytes, tokens side by side.
CLASSIFY_TEXTS: list[tuple[str, int, bytes]] = [
    ("delay-minutes", 450, b"4.7.1 Too many messages, try again in 15 minutes"),
    ("delay-hms", 451, b"4.7.1 Greylisting in action, please come back in 00:05:00"),
    ("delay-colon-gap", 451, b"come back in 00: 05:00, or after 1:2 :3, within 12:34:56"),
    ("delay-huge", 421, b"retry after 999999 days; wait 1234567 seconds"),
    ("delay-second-wins", 450, b"in 5 in 6 minutes in 7 hours"),
    ("delay-next-line", 450, b"4.2.0 greylisted, try again in\n5 minutes"),
    ("enhanced-every-line", 550, b"5.1.1 user unknown\n5.1.1 user unknown\n5.7.1 blocked"),
    ("enhanced-edges", 550, b"5.999.999 x\n5.01.1 y\n5.1.1x z\n5.1.1\t"),
    ("enhanced-alone", 550, b"5.1.1"),
    ("enhanced-cr", 452, b"4.2.2\r"),
    ("word-64", 550, b"x" * 64 + b" user unknown"),
    ("word-65", 550, b"x" * 65 + b" mailbox full"),
    ("digits-6-7", 450, b"try again in 123456 seconds or in 1234567 seconds"),
    ("two-providers-one-word", 550, b"gsmtp yahooinc protection outlook com ts01 gcdp"),
    ("punctuation-runs", 550, b"User_unknown;;;user--unknown\tUSER   UNKNOWN"),
    ("nul-and-8bit", 554, b"\x00\xff\xfe 5.7.1 \xe9t\xe9 sp\xe4m \x00 blocked\x80"),
    ("empty", 250, b""),
    ("only-lf", 550, b"\n\n\n"),
    ("crlf-lines", 550, b"5.1.1 no such user\r\n5.1.1 mailbox unavailable\r\n"),
    ("long-line", 554, b"5.7.1 " + b"spam " * 3000 + b"gsmtp"),
    ("many-lines", 550, b"\n".join(b"5.1.1 line %d" % i for i in range(300))),
    ("phrase-across-lines", 552, b"5.2.2 mailbox\nfull"),
    ("code-minus-one", -1, b"connection lost"),
    ("code-0", 0, b"5.1.1 user unknown"),
    ("code-999", 999, b"mailbox full"),
    ("code-1000", 1000, b"x"),
    ("code-421", 421, b"4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred"),
]


def _labelled() -> list[dict[str, Any]]:
    import json

    with open(LABELLED, encoding="utf-8") as handle:
        cases: list[dict[str, Any]] = json.load(handle)["cases"]
    return cases


def classify_seeds() -> dict[str, bytes]:
    """classify: the labelled replies in several forms, and edge texts with
    every form, command kind and provider kind."""
    from fastreply.commands import Command

    encode = harness_classify.encode
    forms = [f[0] for f in harness_classify.FORMS]
    out: dict[str, bytes] = {}
    for index, case in enumerate(_labelled()):
        text = "\n".join(case["lines"]).encode("utf-8")
        command = 0 if case["command"] is None else 2 | int(Command[case["command"]]) << 3
        form = ("pair", "wire-c", "reply-py", "str", "duck")[index % 5]
        out[f"case-{case['id']}"] = encode(text, case["code"], form=form, command=command)
        provider = (3 | (index % 10) << 3, 4 | (index % 16) << 3, 5 | (index % 21) << 3)[index % 3]
        out[f"case-{case['id']}-provider"] = encode(
            text, case["code"], form=forms[index % len(forms)], command=command,
            provider=provider, style=index % 4)
    for index, (name, code, text) in enumerate(CLASSIFY_TEXTS):
        for k, form in enumerate(forms):
            if (index + k) % 3 == 0 or name.startswith("delay"):
                command = (8 * (index + k)) % 256 | k % 8
                out[f"{name}-{form}"] = encode(text, code, form=form, command=command,
                                               provider=(index * 7 + k) % 256)
    # The escapes: a phrase from the word list, repeats, long words, delays.
    esc = harness_classify
    bodies = {
        "esc-dict": bytes([esc.ESC_DICT, 0, 5, 32, esc.ESC_DICT, 1, 17]),
        "esc-repeat": b"mailbox full " + bytes([esc.ESC_REPEAT, 63]),
        "esc-long": bytes([esc.ESC_LONG, 32, 32, esc.ESC_LONG, 34, 32, esc.ESC_LONG, 11]),
        "esc-delay": bytes([esc.ESC_DELAY, 0x41, 32, esc.ESC_DELAY, 0x3C]),
        "esc-byte": bytes([esc.ESC_BYTE, 1, esc.ESC_BYTE, 0]),
    }
    for name, body in bodies.items():
        out[name] = bytes([0, 2 | 5 << 3, 0, 0x80, 17, 0]) + body
    return out


def classify_rules_seeds() -> dict[str, bytes]:
    """classify-rules: user rules that match the text, override, conflict,
    use their own providers, and spoiled ones."""
    encode = harness_classify_rules.encode
    # (case headers of the classify target: RCPT 550 as a pair, DATA_END 250 parsed
    # from the wire, 451 from an MX host of the shipped providers, upper case)
    cases = [bytes([0, 2 | 5 << 3, 0, 0x80, 17, 0]), bytes([8, 2 | 7 << 3, 0, 0x80, 2, 1]),
             bytes([1, 0, 4, 0x80, 6, 1])]
    text = (b"5.7.1 Message rejected: acme storage exhausted for bob, try again in 5 minutes"
            b"\n5.7.1 see https://acme.example/help gsmtp")
    out: dict[str, bytes] = {}
    specs = [
        ("one-phrase", [bytes([0, 4, 0, 0, 0, 0, 1, 0])], 0),
        ("phrase-and-codes", [bytes([0, 4, 5, 1, 0, 0, 2, 0x23])], 0),
        ("extend", [bytes([0, 4, 0, 0, 0, 0, 1, 0]), bytes([1, 9, 2, 3, 1, 7, 6, 0x2C])], 1),
        ("providers", [bytes([0, 12, 0, 0, 0, 7, 5, 0]), bytes([1, 3, 1, 0, 2, 0, 1, 0x31])], 2),
        ("shipped-providers", [bytes([0, 3, 0, 0, 0, 0x0F, 0, 0])], 4),
        ("override", [bytes([14, 5, 1, 0, 0, 0, 1, 4]), bytes([0, 0, 0, 0, 0, 0, 0, 0])], 1),
        ("same-id", [bytes([0, 4, 0, 0, 0, 0, 1, 0]), bytes([13, 6, 0, 0, 0, 0, 1, 0])], 0),
        ("enhanced-only", [bytes([0, 16, 0, 0, 1 | 7 << 2, 0, 0, 0]),
                           bytes([0, 17, 0, 0, 2 | 2 << 2, 0, 0, 0])],
         0),
        ("eight", [bytes([k, 3 * k, k, k, k, 7, k, k]) for k in range(8)], 3),
        ("spoiled", [bytes([0xF0, k, 0, 0, 0, 0, 0, 0]) for k in range(3)], 0),
        ("rule-objects", [bytes([0xE0, 4, 5, 1, 0, 0, 2, 0x23]), bytes([0xEF, 0, 0, 0, 0, 0, 0,
                                                                        0])], 0),
        ("edge-phrases", [bytes([0, 4, 0, 0, 0, 0, 3 | 3 << 2, 0]),
                          bytes([0, 5, 0, 0, 0, 0, 3 | 5 << 2, 0])], 0),
    ]
    for name, rules, flags in specs:
        out[name] = encode(rules, cases, text, flags)
    for bad in range(len(harness_classify_rules.BAD_FIELDS)):
        out[f"bad-{bad}"] = encode([bytes([0xF0, bad, 0, 0, 0, 0, 1, 0])], cases[:1], text)
    return out


def classify_dict() -> str:
    """The libFuzzer dictionary of the classifier targets."""
    lines = ["# The shipped rules' phrases and the providers' tokens and hosts, then",
             "# delays, enhanced codes and separators (written by fuzz/make_seeds.py)"]
    for index, word in enumerate(harness_classify.words()):
        escaped = "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}"
                          for b in word)
        lines.append(f'w{index}="{escaped}"')
    return "\n".join(lines) + "\n"


def _write_dict(path: str, text: str, check: bool) -> int:
    label = os.path.relpath(path, os.path.join(HERE, os.pardir))
    if check:
        have = open(path, encoding="ascii").read() if os.path.exists(path) else ""
        if have != text:
            print(f"{label} is out of date")
            return 1
        print(f"{label}: up to date")
        return 0
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)
    print(f"wrote {label}")
    return 0


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
    status |= _write(os.path.join(HERE, "corpus-classify"), classify_seeds(), check)
    status |= _write(os.path.join(HERE, "corpus-classify-rules"), classify_rules_seeds(), check)
    status |= _write_dict(os.path.join(HERE, "classify.dict"), classify_dict(), check)
    return status


if __name__ == "__main__":
    sys.exit(main())
