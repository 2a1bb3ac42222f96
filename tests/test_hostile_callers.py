"""Callers who pass what nobody planned for: command logs of every kind (and
logs that lie), parsers shared by threads, replies re-initialised, odd
limits and odd arguments.  Each test runs on both implementations where the
parser is involved; the pure-Python one is the reference."""

from __future__ import annotations

import array
import copy
import pickle
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Callable, Iterator

import pytest

from fastreply import _parser_py
from fastreply.commands import Command
from fastreply.errors import ReplyError
from fastreply.tables import MODERN

# -- feed_checked() with logs of every kind ------------------------------------------

#: A log and the replies that answer it: MAIL 250, RCPT 354 (!), DATA 550 (!),
#: RCPT 251, QUIT 221, then two replies past the end of the log (!).
LOG = [Command.MAIL, Command.RCPT, Command.DATA, Command.RCPT, Command.QUIT]
STREAM = b"250 a\r\n354 b\r\n550 c\r\n251 d\r\n221 e\r\n250 f\r\n250 g\r\n"
EXPECTED_BAD = [1, 2, 5, 6]

INT_TYPECODES = [code for code in array.typecodes if code in "bBhHiIlLqQ"]


def _log_kinds() -> Iterator[Any]:
    yield pytest.param(list, id="list")
    yield pytest.param(tuple, id="tuple")
    yield pytest.param(bytes, id="bytes")
    yield pytest.param(bytearray, id="bytearray")
    yield pytest.param(deque, id="deque")
    yield pytest.param(lambda items: memoryview(bytes(items)), id="memoryview-B")
    yield pytest.param(lambda items: memoryview(array.array("I", items)), id="memoryview-I")
    for code in INT_TYPECODES:
        yield pytest.param(lambda items, code=code: array.array(code, items), id=f"array-{code}")


@pytest.mark.parametrize("kind", list(_log_kinds()))
def test_feed_checked_reads_any_sequence_of_command_numbers(
    impl: ModuleType, kind: Callable[[list[int]], Sequence[int]]
) -> None:
    """Every sequence of ints the reference takes gives the positions
    unexpected() gives, in one chunk and reply by reply (wide array items and
    a deque were read as raw bytes or refused by the compiled parser)."""
    log = kind([int(c) for c in LOG])
    replies, bad = impl.ReplyParser().feed_checked(STREAM, MODERN, log)
    assert [r.code for r in replies] == [250, 354, 550, 251, 221, 250, 250]
    assert bad == EXPECTED_BAD
    assert MODERN.unexpected(log, replies[:5]) == [1, 2]
    parser, flagged, done = impl.ReplyParser(), [], 0
    for i in range(0, len(STREAM), 7):  # one reply a call, start = replies so far
        got, positions = parser.feed_checked(STREAM[i : i + 7], MODERN, log, done)
        flagged += [done + p for p in positions]
        done += len(got)
    assert flagged == EXPECTED_BAD


@pytest.mark.parametrize("code", [c for c in array.typecodes if c not in INT_TYPECODES])
def test_feed_checked_refuses_arrays_of_no_ints_alike(impl: ModuleType, code: str) -> None:
    value: object = "\x04" if code in "uw" else 4.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 'u' (Python 3.13+)
        log = array.array(code, [value] * 3)
    parser = impl.ReplyParser()
    with pytest.raises(ValueError, match=r"commands\[0\] is .*, not a command number"):
        parser.feed_checked(b"250 a\r\n", MODERN, log)
    assert parser.offset == 0  # refused before parsing


class Lying(Sequence):  # type: ignore[type-arg]
    """Indexes truly, but its slices hold ``sliced`` items at most and its
    len() says ``extra`` more than indexing gives."""

    def __init__(self, items: list[int], sliced: int = 1_000_000, extra: int = 0) -> None:
        self.items, self.sliced, self.extra = items, sliced, extra

    def __len__(self) -> int:
        return len(self.items) + self.extra

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self.items[index][: self.sliced]
        return self.items[index]


def test_feed_checked_trusts_items_not_slices(impl: ModuleType) -> None:
    """The compiled parser took stop - start as the length of the bytes it
    built from a slice: a short slice made it read past them."""
    big = (b"250 ok\r\n" * 4000) + STREAM
    log = Lying([int(Command.MAIL)] * 4000 + [int(c) for c in LOG], sliced=1)
    replies, bad = impl.ReplyParser().feed_checked(big, MODERN, log)
    assert len(replies) == 4007
    assert bad == [4000 + p for p in EXPECTED_BAD]


