"""Selects the parser implementation.

The compiled module ``fastreply._parser_c`` is used whenever it can be: on
CPython unless ``FASTREPLY_NO_EXTENSIONS`` is set.  If it is expected but
cannot be imported, the import error propagates: a silently slower package
is a bug, not a feature.  Both implementations stay importable under their
own names (``ReplyParserPy``/``ReplyParserC``) for tests and benchmarks.

The twins never import each other: what they share is in ``_common``, where
each registers its ``Reply`` class (so that replies of both compare equal)
and where this module names the one in use (pickled replies come back as
that class).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from . import _common, _parser_py
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

_common.use_reply_type(Reply)

#: What the ``parser`` argument of the I/O layers takes (``fastreply.smtplib``,
#: ``fastreply.aio``, ``fastreply.tracker``): a class or any callable that
#: returns a :class:`ReplyParser`, called with the keyword limits the layer
#: needs (none, or ``max_line_length=...``).  ``ReplyParser`` itself, say,
#: or ``functools.partial(ReplyParser, strict=True)``.
ParserFactory = Callable[..., ReplyParser]

__all__ = [
    "IMPLEMENTATION",
    "CodeMasks",
    "ParserFactory",
    "Reply",
    "ReplyParser",
    "ReplyPy",
    "ReplyParserPy",
    "ReplyC",
    "ReplyParserC",
]
