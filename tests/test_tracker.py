"""ReplyTracker: replies matched to pipelined commands (RFC 2920, RFC 2033)."""

from __future__ import annotations

import functools
from types import ModuleType

import pytest

from fastreply import MalformedReply
from fastreply.commands import Command
from fastreply.tables import RFC821, SEED_2002
from fastreply.tracker import ReplyTracker, TrackedReply


def replies(impl: ModuleType, data: bytes) -> list[object]:
    return impl.ReplyParser().feed(data)


def track(impl: ModuleType, tracker: ReplyTracker, data: bytes) -> list[tuple[str | None, int, bool]]:
    out = []
    for item in tracker.match_all(replies(impl, data)):  # type: ignore[arg-type]
        out.append((item.command.name if item.command is not None else None, item.reply.code, item.expected))
    return out


def test_pipelined_transaction(impl: ModuleType) -> None:
    tracker = ReplyTracker()
    assert tracker.pending == (Command.CONNECT,)
    assert track(impl, tracker, b"220 mx ESMTP\r\n") == [("CONNECT", 220, True)]
    tracker.sent(b"EHLO me\r\n")
    assert track(impl, tracker, b"250-mx\r\n250 PIPELINING\r\n") == [("EHLO", 250, True)]
    for line in (b"MAIL FROM:<a@x>", b"RCPT TO:<b@x>", b"RCPT TO:<c@x>", b"DATA"):
        tracker.sent(line)
    assert tracker.pending == (Command.MAIL, Command.RCPT, Command.RCPT, Command.DATA)
    assert track(impl, tracker, b"250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n") == [
        ("MAIL", 250, True), ("RCPT", 250, True), ("RCPT", 550, True), ("DATA", 354, True)]
    # The end of data is expected by itself after the 354 ...
    assert tracker.pending == (Command.DATA_END,)
    # ... and telling the tracker about the final "." does not expect it twice.
    assert tracker.sent(b".\r\n") is Command.DATA_END
    tracker.sent(Command.QUIT)
    assert tracker.pending == (Command.DATA_END, Command.QUIT)
    assert track(impl, tracker, b"250 queued\r\n221 bye\r\n") == [
        ("DATA_END", 250, True), ("QUIT", 221, True)]
    assert tracker.pending == ()
    assert (tracker.commands_sent, tracker.replies_matched, tracker.unsolicited) == (7, 8, 0)


def test_whole_command_log_up_front(impl: ModuleType) -> None:
    # A command log with the "." written out (what `fastreply parse --commands`
    # does): the 354 must not add a second end of data.
    tracker = ReplyTracker()
    for line in (b"HELO me", b"MAIL FROM:<a@x>", b"RCPT TO:<b@x>", b"DATA", b".", b"QUIT"):
        tracker.sent(line)
    got = track(impl, tracker, b"220 hi\r\n250 a\r\n250 b\r\n250 c\r\n354 d\r\n250 e\r\n221 f\r\n")
    assert [g[0] for g in got] == ["CONNECT", "HELO", "MAIL", "RCPT", "DATA", "DATA_END", "QUIT"]
    assert all(g[2] for g in got) and tracker.pending == ()


def test_rejected_data_expects_no_end_of_data(impl: ModuleType) -> None:
    tracker = ReplyTracker(greeting=False)
    tracker.sent(b"DATA")
    tracker.sent(b"QUIT")
    assert track(impl, tracker, b"554 no valid recipients\r\n221 bye\r\n") == [
        ("DATA", 554, True), ("QUIT", 221, True)]


def test_unexpected_and_unsolicited(impl: ModuleType) -> None:
    tracker = ReplyTracker(greeting=False)
    tracker.sent(b"MAIL FROM:<a@x>")
    items = tracker.match_all(replies(impl, b"354 what\r\n250 stray\r\n421 closing\r\n"))
    first, stray, closing = items
    assert first.command is Command.MAIL and first.verdict is not None
    assert not first.expected and first.verdict.status == "unexpected"
    assert stray.unsolicited and stray.verdict is None and not stray.expected
    assert closing.unsolicited and closing.expected  # 421 may come at any time
    assert tracker.unsolicited == 2 and tracker.replies_matched == 1
    assert isinstance(closing, TrackedReply)


