"""The sending engine (fastreply._transaction) on byte scripts, and the
smtplib drop-in's pipelined sendmail() against the standard one.

The engine never touches a socket: each test queues messages, checks the
bytes it hands out to be written, feeds it replies parsed by the
implementation under test (``impl``), and checks how each message ended.
The drop-in is then compared with the standard ``smtplib.SMTP`` (see
``Reference`` in test_smtplib_dropin.py for the one intended difference)
on a model server that answers by rules (tests/model_server.py), for every
combination of refusals at every stage, with and without PIPELINING and
CHUNKING: the same return value or exception with the same arguments, the
same messages delivered, and no transaction left open.
"""

from __future__ import annotations

import email.message
import smtplib
from types import ModuleType
from typing import Any, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastreply import _transaction
from fastreply import smtplib as fsmtplib
from fastreply._transaction import (
    Exchange,
    Transaction,
    TransactionEngine,
    command_line,
    dot_stuff,
    flatten_message,
    normalize_line_endings,
    quote_address,
    stdlib_message,
)
from fastreply.commands import Command
from model_server import ModelServer, Rules, connect

MESSAGE = b"Subject: test\r\n\r\nHello\r\n.a line that needs a dot\r\n"


def tx(recipients: Sequence[str] = ("b@example.net",), sender: str = "a@example.org",
       message: bytes = MESSAGE) -> Transaction:
    return Transaction(
        sender, recipients, message, b"MAIL FROM:<%s>\r\n" % sender.encode(),
        [b"RCPT TO:<%s>\r\n" % r.encode() for r in recipients],
    )


class Script:
    """An engine and a parser of ``impl``: ``write()`` is what the engine
    hands out now, ``reply(b"...")`` feeds replies."""

    def __init__(self, impl: ModuleType, **options: Any) -> None:
        self.engine = TransactionEngine(**options)
        self.parser = impl.ReplyParser()
        self.finished: list[Any] = []

    def write(self) -> bytes:
        return self.engine.data_to_send()

    def reply(self, *lines: bytes) -> list[Any]:
        done = self.engine.receive(self.parser.feed(b"".join(line + b"\r\n" for line in lines)))
        self.finished.extend(done)
        return done


# -- the engine, pipelined --------------------------------------------------------------


def test_pipelined_message_is_two_writes(impl: ModuleType) -> None:
    s = Script(impl)
    t = s.engine.submit(tx(["b@example.net", "c@example.net"]))
    assert s.write() == (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
                         b"RCPT TO:<c@example.net>\r\nDATA\r\n")
    assert s.write() == b""  # nothing more until DATA is answered
    assert s.reply(b"250 2.1.0 Ok", b"250 2.1.5 Ok", b"550 5.1.1 unknown", b"354 go") == []
    assert s.write() == b"Subject: test\r\n\r\nHello\r\n..a line that needs a dot\r\n.\r\n"
    assert s.reply(b"250 2.0.0 queued") == [t]
    assert t.done and t.error is None and not t.retryable
    assert t.accepted == ["b@example.net"]
    assert {k: v.code for k, v in t.refused.items()} == {"c@example.net": 550}
    assert [r.code for r in t.rcpt_replies] == [250, 550]
    assert (t.mail_reply.code, t.data_reply.code, [r.code for r in t.end_replies]) == (250, 354, [250])
    assert s.engine.idle and s.write() == b"" and not t.unexpected


def test_next_message_goes_with_the_end_of_this_one(impl: ModuleType) -> None:
    s = Script(impl)
    first, second, third = (s.engine.submit(tx([f"{n}@example.net"])) for n in "bcd")
    assert s.write().count(b"MAIL") == 1  # DATA ends the group
    s.reply(b"250 ok", b"250 ok", b"354 go")
    out = s.write()
    assert out == dot_stuff(MESSAGE) + b"MAIL FROM:<a@example.org>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"
    assert s.reply(b"250 queued", b"250 ok", b"250 ok", b"354 go") == [first]
    assert s.write().startswith(dot_stuff(MESSAGE) + b"MAIL FROM:")
    s.reply(b"250 queued", b"250 ok", b"250 ok", b"354 go")
    assert s.write() == dot_stuff(MESSAGE)
    assert s.reply(b"250 queued") == [third]
    assert second.done and second.error is None and s.engine.idle


