"""What a reply means for the sender: category, action, scope and retry-after.

:func:`classify` reads a reply (a :class:`~fastreply.Reply` of either
implementation, or the ``(code, message)`` pair ``smtplib`` returns) and the
command it answers, and says what a sender should do next:

>>> from fastreply import ReplyParser, classify
>>> (reply,) = ReplyParser().feed(
...     b"550-5.1.1 The email account that you tried to reach does not exist.\\r\\n"
...     b"550 5.1.1 Please try double-checking the address. x12si34 - gsmtp\\r\\n")
>>> result = classify(reply, "RCPT")
>>> result.category, result.action, result.scope, result.provider
('invalid_recipient', 'suppress', 'recipient', 'google')
>>> result.rule
'invalid-recipient'

A 4xx is not simply "retry": the category and the code decide together, and a
text that names a delay gives ``retry_after`` in seconds:

>>> classify((452, b"4.2.2 The email account that you tried to reach is over quota."), "RCPT")
Classification(category='mailbox_full', action='retry', scope='recipient', retry_after=None, provider=None, rule='mailbox-full')
>>> r = classify((450, b"4.7.1 Too many messages, try again in 15 minutes"), "MAIL")
>>> r.category, r.action, r.retry_after
('rate_limited', 'throttle', 900)
>>> classify((421, b"4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred "
...                b"due to unexpected volume or user complaints")).action
'throttle'

Fields of a :class:`Classification`:

``category``
    one of :data:`CATEGORIES`: ``delivered`` (the step was accepted: 2xx,
    and 3xx steps such as DATA's 354), ``invalid_recipient``,
    ``inactive_recipient``, ``bad_domain``, ``mailbox_full``,
    ``message_too_large``, ``too_many_recipients``, ``rate_limited``,
    ``too_many_connections``, ``greylisted``, ``reputation_block``,
    ``dnsbl_listed``, ``auth_failure`` (SPF, DKIM, DMARC, ARC, and SMTP AUTH
    credentials refused), ``reverse_dns_helo``, ``tls_required``,
    ``spam_content``, ``virus_or_attachment``, ``message_noncompliant``,
    ``policy_rejection``, ``sender_rejected``, ``relay_denied``,
    ``protocol_error``, ``remote_system_error``, ``uncategorized``.
``action``
    one of :data:`ACTIONS`: ``none`` (success), ``retry`` (temporary: try the
    same again later), ``throttle`` (slow down for this destination, then
    retry), ``bounce`` (permanent for this message), ``suppress`` (permanent,
    and the address is dead: stop mailing it).  Decided from the category
    *and* the code (:data:`DEFAULT_ACTIONS`); a rule may override it.
``scope``
    one of :data:`SCOPES`: what the action applies to: ``recipient``,
    ``message``, ``sender``, ``connection`` or ``destination``.  From the
    rule or the category; where those leave it open, from the command (as
    Postfix decides: a refusal at RCPT is about that recipient, at the
    greeting, EHLO or any 421 about the connection, at MAIL, DATA or the end
    of data about the message).
``retry_after``
    seconds, when the text says so ("try again in 5 minutes", "retry in 30
    seconds", "please come back in 00:05:00"), else None.
``provider``
    who answered, when recognised (:data:`PROVIDERS`): from ``provider=``
    (a name or the MX host name) or from the reply itself (``gsmtp`` at the
    end of Google's replies, ``protection.outlook.com`` in Microsoft's,
    ``[TSS04]`` in Yahoo's, ...).
``rule``
    the id of the rule that decided, as written in the rules file (grep for
    it), or ``"default-<class>"`` when no rule matched.

How a reply is read, cheapest evidence first: the reply code and the command
it answers; the enhanced status code at the start of the text (RFC 3463),
with each provider's own meaning where it differs from the IANA registry
(Google's 4.2.1 "receiving mail too fast", Microsoft's 5.4.1 "access denied"
for unknown recipients and its 5.7.500-999 details, Yahoo's 5.7.9); then one
pass over the words of the text for the rules' phrases and the providers'
tokens.  A step the text names (``Must issue a STARTTLS command first``,
``... an AUTH command first``) is stronger evidence than the generic protocol
words around it; where neither the text nor the enhanced code says more, the
reply code itself decides (RFC 5321's 500-504 and 555 are protocol errors,
RFC 4954's 530, 534 and 535 authentication failures, 538 a TLS requirement).
The recipient categories (an unknown, inactive or disabled address) apply
only where a recipient exists: at RCPT, at the data, or when the command is
unknown, never at the greeting, HELO/EHLO, MAIL or AUTH.  Words are compared ASCII-case-insensitively, and any run of
punctuation or white space matches any other, so ``"user unknown"`` matches
``User_unknown`` and ``user  unknown`` alike; a rule's phrase must match
whole words.

Rules are data (:func:`shipped_rules`, ``fastreply/data/classification_rules.json``):
each has an id, conditions (reply codes, commands, enhanced codes, provider,
phrases) and a result (category, optionally scope and action).  Among the
rules whose conditions all hold, the first in the list wins.  Add your own
with :meth:`Classifier.extend` (they come first, so they win; a shipped rule
with the same id is dropped):

>>> from fastreply.classification import Classifier
>>> mine = Classifier().extend([{"id": "acme-quota", "codes": ["5xx"],
...     "phrases": ["acme storage exhausted"], "category": "mailbox_full"}])
>>> mine.classify((554, b"ACME storage exhausted for bob"), "RCPT").rule
'acme-quota'

The hot path runs in the compiled module ``fastreply._classify_c`` (a word
scanner in C over the reply's bytes, rule selection by precomputed tables,
shared preallocated results); ``fastreply._classify_py`` is its pure-Python
twin and reference, selected like the parser (``FASTREPLY_NO_EXTENSIONS``).
Classifiers are immutable once built, so one can serve any number of threads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from ._common import reply_class
from ._compat import NO_EXTENSIONS
from .commands import Command

if TYPE_CHECKING:
    from ._parser import Reply

__all__ = [
    "Classification",
    "Classifier",
    "Rule",
    "classify",
    "shipped_rules",
    "shipped_providers",
    "load_rules",
    "CATEGORIES",
    "ACTIONS",
    "SCOPES",
    "PROVIDERS",
    "DEFAULT_ACTIONS",
    "DEFAULT_SCOPES",
    "IMPLEMENTATION",
]

CATEGORIES: tuple[str, ...] = (
    "delivered",
    "invalid_recipient",
    "inactive_recipient",
    "bad_domain",
    "mailbox_full",
    "message_too_large",
    "too_many_recipients",
    "rate_limited",
    "too_many_connections",
    "greylisted",
    "reputation_block",
    "dnsbl_listed",
    "auth_failure",
    "reverse_dns_helo",
    "tls_required",
    "spam_content",
    "virus_or_attachment",
    "message_noncompliant",
    "policy_rejection",
    "sender_rejected",
    "relay_denied",
    "protocol_error",
    "remote_system_error",
    "uncategorized",
)
"""Every category, in a fixed order."""

ACTIONS: tuple[str, ...] = ("none", "retry", "throttle", "bounce", "suppress")
"""Every action, from the mildest to the most final."""

SCOPES: tuple[str, ...] = ("recipient", "message", "sender", "connection", "destination")
"""Every scope."""

#: Reply classes as the tables index them: 1xx-3xx, 4xx, 5xx, anything else.
_CLASS_NAMES = ("positive", "4xx", "5xx", "other")

DEFAULT_ACTIONS: Mapping[str, tuple[str, str]] = {
    # category: (action for a 4xx, action for a 5xx)
    "delivered": ("retry", "bounce"),
    "invalid_recipient": ("retry", "suppress"),
    "inactive_recipient": ("retry", "suppress"),
    "bad_domain": ("retry", "suppress"),
    "mailbox_full": ("retry", "bounce"),
    "message_too_large": ("retry", "bounce"),
    # RFC 5321 section 4.5.3.1.10: too many recipients is temporary even as a 552.
    "too_many_recipients": ("retry", "retry"),
    "rate_limited": ("throttle", "throttle"),
    "too_many_connections": ("throttle", "throttle"),
    "greylisted": ("retry", "retry"),
    "reputation_block": ("throttle", "bounce"),
    "dnsbl_listed": ("retry", "bounce"),
    "auth_failure": ("retry", "bounce"),
    "reverse_dns_helo": ("retry", "bounce"),
    "tls_required": ("retry", "bounce"),
    "spam_content": ("retry", "bounce"),
    "virus_or_attachment": ("retry", "bounce"),
    "message_noncompliant": ("retry", "bounce"),
    "policy_rejection": ("retry", "bounce"),
    "sender_rejected": ("retry", "bounce"),
    "relay_denied": ("retry", "bounce"),
    "protocol_error": ("retry", "bounce"),
    "remote_system_error": ("retry", "bounce"),
    "uncategorized": ("retry", "bounce"),
}
"""The action of each category for a 4xx and for a 5xx reply.  Positive
replies (1xx-3xx) always get ``none``; a code outside 100-599 (smtplib's -1
for a line it could not read) gets ``retry``."""

DEFAULT_SCOPES: Mapping[str, str | None] = {
    "delivered": None,
    "invalid_recipient": "recipient",
    "inactive_recipient": "recipient",
    "bad_domain": "recipient",
    "mailbox_full": "recipient",
    "message_too_large": "message",
    "too_many_recipients": "message",
    "rate_limited": "destination",
    "too_many_connections": "destination",
    "greylisted": None,
    "reputation_block": "connection",
    "dnsbl_listed": "connection",
    "auth_failure": "message",
    "reverse_dns_helo": "connection",
    "tls_required": "connection",
    "spam_content": "message",
    "virus_or_attachment": "message",
    "message_noncompliant": "message",
    "policy_rejection": None,
    "sender_rejected": "sender",
    "relay_denied": "recipient",
    "protocol_error": None,
    "remote_system_error": "destination",
    "uncategorized": None,
}
"""The scope of each category; None: from the command (see the module text)."""

#: Scope by command number (and 24: command unknown), when the category leaves it open.
_STAGE_SCOPES: tuple[str, ...] = tuple(
    "recipient" if c is Command.RCPT
    else "message" if c in (Command.MAIL, Command.DATA, Command.DATA_END, Command.BDAT,
                            Command.BDAT_LAST)
    else "connection"
    for c in Command
) + ("message",)

_UNKNOWN_STAGE = len(Command)  # the index of "command unknown"

#: Command groups a rule may name besides the commands themselves.
_COMMAND_GROUPS: Mapping[str, tuple[int, ...]] = {
    "GREETING": (Command.CONNECT,),
    "HELO_EHLO": (Command.HELO, Command.EHLO, Command.LHLO),
    "END_OF_DATA": (Command.DATA_END, Command.BDAT, Command.BDAT_LAST),
    "NONE": (_UNKNOWN_STAGE,),
}

#: Limits of the compiled tables (and so of any classifier).
MAX_WORD_LENGTH = 64
MAX_PHRASE_WORDS = 16
_MAX_WORDS = 65535
_MAX_STATES = 65535

_WORD = re.compile(rb"[A-Za-z0-9\x80-\xff]+")
_CODE_SPEC = re.compile(r"([1-5])(?:xx|XX)\Z|(\d{3})(?:-(\d{3}))?\Z")
_ENH_SPEC = re.compile(r"([245Xx])\.(\d{1,3})\.(?:(\*)|(\d{1,3})(?:-(\d{1,3}))?)\Z")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*\Z")

#: Words that introduce a delay ("try again *in* 5 minutes") and the units after it.
_RETRY_TRIGGERS = ("in", "after", "within", "wait", "for")
_RETRY_UNITS: Mapping[str, int] = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}


class Classification(NamedTuple):
    """What a reply means for the sender (see the module documentation)."""

    category: str
    action: str
    scope: str
    retry_after: int | None
    provider: str | None
    rule: str

    @property
    def permanent(self) -> bool:
        """The action is ``bounce`` or ``suppress``: do not send this again as is."""
        return self.action in ("bounce", "suppress")


@dataclass(frozen=True)
class Rule:
    """One classification rule, as the rules file writes it.

    Conditions (all must hold; an empty one always holds):

    ``codes``: reply codes, ``"5xx"``, ``"550"`` or ``"550-554"``;
    ``commands``: :class:`~fastreply.commands.Command` names, or the groups
    ``GREETING``, ``HELO_EHLO``, ``END_OF_DATA`` and ``NONE`` (command
    unknown); ``enhanced``: ``"5.1.1"``, ``"X.1.1"`` (any class), ``"X.7.*"``
    or a detail range ``"X.7.500-699"``; ``provider``: a provider name;
    ``phrases``: any of these word sequences in the text.

    Result: ``category``, and optionally ``scope`` and ``action`` (one action,
    or ``{"4xx": ..., "5xx": ...}``) to override the defaults.
    """

    id: str
    category: str
    codes: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    enhanced: tuple[str, ...] = ()
    provider: str | None = None
    phrases: tuple[str, ...] = ()
    scope: str | None = None
    action: str | tuple[tuple[str, str], ...] | None = None
    note: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Rule) -> Rule:
        """A rule from its dictionary form (as in the rules file), checked."""
        if isinstance(data, Rule):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"a rule must be a mapping or a Rule, not {type(data).__name__}")
        rule_id = data.get("id")
        where = f"rule {rule_id!r}" if rule_id is not None else "a rule without an id"
        if not isinstance(rule_id, str) or not _NAME.match(rule_id):
            raise ValueError(f"{where}: 'id' must be a lower-case name "
                             "([a-z0-9][a-z0-9_.-]*)")
        known = {"id", "category", "codes", "commands", "enhanced", "provider", "phrases",
                 "scope", "action", "note"}
        extra = sorted(set(data) - known)
        if extra:
            raise ValueError(f"{where}: unknown field(s) {', '.join(extra)} "
                             f"(known: {', '.join(sorted(known))})")

        def strings(name: str) -> tuple[str, ...]:
            value = data.get(name, ())
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise ValueError(f"{where}: {name!r} must be a list of strings")
            for item in value:
                if not isinstance(item, str):
                    raise ValueError(f"{where}: {name!r} must be a list of strings, "
                                     f"got {item!r}")
            return tuple(value)

        action = data.get("action")
        if isinstance(action, Mapping):
            action = tuple(sorted((str(k), str(v)) for k, v in action.items()))
        rule = cls(
            id=rule_id,
            category=data.get("category"),  # type: ignore[arg-type]
            codes=strings("codes"),
            commands=strings("commands"),
            enhanced=strings("enhanced"),
            provider=data.get("provider"),
            phrases=strings("phrases"),
            scope=data.get("scope"),
            action=action,
            note=data.get("note", ""),
        )
        rule._check()
        return rule

    def to_dict(self) -> dict[str, Any]:
        """The dictionary form (what :meth:`from_dict` reads back)."""
        out: dict[str, Any] = {"id": self.id}
        for name in ("codes", "commands", "enhanced", "phrases"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        if self.provider is not None:
            out["provider"] = self.provider
        out["category"] = self.category
        if self.scope is not None:
            out["scope"] = self.scope
        if isinstance(self.action, tuple):
            out["action"] = dict(self.action)
        elif self.action is not None:
            out["action"] = self.action
        if self.note:
            out["note"] = self.note
        return out

    def _check(self) -> None:
        where = f"rule {self.id!r}"
        if self.category not in CATEGORIES:
            raise ValueError(f"{where}: category {self.category!r} is not one of "
                             f"{', '.join(CATEGORIES)}")
        if self.scope is not None and self.scope not in SCOPES:
            raise ValueError(f"{where}: scope {self.scope!r} is not one of {', '.join(SCOPES)}")
        if isinstance(self.action, tuple):
            for key, value in self.action:
                if key not in ("4xx", "5xx"):
                    raise ValueError(f"{where}: action keys are '4xx' and '5xx', got {key!r}")
                if value not in ACTIONS:
                    raise ValueError(f"{where}: action {value!r} is not one of "
                                     f"{', '.join(ACTIONS)}")
        elif self.action is not None and self.action not in ACTIONS:
            raise ValueError(f"{where}: action {self.action!r} is not one of "
                             f"{', '.join(ACTIONS)}")
        if self.provider is not None and (
            not isinstance(self.provider, str) or not _NAME.match(self.provider)
        ):
            raise ValueError(f"{where}: provider must be a lower-case name")
        if not isinstance(self.note, str):
            raise ValueError(f"{where}: note must be a string")
        for spec in self.codes:
            _code_range(spec, where)
        for name in self.commands:
            _command_numbers(name, where)
        for spec in self.enhanced:
            _enhanced_spec(spec, where)
        for phrase in self.phrases:
            _phrase_words(phrase, where)
        if self.category == "delivered" and (
            not self.codes or any(_code_range(s, where)[1] >= 400 for s in self.codes)
        ):
            raise ValueError(f"{where}: a 'delivered' rule must name its codes, all 1xx-3xx")


def _code_range(spec: str, where: str) -> tuple[int, int]:
    match = _CODE_SPEC.match(spec)
    if match is None:
        raise ValueError(f"{where}: code {spec!r} is not '5xx', '550' or '550-554'")
    if match.group(1):
        first = int(match.group(1))
        return first * 100, first * 100 + 99
    lo = int(match.group(2))
    hi = int(match.group(3)) if match.group(3) else lo
    if not 100 <= lo <= hi <= 599:
        raise ValueError(f"{where}: code range {spec!r} must lie within 100-599")
    return lo, hi


def _command_numbers(name: str, where: str) -> tuple[int, ...]:
    key = name.upper()
    if key in _COMMAND_GROUPS:
        return _COMMAND_GROUPS[key]
    try:
        return (int(Command[key]),)
    except KeyError:
        known = ", ".join([c.name for c in Command] + list(_COMMAND_GROUPS))
        raise ValueError(f"{where}: unknown command {name!r} (known: {known})") from None


def _enhanced_spec(spec: str, where: str) -> tuple[int, int, int, int]:
    """(class or 0 for any, subject, lowest detail, highest detail)."""
    match = _ENH_SPEC.match(spec)
    if match is None:
        raise ValueError(f"{where}: enhanced code {spec!r} is not like '5.1.1', 'X.1.1', "
                         "'X.7.*' or 'X.7.500-699'")
    cls_text, subject, star, lo, hi = match.groups()
    cls = 0 if cls_text in "Xx" else int(cls_text)
    if star:
        return cls, int(subject), 0, 999
    low = int(lo)
    high = int(hi) if hi else low
    if high < low:
        raise ValueError(f"{where}: enhanced range {spec!r} is empty")
    return cls, int(subject), low, high


def _phrase_words(phrase: str, where: str) -> tuple[bytes, ...]:
    try:
        data = phrase.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise ValueError(f"{where}: phrase {phrase!r} is not valid Unicode "
                         f"({exc.reason} at {exc.start})") from None
    words = tuple(_WORD.findall(data.lower()))
    if not words:
        raise ValueError(f"{where}: phrase {phrase!r} has no words")
    if len(words) > MAX_PHRASE_WORDS:
        raise ValueError(f"{where}: phrase {phrase!r} has more than {MAX_PHRASE_WORDS} words")
    for word in words:
        if len(word) > MAX_WORD_LENGTH:
            raise ValueError(f"{where}: phrase {phrase!r} has a word longer than "
                             f"{MAX_WORD_LENGTH} bytes")
    return words


# -- providers ------------------------------------------------------------------


@dataclass(frozen=True)
class _Provider:
    name: str
    hosts: tuple[str, ...]  # MX host name suffixes
    tokens: tuple[str, ...]  # phrases that name it in a reply


def _providers_from(data: Mapping[str, Any]) -> tuple[_Provider, ...]:
    if not isinstance(data, Mapping):
        raise TypeError(f"providers must be a mapping, not {type(data).__name__}")
    out = []
    for name, spec in data.items():
        where = f"provider {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}: a provider name is lower-case ([a-z0-9][a-z0-9_.-]*)")
        if not isinstance(spec, Mapping) or set(spec) - {"hosts", "tokens", "note"}:
            raise ValueError(f"{where}: expected a mapping with 'hosts' and 'tokens'")
        hosts = spec.get("hosts", [])
        tokens = spec.get("tokens", [])
        for value, field in ((hosts, "hosts"), (tokens, "tokens")):
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{where}: {field!r} must be a list of strings")
        for token in tokens:
            _phrase_words(token, where)
        out.append(_Provider(name, tuple(h.lower().strip(".") for h in hosts), tuple(tokens)))
    return tuple(out)


# -- loading --------------------------------------------------------------------


def _read_rules_json(text: str, origin: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{origin}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != 1:
        raise ValueError(f"{origin}: expected an object with \"format\": 1")
    return data


def load_rules(path: str) -> tuple[list[Rule], dict[str, Any]]:
    """Read a rules file (the shipped file's format): its rules, checked, and
    its ``providers`` mapping (empty when it has none)."""
    with open(path, encoding="utf-8") as handle:
        data = _read_rules_json(handle.read(), path)
    rules = [Rule.from_dict(item) for item in data.get("rules", [])]
    return rules, dict(data.get("providers", {}))


_SHIPPED: dict[str, Any] = {}


def _shipped() -> dict[str, Any]:
    if not _SHIPPED:
        path = resources.files("fastreply") / "data" / "classification_rules.json"
        data = _read_rules_json(path.read_text(encoding="utf-8"), "classification_rules.json")
        _SHIPPED.update(data)
    return _SHIPPED


def shipped_rules() -> tuple[Rule, ...]:
    """The rules that ship with fastreply, in order (first match wins)."""
    return tuple(Rule.from_dict(item) for item in _shipped()["rules"])


def shipped_providers() -> dict[str, Any]:
    """The providers that ship with fastreply: ``name -> {"hosts", "tokens"}``."""
    copy: dict[str, Any] = json.loads(json.dumps(_shipped()["providers"]))
    return copy


# -- compiling: the tables both implementations read ----------------------------


class _Tables(NamedTuple):
    """Everything the matcher needs, as plain Python data (both twins read it)."""

    words: dict[bytes, int]  # word -> id (1..)
    trie: dict[int, int]  # state << 16 | word id -> next state
    state_phrase: list[int]  # trie state -> phrase number or -1
    phrase_provider: list[int]  # phrase number -> provider number (0: none)
    phrase_rules: list[tuple[int, ...]]  # phrase number -> rule numbers, ascending
    max_depth: int  # longest phrase, in words
    word_kind: list[int]  # word id -> 0, 1 (delay trigger) or 1 + seconds per unit
    # rules, one entry each, by rule number
    rule_codes: list[tuple[tuple[int, int], ...]]
    rule_commands: list[int]  # bit per command number, bit 24: command unknown
    rule_enhanced: list[tuple[tuple[int, int, int, int], ...]]
    rule_provider: list[int]
    by_subject: dict[int, tuple[int, ...]]  # rules without phrases, by enhanced subject
    plain: tuple[int, ...]  # rules with neither phrases nor enhanced conditions
    # results: results[rule][class * 5 + scope] -> tuple by provider number (or None)
    results: list[list[tuple[Classification, ...] | None]]
    rule_action: list[tuple[int, int, int, int]]  # action number by reply class
    rule_scope: list[int]  # scope number, or -1: by command
    stage_scope: tuple[int, ...]  # scope number by command number (24: unknown)
    command_number: Callable[[object], int]
    provider_number: Callable[[object], int]
    provider_names: tuple[str | None, ...]


_ALL_COMMANDS = (1 << (len(Command) + 1)) - 1


def _compile(rules: Sequence[Rule], providers: Sequence[_Provider]) -> _Tables:
    provider_index = {p.name: i + 1 for i, p in enumerate(providers)}
    words: dict[bytes, int] = {}

    def word_id(word: bytes) -> int:
        wid = words.get(word)
        if wid is None:
            wid = words[word] = len(words) + 1
            if wid > _MAX_WORDS:
                raise ValueError(f"more than {_MAX_WORDS} distinct words in the rules")
        return wid

    trie: dict[int, int] = {}
    state_phrase: list[int] = [-1]
    phrase_of_words: dict[tuple[bytes, ...], int] = {}
    phrase_provider: list[int] = []
    phrase_rules: list[list[int]] = []
    max_depth = 0

    def add_phrase(words_: tuple[bytes, ...]) -> int:
        nonlocal max_depth
        number = phrase_of_words.get(words_)
        if number is not None:
            return number
        state = 0
        for word in words_:
            key = state << 16 | word_id(word)
            nxt = trie.get(key)
            if nxt is None:
                nxt = trie[key] = len(state_phrase)
                if nxt > _MAX_STATES:
                    raise ValueError(f"the rules' phrases need more than {_MAX_STATES} states")
                state_phrase.append(-1)
            state = nxt
        number = phrase_of_words[words_] = len(phrase_rules)
        state_phrase[state] = number
        phrase_provider.append(0)
        phrase_rules.append([])
        max_depth = max(max_depth, len(words_))
        return number

    for provider in providers:
        for token in provider.tokens:
            number = add_phrase(_phrase_words(token, f"provider {provider.name!r}"))
            if phrase_provider[number] == 0:
                phrase_provider[number] = provider_index[provider.name]
    for word in _RETRY_TRIGGERS + tuple(_RETRY_UNITS):
        word_id(word.encode())

    rule_codes, rule_commands, rule_enhanced, rule_provider = [], [], [], []
    rule_action: list[tuple[int, int, int, int]] = []
    rule_scope: list[int] = []
    by_subject: dict[int, list[int]] = {}
    plain: list[int] = []
    seen_ids: set[str] = set()
    for number, rule in enumerate(rules):
        where = f"rule {rule.id!r}"
        if rule.id in seen_ids:
            raise ValueError(f"{where}: the id is used twice")
        seen_ids.add(rule.id)
        if rule.provider is not None and rule.provider not in provider_index:
            raise ValueError(f"{where}: unknown provider {rule.provider!r} (known: "
                             f"{', '.join(provider_index)})")
        rule_codes.append(tuple(_code_range(s, where) for s in rule.codes))
        mask = 0
        for name in rule.commands:
            for n in _command_numbers(name, where):
                mask |= 1 << n
        rule_commands.append(mask or _ALL_COMMANDS)
        enhanced = tuple(_enhanced_spec(s, where) for s in rule.enhanced)
        rule_enhanced.append(enhanced)
        rule_provider.append(provider_index[rule.provider] if rule.provider else 0)
        rule_action.append(_actions_of(rule))
        rule_scope.append(_scope_of(rule))
        if rule.phrases:
            for phrase in rule.phrases:
                phrase_rules[add_phrase(_phrase_words(phrase, where))].append(number)
        elif enhanced:
            for subject in sorted({spec[1] for spec in enhanced}):
                by_subject.setdefault(subject, []).append(number)
        else:
            plain.append(number)

    # The default "rules", one per reply class, after every real rule.
    fallback = len(rules)
    defaults = [Rule(id=f"default-{name}", category=cat, codes=())
                for name, cat in zip(_CLASS_NAMES, ("delivered", "uncategorized",
                                                    "uncategorized", "protocol_error"))]
    names: tuple[str | None, ...] = (None,) + tuple(p.name for p in providers)
    results: list[list[tuple[Classification, ...] | None]] = []
    for number, rule in enumerate(list(rules) + defaults):
        row: list[tuple[Classification, ...] | None] = [None] * 20
        classes = _classes_of(rule_codes[number]) if number < fallback else (number - fallback,)
        if number < fallback:
            action, scope = rule_action[number], rule_scope[number]
        else:
            action, scope = _actions_of(rule), _scope_of(rule)
        scopes = range(5) if scope < 0 else (scope,)
        for klass in classes:
            for s in scopes:
                row[klass * 5 + s] = tuple(
                    Classification(rule.category, ACTIONS[action[klass]], SCOPES[s], None,
                                   name, rule.id)
                    for name in names
                )
        results.append(row)
        if number >= fallback:
            rule_action.append(action)
            rule_scope.append(scope)

    word_kind = [0] * (len(words) + 1)
    for word in _RETRY_TRIGGERS:
        word_kind[words[word.encode()]] = 1
    for word, seconds in _RETRY_UNITS.items():
        word_kind[words[word.encode()]] = seconds + 1

    return _Tables(
        words=words,
        trie=trie,
        state_phrase=state_phrase,
        phrase_provider=phrase_provider,
        phrase_rules=[tuple(r) for r in phrase_rules],
        max_depth=max_depth,
        word_kind=word_kind,
        rule_codes=rule_codes,
        rule_commands=rule_commands,
        rule_enhanced=rule_enhanced,
        rule_provider=rule_provider,
        by_subject={k: tuple(v) for k, v in by_subject.items()},
        plain=tuple(plain),
        results=results,
        rule_action=rule_action,
        rule_scope=rule_scope,
        stage_scope=tuple(SCOPES.index(s) for s in _STAGE_SCOPES),
        command_number=_command_number,
        provider_number=_provider_lookup(providers, provider_index),
        provider_names=names,
    )


def _classes_of(codes: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """The reply classes (0-3) a rule's codes can match."""
    if not codes:
        return (0, 1, 2, 3)
    return tuple(sorted({k for lo, hi in codes
                         for k in range(reply_class(lo), reply_class(hi) + 1)}))


def _actions_of(rule: Rule) -> tuple[int, int, int, int]:
    four, five = DEFAULT_ACTIONS[rule.category]
    if isinstance(rule.action, tuple):
        given = dict(rule.action)
        four, five = given.get("4xx", four), given.get("5xx", five)
    elif rule.action is not None:
        four = five = rule.action
    return (0, ACTIONS.index(four), ACTIONS.index(five), ACTIONS.index("retry"))


def _scope_of(rule: Rule) -> int:
    scope = rule.scope if rule.scope is not None else DEFAULT_SCOPES[rule.category]
    return -1 if scope is None else SCOPES.index(scope)


_COMMAND_CACHE: dict[object, int] = {}


def _command_number(command: object) -> int:
    """The command number a ``command=`` argument stands for (24: unknown)."""
    if command is None:
        return _UNKNOWN_STAGE
    if isinstance(command, Command):
        return int(command)
    if isinstance(command, bool):
        raise TypeError("command must be a Command, a command name or line, or None, not bool")
    if isinstance(command, int):
        try:
            return int(Command(command))
        except ValueError:
            raise ValueError(f"no command number {command} (0-{len(Command) - 1})") from None
    if isinstance(command, (str, bytes, bytearray)):
        key = bytes(command) if isinstance(command, bytearray) else command
        # (``in`` then ``[]``: on free-threaded 3.13, ``dict.get`` of a key
        # equal to one another thread stored is some 50 times slower)
        number = _COMMAND_CACHE[key] if key in _COMMAND_CACHE else None
        if number is None:
            parsed: Command
            if isinstance(key, str):
                try:
                    parsed = Command.from_name(key)
                except ValueError:
                    parsed = Command.from_line(key)
            else:
                parsed = Command.from_line(key)
            number = int(parsed)
            if len(_COMMAND_CACHE) < 4096:
                _COMMAND_CACHE[key] = number
        return number
    raise TypeError("command must be a Command, a command name or line, or None, not "
                    f"{type(command).__name__}")


def _provider_lookup(
    providers: Sequence[_Provider], index: Mapping[str, int]
) -> Callable[[object], int]:
    suffixes = sorted(((h, index[p.name]) for p in providers for h in p.hosts),
                      key=lambda item: -len(item[0]))
    cache: dict[str, int] = {}

    def provider_number(provider: object) -> int:
        """The number of a ``provider=`` argument: a provider name, or an MX host
        name (matched by suffix; 0 when no provider has it)."""
        if not isinstance(provider, str):
            raise TypeError(f"provider must be a str or None, not {type(provider).__name__}")
        if provider in cache:  # (not cache.get(): see _command_number)
            return cache[provider]
        name = provider.strip().lower().rstrip(".")
        if name in index:
            number = index[name]
        elif "." in name:
            number = next((n for suffix, n in suffixes
                           if name == suffix or name.endswith("." + suffix)), 0)
        else:
            raise ValueError(f"unknown provider {provider!r}: give a host name or one of "
                             f"{', '.join(index)}")
        if len(cache) < 4096:
            cache[provider] = number
        return number

    return provider_number


# -- the classifier -------------------------------------------------------------


if TYPE_CHECKING or NO_EXTENSIONS:
    from . import _classify_py as _impl

    IMPLEMENTATION = "python"
else:
    from . import _classify_c as _impl  # the compiled module must load: no silent fallback

    IMPLEMENTATION = "cython"


class Classifier:
    """A set of rules and providers, compiled once into a fast matcher.

    ``Classifier()`` uses the shipped rules and providers; ``rules`` and
    ``providers`` replace them (a list of rule dictionaries or :class:`Rule`
    objects, and ``name -> {"hosts": [...], "tokens": [...]}``).  Classifiers
    are immutable: :meth:`extend` returns a new one.  ``matcher`` picks the
    implementation (``fastreply._classify_c.Matcher`` or
    ``fastreply._classify_py.Matcher``; default: the one in use).
    """

    __slots__ = ("_rules", "_providers", "_matcher", "_tables")

    def __init__(
        self,
        rules: Iterable[Mapping[str, Any] | Rule] | None = None,
        providers: Mapping[str, Any] | None = None,
        *,
        matcher: Any = None,
    ) -> None:
        self._rules = shipped_rules() if rules is None else tuple(
            Rule.from_dict(r) for r in rules)
        self._providers = _providers_from(shipped_providers() if providers is None else providers)
        self._tables = _compile(self._rules, self._providers)
        self._matcher = (matcher or _impl.Matcher)(self._tables)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order they are tried."""
        return self._rules

    @property
    def providers(self) -> dict[str, Any]:
        """The providers: ``name -> {"hosts": [...], "tokens": [...]}``."""
        return {p.name: {"hosts": list(p.hosts), "tokens": list(p.tokens)}
                for p in self._providers}

    @property
    def implementation(self) -> str:
        """``"cython"`` or ``"python"``: which matcher this classifier runs."""
        return "cython" if type(self._matcher).__module__.endswith("_c") else "python"

    def classify(
        self, reply: Reply | tuple[int, bytes | str], command: Any = None, *,
        provider: str | None = None,
    ) -> Classification:
        """Classify one reply (see :func:`classify`) with these rules."""
        result: Classification = self._matcher.classify(reply, command, provider)
        return result

    def extend(
        self,
        rules: Iterable[Mapping[str, Any] | Rule] = (),
        providers: Mapping[str, Any] | None = None,
    ) -> Classifier:
        """A new classifier with ``rules`` tried *before* these (so they win;
        a rule here with the same id as a new one is dropped), and
        ``providers`` added (replacing any of the same name)."""
        new = [Rule.from_dict(r) for r in rules]
        ids = {r.id for r in new}
        merged = self.providers
        merged.update(providers or {})
        return Classifier(new + [r for r in self._rules if r.id not in ids], merged,
                          matcher=type(self._matcher))

    def __repr__(self) -> str:
        return (f"<Classifier: {len(self._rules)} rules, {len(self._tables.phrase_rules)} "
                f"phrases, {len(self._providers)} providers ({self.implementation})>")


#: The classifier of :func:`classify`: the shipped rules, built at import.
DEFAULT_CLASSIFIER = Classifier()
_impl._set_default(DEFAULT_CLASSIFIER._matcher)

PROVIDERS: tuple[str, ...] = tuple(DEFAULT_CLASSIFIER.providers)
"""The providers the shipped rules recognise."""

classify: Callable[..., Classification] = _impl.classify
