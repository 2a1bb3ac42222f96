"""The check behind the ``checked`` fuzz target: ``feed_checked()`` with command
logs of every kind, honest and lying, on both parsers.

An input is a header, a command log and a reply stream; :func:`decode` maps
*any* bytes to a :class:`Case`:

====  ==================================================================
byte  meaning
====  ==================================================================
0     the kind of log (:data:`KINDS`, modulo their number)
1     flags: 1 strict parser, 2 the table is a pure-Python ``CodeMasks``,
      4 the stream is the raw bytes (else one reply a byte, see
      :func:`_replies`), 8 a table of 300 commands, 16 ``start`` stays
      fixed (else it grows with the replies received)
2     ``start`` at the first call: byte % 16
3     chunking: 0 whole, 1 a byte at a time, else random cuts (seed 3-4)
4     the longest random cut - 1
5     the log's length: byte % 64, then that many log bytes (an item is
      byte % 24, a command of MODERN; 249 is ``True``, 250 and up are
      numbers no table of 24 commands has)
...   the stream
====  ==================================================================

:func:`check` runs the case on the compiled parser and on the pure-Python
reference and raises :class:`Divergence` unless every call gives the same:
the replies and the positions of the unexpected ones, or the same exception
(type and message).  A ``ReplyError`` ends the run; a refused log (``ValueError``,
``TypeError``) or the log's own exception (:class:`LogError`) leaves the parser
as it was, and the next chunk is fed.  Any other exception is a bug.  For an
honest log (one that gives what its ``len()`` says, once), the positions must
also be what the table says of each reply and ``commands[start + i]``.
"""

from __future__ import annotations

import array
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

from harness import Divergence, _modules, cut  # the parser target's (fuzz/ is on sys.path)

HEADER = 6
FLAG_STRICT = 1
FLAG_PY_TABLE = 2
FLAG_RAW = 4
FLAG_BIG_TABLE = 8
FLAG_FIXED_START = 16

#: Reply codes the structured stream is made of (a byte picks one, and 1-3 lines).
CODES = (220, 221, 235, 250, 251, 252, 334, 354, 421, 450, 451, 500, 502, 530, 550, 554)


class LogError(Exception):
    """Raised by a log that fails on its own (both parsers must let it through)."""


class ShortSlices(Sequence):  # type: ignore[type-arg]
    """Indexes truly; a slice holds one item at most."""

    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self.items[index][:1]
        return self.items[index]


class LongLen(ShortSlices):
    """len() promises three items more than indexing gives."""

    def __len__(self) -> int:
        return len(self.items) + 3

    def __getitem__(self, index: Any) -> Any:
        return self.items[index]


class Drifting(ShortSlices):
    """Every item read changes what the next reads of it give."""

    def __init__(self, items: list[int]) -> None:
        super().__init__(items)
        self.reads = 0

    def __getitem__(self, index: Any) -> Any:
        self.reads += 1
        value = self.items[index]
        return value if self.reads % 3 else (value + self.reads) % 30


class Failing(ShortSlices):
    """Item 4 and later raise the log's own error."""

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int) and index >= 4:
            raise LogError(f"item {index}")
        return self.items[index]


class Shrinking(list):  # type: ignore[type-arg]
    """A list that loses its last item each time one is read (a log
    another thread trims as it is read)."""

    def __getitem__(self, index: Any) -> Any:
        value = super().__getitem__(index)
        if len(self) > 1:
            self.pop()
        return value


class LongBytes(bytes):
    """A bytes subclass whose len() says more than it holds."""

    def __len__(self) -> int:
        return super().__len__() + 2


def _array(code: str) -> Callable[[list[int]], Any]:
    def make(items: list[int]) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 'u'
            if code in "uw":
                return array.array(code, [chr(i) for i in items])
            if code in "fd":
                return array.array(code, [float(i) for i in items])
            return array.array(code, items)

    return make


