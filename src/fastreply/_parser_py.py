"""Pure-Python implementation of the reply parser: the readable reference.

The compiled module ``fastreply._parser_c`` implements exactly the same
behaviour (the test suite runs every test against both, and a differential
test feeds both the same random streams); when the two disagree, this module
says what is right.

Wire rules (RFC 5321 section 4.2, lenient where real servers are sloppy):

* a line ends with CRLF; a bare LF is accepted unless ``strict``; a CR that is
  not followed by LF is part of the text;
* a line is three ASCII digits followed by ``-`` (more lines follow), a space
  (last line) or the line end (last line, bare code);
* the first digit is 1-5 (``strict``: 2-5, then 0-5, then 0-9, as the ABNF);
* lines of one reply with different codes: the last line's code wins
  (``strict``: :class:`~fastreply.errors.InconsistentReply`);
* text is kept byte for byte, minus the separator and the line end.

The specification is :meth:`ReplyParser._line`: it checks one line against
each rule, in the order above, and names what is wrong.  Everything else is
bookkeeping around it, and one accelerator: at a reply boundary a regular
expression built from the same rules and the limits (:func:`_fast_path`)
takes a whole run of well-formed replies in one call, leaving whatever it
does not take to ``_line``.  It accepts nothing ``_line`` refuses and
changes nothing a caller sees (``tests/test_reference.py`` runs the two
against each other on random streams); the compiled parser's
``check_line`` follows ``_line`` rule for rule.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from . import _common
from ._common import (
    BARE_LF,
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_MAX_REPLY_LINES,
    INCOMPLETE,
    INCONSISTENT,
    MASK_CODES,
    NO_CODE,
    RANGE,
    SEPARATOR,
    STRICT_RANGE,
    TOO_LONG,
    TOO_MANY,
    canonical,
    check_limit,
    check_reply_args,
    log_window,
    wire_error,
)
from .errors import ReplyError

if TYPE_CHECKING:
    from .classification import Classification
    from .enhanced import EnhancedStatus

__all__ = ["Reply", "ReplyParser", "CodeMasks", "DEFAULT_MAX_LINE_LENGTH", "DEFAULT_MAX_REPLY_LINES"]

_CR = 0x0D
_LF = 0x0A
_DIGITS = frozenset(b"0123456789")
_LENIENT_FIRST = frozenset(b"12345")
_STRICT_FIRST = frozenset(b"2345")
_STRICT_SECOND = frozenset(b"012345")

_enhanced_parse: Any = None
_classify: Any = None


class Reply:
    """One complete SMTP reply: a code and its lines of text.

    ``Reply(250, (b"mx.example.org", b"PIPELINING"))`` builds one by hand;
    the parser builds them from the wire.  Replies are immutable, hashable,
    comparable and picklable; the text is kept exactly as it was received.
    Calling ``__init__`` again on a reply raises :class:`TypeError`.

    The one difference between the implementations: the compiled ``Reply``
    cannot be subclassed, this one can (portable code wraps a reply instead).
    """

    __slots__ = ("_code", "_lines", "_raw")

    _code: int
    _lines: tuple[bytes, ...] | None  # None: not split from _raw yet
    _raw: bytes | None  # None: made by hand

    def __init__(self, code: int, lines: Iterable[bytes]) -> None:
        try:
            self._code
        except AttributeError:
            pass  # a new reply
        else:
            raise TypeError(_common.REPLY_IMMUTABLE)
        self._code, self._lines = check_reply_args(code, lines)
        self._raw = None

    @classmethod
    def _from_wire(cls, code: int, lines: tuple[bytes, ...] | None, raw: bytes) -> Reply:
        """A reply the parser has checked: ``raw`` as received; its lines are
        split from it when first asked for, unless already known."""
        reply = cls.__new__(cls)
        reply._code = code
        reply._lines = lines
        reply._raw = raw
        return reply

    @property
    def code(self) -> int:
        """The three-digit reply code (of the last line, when lines differ)."""
        return self._code

    @property
    def lines(self) -> tuple[bytes, ...]:
        """The text of each line, without code, separator and line end."""
        lines = self._lines
        if lines is None:
            assert self._raw is not None
            lines = self._lines = _split_lines(self._raw)
        return lines

    @property
    def raw(self) -> bytes:
        """The reply exactly as received (``to_bytes()`` for hand-made replies)."""
        if self._raw is None:
            return self.to_bytes()
        return self._raw

    @property
    def text(self) -> bytes:
        """The lines joined by ``b"\\n"``: the message ``smtplib`` returns."""
        return b"\n".join(self.lines)

    @property
    def message(self) -> str:
        """:attr:`text` decoded as UTF-8; undecodable bytes are kept as
        surrogate escapes, so ``message.encode("utf-8", "surrogateescape")``
        gives the bytes back."""
        return b"\n".join(self.lines).decode("utf-8", "surrogateescape")

    @property
    def is_multiline(self) -> bool:
        """True when the reply has more than one line."""
        if self._lines is None and self._raw is not None:
            return self._raw.count(b"\n") > 1
        return len(self.lines) > 1

    @property
    def is_preliminary(self) -> bool:
        """1yz: positive preliminary (not used by SMTP proper)."""
        return 100 <= self._code < 200

    @property
    def is_positive(self) -> bool:
        """2yz: positive completion, the command succeeded."""
        return 200 <= self._code < 300

    @property
    def is_intermediate(self) -> bool:
        """3yz: positive intermediate, send more (``354`` after DATA)."""
        return 300 <= self._code < 400

    @property
    def is_transient(self) -> bool:
        """4yz: transient negative, try again later."""
        return 400 <= self._code < 500

    @property
    def is_permanent(self) -> bool:
        """5yz: permanent negative, do not repeat as is."""
        return 500 <= self._code < 600

    @property
    def enhanced(self) -> EnhancedStatus | None:
        """The RFC 3463 enhanced status code at the start of the text, if any."""
        global _enhanced_parse
        if _enhanced_parse is None:
            from .enhanced import parse_enhanced

            _enhanced_parse = parse_enhanced
        result: EnhancedStatus | None = _enhanced_parse(self._code, self.lines[0])
        return result

    def classify(self, command: Any = None, *, provider: str | None = None) -> Classification:
        """What this reply means for the sender:
        :func:`fastreply.classify` ``(self, command, provider=provider)``."""
        global _classify
        if _classify is None:
            from .classification import classify

            _classify = classify
        result: Classification = _classify(self, command, provider=provider)
        return result

    def to_bytes(self) -> bytes:
        """The reply in canonical wire form: CRLF line ends, ``-`` on every
        line but the last, no separator after a bare code."""
        return canonical(self._code, self.lines)

    def _smtplib_pair(self) -> tuple[int, bytes]:
        """``(code, message)`` as ``smtplib.SMTP.getreply()`` returns this
        reply: the text of each line stripped of spaces, tabs, CR and LF,
        joined by LF."""
        return self._code, b"\n".join([line.strip(b" \t\r\n") for line in self.lines])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _common.REPLY_TYPES):
            return NotImplemented
        same: bool = self._code == other.code and self.lines == other.lines  # type: ignore[attr-defined]
        return same

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        if result is NotImplemented:
            return NotImplemented
        return not result

    def __hash__(self) -> int:
        return hash((self._code, self.lines))

    def __repr__(self) -> str:
        return f"Reply({self._code}, {self.lines!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_common.restore_reply, (self._code, self.lines, self._raw))


_common.register_reply_type(Reply)


def _split_lines(raw: bytes) -> tuple[bytes, ...]:
    """The text of each line of a reply the parser has checked."""
    texts = []
    for line in raw.split(b"\n")[:-1]:  # raw ends with LF
        if line.endswith(b"\r"):
            line = line[:-1]
        texts.append(line[4:])  # b"" for a bare code
    return tuple(texts)


class ReplyParser:
    """Sans-IO streaming parser of SMTP replies.

    Feed it bytes as they arrive, in chunks of any size; each call to
    :meth:`feed` returns the replies those bytes completed, in order.
    At end of stream call :meth:`close`, which raises
    :class:`~fastreply.errors.IncompleteReply` if a reply was cut short.

    Args:
        max_line_length: longest accepted line, counted with its line end
            (at least 4; a value above ``sys.maxsize`` is taken as
            ``sys.maxsize``, which no buffer can reach).
        max_reply_lines: most lines accepted in one reply (at least 1; the
            same cap).
        strict: follow RFC 5321 exactly (CRLF only, reply codes 200-559 per
            the ABNF, the same code on every line of a reply).

    Threads: each method runs whole, under the parser's own lock, so a
    parser shared by threads never breaks (the compiled parser holds a
    critical section instead); which thread's bytes come first is still
    the callers' business.  A parser is one stream's state: it cannot be
    pickled or copied (:class:`TypeError`), make a new one with the same
    options.  Unlike the compiled ``ReplyParser``, this class can be
    subclassed (portable code wraps a parser instead).
    """

    _lock: threading.Lock

    __slots__ = (
        "_max_line_length",
        "_max_reply_lines",
        "_strict",
        "_buf",
        "_offset",
        "_reply_start",
        "_line_start",
        "_scan",
        "_texts",
        "_first_code",
        "_last_code",
        "_error",
        "_fast",
        "_lock",
    )

    def __init__(
        self,
        *,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        max_reply_lines: int = DEFAULT_MAX_REPLY_LINES,
        strict: bool = False,
    ) -> None:
        max_line = check_limit("max_line_length", max_line_length, 4)
        max_lines = check_limit("max_reply_lines", max_reply_lines, 1)
        strict = bool(strict)
        lock: threading.Lock
        try:
            lock = self._lock  # __init__ called again: the same lock
        except AttributeError:
            lock = self._lock = threading.Lock()
        with lock:
            self._max_line_length = max_line
            self._max_reply_lines = max_lines
            self._strict = strict
            self._fast = _fast_path(max_line, max_lines, strict)
            self._reset()

    @property
    def max_line_length(self) -> int:
        return self._max_line_length

    @property
    def max_reply_lines(self) -> int:
        return self._max_reply_lines

    @property
    def strict(self) -> bool:
        return self._strict

    @property
    def buffered(self) -> int:
        """How many bytes are held, waiting for the rest of a reply."""
        with self._lock:
            return len(self._buf)

    @property
    def offset(self) -> int:
        """Stream offset of the next byte to be fed (bytes fed since reset)."""
        with self._lock:
            return self._offset + len(self._buf)

    def reset(self) -> None:
        """Forget everything: buffered bytes, offsets and any error."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self._buf = bytearray()
        self._offset = 0  # stream offset of self._buf[0]
        self._reply_start = 0  # start of the reply being read, in self._buf
        self._line_start = 0  # start of the line being read, in self._buf
        self._scan = 0  # where to look for the next LF, in self._buf
        self._texts: list[bytes] = []
        self._first_code = -1
        self._last_code = -1
        # What stopped the parser: (class, reason, offset, line), or None.
        self._error: tuple[type[ReplyError], str, int, bytes] | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Reply]:
        """Parse ``data`` (the next bytes of the stream) and return the replies
        it completed, in order.  An incomplete reply stays buffered."""
        replies: list[Reply] = []
        with self._lock:
            self._feed(data, replies)
        return replies

    def feed_codes(self, data: bytes | bytearray | memoryview) -> list[int]:
        """Like :meth:`feed`, but return only the code of each completed reply
        (for callers that need nothing else; the compiled parser then builds
        no :class:`Reply` objects)."""
        replies: list[Reply] = []
        try:
            with self._lock:
                self._feed(data, replies)
        except ReplyError as exc:
            exc.replies = [reply.code for reply in exc.replies]
            raise
        return [reply.code for reply in replies]

    def feed_checked(
        self,
        data: bytes | bytearray | memoryview,
        table: CodeMasks,
        commands: Sequence[int],
        start: int = 0,
    ) -> tuple[list[Reply], list[int]]:
        """Like :meth:`feed`, and check each completed reply against ``table``
        on the way: return the replies and the positions (in that list) of
        those whose code their command does not allow.

        ``commands`` is the log of the commands sent, as command numbers (a
        ``bytearray`` of them is the fastest form; any sequence of ints
        works: a list, a ``collections.deque``, an ``array.array`` of any
        type code, a one-dimensional memoryview), and ``commands[start]``
        the command the first reply of this call answers (the count of
        replies received before it, usually).  A reply past the end of the
        log answers no command sent: it is unexpected too.

        The part of the log this call can use (a reply has at least 4
        bytes) is read once, item by item, and checked before any byte is
        parsed: ``ValueError`` for a number that is no command of the table,
        or for a log whose ``len()`` promised more items than it gave, so an
        error there loses nothing.  A :class:`~fastreply.errors.ReplyError`
        carries the replies completed before it, unchecked, as :meth:`feed`'s
        does.
        """
        _check_data(data)
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        # A reply has at least 4 bytes ("250\n"): this feed completes at most
        # this many, and needs no more of the log.
        _, window = log_window(table, commands, start, (self.buffered + size) // 4)
        replies = self.feed(data)
        logged = len(window)
        allows = table.allows
        return replies, [
            i
            for i, reply in enumerate(replies)
            if i >= logged or not allows(window[i], reply.code)
        ]

    def close(self) -> None:
        """Declare the end of the stream; raise
        :class:`~fastreply.errors.IncompleteReply` if a reply was cut short."""
        with self._lock:
            self._close()

    def __reduce__(self) -> Any:
        raise TypeError(_common.NO_COPY)

    def __copy__(self) -> Any:
        raise TypeError(_common.NO_COPY)

    def __deepcopy__(self, memo: Any) -> Any:
        raise TypeError(_common.NO_COPY)

    def _close(self) -> None:
        if self._error is not None:
            raise self._stopped()
        if self._buf:
            buffered = len(self._buf)
            fed_until = self._offset + buffered
            try:
                self._fail(
                    INCOMPLETE,
                    self._reply_start,
                    _first_line(self._buf, self._reply_start),
                    [],
                    buffered=buffered,
                )
            finally:
                self._buf = bytearray()
                self._offset = fed_until
                self._reply_start = self._line_start = self._scan = 0

    # -- internals --------------------------------------------------------

    def _stopped(self) -> ReplyError:
        assert self._error is not None
        return _common.stopped_error(*self._error)

    def _fail(
        self,
        kind: int,
        start: int,
        line: bytes | bytearray,
        replies: list[Any],
        **fields: int,
    ) -> None:
        """Stop with the error of ``kind`` (see ``_common.WIRE_ERRORS``) for
        ``line``, which starts at ``start`` in the buffer."""
        # No local name for the exception: its traceback holds this frame,
        # and a frame that held the exception would be a reference cycle
        # keeping the refused bytes alive until the cyclic GC ran.
        raise self._stop(
            wire_error(kind, self._offset + start, bytes(line), replies, **fields)
        )

    def _stop(self, error: ReplyError) -> ReplyError:
        """Remember what stopped the parser (not the exception itself, which
        holds the frames that saw the refused bytes)."""
        self._error = (type(error), error.reason, error.offset, error.line)
        return error

    def _feed(self, data: bytes | bytearray | memoryview, replies: list[Reply]) -> None:
        if self._error is not None:
            raise self._stopped()
        _check_data(data)
        if not isinstance(data, bytes):
            data = bytes(data)  # also flattens a non-contiguous memoryview
        fed_until = self._offset + len(self._buf) + len(data)
        try:
            self._parse(data, replies)
        except ReplyError:
            # Stopped: hold nothing; ``offset`` counts every byte fed.
            self._buf = bytearray()
            self._offset = fed_until
            self._reply_start = self._line_start = self._scan = 0
            raise

    def _parse(self, data: bytes, replies: list[Reply]) -> None:
        buf = self._buf
        if buf and len(buf) <= len(data):
            # A reply is pending, no longer than the bytes that arrived: read
            # it again from its start, with them, as below.  (Reading it
            # again costs at most as much as the new bytes, so feeding stays
            # linear; its lines were already checked as they came.)
            data = b"".join((buf, data))
            buf.clear()
            self._line_start = self._scan = 0
            self._texts = []
            self._first_code = -1
        elif buf:
            # A longer reply is pending: continue it line by line, up to its end.
            buf += data
            if not self._scan_lines(replies, first_only=True):
                return  # still incomplete; everything is buffered
            data = bytes(buf)  # what is left starts a new reply
            buf.clear()
            self._line_start = self._scan = 0
        # At a reply boundary, nothing buffered: data[0] is at self._offset.
        # Runs of well-formed replies are taken whole by one regular expression
        # that encodes the wire rules and the limits (the fast path) ...
        matches = self._fast(data)
        end = len(data)
        if matches and matches[-1][2]:
            end -= len(matches.pop()[2])
        replies.extend(map(_reply_from_match, matches))
        self._offset += end
        # ... and what it stopped at (an incomplete reply at the end of the
        # chunk, or a line that breaks a rule) goes line by line, which keeps
        # what is incomplete and explains what is wrong.
        if end < len(data):
            buf += memoryview(data)[end:]
            self._scan_lines(replies, first_only=False)

    def _scan_lines(self, replies: list[Reply], first_only: bool) -> bool:
        """Read the buffer line by line from where the last call stopped;
        return whether a reply was completed (stop there if ``first_only``).
        Consumed bytes are dropped from the buffer."""
        buf = self._buf
        max_line = self._max_line_length
        completed = False
        while True:
            line_start = self._line_start
            end = buf.find(b"\n", self._scan)
            if end < 0:
                self._scan = len(buf)
                if self._scan - line_start >= max_line:
                    # Whatever comes next, this line cannot end within the limit.
                    self._fail(
                        TOO_LONG,
                        line_start,
                        buf[line_start : line_start + max_line],
                        replies,
                        max_line=max_line,
                    )
                break
            self._line_start = self._scan = end + 1
            if self._line(buf, line_start, end, replies):
                # A reply is complete.
                raw = bytes(buf[self._reply_start : end + 1])
                replies.append(Reply._from_wire(self._last_code, tuple(self._texts), raw))
                self._texts = []
                self._first_code = -1
                self._reply_start = end + 1
                completed = True
                if first_only:
                    break
        self._drop_consumed()
        return completed

    def _drop_consumed(self) -> None:
        """Drop the bytes of completed replies; keep the incomplete one."""
        consumed = self._reply_start
        if consumed:
            del self._buf[:consumed]
            self._offset += consumed
            self._reply_start = 0
            self._line_start -= consumed
            self._scan -= consumed

    def _line(self, buf: bytearray, start: int, lf: int, replies: list[Reply]) -> bool:
        """Check the line ``buf[start:lf+1]``; keep its text; tell whether it
        is the last line of its reply."""
        max_line = self._max_line_length
        if lf + 1 - start > max_line:
            self._fail(TOO_LONG, start, buf[start : start + max_line], replies, max_line=max_line)
        line = buf[start : lf + 1]
        end = lf
        if end > start and buf[end - 1] == _CR:
            end -= 1
        elif self._strict:
            self._fail(BARE_LF, start, line, replies)
        size = end - start
        digits = buf[start : start + 3]
        if size < 3 or not _DIGITS.issuperset(digits):
            self._fail(NO_CODE, start, line, replies)
        if size == 3:
            last = True
        else:
            separator = buf[start + 3]
            if separator == 0x2D:  # "-"
                last = False
            elif separator == 0x20:  # " "
                last = True
            else:
                self._fail(SEPARATOR, start, line, replies)
        if self._strict:
            if digits[0] not in _STRICT_FIRST or digits[1] not in _STRICT_SECOND:
                self._fail(STRICT_RANGE, start, line, replies)
        elif digits[0] not in _LENIENT_FIRST:
            self._fail(RANGE, start, line, replies)
        code = int(digits)
        if self._first_code < 0:
            self._first_code = code
        elif self._strict and code != self._first_code:
            self._fail(INCONSISTENT, start, line, replies, first_code=self._first_code)
        texts = self._texts
        texts.append(bytes(buf[start + 4 : end]) if size > 3 else b"")
        if not last and len(texts) >= self._max_reply_lines:
            self._fail(TOO_MANY, start, line, replies, max_lines=self._max_reply_lines)
        self._last_code = code
        return last


_CODE_VALUES = {b"%03d" % code: code for code in range(1000)}


def _reply_from_match(match: tuple[bytes, bytes, bytes], _new: Any = object.__new__) -> Reply:
    """A Reply from a (raw, code, -) match of the fast path."""
    reply: Reply = _new(Reply)
    reply._raw = match[0]
    reply._code = _CODE_VALUES[match[1]]
    reply._lines = None
    return reply


# Counts past what the fast path's patterns should repeat are left to the
# line-by-line path.
_MAX_REPEAT = 65535

#: A "fast path" that takes nothing: every byte goes through ``_line``.
_LINE_BY_LINE: Callable[[bytes], list[Any]] = re.compile(rb"()()((?s:.+))").findall


@functools.lru_cache(maxsize=32)
def _fast_path(max_line: int, max_lines: int, strict: bool) -> Callable[[bytes], list[Any]]:
    """The accelerator: a pattern that cuts a run of complete, well-formed
    replies at the start of a chunk into ``(raw, code, b"")`` matches (``code``
    is the last line's), followed by one ``(b"", b"", rest)`` match for
    whatever follows the run.

    The pattern encodes the wire rules and the limits: it accepts nothing
    the line-by-line check (``ReplyParser._line``, the specification) would
    refuse.  It may stop earlier (on limits above what it counts, say); the
    line-by-line path then takes over.
    """
    if max_line < 6:
        # Too short for the patterns below to be exact: all line by line.
        return _LINE_BY_LINE
    more = min(max_lines - 1, _MAX_REPEAT)
    if strict:
        # CRLF only, codes 200-559 per the ABNF, the same code on every line.
        text = b"[^\n]{0,%d}" % min(max_line - 6, _MAX_REPEAT)
        reply = rb"(?P<code>[2-5][0-5][0-9])(?:-%s\r\n(?P=code)){0,%d}(?: %s)?\r\n" % (
            text,
            more,
            text,
        )
    else:
        # LF or CRLF (a CR is then counted in the text), codes 100-599.
        text = b"[^\n]{0,%d}" % min(max_line - 5, _MAX_REPEAT)
        code = rb"[1-5][0-9][0-9]"
        reply = rb"(?:%s-%s\n){0,%d}(%s)(?: %s|\r?)\n" % (code, text, more, code, text)
    # Groups: 1 the reply, 2 its code (the first group inside it), 3 the rest.
    return re.compile(rb"(%s)|((?s:.+))" % reply).findall


def _check_data(data: object) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _common.data_type_error(data)


def _first_line(buf: bytearray, start: int) -> bytes:
    end = buf.find(b"\n", start)
    return bytes(buf[start:] if end < 0 else buf[start : end + 1])


# -- the command x code bitmask engine ------------------------------------

class CodeMasks:
    """The bitmask engine under :class:`fastreply.tables.ReplyTable`: one
    mask per command (a command's number indexes them), bit ``code`` set
    when the command may get that code.  Build with :meth:`_set_masks`
    once; afterwards it never changes.  The compiled module has the same
    class over a C array of 64-bit words."""

    __slots__ = ("_masks",)

    def __init__(self) -> None:
        self._masks: tuple[int, ...] = ()

    def _set_masks(self, masks: Iterable[int]) -> None:
        if self._masks:
            raise TypeError(_common.MASKS_SET_ONCE)
        self._masks = _common.check_masks(masks)

    @property
    def masks(self) -> tuple[int, ...]:
        """One int per command, bit ``code`` set for each allowed code."""
        return self._masks

    def allows(self, command: int, code: int) -> bool:
        """Whether ``command`` may be answered by ``code`` (one shift, one AND).

        ``command`` must be a command number of this table (an int:
        :class:`TypeError` otherwise, :class:`ValueError` when out of range);
        ``code`` must be an int (:class:`TypeError` for a float or a bool),
        and one outside 0-999 is allowed by no command."""
        masks = self._masks
        if isinstance(command, bool) or not isinstance(command, int):
            raise _common.command_type_error(command)
        if not 0 <= command < len(masks):
            raise _common.no_command(command)
        if isinstance(code, bool) or not isinstance(code, int):
            raise _common.code_type_error(code)
        return 0 <= code < MASK_CODES and bool(masks[command] >> code & 1)

    def check_all(self, commands: Iterable[int], replies: Iterable[Any]) -> list[bool]:
        """:meth:`allows` for each (command, reply) pair, in order; a reply
        may be a :class:`Reply` or a code.  Both must be equally long."""
        commands = list(commands)
        replies = list(replies)
        _common.check_all_lengths(len(commands), len(replies))
        return [self.allows(command, _reply_code(reply)) for command, reply in zip(commands, replies)]

    def unexpected(self, commands: Sequence[int], replies: Iterable[Any], start: int = 0) -> list[int]:
        """The positions in ``replies`` whose code ``commands`` does not
        allow, pairing ``replies[i]`` with ``commands[start + i]`` (a running
        command log and the replies of one read).  Empty when all is well."""
        _common.check_start(start)
        replies = list(replies)
        _common.check_unexpected_lengths(len(replies), start, len(commands))
        return [
            i
            for i, reply in enumerate(replies)
            if not self.allows(commands[start + i], _reply_code(reply))
        ]


def _reply_code(reply: Any) -> Any:
    """The code of a reply given as a Reply (of either implementation) or an int."""
    if isinstance(reply, int):
        return reply
    try:
        return reply.code
    except AttributeError:
        raise _common.reply_type_error(reply) from None

