"""Selects the parser implementation.

The compiled module ``fastreply._parser_c`` is used whenever it can be: on
CPython unless ``FASTREPLY_NO_EXTENSIONS`` is set.  If it is expected but
cannot be imported, the import error propagates: a silently slower package
is a bug, not a feature.  Both implementations stay importable under their
own names (``ReplyParserPy``/``ReplyParserC``) for tests and benchmarks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _parser_py
from ._compat import NO_EXTENSIONS

ReplyPy = _parser_py.Reply
ReplyParserPy = _parser_py.ReplyParser

if TYPE_CHECKING or NO_EXTENSIONS:
    from ._parser_py import CodeMasks, Reply, ReplyParser

    ReplyC: Any = None
    ReplyParserC: Any = None
    IMPLEMENTATION = "python"
else:
    from . import _parser_c
    from ._parser_c import CodeMasks, Reply, ReplyParser

    ReplyC = _parser_c.Reply
    ReplyParserC = _parser_c.ReplyParser
    IMPLEMENTATION = "cython"
    _types = (ReplyC, ReplyPy)
    _parser_py._set_reply_types(_types)
    _parser_c._set_reply_types(_types)


def _restore_reply(code: int, lines: tuple[bytes, ...], raw: bytes | None) -> Any:
    """Unpickle a reply with whichever implementation is active here."""
    return Reply._from_wire(code, lines, raw) if raw is not None else Reply(code, lines)


__all__ = [
    "IMPLEMENTATION",
    "CodeMasks",
    "Reply",
    "ReplyParser",
    "ReplyPy",
    "ReplyParserPy",
    "ReplyC",
    "ReplyParserC",
]
