"""Commands, the command x code tables and their bitmask engine."""

from __future__ import annotations

import copy
import pickle
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastreply import _parser, _parser_py
from fastreply.commands import Command
from fastreply.errors import MalformedReply
from fastreply.tables import (
    DEFAULT_TABLE,
    MODERN,
    RFC821,
    RFC5321,
    SEED_2002,
    SOURCES,
    TABLES,
    ReplyTable,
    Verdict,
    get_table,
)


def rows(text: str) -> dict[str, set[int]]:
    """``"MAIL 250 552; RCPT 250"`` -> {"MAIL": {250, 552}, "RCPT": {250}}."""
    out = {}
    for row in text.strip().split(";"):
        name, _, codes = row.strip().partition(":")
        out[name.strip()] = {int(c) for c in codes.split()}
    return out


# The 2002 table the project started from, word for word ("received data" is DATA_END);
# docs/validation.md describes it.
SEED_ROWS = rows("""
    CONNECT: 220 421; HELO: 250 500 501 504 521 421; EHLO: 250 550 500 501 504 421;
    MAIL: 250 552 451 452 500 501 421;
    RCPT: 250 251 550 551 552 553 450 451 452 500 501 503 521 421;
    DATA: 354 451 554 500 501 503 421; DATA_END: 250 552 554 451 452;
    RSET: 200 250 500 501 504 421; SEND: 250 552 451 452 500 501 502 421;
    SOML: 250 552 451 452 500 501 502 421; SAML: 250 552 451 452 500 501 502 421;
    VRFY: 250 251 550 551 553 500 501 502 504 421; EXPN: 250 550 500 501 502 504 421;
    HELP: 211 214 500 501 502 504 421; NOOP: 200 250 500 421; QUIT: 221 500;
    TURN: 250 502 500 503
""")

# RFC 821 section 4.3 (S, F, E codes; I and S after DATA), plus UNKNOWN.
RFC821_ROWS = rows("""
    CONNECT: 220 421; HELO: 250 500 501 504 421; MAIL: 250 552 451 452 500 501 421;
    RCPT: 250 251 550 551 552 553 450 451 452 500 501 503 421;
    DATA: 354 451 554 500 501 503 421; DATA_END: 250 552 554 451 452;
    RSET: 250 500 501 504 421; SEND: 250 552 451 452 500 501 502 421;
    SOML: 250 552 451 452 500 501 502 421; SAML: 250 552 451 452 500 501 502 421;
    VRFY: 250 251 550 551 553 500 501 502 504 421; EXPN: 250 550 500 501 502 504 421;
    HELP: 211 214 500 501 502 504 421; NOOP: 250 500 421; QUIT: 221 500;
    TURN: 250 502 500 503; UNKNOWN: 500 421
""")

# RFC 5321 section 4.3.2, each row plus 500 501 421 (the preamble's "any
# command"; 421 only for the greeting and received data), SEND/SOML/SAML/TURN
# from RFC 821 (appendix F), plus UNKNOWN.
RFC5321_ROWS = rows("""
    CONNECT: 220 554 421; EHLO: 250 504 550 502 500 501 421; HELO: 250 504 550 502 500 501 421;
    MAIL: 250 552 451 452 550 553 503 455 555 500 501 421;
    RCPT: 250 251 550 551 552 553 450 451 452 503 455 555 500 501 421;
    DATA: 354 503 554 500 501 421; DATA_END: 250 552 554 451 452 450 550 421;
    RSET: 250 500 501 421; VRFY: 250 251 252 550 551 553 502 504 500 501 421;
    EXPN: 250 252 550 500 502 504 501 421; HELP: 211 214 502 504 500 501 421;
    NOOP: 250 500 501 421; QUIT: 221 500 501 421;
    SEND: 250 552 451 452 500 501 502 421; SOML: 250 552 451 452 500 501 502 421;
    SAML: 250 552 451 452 500 501 502 421; TURN: 250 502 500 503 421 501;
    UNKNOWN: 500 501 421
""")

# The extensions' own rows (RFC 3207, 4954, 3030, 1985, 2033).
EXTENSION_ROWS = rows("""
    STARTTLS: 220 454 501; AUTH: 235 334 432 454 500 501 503 504 534 535 538 523 525;
    BDAT: 250 503 421 450 451 452 500 501 550 552 554;
    BDAT_LAST: 250 503 421 450 451 452 500 501 550 552 554;
    ETRN: 250 251 252 253 458 459 500 501; LHLO: 250 504 550 500 501 421
""")

