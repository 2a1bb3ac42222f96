"""Sending scenarios for the real-server tests: one ``sendmail()`` each, with
what the standard library's ``smtplib.SMTP.sendmail()`` makes of it.

A :class:`Scenario` is an envelope and a message (sender, recipients, message
bytes, ``mail_options``, ``rcpt_options``) sent to one *listener* of the
Postfix that ``ci/postfix.sh`` sets up:

``main``    127.0.0.1:PORT (``FASTREPLY_POSTFIX``): PIPELINING, CHUNKING, SIZE, DSN ...
``nopipe``  PORT+1: the same server without PIPELINING and CHUNKING
``tls``     PORT+2: the same server offering STARTTLS (the client starts TLS first)

Postfix refuses chosen senders and recipients (access maps), the DATA command
and the end of data (by sender) and content (a header); the addresses are in
:data:`SENDER_REFUSALS` and the tables next to it, exactly as ``ci/postfix.sh``
configures them.  :func:`scenario_server` is an aiosmtpd server that refuses
the same addresses at the same stages with the same replies (and can announce
PIPELINING, which aiosmtpd does not by itself).

Running a scenario (:func:`run_scenario`, or :func:`run_scenario_async` for an
asyncio client) gives an :class:`Outcome`: what ``sendmail()`` returned (the
refused recipients) or raised (the exception's type name and arguments), with
Postfix's queue ids masked so that two runs compare equal, and what the
connection was good for afterwards (``"usable"``: a NOOP and another
``sendmail()`` worked; ``"closed"``: the client closed it, as smtplib does
after a 421; otherwise what failed).  Each scenario documents, as an
:class:`Expect`, the codes the standard library gets; a client plugged into
:data:`CLIENTS` must end every scenario exactly as the standard library does.

Shared by ``tests/test_postfix_sending.py`` and
``tests/test_aiosmtpd_sending.py``; it is not a test module itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping, Sequence

import fastreply.aio
import fastreply.smtplib
from sessions import smtplib_message

__all__ = [
    "CLIENTS",
    "Client",
    "Blocking",
    "AsyncClient",
    "ThreadedSMTP",
    "Expect",
    "Outcome",
    "Scenario",
    "BASE_SCENARIOS",
    "SCENARIOS",
    "LISTENERS",
    "listener_address",
    "postfix_address",
    "run_scenario",
    "run_scenario_async",
    "check",
    "expected_for",
    "mask",
    "scenario_server",
    "start_controller",
    "free_port",
]

HOST = "127.0.0.1"
TIMEOUT = 10.0
LOCAL_HOSTNAME = "client.fastreply.test"
#: The variable ci/postfix.sh's output line sets (``.ci/run`` exports it).
POSTFIX_VARIABLE = "FASTREPLY_POSTFIX"

#: Listener name -> offset from the port in ``FASTREPLY_POSTFIX`` (ci/postfix.sh's convention).
LISTENERS = {"main": 0, "nopipe": 1, "tls": 2}
#: ci/postfix.sh's listener that drops connections (errors, 2 s idle): not a
#: scenario listener, for the pool tests.
DROPPING = 3

# -- what the servers refuse (mirrors ci/postfix.sh) --------------------------------

DOMAIN = "fastreply.test"
#: The local user (``fastreply-test+anything@`` is the same mailbox).
USER = f"fastreply-test@{DOMAIN}"
#: A sender nobody refuses.
SENDER = "ok@sender.test"
UNKNOWN = f"no-such-user@{DOMAIN}"
RELAY = "someone@example.com"

#: Sender -> the reply to MAIL (Postfix: check_sender_access, smtpd_delay_reject = no).
SENDER_REFUSALS = {
    "refuse-perm@sender.test": (553, "5.7.1", "sender refused permanently"),
    "refuse-temp@sender.test": (451, "4.7.1", "sender refused for now"),
    "close@sender.test": (421, "4.7.0", "closing at MAIL"),
}
#: Recipient -> the reply to RCPT (check_recipient_access).
RECIPIENT_REFUSALS = {
    f"refuse-temp@{DOMAIN}": (450, "4.2.0", "recipient refused for now"),
    f"close@{DOMAIN}": (421, "4.7.0", "closing at RCPT"),
}
#: Sender -> the reply to the DATA command (smtpd_data_restrictions).
DATA_COMMAND_REFUSALS = {
    "datacmd-perm@sender.test": (554, "5.7.1", "DATA refused permanently"),
    "datacmd-temp@sender.test": (451, "4.7.1", "DATA refused for now"),
    "datacmd-close@sender.test": (421, "4.7.0", "closing at DATA"),
}
#: Sender -> the reply to the end of data (smtpd_end_of_data_restrictions).
END_OF_DATA_REFUSALS = {
    "data-perm@sender.test": (554, "5.7.1", "message refused permanently"),
    "data-temp@sender.test": (451, "4.7.1", "message refused for now"),
    "data-close@sender.test": (421, "4.7.0", "closing at the end of data"),
}
#: A header line that gets the message rejected at the end of data (header_checks).
REJECT_HEADER = b"X-Fastreply-Reject: yes"
CONTENT_REJECTED = "550 5.7.1 fastreply test: content rejected"
#: Postfix's message_size_limit in ci/postfix.sh (announced as SIZE).
SIZE_LIMIT = 10_240_000


def access_reply(address: str, kind: str, refusal: tuple[int, str, str]) -> str:
    """The reply Postfix gives for an access-map refusal of ``address``
    (``kind``: "Sender" or "Recipient")."""
    code, enhanced, text = refusal
    return f"{code} {enhanced} <{address}>: {kind} address rejected: fastreply test: {text}"


# -- messages ---------------------------------------------------------------------------


def message(subject: str, body: bytes = b"Hello from the fastreply sending tests.\r\n",
            headers: bytes = b"") -> bytes:
    """A small message (about 300 bytes with the default body)."""
    return (
        f"From: <{SENDER}>\r\nTo: <{USER}>\r\nSubject: fastreply sending test: {subject}\r\n"
        "Date: Mon, 30 Nov 2026 12:00:00 +0000\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@client.fastreply.test>\r\n".encode("ascii")
        + headers + b"\r\n" + body
    )


MESSAGE = message("plain")
#: Lines that need dot-stuffing (a lone ".", "..", ".x") and no line end at the end.
DOTS_MESSAGE = message(
    "dots", b"Line one.\r\n.\r\n..\r\n.x starts with a dot\r\n\r\n.\r\nlast line, no line end"
)
EIGHT_BIT_MESSAGE = message("8bit", "Grüße, naïve café, 日本語.\r\n".encode("utf-8"))
REJECTED_MESSAGE = message("rejected content", headers=REJECT_HEADER + b"\r\n")
#: Over SIZE_LIMIT: smtplib announces its size on the MAIL line (SIZE=...), refused at MAIL.
OVERSIZED_MESSAGE = message("oversized", (b"x" * 78 + b"\r\n") * (SIZE_LIMIT // 80 + 10))
#: Large but accepted: the data takes many writes.
LARGE_MESSAGE = message("large", (b"y" * 78 + b"\r\n") * 4_000)


def delivered_form(data: bytes) -> bytes:
    """What a server stores for ``data`` sent by smtplib: the same bytes with a
    final CRLF added when missing (the line that ends the data needs one)."""
    return data if data.endswith(b"\r\n") else data + b"\r\n"


# -- scenarios ------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What the standard library's ``sendmail()`` gets, in codes.

    ``raises``: the exception's type name, or None when it returns;
    ``code``: the exception's code (SMTPSenderRefused, SMTPDataError);
    ``refused``: recipient -> code, in the returned dict or in
    SMTPRecipientsRefused's; ``connection``: :attr:`Outcome.connection`."""

    raises: str | None = None
    code: int | None = None
    refused: Mapping[str, int] = field(default_factory=dict)
    connection: str = "usable"


