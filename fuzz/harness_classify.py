"""The check behind the ``classify`` fuzz target: the compiled classifier
matcher (``fastreply._classify_c``) against the pure-Python reference
(``fastreply._classify_py``), on any reply, command and provider argument.

An input is a header and a body; :func:`decode` maps *any* bytes to a
:class:`Case`:

====  ======================================================================
byte  meaning
====  ======================================================================
0     how the reply is given (:data:`FORMS`, byte % their number): a
      ``(code, bytes)`` pair, ``(code, str)``, a list, bytearray or
      memoryview text, a ``Reply`` of either parser made by hand or parsed
      from the wire, a subclass of the pure-Python ``Reply``, an object with
      ``code`` and ``lines``, or something that is not a reply at all
1     the command (:func:`command_of`): None, a ``Command``, an int, a name,
      a command line as str, bytes or bytearray, or junk
2     the provider argument (:func:`provider_of`): None, a provider name, an
      MX host, junk, a non-str, or a string cut from the body
3-4   the code: bit 7 of byte 3 set, one of :data:`COMMON_CODES` (byte 4);
      else the big-endian 15 bits % 1200 - 100 (-100 to 1099)
5     the case of the text's ASCII letters: as is, upper, lower, swapped
...   the text, expanded by :func:`expand` (escapes for the rules' phrases,
      long runs, long words and numbers, delays: see there); LF separates
      lines
====  ======================================================================

:func:`check` classifies the case with a classifier on each matcher (the
shipped rules and providers) and raises :class:`Divergence` unless both give
the same :class:`~fastreply.classification.Classification` or raise the
same exception (type and message), and unless the invariants hold, so that
a fault both share does not pass unnoticed either:

* the only exceptions are ``TypeError`` and ``ValueError`` (a bad argument,
  named in the message); anything else is a bug;
* a result is a ``Classification`` whose category, action and scope are in
  ``CATEGORIES``, ``ACTIONS`` and ``SCOPES``, whose ``retry_after`` is None
  or an int >= 0, whose provider is a provider of the classifier and whose
  rule is the id of one of its rules or ``default-<class>``;
* the rule is the one an independent, naive reading of the rules picks
  (:func:`oracle`: the first rule whose conditions all hold, its phrases
  looked for word by word in the text), and category, action and scope
  follow from it, the reply class and the command;
* the same reply given as a ``Reply`` object or as its ``(code, text)``
  pair, as bytes or as str, classifies the same; a second call gives the
  same answer (nothing is kept between calls);
* ``fastreply.classify`` (the default classifier) agrees.

This module imports neither atheris nor pytest (``fuzz_parser.py --target
classify`` drives it; ``--replay`` runs stored inputs anywhere).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

from harness import Divergence  # the parser target's (fuzz/ is on sys.path)

HEADER = 6
MAX_TEXT = 1 << 16  # most bytes a body expands to

ESC_DICT = 0x01  # ESC_DICT hi lo: the word list entry (hi << 8 | lo) % its length
ESC_REPEAT = 0x02  # ESC_REPEAT n: the last (up to) 32 bytes, 4 * (n % 64 + 1) more times
ESC_LONG = 0x03  # ESC_LONG n: a long word (n even) or a number of 1-12 digits (n odd)
ESC_DELAY = 0x04  # ESC_DELAY n: a delay ("in 5 minutes", "after 00:05:00", ...)
ESC_BYTE = 0x05  # ESC_BYTE b: the byte b itself

COMMON_CODES = (220, 221, 250, 251, 252, 354, 421, 450, 451, 452, 454, 500, 501, 503, 521,
                530, 535, 550, 551, 552, 553, 554, 556, 571, -1, 0, 99, 100, 199, 399, 400,
                499, 599, 600, 999, 1000, 421, 550)

DELAY_TRIGGERS = (b"in", b"after", b"within", b"wait", b"for", b"again", b"retry")
DELAY_UNITS = (b"s", b"sec", b"secs", b"second", b"seconds", b"m", b"min", b"mins", b"minute",
               b"minutes", b"h", b"hr", b"hrs", b"hour", b"hours", b"d", b"day", b"days",
               b"weeks", b"ms")
DELAY_NUMBERS = (b"0", b"1", b"5", b"15", b"60", b"999", b"999999", b"1000000", b"007",
                 b"00:05:00", b"1:2:3", b"99:99:99", b"1:2", b"12:", b":30", b"1::2")
ENHANCED = (b"5.1.1", b"4.2.1", b"4.2.2", b"5.4.1", b"5.7.1", b"4.7.500", b"5.7.606",
            b"5.7.750", b"4.7.28", b"5.7.9", b"2.0.0", b"2.1.5", b"5.1.10", b"5.3.4",
            b"4.4.5", b"5.01.1", b"5.1", b"6.1.1", b"5.7.1x", b"5.999.999", b"4.0.0",
            b"5.1000.1", b"X.1.1")
SEPARATORS = (b" ", b"  ", b", ", b": ", b".", b"-", b"_", b"\t", b"/", b"(", b")", b"[",
              b"]", b"\r", b":", b"'", b"\x00", b"\xa0", b"\r\n", b"\n")


def _words() -> tuple[bytes, ...]:
    """The word list of the ESC_DICT escape: the shipped rules' phrases and
    the providers' tokens and hosts, then delays, enhanced codes and
    separators (sorted, so an index means the same while the rules do)."""
    from fastreply.classification import shipped_providers, shipped_rules

    phrases = {p for rule in shipped_rules() for p in rule.phrases}
    for provider in shipped_providers().values():
        phrases.update(provider["tokens"])
        phrases.update(provider["hosts"])
    head = sorted(p.encode() for p in phrases)
    return tuple(head) + DELAY_TRIGGERS + DELAY_UNITS + DELAY_NUMBERS + ENHANCED + SEPARATORS


_WORD_LIST: list[tuple[bytes, ...]] = []


def words() -> tuple[bytes, ...]:
    if not _WORD_LIST:
        _WORD_LIST.append(_words())
    return _WORD_LIST[0]


def expand(body: bytes) -> bytes:
    """The text a body stands for: every byte as is, except the escapes
    (ESC_DICT, ESC_REPEAT, ESC_LONG, ESC_DELAY, ESC_BYTE; see above); at most
    MAX_TEXT bytes.  Total: a cut-off escape is ignored."""
    table = words()
    out = bytearray()
    i, n = 0, len(body)
    while i < n and len(out) < MAX_TEXT:
        b = body[i]
        if b == ESC_DICT and i + 2 < n:
            out += table[(body[i + 1] << 8 | body[i + 2]) % len(table)]
            i += 3
        elif b == ESC_REPEAT and i + 1 < n:
            tail = bytes(out[-32:])
            out += tail * (4 * (body[i + 1] % 64 + 1))
            i += 2
        elif b == ESC_LONG and i + 1 < n:
            arg = body[i + 1]
            if arg & 1:
                out += (b"1234567890" * 2)[arg % 10 : arg % 10 + (arg >> 1) % 12 + 1]
            else:
                size = 48 + (arg >> 1) % 40  # 48-87: around the 64-byte word limit
                out += (b"Abcdefghijklmnopqrstuvwxyz\xe9" * 4)[:size]
            i += 2
        elif b == ESC_DELAY and i + 1 < n:
            arg = body[i + 1]
            out += b"%s %s%s%s" % (
                DELAY_TRIGGERS[arg % len(DELAY_TRIGGERS)],
                DELAY_NUMBERS[(arg >> 2) % len(DELAY_NUMBERS)],
                b" " if arg & 0x40 else b"",
                DELAY_UNITS[(arg >> 3) % len(DELAY_UNITS)],
            )
            i += 2
        elif b == ESC_BYTE and i + 1 < n:
            out.append(body[i + 1])
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out[:MAX_TEXT])


# -- what an input means ----------------------------------------------------------


class DuckReply:
    """Not a parser's Reply, but has ``code`` and ``lines``."""

    def __init__(self, code: Any, lines: Any) -> None:
        self.code = code
        self.lines = lines

    def __repr__(self) -> str:
        return f"DuckReply({self.code!r}, {self.lines!r})"


