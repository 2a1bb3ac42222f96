"""The labelled set (tests/data/classification_cases.json): real replies from
providers, gateways, MTAs and the RFCs, with the classification a sender
should get.  Its parts (see classification_cases.md): ``dev`` and ``heldout``
from the first round, ``heldout2`` labelled before the second round of rules
and measured once after it (development data since the third round),
``heldout3`` labelled and committed before the third round of rules and
measured once after it (development data since the fourth round), ``heldout4``
labelled and committed before the fourth round of rules and measured once
after it, never tuned for."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fastreply.classification import ACTIONS, CATEGORIES, PROVIDERS, Classifier

CASES_PATH = Path(__file__).resolve().parent / "data" / "classification_cases.json"
CASES: list[dict[str, Any]] = json.loads(CASES_PATH.read_text("utf-8"))["cases"]

# The goals of issue 14, on replies the rules were not written from.
CATEGORY_GOAL = 0.80
ACTION_GOAL = 0.95

# Floors: what each part must not fall below.  ``dev``, ``heldout`` and
# ``heldout2`` are development data (rules are written from them; ``heldout2``
# measured 83/127 category, 114/127 action the one time it was held out).
DEV_CATEGORY_FLOOR = 0.95
DEV_ACTION_FLOOR = 0.97
# ``heldout3`` was measured once, after the third round of rules: 102/152
# category (67.1%), 139/152 action (91.4%).  Since the fourth round it is
# development data; the fourth round's rules give 125/152 (82.2%) and 146/152
# (96.1%), and its floors are that, rounded down.
HELDOUT3_CATEGORY_FLOOR = 0.82
HELDOUT3_ACTION_FLOOR = 0.96
# ``heldout4`` was measured once, after the fourth round of rules: 68/123
# category (55.3%), 107/123 action (87.0%), the same as the third round's rules
# gave it, both below the goals; its floors are that measure rounded down,
# never above it, so that a regression shows and the figure stays honest.
HELDOUT4_CATEGORY_FLOOR = 0.55
HELDOUT4_ACTION_FLOOR = 0.86


def agreement(classifier: Classifier, impl: ModuleType, split: str) -> tuple[float, float, list[str]]:
    cases = [c for c in CASES if c["split"] == split]
    category = action = 0
    misses = []
    for case in cases:
        reply = impl.Reply(case["code"], [line.encode() for line in case["lines"]])
        result = classifier.classify(reply, case["command"])
        category += result.category == case["category"]
        action += result.action == case["action"]
        if (result.category, result.action) != (case["category"], case["action"]):
            misses.append(f"{case['id']}: {result.category}/{result.action} "
                          f"(want {case['category']}/{case['action']}, rule {result.rule})")
    return category / len(cases), action / len(cases), misses


def test_the_set_is_well_formed() -> None:
    assert len(CASES) >= 150
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    splits = Counter(c["split"] for c in CASES)
    assert set(splits) == {"dev", "heldout", "heldout2", "heldout3", "heldout4"}
    assert splits["heldout"] >= 50 and splits["heldout2"] >= 80 and splits["heldout3"] >= 100
    assert splits["heldout4"] >= 120
    needed = {"google", "microsoft", "yahoo", "apple", "comcast", "gmx", "orange", "mimecast",
              "proofpoint", "barracuda", "postfix", "exim", "sendmail", "opensmtpd", "exchange"}
    assert needed <= {c["provider"] for c in CASES}
    # Each later held-out part is new replies: none twice, none also in an earlier part.
    seen = {(c["code"], tuple(c["lines"])) for c in CASES if c["split"] in ("dev", "heldout")}
    for split in ("heldout2", "heldout3", "heldout4"):
        part = [(c["code"], tuple(c["lines"])) for c in CASES if c["split"] == split]
        assert len(set(part)) == len(part), split
        assert not seen & set(part), split
        seen |= set(part)
    for case in CASES:
        assert case["category"] in CATEGORIES and case["action"] in ACTIONS, case["id"]
        assert case["source"] and case["lines"], case["id"]
        assert 100 <= case["code"] <= 599
    assert set(PROVIDERS) <= {c["provider"] for c in CASES}


@pytest.mark.parametrize("split", ["dev", "heldout", "heldout2"])
def test_development_agreement(classifier: Classifier, impl: ModuleType, split: str) -> None:
    category, action, misses = agreement(classifier, impl, split)
    assert category >= DEV_CATEGORY_FLOOR, misses
    assert action >= DEV_ACTION_FLOOR, misses


def test_heldout3_agreement(classifier: Classifier, impl: ModuleType) -> None:
    category, action, misses = agreement(classifier, impl, "heldout3")
    assert category >= HELDOUT3_CATEGORY_FLOOR, misses
    assert action >= HELDOUT3_ACTION_FLOOR, misses


def test_heldout4_agreement(classifier: Classifier, impl: ModuleType) -> None:
    category, action, misses = agreement(classifier, impl, "heldout4")
    assert category >= HELDOUT4_CATEGORY_FLOOR, misses
    assert action >= HELDOUT4_ACTION_FLOOR, misses
    # The floors record the measure; they are not the goals (issue 14), which
    # this part does not meet.
    assert HELDOUT4_CATEGORY_FLOOR < CATEGORY_GOAL and HELDOUT4_ACTION_FLOOR < ACTION_GOAL


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_both_matchers_and_all_reply_forms_agree(case: dict[str, Any], both: Any) -> None:
    from fastreply import _classify_c, _classify_py

    lines = [line.encode() for line in case["lines"]]
    results = set()
    for matcher in (_classify_py.Matcher, _classify_c.Matcher):
        classifier = _classifiers(matcher)
        for parser in both:
            results.add(classifier.classify(parser.Reply(case["code"], lines), case["command"]))
            (wire,) = parser.ReplyParser().feed(parser.Reply(case["code"], lines).to_bytes())
            results.add(classifier.classify(wire, case["command"]))
        results.add(classifier.classify((case["code"], b"\n".join(lines)), case["command"]))
    assert len(results) == 1, results


_BUILT: dict[Any, Classifier] = {}


def _classifiers(matcher: Any) -> Classifier:
    if matcher not in _BUILT:
        _BUILT[matcher] = Classifier(matcher=matcher)
    return _BUILT[matcher]
