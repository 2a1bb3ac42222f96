"""feed_codes() on every build: the right ints, whichever objects hold them.

On free-threaded CPython the compiled parser hands out ints of its own for
the codes whose ints CPython does not cache (257 to 599), so that threads
parsing on their own parsers never touch a shared reference count; on a GIL
build it hands out one shared set.  Either way the values must be exact,
on the direct path (whole replies in a chunk) and the buffered one (a reply
split across chunks), first time and again.
"""

from __future__ import annotations

import sysconfig
import threading
from types import ModuleType

FREE_THREADED_BUILD = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))

EVERY_CODE = list(range(100, 600))
STREAM = b"".join(b"%d-a\r\n%d b\r\n" % (code, code) for code in EVERY_CODE)


def test_feed_codes_every_code_direct_and_buffered(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    for _ in range(2):  # the second time, the parser's own ints exist already
        assert parser.feed_codes(STREAM) == EVERY_CODE
        split = [parser.feed_codes(STREAM[i : i + 5]) for i in range(0, len(STREAM), 5)]
        assert [code for codes in split for code in codes] == EVERY_CODE
    assert all(type(code) is int for code in parser.feed_codes(STREAM))
    strict = impl.ReplyParser(strict=True)
    in_range = [c for c in EVERY_CODE if 200 <= c < 560 and c % 100 < 60]
    assert strict.feed_codes(b"".join(b"%d x\r\n" % c for c in in_range)) == in_range
    del parser, strict  # the parsers' own ints go with them


def test_feed_codes_objects_per_build(both: tuple[ModuleType, ModuleType]) -> None:
    _, c = both
    got: list[list[int]] = []

    def parse() -> None:
        got.append(c.ReplyParser().feed_codes(b"250 ok\r\n550 no\r\n354 go\r\n"))

    threads = [threading.Thread(target=parse) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = got
    assert first == second == [250, 550, 354]
    assert first[0] is second[0]  # 250: CPython's own cached int
    if FREE_THREADED_BUILD:
        # Each parser's own: no reference count shared between the threads.
        assert first[1] is not second[1] and first[2] is not second[2]
    else:
        assert first[1] is second[1] and first[2] is second[2]