class NoLines:
    """Has a ``code`` but no ``lines``."""

    code = 250


def _py_reply_subclass() -> type:
    from fastreply import _parser_py

    class SubReply(_parser_py.Reply):  # type: ignore[misc, name-defined]
        __slots__ = ()

    return SubReply


_SUBCLASS: list[type] = []


def _parsers() -> list[ModuleType]:
    """The parser modules whose replies the target classifies (both when the
    compiled one imports)."""
    from fastreply import _parser_py

    try:
        from fastreply import _parser_c
    except ImportError:  # a pure-Python installation
        return [_parser_py]
    return [_parser_py, _parser_c]


def _bytes_lines(text: bytes) -> list[bytes]:
    return text.split(b"\n")


def _hand_made(index: int) -> Callable[[int, bytes], Any]:
    def make(code: int, text: bytes) -> Any:
        parsers = _parsers()
        return parsers[index % len(parsers)].Reply(code, _bytes_lines(text))

    return make


def _wire(index: int) -> Callable[[int, bytes], Any]:
    def make(code: int, text: bytes) -> Any:
        parsers = _parsers()
        parser = parsers[index % len(parsers)]
        lines = _bytes_lines(text)
        if not 100 <= code <= 599:
            raise ValueError("not a code the parser reads")
        last = len(lines) - 1
        wire = b"".join(b"%d%s%s\r\n" % (code, b" " if k == last else b"-", line)
                        for k, line in enumerate(lines))
        got = parser.ReplyParser(max_line_length=1 << 20, max_reply_lines=1 << 20).feed(wire)
        if len(got) != 1:
            raise ValueError("the text does not make one reply on the wire")
        return got[0]

    return make


