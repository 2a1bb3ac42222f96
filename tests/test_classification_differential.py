"""Differential test of the classifier: the compiled matcher and the
pure-Python reference must give the same Classification (or raise the same
error) for random replies built from the rules' own phrases, provider tokens,
delays and enhanced codes mixed with noise, with random codes, commands and
provider arguments, given as parsed replies of either parser and as
smtplib's (code, message)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastreply.classification import Classifier, shipped_providers, shipped_rules
from fastreply.commands import Command

_PAIR: list[Classifier] = []


def matchers() -> tuple[Classifier, Classifier]:
    """(reference, compiled) classifiers with the shipped rules (built once)."""
    if not _PAIR:
        from fastreply import _classify_c, _classify_py

        _PAIR.extend([Classifier(matcher=_classify_py.Matcher),
                      Classifier(matcher=_classify_c.Matcher)])
    return _PAIR[0], _PAIR[1]

PHRASES = sorted({p for r in shipped_rules() for p in r.phrases}
                 | {t for p in shipped_providers().values() for t in p["tokens"]})
DELAYS = ["in", "after", "within", "wait", "for", "5", "00:05:00", "1:2:3", "12", "minutes", "s",
          "hours", "sec", "days", ":", "1234567", "0"]
ENHANCED = ["5.1.1", "4.2.1", "5.4.1", "5.7.1", "4.7.500", "5.7.606", "5.7.750", "4.7.28",
            "5.7.9", "2.0.0", "5.1.10", "5.3.4", "4.4.5", "5.01.1", "5.1", "6.1.1", "5.7.1x"]
SEPARATORS = [" ", "  ", ", ", ": ", ".", "-", "_", "\t", "/", "(", ")", "[", "]", "\r", ":", "'"]


def _case(word: str, style: int) -> str:
    return word.upper() if style == 1 else word.title() if style == 2 else word


word = st.one_of(
    st.sampled_from(PHRASES),
    st.sampled_from(DELAYS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8),
    st.text(max_size=6),
)
line = st.builds(
    lambda enh, words, seps, style: (enh + " " if enh else "")
    + "".join(_case(w, style) + s for w, s in zip(words, seps)),
    st.one_of(st.just(""), st.sampled_from(ENHANCED)),
    st.lists(word, max_size=10),
    st.lists(st.sampled_from(SEPARATORS), min_size=10, max_size=10),
    st.integers(0, 2),
)
codes = st.one_of(st.sampled_from([220, 250, 354, 421, 450, 451, 452, 550, 552, 553, 554, 556]),
                  st.integers(100, 599), st.integers(-1, 999))
commands = st.one_of(st.none(), st.sampled_from(list(Command)),
                     st.sampled_from(["RCPT", "mail from:<a@b>", ".", "EHLO x", "frob"]))
providers = st.one_of(st.none(), st.none(), st.sampled_from(
    ["google", "microsoft", "yahoo", "mx.example.org", "aspmx.l.google.com",
     "x.mail.protection.outlook.com"]))


def outcome(classifier: Classifier, reply: Any, command: Any, provider: Any) -> Any:
    try:
        return classifier.classify(reply, command, provider=provider)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(code=codes, lines=st.lists(line, min_size=1, max_size=4), command=commands,
       provider=providers)
def test_matchers_agree(both: Any, code: int, lines: list[str], command: Any,
                        provider: Any) -> None:
    # ``both``: the two parser modules; the test is left out without the compiled ones.
    PYTHON, COMPILED = matchers()
    encoded = [text.encode("utf-8", "surrogatepass").replace(b"\n", b" ") for text in lines]
    text = b"\n".join(encoded)
    expected = outcome(PYTHON, (code, text), command, provider)
    assert outcome(COMPILED, (code, text), command, provider) == expected
    assert outcome(COMPILED, (code, text.decode("utf-8", "surrogateescape")), command,
                   provider) == expected
    if 0 <= code <= 999:
        for parser in both:
            made = parser.Reply(code, encoded)
            for classifier in (PYTHON, COMPILED):
                assert outcome(classifier, made, command, provider) == expected
            if 100 <= code <= 599:
                (wire,) = parser.ReplyParser().feed(made.to_bytes())
                for classifier in (PYTHON, COMPILED):
                    assert outcome(classifier, wire, command, provider) == expected


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), code=st.integers(-1, 999))
def test_matchers_agree_on_any_bytes(both: Any, data: bytes, code: int) -> None:
    PYTHON, COMPILED = matchers()
    assert outcome(COMPILED, (code, data), None, None) == outcome(PYTHON, (code, data), None, None)
