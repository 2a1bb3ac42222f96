"""What a server says it can do: the reply to EHLO (RFC 5321 section 4.1.1.1).

>>> from fastreply import ReplyParser
>>> from fastreply.ehlo import parse_ehlo
>>> (reply,) = ReplyParser().feed(
...     b"250-mx.example.org Hello client.example.com [192.0.2.1]\\r\\n"
...     b"250-SIZE 35882577\\r\\n"
...     b"250-8BITMIME\\r\\n"
...     b"250-AUTH PLAIN LOGIN\\r\\n"
...     b"250 PIPELINING\\r\\n"
... )
>>> info = parse_ehlo(reply)
>>> info.domain, info.greeting
('mx.example.org', 'Hello client.example.com [192.0.2.1]')
>>> dict(info.extensions)
{'SIZE': '35882577', '8BITMIME': '', 'AUTH': 'PLAIN LOGIN', 'PIPELINING': ''}
>>> info.size, info.auth_mechanisms, info.pipelining, info.starttls
(35882577, ('PLAIN', 'LOGIN'), True, False)
>>> info.esmtp_features   # what smtplib.SMTP.ehlo() would have stored
{'size': '35882577', '8bitmime': '', 'auth': ' PLAIN LOGIN', 'pipelining': ''}

How the reply is read (:attr:`EhloInfo.extensions`):

* the first line is the server's domain (its first word) and an optional
  greeting (the rest); every further line is one extension: a keyword, then
  its parameters after white space;
* white space is ASCII white space: a space as RFC 5321 asks, or a tab, CR,
  VT or FF (bytes such as a Latin-1 no-break space are text);
* keywords are upper-cased (ASCII letters only); parameters are kept as sent,
  minus white space at either end; empty lines are skipped;
* the same keyword twice: the last line wins, as in ``smtplib``, except AUTH;
* AUTH: the mechanisms of every ``AUTH`` line and of the old-style
  ``AUTH=LOGIN PLAIN`` lines some servers add for old clients are joined into
  the one ``AUTH`` entry, each mechanism once, in the order first seen;
* text is decoded as UTF-8, undecodable bytes kept as surrogate escapes (as
  :attr:`Reply.message <fastreply.Reply.message>` does).

:attr:`EhloInfo.esmtp_features` is another view of the same reply: the
dictionary ``smtplib.SMTP.ehlo()`` builds, with smtplib's own rules (lower-case
keys, Latin-1 text, its keyword pattern, and the AUTH parameters of all lines
concatenated, each after a space), so it can be handed to code that expects
``SMTP.esmtp_features``.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Protocol, TypeAlias, Union

from ._common import check_reply_args

__all__ = ["EhloInfo", "parse_ehlo"]


class _ReplyLike(Protocol):
    """What :func:`parse_ehlo` needs of a reply (both implementations' Reply)."""

    @property
    def code(self) -> int: ...

    @property
    def lines(self) -> tuple[bytes, ...]: ...


#: What :func:`parse_ehlo` takes: a Reply, smtplib's ``(code, message)``, or
#: the reply as received.
EhloReply: TypeAlias = Union[_ReplyLike, tuple[int, bytes], bytes, bytearray, memoryview]

# Our reading: ASCII white space (SP, HT, CR, VT, FF) separates words.
_FIRST_LINE = re.compile(rb"(\S*)\s*(.*)\Z", re.DOTALL)  # on the stripped line
_EXTENSION_LINE = re.compile(rb"(\S+)(?:\s+(.*))?\Z", re.DOTALL)  # on the stripped line
_BLANKS = re.compile(r"[ \t\r\x0b\x0c]+")
_DIGITS = re.compile(r"[0-9]+\Z")
_SMTPLIB_TRIM = b" \t\r\n"  # what smtplib's getreply() strips from each line

# smtplib.SMTP.ehlo()'s patterns, to build exactly its esmtp_features.
_OLDSTYLE_AUTH = re.compile(r"auth=(.*)", re.I)
_SMTPLIB_FEATURE = re.compile(r"(?P<feature>[A-Za-z0-9][A-Za-z0-9\-]*) ?")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


class EhloInfo:
    """The capabilities a server announced in its reply to EHLO (or LHLO).

    Made by :func:`parse_ehlo`; ``EhloInfo(lines)`` makes one from the text of
    the lines of a successful (250) reply.  Immutable; two are equal when
    their lines are.
    """

    __slots__ = ("_lines", "_domain", "_greeting", "_extensions")

    _lines: tuple[bytes, ...]
    _domain: str
    _greeting: str
    _extensions: Mapping[str, str]

    def __init__(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        # The checks of Reply(250, lines): bytes-like lines, no line feed, at least one.
        self._lines = check_reply_args(250, lines)[1]
        first = _FIRST_LINE.match(self._lines[0].strip())
        assert first is not None  # the pattern matches any line
        self._domain = _decode(first.group(1))
        self._greeting = _decode(first.group(2))
        self._extensions = MappingProxyType(_read_extensions(self._lines[1:]))

    # -- what the reply says ----------------------------------------------

    @property
    def lines(self) -> tuple[bytes, ...]:
        """The text of each line of the reply, as given."""
        return self._lines

    @property
    def domain(self) -> str:
        """The server's name for itself: the first word of the first line
        (an address literal such as ``[192.0.2.1]`` is possible; ``""`` if the
        line is empty)."""
        return self._domain

    @property
    def greeting(self) -> str:
        """The rest of the first line (``""`` when there is none)."""
        return self._greeting

    @property
    def extensions(self) -> Mapping[str, str]:
        """Extension keyword (upper case) to its parameters (``""`` when it
        has none), in the order announced; read-only."""
        return self._extensions

    @property
    def esmtp_features(self) -> dict[str, str]:
        """The dictionary ``smtplib.SMTP.ehlo()`` builds from this reply in
        ``SMTP.esmtp_features``, exactly (a new dict on each access)."""
        return _smtplib_features(self._lines[1:])

    def supports(self, keyword: str) -> bool:
        """Whether the server announced the extension ``keyword`` (any case)."""
        return keyword.upper() in self._extensions

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and self.supports(keyword)

    # -- typed helpers ----------------------------------------------------

    @property
    def size(self) -> int | None:
        """The SIZE extension (RFC 1870): None when it is not announced;
        otherwise the largest message accepted, in octets, 0 meaning no fixed
        maximum, which is what a SIZE without a number (or with 0) says.
        A parameter that is not a number is read as no stated maximum (0)."""
        params = self._extensions.get("SIZE")
        if params is None:
            return None
        words = _BLANKS.split(params, 1)
        if not _DIGITS.match(words[0]):
            return 0
        try:
            return int(words[0].lstrip("0") or "0")
        except ValueError:  # more digits than int() converts: no usable limit
            return 0

    @property
    def auth_mechanisms(self) -> tuple[str, ...]:
        """The SASL mechanisms of AUTH (RFC 4954), upper case, in the server's
        order, each once; old-style ``AUTH=`` lines count too.  Empty when
        AUTH is not announced."""
        params = self._extensions.get("AUTH")
        if not params:
            return ()
        return tuple(dict.fromkeys(_ascii_upper(word) for word in _BLANKS.split(params) if word))

    @property
    def pipelining(self) -> bool:
        """PIPELINING (RFC 2920): commands may be sent in groups."""
        return "PIPELINING" in self._extensions

    @property
    def eightbitmime(self) -> bool:
        """8BITMIME (RFC 6152): ``BODY=8BITMIME`` is accepted."""
        return "8BITMIME" in self._extensions

    @property
    def smtputf8(self) -> bool:
        """SMTPUTF8 (RFC 6531): UTF-8 addresses and headers are accepted."""
        return "SMTPUTF8" in self._extensions

    @property
    def chunking(self) -> bool:
        """CHUNKING (RFC 3030): BDAT may be used instead of DATA."""
        return "CHUNKING" in self._extensions

    @property
    def binarymime(self) -> bool:
        """BINARYMIME (RFC 3030): ``BODY=BINARYMIME`` is accepted (with BDAT)."""
        return "BINARYMIME" in self._extensions

    @property
    def starttls(self) -> bool:
        """STARTTLS (RFC 3207): the connection can be upgraded to TLS."""
        return "STARTTLS" in self._extensions

    @property
    def dsn(self) -> bool:
        """DSN (RFC 3461): delivery status notifications can be requested."""
        return "DSN" in self._extensions

    @property
    def enhancedstatuscodes(self) -> bool:
        """ENHANCEDSTATUSCODES (RFC 2034): replies start with an RFC 3463
        status code (see :attr:`Reply.enhanced <fastreply.Reply.enhanced>`)."""
        return "ENHANCEDSTATUSCODES" in self._extensions

    # -- value behaviour --------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EhloInfo):
            return NotImplemented
        return self._lines == other._lines

    def __hash__(self) -> int:
        return hash(self._lines)

    def __repr__(self) -> str:
        return (
            f"EhloInfo(domain={self._domain!r}, greeting={self._greeting!r}, "
            f"extensions={dict(self._extensions)!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (EhloInfo, (self._lines,))


def _ascii_upper(text: str) -> str:
    """``text`` (decoded by :func:`_decode`) with ASCII letters upper-cased
    and nothing else changed (``str.upper()`` would turn ``"ß"`` into ``"SS"``)."""
    if text.isascii():
        return text.upper()
    return _decode(text.encode("utf-8", "surrogateescape").upper())


def _read_extensions(lines: Iterable[bytes]) -> dict[str, str]:
    extensions: dict[str, str] = {}
    mechanisms: dict[str, str] = {}  # upper case -> as first seen
    for line in lines:
        match = _EXTENSION_LINE.match(line.strip())
        if match is None:
            continue  # a blank line
        keyword = match.group(1).upper()  # bytes.upper(): ASCII only
        params = match.group(2) or b""
        if keyword.startswith(b"AUTH="):
            # Old style: "AUTH=LOGIN PLAIN", mechanisms after the "=".
            params = match.group(0)[5:]  # (split into words below)
            keyword = b"AUTH"
        name = _decode(keyword)
        if name == "AUTH":
            for word in _BLANKS.split(_decode(params)):
                if word:
                    mechanisms.setdefault(_ascii_upper(word), word)
            extensions[name] = " ".join(mechanisms.values())
        else:
            extensions[name] = _decode(params)  # the last one wins
    return extensions


def _smtplib_features(lines: Iterable[bytes]) -> dict[str, str]:
    """``SMTP.esmtp_features`` as ``smtplib.SMTP.ehlo()`` fills it from a 250
    reply whose lines after the first are ``lines``, following its code step
    by step: each line stripped of SP, HT, CR and LF as ``getreply()`` does,
    decoded as Latin-1, then its old-style AUTH pattern and keyword pattern."""
    features: dict[str, str] = {}
    for line in lines:
        each = line.strip(_SMTPLIB_TRIM).decode("latin-1")
        auth = _OLDSTYLE_AUTH.match(each)
        if auth is not None:
            features["auth"] = features.get("auth", "") + " " + auth.group(1)
            continue
        match = _SMTPLIB_FEATURE.match(each)
        if match is not None:
            feature = match.group("feature").lower()
            params = each[match.end("feature") :].strip()
            if feature == "auth":
                features[feature] = features.get(feature, "") + " " + params
            else:
                features[feature] = params
    return features


def parse_ehlo(reply: EhloReply) -> EhloInfo:
    """Read the reply to EHLO (or LHLO): domain, greeting and extensions.

    ``reply`` is a :class:`~fastreply.Reply` (from either implementation), the
    ``(code, message)`` pair ``smtplib`` returns (``smtp.ehlo()``,
    ``smtp.getreply()``), or the reply as received (bytes holding exactly one
    complete reply).  Only a 250 reply announces extensions; any other code
    raises :class:`ValueError`, as does bytes input that is not exactly one
    reply (the parser's :class:`~fastreply.ReplyError` is a ValueError too).

    >>> parse_ehlo((250, b"mx.example.org\\nSTARTTLS")).starttls
    True
    >>> parse_ehlo(b"250 mx.example.org\\r\\n").extensions
    mappingproxy({})
    """
    if isinstance(reply, tuple):
        code, message = reply
        if not isinstance(message, bytes):
            raise TypeError(
                f"the message of a (code, message) pair must be bytes, "
                f"not {type(message).__name__}"
            )
        lines: tuple[bytes, ...] = tuple(message.split(b"\n"))
    elif isinstance(reply, (bytes, bytearray, memoryview)):
        from ._parser import ReplyParser

        parser = ReplyParser()
        replies = parser.feed(reply)
        parser.close()
        if len(replies) != 1:
            raise ValueError(f"expected one EHLO reply, got {len(replies)} replies")
        code, lines = replies[0].code, replies[0].lines
    else:
        code, lines = reply.code, reply.lines
    if code != 250:
        raise ValueError(f"EHLO was not accepted: the reply code is {code}, not 250")
    return EhloInfo(lines)