@dataclass(frozen=True)
class Scenario:
    name: str
    sender: str
    recipients: tuple[str, ...]
    message: bytes
    expect: Expect
    mail_options: tuple[str, ...] = ()
    rcpt_options: tuple[str, ...] = ()
    listener: str = "main"
    #: What aiosmtpd's scenario server gives, when it differs from Postfix.
    expect_aiosmtpd: Expect | None = None
    about: str = ""

    @property
    def id(self) -> str:
        return self.name if self.listener == "main" else f"{self.name}@{self.listener}"

    def expected(self, server: str) -> Expect:
        if server == "aiosmtpd" and self.expect_aiosmtpd is not None:
            return self.expect_aiosmtpd
        return self.expect


#: After a DATA command refused with 4xx/5xx, smtplib raises from data() without
#: an RSET: the transaction is still open, so the next MAIL gets 503.
NESTED_MAIL = "next sendmail: SMTPSenderRefused 503"
#: After a 421 to DATA, smtplib raises without closing: the next command finds
#: the connection gone.
GONE = "noop: SMTPServerDisconnected"

BASE_SCENARIOS: list[Scenario] = [
    Scenario("accepted", SENDER, (USER,), MESSAGE, Expect(),
             about="one recipient, accepted"),
    Scenario("several-recipients", SENDER,
             (USER, *(f"fastreply-test+{i}@{DOMAIN}" for i in range(1, 6))), MESSAGE, Expect(),
             about="six recipients, all accepted"),
    Scenario("one-refused-550", SENDER, (USER, UNKNOWN), MESSAGE,
             Expect(refused={UNKNOWN: 550}), about="unknown user: returned in the dict"),
    Scenario("one-refused-450", SENDER, (f"refuse-temp@{DOMAIN}", USER), MESSAGE,
             Expect(refused={f"refuse-temp@{DOMAIN}": 450}),
             about="the first of two recipients refused for now"),
    Scenario("relay-denied", SENDER, (USER, RELAY), MESSAGE, Expect(refused={RELAY: 554}),
             about="a recipient in another domain: relaying denied"),
    Scenario("all-refused", SENDER, (UNKNOWN, f"refuse-temp@{DOMAIN}", RELAY), MESSAGE,
             Expect("SMTPRecipientsRefused",
                    refused={UNKNOWN: 550, f"refuse-temp@{DOMAIN}": 450, RELAY: 554}),
             about="every RCPT refused: no DATA, RSET, SMTPRecipientsRefused"),
    Scenario("sender-refused-perm", "refuse-perm@sender.test", (USER,), MESSAGE,
             Expect("SMTPSenderRefused", 553)),
    Scenario("sender-refused-temp", "refuse-temp@sender.test", (USER,), MESSAGE,
             Expect("SMTPSenderRefused", 451)),
    Scenario("sender-421", "close@sender.test", (USER,), MESSAGE,
             Expect("SMTPSenderRefused", 421, connection="closed"),
             about="421 to MAIL and the server hangs up; smtplib closes"),
    Scenario("rcpt-421", SENDER, (USER, f"close@{DOMAIN}", f"fastreply-test+after@{DOMAIN}"),
             MESSAGE,
             Expect("SMTPRecipientsRefused", refused={f"close@{DOMAIN}": 421},
                    connection="closed"),
             about="421 to the second RCPT: the third is never answered"),
    Scenario("datacmd-refused-perm", "datacmd-perm@sender.test", (USER,), MESSAGE,
             Expect("SMTPDataError", 554, connection=NESTED_MAIL),
             about="554 to the DATA command (no RSET by smtplib)"),
    Scenario("datacmd-refused-temp", "datacmd-temp@sender.test", (USER,), MESSAGE,
             Expect("SMTPDataError", 451, connection=NESTED_MAIL)),
    Scenario("datacmd-421", "datacmd-close@sender.test", (USER,), MESSAGE,
             Expect("SMTPDataError", 421, connection=GONE),
             about="421 to DATA: smtplib raises without closing"),
    Scenario("data-refused-perm", "data-perm@sender.test", (USER,), MESSAGE,
             Expect("SMTPDataError", 554), about="554 at the end of data"),
    Scenario("data-refused-temp", "data-temp@sender.test", (USER,), MESSAGE,
             Expect("SMTPDataError", 451)),
    Scenario("data-421", "data-close@sender.test", (USER,), MESSAGE,
             Expect("SMTPDataError", 421, connection="closed")),
    Scenario("content-rejected", SENDER, (USER,), REJECTED_MESSAGE,
             Expect("SMTPDataError", 550), about="header_checks REJECT at the end of data"),
    Scenario("dot-stuffing", SENDER, (USER,), DOTS_MESSAGE, Expect(),
             about="lines '.', '..', '.x'; no final line end"),
    Scenario("size-over-limit", SENDER, (USER,), OVERSIZED_MESSAGE,
             Expect("SMTPSenderRefused", 552),
             about="SIZE=<len> on the MAIL line exceeds the server's limit: 552 at MAIL"),
    Scenario("large-message", SENDER, (USER,), LARGE_MESSAGE, Expect(),
             about="320 kB, accepted (the data takes several writes)"),
    Scenario("8bitmime", SENDER, (USER,), EIGHT_BIT_MESSAGE, Expect(),
             mail_options=("BODY=8BITMIME",)),
    Scenario("smtputf8", "jörg@sender.test", (USER,), EIGHT_BIT_MESSAGE, Expect(),
             mail_options=("SMTPUTF8", "BODY=8BITMIME"), about="a UTF-8 sender address"),
    Scenario("dsn", SENDER, (USER,), MESSAGE, Expect(),
             mail_options=("RET=HDRS", "ENVID=fastreply-dsn-1"),
             rcpt_options=("NOTIFY=SUCCESS,FAILURE",),
             expect_aiosmtpd=Expect("SMTPSenderRefused", 555),
             about="DSN parameters (aiosmtpd has no DSN: 555 to MAIL)"),
]

