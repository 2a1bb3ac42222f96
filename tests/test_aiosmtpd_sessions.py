"""Real servers on 127.0.0.1: the standard smtplib classes and fastreply's
drop-ins run the same sessions and must see the same replies.

* aiosmtpd (an SMTP and an LMTP server in a thread): EHLO, MAIL, RCPT good
  and rejected, DATA, RSET, VRFY, NOOP, HELP, an unknown command, pipelined
  commands, QUIT.
* A scripted TLS server (certificate made with the ``openssl`` command; the
  test is skipped without it) that sends plaintext after its ``220`` to
  STARTTLS: nothing of it may be taken as a reply after the handshake.

Every server listens on loopback only and is stopped by the test.
"""

from __future__ import annotations

import smtplib
import ssl
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import pytest

from fastreply import smtplib as fsmtplib
from sending_scenarios import start_controller
from tls import INJECTED, client_context, make_certificate, tls_server

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
aiosmtpd_lmtp = pytest.importorskip("aiosmtpd.lmtp")

pytestmark = pytest.mark.server

HOST = "127.0.0.1"
TIMEOUT = 10.0


def client_class(impl: ModuleType, base: type[smtplib.SMTP]) -> type[smtplib.SMTP]:
    return type("Client", (base,), {"parser": impl.ReplyParser})


