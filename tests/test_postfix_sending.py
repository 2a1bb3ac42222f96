"""Sending against a real Postfix: every scenario of ``tests/sending_scenarios.py``
ends, for the standard library's ``smtplib.SMTP.sendmail()``, as the scenario
documents; every client in ``sending_scenarios.CLIENTS`` ends it exactly as the
standard library does (returned refusals, exception type and arguments, what the
connection is good for afterwards), on each listener of the Postfix that
``ci/postfix.sh`` sets up: with PIPELINING (``FASTREPLY_POSTFIX``), without
PIPELINING and CHUNKING (its port + 1) and over STARTTLS (its port + 2).

Skipped, saying why, when ``FASTREPLY_POSTFIX`` is not set (and failed instead
when ``FASTREPLY_REQUIRE_SERVERS`` is set, as in ``.ci/run``); see
``tests/test_postfix.py``.  Adding a client: one line in ``CLIENTS`` in
``tests/sending_scenarios.py``.
"""

from __future__ import annotations

import os
import smtplib
from typing import Callable

import pytest

import sending_scenarios as sc

pytestmark = pytest.mark.server

Reference = Callable[[sc.Scenario], sc.Outcome]


@pytest.fixture(scope="module")
def postfix() -> tuple[str, int]:
    """(host, port) of the main listener of the Postfix that ci/postfix.sh started."""
    try:
        address = sc.postfix_address()
    except ValueError as exc:
        pytest.fail(str(exc))
    if address is None:
        if os.environ.get("FASTREPLY_REQUIRE_SERVERS"):
            pytest.fail(f"{sc.POSTFIX_VARIABLE} is not set (and FASTREPLY_REQUIRE_SERVERS is): "
                        "run ci/postfix.sh and export the line it prints")
        pytest.skip(
            f"{sc.POSTFIX_VARIABLE} is not set: run `bash ci/postfix.sh` (as root) and export "
            "the FASTREPLY_POSTFIX=host:port line it prints (.ci/run always does)"
        )
    return address


@pytest.fixture(scope="module")
def reference(postfix: tuple[str, int]) -> Reference:
    """Each scenario's outcome through the standard ``smtplib.SMTP`` (run once)."""
    cache: dict[str, sc.Outcome] = {}

    def outcome(scenario: sc.Scenario) -> sc.Outcome:
        if scenario.id not in cache:
            address = sc.listener_address(postfix, scenario.listener)
            cache[scenario.id] = sc.run_scenario(smtplib.SMTP, scenario, *address)
        return cache[scenario.id]

    return outcome


def scenario_ids(scenarios: list[sc.Scenario]) -> list[str]:
    return [s.id for s in scenarios]


# -- the listeners are what the scenarios need ----------------------------------------


@pytest.mark.parametrize(
    "listener, offered, not_offered",
    [
        ("main", {"pipelining", "chunking", "size", "dsn", "smtputf8", "8bitmime"}, {"starttls"}),
        ("nopipe", {"size", "dsn", "smtputf8", "8bitmime"}, {"pipelining", "chunking", "starttls"}),
        ("tls", {"pipelining", "chunking", "starttls"}, set()),
    ],
)
def test_listener_extensions(postfix: tuple[str, int], listener: str, offered: set[str],
                             not_offered: set[str]) -> None:
    with smtplib.SMTP(*sc.listener_address(postfix, listener), local_hostname=sc.LOCAL_HOSTNAME,
                      timeout=sc.TIMEOUT) as client:
        client.ehlo()
        features = set(client.esmtp_features)
        assert offered <= features and not features & not_offered, features
        assert client.esmtp_features["size"] == str(sc.SIZE_LIMIT)
        if listener == "tls":
            assert client.starttls(context=sc.tls_context())[0] == 220
            client.ehlo()
            assert "starttls" not in client.esmtp_features
            assert client.sock.version() is not None  # type: ignore[union-attr]


# -- the standard library gets what each scenario documents ---------------------------


@pytest.mark.parametrize("scenario", sc.SCENARIOS, ids=scenario_ids(sc.SCENARIOS))
def test_stdlib_outcome_is_as_documented(reference: Reference, scenario: sc.Scenario) -> None:
    outcome = reference(scenario)
    assert sc.check(outcome, scenario.expected("postfix")) == [], outcome


def refusal_text(scenario: sc.Scenario) -> dict[str, bytes]:
    """Address -> the reply text (smtplib's message) ci/postfix.sh's maps give
    in this scenario, for the refusals that come from its tables."""
    out = {}
    for table, kind, address in [
        (sc.SENDER_REFUSALS, "Sender", scenario.sender),
        (sc.DATA_COMMAND_REFUSALS, "Sender", scenario.sender),
        (sc.END_OF_DATA_REFUSALS, "Sender", scenario.sender),
        *((sc.RECIPIENT_REFUSALS, "Recipient", r) for r in scenario.recipients),
    ]:
        if address in table:
            out[address] = sc.access_reply(address, kind, table[address])[4:].encode()
    return out


@pytest.mark.parametrize("scenario", sc.BASE_SCENARIOS, ids=scenario_ids(sc.BASE_SCENARIOS))
def test_refusal_texts_are_the_tables(reference: Reference, scenario: sc.Scenario) -> None:
    # The aiosmtpd scenario server answers from the same tables: they must be
    # what Postfix really says (ci/postfix.sh and sending_scenarios.py agree).
    outcome = reference(scenario)
    texts = refusal_text(scenario)
    got = {address: message for address, _, message in (outcome.refused or ())}
    if outcome.raised == "SMTPRecipientsRefused":
        got = {address: message for address, _, message in outcome.args[0]}
    elif outcome.raised in ("SMTPSenderRefused", "SMTPDataError"):
        got[scenario.sender] = outcome.args[1]
    for address, text in texts.items():
        assert got.get(address) == text, (address, got)
    if scenario.name == "content-rejected":
        assert outcome.args == (550, sc.CONTENT_REJECTED[4:].encode())
    if scenario.name == "accepted":
        assert texts == {} and outcome.refused == ()


# -- every client ends every scenario as the standard library does ---------------------


@pytest.mark.parametrize("client", [c for _, c in sc.CLIENTS], ids=[n for n, _ in sc.CLIENTS])
@pytest.mark.parametrize("scenario", sc.SCENARIOS, ids=scenario_ids(sc.SCENARIOS))
def test_client_ends_as_stdlib(postfix: tuple[str, int], reference: Reference,
                               scenario: sc.Scenario, client: sc.Client) -> None:
    # For "stdlib" this is a second run of the same class: the outcomes of two
    # runs compare equal (queue ids masked), or the comparison means nothing.
    outcome = client.run(scenario, *sc.listener_address(postfix, scenario.listener))
    assert outcome == reference(scenario)