#: Every scenario on every Postfix listener (``name@listener`` for the others).
SCENARIOS: list[Scenario] = [
    replace(s, listener=listener) for listener in LISTENERS for s in BASE_SCENARIOS
]


def postfix_address() -> tuple[str, int] | None:
    """(host, port) from ``FASTREPLY_POSTFIX``, None when it is not set.
    Raises ValueError when it is not host:port."""
    value = os.environ.get(POSTFIX_VARIABLE)
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{POSTFIX_VARIABLE} must be host:port, not {value!r}")
    return host, int(port)


def listener_address(base: tuple[str, int], listener: str) -> tuple[str, int]:
    """The address of a Postfix listener, from the main one's."""
    return base[0], base[1] + LISTENERS[listener]


def tls_context() -> ssl.SSLContext:
    """What the clients start TLS with: no certificate check (the test
    server's certificate is self-signed; smtplib's own default is the same)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# -- outcomes -------------------------------------------------------------------------

_VARYING = re.compile(
    rb"(queued as )[0-9A-Za-z]+"
    rb"|[A-Z][a-z]{2}, [ 0-9]?\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [-+]\d{4}"
)


def mask(data: bytes) -> bytes:
    """``data`` with what differs between two runs masked: queue ids
    (``queued as <queue id>``) and RFC 5322 dates."""
    return _VARYING.sub(
        lambda m: m.group(1) + b"<queue id>" if m.group(1) else b"<date>", data
    )


def _normal(value: Any) -> Any:
    """A value from a result or exception, comparable between runs and clients:
    bytes masked; replies (``Reply`` or aiosmtplib's) as smtplib's ``(code,
    message)``; dicts as tuples of items, in order."""
    if isinstance(value, bytes):
        return mask(value)
    if isinstance(value, dict):
        return tuple((k, *_normal(v)) for k, v in value.items())
    if hasattr(value, "code") and hasattr(value, "lines"):  # a fastreply Reply
        return (value.code, mask(smtplib_message(value)))
    if isinstance(value, tuple):
        return tuple(_normal(v) for v in value)
    return value


@dataclass(frozen=True)
class Outcome:
    """How a client's ``sendmail()`` ended (see the module documentation)."""

    #: The refused recipients it returned, in order: (address, code, message).
    refused: tuple[tuple[str, int, bytes], ...] | None
    #: The exception's type name, or None when it returned.
    raised: str | None
    #: The exception's arguments (normalized), or ().
    args: tuple[Any, ...]
    #: "usable", "closed", or what failed afterwards.
    connection: str

    def codes(self) -> dict[str, int]:
        """Recipient -> code: the returned refusals, or SMTPRecipientsRefused's."""
        if self.refused is not None:
            return {address: code for address, code, _ in self.refused}
        if self.raised == "SMTPRecipientsRefused" and self.args:
            return {address: code for address, code, _ in self.args[0]}
        return {}

    def describe(self) -> str:
        if self.raised is None:
            what = f"returned {self.codes() or '{}'}"
        elif self.raised == "SMTPRecipientsRefused":
            what = f"SMTPRecipientsRefused {self.codes()}"
        else:
            what = f"{self.raised} {self.args[0] if self.args else ''}".rstrip()
        return f"{what}; connection {self.connection}"


def _result_outcome(result: Any, error: BaseException | None, connection: str) -> Outcome:
    if error is not None:
        return Outcome(None, type(error).__name__, _normal(tuple(error.args)), connection)
    # smtplib: {recipient: (code, message)}; asyncio clients: (that dict, end-of-data reply).
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], dict):
        result, end_of_data = result
        if _code(end_of_data) != 250:  # a failure that should have raised SMTPDataError
            return Outcome(_normal(result), f"returned end of data {end_of_data!r}", (),
                           connection)
    if not isinstance(result, dict):
        raise TypeError(f"sendmail() returned {result!r}, not the refused recipients")
    return Outcome(_normal(result), None, (), connection)