def test_without_pipelining_one_command_a_write(impl: ModuleType) -> None:
    s = Script(impl, pipelining=False)
    t = s.engine.submit(tx(["b@example.net", "c@example.net"]))
    later = s.engine.submit(tx())
    writes = []
    for reply in (b"250 ok", b"250 ok", b"251 forwarded", b"354 go", b"250 queued"):
        writes.append(s.write())
        s.reply(reply)
    assert writes == [b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<b@example.net>\r\n",
                      b"RCPT TO:<c@example.net>\r\n", b"DATA\r\n", dot_stuff(MESSAGE)]
    assert t.done and t.error is None and t.accepted == ["b@example.net", "c@example.net"]
    assert s.write() == b"MAIL FROM:<a@example.org>\r\n" and not later.done


def test_without_pipelining_no_data_when_every_recipient_is_refused(impl: ModuleType) -> None:
    s = Script(impl, pipelining=False)
    t = s.engine.submit(tx(["b@example.net", "c@example.net"]))
    s.engine.submit(tx(["d@example.net"]))
    for reply in (b"250 ok", b"550 no", b"450 later"):
        s.write()
        s.reply(reply)
    assert t.done and isinstance(t.error, smtplib.SMTPRecipientsRefused)
    assert t.error.recipients == {"b@example.net": (550, b"no"), "c@example.net": (450, b"later")}
    assert s.write() == b"RSET\r\n"  # and the next message waits for its reply
    s.reply(b"250 reset")
    assert s.write() == b"MAIL FROM:<a@example.org>\r\n"


def test_every_recipient_refused_pipelined(impl: ModuleType) -> None:
    s = Script(impl)
    t = s.engine.submit(tx(["b@example.net"]))
    s.write()
    s.reply(b"250 ok", b"550 5.1.1 unknown", b"554 5.5.1 no valid recipients")
    assert isinstance(t.error, smtplib.SMTPRecipientsRefused)
    assert t.error.recipients == {"b@example.net": (550, b"5.1.1 unknown")}
    assert s.write() == b"RSET\r\n" and not t.content_sent


def test_data_accepted_although_nobody_was_the_message_is_not_sent(impl: ModuleType) -> None:
    s = Script(impl)
    t = s.engine.submit(tx(["b@example.net"]))
    s.write()
    s.reply(b"250 ok", b"550 unknown", b"354 go on")  # a server that should have said 554
    assert s.write() == b".\r\n"  # the data ends at once: nothing of the message
    assert not t.done
    s.reply(b"554 no valid recipients")
    assert isinstance(t.error, smtplib.SMTPRecipientsRefused) and t.done
    assert s.write() == b"RSET\r\n"


def test_sender_refused_drains_the_group_then_resets(impl: ModuleType) -> None:
    s = Script(impl)
    t = s.engine.submit(tx(["b@example.net", "c@example.net"]))
    nxt = s.engine.submit(tx(["d@example.net"]))
    s.write()
    s.reply(b"553 5.7.1 sender rejected", b"503 need MAIL")
    assert not t.done  # one RCPT and DATA still to be answered
    s.reply(b"503 need MAIL", b"503 need MAIL")
    assert t.done and isinstance(t.error, smtplib.SMTPSenderRefused)
    assert t.error.args == (553, b"5.7.1 sender rejected", "a@example.org")
    assert s.write() == b"RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<d@example.net>\r\nDATA\r\n"
    s.reply(b"250 reset", b"250 ok", b"250 ok", b"354 go")
    s.write()
    s.reply(b"250 queued")
    assert nxt.done and nxt.error is None


def test_data_command_refused_resets(impl: ModuleType) -> None:
    s = Script(impl)
    t = s.engine.submit(tx())
    s.write()
    s.reply(b"250 ok", b"250 ok", b"451 4.3.0 try later")
    assert t.done and isinstance(t.error, smtplib.SMTPDataError)
    assert t.error.args == (451, b"4.3.0 try later") and not t.content_sent
    assert s.write() == b"RSET\r\n"


