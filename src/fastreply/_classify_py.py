"""Pure-Python classifier matcher: the readable reference.

The compiled module ``fastreply._classify_c`` gives exactly the same answers
(the test suite runs every classification test against both, and a
differential test feeds both random replies built from the rules' own
phrases); when the two disagree, this module says what is right.

A :class:`Matcher` reads the tables :mod:`fastreply.classification` compiles
from the rules and classifies one reply in three steps:

1. the reply code, the command number and the enhanced status code at the
   start of the first line (RFC 3463 grammar, as ``Reply.enhanced``);
2. one pass over the words of the text: a word is a run of ASCII letters,
   digits and bytes 0x80-0xFF, lower-cased (ASCII only); an enhanced code at
   the start of a line is not part of the text.  Each word goes through a
   trie of the phrases (all phrase starts followed at once), the first
   provider token found names the provider, and "in/after/within/wait/for
   <number> <unit>" or "... <h>:<m>:<s>" gives the retry delay;
3. the first rule, in rule order, whose conditions all hold; the result is
   the shared :class:`~fastreply.classification.Classification` made for
   that rule, reply class, scope and provider (a new one only when the text
   gave a delay).
"""

from __future__ import annotations

import re
from typing import Any

from ._common import reply_class, reply_input

__all__ = ["Matcher", "classify"]

_WORD = re.compile(rb"[A-Za-z0-9\x80-\xff]+")
# An enhanced status code at the start of a line (what fastreply.enhanced accepts).
_ENHANCED = re.compile(rb"([245])\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})(?=[ \t\r\n]|\Z)")
_UNKNOWN_STAGE = 24
_CONNECTION = 3  # SCOPES.index("connection")
_MAX_NUMBER_DIGITS = 6
_NOT_BUILT = "this Matcher has no tables: make one with Matcher(tables)"