def _strided(text: bytes) -> memoryview:
    """A non-contiguous view of ``text`` (every other byte of a buffer)."""
    doubled = bytearray(2 * len(text))
    doubled[::2] = text
    doubled[1::2] = b"\n" * len(text)
    return memoryview(doubled)[::2]


def _subclass(code: int, text: bytes) -> Any:
    if not _SUBCLASS:
        _SUBCLASS.append(_py_reply_subclass())
    return _SUBCLASS[0](code, _bytes_lines(text))


#: How a case gives its reply: (name, maker(code, text) -> reply, the same
#: reply as a (code, bytes) pair or None when it has no such twin).  A
#: maker that cannot build its form for this code and text (a ``Reply`` of a
#: code outside 0-999, a text that is not one reply on the wire) raises
#: ValueError, and the case falls back to the ``(code, bytes)`` pair.
FORMS: tuple[tuple[str, Callable[[int, bytes], Any], bool], ...] = (
    ("pair", lambda c, t: (c, t), True),
    ("str", lambda c, t: (c, t.decode("utf-8", "surrogateescape")), True),
    ("list", lambda c, t: [c, t], True),
    ("bytearray", lambda c, t: (c, bytearray(t)), True),
    ("memoryview", lambda c, t: (c, memoryview(t)), True),
    ("strided", lambda c, t: (c, _strided(t)), True),
    ("reply-py", _hand_made(0), True),
    ("reply-c", _hand_made(1), True),
    ("wire-py", _wire(0), True),
    ("wire-c", _wire(1), True),
    ("subclass", _subclass, True),
    ("duck", lambda c, t: DuckReply(c, tuple(_bytes_lines(t))), True),
    ("duck-bytearray", lambda c, t: DuckReply(c, [bytearray(x) for x in _bytes_lines(t)]), True),
    ("duck-joined", lambda c, t: DuckReply(c, [t]), True),
    ("duck-iter", lambda c, t: DuckReply(c, iter(_bytes_lines(t))), True),
    ("duck-odd", lambda c, t: DuckReply(*_duck_odd(c, t)), False),
    ("pair-odd", lambda c, t: _pair_odd(c, t), False),
    ("not-a-reply", lambda c, t: _not_a_reply(c, t), False),
)


def _duck_odd(code: int, text: bytes) -> tuple[Any, Any]:
    lines = _bytes_lines(text)
    pick = code % 9
    return [
        (float(code), lines), (code + 0.5, lines), (True, lines), (str(code), lines),
        (code, text.decode("latin-1")), (code, []), (code, [text.decode("latin-1")]),
        (code, None), (code, lines + [5]),
    ][pick]


def _pair_odd(code: int, text: bytes) -> Any:
    return [
        (code, text, b""), (code,), (True, text), (float(code), text), (code, None),
        (code, 5), (str(code), text), (code, text.decode("latin-1").encode("utf-16")),
        (2**70 + code, text), (-(2**70), text), (code, [text]),
    ][code % 11]