class Handler:
    """Accepts mail for anyone but ``@bad.example``; keeps what it got."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.endswith("@bad.example"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 2.0.0 Message accepted for delivery"


class LMTPController(aiosmtpd_controller.Controller):  # type: ignore[misc,name-defined]
    def factory(self) -> Any:
        return aiosmtpd_lmtp.LMTP(self.handler)


@pytest.fixture(params=["smtp", "lmtp"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, Handler]]:
    """An aiosmtpd server on a free loopback port, for one test."""
    kind = request.param
    handler = Handler()
    controller_class = LMTPController if kind == "lmtp" else aiosmtpd_controller.Controller
    controller = start_controller(controller_class, handler)
    try:
        yield kind, controller.port, handler
    finally:
        controller.stop()


MESSAGE = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nHello\r\n.dot\r\n"


def session(cls: type[smtplib.SMTP], port: int) -> list[Any]:
    """A whole session; every reply and everything that was raised."""
    out: list[Any] = []

    def step(name: str, call: Callable[[], Any]) -> None:
        try:
            out.append((name, call()))
        except smtplib.SMTPException as exc:
            out.append((name, type(exc), exc.args))

    client = cls(local_hostname="client.example", timeout=TIMEOUT)
    try:
        step("connect", lambda: client.connect(HOST, port))
        step("ehlo", client.ehlo)
        out.append(("features", sorted(client.esmtp_features.items())))
        step("mail", lambda: client.mail("a@example.org", ["BODY=8BITMIME"]))
        step("rcpt good", lambda: client.rcpt("b@example.net"))
        step("rcpt rejected", lambda: client.rcpt("nobody@bad.example"))
        step("data", lambda: client.data(MESSAGE))
        step("rset", client.rset)
        step("vrfy", lambda: client.verify("postmaster"))
        step("noop", client.noop)
        step("help", client.help)
        step("help mail", lambda: client.help("MAIL"))
        step("unknown", lambda: client.docmd("XYZZY", "plugh"))
        step("bad syntax", lambda: client.docmd("MAIL", "nonsense"))
        # Pipelined: three commands in one write, then three replies.
        client.send(b"NOOP\r\nRSET\r\nVRFY\r\n")
        step("pipelined", lambda: [client.getreply() for _ in range(3)])
        step("sendmail", lambda: client.sendmail("a@example.org", ["c@example.net", "x@bad.example"],
                                                 MESSAGE))
        step("quit", client.quit)
    finally:
        client.close()
    return out


def test_aiosmtpd_session_same_replies(impl: ModuleType, server: tuple[str, int, Handler]) -> None:
    kind, port, handler = server
    base = smtplib.LMTP if kind == "lmtp" else smtplib.SMTP
    drop_in = fsmtplib.LMTP if kind == "lmtp" else fsmtplib.SMTP
    expected = session(base, port)
    got = session(client_class(impl, drop_in), port)
    assert got == expected
    replies = dict((step[0], step[1]) for step in got if len(step) == 2)
    assert replies["connect"][0] == 220
    assert replies["rcpt good"] == (250, b"2.1.5 OK")
    assert replies["rcpt rejected"] == (550, b"5.1.1 <nobody@bad.example>: Recipient address rejected: "
                                              b"User unknown")
    assert replies["unknown"][0] == 500
    assert [code for code, _ in replies["pipelined"]] == [250, 250, 501]
    assert replies["quit"][0] == 221
    assert len(handler.messages) == 4  # DATA and sendmail, once per client


def test_aiosmtpd_session_patched(impl: ModuleType, server: tuple[str, int, Handler]) -> None:
    kind, port, _ = server
    base = smtplib.LMTP if kind == "lmtp" else smtplib.SMTP
    expected = session(base, port)
    with fsmtplib.patched(parser=impl.ReplyParser):
        got = session(base, port)
    assert got == expected


# -- a real TLS handshake after plaintext injection ----------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def tls_session(cls: type[smtplib.SMTP], cert: tuple[Path, Path], injected: bytes,
                seen: list[bytes] | None = None) -> list[Any]:
    port, thread, errors = tls_server(cert, injected, ehlo_first=True)
    context = client_context(cert)
    client = cls(local_hostname="client.example", timeout=TIMEOUT)
    if seen is not None:
        # Record what the drop-in holds, read ahead, when the handshake starts.
        wrap_socket = context.wrap_socket

        def recording_wrap_socket(*args: Any, **kwargs: Any) -> Any:
            seen.append(client.fastreply_pending())  # type: ignore[attr-defined]
            return wrap_socket(*args, **kwargs)

        context.wrap_socket = recording_wrap_socket  # type: ignore[method-assign]
    client._host = "localhost"  # the name the certificate is for
    out: list[Any] = []
    try:
        out.append(client.connect(HOST, port))
        out.append(client.ehlo())
        out.append(client.starttls(context=context))
        out.append(client.ehlo())
        out.append(sorted(client.esmtp_features.items()))
        out.append(client.quit())
    finally:
        client.close()
        thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert not errors, errors
    return out


@pytest.mark.parametrize("injected", [b"", INJECTED])
def test_real_starttls_drops_plaintext(impl: ModuleType, certificate: tuple[Path, Path],
                                       injected: bytes) -> None:
    expected = tls_session(smtplib.SMTP, certificate, injected)
    seen: list[bytes] = []
    got = tls_session(client_class(impl, fsmtplib.SMTP), certificate, injected, seen)
    assert got == expected
    # The injected bytes came in the 220's write: the drop-in had read them
    # (Linux delivers one small loopback write to one recv), and dropped them.
    assert len(seen) == 1 and injected.startswith(seen[0])
    if sys.platform == "linux":
        assert seen == [injected]
    assert got[3] == (250, b"mx.example.org\nSIZE 1000")
    assert got[4] == [("size", "1000")]


def test_smtp_ssl_session_same_replies(impl: ModuleType, certificate: tuple[Path, Path]) -> None:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    handler = Handler()
    controller = start_controller(aiosmtpd_controller.Controller, handler,
                                  ssl_context=server_context)
    try:
        results = []
        for cls in (smtplib.SMTP_SSL, client_class(impl, fsmtplib.SMTP_SSL)):
            context = ssl.create_default_context(cafile=str(certificate[0]))
            client = cls(local_hostname="client.example", timeout=TIMEOUT, context=context)
            try:
                client._host = "localhost"  # the name the certificate is for
                steps = [client.connect(HOST, controller.port), client.ehlo(),
                         client.sendmail("a@example.org", ["b@example.net", "c@bad.example"], MESSAGE),
                         client.noop(), client.quit()]
            finally:
                client.close()
            results.append(steps)
        assert results[0] == results[1]
        assert results[1][2] == {"c@bad.example": (550, b"5.1.1 <c@bad.example>: Recipient address "
                                                         b"rejected: User unknown")}
    finally:
        controller.stop()