def test_end_of_data_refused(impl: ModuleType) -> None:
    s = Script(impl)
    t = s.engine.submit(tx())
    s.write()
    s.reply(b"250 ok", b"250 ok", b"354 go")
    s.write()
    s.reply(b"554 5.7.1 spam")
    assert isinstance(t.error, smtplib.SMTPDataError) and t.error.args == (554, b"5.7.1 spam")
    assert s.write() == b"RSET\r\n"  # as smtplib.sendmail() does, nothing else being on the way


def test_end_of_data_refused_with_the_next_message_on_the_way(impl: ModuleType) -> None:
    # The next envelope went with this message's data: a RSET now would
    # land after its DATA, inside its content.  The server ended this
    # transaction by itself at the end of the data: no RSET is needed.
    s = Script(impl)
    first = s.engine.submit(tx())
    second = s.engine.submit(tx())
    s.write()
    s.reply(b"250 ok", b"250 ok", b"354 go")
    assert s.write().endswith(b"DATA\r\n")
    s.reply(b"554 spam", b"250 ok", b"250 ok", b"354 go")
    assert isinstance(first.error, smtplib.SMTPDataError)
    assert s.write() == dot_stuff(MESSAGE)
    s.reply(b"250 queued")
    assert second.error is None and s.engine.idle


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA", "END"])
def test_421_at_each_stage(impl: ModuleType, stage: str) -> None:
    s = Script(impl)
    t = s.engine.submit(tx(["b@example.net", "c@example.net"]))
    queued = s.engine.submit(tx())
    s.write()
    script = {
        "MAIL": [b"421 4.3.2 shutting down"],
        "RCPT": [b"250 ok", b"250 ok", b"421 4.3.2 shutting down"],
        "DATA": [b"250 ok", b"250 ok", b"250 ok", b"421 4.3.2 shutting down"],
        "END": [b"250 ok", b"250 ok", b"250 ok", b"354 go"],
    }[stage]
    s.reply(*script)
    if stage == "END":
        s.write()
        s.reply(b"421 4.3.2 shutting down")
    expected = {
        "MAIL": smtplib.SMTPSenderRefused(421, b"4.3.2 shutting down", "a@example.org"),
        "RCPT": smtplib.SMTPRecipientsRefused({"c@example.net": (421, b"4.3.2 shutting down")}),
        "DATA": smtplib.SMTPDataError(421, b"4.3.2 shutting down"),
        "END": smtplib.SMTPDataError(421, b"4.3.2 shutting down"),
    }[stage]
    assert type(t.error) is type(expected) and t.error.args == expected.args
    assert t.retryable  # the server refused it: nothing was delivered
    assert queued.done and isinstance(queued.error, smtplib.SMTPServerDisconnected)
    assert queued.retryable  # its data was not sent
    assert queued.written is (stage == "END")  # its envelope went with the first message's data
    assert s.engine.closing is not None and s.write() == b""  # no RSET to a closing server
    later = s.engine.submit(tx())
    assert later.done and later.retryable and isinstance(later.error, smtplib.SMTPServerDisconnected)


def test_connection_lost_tells_what_may_be_sent_again(impl: ModuleType) -> None:
    s = Script(impl)
    sent = s.engine.submit(tx())
    in_envelope = s.engine.submit(tx())
    queued = s.engine.submit(tx())
    s.write()
    s.reply(b"250 ok", b"250 ok", b"354 go")
    s.write()  # the first message's data, and the second one's envelope
    finished = s.engine.connection_lost(ConnectionResetError("reset by peer"))
    assert set(map(id, finished)) == {id(sent), id(in_envelope), id(queued)}
    for item in finished:
        assert isinstance(item.error, smtplib.SMTPServerDisconnected)
        assert "reset by peer" in str(item.error)
    assert not sent.retryable  # its data went out: it may have been delivered
    assert in_envelope.retryable and queued.retryable


def test_unsolicited_replies(impl: ModuleType) -> None:
    s = Script(impl)
    s.reply(b"421 4.4.2 idle too long")
    assert isinstance(s.engine.closing, smtplib.SMTPServerDisconnected)
    s = Script(impl)
    t = s.engine.submit(tx())
    s.write()
    s.reply(b"250 ok", b"250 ok", b"354 go")
    s.write()
    s.reply(b"250 queued", b"250 and one more")
    assert t.done and t.error is None
    assert isinstance(s.engine.closing, smtplib.SMTPResponseException)
    assert s.engine.closing.smtp_code == 250


