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
    assert outcome == sc.expected_for(client, reference(scenario))


# -- a pool whose connections the server drops -------------------------------------------

MAILBOX = "/var/mail/fastreply-test"


def delivered_ids(marker: str, expected: int, timeout: float = 30.0) -> list[str]:
    """The ids of this run's messages in the test user's mailbox (Postfix
    delivers them a moment after it accepts them): every ``marker-N`` seen,
    once per delivery."""
    import re
    import time

    pattern = re.compile(rf"X-Fastreply-Id: ({re.escape(marker)}-\d+)")
    deadline = time.monotonic() + timeout
    while True:
        with open(MAILBOX, encoding="utf-8", errors="replace") as box:
            found = pattern.findall(box.read())
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _message(marker: str, n: int) -> bytes:
    return (f"From: <{sc.SENDER}>\r\nTo: <{sc.USER}>\r\nSubject: pool {n}\r\n"
            f"X-Fastreply-Id: {marker}-{n}\r\n\r\nmessage {n}\r\n").encode()


def test_pool_loses_nothing_when_postfix_hangs_up_mid_stream(postfix: tuple[str, int]) -> None:
    # Every fifth message has a recipient that Postfix answers with 421 and a
    # hang-up: that message fails (after its retries) with the 421, as
    # smtplib's would; the messages pipelined on the same connection are sent
    # again elsewhere, and each of the others is delivered exactly once.
    import asyncio
    import uuid

    import fastreply.aio

    marker = uuid.uuid4().hex
    closing = "close@fastreply.test"

    async def main() -> tuple[list[object], int]:
        async with fastreply.aio.SMTPPool(*postfix, connections=4, depth=3, retries=2,
                                          local_hostname=sc.LOCAL_HOSTNAME, timeout=sc.TIMEOUT) as pool:
            async def send(n: int) -> object:
                recipients = [sc.USER] + ([closing] if n % 5 == 0 else [])
                try:
                    refused, end = await pool.sendmail(sc.SENDER, recipients, _message(marker, n))
                except smtplib.SMTPRecipientsRefused as exc:
                    return {r: code for r, (code, _) in exc.recipients.items()}
                return sorted(refused), end.code

            results = await asyncio.gather(*(send(n) for n in range(40)), return_exceptions=True)
            return results, pool.dropped

    results, dropped = asyncio.run(asyncio.wait_for(main(), 120))
    for n, result in enumerate(results):
        assert result == ({closing: 421} if n % 5 == 0 else ([], 250)), (n, result)
    assert dropped >= 8  # each 421 closed a connection (3 tries of each of 8 messages)
    ids = delivered_ids(marker, 32)
    assert sorted(ids) == sorted(f"{marker}-{n}" for n in range(40) if n % 5)  # each once


def test_pool_replaces_connections_postfix_closed_for_idling(postfix: tuple[str, int]) -> None:
    # On PORT+3 Postfix says "421 4.4.2 ... timeout exceeded" after 2 idle
    # seconds and hangs up: a pool used again after a pause finds every
    # connection gone, and must replace them without failing a message.
    import asyncio
    import uuid

    import fastreply.aio

    host, port = postfix[0], postfix[1] + sc.DROPPING
    marker = uuid.uuid4().hex

    async def main() -> tuple[list[object], int, int, BaseException | None]:
        async with fastreply.aio.SMTPPool(host, port, connections=3, depth=2,
                                          local_hostname=sc.LOCAL_HOSTNAME, timeout=sc.TIMEOUT) as pool:
            async def send(n: int) -> object:
                refused, end = await pool.sendmail(sc.SENDER, [sc.USER], _message(marker, n))
                return refused, end.code

            first = await asyncio.gather(*(send(n) for n in range(12)), return_exceptions=True)
            opened = pool.opened
            await asyncio.sleep(3)  # every connection idles out
            second = await asyncio.gather(*(send(n) for n in range(12, 24)), return_exceptions=True)
            return first + second, opened, pool.opened, pool.open_error

    results, opened_first, opened, open_error = asyncio.run(asyncio.wait_for(main(), 120))
    assert results == [({}, 250)] * 24
    # The idle ones were replaced (how many the first burst opened depends on
    # how fast they were ready: 1 to 3).
    assert 1 <= opened_first <= 3 and opened > opened_first, open_error
    ids = delivered_ids(marker, 24)
    assert sorted(ids) == sorted(f"{marker}-{n}" for n in range(24))