def test_lmtp_one_reply_per_accepted_recipient(impl: ModuleType) -> None:
    tracker = ReplyTracker(lmtp=True)
    for line in (b"LHLO me", b"MAIL FROM:<a@x>", b"RCPT TO:<b@x>", b"RCPT TO:<c@x>",
                 b"RCPT TO:<d@x>", b"DATA"):
        tracker.sent(line)
    got = track(impl, tracker, b"220 lmtp\r\n250 hi\r\n250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n"
                               b"354 go\r\n")
    assert got[-1] == ("DATA", 354, True)
    assert tracker.pending == (Command.DATA_END,)
    tracker.sent(b".")
    # Two recipients were accepted (c was refused): two replies to the ".".
    got = track(impl, tracker, b"250 b delivered\r\n452 d over quota\r\n")
    assert got == [("DATA_END", 250, True), ("DATA_END", 452, True)]
    assert tracker.pending == ()
    # A new transaction counts again: BDAT LAST, one recipient.
    for line in (b"MAIL FROM:<a@x>", b"RCPT TO:<b@x>", b"BDAT 5 LAST"):
        tracker.sent(line)
    got = track(impl, tracker, b"250 ok\r\n250 ok\r\n250 b delivered\r\n")
    assert [g[0] for g in got] == ["MAIL", "RCPT", "BDAT_LAST"] and tracker.pending == ()


