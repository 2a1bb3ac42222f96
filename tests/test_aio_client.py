"""fastreply.aio.SMTP and SMTPPool against the model server on 127.0.0.1
(tests/model_server.py) and aiosmtpd: the same outcomes as the standard
smtplib.SMTP.sendmail() on the same behaviour, messages pipelined across
callers, cancellation, timeouts, STARTTLS, AUTH, backpressure, and a pool
that replaces the connections a server drops without losing a message or
sending one twice.  Every test runs with both parser implementations."""

from __future__ import annotations

import asyncio
import email.message
import smtplib
import ssl
from pathlib import Path
from types import ModuleType
from typing import Any, Awaitable, Callable, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastreply import MalformedReply, aio
from model_server import HOST, ModelServer, Rules, connect, serve
from test_sending import CODES, MESSAGE, Reference, outcome

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


def client(impl: ModuleType, port: int, **options: Any) -> aio.SMTP:
    return aio.SMTP(HOST, port, local_hostname="client.example", parser=impl.ReplyParser, **options)


async def aio_outcome(smtp: aio.SMTP, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        refused, reply = await smtp.sendmail(*args, **kwargs)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        return type(exc).__name__, exc.args
    return "ok", {rcpt: (r.code, r._smtplib_pair()[1]) for rcpt, r in refused.items()}


def test_send_and_replies(impl: ModuleType) -> None:
    async def main() -> None:
        servers: list[ModelServer] = []
        server = await serve(Rules(rcpt={"no@example.net": b"550 5.1.1 unknown"}), servers=servers)
        port = server.sockets[0].getsockname()[1]
        async with server, client(impl, port) as smtp:
            assert smtp.greeting is not None and smtp.greeting.code == 220
            assert smtp.esmtp is not None and smtp.esmtp.pipelining and smtp.supports_extension("size")
            refused, end = await smtp.sendmail("a@example.org", ["b@example.net", "no@example.net"], MESSAGE)
            assert type(end) is impl.Reply and end.code == 250 and end.message == "2.0.0 Ok: queued as MODEL"
            assert list(refused) == ["no@example.net"] and refused["no@example.net"].code == 550
            assert (await smtp.noop()).code == 250
            assert smtp.is_connected
        assert not smtp.is_connected
        assert servers[0].delivered == [("a@example.org", ("b@example.net",), MESSAGE)]
        assert servers[0].commands[-1] == b"QUIT"

    run(main())


@st.composite
def scenarios(draw: Any) -> tuple[Rules, list[str]]:
    recipients = [f"r{i}@example.net" for i in range(draw(st.integers(0, 3)))]
    extensions = ["SIZE 10240000", "8BITMIME"]
    if draw(st.booleans()):
        extensions.append("PIPELINING")
    if draw(st.booleans()):
        extensions.append("CHUNKING")
    rules = Rules(
        extensions=tuple(extensions),
        mail={"a@example.org": draw(st.sampled_from(CODES["mail"]))},
        rcpt={r: draw(st.sampled_from(CODES["rcpt"])) for r in recipients},
        data={"a@example.org": draw(st.sampled_from(CODES["data"]))},
        end={"a@example.org": draw(st.sampled_from(CODES["end"]))},
    )
    return rules, recipients


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_sendmail_ends_as_the_standard_one(impl: ModuleType, scenario: tuple[Rules, list[str]]) -> None:
    rules, recipients = scenario
    std_client, std_server, _ = connect(Reference, rules)
    expected = outcome(std_client, "a@example.org", recipients, MESSAGE)

    async def main() -> tuple[Any, ...]:
        servers: list[ModelServer] = []
        server = await serve(rules, servers=servers)
        port = server.sockets[0].getsockname()[1]
        async with server:
            smtp = client(impl, port)
            await smtp.connect()
            got = await aio_outcome(smtp, "a@example.org", recipients, MESSAGE)
            usable = smtp.is_connected
            if usable:
                assert (await smtp.noop()).code == 250  # in step
            smtp.close()
        return got, usable, servers[0]

    got, usable, model = run(main())
    assert got == expected
    assert model.delivered == std_server.delivered
    assert usable == (std_client.sock is not None)
    assert not (model.open_transaction and not model.closed)


def test_many_callers_share_one_pipelined_connection(impl: ModuleType) -> None:
    async def main() -> None:
        servers: list[ModelServer] = []
        server = await serve(Rules(), servers=servers)
        port = server.sockets[0].getsockname()[1]
        async with server, client(impl, port, max_pending=5) as smtp:
            protocol = smtp._protocol  # (its transport's writes are what this test counts)
            assert protocol is not None
            writes = 0
            write = protocol.transport.write  # type: ignore[union-attr]

            def counting(data: bytes) -> None:
                nonlocal writes
                writes += 1
                write(data)

            protocol.transport.write = counting  # type: ignore[union-attr,method-assign]
            seen = []

            async def send(n: int) -> None:
                seen.append(smtp.pending)
                await smtp.sendmail("a@example.org", [f"r{n}@example.net"], b"Subject: %d\r\n\r\nhi\r\n" % n)

            await asyncio.gather(*(send(n) for n in range(40)))
            assert max(seen) <= 5  # backpressure: at most max_pending in flight
            # One write a message (its data and the next envelope together), not two.
            assert writes <= 40 + 2
        delivered = servers[0].delivered
        assert sorted(rcpt for _, (rcpt,), _ in delivered) == sorted(f"r{n}@example.net" for n in range(40))

    run(main())


def test_cancelling(impl: ModuleType) -> None:
    async def main() -> None:
        servers: list[ModelServer] = []
        server = await serve(Rules(), servers=servers, delay=0.2)
        port = server.sockets[0].getsockname()[1]
        async with server:
            smtp = client(impl, port, max_pending=10)
            await smtp.connect()
            first = asyncio.ensure_future(smtp.sendmail("a@example.org", ["b@example.net"], MESSAGE))
            second = asyncio.ensure_future(smtp.sendmail("a@example.org", ["c@example.net"], MESSAGE))
            await asyncio.sleep(0.05)
            second.cancel()  # not written yet (the first one's DATA is unanswered): taken back
            await asyncio.sleep(0)
            assert (await first)[1].code == 250
            assert second.cancelled() and smtp.is_connected
            # Cancelled while its envelope is on its way: when DATA's 354
            # comes, the connection is closed so that the message is not
            # delivered (nothing else is on the way then).
            third = asyncio.ensure_future(smtp.sendmail("a@example.org", ["d@example.net"], MESSAGE))
            await asyncio.sleep(0.05)
            third.cancel()
            with pytest.raises(asyncio.CancelledError):
                await third
            await asyncio.sleep(0.4)
            assert not smtp.is_connected
            with pytest.raises(smtplib.SMTPServerDisconnected, match="withdraw"):
                await smtp.sendmail("a@example.org", ["e@example.net"], MESSAGE)
        assert [rcpts for _, rcpts, _ in servers[0].delivered] == [("b@example.net",)]


def test_cancelling_with_chunking_resets_instead(impl: ModuleType) -> None:
    async def main() -> None:
        servers: list[ModelServer] = []
        server = await serve(Rules(extensions=("PIPELINING", "CHUNKING")), servers=servers, delay=0.2)
        port = server.sockets[0].getsockname()[1]
        async with server:
            smtp = client(impl, port)
            await smtp.connect()
            sending = asyncio.ensure_future(smtp.sendmail("a@example.org", ["b@example.net"], MESSAGE))
            await asyncio.sleep(0.05)
            sending.cancel()  # its MAIL and RCPT are on the way; BDAT waits for their replies
            await asyncio.sleep(0.4)
            assert smtp.is_connected  # RSET instead of BDAT: no need to hang up
            assert (await smtp.sendmail("a@example.org", ["c@example.net"], MESSAGE))[1].code == 250
            await smtp.quit()  # (Python 3.12+: leaving the server waits for its connections)
        assert [rcpts for _, rcpts, _ in servers[0].delivered] == [("c@example.net",)]
        assert b"RSET" in servers[0].commands

    run(main())


def test_pool_cancelled_message_is_not_delivered_and_others_are(impl: ModuleType) -> None:
    async def main() -> None:
        servers: list[ModelServer] = []
        server = await serve(Rules(), servers=servers, delay=0.05)
        port = server.sockets[0].getsockname()[1]
        async with server:
            async with aio.SMTPPool(HOST, port, connections=2, depth=2, retries=1,
                                    local_hostname="client.example", parser=impl.ReplyParser) as pool:
                sends = [asyncio.ensure_future(pool.sendmail("a@example.org", [f"r{n}@example.net"], MESSAGE))
                         for n in range(8)]
                await asyncio.sleep(0.02)
                sends[1].cancel()
                results = await asyncio.gather(*sends, return_exceptions=True)
                assert isinstance(results[1], asyncio.CancelledError)
                assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 1)
        delivered = sorted(r for m in servers for _, (r,), _ in m.delivered)
        assert delivered == sorted(f"r{n}@example.net" for n in range(8) if n != 1)

    run(main())

    run(main())