def _code(reply: Any) -> int:
    return int(reply.code if hasattr(reply, "code") else reply[0])


def check(outcome: Outcome, expect: Expect) -> list[str]:
    """What in ``outcome`` is not what ``expect`` documents (empty: all is)."""
    problems = []
    if outcome.raised != expect.raises:
        problems.append(f"raised {outcome.raised}, expected {expect.raises}")
    elif expect.code is not None and (not outcome.args or outcome.args[0] != expect.code):
        problems.append(f"code {outcome.args[:1]}, expected {expect.code}")
    if outcome.codes() != dict(expect.refused):
        problems.append(f"refused {outcome.codes()}, expected {dict(expect.refused)}")
    if outcome.connection != expect.connection:
        problems.append(f"connection {outcome.connection!r}, expected {expect.connection!r}")
    return problems


# -- running a scenario: blocking clients ----------------------------------------------


def _after_sync(client: smtplib.SMTP) -> str:
    """What the connection is good for after sendmail(): see :class:`Outcome`."""
    if client.sock is None:
        return "closed"
    try:
        code, _ = client.noop()
    except Exception as exc:  # noqa: BLE001 - recorded
        return f"noop: {type(exc).__name__}"
    if code != 250:
        return f"noop {code}"
    try:
        refused = client.sendmail(SENDER, [USER], MESSAGE)
    except smtplib.SMTPResponseException as exc:
        return f"next sendmail: {type(exc).__name__} {exc.smtp_code}"
    except Exception as exc:  # noqa: BLE001 - recorded
        return f"next sendmail: {type(exc).__name__}"
    return "usable" if not refused else f"next sendmail refused {sorted(refused)}"