def test_smtp_end_of_data_is_one_reply(impl: ModuleType) -> None:
    tracker = ReplyTracker(greeting=False)
    for line in (b"MAIL FROM:<a@x>", b"RCPT TO:<b@x>", b"RCPT TO:<c@x>", b"DATA"):
        tracker.sent(line)
    track(impl, tracker, b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
    assert tracker.pending == (Command.DATA_END,)


def test_auth_continuation_lines(impl: ModuleType) -> None:
    tracker = ReplyTracker(greeting=False)
    assert tracker.sent(b"AUTH LOGIN") is Command.AUTH
    track(impl, tracker, b"334 VXNlcm5hbWU6\r\n")
    assert tracker.sent(b"dXNlcg==") is Command.AUTH  # not an unknown verb
    track(impl, tracker, b"334 UGFzc3dvcmQ6\r\n")
    assert tracker.sent(b"cGFzcw==") is Command.AUTH
    assert track(impl, tracker, b"235 2.7.0 ok\r\n") == [("AUTH", 235, True)]
    assert tracker.sent(b"dXNlcg==") is Command.UNKNOWN  # AUTH is over


def test_table_choice(impl: ModuleType) -> None:
    tracker = ReplyTracker(RFC821, greeting=False)
    tracker.sent(b"EHLO me")
    (item,) = tracker.match_all(replies(impl, b"250 hi\r\n"))
    assert item.verdict is not None and item.verdict.table == "RFC821"
    assert not item.expected  # RFC 821 has no EHLO
    seed = ReplyTracker(SEED_2002, greeting=False)
    seed.sent(b"NOOP")
    (item,) = seed.match_all(replies(impl, b"200 ok\r\n"))
    assert item.expected
    with pytest.raises(TypeError, match="table must be a ReplyTable, not str"):
        ReplyTracker("MODERN")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a Command or a command line, not int"):
        tracker.sent(5)  # type: ignore[arg-type]


def test_feed_parses_and_errors_propagate(impl: ModuleType) -> None:
    tracker = ReplyTracker(parser=functools.partial(impl.ReplyParser, max_line_length=64))
    tracker.sent(b"NOOP")
    items = tracker.feed(b"220 hi\r\n250 o")
    assert [i.command for i in items] == [Command.CONNECT]
    items = tracker.feed(b"k\r\n")
    assert [(i.command, i.reply.code) for i in items] == [(Command.NOOP, 250)]
    with pytest.raises(MalformedReply) as info:
        tracker.feed(b"250 fine\r\nnonsense\r\n")
    assert [r.code for r in info.value.replies] == [250]
    assert tracker.parser.max_line_length == 64 and type(tracker.parser) is impl.ReplyParser


# (name, tracker options, [(lines sent, bytes received), ...])
SCRIPTS = [
    ("pipelined", {}, [
        ([], b"220 mx ESMTP\r\n"),
        ([b"EHLO me"], b"250-mx\r\n250 PIPELINING\r\n"),
        ([b"MAIL FROM:<a@x>", b"RCPT TO:<b@x>", b"RCPT TO:<c@x>", b"DATA"],
         b"250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n"),
        ([b".", b"QUIT"], b"250 queued\r\n221 bye\r\n"),
    ]),
    ("354 then the end of data in one read", {"greeting": False}, [
        ([b"MAIL FROM:<a@x>", b"RCPT TO:<b@x>", b"DATA"],
         b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"),
    ]),
    ("unexpected and unsolicited", {"greeting": False}, [
        ([b"MAIL FROM:<a@x>"], b"354 what\r\n250 stray\r\n421 closing\r\n"),
    ]),
    ("lmtp", {"lmtp": True}, [
        ([b"LHLO me", b"MAIL FROM:<a@x>", b"RCPT TO:<b@x>", b"RCPT TO:<c@x>",
          b"RCPT TO:<d@x>", b"DATA"],
         b"220 lmtp\r\n250 hi\r\n250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n"
         b"250 b delivered\r\n452 d over quota\r\n"),
        ([b"MAIL FROM:<a@x>", b"RCPT TO:<b@x>", b"BDAT 5 LAST", b"QUIT"],
         b"250 ok\r\n250 ok\r\n250 b delivered\r\n221 bye\r\n"),
    ]),
    ("auth", {"greeting": False}, [
        ([b"AUTH LOGIN"], b"334 VXNlcm5hbWU6\r\n"),
        ([b"dXNlcg=="], b"334 UGFzc3dvcmQ6\r\n"),
        ([b"cGFzcw==", b"NOOP"], b"235 2.7.0 ok\r\n250 ok\r\n500 what\r\n"),
    ]),
]


@pytest.mark.parametrize(("name", "options", "script"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
@pytest.mark.parametrize("whole", [True, False], ids=["whole", "bytewise"])
def test_feed_checks_in_the_parse_loop_as_received_does(
    impl: ModuleType, name: str, options: dict[str, bool], script: list[tuple[list[bytes], bytes]],
    whole: bool,
) -> None:
    """``feed()`` has the parser check each reply against the table on the
    way (``feed_checked``); it must match and judge exactly as
    :meth:`ReplyTracker.received` does reply by reply."""
    checked = ReplyTracker(**options, parser=impl.ReplyParser)
    one_by_one = ReplyTracker(**options)
    parser = impl.ReplyParser()
    for sent, received in script:
        for line in sent:
            assert checked.sent(line) == one_by_one.sent(line)
        reads = [received] if whole else [received[i : i + 1] for i in range(len(received))]
        got = [item for data in reads for item in checked.feed(data)]
        want = [one_by_one.received(reply) for data in reads for reply in parser.feed(data)]
        assert got == want
        assert checked.pending == one_by_one.pending
    assert ((checked.commands_sent, checked.replies_matched, checked.unsolicited)
            == (one_by_one.commands_sent, one_by_one.replies_matched, one_by_one.unsolicited))


def test_every_command_is_true(impl: ModuleType) -> None:
    """CONNECT's value is 0, yet ``if item.command:`` must not take the
    greeting for an unsolicited reply."""
    assert all(bool(command) for command in Command)
    assert Command.CONNECT == 0 and [10, 11][Command.CONNECT] == 10  # still the number 0
    tracker = ReplyTracker()
    greeting, stray = tracker.match_all(replies(impl, b"220 hi\r\n250 stray\r\n"))
    assert greeting.command is Command.CONNECT and greeting.command
    assert not stray.command and stray.unsolicited
