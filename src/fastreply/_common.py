"""What the twin implementations share, written once.

Neutral ground between the twins: the pure-Python parser ``_parser_py`` and
the compiled ``_parser_c`` each import this module (and :mod:`fastreply.errors`)
and never each other; so do the classifier's matchers ``_classify_py`` and
``_classify_c``.  It holds:

* the default limits and the read size the I/O layers use;
* the argument checks, with their messages;
* the messages of the wire errors, keyed by error kind (the compiled scanner
  returns the kind as a number, the reference names it);
* the canonical wire form of a reply;
* the registry of ``Reply`` classes (each parser twin registers its own when
  imported, the selector names the one in use), which lets replies of both
  compare equal and lets a pickled reply come back as the class in use;
* what the classifier's matchers need to read a reply given in any form.

Nothing here is public API: ``fastreply`` re-exports what users need.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Any, Iterable, Sequence

from . import errors
from .errors import ReplyError

#: Longest accepted line, counted with its line end (smtplib's ``_MAXLINE``).
DEFAULT_MAX_LINE_LENGTH = 8192
#: Most lines accepted in one reply.
DEFAULT_MAX_REPLY_LINES = 1000
#: How many bytes one read from a socket or a stream asks for (the smtplib
#: drop-in, the asyncio readers, ``fastreply parse``, the benchmarks).
READ_SIZE = 64 * 1024
#: Codes a command x code mask holds: bit ``code`` for every code 0 to 999.
MASK_CODES = 1000


# -- the Reply classes ------------------------------------------------------

#: The ``Reply`` classes of the implementations imported so far (each twin
#: adds its own): a reply compares equal to a reply of any of them with the
#: same code and lines.
REPLY_TYPES: tuple[type, ...] = ()

#: The ``Reply`` class in use (set by the selector, ``fastreply._parser``).
_reply_in_use: Any = None


def register_reply_type(cls: type) -> None:
    """Called by each parser twin for its ``Reply`` class when imported."""
    global REPLY_TYPES
    if cls not in REPLY_TYPES:
        REPLY_TYPES = (*REPLY_TYPES, cls)


def use_reply_type(cls: type) -> None:
    """Called by the selector: the class replies are unpickled as."""
    global _reply_in_use
    register_reply_type(cls)
    _reply_in_use = cls


def restore_reply(code: int, lines: tuple[bytes, ...], raw: bytes | None) -> Any:
    """Unpickle a reply as the implementation in use here (what
    ``Reply.__reduce__`` of both twins names)."""
    cls = _reply_in_use
    return cls._from_wire(code, lines, raw) if raw is not None else cls(code, lines)


def canonical(code: int, lines: tuple[bytes, ...]) -> bytes:
    """A reply in canonical wire form: CRLF line ends, ``-`` on every line but
    the last, no separator after a bare code."""
    prefix = b"%03d" % code
    last = len(lines) - 1
    out = []
    for index, text in enumerate(lines):
        if index < last:
            out.append(prefix + b"-" + text + b"\r\n")
        elif text:
            out.append(prefix + b" " + text + b"\r\n")
        else:
            out.append(prefix + b"\r\n")
    return b"".join(out)


# -- argument checks ---------------------------------------------------------

REPLY_IMMUTABLE = "a Reply is immutable: __init__ cannot be called again on it"
NO_COPY = (
    "a ReplyParser cannot be pickled or copied: it holds the state of one stream "
    "(make a new one with the same options)"
)


def check_reply_args(
    code: object, lines: Iterable[bytes | bytearray | memoryview]
) -> tuple[int, tuple[bytes, ...]]:
    """The arguments of ``Reply(code, lines)``, checked and copied."""
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"reply code must be an int, not {type(code).__name__}")
    if not 0 <= code <= 999:
        raise ValueError(f"reply code must have three digits (0-999), got {code}")
    if isinstance(lines, (bytes, bytearray, memoryview, str)):
        raise TypeError("lines must be an iterable of bytes, not a single string")
    checked = []
    for index, line in enumerate(lines):
        if not isinstance(line, (bytes, bytearray, memoryview)):
            raise TypeError(f"line {index} must be bytes, not {type(line).__name__}")
        line = bytes(line)
        if b"\n" in line:
            raise ValueError(f"line {index} contains a line feed: {line[:80]!r}")
        checked.append(line)
    if not checked:
        raise ValueError("a reply has at least one line (use b'' for a bare code)")
    return code, tuple(checked)


def check_limit(name: str, value: object, minimum: int) -> int:
    """A limit as both implementations keep it: at least ``minimum``, and
    at most ``sys.maxsize`` (a bigger one is taken as that: no buffer can
    hold more bytes or lines)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return min(value, sys.maxsize)


def data_type_error(data: object) -> TypeError:
    """What ``feed()`` and its variants raise for anything but bytes."""
    return TypeError(f"feed() takes bytes, bytearray or memoryview, not {type(data).__name__}")