ALL_CODES = range(100, 600)


def as_rows(table: ReplyTable) -> dict[str, set[int]]:
    return {c.name: set(codes) for c, codes in table.rows().items()}


# -- the named tables, pinned row by row ---------------------------------------


@pytest.mark.parametrize(
    ("table", "expected"),
    [(SEED_2002, SEED_ROWS), (RFC821, RFC821_ROWS), (RFC5321, RFC5321_ROWS)],
    ids=["SEED_2002", "RFC821", "RFC5321"],
)
def test_named_table_rows(table: ReplyTable, expected: dict[str, set[int]]) -> None:
    assert as_rows(table) == expected


def test_seed_has_nothing_added() -> None:
    assert not SEED_2002.codes(Command.UNKNOWN)
    assert sum(len(codes) for codes in SEED_ROWS.values()) == sum(
        len(codes) for _, codes in SEED_2002
    )


def test_modern_is_rfc5321_plus_extensions() -> None:
    for command in Command:
        assert RFC5321.codes(command) <= MODERN.codes(command), command
    for name, codes in EXTENSION_ROWS.items():
        assert codes | {421, 500, 501} <= MODERN.codes(name), name


def test_modern_any_command_codes() -> None:
    sent = [c for c in Command if c not in (Command.CONNECT, Command.DATA_END)]
    for command in sent:
        codes = MODERN.codes(command)
        assert {421, 500, 501} <= codes, command
        if command is Command.QUIT:
            assert not codes & {503, 521, 530, 554}
        else:
            assert {503, 521, 554} <= codes, command
            assert (530 in codes) == (command not in (Command.NOOP, Command.EHLO, Command.LHLO))
    assert 521 in MODERN.codes("connect") and 556 in MODERN.codes(Command.RCPT)
    assert 502 in MODERN.codes(Command.UNKNOWN)
    # Nothing is added that no rule gives.
    assert MODERN.codes(Command.QUIT) == {221, 421, 500, 501}
    assert MODERN.codes(Command.DATA_END) == RFC5321.codes(Command.DATA_END)
    assert MODERN.codes(Command.CONNECT) == {220, 421, 521, 554}


def test_every_table_documented() -> None:
    assert set(TABLES) == set(SOURCES) == {"SEED_2002", "RFC821", "RFC5321", "MODERN"}
    assert DEFAULT_TABLE is MODERN
    assert get_table("rfc5321") is RFC5321 and get_table("seed-2002") is SEED_2002
    with pytest.raises(ValueError, match="unknown table 'X'.*MODERN"):
        get_table("X")


# -- the bitmask engine, in both implementations --------------------------------


@pytest.mark.parametrize("table", list(TABLES.values()), ids=list(TABLES))
def test_masks_equal_set_lookup(impl: ModuleType, table: ReplyTable) -> None:
    engine = impl.CodeMasks()
    engine._set_masks(table.masks)
    sets = {c: set(codes) for c, codes in table}
    for command in Command:
        for code in ALL_CODES:
            want = code in sets[command]
            assert engine.allows(command, code) is want, (command, code)
            assert table.allows(command, code) is want
    commands = [c for c in Command for _ in ALL_CODES]
    codes = [code for _ in Command for code in ALL_CODES]
    assert engine.check_all(commands, codes) == [
        code in sets[c] for c, code in zip(commands, codes)
    ]


def test_table_uses_the_active_engine(selected: ModuleType) -> None:
    assert type(MODERN).__mro__[1] is selected.CodeMasks


def test_engine_edges(impl: ModuleType) -> None:
    engine = impl.CodeMasks()
    engine._set_masks([1 << 250 | 1 << 999, 0])
    assert engine.allows(0, 999) and not engine.allows(0, 1000) and not engine.allows(0, -1)
    with pytest.raises(ValueError, match="no command number 2"):
        engine.allows(2, 250)
    with pytest.raises(ValueError, match="no command number -1"):
        engine.allows(-1, 250)
    with pytest.raises(TypeError, match="set once"):
        engine._set_masks([0])
    with pytest.raises(ValueError, match="one command per reply, got 1 commands and 2"):
        engine.check_all([0], [250, 250])
    reply = impl.ReplyParser().feed(b"250 ok\r\n")[0]
    assert engine.check_all([0, 1], [reply, reply]) == [True, False]
    bad = impl.CodeMasks()
    with pytest.raises(ValueError, match="bits 0 to 999"):
        bad._set_masks([1 << 1000])
    with pytest.raises(TypeError, match="must be an int"):
        bad._set_masks(["x"])