def _not_a_reply(code: int, text: bytes) -> Any:
    return [None, text, text.decode("latin-1"), code, NoLines(), {"code": code}, object()][code % 7]


COMMAND_NAMES = ("RCPT", "mail", "Data", "DATA_END", "bdat_last", "EHLO", "helo", "CONNECT",
                 "STARTTLS", "AUTH", "QUIT", "UNKNOWN", "rset", "VRFY", "GREETING", "NONE",
                 "frob", "", "RCPT TO", ".", "data_end ")
COMMAND_LINES = ("RCPT TO:<a@example.org>", "rcpt to:<b@example.org> NOTIFY=NEVER",
                 "MAIL FROM:<> SIZE=10", "mail from:<x@y>\r\n", ".", ".\r\n", "DATA",
                 "BDAT 100 LAST", "bdat 5", "EHLO client.example", "HELO x", "LHLO y",
                 "AUTH PLAIN AGFiYwBk", "STARTTLS\r\n", "QUIT", "xyzzy", "", "   ", "\x00",
                 "RCPT\tTO:<a>", "caf\xe9 au lait", "\udcff", "RCPT TO:<" + "a" * 600 + ">")
COMMAND_ODD: tuple[Any, ...] = (True, False, 3.0, object(), memoryview(b"RCPT"), b"", "",
                                "\x00", "RCPT\ud800", 2**70, -(2**70), [5], ("RCPT",),
                                bytes(300), b"\xff\xfe")


def command_of(selector: int) -> Any:
    """The ``command`` argument byte 1 chooses."""
    from fastreply.commands import Command

    kind, arg = selector & 7, selector >> 3
    if kind < 2:
        return None
    if kind == 2:
        members = list(Command)
        return members[arg % len(members)]
    if kind == 3:
        return arg - 4  # -4 to 27: valid numbers and both sides of them
    if kind == 4:
        return COMMAND_NAMES[arg % len(COMMAND_NAMES)]
    if kind == 5:
        return COMMAND_LINES[arg % len(COMMAND_LINES)]
    if kind == 6:
        line = COMMAND_LINES[arg % len(COMMAND_LINES)].encode("utf-8", "surrogatepass")
        return bytearray(line) if arg & 16 else line
    return COMMAND_ODD[arg % len(COMMAND_ODD)]


PROVIDER_JUNK = ("", "unknown", "mx.example.org", ".", "..", "a" * 300, "\x00",
                 "gmail.com\xe9", "GOOGLE.", " google ", "xgoogle.com", "google.com.",
                 "mail.protection.outlook.com", "aspmx.l.google.com", "mx1.mail.yahoo.com",
                 "com", "-", "google\x00", "\ud800", "yahoodns.net.example", "g" * 5000 + ".com")
PROVIDER_ODD: tuple[Any, ...] = (b"google", 5, 0, True, object(), ["google"], bytearray(b"x"))


def provider_of(selector: int, text: bytes) -> Any:
    """The ``provider`` argument byte 2 chooses."""
    from fastreply.classification import shipped_providers

    kind, arg = selector & 7, selector >> 3
    if kind < 3:
        return None
    providers = shipped_providers()
    if kind == 3:
        name = list(providers)[arg % len(providers)]
        return [name, name.upper(), name + ".", f" {name} ", name.title()][arg % 5]
    if kind == 4:
        hosts = [h for p in providers.values() for h in p["hosts"]]
        host = hosts[arg % len(hosts)]
        return ["", "mx1.", "ASPMX.L.", "a.b.c."][arg % 4] + (host.upper() if arg & 8 else host)
    if kind == 5:
        return PROVIDER_JUNK[arg % len(PROVIDER_JUNK)]
    if kind == 6:
        return PROVIDER_ODD[arg % len(PROVIDER_ODD)]
    return text[: arg + 1].decode("utf-8", "surrogateescape")


@dataclass
class Case:
    form: str
    code: int
    text: bytes = field(repr=False)
    command: Any
    provider: Any
    pair_twin: bool  # the reply can be given as (code, text) with the same meaning
    make: Callable[[int, bytes], Any] = field(repr=False)

    @property
    def reply(self) -> Any:
        """The reply argument, made anew for each call (an iterator of lines
        is used up by the call that reads it)."""
        return self.make(self.code, self.text)

    def __repr__(self) -> str:
        return (f"Case(form={self.form!r}, code={self.code}, text={self.text[:200]!r}"
                f"{'...' if len(self.text) > 200 else ''} ({len(self.text)} bytes), "
                f"command={self.command!r}, provider={str(self.provider)[:80]!r})")