def test_lmtp_one_reply_per_accepted_recipient(impl: ModuleType) -> None:
    s = Script(impl, lmtp=True)
    t = s.engine.submit(tx(["b@example.net", "c@example.net", "d@example.net"]))
    s.write()
    s.reply(b"250 ok", b"250 ok", b"550 unknown", b"250 ok", b"354 go")
    s.write()
    assert s.reply(b"250 2.0.0 delivered to b") == []
    assert s.reply(b"452 4.2.2 mailbox full") == [t]
    assert t.error is None
    assert {k: v.code for k, v in t.refused.items()} == {"c@example.net": 550, "d@example.net": 452}
    assert [r.code for r in t.end_replies] == [250, 452]
    s = Script(impl, lmtp=True)
    t = s.engine.submit(tx(["b@example.net", "c@example.net"]))
    s.write()
    s.reply(b"250 ok", b"250 ok", b"250 ok", b"354 go")
    s.write()
    s.reply(b"452 4.2.2 full", b"550 5.2.1 disabled")
    assert isinstance(t.error, smtplib.SMTPDataError) and t.error.args == (452, b"4.2.2 full")


def test_chunking_sends_the_message_once_someone_takes_it(impl: ModuleType) -> None:
    s = Script(impl, chunking=True)
    first = s.engine.submit(tx(["b@example.net", "c@example.net"]))
    second = s.engine.submit(tx(["d@example.net"]))
    assert s.write() == b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\n"
    s.reply(b"250 ok", b"250 ok")
    assert s.write() == b""  # still one RCPT to hear about
    s.reply(b"450 later")
    assert s.write() == (b"BDAT %d LAST\r\n" % len(MESSAGE) + MESSAGE
                         + b"MAIL FROM:<a@example.org>\r\nRCPT TO:<d@example.net>\r\n")
    s.reply(b"250 2.0.0 queued", b"250 ok", b"550 no")
    assert first.done and first.error is None and first.end_replies[0].code == 250
    assert isinstance(second.error, smtplib.SMTPRecipientsRefused) and not second.content_sent
    assert s.write() == b"RSET\r\n"


@pytest.mark.parametrize("pipelining", [True, False])
def test_chunking_large_message(impl: ModuleType, monkeypatch: pytest.MonkeyPatch, pipelining: bool) -> None:
    monkeypatch.setattr(_transaction, "BDAT_CHUNK", 10)
    message = bytes(range(48, 73))  # 25 bytes: chunks of 10, 10 and 5
    s = Script(impl, chunking=True, pipelining=pipelining)
    t = s.engine.submit(tx(message=message))
    writes = []
    for replies in ([b"250 ok"], [b"250 ok"], [b"250 10"], [b"250 20"], [b"250 queued"]) if not pipelining else (
            [b"250 ok", b"250 ok"], [b"250 10", b"250 20", b"250 queued"]):
        writes.append(s.write())
        s.reply(*replies)
    assert b"".join(writes).endswith(
        b"BDAT 10\r\n" + message[:10] + b"BDAT 10\r\n" + message[10:20] + b"BDAT 5 LAST\r\n" + message[20:])
    assert t.done and t.error is None and len(writes) == (2 if pipelining else 5)


def test_binarymime_needs_chunking(impl: ModuleType) -> None:
    binary = tx()
    binary.binary = True
    with pytest.raises(smtplib.SMTPNotSupportedError, match="CHUNKING"):
        TransactionEngine().submit(binary)


def test_commands_between_messages(impl: ModuleType) -> None:
    s = Script(impl)
    t = s.engine.submit(tx())
    noop = s.engine.command(b"NOOP")
    rset = s.engine.command("RSET")
    s.write()
    s.reply(b"250 ok", b"250 ok", b"354 go")
    assert s.write() == dot_stuff(MESSAGE) + b"NOOP\r\n"  # NOOP ends a group
    s.reply(b"250 queued", b"250 2.0.0 Ok")
    assert t.done and noop.done and noop.reply.code == 250 and noop.command is Command.NOOP
    assert s.write() == b"RSET\r\n"
    s.reply(b"250 ok")
    assert rset.reply.code == 250 and s.engine.idle