@given(st.lists(st.tuples(st.sampled_from(list(Command)), st.integers(100, 599)), max_size=40))
def test_built_tables_match_sets(pairs: list[tuple[Command, int]]) -> None:
    mapping: dict[Command, set[int]] = {}
    for command, code in pairs:
        mapping.setdefault(command, set()).add(code)
    table = ReplyTable(mapping)
    for command in Command:
        assert table.codes(command) == mapping.get(command, set())
        for code in (100, 250, 421, 599, *mapping.get(command, ())):
            assert table.allows(command, code) == (code in mapping.get(command, ()))


# -- ReplyTable behaviour ---------------------------------------------------------


def test_combine_and_extend() -> None:
    a = ReplyTable({"MAIL": [250]}, name="a")
    b = ReplyTable({Command.MAIL: [550], "RCPT": [250]}, name="b")
    both = a | b
    assert both.codes("MAIL") == {250, 550} and both.codes("RCPT") == {250}
    assert both.name == "a|b"
    extended = a.extend({"MAIL": [451], "connect": [220]})
    assert extended.codes("MAIL") == {250, 451} and extended.codes(Command.CONNECT) == {220}
    assert extended.name == "a" and a.extend({}, name="a+").name == "a+"
    assert a.codes("MAIL") == {250}  # tables are immutable
    assert ReplyTable({"MAIL": [250]}) == a  # equality ignores the name
    assert ReplyTable() == ReplyTable({}) and not ReplyTable().rows()
    assert hash(ReplyTable({"MAIL": [250]})) == hash(a)
    assert a != b
    with pytest.raises(TypeError):
        a | 3  # type: ignore[operator]


def test_table_pickles_and_reprs() -> None:
    for table in TABLES.values():
        copy = pickle.loads(pickle.dumps(table))
        assert copy == table and copy.name == table.name
    assert repr(SEED_2002) == "<ReplyTable 'SEED_2002': 17 commands, 111 command-code pairs>"
    assert SEED_2002.format(["QUIT"]) == "# table SEED_2002\nQUIT  221 500"