def code_of(high: int, low: int) -> int:
    if high & 0x80:
        return COMMON_CODES[low % len(COMMON_CODES)]
    return ((high & 0x7F) << 8 | low) % 1200 - 100


def case_text(style: int, body: bytes) -> bytes:
    text = expand(body)
    style &= 3
    return text if style == 0 else text.upper() if style == 1 else (
        text.lower() if style == 2 else text.swapcase())


def decode(data: bytes) -> Case:
    """The case an input encodes (see the module docstring); total on all bytes."""
    head = data[:HEADER].ljust(HEADER, b"\0")
    code = code_of(head[3], head[4])
    text = case_text(head[5], data[HEADER:])
    return make_case(head[0], code, text, command_of(head[1]), provider_of(head[2], text))


def make_case(form_byte: int, code: int, text: bytes, command: Any, provider: Any) -> Case:
    name, make, twin = FORMS[form_byte % len(FORMS)]
    try:
        make(code, text)
    except ValueError:
        name, make, twin = FORMS[0]
    return Case(name, code, text, command, provider, twin, make)


def encode(text: bytes, code: int = 250, *, form: int | str = 0, command: int = 0,
           provider: int = 0, style: int = 0) -> bytes:
    """The input that decodes to this case (for seeds and tests): ``code``
    as 15 bits (-100 to 1099), ``form`` a byte or a name of :data:`FORMS`,
    ``command`` and ``provider`` the selector bytes; the text is escaped
    so that it expands to itself."""
    if isinstance(form, str):
        form = [f[0] for f in FORMS].index(form)
    if not -100 <= code < 1100:
        raise ValueError("the header encodes codes -100 to 1099")
    raw = code + 100
    body = bytearray()
    for b in text:
        if ESC_DICT <= b <= ESC_BYTE:
            body += bytes([ESC_BYTE, b])
        else:
            body.append(b)
    return bytes([form, command, provider, raw >> 8, raw & 0xFF, style]) + bytes(body)


# -- the check -----------------------------------------------------------------------

_PAIRS: dict[tuple[str, str], tuple[Any, Any]] = {}


def _modules() -> tuple[ModuleType, ModuleType]:
    """(reference, compiled) matcher modules."""
    from fastreply import _classify_c as compiled
    from fastreply import _classify_py as reference

    return reference, compiled


def classifiers(modules: tuple[ModuleType, ModuleType]) -> tuple[Any, Any]:
    """A classifier with the shipped rules on each matcher module (built once)."""
    key = (modules[0].__name__, modules[1].__name__)
    if key not in _PAIRS:
        from fastreply.classification import Classifier

        _PAIRS[key] = (Classifier(matcher=modules[0].Matcher),
                       Classifier(matcher=modules[1].Matcher))
    return _PAIRS[key]


ALLOWED = (TypeError, ValueError)


def outcome(classifier: Any, reply: Any, command: Any, provider: Any) -> Any:
    """The result as comparable data, or the exception as (type, message);
    any exception not in ALLOWED is a Divergence."""
    try:
        result = classifier.classify(reply, command, provider=provider)
    except ALLOWED as exc:
        return (type(exc), str(exc))
    except Exception as exc:  # noqa: BLE001 - anything else is a bug in itself
        raise Divergence(f"{classifier!r} raised {type(exc).__name__}: {exc}") from exc
    return result


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b and (
        not isinstance(a, tuple) or all(type(x) is type(y) for x, y in zip(a, b)))


def check(data: bytes, modules: tuple[ModuleType, ModuleType] | None = None) -> None:
    """Decode ``data`` and classify it on both matchers; raise
    :class:`Divergence` if they differ or an invariant breaks."""
    modules = modules or _modules()
    case = decode(data)
    reference, compiled = classifiers(modules)
    check_case(case, reference, compiled)
    if modules[1].__name__.endswith("_c") and not _default_is_python():
        import fastreply

        want = outcome(compiled, case.reply, case.command, case.provider)
        got = outcome(_Default(fastreply.classify), case.reply, case.command, case.provider)
        if not _same(got, want):
            raise Divergence(f"fastreply.classify differs for {case!r}\n  default: {got!r}\n"
                             f"  compiled classifier: {want!r}")