def check_start(start: object) -> int:
    """The ``start`` of ``feed_checked()`` and ``unexpected()``."""
    if isinstance(start, bool) or not isinstance(start, int):
        raise TypeError(f"start must be an int, not {type(start).__name__}")
    if start < 0:
        raise ValueError(f"start must not be negative, got {start}")
    return start


# -- the wire errors, by kind -------------------------------------------------

# The kinds of error a line (or the end of the stream) can have.  The
# compiled scanner returns them negated (``-TOO_LONG``...): keep the numbers.
TOO_LONG = 1
BARE_LF = 2
NO_CODE = 3
SEPARATOR = 4
STRICT_RANGE = 5
RANGE = 6
INCONSISTENT = 7
TOO_MANY = 8
INCOMPLETE = 9

#: Each kind's exception class and message.  Fields: ``max_line``,
#: ``max_lines``, ``digits`` (the line's first three bytes), ``first_code``
#: (of the reply's first line), ``buffered`` (bytes held at the end).
WIRE_ERRORS: dict[int, tuple[type[ReplyError], str]] = {
    TOO_LONG: (errors.LineTooLong, "line longer than max_line_length={max_line} bytes"),
    BARE_LF: (errors.MalformedReply, "line ends with a bare LF (strict mode needs CRLF)"),
    NO_CODE: (errors.MalformedReply, "line does not start with a three-digit reply code"),
    SEPARATOR: (
        errors.MalformedReply,
        "reply code is followed by neither '-', ' ' nor the line end",
    ),
    STRICT_RANGE: (
        errors.MalformedReply,
        "reply code {digits} is outside the RFC 5321 range (first digit 2-5, second 0-5)",
    ),
    RANGE: (errors.MalformedReply, "reply code {digits} does not start with a digit 1-5"),
    INCONSISTENT: (
        errors.InconsistentReply,
        "line has code {digits} but the reply started with {first_code}",
    ),
    TOO_MANY: (errors.TooManyLines, "reply continues past max_reply_lines={max_lines} lines"),
    INCOMPLETE: (
        errors.IncompleteReply,
        "stream ended inside a reply ({buffered} bytes buffered)",
    ),
}


def wire_error(
    kind: int,
    offset: int,
    line: bytes,
    replies: Sequence[Any] = (),
    *,
    max_line: int = 0,
    max_lines: int = 0,
    first_code: int = -1,
    buffered: int = 0,
) -> ReplyError:
    """The error of ``kind`` for ``line``, which starts at ``offset`` in the
    stream; ``replies`` are those completed before it."""
    cls, template = WIRE_ERRORS[kind]
    reason = template.format(
        max_line=max_line,
        max_lines=max_lines,
        digits=line[:3].decode("latin-1"),
        first_code=first_code,
        buffered=buffered,
    )
    return cls(reason, offset=offset, line=line, replies=replies)


def stopped_error(
    error_type: type[ReplyError], reason: str, offset: int, line: bytes
) -> ReplyError:
    """What every call raises once an error stopped the parser."""
    return error_type(
        f"parser stopped by an earlier error ({reason}); call reset()", offset=offset, line=line
    )


# -- the command log of feed_checked() ----------------------------------------


def check_log_args(table: Any, commands: object, start: object) -> int:
    """Check the arguments of ``feed_checked()`` other than the data (in the
    order both implementations check them); return how many commands
    ``table`` knows."""
    try:
        known = len(table.masks)  # a table of either implementation
    except AttributeError:
        raise TypeError(f"table must be a ReplyTable, not {type(table).__name__}") from None
    if isinstance(commands, str) or not isinstance(commands, Sequence):
        raise TypeError(
            "commands must be a sequence of command numbers (a bytearray, say), "
            f"not {type(commands).__name__}"
        )
    if isinstance(commands, memoryview) and commands.ndim != 1:
        raise TypeError(
            "commands must be a one-dimensional sequence of command numbers, "
            f"not a {commands.ndim}-dimensional memoryview"
        )
    check_start(start)
    return known


def not_a_command(index: int, item: object, known: int) -> ValueError:
    return ValueError(
        f"commands[{index}] is {item!r}, not a command number of this table (0-{known - 1})"
    )


def log_ended(index: int, size: int) -> ValueError:
    return ValueError(
        f"commands[{index}] raised IndexError, but len(commands) is {size}: the log "
        "changed while it was read, or its len() is wrong"
    )


def log_window(
    table: Any, commands: Sequence[int], start: int, most: int
) -> tuple[int, Sequence[int]]:
    """The part of the command log a ``feed_checked()`` completing at most
    ``most`` replies may use, ``commands[start:start + most]``, read once and
    checked; return how many commands ``table`` knows, and that window.

    The window is built from what the log gives, item by item, never from
    what its ``len()`` promises: replies past its end answer no command.  A
    ``bytes`` or ``bytearray`` log is sliced (its items are its bytes)."""
    known = check_log_args(table, commands, start)
    if type(commands) is bytes or type(commands) is bytearray:
        window = bytes(commands[start : start + most])
        found = _not_below(known).search(window)
        if found is not None:
            index = found.start()
            raise not_a_command(start + index, window[index], known)
        return known, window
    size = len(commands)
    items = []
    for index in range(start, min(size, start + most)):
        try:
            item = commands[index]
        except IndexError:
            raise log_ended(index, size) from None
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < known:
            raise not_a_command(index, item, known)
        items.append(item)
    return known, items