@pytest.mark.parametrize("extra", [1, 5, 1000])
def test_feed_checked_log_shorter_than_its_len(impl: ModuleType, extra: int) -> None:
    log = Lying([int(c) for c in LOG], extra=extra)
    parser = impl.ReplyParser()
    assert parser.feed(b"250-x\r\n") == []
    with pytest.raises(ValueError, match=r"commands\[5\] raised IndexError, but len\(commands\) "
                       rf"is {5 + extra}: the log changed while it was read"):
        parser.feed_checked(STREAM, MODERN, log)
    # Nothing was consumed: the parser goes on where it was.
    assert parser.offset == parser.buffered == 7
    assert [r.code for r in parser.feed(b"250 y\r\n")] == [250]
    # A start at or past what indexing gives is no error: no replies answer it.
    assert impl.ReplyParser().feed_checked(STREAM, MODERN, log, 5 + extra)[1] == list(range(7))


def test_feed_checked_reads_each_item_once(impl: ModuleType) -> None:
    """A log whose items change as they are read is read once, and its
    replies judged by what was read (the reference read it twice)."""

    class Drifting(Lying):
        reads = 0

        def __getitem__(self, index: Any) -> Any:
            self.reads += 1
            return int(Command.MAIL) if self.reads <= 3 else 999

    log = Drifting([0, 0, 0])
    replies, bad = impl.ReplyParser().feed_checked(b"250 a\r\n250 b\r\n250 c\r\n", MODERN, log)
    assert len(replies) == 3 and bad == [] and log.reads == 3


def test_feed_checked_on_a_list_shrunk_by_its_own_getitem(impl: ModuleType) -> None:
    """A log that changes size while it is read: an error, nothing consumed."""

    class Shrinking(list):  # type: ignore[type-arg]
        def __getitem__(self, index: Any) -> Any:
            value = super().__getitem__(index)
            if len(self) > 1:
                self.pop()
            return value

    log = Shrinking([int(Command.MAIL)] * 6)
    parser = impl.ReplyParser()
    with pytest.raises(ValueError, match="the log changed while it was read"):
        parser.feed_checked(STREAM, MODERN, log)
    assert parser.offset == 0


# -- Reply and ReplyParser: the twins alike ----------------------------------------


def test_reply_init_cannot_rewrite_a_reply(impl: ModuleType) -> None:
    (parsed,) = impl.ReplyParser().feed(b"250-a\r\n250 b\r\n")
    made = impl.Reply(221, [b"bye"])
    for reply in (parsed, made):
        before = (reply.code, reply.lines, reply.raw, hash(reply))
        members = {reply}
        with pytest.raises(TypeError, match="a Reply is immutable: __init__ cannot be called "
                           "again on it"):
            reply.__init__(550, [b"x"])
        assert (reply.code, reply.lines, reply.raw, hash(reply)) == before
        assert reply in members
    fresh = impl.Reply.__new__(impl.Reply)
    fresh.__init__(250, [b"ok"])  # the first __init__ of an object made without one
    assert fresh == impl.Reply(250, [b"ok"])