def _default_is_python() -> bool:
    from fastreply import classification

    return classification.IMPLEMENTATION != "cython"


class _Default:
    def __init__(self, function: Callable[..., Any]) -> None:
        self.classify = function


def check_case(case: Case, reference: Any, compiled: Any) -> None:
    """One case on two classifiers with the same rules: the same outcome,
    the invariants, the oracle."""
    want = outcome(reference, case.reply, case.command, case.provider)
    got = outcome(compiled, case.reply, case.command, case.provider)
    if not _same(got, want):
        raise Divergence(f"the matchers differ for {case!r}\n  compiled:  {got!r}\n"
                         f"  reference: {want!r}")
    again = outcome(compiled, case.reply, case.command, case.provider)
    if not _same(again, got):
        raise Divergence(f"a second call differs for {case!r}: {again!r} after {got!r}")
    if isinstance(want, tuple) and len(want) == 2 and isinstance(want[0], type):
        return  # the same error from both
    invariants(reference, case, want)
    if case.pair_twin and case.form != "pair":
        pair = outcome(reference, (case.code, case.text), case.command, case.provider)
        if not _same(pair, want):
            raise Divergence(f"form {case.form!r} and the (code, bytes) pair differ for "
                             f"{case!r}\n  {case.form}: {want!r}\n  pair: {pair!r}")


# -- invariants and the oracle -----------------------------------------------------

_ENH = re.compile(rb"([245])\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})(?![^ \t\r\n])")
_TEXT_WORD = re.compile(rb"[0-9A-Za-z\x80-\xff]+")
_GROUPS = {"GREETING": ("CONNECT",), "HELO_EHLO": ("HELO", "EHLO", "LHLO"),
           "END_OF_DATA": ("DATA_END", "BDAT", "BDAT_LAST"), "NONE": ()}


def reply_class(code: int) -> int:
    return 0 if 100 <= code < 400 else 1 if 400 <= code < 500 else 2 if 500 <= code < 600 else 3


class _Compiled:
    """A classifier's rules, read naively (for the oracle)."""

    def __init__(self, classifier: Any) -> None:
        self.rules = []
        for rule in classifier.rules:
            codes = [self._codes(s) for s in rule.codes]
            commands: set[str | None] = set()
            for name in rule.commands:
                key = name.upper()
                if key == "NONE":
                    commands.add(None)
                commands.update(_GROUPS.get(key, (key,)) if key != "NONE" else ())
            enhanced = [self._enhanced(s) for s in rule.enhanced]
            phrases = [tuple(_TEXT_WORD.findall(p.encode().lower())) for p in rule.phrases]
            self.rules.append((rule, codes, commands, enhanced, phrases))
        self.ids = {rule.id for rule in classifier.rules}
        self.providers = set(classifier.providers)

    @staticmethod
    def _codes(spec: str) -> tuple[int, int]:
        if spec[1:].lower() == "xx":
            return int(spec[0]) * 100, int(spec[0]) * 100 + 99
        lo, _, hi = spec.partition("-")
        return int(lo), int(hi or lo)

    @staticmethod
    def _enhanced(spec: str) -> tuple[int, int, int, int]:
        klass, subject, detail = spec.split(".")
        lo, _, hi = detail.partition("-")
        low, high = (0, 999) if lo == "*" else (int(lo), int(hi or lo))
        return (0 if klass in "Xx" else int(klass)), int(subject), low, high


_NAIVE: dict[int, tuple[Any, _Compiled]] = {}


def naive(classifier: Any) -> _Compiled:
    held = _NAIVE.get(id(classifier))
    if held is None or held[0] is not classifier:
        if len(_NAIVE) > 64:
            _NAIVE.clear()
        held = _NAIVE[id(classifier)] = (classifier, _Compiled(classifier))
    return held[1]


def text_lines(case: Case) -> list[bytes] | None:
    """The lines the classifier reads, or None when the form has no plain text."""
    if not case.pair_twin:
        return None
    return case.text.split(b"\n")


