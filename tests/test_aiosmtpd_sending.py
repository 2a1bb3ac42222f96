"""Sending against aiosmtpd: the scenarios of ``tests/sending_scenarios.py``
on its aiosmtpd scenario server, which refuses the same addresses at the same
stages with the same replies as ci/postfix.sh's Postfix, once as aiosmtpd is
(no PIPELINING announced) and once announcing PIPELINING.

For the standard library's ``sendmail()`` every scenario ends as documented;
every client in ``sending_scenarios.CLIENTS`` ends it as the standard library
does, and the server stored exactly the messages it accepted, byte for byte
(dot-stuffing undone).  Also: what aiosmtpd does with pipelined commands.
"""

from __future__ import annotations

import smtplib
import socket
from typing import Callable, Iterator

import pytest

import sending_scenarios as sc
from fastreply import ReplyParser

pytest.importorskip("aiosmtpd.controller")

Server = tuple[str, int, sc.ScenarioHandler]
Reference = Callable[[sc.Scenario], sc.Outcome]

SCENARIOS = sc.BASE_SCENARIOS
IDS = [s.id for s in SCENARIOS]


@pytest.fixture(scope="module", params=[False, True], ids=["as-is", "pipelining"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with sc.scenario_server(pipelining=request.param) as server:
        yield server


@pytest.fixture(scope="module")
def reference(server: Server) -> Reference:
    cache: dict[str, sc.Outcome] = {}

    def outcome(scenario: sc.Scenario) -> sc.Outcome:
        if scenario.id not in cache:
            cache[scenario.id] = sc.run_scenario(smtplib.SMTP, scenario, *server[:2])
        return cache[scenario.id]

    return outcome


# -- the harness itself (no server) ---------------------------------------------------


def test_mask_hides_only_queue_ids_and_dates() -> None:
    assert sc.mask(b"250 2.0.0 Ok: queued as 4dN2Lq1Xz6z9t") == (
        b"250 2.0.0 Ok: queued as <queue id>")
    assert sc.mask(b"421 at Mon, 30 Nov 2026 23:38:21 +0000 bye") == b"421 at <date> bye"
    assert sc.mask(b"550 5.1.1 queued nothing") == b"550 5.1.1 queued nothing"


def test_check_names_every_difference() -> None:
    outcome = sc.Outcome(None, "SMTPSenderRefused", (451, b"4.7.1 no", "a@b"), "closed")
    assert sc.check(outcome, sc.Expect("SMTPSenderRefused", 451, connection="closed")) == []
    problems = sc.check(outcome, sc.Expect("SMTPDataError", 451, {"x@y": 550}))
    assert problems == [
        "raised SMTPSenderRefused, expected SMTPDataError",
        "refused {}, expected {'x@y': 550}",
        "connection 'closed', expected 'usable'",
    ]
    assert sc.check(outcome, sc.Expect("SMTPSenderRefused", 553, connection="closed")) == [
        "code (451,), expected 553"]
    returned = sc.Outcome((("x@y", 550, b"no"),), None, (), "usable")
    assert sc.check(returned, sc.Expect(refused={"x@y": 550})) == []
    assert returned.describe() == "returned {'x@y': 550}; connection usable"


def test_scenario_ids_are_unique() -> None:
    ids = [s.id for s in sc.SCENARIOS]
    assert len(ids) == len(set(ids)) == len(sc.BASE_SCENARIOS) * len(sc.LISTENERS)


# -- the scenarios on aiosmtpd ----------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_stdlib_outcome_is_as_documented(reference: Reference, scenario: sc.Scenario) -> None:
    outcome = reference(scenario)
    assert sc.check(outcome, scenario.expected("aiosmtpd")) == [], outcome


@pytest.mark.server
@pytest.mark.parametrize("client", [c for _, c in sc.CLIENTS], ids=[n for n, _ in sc.CLIENTS])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_client_ends_as_stdlib_and_delivers(server: Server, reference: Reference,
                                            scenario: sc.Scenario, client: sc.Client) -> None:
    host, port, handler = server
    first = len(handler.messages)
    outcome = client.run(scenario, host, port)
    assert outcome == sc.expected_for(client, reference(scenario))
    # What the server stored: the scenario's message when sendmail() returned,
    # then the follow-up message of the connection check when it worked.
    expected = []
    if outcome.raised is None:
        refused = outcome.codes()
        accepted = [r for r in scenario.recipients if r not in refused]
        expected.append((scenario.sender, accepted, sc.delivered_form(scenario.message)))
    if outcome.connection == "usable":
        expected.append((sc.SENDER, [sc.USER], sc.MESSAGE))
    assert handler.messages[first:] == expected


# -- aiosmtpd and pipelined commands ------------------------------------------------------


def exchange(sock: socket.socket, data: bytes, replies: int, parser: ReplyParser) -> list[int]:
    """Write ``data`` at once, then read until ``replies`` replies came."""
    if data:
        sock.sendall(data)
    codes: list[int] = []
    while len(codes) < replies:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {codes}"
        codes += [r.code for r in parser.feed(chunk)]
    assert len(codes) == replies, codes
    return codes


@pytest.mark.server
def test_aiosmtpd_answers_pipelined_commands_in_order(server: Server) -> None:
    # aiosmtpd reads one line at a time from its stream and answers each
    # command before reading the next: commands written together (MAIL, RCPTs
    # and DATA; the end of one message with the next envelope) get their
    # replies in order, whether or not PIPELINING is announced.
    host, port, handler = server
    first = len(handler.messages)
    parser = ReplyParser()
    with socket.create_connection((host, port), timeout=sc.TIMEOUT) as sock:
        assert exchange(sock, b"", 1, parser) == [220]
        assert exchange(sock, b"EHLO client.fastreply.test\r\n", 1, parser) == [250]
        batch = (f"MAIL FROM:<{sc.SENDER}>\r\nRCPT TO:<{sc.USER}>\r\n"
                 f"RCPT TO:<{sc.UNKNOWN}>\r\nDATA\r\n").encode()
        assert exchange(sock, batch, 4, parser) == [250, 250, 550, 354]
        # The message, its end, and the next transaction in one write.
        batch = (sc.MESSAGE + b".\r\n" + f"MAIL FROM:<{sc.SENDER}>\r\n".encode()
                 + f"RCPT TO:<{sc.UNKNOWN}>\r\nDATA\r\nRSET\r\nNOOP\r\nQUIT\r\n".encode())
        # Every RCPT refused: DATA gets 503 and the lines after it are commands.
        assert exchange(sock, batch, 7, parser) == [250, 250, 550, 503, 250, 250, 221]
    assert handler.messages[first:] == [(sc.SENDER, [sc.USER], sc.MESSAGE)]