@pytest.mark.parametrize(
    ("rows", "error", "message"),
    [
        ({"MAIL": [99]}, ValueError, "MAIL: reply code 99 is outside 100-599"),
        ({"MAIL": [600]}, ValueError, "outside 100-599"),
        ({"MAIL": ["250"]}, TypeError, "MAIL: a reply code must be an int, not str"),
        ({"MAIL": [True]}, TypeError, "not bool"),
        ({"MAIL": 250}, TypeError, "the codes of MAIL must be an iterable of ints, not int"),
        ({"MAIL": "250"}, TypeError, "not str"),
        ({"SMTP": [250]}, ValueError, "unknown command name 'SMTP'"),
        ({3.5: [250]}, TypeError, "a command must be a Command or its name, not float"),
    ],
)
def test_bad_rows(rows: dict[object, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ReplyTable(rows)  # type: ignore[arg-type]


# -- verdicts ---------------------------------------------------------------------


def test_verdicts(impl: ModuleType) -> None:
    reply, = impl.ReplyParser().feed(b"354 go ahead\r\n")
    v = MODERN.check(Command.MAIL, reply)
    assert not v and v.status == "unexpected" and v.meaning == "positive intermediate"
    assert str(v) == "MAIL 354: unexpected (positive intermediate)"
    ok = MODERN.check("DATA", reply)
    assert ok and ok.status == "expected" and ok.in_range
    assert ok.as_dict() == {"command": "DATA", "code": 354, "status": "expected",
                            "meaning": "positive intermediate", "table": "MODERN"}
    odd = MODERN.check(Command.RCPT, 199)
    assert odd.status == "out of range" and odd.meaning == "positive preliminary"
    assert MODERN.check(Command.RCPT, 570).status == "out of range"  # second digit 7
    assert MODERN.check(Command.RCPT, 599).meaning == "permanent negative"
    assert v == Verdict(Command.MAIL, 354, False, "MODERN") and hash(v) == hash(
        Verdict(Command.MAIL, 354, False, "MODERN"))
    assert repr(v) == ("Verdict(command=Command.MAIL, code=354, status='unexpected', "
                       "table='MODERN')")
    with pytest.raises(AttributeError):  # immutable
        v.code = 250  # type: ignore[misc]
    assert v.code == 354
    with pytest.raises(TypeError, match="an int or a Reply, not str"):
        MODERN.check(Command.MAIL, "250")


def test_verdicts_are_values() -> None:
    table = MODERN.extend({}, name="mine")
    first = table.check(Command.RCPT, 250)
    assert table.check("RCPT", 250) == first and first.table == "mine"
    assert table.check(Command.RCPT, 251) != first
    assert table.check(Command.RCPT, 1234).status == "out of range"
    table.name = "renamed"  # a verdict names the table as it is called now
    assert table.check(Command.RCPT, 250).table == "renamed"
    assert pickle.loads(pickle.dumps(first)) == first and copy.copy(first) == first


@pytest.mark.parametrize("form", [list, tuple, bytes, bytearray])
def test_unexpected_positions(impl: ModuleType, form: type) -> None:
    engine = impl.CodeMasks()
    engine._set_masks(MODERN.masks)
    log = [Command.CONNECT, Command.EHLO, Command.MAIL, Command.RCPT, Command.DATA]
    commands = form(log)
    replies = impl.ReplyParser().feed(b"250 ok\r\n354 go\r\n550 no\r\n")
    # replies[i] answers commands[2 + i]: MAIL 250, RCPT 354 (!), DATA 550 (!)
    assert engine.unexpected(commands, replies, 2) == [1, 2]
    assert engine.unexpected(commands, [220, 250], 0) == []
    assert engine.unexpected(commands, []) == []
    with pytest.raises(ValueError, match="a command for every reply: 3 replies from position 3"):
        engine.unexpected(commands, replies, 3)
    with pytest.raises(ValueError, match="start must not be negative"):
        engine.unexpected(commands, replies, -1)
    with pytest.raises(ValueError, match="no command number 200"):
        engine.unexpected(form([200]), [250])
    assert MODERN.unexpected(commands, replies, 2) == [1, 2]


# -- feed_checked(): the check inside the parse loop ------------------------------


def _engine(impl: ModuleType, kind: str) -> object:
    """MODERN itself (the active engine), or MODERN's masks in ``impl``'s
    engine, or in the pure-Python engine."""
    if kind == "table":
        return MODERN
    engine = (impl if kind == "same" else _parser_py).CodeMasks()
    engine._set_masks(MODERN.masks)
    return engine


@pytest.mark.parametrize("kind", ["table", "same", "python"])
@pytest.mark.parametrize("form", [list, tuple, bytes, bytearray])
def test_feed_checked_positions(impl: ModuleType, form: type, kind: str) -> None:
    table = _engine(impl, kind)
    log = form([Command.CONNECT, Command.EHLO, Command.MAIL, Command.RCPT, Command.DATA])
    parser = impl.ReplyParser()
    # replies answer log[2:]: MAIL 250, RCPT 354 (!), DATA 550 (!), then one
    # reply past the end of the log (!)
    replies, bad = parser.feed_checked(
        b"250 ok\r\n354 go\r\n550 no\r\n221 bye\r\n250 ha", table, log, 2)
    assert [r.code for r in replies] == [250, 354, 550, 221]
    assert bad == [1, 2, 3]
    assert parser.buffered == 6
    replies, bad = parser.feed_checked(b"ppy\r\n", table, log, 0)  # log[0] is CONNECT
    assert [r.code for r in replies] == [250] and bad == [0]
    assert parser.feed_checked(b"", table, log, 9) == ([], [])
    # An empty log, or a start past its end: every reply answers no command.
    assert parser.feed_checked(b"250 a\r\n250 b\r\n", table, form([]), 0)[1] == [0, 1]
    assert parser.feed_checked(b"250 a\r\n250 b\r\n", table, log, 9)[1] == [0, 1]
    # Any bytes-like data, as feed() takes.
    replies, bad = parser.feed_checked(memoryview(b"250 a\r\n354 b\r\n"), table, log, 2)
    assert [r.code for r in replies] == [250, 354] and bad == [1]
    replies, bad = parser.feed_checked(bytearray(b"550 c\r\n"), table, log, 3)  # RCPT
    assert [r.code for r in replies] == [550] and bad == []


@pytest.mark.parametrize(
    ("table", "log", "start", "error", "message"),
    [
        (MODERN, bytearray([1, 200]), 0, ValueError,
         r"commands\[1\] is 200, not a command number of this table \(0-23\)"),
        (MODERN, [1, 2, -1], 1, ValueError, r"commands\[2\] is -1, not a command number"),
        (MODERN, [1, "MAIL"], 0, ValueError, r"commands\[1\] is 'MAIL', not a command number"),
        (MODERN, [1, True], 0, ValueError, r"commands\[1\] is True, not a command number"),
        (MODERN, bytes([1]), -1, ValueError, "start must not be negative, got -1"),
        (MODERN, bytes([1]), 1.0, TypeError, "start must be an int, not float"),
        (MODERN, "MAIL", 0, TypeError, "commands must be a sequence of command numbers"),
        (MODERN, {1, 2}, 0, TypeError, "commands must be a sequence of command numbers"),
        (MODERN, memoryview(b"\x01\x02").cast("B", (1, 2)), 0, TypeError,
         "commands must be a one-dimensional sequence of command numbers, not a "
         "2-dimensional memoryview"),
        ({}, bytes([1]), 0, TypeError, "table must be a ReplyTable, not dict"),
    ],
)
def test_feed_checked_bad_arguments_lose_nothing(
    impl: ModuleType, table: object, log: object, start: object, error: type, message: str
) -> None:
    parser = impl.ReplyParser()
    assert parser.feed(b"250-a\r\n") == []
    with pytest.raises(error, match=message):
        parser.feed_checked(b"250 b\r\n250 c\r\n250 d\r\n", table, log, start)
    # Refused before parsing: nothing was consumed, and the parser goes on.
    assert parser.buffered == 7 and parser.offset == 7
    assert parser.feed(b"250 b\r\n") == [impl.Reply(250, (b"a", b"b"))]


def test_feed_checked_refuses_non_bytes(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    with pytest.raises(TypeError, match="takes bytes, bytearray or memoryview, not str"):
        parser.feed_checked("250 a\r\n", MODERN, bytes([Command.MAIL]))  # type: ignore[arg-type]
    assert parser.offset == 0 and parser.feed(b"250 a\r\n")[0].code == 250


def test_feed_checked_looks_only_at_the_log_it_may_use(impl: ModuleType) -> None:
    # 8 bytes complete at most 2 replies: a bad number further on is not read.
    log = bytearray([Command.MAIL, Command.RCPT, 200])
    assert impl.ReplyParser().feed_checked(b"250 a\r\n", MODERN, log)[1] == []
    with pytest.raises(ValueError, match=r"commands\[2\] is 200"):
        impl.ReplyParser().feed_checked(b"250 a\r\n250 b\r\n", MODERN, log)


def test_feed_checked_errors_carry_the_replies(impl: ModuleType) -> None:
    parser = impl.ReplyParser()
    with pytest.raises(MalformedReply) as caught:
        parser.feed_checked(b"250 a\r\n354 b\r\nxyz\r\n", MODERN, bytes([Command.MAIL] * 3))
    assert [r.code for r in caught.value.replies] == [250, 354]
    with pytest.raises(MalformedReply, match="parser stopped"):
        parser.feed_checked(b"250 a\r\n", MODERN, bytes([Command.MAIL]))


@given(
    stream=st.lists(
        st.tuples(st.sampled_from([220, 221, 250, 251, 334, 354, 421, 450, 500, 550, 554]),
                  st.integers(1, 3)),
        max_size=40,
    ),
    log=st.lists(st.sampled_from(list(Command)), max_size=45),
    cuts=st.lists(st.integers(0, 2000), max_size=6),
    form=st.sampled_from([bytes, bytearray, list]),
)
def test_feed_checked_equals_unexpected(
    impl: ModuleType, stream: list[tuple[int, int]], log: list[Command], cuts: list[int],
    form: type,
) -> None:
    """In any chunks, the positions are those unexpected() gives on the
    replies, with a reply past the end of the log unexpected too."""
    data = b"".join(
        b"".join(b"%d-x\r\n" % code for _ in range(n - 1)) + b"%d y\r\n" % code
        for code, n in stream
    )
    commands = form(log)
    parser = impl.ReplyParser()
    replies: list[object] = []
    bad: list[int] = []
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for a, b in zip(points, points[1:]):
        got, flagged = parser.feed_checked(data[a:b], MODERN, commands, len(replies))
        bad += [len(replies) + i for i in flagged]
        replies += got
    parser.close()
    assert [r.code for r in replies] == [code for code, _ in stream]  # type: ignore[attr-defined]
    logged = min(len(log), len(replies))
    expected = MODERN.unexpected(commands, replies[:logged])
    assert bad == expected + list(range(logged, len(replies)))