def test_timeout(impl: ModuleType) -> None:
    async def main() -> None:
        server = await serve(Rules(), delay=1.0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            smtp = client(impl, port, timeout=0.3)
            with pytest.raises(aio.SMTPTimeoutError) as caught:
                await smtp.connect()  # the EHLO reply comes too late
            assert isinstance(caught.value, smtplib.SMTPServerDisconnected)
            assert isinstance(caught.value, TimeoutError)
            assert not smtp.is_connected

    run(main())


def test_421_closes_and_later_calls_fail(impl: ModuleType) -> None:
    async def main() -> None:
        server = await serve(Rules(mail={"close@example.org": b"421 4.3.2 shutting down"}))
        port = server.sockets[0].getsockname()[1]
        async with server:
            smtp = client(impl, port)
            await smtp.connect()
            with pytest.raises(smtplib.SMTPSenderRefused) as caught:
                await smtp.sendmail("close@example.org", ["b@example.net"], MESSAGE)
            assert caught.value.args == (421, b"4.3.2 shutting down", "close@example.org")
            assert not smtp.is_connected
            with pytest.raises(smtplib.SMTPServerDisconnected, match="closed"):
                await smtp.sendmail("a@example.org", ["b@example.net"], MESSAGE)

    run(main())


def test_malformed_reply_fails_the_connection(impl: ModuleType) -> None:
    class Broken(ModelServer):
        def _end_of_data(self, content: bytes) -> bytes:
            return b"HTTP/1.1 400 Bad Request\r\n"

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            model = Broken(Rules())
            writer.write(model.greeting())
            while data := await reader.read(65536):
                writer.write(model.receive(data))
            writer.close()

        server = await asyncio.start_server(handle, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            smtp = client(impl, port)
            await smtp.connect()
            with pytest.raises(smtplib.SMTPServerDisconnected, match="malformed reply") as caught:
                await smtp.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            assert isinstance(caught.value.__cause__, MalformedReply)
            assert not smtp.is_connected

    run(main())


def test_login(impl: ModuleType) -> None:
    async def main() -> None:
        rules = Rules(extensions=("PIPELINING", "AUTH LOGIN PLAIN"), users={"ann": "secret"})
        server = await serve(rules)
        port = server.sockets[0].getsockname()[1]
        async with server:
            for mechanism in ("PLAIN", "LOGIN", None):
                smtp = client(impl, port)
                await smtp.connect()
                assert (await smtp.login("ann", "secret", mechanism=mechanism)).code == 235
                smtp.close()
            smtp = client(impl, port)
            await smtp.connect()
            with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
                await smtp.login("ann", "wrong")
            assert caught.value.smtp_code == 535
            with pytest.raises(ValueError, match="unknown AUTH mechanism"):
                await smtp.login("ann", "secret", mechanism="XOAUTH9")
            smtp.close()
            async with client(impl, port, username="ann", password="secret") as smtp:
                assert (await smtp.sendmail("a@example.org", ["b@example.net"], MESSAGE))[1].code == 250

    run(main())


def test_starttls_drops_injected_plaintext(impl: ModuleType, tmp_path: Path) -> None:
    from tls import INJECTED, client_context, make_certificate, tls_server

    cert = make_certificate(tmp_path)
    port, thread, errors = tls_server(cert, INJECTED, ehlo_first=True)

    async def main() -> None:
        smtp = client(impl, port, tls_context=client_context(cert), timeout=10)
        await smtp.connect()  # EHLO offers STARTTLS: start_tls=None takes it
        assert smtp.esmtp is not None and smtp.esmtp.size == 1000  # the EHLO over TLS
        assert not smtp.esmtp.supports("AUTH")  # not the injected one
        await smtp.quit()

    run(main())
    thread.join(10)
    assert errors == []


def test_send_message(impl: ModuleType) -> None:
    msg = email.message.EmailMessage()
    msg["From"] = "Ann <ann@example.org>"
    msg["To"] = "bob@example.net"
    msg["Bcc"] = "carl@example.net"
    msg.set_content("Hello\n.dot\n")

    async def main() -> None:
        servers: list[ModelServer] = []
        server = await serve(Rules(), servers=servers)
        port = server.sockets[0].getsockname()[1]
        async with server, client(impl, port) as smtp:
            await smtp.send_message(msg)
        (sender, recipients, content), = servers[0].delivered
        assert (sender, recipients) == ("ann@example.org", ("bob@example.net", "carl@example.net"))
        assert b"Bcc" not in content and b"\r\n.dot\r\n" in content

    run(main())


def test_lmtp(impl: ModuleType) -> None:
    async def main() -> None:
        rules = Rules(lmtp=True, lmtp_end={"c@example.net": b"452 4.2.2 mailbox full"})
        server = await serve(rules)
        port = server.sockets[0].getsockname()[1]
        async with server, client(impl, port, lmtp=True) as smtp:
            refused, end = await smtp.sendmail("a@example.org", ["b@example.net", "c@example.net"], MESSAGE)
            assert {k: v.code for k, v in refused.items()} == {"c@example.net": 452}
            assert (await smtp.noop()).code == 250

    run(main())


# -- the pool --------------------------------------------------------------------------------


def test_pool_spreads_and_closes(impl: ModuleType) -> None:
    async def main() -> None:
        servers: list[ModelServer] = []
        server = await serve(Rules(), servers=servers)
        port = server.sockets[0].getsockname()[1]
        async with server:
            async with aio.SMTPPool(HOST, port, connections=4, depth=2, local_hostname="client.example",
                                    parser=impl.ReplyParser) as pool:
                results = await asyncio.gather(*(
                    pool.sendmail("a@example.org", [f"r{n}@example.net"], MESSAGE) for n in range(50)))
                assert all(end.code == 250 for _, end in results)
                assert pool.size == 4 and pool.opened == 4
            assert pool.size == 0
        assert len(servers) == 4 and all(s.closed for s in servers)
        delivered = sorted(r for s in servers for _, (r,), _ in s.delivered)
        assert delivered == sorted(f"r{n}@example.net" for n in range(50))

    run(main())


def test_pool_replaces_dropped_connections_without_loss_or_duplicates(impl: ModuleType) -> None:
    # Each connection takes three messages, then answers the next MAIL with 421
    # and hangs up: the pool must send every message exactly once.
    class Tired(ModelServer):
        def _command(self, line: bytes) -> bytes:
            if line.upper().startswith(b"MAIL") and len(self.delivered) >= 3:
                return self._reply(b"421 4.7.0 too many messages, come back later")
            return super()._command(line)

    async def main() -> None:
        models: list[ModelServer] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            model = Tired(Rules())
            models.append(model)
            writer.write(model.greeting())
            while not model.closed and (data := await reader.read(65536)):
                writer.write(model.receive(data))
            writer.close()

        server = await asyncio.start_server(handle, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            async with aio.SMTPPool(HOST, port, connections=3, depth=2, retries=2,
                                    local_hostname="client.example", parser=impl.ReplyParser) as pool:
                results = await asyncio.gather(*(
                    pool.sendmail("a@example.org", [f"r{n}@example.net"], MESSAGE) for n in range(30)),
                    return_exceptions=True)
                assert all(not isinstance(r, BaseException) for r in results), results
                assert pool.dropped >= 9
        delivered = [r for m in models for _, (r,), _ in m.delivered]
        assert sorted(delivered) == sorted(f"r{n}@example.net" for n in range(30))  # once each

    run(main())


def test_pool_cannot_connect(impl: ModuleType) -> None:
    async def main() -> None:
        server = await serve(Rules(greeting=b"554 5.3.2 not now"))
        port = server.sockets[0].getsockname()[1]
        async with server:
            async with aio.SMTPPool(HOST, port, connections=2, local_hostname="client.example") as pool:
                with pytest.raises(smtplib.SMTPConnectError) as caught:
                    await pool.sendmail("a@example.org", ["b@example.net"], MESSAGE)
                assert caught.value.smtp_code == 554

    run(main())


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="timeout"):
        aio.SMTP("localhost", timeout=0)
    with pytest.raises(ValueError, match="max_pending"):
        aio.SMTP("localhost", max_pending=0)
    with pytest.raises(ValueError, match="use_tls and start_tls"):
        aio.SMTP("localhost", use_tls=True, start_tls=True)
    with pytest.raises(ValueError, match="connections"):
        aio.SMTPPool("localhost", connections=0)
    with pytest.raises(TypeError):
        aio.SMTPPool("localhost", no_such_option=1)

    async def main() -> None:
        with pytest.raises(smtplib.SMTPServerDisconnected, match="connect"):
            await aio.SMTP("localhost").sendmail("a@example.org", ["b@example.net"], MESSAGE)

    run(main())


def test_against_aiosmtpd(impl: ModuleType) -> None:
    controller = pytest.importorskip("aiosmtpd.controller")
    from sending_scenarios import free_port

    class Handler:
        def __init__(self) -> None:
            self.messages: list[tuple[str, list[str], bytes]] = []

        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                              rcpt_options: Any) -> str:
            if address.startswith("no"):
                return "550 5.1.1 unknown user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 2.0.0 queued"

    handler = Handler()
    smtpd = controller.Controller(handler, hostname=HOST, port=free_port())
    smtpd.start()
    try:
        async def main() -> None:
            async with client(impl, smtpd.port) as smtp:
                results = await asyncio.gather(*(smtp.sendmail(
                    "a@example.org", [f"r{n}@example.net", "no@example.net"], MESSAGE) for n in range(10)))
                assert all(list(refused) == ["no@example.net"] and end.code == 250 for refused, end in results)

        run(main())
    finally:
        smtpd.stop()
    assert len(handler.messages) == 10


def test_failures_carry_the_transaction(impl: ModuleType) -> None:
    async def main() -> None:
        rules = Rules(mail={"a@example.org": b"421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily "
                                             b"deferred due to unexpected volume or user complaints"})
        server = await serve(rules)
        port = server.sockets[0].getsockname()[1]
        async with server:
            smtp = client(impl, port)
            await smtp.connect()
            with pytest.raises(smtplib.SMTPSenderRefused) as caught:
                await smtp.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            result = caught.value.transaction.classification()  # type: ignore[attr-defined]
            assert (result.action, result.provider) == ("throttle", "yahoo")

    run(main())