def _bytes_items(items: list[int]) -> list[int]:
    return [i if 0 <= i < 256 else 255 for i in items]


#: The array type codes of every supported Python (3.10-3.12's
#: ``array.typecodes``), in a fixed order: a seed names its kind by index, so
#: the kinds every Python has come first, in the same order everywhere.
ARRAY_CODES = "bBuhHiIlLqQfd"
#: Type codes only newer Pythons have ('w' from 3.13): kinds at the very end.
NEWER_ARRAY_CODES = "".join(code for code in array.typecodes if code not in ARRAY_CODES)

#: (name, builder, honest): how a log is made from its items.  An honest log
#: gives its items by index, each once; the others lie or refuse.  The first
#: STABLE_KINDS are the same on every Python (make_seeds.py writes seeds for
#: those only); the rest, this Python's newer array types.
KINDS: tuple[tuple[str, Callable[[list[int]], Any], bool], ...] = (
    ("list", list, True),
    ("tuple", tuple, True),
    ("bytes", lambda items: bytes(_bytes_items(items)), True),
    ("bytearray", lambda items: bytearray(_bytes_items(items)), True),
    ("deque", deque, True),
    ("memoryview-B", lambda items: memoryview(bytes(_bytes_items(items))), True),
    ("memoryview-H", lambda items: memoryview(array.array("H", items)), True),
    ("memoryview-2d", lambda items: memoryview(bytes(_bytes_items(items) + [0])).cast(
        "B", (1, len(items) + 1)), False),
    *((f"array-{code}", _array(code), code not in "fdu") for code in ARRAY_CODES),
    ("short-slices", ShortSlices, True),
    ("long-len", LongLen, False),
    ("drifting", Drifting, False),
    ("failing", Failing, False),
    ("shrinking", Shrinking, False),
    ("long-bytes", lambda items: LongBytes(_bytes_items(items)), False),
    ("str", lambda items: "".join(chr(65 + i % 26) for i in items), False),
    ("set", set, False),
)
STABLE_KINDS = len(KINDS)
KINDS += tuple((f"array-{code}", _array(code), code != "w") for code in NEWER_ARRAY_CODES)


@dataclass
class Case:
    kind: int
    strict: bool
    py_table: bool
    big_table: bool
    fixed_start: bool
    start: int
    items: list[Any]
    chunks: list[bytes]
    stream: bytes = field(repr=False)


def _replies(data: bytes) -> bytes:
    """One reply a byte: a code of :data:`CODES` and 1-3 lines."""
    out = []
    for byte in data:
        code = CODES[byte % 16]
        lines = 1 + (byte >> 4) % 3
        out.append(b"%d-x\r\n" % code * (lines - 1) + b"%d y\r\n" % code)
    return b"".join(out)


def decode(data: bytes) -> Case:
    head = data[:HEADER].ljust(HEADER, b"\0")
    size = head[5] % 64
    raw_items = data[HEADER : HEADER + size]
    rest = data[HEADER + size :]
    items: list[Any] = []
    for byte in raw_items:
        if byte == 249:
            items.append(True)
        elif byte >= 250:
            items.append(24 + byte - 250)
        else:
            items.append(byte % 24)
    flags = head[1]
    stream = rest if flags & FLAG_RAW else _replies(rest[:200])
    chunks = cut(stream, head[3], head[4])
    return Case(
        kind=head[0] % len(KINDS),
        strict=bool(flags & FLAG_STRICT),
        py_table=bool(flags & FLAG_PY_TABLE),
        big_table=bool(flags & FLAG_BIG_TABLE),
        fixed_start=bool(flags & FLAG_FIXED_START),
        start=head[2] % 16,
        items=items,
        chunks=chunks,
        stream=stream,
    )


