"""The check behind the ``classify-rules`` fuzz target: user rules and
providers, compiled on both classifier matchers, then replies classified.

An input is a header, the rules, three cases and a text; :func:`decode`
maps *any* bytes to a :class:`RulesCase`:

=======  =====================================================================
byte     meaning
=======  =====================================================================
0        flags: 1 ``Classifier().extend(rules, providers)`` (the shipped rules
         after the new ones), else ``Classifier(rules, providers)`` alone;
         2 user providers (``acme``, and ``google`` replaced); 4 with flag 2
         clear and flag 1 clear, the shipped providers (else none)
1        the number of rules: byte % 8 + 1
2...     8 bytes a rule (:func:`rule_of`): id, category, codes, commands,
         enhanced codes, provider, phrases (from the word list of the
         ``classify`` target or cut from the text), scope and action; some
         choices are invalid on purpose (an unknown category, a phrase of 17
         words, a 'delivered' rule for 5xx, an id used twice, ...)
+18      three case headers of the ``classify`` target (form, command,
         provider, code, case of the text: see harness_classify.py)
...      the text (expanded as in the ``classify`` target), shared by the
         three cases
=======  =====================================================================

:func:`check` builds a classifier on each matcher from the same rules: both
must refuse them with the same exception (type and message, a
``TypeError`` or ``ValueError``) or both build, with the same rules.  Each
case is then checked as the ``classify`` target checks one (the same result
or error on both matchers, the invariants, the rules read one by one).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import harness_classify as hc
from harness import Divergence  # the parser target's (fuzz/ is on sys.path)

HEADER = 2
RULE_BYTES = 8
CASES = 3
FLAG_EXTEND = 1
FLAG_PROVIDERS = 2
FLAG_SHIPPED_PROVIDERS = 4

CODE_SPECS = ("5xx", "4xx", "2xx", "3xx", "1xx", "550", "421", "550-554", "400-599", "250",
              "100-599", "5XX", "452", "554", "599", "451-452", "354", "100", "450-450")
COMMAND_SPECS = ("RCPT", "MAIL", "DATA", "END_OF_DATA", "GREETING", "HELO_EHLO", "NONE", "rcpt",
                 "DATA_END", "BDAT_LAST", "AUTH", "STARTTLS", "CONNECT", "UNKNOWN", "QUIT",
                 "Helo_Ehlo")
ENH_SPECS = ("5.1.1", "X.1.1", "X.7.*", "X.7.500-699", "4.2.1", "x.4.*", "X.2.2", "5.7.1",
             "X.7.0-9", "2.0.0", "4.7.1", "X.7.606-649", "5.0.0", "X.1.*", "2.1.5", "X.5.999")
#: Ways to spoil a rule (rule_of picks one when a rule's first byte is 0xF0 or more).
BAD_FIELDS: tuple[tuple[str, Any], ...] = (
    ("id", "Bad Id"), ("id", 5), ("id", None), ("category", "nope"), ("category", None),
    ("codes", ["6xx"]), ("codes", ["55x"]), ("codes", ["554-550"]), ("codes", ["099"]),
    ("codes", "5xx"), ("codes", [550]), ("commands", ["FROB"]), ("commands", "RCPT"),
    ("enhanced", ["5.1"]), ("enhanced", ["5.1.1000"]), ("enhanced", ["X.7.600-500"]),
    ("enhanced", ["3.1.1"]), ("provider", "nobody"), ("provider", "Bad Provider"),
    ("provider", 5), ("phrases", ["--"]), ("phrases", [""]), ("phrases", [" ".join("w" * 17)]),
    ("phrases", ["a" * 65]), ("phrases", [5]), ("phrases", "user unknown"),
    ("scope", "everywhere"), ("action", "later"), ("action", {"6xx": "retry"}),
    ("action", {"4xx": "soon"}), ("note", 5), ("extra", True), ("category", "delivered"),
)
#: Phrases at the limits that are still valid.
EDGE_PHRASES = ("x" * 64, " ".join(["y"] * 16), "a-b_c.d", "\u00e9t\u00e9 plein", "0", "5 1 1",
                "in 5 minutes", "gsmtp")


def _ids() -> tuple[str, ...]:
    from fastreply.classification import shipped_rules

    return tuple(rule.id for rule in shipped_rules())


@dataclass
class RulesCase:
    extend: bool
    rules: list[Any]
    providers: dict[str, Any] | None
    cases: list[hc.Case]

    def __repr__(self) -> str:
        return (f"RulesCase(extend={self.extend}, rules={self.rules!r}, "
                f"providers={self.providers!r}, cases={self.cases!r})")


def _text_phrases(text: bytes) -> list[str]:
    """Phrases cut from the text: runs of 1-4 of its words (so they match)."""
    found = hc._TEXT_WORD.findall(text[:4096])
    out = []
    for i in range(0, min(len(found), 64)):
        phrase = b" ".join(found[i : i + 1 + i % 4])
        try:
            out.append(phrase.decode("utf-8"))
        except UnicodeDecodeError:  # one in eight kept, as a str that is not UTF-8
            if i % 8 == 7:
                out.append(phrase.decode("utf-8", "surrogateescape"))
    return out


def phrase_of(selector: int, text_phrases: list[str]) -> str:
    kind, arg = selector & 3, selector >> 2
    if kind <= 1 and text_phrases:
        return text_phrases[arg % len(text_phrases)]
    if kind == 2:
        table = hc.words()
        return table[(arg * 37) % len(table)].decode("utf-8", "surrogateescape")
    return EDGE_PHRASES[arg % len(EDGE_PHRASES)]


def rule_of(index: int, spec: bytes, text_phrases: list[str], previous: list[Any],
            providers: tuple[str, ...]) -> Any:
    """A rule dictionary (sometimes a Rule, rarely a spoiled one or not a
    rule at all)."""
    from fastreply.classification import ACTIONS, CATEGORIES, SCOPES, Rule

    r = spec.ljust(RULE_BYTES, b"\0")
    pick = r[0] & 15
    if pick < 13 or not previous:
        rule_id = f"user-{index}"
    elif pick == 13:
        rule_id = previous[-1]["id"] if isinstance(previous[-1], dict) else "user-x"
    else:
        ids = _ids()
        rule_id = ids[r[7] % len(ids)] if pick == 14 else "u" * 40 + f".{index}"
    category = CATEGORIES[r[1] % len(CATEGORIES)]
    rule: dict[str, Any] = {"id": rule_id, "category": category}
    if category == "delivered":
        rule["codes"] = [("2xx", "250", "354", "1xx", "220-259", "3xx")[r[2] % 6]]
    elif r[2] & 3:
        rule["codes"] = [CODE_SPECS[((r[2] >> 2) + 7 * j) % len(CODE_SPECS)]
                         for j in range(r[2] & 3)]
    if r[3] & 3:
        rule["commands"] = [COMMAND_SPECS[((r[3] >> 2) + 5 * j) % len(COMMAND_SPECS)]
                            for j in range(r[3] & 3)]
    if r[4] & 3:
        rule["enhanced"] = [ENH_SPECS[((r[4] >> 2) + 3 * j) % len(ENH_SPECS)]
                            for j in range(r[4] & 3)]
    if r[5] & 7 == 7 and providers:
        rule["provider"] = providers[(r[5] >> 3) % len(providers)]
    if r[6] & 3:
        rule["phrases"] = [phrase_of(r[6] >> 2 ^ (j * 0x55), text_phrases)
                           for j in range(r[6] & 3)]
    scope = r[7] & 7
    if scope >= 3:
        rule["scope"] = SCOPES[scope - 3]
    action = (r[7] >> 3) & 7
    if action == 4:
        rule["action"] = ACTIONS[r[7] >> 6]
    elif action == 5:
        rule["action"] = {"4xx": ACTIONS[(r[7] >> 6) % 5], "5xx": ACTIONS[r[5] >> 5 & 3]}
    elif action == 6:
        rule["action"] = {"5xx": ACTIONS[(r[0] >> 4) % 5]}
    if r[0] >= 0xF0:  # spoiled on purpose: both matchers must refuse it alike
        name, value = BAD_FIELDS[r[1] % len(BAD_FIELDS)]
        rule[name] = value
    if r[0] == 0xEF:
        return (rule_id,)  # not a rule at all
    if r[0] & 0xF0 == 0xE0:
        try:
            return Rule.from_dict(rule)
        except ValueError:  # refused here: the classifiers get the dictionary
            return rule
    return rule


def providers_of(flags: int, text_phrases: list[str]) -> dict[str, Any] | None:
    if flags & FLAG_PROVIDERS:
        token = text_phrases[-1] if text_phrases else "acme"
        return {
            "acme": {"hosts": ["acme.example", "mx.ACME.example."], "tokens": [token, "acmemail"]},
            "google": {"hosts": ["google.com"], "tokens": ["gsmtp", text_phrases[0]
                                                           if text_phrases else "gmail"]},
        }
    if flags & (FLAG_EXTEND | FLAG_SHIPPED_PROVIDERS):
        return None  # the shipped ones
    return {}


def decode(data: bytes) -> RulesCase:
    """The case an input encodes (see the module docstring); total on all bytes."""
    head = data[:HEADER].ljust(HEADER, b"\0")
    count = head[1] % 8 + 1
    rules_end = HEADER + count * RULE_BYTES
    cases_end = rules_end + CASES * hc.HEADER
    body = data[cases_end:]
    text = hc.expand(body)
    text_phrases = _text_phrases(text)
    providers = providers_of(head[0], text_phrases)
    if providers is None:
        names = ("google", "microsoft", "yahoo", "orange", "mimecast")
    else:
        names = tuple(providers)
    rules: list[Any] = []
    for index in range(count):
        spec = data[HEADER + index * RULE_BYTES : HEADER + (index + 1) * RULE_BYTES]
        rules.append(rule_of(index, spec, text_phrases, rules, names))
    cases = []
    for index in range(CASES):
        h = data[rules_end + index * hc.HEADER : rules_end + (index + 1) * hc.HEADER]
        h = h.ljust(hc.HEADER, b"\0")
        case_text = hc.case_text(h[5], body) if h[5] & 3 else text
        cases.append(hc.make_case(h[0], hc.code_of(h[3], h[4]), case_text,
                                  hc.command_of(h[1]), hc.provider_of(h[2], case_text)))
    return RulesCase(bool(head[0] & FLAG_EXTEND), rules, providers, cases)


def encode(rules: list[bytes], cases: list[bytes], text: bytes, flags: int = 0) -> bytes:
    """An input from raw rule specs (8 bytes each, 1-8 of them), case
    headers (6 bytes each, up to 3) and a text (escaped to expand to itself)."""
    if not 1 <= len(rules) <= 8 or len(cases) > CASES:
        raise ValueError("1-8 rules and at most 3 cases")
    body = hc.encode(text)[hc.HEADER :]
    heads = b"".join(c.ljust(hc.HEADER, b"\0") for c in cases).ljust(CASES * hc.HEADER, b"\0")
    return (bytes([flags, len(rules) - 1]) + b"".join(r.ljust(RULE_BYTES, b"\0") for r in rules)
            + heads + body)


def _modules() -> tuple[ModuleType, ModuleType]:
    return hc._modules()


def build(module: ModuleType, case: RulesCase, modules: tuple[ModuleType, ModuleType]) -> Any:
    from fastreply.classification import Classifier

    if case.extend:
        base = hc.classifiers(modules)[modules.index(module)]
        return base.extend(case.rules, case.providers)
    return Classifier(case.rules, case.providers, matcher=module.Matcher)


def check(data: bytes, modules: tuple[ModuleType, ModuleType] | None = None) -> None:
    """Decode ``data``, build a classifier on each matcher, classify the
    cases; raise :class:`Divergence` on any difference or broken invariant."""
    modules = modules or _modules()
    case = decode(data)
    built = []
    for module in modules:
        try:
            built.append(build(module, case, modules))
        except hc.ALLOWED as exc:
            built.append((type(exc), str(exc)))
        except Exception as exc:  # noqa: BLE001 - anything else is a bug
            raise Divergence(f"building with {module.__name__} raised {type(exc).__name__}: "
                             f"{exc} for {case!r}") from exc
    reference, compiled = built
    if isinstance(reference, tuple) or isinstance(compiled, tuple):
        if reference != compiled:
            raise Divergence(f"building differs for {case!r}\n  compiled:  {compiled!r}\n"
                             f"  reference: {reference!r}")
        return
    if reference.rules != compiled.rules or reference.providers != compiled.providers:
        raise Divergence(f"the two classifiers hold different rules for {case!r}")
    new_ids = [r["id"] if isinstance(r, dict) else r.id for r in case.rules]
    if [r.id for r in compiled.rules[: len(new_ids)]] != new_ids:
        raise Divergence(f"the new rules do not come first for {case!r}")
    for one in case.cases:
        hc.check_case(one, reference, compiled)