def test_a_parser_is_not_pickled_or_copied(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    parser.feed(b"250-a\r\n")
    message = "a ReplyParser cannot be pickled or copied: it holds the state of one stream"
    for attempt in (lambda: pickle.dumps(parser), lambda: copy.copy(parser),
                    lambda: copy.deepcopy(parser)):
        with pytest.raises(TypeError, match=message):
            attempt()
    assert parser.buffered == 7  # untouched
    # Replies are values: they pickle and copy in both.
    (reply,) = parser.feed(b"250 b\r\n")
    assert pickle.loads(pickle.dumps(reply)) == copy.copy(reply) == copy.deepcopy(reply) == reply


@pytest.mark.parametrize("value", [2**63 - 1, 2**63, 2**64, 2**70])
def test_huge_limits_are_taken_as_no_limit(impl: ModuleType, value: int) -> None:
    parser = impl.ReplyParser(max_line_length=value, max_reply_lines=value)
    assert parser.max_line_length == parser.max_reply_lines == sys.maxsize
    assert [r.code for r in parser.feed(b"250-" + b"x" * 100_000 + b"\r\n250 y\r\n")] == [250]


def test_subclassing_is_the_difference_kept(impl: ModuleType) -> None:
    """Documented: the compiled classes are final, the pure-Python ones not."""
    for cls in (impl.Reply, impl.ReplyParser):
        if impl is _parser_py:
            assert type("Sub", (cls,), {})  # works
        else:
            with pytest.raises(TypeError, match="not an acceptable base type"):
                type("Sub", (cls,), {})
        assert "subclass" in (cls.__doc__ or "")


def _engine(impl: ModuleType) -> Any:
    engine = impl.CodeMasks()
    engine._set_masks(MODERN.masks)
    return engine


@pytest.mark.parametrize(
    ("command", "code", "outcome"),
    [
        (Command.MAIL, 250, True),
        (Command.MAIL, 354, False),
        (Command.MAIL, 2**70, False),
        (Command.MAIL, -(2**70), False),
        (Command.MAIL, 1000, False),
        (Command.MAIL, -1, False),
        (Command.MAIL, 250.0, (TypeError, "a reply (code )?must be a(n int| Reply or an int "
                                          "code), not float")),
        (Command.MAIL, True, (TypeError, "a reply code must be an int, not bool")),
        (Command.MAIL, "250", (TypeError, "a reply (code )?must be a(n int| Reply or an int "
                                          "code), not str")),
        (2**70, 250, (ValueError, f"no command number {2**70} in this table")),
        (-1, 250, (ValueError, "no command number -1 in this table")),
        (4.0, 250, (TypeError, "a command number must be an int, not float")),
        (True, 250, (TypeError, "a command number must be an int, not bool")),
    ],
)
def test_allows_answers_alike(impl: ModuleType, command: Any, code: Any, outcome: Any) -> None:
    engine = _engine(impl)
    calls = [
        lambda: engine.allows(command, code),
        lambda: engine.check_all([command], [code])[0],
        lambda: engine.unexpected([command], [code]) == [],
    ]
    for call in calls:
        if isinstance(outcome, tuple):
            with pytest.raises(outcome[0], match=outcome[1]):
                call()
        else:
            assert call() is outcome


@pytest.mark.parametrize(
    ("start", "error", "message"),
    [
        (2**70, ValueError, "needs a command for every reply"),
        (-1, ValueError, "start must not be negative"),
        (1.0, TypeError, "start must be an int, not float"),
        (True, TypeError, "start must be an int, not bool"),
    ],
)
@pytest.mark.parametrize("form", [list, bytes])
def test_unexpected_start_alike(impl: ModuleType, form: type, start: Any, error: type,
                                message: str) -> None:
    with pytest.raises(error, match=message):
        _engine(impl).unexpected(form([4, 5]), [250], start)


def test_feed_checked_huge_start_is_past_the_log(impl: ModuleType) -> None:
    for log in (bytes(LOG), list(LOG)):
        assert impl.ReplyParser().feed_checked(STREAM, MODERN, log, 2**70)[1] == list(range(7))


# -- threads -------------------------------------------------------------------------


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Make threads take turns inside the parser: every line of the
    pure-Python parser gives the other threads a chance to run (the compiled
    parser has no Python lines: it runs as it does)."""

    def each_line(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            time.sleep(0)  # releases the GIL
        return each_line

    def calls(frame: Any, event: str, arg: Any) -> Any:
        return each_line if frame.f_code.co_filename == _parser_py.__file__ else None

    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threading.settrace(calls)
    try:
        yield
    finally:
        threading.settrace(None)  # type: ignore[arg-type]
        sys.setswitchinterval(saved)


def _in_threads(work: Callable[[int], None], count: int = 4) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_a_parser_shared_by_threads(impl: ModuleType, switch_often: None) -> None:
    """Four threads feed one parser whole replies in chunks of every size,
    read its counters and check codes: each call returns exactly the replies
    it fed, nothing raises, and the offset counts every byte (the pure parser
    raised IndexError and AssertionError from its buffer)."""
    parser = impl.ReplyParser(max_line_length=256)
    replies = [b"250 ok\r\n", b"250-a\r\n250-b\r\n250 c\r\n", b"550 5.1.1 " + b"x" * 90 + b"\r\n",
               b"220\n"]
    failures: list[BaseException] = []
    fed = [0] * 4
    start = threading.Barrier(4)

    def work(index: int) -> None:
        try:
            start.wait()
            for round_ in range(60):
                count = 1 + (round_ + index) % 7
                chunk = b"".join(replies[(round_ + k) % 4] for k in range(count))
                if round_ % 3 == 0:
                    got = [r.raw for r in parser.feed(chunk)]
                    assert b"".join(got) == chunk and len(got) == count
                elif round_ % 3 == 1:
                    assert len(parser.feed_codes(chunk)) == count
                else:
                    got, bad = parser.feed_checked(chunk, MODERN, [int(Command.MAIL)] * count)
                    assert len(got) == count and len(bad) <= count
                assert parser.buffered == 0
                fed[index] += len(chunk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    _in_threads(work)
    assert failures == []
    assert parser.offset == sum(fed)
    parser.close()


def test_a_parser_shared_by_threads_keeps_its_errors_clean(impl: ModuleType,
                                                            switch_often: None) -> None:
    """Threads feeding halves of replies into one parser interleave them:
    the stream is garbage, but what comes out is replies or ReplyErrors."""
    parser = impl.ReplyParser(max_line_length=200, max_reply_lines=50)
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def work(index: int) -> None:
        pieces = [b"250-abc\r\n250-de", b"f\r\n250-gh\r\n2", b"50 end\r\n",
                  b"220-x\r\n220-y\r\n220 z\r\n250"]
        try:
            start.wait()
            for round_ in range(100):
                try:
                    parser.feed(pieces[(index + round_) % 4])
                except ReplyError:
                    parser.reset()
                _ = parser.buffered + parser.offset
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    _in_threads(work)
    assert failures == []