@functools.lru_cache(maxsize=8)
def _not_below(known: int) -> re.Pattern[bytes]:
    """A pattern for a byte that is no command number below ``known``."""
    if known == 0:
        return re.compile(rb"[\s\S]")
    return re.compile(rb"[^\x00-" + re.escape(bytes([min(known, 256) - 1])) + rb"]")


# -- the command x code masks ------------------------------------------------

MASKS_SET_ONCE = "the masks of a table are set once, when it is built"


def check_masks(masks: Iterable[int]) -> tuple[int, ...]:
    """The masks of a table, checked: one int of bits 0 to 999 a command."""
    values = tuple(masks)
    for mask in values:
        if isinstance(mask, bool) or not isinstance(mask, int):
            raise TypeError(f"a mask must be an int, not {type(mask).__name__}")
        if mask < 0 or mask >> MASK_CODES:
            raise ValueError(f"a mask holds bits 0 to {MASK_CODES - 1} only")
    return values


def command_type_error(command: object) -> TypeError:
    return TypeError(f"a command number must be an int, not {type(command).__name__}")


def no_command(command: object) -> ValueError:
    return ValueError(f"no command number {command} in this table")


def code_type_error(code: object) -> TypeError:
    return TypeError(f"a reply code must be an int, not {type(code).__name__}")


def reply_type_error(reply: object) -> TypeError:
    return TypeError(f"a reply must be a Reply or an int code, not {type(reply).__name__}")


def check_all_lengths(commands: int, replies: int) -> None:
    if commands != replies:
        raise ValueError(
            f"check_all() needs one command per reply, got {commands} "
            f"commands and {replies} replies"
        )


def check_unexpected_lengths(replies: int, start: int, commands: int) -> None:
    if start + replies > commands:
        raise ValueError(
            f"unexpected() needs a command for every reply: {replies} replies "
            f"from position {start}, {commands} commands"
        )


# -- the classifier's input -----------------------------------------------------


def reply_class(code: int) -> int:
    """The classifier's reply class: 0 (1yz-3yz), 1 (4yz), 2 (5yz), 3 (other)."""
    if 100 <= code < 400:
        return 0
    if 400 <= code < 500:
        return 1
    if 500 <= code < 600:
        return 2
    return 3


def reply_input(reply: Any) -> tuple[int, list[bytes]]:
    """The code and the lines of text of a Reply or a (code, message) pair,
    as ``classify()`` takes them.

    A ``Reply`` of either parser (a registered class: its lines were checked
    when it was made) is read as it is; any other object with ``code`` and
    ``lines`` is read as the pair ``(code, b"\\n".join(lines))``, checked.
    """
    if isinstance(reply, (tuple, list)):
        if len(reply) != 2:
            raise TypeError("a reply given as a sequence must be (code, message)")
        code, text = reply
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"reply code must be an int, not {type(code).__name__}")
        if isinstance(text, str):
            text = text.encode("utf-8", "surrogateescape")
        elif isinstance(text, (bytearray, memoryview)):
            text = bytes(text)
        elif not isinstance(text, bytes):
            raise TypeError(f"reply message must be bytes or str, not {type(text).__name__}")
        lines = text.split(b"\n")
    else:
        try:
            code = reply.code
            lines = reply.lines
        except AttributeError:
            raise TypeError(
                "classify() takes a Reply or a (code, message) pair, not "
                f"{type(reply).__name__}"
            ) from None
        if type(reply) not in REPLY_TYPES:
            code, lines = _checked_lines(code, lines)
    if not -1 <= code <= 999:
        raise ValueError(f"reply code must be -1 to 999, got {code}")
    return code, list(lines)


def _checked_lines(code: Any, lines: Any) -> tuple[int, list[bytes]]:
    """The code and lines of an object given as a reply: an int (not a bool)
    and a non-empty iterable of bytes-like lines, split again at any LF."""
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"reply code must be an int, not {type(code).__name__}")
    if isinstance(lines, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"reply lines must be an iterable of bytes, not {type(lines).__name__}")
    out: list[bytes] = []
    split = False
    for index, line in enumerate(lines):
        if isinstance(line, (bytearray, memoryview)):
            line = bytes(line)
        elif not isinstance(line, bytes):
            raise TypeError(f"reply line {index} must be bytes, not {type(line).__name__}")
        split = split or b"\n" in line
        out.append(line)
    if not out:
        raise ValueError("a reply has at least one line")
    return code, b"\n".join(out).split(b"\n") if split else out


def reply_text(reply: Any) -> tuple[int, bytes]:
    """The code and smtplib's message (lines joined by LF) of any reply form
    :func:`reply_input` takes (same checks, same errors)."""
    code, lines = reply_input(reply)
    return code, b"\n".join(lines)