def oracle(rules: _Compiled, code: int, lines: list[bytes], command: Any,
           provider: str | None) -> tuple[Any, str]:
    """The first rule whose conditions all hold (None: the default), and
    the scope's source, by reading the rules one by one."""
    from fastreply.classification import _command_number
    from fastreply.commands import Command

    words: list[bytes] = []
    first = None
    for index, line in enumerate(lines):
        found = _ENH.match(line)
        if found and index == 0:
            first = tuple(int(x) for x in found.groups())
        words += [w.lower() for w in _TEXT_WORD.findall(line, found.end() if found else 0)]
    at: dict[bytes, list[int]] = {}
    for i, w in enumerate(words):
        at.setdefault(w, []).append(i)
    number = _command_number(command)
    name = Command(number).name if number < len(Command) else None
    for rule, codes, commands, enhanced, phrases in rules.rules:
        if codes and not any(lo <= code <= hi for lo, hi in codes):
            continue
        if commands and name not in commands:
            continue
        if enhanced and (first is None or not any(
                k in (0, first[0]) and s == first[1] and lo <= first[2] <= hi
                for k, s, lo, hi in enhanced)):
            continue
        if rule.provider is not None and rule.provider != provider:
            continue
        if phrases and not any(
                words[i : i + len(p)] == list(p) for p in phrases for i in at.get(p[0], ())):
            continue
        return rule, name or ""
    return None, name or ""


def invariants(classifier: Any, case: Case, result: Any) -> None:
    from fastreply import classification as k

    def bad(what: str) -> Divergence:
        return Divergence(f"{what}: {result!r} for {case!r}")

    if type(result) is not k.Classification:
        raise bad("not a Classification")
    if result.category not in k.CATEGORIES or result.action not in k.ACTIONS:
        raise bad("unknown category or action")
    if result.scope not in k.SCOPES:
        raise bad("unknown scope")
    if result.retry_after is not None and (type(result.retry_after) is not int
                                           or result.retry_after < 0):
        raise bad("retry_after is not None or an int >= 0")
    rules = naive(classifier)
    if result.provider is not None and result.provider not in rules.providers:
        raise bad("unknown provider")
    if result.rule not in rules.ids and result.rule not in {
            "default-positive", "default-4xx", "default-5xx", "default-other"}:
        raise bad("unknown rule id")
    lines = text_lines(case)
    if lines is None:
        return
    code = case.code
    klass = reply_class(code)
    rule, stage = oracle(rules, code, lines, case.command, result.provider)
    if rule is None:
        want_rule = "default-" + ("positive", "4xx", "5xx", "other")[klass]
        category = ("delivered", "uncategorized", "uncategorized", "protocol_error")[klass]
        scope, action = None, None
    else:
        want_rule, category, scope, action = rule.id, rule.category, rule.scope, rule.action
    if result.rule != want_rule or result.category != category:
        raise bad(f"the rules read one by one give {want_rule!r} ({category})")
    if klass == 0:
        want_action = "none"
    elif klass == 3:
        want_action = "retry"
    elif isinstance(action, tuple):
        want_action = dict(action).get(("4xx", "5xx")[klass - 1],
                                       k.DEFAULT_ACTIONS[category][klass - 1])
    else:
        want_action = action or k.DEFAULT_ACTIONS[category][klass - 1]
    if result.action != want_action:
        raise bad(f"action should be {want_action!r}")
    want_scope = scope or k.DEFAULT_SCOPES[category]
    if want_scope is None:
        want_scope = "connection" if code == 421 else (
            "recipient" if stage == "RCPT" else "message" if stage in (
                "", "MAIL", "DATA", "DATA_END", "BDAT", "BDAT_LAST") else "connection")
    if result.scope != want_scope:
        raise bad(f"scope should be {want_scope!r}")
    if isinstance(case.provider, str) and case.provider.strip().lower().rstrip(".") in \
            rules.providers and result.provider != case.provider.strip().lower().rstrip("."):
        raise bad("the provider named by the argument is not the result's")


#: Tokens the random-mutation driver inserts (fuzz_parser.py --random).
MUTATION_TOKENS = [b"\n", b"\r\n", b" ", b"\x00", b"\xff", b":", b".", b"5.1.1 ", b"4.7.1 ",
                   b"550 ", b"\x01\x00\x10", b"\x01\x01\x00", b"\x02\x05", b"\x03\x81",
                   b"\x03\x40", b"\x04\x11", b"\x04\x52", b"user unknown", b"gsmtp",
                   b"try again in 5 minutes", b"00:05:00", b"mailbox full", b"[TSS04]"]
