"""fastreply: SMTP server replies parsed at wire speed.

>>> from fastreply import ReplyParser
>>> parser = ReplyParser()
>>> parser.feed(b"250-mx.example.org\\r\\n250 PIPELINING\\r\\n")
[Reply(250, (b'mx.example.org', b'PIPELINING'))]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .classification import Classification, Classifier, classify

#: Names imported from fastreply.classification when first used (building the
#: default classifier takes a few milliseconds: ``import fastreply`` stays cheap).
_LAZY = {"classify", "Classification", "Classifier"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import classification

        value = getattr(classification, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastreply' has no attribute {name!r}")


__all__ = [
    "IMPLEMENTATION",
    "classify",
    "Classification",
    "Classifier",
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