def run_scenario(cls: type[smtplib.SMTP], scenario: Scenario, host: str, port: int) -> Outcome:
    """Run ``scenario`` through the blocking class ``cls`` (``smtplib.SMTP`` or a
    subclass) against host:port: connect, STARTTLS for the ``tls`` listener,
    ``sendmail()``, then check the connection (NOOP and another sendmail)."""
    # Connecting in the constructor, as most callers do (it also sets the
    # host name starttls() checks the certificate against).
    client = cls(host, port, local_hostname=LOCAL_HOSTNAME, timeout=TIMEOUT)
    try:
        if scenario.listener == "tls":
            client.starttls(context=tls_context())
        result: Any = None
        error: BaseException | None = None
        try:
            result = client.sendmail(scenario.sender, list(scenario.recipients), scenario.message,
                                     list(scenario.mail_options), list(scenario.rcpt_options))
        except Exception as exc:  # noqa: BLE001 - the outcome
            error = exc
        return _result_outcome(result, error, _after_sync(client))
    finally:
        with contextlib.suppress(Exception):
            if client.sock is not None:
                client.quit()
        client.close()


# -- running a scenario: asyncio clients -------------------------------------------------

#: make(host, port, tls_context or None) -> an unconnected asyncio client with
#: ``connect()``, ``sendmail(sender, recipients, message, *, mail_options,
#: rcpt_options)``, ``noop()``, ``quit()`` and ``close()``; it must start TLS in
#: ``connect()`` when given a context.
AsyncMake = Callable[[str, int, "ssl.SSLContext | None"], Any]


