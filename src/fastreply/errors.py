"""The exceptions raised by fastreply, shared by both parser implementations.

Every error raised while parsing is a :class:`ReplyError` (itself a
:class:`ValueError`), so ``except ReplyError`` catches them all whichever
implementation (compiled or pure Python) is running.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = [
    "ReplyError",
    "MalformedReply",
    "LineTooLong",
    "TooManyLines",
    "InconsistentReply",
    "IncompleteReply",
    "LINE_PREVIEW",
]

#: How many bytes of the offending line an error keeps (for logs).
LINE_PREVIEW = 80


class ReplyError(ValueError):
    """A reply stream could not be parsed.

    Attributes:
        reason: what was wrong, in words.
        offset: byte offset in the stream (counted from the first byte ever fed,
            or from the last ``reset()``) of the start of the offending line.
        line: the offending line as received, cut to ``LINE_PREVIEW`` bytes.
        replies: the replies completed by the same ``feed()`` call before the
            error was found; they are not lost.
    """

    def __init__(
        self,
        reason: str,
        *,
        offset: int,
        line: bytes = b"",
        replies: Sequence[Any] = (),
    ) -> None:
        self.reason = reason
        self.offset = offset
        self.line = bytes(line[:LINE_PREVIEW])
        self.truncated = len(line) > LINE_PREVIEW
        self.replies: list[Any] = list(replies)
        super().__init__(reason, offset, self.line)

    def __str__(self) -> str:
        shown = repr(self.line) + ("..." if self.truncated else "")
        return f"{self.reason} at offset {self.offset}: {shown}"

    def __reduce__(self) -> tuple[Any, ...]:
        # The attributes too (``truncated``, notes): a copy says what the
        # original said.
        return (
            _rebuild,
            (type(self), self.reason, self.offset, self.line, self.replies),
            dict(self.__dict__),
        )


def _rebuild(
    cls: type[ReplyError], reason: str, offset: int, line: bytes, replies: list[Any]
) -> ReplyError:
    return cls(reason, offset=offset, line=line, replies=replies)


class MalformedReply(ReplyError):
    """A line is not ``DDD``, ``DDD-text``, ``DDD text`` (``D`` a digit) plus
    its line end, or breaks a strict-mode rule (code range, bare LF)."""


class LineTooLong(ReplyError):
    """A line (counted with its line end) is longer than ``max_line_length``."""


class TooManyLines(ReplyError):
    """A reply has more lines than ``max_reply_lines``."""


class InconsistentReply(ReplyError):
    """Strict mode: a line of a multiline reply has another code than the first."""


class IncompleteReply(ReplyError):
    """The stream ended (``close()``) in the middle of a reply."""
