"""Type stub for the compiled classifier matcher ``fastreply._classify_c``
(``_classify_c.pyx``): the same surface as the pure-Python reference
``fastreply._classify_py``."""

from typing import Any, final

from .classification import Classification

__all__ = ["Matcher", "classify"]

@final
class Matcher:
    """The classifier's tables in C arrays, and the function that reads them."""

    def __init__(self, tables: Any) -> None: ...
    def classify(self, reply: Any, command: Any = None, provider: Any = None) -> Classification:
        """Classify one reply."""

def _set_default(matcher: Matcher) -> None:
    """The matcher :func:`classify` uses (set once)."""

def classify(reply: Any, command: Any = None, *, provider: str | None = None) -> Classification:
    """What ``reply`` means for the sender (see :func:`fastreply.classify`)."""