def _default_is_open(client: Any) -> bool:
    try:
        return bool(client.is_connected)
    except AttributeError:
        raise TypeError(
            f"{type(client).__name__} has no is_connected: pass is_open= to AsyncClient"
        ) from None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _after_async(client: Any, is_open: Callable[[Any], bool]) -> str:
    """The asyncio twin of :func:`_after_sync`."""
    if not is_open(client):
        return "closed"
    try:
        code = _code(await client.noop())
    except Exception as exc:  # noqa: BLE001 - recorded
        return f"noop: {type(exc).__name__}"
    if code != 250:
        return f"noop {code}"
    try:
        result = await client.sendmail(SENDER, [USER], MESSAGE)
    except smtplib.SMTPResponseException as exc:
        return f"next sendmail: {type(exc).__name__} {exc.smtp_code}"
    except Exception as exc:  # noqa: BLE001 - recorded
        return f"next sendmail: {type(exc).__name__}"
    refused = result[0] if isinstance(result, tuple) else result
    return "usable" if not refused else f"next sendmail refused {sorted(refused)}"


async def run_scenario_async(
    make: AsyncMake, scenario: Scenario, host: str, port: int, *,
    is_open: Callable[[Any], bool] = _default_is_open,
) -> Outcome:
    """:func:`run_scenario` for an asyncio client made by ``make`` (see
    :data:`AsyncMake`).  ``is_open(client)`` says whether the client still
    holds its connection (default: its ``is_connected``).  Replies it returns
    (``Reply`` objects) are compared as smtplib's ``(code, message)``."""
    client = make(host, port, tls_context() if scenario.listener == "tls" else None)
    try:
        await client.connect()
        result: Any = None
        error: BaseException | None = None
        try:
            result = await client.sendmail(
                scenario.sender, list(scenario.recipients), scenario.message,
                mail_options=list(scenario.mail_options),
                rcpt_options=list(scenario.rcpt_options),
            )
        except Exception as exc:  # noqa: BLE001 - the outcome
            error = exc
        return _result_outcome(result, error, await _after_async(client, is_open))
    finally:
        with contextlib.suppress(Exception):
            if is_open(client):
                await client.quit()
        with contextlib.suppress(Exception):
            await _maybe_await(client.close())


