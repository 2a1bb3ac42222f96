"""Type stub for the compiled module ``fastreply._parser_c`` (``_parser_c.pyx``).

Hand-written: it declares the same public surface as the pure-Python reference
``fastreply._parser_py`` (``Reply``, ``ReplyParser``, ``CodeMasks`` and the
default limits).  ``python -m mypy.stubtest fastreply._parser_c`` holds it
against a compiled build (``ci/dist_check.sh``; justified exceptions live in
``ci/stubtest-allowlist.txt``), and ``tests/test_typing_and_build.py`` checks
that it names every public member of the reference classes.

Both classes are ``cython.final`` in the extension (they cannot be
subclassed at run time), hence ``@final`` here; the pure-Python ones can be
subclassed, the one difference between the twins that is kept.
"""

from typing import Any, Final, Iterable, Sequence, final

from typing_extensions import disjoint_base

from .classification import Classification
from .enhanced import EnhancedStatus

__all__ = ["Reply", "ReplyParser", "CodeMasks", "DEFAULT_MAX_LINE_LENGTH", "DEFAULT_MAX_REPLY_LINES"]

#: Longest accepted line, counted with its line end (smtplib's ``_MAXLINE``).
DEFAULT_MAX_LINE_LENGTH: Final = 8192
#: Most lines accepted in one reply.
DEFAULT_MAX_REPLY_LINES: Final = 1000

@final
class Reply:
    """One complete SMTP reply: a code and its lines of text."""

    def __init__(self, code: int, lines: Iterable[bytes]) -> None: ...
    @classmethod
    def _from_wire(cls, code: int, lines: tuple[bytes, ...] | None, raw: bytes) -> Reply: ...
    @property
    def code(self) -> int:
        """The three-digit reply code (of the last line, when lines differ)."""
    @property
    def lines(self) -> tuple[bytes, ...]:
        """The text of each line, without code, separator and line end."""
    @property
    def raw(self) -> bytes:
        """The reply exactly as received (``to_bytes()`` for hand-made replies)."""
    @property
    def text(self) -> bytes:
        """The lines joined by ``b"\\n"``: the message ``smtplib`` returns."""
    @property
    def message(self) -> str:
        """:attr:`text` decoded as UTF-8 with surrogate escapes."""
    @property
    def is_multiline(self) -> bool: ...
    @property
    def is_preliminary(self) -> bool: ...
    @property
    def is_positive(self) -> bool: ...
    @property
    def is_intermediate(self) -> bool: ...
    @property
    def is_transient(self) -> bool: ...
    @property
    def is_permanent(self) -> bool: ...
    @property
    def enhanced(self) -> EnhancedStatus | None:
        """The RFC 3463 enhanced status code at the start of the text, if any."""
    def classify(self, command: Any = None, *, provider: str | None = None) -> Classification:
        """What this reply means for the sender (``fastreply.classify``)."""
    def to_bytes(self) -> bytes:
        """The reply in canonical wire form."""
    def _smtplib_pair(self) -> tuple[int, bytes]:
        """``(code, message)`` as ``smtplib.SMTP.getreply()`` returns this reply."""
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

@final
class ReplyParser:
    """Sans-IO streaming parser of SMTP replies."""

    def __init__(
        self,
        *,
        max_line_length: int = 8192,
        max_reply_lines: int = 1000,
        strict: bool = False,
    ) -> None: ...
    @property
    def max_line_length(self) -> int: ...
    @property
    def max_reply_lines(self) -> int: ...
    @property
    def strict(self) -> bool: ...
    @property
    def buffered(self) -> int:
        """How many bytes are held, waiting for the rest of a reply."""
    @property
    def offset(self) -> int:
        """Stream offset of the next byte to be fed (bytes fed since reset)."""
    def reset(self) -> None:
        """Forget everything: buffered bytes, offsets and any error."""
    def feed(self, data: bytes | bytearray | memoryview) -> list[Reply]:
        """Parse ``data`` and return the replies it completed, in order."""
    def feed_codes(self, data: bytes | bytearray | memoryview) -> list[int]:
        """Like :meth:`feed`, but return only the code of each completed reply."""
    def feed_checked(
        self,
        data: bytes | bytearray | memoryview,
        table: CodeMasks,
        commands: Sequence[int],
        start: int = 0,
    ) -> tuple[list[Reply], list[int]]:
        """Like :meth:`feed`, and return the positions of the replies whose
        code their command in ``commands[start:]`` does not allow."""
    def close(self) -> None:
        """Declare the end of the stream; raise ``IncompleteReply`` if a reply
        was cut short."""
    def __reduce__(self) -> Any:
        """Raises ``TypeError``: a parser cannot be pickled or copied."""
    def __copy__(self) -> Any: ...
    def __deepcopy__(self, memo: Any) -> Any: ...

#: Codes a mask can hold: bit ``code`` for every code 0 to 999.
MASK_CODES: Final = 1000

@disjoint_base
class CodeMasks:
    """The command x code bitmask engine under ``fastreply.tables.ReplyTable``."""

    def __init__(self) -> None: ...
    def _set_masks(self, masks: Iterable[int]) -> None: ...
    @property
    def masks(self) -> tuple[int, ...]:
        """One int per command, bit ``code`` set for each allowed code."""
    def allows(self, command: int, code: int) -> bool:
        """Whether ``command`` may be answered by ``code``."""
    def check_all(self, commands: Iterable[int], replies: Iterable[Any]) -> list[bool]:
        """:meth:`allows` for each (command, reply) pair, in order."""
    def unexpected(self, commands: Sequence[int], replies: Iterable[Any], start: int = 0) -> list[int]:
        """The positions in ``replies`` whose code ``commands`` does not allow."""
