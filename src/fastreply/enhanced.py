"""Enhanced mail system status codes (RFC 3463, RFC 2034) and their registry.

A server that offers ``ENHANCEDSTATUSCODES`` starts the text of its replies
with a status code such as ``5.1.1``: *class* ``.`` *subject* ``.`` *detail*.
The class says how it went (2 success, 4 transient failure, 5 permanent
failure), the subject what it is about (1 addressing, 7 security or policy,
...), the detail exactly what happened.

>>> from fastreply import ReplyParser
>>> (reply,) = ReplyParser().feed(b"550 5.1.1 <bob@example.org>: User unknown\\r\\n")
>>> status = reply.enhanced
>>> status
EnhancedStatus(5, 1, 1, reply_code=550)
>>> str(status), status.class_, status.subject, status.detail
('5.1.1', 5, 1, 1)
>>> status.title
'Bad destination mailbox address'
>>> status.matches_code
True

What is read as a status code (``parse_enhanced``):

* it must be at the very start of the text (the first line of a reply: what
  follows the reply code and its separator);
* ``class "." subject "." detail``, where the class is ``2``, ``4`` or ``5``
  and the subject and detail have one to three digits without leading zeros
  (``0`` itself is fine, ``01`` and ``1000`` are not), with nothing inside;
* it must be followed by the end of the text or by white space.  RFC 2034
  asks for a space; a tab (a text character in RFC 5321) is taken as well, and
  so are CR and LF, so that the multiline message ``smtplib`` returns can be
  passed as it is.  Anything else (``5.1.1x``, ``5.1.1:``, ``5.1.1.2``) means
  the text does not start with a status code;
* a class that disagrees with the reply code's first digit (``454 5.5.1``,
  which real servers send) is still returned, flagged by
  :attr:`EnhancedStatus.matches_code` being False: the reply code decides
  what happened (RFC 5321 section 4.2), the status code only refines it.

The texts come from the IANA "SMTP Enhanced Status Codes" registry, shipped
with the package and read the first time one is asked for.  The registry lists
each code once for every class, in the form ``X.1.1``; :func:`lookup` and
:func:`describe` take that form as well as ``5.1.1``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

__all__ = [
    "EnhancedStatus",
    "RegistryEntry",
    "parse_enhanced",
    "lookup",
    "describe",
    "registry",
    "class_title",
    "subject_title",
]

# class "." subject "." detail, then white space or the end of the text.
_NUMBER = "(0|[1-9][0-9]{0,2})"
_AT_START_STR = re.compile(r"([245])\.%s\.%s(?:[ \t\r\n]|\Z)" % (_NUMBER, _NUMBER))
_AT_START_BYTES = re.compile(_AT_START_STR.pattern.encode("ascii"))
# A whole status code, or a registry code with an "X" class (for lookups).
_WHOLE = re.compile(r"([245])\.%s\.%s\Z" % (_NUMBER, _NUMBER))
_REGISTRY_FORM = re.compile(r"([245Xx])\.%s\.%s\Z" % (_NUMBER, _NUMBER))

_CLASSES = (2, 4, 5)


class RegistryEntry(NamedTuple):
    """One code of the IANA "SMTP Enhanced Status Codes" registry."""

    #: The code in the registry's form, any class: ``"X.1.1"``.
    code: str
    #: The registry's sample text: ``"Bad destination mailbox address"``
    #: (empty for the deprecated ``X.6.10``).
    title: str
    #: The registry's description of when the code is used.
    description: str
    #: Where it is defined: ``"RFC 3463"``.
    reference: str
    #: The reply codes the registry associates with it (may be empty).
    reply_codes: tuple[int, ...]
    #: The same association as the registry words it (``"Not given"``, ``"5XX"``...).
    reply_codes_text: str


class _Registry(NamedTuple):
    entries: Mapping[str, RegistryEntry]  # by "X.subject.detail"
    by_numbers: dict[tuple[int, int], RegistryEntry]  # by (subject, detail)
    classes: dict[int, str]
    subjects: dict[int, str]


@functools.lru_cache(maxsize=None)
def _registry() -> _Registry:
    """The registry, read from the package data once, when first needed."""
    path = resources.files("fastreply") / "data" / "enhanced_status.json"
    text = path.read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    entries: dict[str, RegistryEntry] = {}
    by_numbers: dict[tuple[int, int], RegistryEntry] = {}
    for item in data["codes"]:
        entry = RegistryEntry(
            code=item["code"],
            title=item["title"],
            description=item["description"],
            reference=item["reference"],
            reply_codes=tuple(item["reply_codes"]),
            reply_codes_text=item["reply_codes_text"],
        )
        _, subject, detail = entry.code.split(".")
        entries[entry.code] = entry
        by_numbers[int(subject), int(detail)] = entry
    return _Registry(
        entries=MappingProxyType(entries),
        by_numbers=by_numbers,
        classes={int(key): value for key, value in data["classes"].items()},
        subjects={int(key): value for key, value in data["subjects"].items()},
    )


@dataclass(frozen=True, order=True, repr=False)
class EnhancedStatus:
    """An RFC 3463 status code such as ``5.1.1``, and the reply code it came with.

    ``reply.enhanced`` gives one; ``EnhancedStatus(5, 1, 1)`` or
    ``EnhancedStatus.from_string("5.1.1")`` make one by hand.  Instances are
    immutable and hashable; two are equal when class, subject and detail are
    (the reply code is not compared), and they sort in that order too.
    ``str()`` gives the dotted form.

    Args:
        class_: 2 (success), 4 (persistent transient failure) or 5 (permanent
            failure).
        subject: 0-999.
        detail: 0-999.
        reply_code: the reply code the status came with, if any.
    """

    #: 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    class_: int
    #: What the status is about: 1 addressing, 2 mailbox, 3 mail system,
    #: 4 network and routing, 5 mail delivery protocol, 6 message content,
    #: 7 security or policy (0 other).
    subject: int
    #: The precise condition, within the subject.
    detail: int
    #: The reply code the status came with (None when made without one).
    reply_code: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if _not_int(self.class_) or self.class_ not in _CLASSES:
            raise ValueError(f"status class must be 2, 4 or 5, got {self.class_!r}")
        for name, value in (("subject", self.subject), ("detail", self.detail)):
            if _not_int(value) or not 0 <= value <= 999:
                raise ValueError(f"status {name} must be an int 0-999, got {value!r}")
        if self.reply_code is not None and _not_int(self.reply_code):
            raise TypeError(
                f"reply_code must be an int or None, not {type(self.reply_code).__name__}"
            )

    @classmethod
    def from_string(
        cls, text: str | bytes, reply_code: int | None = None
    ) -> EnhancedStatus:
        """The status code written as ``text`` (``"5.1.1"``), nothing else
        around it; raise :class:`ValueError` if it is not one."""
        string = text.decode("ascii", "replace") if isinstance(text, bytes) else text
        match = _WHOLE.match(string) if isinstance(string, str) else None
        if match is None:
            raise ValueError(f"not an RFC 3463 status code: {text!r}")
        class_, subject, detail = match.groups()
        return cls(int(class_), int(subject), int(detail), reply_code)

    @property
    def matches_code(self) -> bool:
        """False when the class disagrees with the first digit of the reply
        code (``454 5.5.1``), which RFC 2034 forbids but servers do send.
        True when they agree, or when there is no reply code."""
        code = self.reply_code
        return code is None or code // 100 == self.class_

    def as_tuple(self) -> tuple[int, int, int]:
        """``(class, subject, detail)``."""
        return (self.class_, self.subject, self.detail)

    # -- the registry -----------------------------------------------------

    @property
    def registry_code(self) -> str:
        """The code in the registry's form, any class: ``"X.1.1"``."""
        return f"X.{self.subject}.{self.detail}"

    @property
    def entry(self) -> RegistryEntry | None:
        """The registry's entry for ``X.subject.detail``; None when unregistered."""
        return _registry().by_numbers.get((self.subject, self.detail))

    @property
    def title(self) -> str | None:
        """The registry's short text (``"Bad destination mailbox address"``);
        None when the code is not registered or has no text."""
        entry = self.entry
        return (entry.title or None) if entry is not None else None

    @property
    def description(self) -> str | None:
        """The registry's description; None when the code is not registered."""
        entry = self.entry
        return entry.description if entry is not None else None

    @property
    def class_title(self) -> str:
        """What the class means: ``"Permanent Failure"`` for 5."""
        return _registry().classes[self.class_]

    @property
    def subject_title(self) -> str | None:
        """What the subject means (``"Addressing Status"`` for 1); None for a
        subject the registry does not define."""
        return _registry().subjects.get(self.subject)

    # -- value behaviour --------------------------------------------------

    def __str__(self) -> str:
        return f"{self.class_}.{self.subject}.{self.detail}"

    def __repr__(self) -> str:
        code = "" if self.reply_code is None else f", reply_code={self.reply_code}"
        return f"EnhancedStatus({self.class_}, {self.subject}, {self.detail}{code})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (EnhancedStatus, (self.class_, self.subject, self.detail, self.reply_code))