def encode(stream: bytes, items: list[int], *, kind: str = "list", raw: bool = True,
           start: int = 0, chunking: int = 0, spread: int = 0, strict: bool = False,
           py_table: bool = False, big_table: bool = False, fixed_start: bool = False) -> bytes:
    """The input :func:`decode` turns into this case (for seeds)."""
    index = [name for name, _, _ in KINDS].index(kind)
    flags = ((FLAG_STRICT if strict else 0) | (FLAG_PY_TABLE if py_table else 0)
             | (FLAG_RAW if raw else 0) | (FLAG_BIG_TABLE if big_table else 0)
             | (FLAG_FIXED_START if fixed_start else 0))
    codes = bytes(249 if item is True else (250 + item - 24 if item >= 24 else item)
                  for item in items)
    return bytes([index, flags, start, chunking, spread, len(codes)]) + codes + stream


def _table(module: ModuleType, case: Case) -> Any:
    """MODERN (the active engine, compiled when it is there), MODERN's masks
    in the pure-Python engine, or a table of 300 commands in ``module``'s."""
    import fastreply._parser_py as reference
    from fastreply.tables import MODERN

    masks = list(MODERN.masks)
    if case.big_table:
        return _engine(module, masks + [masks[4]] * (300 - len(masks)))
    if case.py_table:
        return _engine(reference, masks)
    return MODERN


def _engine(module: ModuleType, masks: list[int]) -> Any:
    engine = module.CodeMasks()
    engine._set_masks(masks)
    return engine


def observe(module: ModuleType, case: Case) -> list[Any]:
    """Run ``case`` on ``module``: one entry per call, the replies (code, raw)
    and positions, or the exception (type, message)."""
    from fastreply.errors import ReplyError

    name, build, honest = KINDS[case.kind]
    log = build(list(case.items))
    # What an honest log holds, as the parsers must read it (True in an array is 1).
    view = list(build(list(case.items))) if honest else []
    table = _table(module, case)
    parser = module.ReplyParser(strict=case.strict, max_line_length=512, max_reply_lines=8)
    trace: list[Any] = []
    received = 0
    for chunk in case.chunks:
        start = case.start if case.fixed_start else case.start + received
        try:
            replies, bad = parser.feed_checked(chunk, table, log, start)
        except ReplyError as exc:
            trace.append(("error", type(exc).__name__, str(exc),
                          [(r.code, r.raw) for r in exc.replies]))
            return trace
        except (ValueError, TypeError, LogError) as exc:
            trace.append(("refused", type(exc).__name__, str(exc), parser.offset))
            continue
        except Exception as exc:  # noqa: BLE001 - anything else is a bug
            raise Divergence(f"{module.__name__} raised {type(exc).__name__}: {exc} "
                             f"(log {name})") from exc
        trace.append(("ok", [(r.code, r.raw) for r in replies], bad))
        if honest:
            _check_positions(module, name, table, view, start, replies, bad)
        received += len(replies)
    return trace


def _check_positions(module: ModuleType, name: str, table: Any, items: list[Any], start: int,
                     replies: list[Any], bad: list[int]) -> None:
    """What the table says of each reply and ``commands[start + i]``."""
    want = []
    for i, reply in enumerate(replies):
        index = start + i
        if index >= len(items) or not table.allows(items[index], reply.code):
            want.append(i)
    if bad != want:
        raise Divergence(f"{module.__name__}: positions {bad}, the table says {want} "
                         f"(log {name}, start {start})")


def check(data: bytes, modules: tuple[ModuleType, ModuleType] | None = None) -> None:
    """Decode ``data``, run it on both parsers; raise :class:`Divergence` if
    anything differs or an invariant breaks."""
    reference, compiled = modules or _modules()
    case = decode(data)
    want = observe(reference, case)
    got = observe(compiled, case)
    if got != want:
        for index, (a, b) in enumerate(zip(got, want)):
            if a != b:
                raise Divergence(f"call {index} differs (log {KINDS[case.kind][0]}, {case!r})\n"
                                 f"  compiled:  {a!r}\n  reference: {b!r}")
        raise Divergence(f"traces differ in length: {len(got)} vs {len(want)}")