class ThreadedSMTP:
    """A blocking ``smtplib.SMTP`` class behind the asyncio client interface
    (each call in a thread): checks that :func:`run_scenario_async` sees what
    :func:`run_scenario` sees, and shows what an asyncio client must offer."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None,
                 cls: type[smtplib.SMTP] = smtplib.SMTP) -> None:
        self._address = (host, port)
        self._tls = tls
        self._cls = cls
        self._smtp: smtplib.SMTP | None = None

    @property
    def is_connected(self) -> bool:
        return self._smtp is not None and self._smtp.sock is not None

    def _connect(self) -> None:
        self._smtp = self._cls(*self._address, local_hostname=LOCAL_HOSTNAME, timeout=TIMEOUT)
        if self._tls is not None:
            self._smtp.starttls(context=self._tls)

    async def connect(self) -> None:
        await asyncio.to_thread(self._connect)

    @property
    def smtp(self) -> smtplib.SMTP:
        if self._smtp is None:
            raise smtplib.SMTPServerDisconnected("not connected: call connect() first")
        return self._smtp

    async def sendmail(self, sender: str, recipients: Sequence[str], message: bytes, *,
                       mail_options: Sequence[str] = (),
                       rcpt_options: Sequence[str] = ()) -> dict[str, tuple[int, bytes]]:
        return await asyncio.to_thread(self.smtp.sendmail, sender, list(recipients), message,
                                       list(mail_options), list(rcpt_options))

    async def noop(self) -> tuple[int, bytes]:
        return await asyncio.to_thread(self.smtp.noop)

    async def quit(self) -> tuple[int, bytes]:
        return await asyncio.to_thread(self.smtp.quit)

    def close(self) -> None:
        if self._smtp is not None:
            self._smtp.close()


# -- the clients every scenario runs through ---------------------------------------------


class Client:
    """A client under test: ``run(scenario, host, port) -> Outcome``.

    ``resets``: the client resets (RSET) after a refused DATA command and
    hangs up after any 421, which the standard ``sendmail()`` does not (it
    leaves MAIL and RCPT open on the server, so the next MAIL gets 503, and
    after a 421 to DATA keeps a connection the server has closed): fastreply's
    clients do this on purpose, :func:`expected_for` says what that changes."""

    resets = False

    def run(self, scenario: Scenario, host: str, port: int) -> Outcome:
        raise NotImplementedError


def expected_for(client: Client, stdlib: Outcome) -> Outcome:
    """The outcome ``client`` must reach where the standard library reached
    ``stdlib``: the same, but for the connection after a refused DATA
    command when the client resets (see :attr:`Client.resets`)."""
    if not client.resets or stdlib.raised != "SMTPDataError":
        return stdlib
    if stdlib.connection == "next sendmail: SMTPSenderRefused 503":
        return replace(stdlib, connection="usable")
    if stdlib.connection == "noop: SMTPServerDisconnected":
        return replace(stdlib, connection="closed")
    return stdlib


@dataclass(frozen=True)
class Blocking(Client):
    """A blocking ``smtplib.SMTP`` class (or subclass)."""

    cls: type[smtplib.SMTP]
    resets: bool = False

    def run(self, scenario: Scenario, host: str, port: int) -> Outcome:
        return run_scenario(self.cls, scenario, host, port)


@dataclass(frozen=True)
class AsyncClient(Client):
    """An asyncio client made by ``make(host, port, tls_context)``, each
    scenario in a fresh event loop (``asyncio.run``)."""

    make: AsyncMake
    is_open: Callable[[Any], bool] = _default_is_open
    resets: bool = False

    def run(self, scenario: Scenario, host: str, port: int) -> Outcome:
        async def bounded() -> Outcome:
            return await asyncio.wait_for(
                run_scenario_async(self.make, scenario, host, port, is_open=self.is_open),
                4 * TIMEOUT,
            )

        return asyncio.run(bounded())


#: Every client that must end each scenario as ``smtplib.SMTP`` does (id, client).
#: The standard class itself is the reference and is always run first.
def _aio(**options: Any) -> AsyncMake:
    def make(host: str, port: int, tls: ssl.SSLContext | None) -> Any:
        return fastreply.aio.SMTP(host, port, local_hostname=LOCAL_HOSTNAME, timeout=TIMEOUT,
                                  start_tls=tls is not None, tls_context=tls, **options)

    return make


class _Sequential(fastreply.smtplib.SMTP):
    pipelining = False


class _Chunking(fastreply.smtplib.SMTP):
    chunking = True


CLIENTS: list[tuple[str, Client]] = [
    ("stdlib", Blocking(smtplib.SMTP)),
    ("stdlib-async-harness", AsyncClient(ThreadedSMTP)),
    # fastreply's: pipelined where the listener offers PIPELINING, BDAT where
    # it offers CHUNKING and the client uses it.
    ("dropin", Blocking(fastreply.smtplib.SMTP, resets=True)),
    ("dropin-sequential", Blocking(_Sequential, resets=True)),
    ("dropin-bdat", Blocking(_Chunking, resets=True)),
    ("aio", AsyncClient(_aio(), resets=True)),
    ("aio-data", AsyncClient(_aio(chunking=False), resets=True)),
]


# -- an aiosmtpd server that refuses like the Postfix above -------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_controller(controller_class: Any, handler: Any, **options: Any) -> Any:
    """Start an aiosmtpd controller for ``handler`` on a free loopback port
    (the caller stops it)."""
    for attempt in range(5):
        controller = controller_class(handler, hostname=HOST, port=free_port(),
                                      server_hostname="mx.example.org", ready_timeout=TIMEOUT,
                                      **options)
        try:
            controller.start()
        except Exception:  # the port was taken in between: try another one
            if attempt == 4:
                raise
            continue
        return controller
    raise AssertionError("unreachable")


def _headers(content: bytes) -> bytes:
    end = content.find(b"\r\n\r\n")
    return content if end < 0 else content[: end + 2]


class ScenarioHandler:
    """aiosmtpd handler refusing as ci/postfix.sh's Postfix does (the same
    addresses, stages, codes and texts; ``250 2.0.0 Ok: queued as <id>``).

    ``messages`` keeps each accepted message: (sender, recipients, content as
    received, dot-stuffing undone).  ``pipelining=True`` adds PIPELINING to the
    EHLO reply: aiosmtpd reads commands one line at a time and answers each in
    order, so pipelined commands (also across messages, and the message data
    written right after DATA) work, but it does not announce it itself."""

    def __init__(self, *, pipelining: bool = False) -> None:
        self.pipelining = pipelining
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses = [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        refusal = SENDER_REFUSALS.get(address)
        if refusal is not None:
            return access_reply(address, "Sender", refusal)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        refusal = RECIPIENT_REFUSALS.get(address)
        if refusal is not None:
            return access_reply(address, "Recipient", refusal)
        local, _, domain = address.rpartition("@")
        if domain.lower() != DOMAIN:
            return f"554 5.7.1 <{address}>: Relay access denied"
        if local.partition("+")[0] != USER.partition("@")[0]:
            return (f"550 5.1.1 <{address}>: Recipient address rejected: "
                    "User unknown in local recipient table")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusal = END_OF_DATA_REFUSALS.get(envelope.mail_from)
        if refusal is not None:
            return access_reply(envelope.mail_from, "Sender", refusal)
        content = envelope.original_content
        if re.search(rb"(?im)^X-Fastreply-Reject: *yes", _headers(content)):
            return CONTENT_REJECTED
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), content))
        return f"250 2.0.0 Ok: queued as {len(self.messages):04X}F{id(self) % 4096:03X}"


def _scenario_smtp_class() -> Any:
    from aiosmtpd.smtp import SMTP

    class ScenarioSMTP(SMTP):
        """aiosmtpd's SMTP that refuses the DATA command by sender and hangs up
        after every 421 it sends, as Postfix does."""

        async def smtp_DATA(self, arg: str) -> None:
            envelope = self.envelope
            sender = envelope.mail_from if envelope is not None else None
            refusal = DATA_COMMAND_REFUSALS.get(sender or "")
            if sender and refusal is not None and envelope and envelope.rcpt_tos and not arg:
                await self.push(access_reply(sender, "Sender", refusal))
                return
            await super().smtp_DATA(arg)

        async def push(self, status: Any) -> None:
            await super().push(status)
            text = status if isinstance(status, bytes) else status.encode("utf-8")
            if text.startswith(b"421") and self.transport is not None:
                self.transport.close()  # after the reply: close() flushes what is buffered

    return ScenarioSMTP


@contextlib.contextmanager
def scenario_server(*, pipelining: bool = False) -> Iterator[tuple[str, int, ScenarioHandler]]:
    """An aiosmtpd scenario server on a free loopback port: (host, port, handler).
    SIZE is announced with Postfix's limit; SMTPUTF8 is on."""
    from aiosmtpd.controller import Controller

    smtp_class = _scenario_smtp_class()

    class ScenarioController(Controller):
        def factory(self) -> Any:
            return smtp_class(self.handler, data_size_limit=SIZE_LIMIT, enable_SMTPUTF8=True,
                              hostname="mx.example.org", ident="fastreply scenario server")

    handler = ScenarioHandler(pipelining=pipelining)
    controller = start_controller(ScenarioController, handler)
    try:
        yield HOST, controller.port, handler
    finally:
        controller.stop()