def _not_int(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


def parse_enhanced(
    code: int, text: bytes | bytearray | memoryview | str
) -> EnhancedStatus | None:
    """The status code at the start of ``text``, or None if it has none.

    ``code`` is the reply code and ``text`` the reply's text (its first line
    is enough: ``Reply.enhanced`` passes ``reply.lines[0]``).  A class that
    disagrees with the code's first digit is returned all the same, with
    :attr:`EnhancedStatus.matches_code` False.  See the module documentation
    for exactly what is accepted.

    >>> parse_enhanced(250, b"2.1.5 Recipient ok")
    EnhancedStatus(2, 1, 5, reply_code=250)
    >>> parse_enhanced(550, b"5.1.01 no leading zeros") is None
    True
    """
    match: re.Match[str] | re.Match[bytes] | None
    if isinstance(text, str):
        match = _AT_START_STR.match(text)
    else:
        match = _AT_START_BYTES.match(text)
    if match is None:
        return None
    class_, subject, detail = match.groups()
    return EnhancedStatus(int(class_), int(subject), int(detail), code)


def _registry_key(code: str | bytes | EnhancedStatus) -> tuple[int, int]:
    if isinstance(code, EnhancedStatus):
        return (code.subject, code.detail)
    if isinstance(code, (bytes, bytearray, memoryview)):
        string = bytes(code).decode("ascii", "replace")
    elif isinstance(code, str):
        string = code
    else:
        raise TypeError(
            f"a status code must be a str, bytes or EnhancedStatus, not {type(code).__name__}"
        )
    match = _REGISTRY_FORM.match(string)
    if match is None:
        raise ValueError(f"not an RFC 3463 status code (or X.subject.detail): {code!r}")
    return (int(match.group(2)), int(match.group(3)))


def lookup(code: str | bytes | EnhancedStatus) -> RegistryEntry | None:
    """The registry entry for a status code: ``"5.1.1"``, ``"X.1.1"`` or an
    :class:`EnhancedStatus`; None when it is not registered.  The class does
    not matter (the registry lists each code for all classes).  Raise
    :class:`ValueError` when ``code`` is a string that is not a status code,
    :class:`TypeError` when it is no string at all (``None``, an int).

    >>> lookup("4.7.1").title
    'Delivery not authorized, message refused'
    >>> lookup("X.7.1") == lookup("5.7.1")
    True
    """
    return _registry().by_numbers.get(_registry_key(code))


def describe(code: str | bytes | EnhancedStatus) -> str | None:
    """The registry's description of a status code (as :func:`lookup` takes
    it); None when it is not registered.

    >>> describe("5.2.2")
    'The mailbox is full because the user has exceeded a per-mailbox administrative quota or physical capacity. The general semantics implies that the recipient can delete messages to make more space available. This code should be used as a persistent transient failure.'
    """
    entry = lookup(code)
    return entry.description if entry is not None else None


def class_title(class_: int) -> str | None:
    """What a status class means (``"Permanent Failure"`` for 5); None for
    a number that is not a class."""
    return _registry().classes.get(class_)


def subject_title(subject: int) -> str | None:
    """What a status subject means (``"Addressing Status"`` for 1); None for
    a subject the registry does not define."""
    return _registry().subjects.get(subject)


def registry() -> Mapping[str, RegistryEntry]:
    """Every registered code, by its registry form (``"X.1.1"``), in registry
    order (read-only)."""
    return _registry().entries