def test_greeting_and_table_check(impl: ModuleType) -> None:
    s = Script(impl)
    greeting = s.engine.greeting()
    assert s.write() == b""
    s.reply(b"220 mx ESMTP")
    assert greeting.done and greeting.reply.code == 220 and not greeting.unexpected
    t = s.engine.submit(tx())
    s.write()
    s.reply(b"250 ok", b"354 what", b"354 go")  # RCPT answered with 354: not in the table
    s.write()
    s.reply(b"250 queued")
    assert t.error is smtplib.SMTPRecipientsRefused or isinstance(t.error, smtplib.SMTPRecipientsRefused)
    assert [(c, r.code) for c, r in t.unexpected] == [(Command.RCPT, 354)]


def test_cancel_before_written(impl: ModuleType) -> None:
    s = Script(impl)
    first = s.engine.submit(tx())
    second = s.engine.submit(tx())
    assert s.engine.cancel(second)  # not written: taken out of the queue
    assert second.done and second.retryable and not second.written
    s.write()
    s.reply(b"250 ok", b"250 ok", b"354 go")
    assert s.write() == dot_stuff(MESSAGE)  # nothing of the cancelled one
    assert not s.engine.cancel(second)  # (once)


def test_withdrawing_a_message_on_its_way(impl: ModuleType) -> None:
    # DATA: at the 354 the engine hangs up (the items behind it are retryable).
    s = Script(impl)
    t = s.engine.submit(tx())
    behind = s.engine.submit(tx())
    s.write()
    assert s.engine.cancel(t) and t.withdrawn and not t.done
    s.reply(b"250 ok", b"250 ok", b"354 go")
    assert s.write() == b""  # not the message
    assert t.done and not t.retryable and "withdraw" in str(t.error)
    assert isinstance(s.engine.closing, smtplib.SMTPServerDisconnected)
    assert behind.done and behind.retryable and not behind.written
    # BDAT: a RSET instead of the chunks, and on with the next message.
    s = Script(impl, chunking=True)
    t = s.engine.submit(tx())
    s.write()
    s.engine.cancel(t)
    s.reply(b"250 ok", b"250 ok")
    assert s.write() == b"RSET\r\n" and t.done and s.engine.closing is None
    # One command at a time: a RSET instead of the next command.
    s = Script(impl, pipelining=False)
    t = s.engine.submit(tx(["b@example.net", "c@example.net"]))
    s.write()
    s.reply(b"250 ok")
    s.write()
    s.engine.cancel(t)
    s.reply(b"250 ok")
    assert s.write() == b"RSET\r\n" and t.done
    # Content sent: too late.
    s = Script(impl)
    t = s.engine.submit(tx())
    s.write()
    s.reply(b"250 ok", b"250 ok", b"354 go")
    s.write()
    assert not s.engine.cancel(t) and not t.withdrawn


def test_submit_twice_and_bad_table() -> None:
    engine = TransactionEngine()
    t = engine.submit(tx())
    with pytest.raises(ValueError, match="already submitted"):
        engine.submit(t)
    with pytest.raises(TypeError, match="ReplyTable"):
        TransactionEngine(table="MODERN")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="idle"):
        engine.configure(pipelining=False, chunking=False)


# -- helpers -----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_dot_stuff_is_smtplib_data(message: bytes) -> None:
    q = smtplib._quote_periods(message)  # type: ignore[attr-defined]
    if q[-2:] != b"\r\n":
        q += b"\r\n"
    assert dot_stuff(message) == q + b".\r\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"x."]), max_size=30))
def test_normalize_line_endings(pieces: list[bytes]) -> None:
    message = b"".join(pieces)
    fixed = normalize_line_endings(message)
    assert fixed == smtplib._fix_eols(message.decode("latin-1")).encode("latin-1")  # type: ignore[attr-defined]
    if fixed == message:
        assert normalize_line_endings(message) is message


_atom = st.text(alphabet="abcXYZ019.-_+!#'\"<> ()@,;:[]\\", min_size=0, max_size=12)


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.builds(lambda a, b: f"{a}@{b}", _atom, _atom),
    _atom,
    st.builds(lambda n, a: f"{n} <{a}>", _atom, _atom),
    st.emails(),
))
def test_quote_address_is_quoteaddr(address: str) -> None:
    assert quote_address(address) == smtplib.quoteaddr(address)


