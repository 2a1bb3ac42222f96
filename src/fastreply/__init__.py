"""fastreply: SMTP server replies parsed at wire speed.

>>> from fastreply import ReplyParser
>>> parser = ReplyParser()
>>> parser.feed(b"250-mx.example.org\\r\\n250 PIPELINING\\r\\n")
[Reply(250, (b'mx.example.org', b'PIPELINING'))]
"""

from __future__ import annotations

from ._parser import IMPLEMENTATION, Reply, ReplyParser
from .errors import (
    IncompleteReply,
    InconsistentReply,
    LineTooLong,
    MalformedReply,
    ReplyError,
    TooManyLines,
)

__version__ = "0.1.0"

__all__ = [
    "IMPLEMENTATION",
    "Reply",
    "ReplyParser",
    "ReplyError",
    "MalformedReply",
    "LineTooLong",
    "TooManyLines",
    "InconsistentReply",
    "IncompleteReply",
    "__version__",
]