class Matcher:
    """The classifier's tables and the function that reads them."""

    __slots__ = ("_t",)

    _t: Any

    def __init__(self, tables: Any) -> None:
        try:
            self._t
        except AttributeError:
            self._t = tables
        else:
            raise TypeError("a Matcher's tables are set once, when it is built")

    def classify(self, reply: Any, command: Any = None, provider: Any = None) -> Any:
        """Classify one reply; ``command`` and ``provider`` as for
        :func:`fastreply.classify`."""
        try:
            t = self._t
        except AttributeError:  # made with __new__: no tables to read
            raise TypeError(_NOT_BUILT) from None
        code, lines = reply_input(reply)
        cmd = t.command_number(command)
        given = t.provider_number(provider) if provider is not None else 0
        found = _ENHANCED.match(lines[0])
        enhanced = (
            (int(found.group(1)), int(found.group(2)), int(found.group(3)))
            if found is not None else None
        )
        phrases, detected, retry = self._scan(lines)
        prov = given or detected
        best = self._select(phrases, code, cmd, enhanced, prov)
        klass = reply_class(code)
        if best < 0:
            best = len(t.rule_codes) + klass  # the default of this reply class
        scope = t.rule_scope[best]
        if scope < 0:
            scope = _CONNECTION if code == 421 else t.stage_scope[cmd]
        result = t.results[best][klass * 5 + scope][prov]
        if retry is not None:
            result = result._replace(retry_after=retry)
        return result

    def _scan(self, lines: list[bytes]) -> tuple[set[int], int, int | None]:
        """The phrases found, the provider named first, and the retry delay."""
        t = self._t
        words, trie, state_phrase = t.words, t.trie, t.state_phrase
        phrase_provider, word_kind = t.phrase_provider, t.word_kind
        seen: set[int] = set()
        provider = 0
        provider_at = -1
        retry: int | None = None
        active: list[int] = []
        # The three words before this one: (kind, number value or -1, after a ':')
        w1 = w2 = w3 = (0, -1, False)
        index = 0
        for line in lines:
            enhanced = _ENHANCED.match(line)
            prev_end = -2
            for token in _WORD.finditer(line, enhanced.end() if enhanced else 0):
                start = token.start()
                colon = start == prev_end + 1 and line[prev_end] == 0x3A
                prev_end = token.end()
                word = token.group().lower()
                # (``in`` then ``[]``, not ``dict.get``: on free-threaded 3.13,
                # get() of a key equal to, not the same object as, one stored
                # by another thread is some 50 times slower)
                wid = words[word] if word in words else 0
                value = int(word) if len(word) <= _MAX_NUMBER_DIGITS and word.isdigit() else -1
                kind = word_kind[wid]
                following: list[int] = []
                if wid:
                    for state in [0] + active:
                        key = state << 16 | wid
                        if key not in trie:
                            continue
                        nxt = trie[key]
                        following.append(nxt)
                        phrase = state_phrase[nxt]
                        if phrase >= 0:
                            seen.add(phrase)
                            named = phrase_provider[phrase]
                            if named and (provider == 0 or (provider_at == index and named < provider)):
                                provider, provider_at = named, index
                active = following
                if retry is None:
                    if kind > 1 and w1[1] >= 0 and w2[0] == 1:
                        retry = w1[1] * (kind - 1)  # "in 5 minutes"
                    elif value >= 0 and colon and w1[1] >= 0 and w1[2] and w2[1] >= 0 and w3[0] == 1:
                        retry = w2[1] * 3600 + w1[1] * 60 + value  # "in 00:05:00"
                w3, w2, w1 = w2, w1, (kind, value, colon)
                index += 1
        return seen, provider, retry

    def _select(
        self, phrases: set[int], code: int, cmd: int,
        enhanced: tuple[int, int, int] | None, provider: int,
    ) -> int:
        """The first rule (lowest number) whose conditions hold, or -1."""
        t = self._t
        best = 1 << 30
        for phrase in phrases:
            for rule in t.phrase_rules[phrase]:
                if rule >= best:
                    break
                if self._holds(rule, code, cmd, enhanced, provider):
                    best = rule
                    break
        candidates = [t.plain]
        if enhanced is not None:
            subject = enhanced[1]
            if subject in t.by_subject:
                candidates.append(t.by_subject[subject])
        for rules in candidates:
            for rule in rules:
                if rule >= best:
                    break
                if self._holds(rule, code, cmd, enhanced, provider):
                    best = rule
                    break
        return best if best < (1 << 30) else -1

    def _holds(
        self, rule: int, code: int, cmd: int,
        enhanced: tuple[int, int, int] | None, provider: int,
    ) -> bool:
        t = self._t
        codes = t.rule_codes[rule]
        if codes and not any(lo <= code <= hi for lo, hi in codes):
            return False
        if not t.rule_commands[rule] >> cmd & 1:
            return False
        specs = t.rule_enhanced[rule]
        if specs:
            if enhanced is None:
                return False
            klass, subject, detail = enhanced
            if not any(
                (c == 0 or c == klass) and s == subject and lo <= detail <= hi
                for c, s, lo, hi in specs
            ):
                return False
        wanted = t.rule_provider[rule]
        return not wanted or wanted == provider


_DEFAULT: Matcher | None = None


def _set_default(matcher: Matcher) -> None:
    """The matcher :func:`classify` uses (set once, by fastreply.classification)."""
    global _DEFAULT
    if _DEFAULT is not None:
        raise RuntimeError("the default classifier is set once")
    _DEFAULT = matcher


def classify(reply: Any, command: Any = None, *, provider: Any = None) -> Any:
    """What ``reply`` means for the sender: a
    :class:`~fastreply.classification.Classification`.

    ``reply`` is a :class:`~fastreply.Reply` (either implementation) or the
    ``(code, message)`` pair ``smtplib`` returns; ``command`` the command it
    answers (a :class:`~fastreply.commands.Command`, its name, the command
    line, or None when unknown); ``provider`` a provider name or the MX host
    name the reply came from (None: recognised from the reply when it can be).
    Uses the shipped rules; :class:`~fastreply.classification.Classifier`
    makes classifiers with other rules.
    """
    assert _DEFAULT is not None, "fastreply.classification sets the default classifier"
    return _DEFAULT.classify(reply, command, provider)