def test_command_line_refuses_smuggled_commands() -> None:
    assert command_line(b"NOOP") == command_line("NOOP\r\n") == b"NOOP\r\n"
    for bad in (b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>", "RCPT TO:<a\nb>", b"NOOP\r"):
        with pytest.raises(ValueError, match="newline"):
            command_line(bad)


def test_stdlib_message(impl: ModuleType) -> None:
    (reply,) = impl.ReplyParser().feed(b"250-a \t\r\n250-\r\n250  b\r\n")
    assert stdlib_message(reply) == b"a\n\nb" == reply._smtplib_pair()[1]
    assert reply._smtplib_pair() == (250, b"a\n\nb")


def test_flatten_message_like_send_message() -> None:
    msg = email.message.EmailMessage()
    msg["From"] = "Ann <ann@example.org>"
    msg["To"] = "bob@example.net"
    msg["Cc"] = "Carl <carl@example.net>"
    msg["Bcc"] = "dan@example.net"
    msg.set_content("Hello\n.dot\n")
    sender, recipients, data, extra = flatten_message(msg)
    assert sender == "ann@example.org" and extra == ()
    assert recipients == ["bob@example.net", "dan@example.net", "carl@example.net"]
    assert b"Bcc" not in data and data.endswith(b"\r\n") and b"\n.dot" in data
    with pytest.raises(smtplib.SMTPNotSupportedError):
        flatten_message(msg, sender="änn@example.org")
    assert flatten_message(msg, sender="änn@example.org", smtputf8=True)[3] == ("SMTPUTF8", "BODY=8BITMIME")
    msg["Resent-Date"] = "Mon, 30 Nov 2026 10:00:00 +0000"
    msg["Resent-From"] = "resender@example.org"
    msg["Resent-To"] = "eve@example.net"
    assert flatten_message(msg)[:2] == ("resender@example.org", ["eve@example.net"])
    msg["Resent-Date"] = "Mon, 30 Nov 2026 11:00:00 +0000"
    with pytest.raises(ValueError, match="Resent-"):
        flatten_message(msg)


# -- the drop-in, pipelined, against the standard sendmail() ------------------------------


class Reference(smtplib.SMTP):
    """The standard class, resetting after a refused DATA command (the one
    thing the drop-in does on purpose that the standard sendmail() does not;
    test_smtplib_dropin.py has the same)."""

    def data(self, msg: Any) -> tuple[int, bytes]:
        try:
            return super().data(msg)
        except smtplib.SMTPDataError as exc:
            if exc.smtp_code == 421:
                self.close()
            else:
                self._rset()
            raise


def drop_in(impl: ModuleType, **attributes: Any) -> type[smtplib.SMTP]:
    return type("DropIn", (fsmtplib.SMTP,), {"parser": impl.ReplyParser, **attributes})


def outcome(client: smtplib.SMTP, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", client.sendmail(*args, **kwargs)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        return type(exc).__name__, exc.args


CODES = {
    "mail": [b"250 2.1.0 Ok", b"451 4.3.0 try later", b"553 5.7.1 rejected", b"421 4.3.2 bye"],
    "rcpt": [b"250 2.1.5 Ok", b"251 2.1.5 forwarded", b"450 4.2.0 later", b"550 5.1.1 unknown",
             b"421 4.3.2 bye"],
    "data": [b"354 go", b"451 4.3.0 later", b"554 5.7.1 no", b"421 4.3.2 bye"],
    "end": [b"250 2.0.0 queued", b"451 4.3.0 later", b"554 5.7.1 spam", b"421 4.3.2 bye"],
}


@st.composite
def scenarios(draw: Any) -> tuple[Rules, list[str]]:
    recipients = [f"r{i}@example.net" for i in range(draw(st.integers(0, 4)))]
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


def run_both(impl: ModuleType, rules: Rules, recipients: list[str], chunk: int | None,
             message: bytes = MESSAGE, **attributes: Any) -> tuple[Any, ...]:
    results = []
    for cls in (Reference, drop_in(impl, **attributes)):
        client, server, sock = connect(cls, rules, chunk)
        result = outcome(client, "a@example.org", recipients, message)
        usable = client.sock is not None
        if usable:
            noop = client.noop()  # the connection is in step: the next reply is NOOP's
            assert noop == (250, b"2.0.0 Ok")
        results.append((result, server.delivered, server.open_transaction and not server.closed, usable, sock))
    return tuple(results)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from([None, 1, 7]), st.booleans())
def test_pipelined_sendmail_ends_as_the_standard_one(
    impl: ModuleType, scenario: tuple[Rules, list[str]], chunk: int | None, chunking: bool
) -> None:
    rules, recipients = scenario
    (std, std_delivered, _, std_usable, std_sock), (got, delivered, open_tx, usable, sock) = run_both(
        impl, rules, recipients, chunk, chunking=chunking)
    assert got == std
    assert delivered == std_delivered  # the same messages, once each, or none
    assert usable == std_usable
    assert not open_tx  # nothing left open on the server (unless it hung up)
    if "PIPELINING" in rules.extensions:
        # Fewer writes: MAIL, RCPT and DATA together.
        assert len(sock.writes) <= len(std_sock.writes)


@pytest.mark.parametrize("chunking", [False, True])
def test_pipelined_drop_in_writes_and_bytes(impl: ModuleType, chunking: bool) -> None:
    rules = Rules(extensions=("PIPELINING", "SIZE 1000", "CHUNKING"))
    std, got = run_both(impl, rules, ["b@example.net", "c@example.net"], None, chunking=chunking)
    assert got[0] == std[0] == ("ok", {})
    assert got[1] == std[1]
    std_sock, sock = std[4], got[4]
    # ehlo, MAIL, RCPT, RCPT, DATA, the message, NOOP: one write each for the
    # standard class; ehlo, the envelope, the message, NOOP for the drop-in.
    assert len(std_sock.writes) == 7 and len(sock.writes) == 4
    if not chunking:
        assert bytes(sock.sent) == bytes(std_sock.sent)  # the very same bytes, in fewer writes
    else:
        assert b"BDAT %d LAST\r\n" % len(MESSAGE) in bytes(sock.sent)


def test_drop_in_sends_message_bytes_as_smtplib(impl: ModuleType) -> None:
    # A bytes message with bare LFs goes as it is, as smtplib sends it; a
    # str message gets CRLF line ends.
    for message in (b"Subject: x\n\n.bare\nLF\n", "Subject: y\n\r\nstr\rmessage"):
        std, got = run_both(impl, Rules(), ["b@example.net"], None, message=message)  # type: ignore[arg-type]
        assert got[0] == std[0] and bytes(got[4].sent) == bytes(std[4].sent)


def test_drop_in_lmtp(impl: ModuleType) -> None:
    rules = Rules(lmtp=True, lmtp_end={"c@example.net": b"452 4.2.2 mailbox full"},
                  rcpt={"d@example.net": b"550 5.1.1 unknown"})
    client, server, sock = connect(drop_in(impl, pipelining=True), rules)
    client.__class__ = type("LMTPDropIn", (fsmtplib.LMTP, type(client)), {})
    result = client.sendmail("a@example.org", ["b@example.net", "c@example.net", "d@example.net"], MESSAGE)
    assert result == {"c@example.net": (452, b"4.2.2 mailbox full"), "d@example.net": (550, b"5.1.1 unknown")}
    assert server.delivered == [("a@example.org", ("b@example.net",), MESSAGE)]
    assert client.noop() == (250, b"2.0.0 Ok")  # every reply to the end of data was read


def test_drop_in_options_and_errors(impl: ModuleType) -> None:
    rules = Rules(extensions=("PIPELINING", "SIZE 1000", "DSN"))
    client, server, sock = connect(drop_in(impl), rules)
    client.sendmail("a@example.org", "b@example.net", MESSAGE, ["RET=HDRS"], ["NOTIFY=NEVER"])
    # (spelled as this Python's smtplib spells them: "FROM:", or "from:" from 3.13 on)
    assert server.commands[1:3] == [
        b"mail %s<a@example.org> size=%d RET=HDRS" % (fsmtplib._FROM.encode(), len(MESSAGE)),
        b"rcpt %s<b@example.net> NOTIFY=NEVER" % fsmtplib._TO.encode()]
    assert (fsmtplib._FROM, fsmtplib._TO) in (("FROM:", "TO:"), ("from:", "to:"))
    with pytest.raises(smtplib.SMTPNotSupportedError, match="SMTPUTF8"):
        client.sendmail("a@example.org", ["b@example.net"], MESSAGE, ["SMTPUTF8"])
    with pytest.raises(ValueError, match="newline"):
        client.sendmail("a@example.org", ["b@example.net"], MESSAGE, (),
                        ["NOTIFY=NEVER\r\nRCPT TO:<evil@example.net>"])
    sent = len(sock.sent)
    with pytest.raises(UnicodeEncodeError):
        client.sendmail("ä@example.org", ["b@example.net"], MESSAGE)
    assert len(sock.sent) == sent  # refused before anything was sent
    assert client.sendmail("a@example.org", ["b@example.net"], MESSAGE) == {}


def test_send_message_goes_through_the_pipelined_sendmail(impl: ModuleType) -> None:
    msg = email.message.EmailMessage()
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.net, c@example.net"
    msg.set_content("hi\n")
    std, got = [connect(cls, Rules()) for cls in (Reference, drop_in(impl))]
    assert std[0].send_message(msg) == got[0].send_message(msg) == {}
    assert std[1].delivered == got[1].delivered and len(got[2].writes) < len(std[2].writes)


def test_drop_in_getreply_after_sendmail_stays_in_step(impl: ModuleType) -> None:
    # A server that sends a reply too many: the standard sendmail() leaves it
    # for the next getreply(); so does the drop-in (it reads only the replies
    # it waits for).
    class Chatty(ModelServer):
        def _end_of_data(self, content: bytes) -> bytes:
            return super()._end_of_data(content) + b"250 an extra reply\r\n"

    results = []
    for cls in (Reference, drop_in(impl)):
        client = cls(local_hostname="client.example")
        server = Chatty(Rules())
        from model_server import ModelSocket

        sock = ModelSocket(server)
        client._get_socket = lambda host, port, timeout, sock=sock: sock  # type: ignore[method-assign]
        client.connect("mx.example.org", 25)
        results.append((client.sendmail("a@example.org", ["b@example.net"], MESSAGE), client.noop(), client.noop()))
    assert results[0] == results[1]
    assert results[1][1] == (250, b"an extra reply")


# -- what the outcome means: classification --------------------------------------------


def test_transaction_classification(impl: ModuleType) -> None:
    s = Script(impl)
    t = s.engine.submit(tx(["b@example.net", "c@example.net"]))
    s.write()
    s.reply(b"250 ok", b"250 ok",
            b"550 5.1.1 The email account that you tried to reach does not exist. x1 - gsmtp",
            b"354 go")
    s.write()
    s.reply(b"250 2.0.0 OK 1234 - gsmtp")
    assert t.error is None
    message = t.classification()
    assert message is not None and (message.category, message.action) == ("delivered", "none")
    dead = t.classification("c@example.net")
    assert dead is not None
    assert (dead.category, dead.action, dead.scope, dead.provider) == (
        "invalid_recipient", "suppress", "recipient", "google")
    assert t.classification("b@example.net") == message
    # A failure: the reply that decided it, with its command.
    s = Script(impl)
    t = s.engine.submit(tx())
    s.write()
    s.reply(b"451 4.7.1 Too many messages, try again in 15 minutes")
    s.reply(b"503 need MAIL", b"503 need MAIL")
    result = t.classification()
    assert result is not None and (result.category, result.action, result.retry_after) == (
        "rate_limited", "throttle", 900)
    assert t.decided_by is not None and t.decided_by[0] is Command.MAIL
    # No reply decided: None.
    s = Script(impl)
    t = s.engine.submit(tx())
    s.write()
    s.engine.connection_lost()
    assert t.done and t.classification() is None


def test_drop_in_exceptions_carry_the_transaction(impl: ModuleType) -> None:
    rules = Rules(rcpt={"gone@example.net": b"550 5.2.1 The email account that you tried to reach is disabled."})
    client, server, sock = connect(drop_in(impl), rules)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        client.sendmail("a@example.org", ["gone@example.net"], MESSAGE)
    t = caught.value.transaction  # type: ignore[attr-defined]
    assert t is client.last_transaction
    result = t.classification("gone@example.net")
    assert result.category == "inactive_recipient" and result.action == "suppress"
    assert client.sendmail("a@example.org", ["b@example.net"], MESSAGE) == {}
    assert client.last_transaction.classification().category == "delivered"
