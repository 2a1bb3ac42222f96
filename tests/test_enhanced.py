"""RFC 3463 enhanced status codes: what ``Reply.enhanced`` reads from the start
of a reply's text (both implementations), the EnhancedStatus value, and the
IANA registry texts shipped with the package."""

from __future__ import annotations

import copy
import doctest
import json
import pickle
import re
from importlib import resources
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastreply.enhanced
from fastreply.enhanced import (
    EnhancedStatus,
    RegistryEntry,
    class_title,
    describe,
    lookup,
    parse_enhanced,
    registry,
    subject_title,
)


def first_reply(impl: ModuleType, wire: bytes) -> Any:
    (reply,) = impl.ReplyParser().feed(wire)
    return reply


# -- what is read, through Reply.enhanced ----------------------------------

VALID = [
    # (wire, (class, subject, detail))
    (b"250 2.1.5 Recipient ok\r\n", (2, 1, 5)),
    (b"250 2.0.0 Ok: queued as 4Bx1Yz\r\n", (2, 0, 0)),
    (b"550 5.1.1 <bob@example.org>: User unknown\r\n", (5, 1, 1)),
    (b"451 4.7.500 Server busy (AS123)\r\n", (4, 7, 500)),
    (b"550 5.1.10 RESOLVER.ADR.RecipientNotFound\r\n", (5, 1, 10)),
    (b"452 4.999.999 the largest numbers\r\n", (4, 999, 999)),
    (b"550 5.0.0\r\n", (5, 0, 0)),  # bare status code, nothing after it
    (b"550 5.1.1\tUser unknown\r\n", (5, 1, 1)),  # a tab after it
    (b"550 5.1.1   several spaces\r\n", (5, 1, 1)),
    (b"250 2.1.5 \r\n", (2, 1, 5)),  # trailing space
    (b"550 5.1.1\n", (5, 1, 1)),  # bare LF line end
    (b"550-5.1.1 first line\r\n550-5.1.1 second\r\n550 5.1.1 last\r\n", (5, 1, 1)),
    (b"550-5.7.1 first line decides\r\n550 5.1.1 not this one\r\n", (5, 7, 1)),
]


@pytest.mark.parametrize("wire, numbers", VALID)
def test_valid_status_codes(impl: ModuleType, wire: bytes, numbers: tuple[int, int, int]) -> None:
    reply = first_reply(impl, wire)
    status = reply.enhanced
    assert isinstance(status, EnhancedStatus)
    assert status.as_tuple() == numbers
    assert (status.class_, status.subject, status.detail) == numbers
    assert str(status) == "%d.%d.%d" % numbers
    assert status.reply_code == reply.code
    assert status.matches_code


INVALID = [
    b"250 OK\r\n",
    b"250\r\n",  # bare code: no text at all
    b"250 \r\n",
    b"550 5.01.1 leading zero in the subject\r\n",
    b"550 5.1.01 leading zero in the detail\r\n",
    b"550 5.00.1 double zero\r\n",
    b"550 5.1.00 double zero\r\n",
    b"550 05.1.1 leading zero in the class\r\n",
    b"550 5.1.1000 four digits\r\n",
    b"550 5.1000.1 four digits\r\n",
    b"550 3.1.1 class 3\r\n",
    b"550 1.1.1 class 1\r\n",
    b"550 0.0.0 class 0\r\n",
    b"550 6.1.1 class 6\r\n",
    b"550 5.1 missing detail\r\n",
    b"550 5.1. empty detail\r\n",
    b"550 5..1 empty subject\r\n",
    b"550 5 only a class\r\n",
    b"550 5.1.1x glued to a word\r\n",
    b"550 5.1.1: punctuation\r\n",
    b"550 5.1.1, punctuation\r\n",
    b"550 5.1.1.2 a fourth part\r\n",
    b"550 5.1.1-2 a range\r\n",
    b"550 5,1,1 commas\r\n",
    b"550 5 .1.1 space inside\r\n",
    b"550  5.1.1 leading space: not at the start of the text\r\n",
    b"550 \t5.1.1 leading tab\r\n",
    b"550 #5.1.1 qmail style\r\n",
    b"502 unimplemented (#5.5.1)\r\n",  # qmail: at the end of the text
    b"421 Message temporarily deferred - 4.16.50\r\n",
    b"550 X.1.1 the registry form is not a status code\r\n",
    b"550 \xef\xbc\x95.1.1 a full-width digit\r\n",
    b"550-User unknown\r\n550 5.1.1 only on a later line\r\n",
]


@pytest.mark.parametrize("wire", INVALID)
def test_invalid_status_codes(impl: ModuleType, wire: bytes) -> None:
    assert first_reply(impl, wire).enhanced is None


@pytest.mark.parametrize(
    "wire, numbers",
    [
        (b"454 5.5.1 STARTTLS may not be repeated.\r\n", (5, 5, 1)),  # Gmail
        (b"250 5.1.1 success with a failure status\r\n", (5, 1, 1)),
        (b"550 2.0.0 failure with a success status\r\n", (2, 0, 0)),
        (b"354 2.0.0 go ahead\r\n", (2, 0, 0)),  # RFC 2034: none on 3xx
        (b"421 5.7.0 closing\r\n", (5, 7, 0)),
    ],
)
def test_class_disagreeing_with_the_reply_code_is_flagged_not_refused(
    impl: ModuleType, wire: bytes, numbers: tuple[int, int, int]
) -> None:
    reply = first_reply(impl, wire)
    status = reply.enhanced
    assert status is not None and status.as_tuple() == numbers
    assert status.reply_code == reply.code
    assert status.matches_code is False


def test_class_agreeing_with_each_reply_class(impl: ModuleType) -> None:
    for wire in (b"235 2.7.0 Authentication succeeded\r\n", b"432 4.7.12 transition\r\n",
                 b"535 5.7.8 bad credentials\r\n"):
        status = first_reply(impl, wire).enhanced
        assert status is not None and status.matches_code is True


def test_hand_made_reply(impl: ModuleType) -> None:
    assert impl.Reply(550, [b"5.1.1 gone", b"5.1.1 really"]).enhanced == EnhancedStatus(5, 1, 1)
    assert impl.Reply(250, [b""]).enhanced is None


def test_same_status_from_both_implementations(both: tuple[ModuleType, ModuleType]) -> None:
    wire = b"450-4.2.0 <a@b>: greylisted\r\n450 4.2.0 try later\r\n"
    py, c = (first_reply(module, wire).enhanced for module in both)
    assert py == c and repr(py) == repr(c) == "EnhancedStatus(4, 2, 0, reply_code=450)"


def test_statuses_of_different_reply_codes_keep_their_own_code(impl: ModuleType) -> None:
    # Statuses are shared between replies that have the same one; the reply
    # code must not leak from one to the other.
    a = first_reply(impl, b"550 5.7.1 denied\r\n").enhanced
    b = first_reply(impl, b"554 5.7.1 denied\r\n").enhanced
    c = first_reply(impl, b"454 5.7.1 denied\r\n").enhanced
    assert a is not None and b is not None and c is not None
    assert (a.reply_code, b.reply_code, c.reply_code) == (550, 554, 454)
    assert a == b == c
    assert a.matches_code and b.matches_code and not c.matches_code


# -- parse_enhanced directly -------------------------------------------------


def test_parse_enhanced_takes_bytes_like_and_str() -> None:
    expected = EnhancedStatus(5, 1, 1, 550)
    for text in (b"5.1.1 x", bytearray(b"5.1.1 x"), memoryview(b"5.1.1 x"), "5.1.1 x"):
        status = parse_enhanced(550, text)
        assert status == expected and status is not None and status.reply_code == 550
    assert parse_enhanced(550, "5.1.1x") is None
    assert parse_enhanced(550, "") is None


def test_parse_enhanced_takes_the_message_smtplib_returns() -> None:
    # smtplib joins the lines with LF: the status code is followed by one.
    assert parse_enhanced(550, b"5.1.1\n5.1.1 more") == EnhancedStatus(5, 1, 1)
    assert parse_enhanced(550, b"5.1.1\r") == EnhancedStatus(5, 1, 1)


def _reference(text: bytes) -> tuple[int, int, int] | None:
    """RFC 3463 read another way: cut the first word, check its parts."""
    word = re.split(rb"[ \t\r\n]", text, maxsplit=1)[0]
    parts = word.split(b".")
    if len(parts) != 3 or parts[0] not in (b"2", b"4", b"5"):
        return None
    for part in parts[1:]:
        if not 1 <= len(part) <= 3 or not all(48 <= byte <= 57 for byte in part):
            return None
        if len(part) > 1 and part[:1] == b"0":
            return None
    return (int(parts[0]), int(parts[1]), int(parts[2]))


status_like = st.builds(
    lambda *parts: b"".join(parts),
    st.sampled_from([b"", b"2", b"4", b"5", b"3", b"0", b"25", b" ", b"X"]),
    st.sampled_from([b".", b"", b"..", b","]),
    st.sampled_from([b"0", b"1", b"01", b"00", b"10", b"999", b"1000", b"7", b""]),
    st.sampled_from([b".", b"", b"-"]),
    st.sampled_from([b"0", b"1", b"01", b"00", b"10", b"999", b"1000", b"500", b""]),
    st.sampled_from([b"", b" ", b"\t", b"\r", b"x", b".", b":", b"0", b" text", b"\xff"]),
    st.binary(max_size=8),
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(status_like, st.binary(max_size=12)))
def test_parse_enhanced_agrees_with_a_reference_reading(text: bytes) -> None:
    status = parse_enhanced(550, text)
    expected = _reference(text)
    assert (status.as_tuple() if status is not None else None) == expected
    assert parse_enhanced(550, text.decode("latin-1")) == status


@settings(max_examples=200, deadline=None)
@given(status_like.map(lambda text: text.replace(b"\n", b"").replace(b"\r", b"")),
       st.sampled_from([250, 451, 550, 354]))
def test_reply_enhanced_is_parse_enhanced_of_the_first_line(
    impl: ModuleType, text: bytes, code: int
) -> None:
    reply = first_reply(impl, b"%d-%s\r\n%d 5.0.0 second\r\n" % (code, text, code))
    assert reply.enhanced == parse_enhanced(code, text)


# -- the EnhancedStatus value ------------------------------------------------


def test_value_behaviour() -> None:
    status = EnhancedStatus(5, 1, 1, 550)
    assert str(status) == f"{status}" == "5.1.1"
    assert repr(status) == "EnhancedStatus(5, 1, 1, reply_code=550)"
    assert repr(EnhancedStatus(2, 0, 0)) == "EnhancedStatus(2, 0, 0)"
    # Equal and hashed by the numbers; the reply code is not compared.
    assert status == EnhancedStatus(5, 1, 1) == EnhancedStatus(5, 1, 1, 554)
    assert hash(status) == hash(EnhancedStatus(5, 1, 1))
    assert status != EnhancedStatus(5, 1, 2)
    assert status != "5.1.1" and status != (5, 1, 1)
    assert len({status, EnhancedStatus(5, 1, 1, 551), EnhancedStatus(4, 1, 1)}) == 2
    assert sorted([EnhancedStatus(5, 1, 10), EnhancedStatus(4, 7, 1), EnhancedStatus(5, 1, 2)]) \
        == [EnhancedStatus(4, 7, 1), EnhancedStatus(5, 1, 2), EnhancedStatus(5, 1, 10)]
    assert EnhancedStatus(5, 1, 2) > status >= EnhancedStatus(5, 1, 1) > EnhancedStatus(2, 9, 9)
    assert status <= EnhancedStatus(5, 1, 1)
    with pytest.raises(TypeError):
        status < (5, 1, 1)  # type: ignore[operator]  # noqa: B015
    # Immutable.
    with pytest.raises(AttributeError):
        status.subject = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        status.other = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [EnhancedStatus(5, 1, 1, 550), EnhancedStatus(2, 0, 0)])
def test_pickle_and_copy(status: EnhancedStatus) -> None:
    for clone in (pickle.loads(pickle.dumps(status)), copy.copy(status), copy.deepcopy(status)):
        assert clone == status and clone.reply_code == status.reply_code


def test_pickle_a_parsed_status(impl: ModuleType) -> None:
    status = first_reply(impl, b"550 5.7.1 denied\r\n").enhanced
    clone = pickle.loads(pickle.dumps(status))
    assert clone == status and clone.reply_code == 550


def test_no_reply_code() -> None:
    status = EnhancedStatus(4, 4, 1)
    assert status.reply_code is None and status.matches_code is True


@pytest.mark.parametrize(
    "args, error",
    [
        ((3, 1, 1), ValueError),
        ((1, 1, 1), ValueError),
        ((5, -1, 1), ValueError),
        ((5, 1, 1000), ValueError),
        ((5, 1000, 1), ValueError),
        ((True, 1, 1), ValueError),
        (("5", 1, 1), ValueError),
        ((5, 1.0, 1), ValueError),
        ((5, 1, 1, "550"), TypeError),
    ],
)
def test_constructor_checks(args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        EnhancedStatus(*args)


def test_from_string() -> None:
    assert EnhancedStatus.from_string("5.1.1") == EnhancedStatus(5, 1, 1)
    assert EnhancedStatus.from_string(b"4.7.500", 451).reply_code == 451
    for bad in ("5.1.1 ", " 5.1.1", "5.1.01", "X.1.1", "3.1.1", "5.1", "", b"5.1.1x", "５.1.1"):
        with pytest.raises(ValueError):
            EnhancedStatus.from_string(bad)


# -- the registry ------------------------------------------------------------


@pytest.mark.parametrize(
    "code, title, reference, reply_codes",
    [
        ("5.1.1", "Bad destination mailbox address", "RFC 3463", (451, 550)),
        ("4.2.2", "Mailbox full", "RFC 3463", (552,)),
        ("2.1.5", "Destination address valid", "RFC 3463", (250,)),
        ("2.0.0", "Other undefined Status", "RFC 3463", ()),
        ("5.7.8", "Authentication credentials invalid", "RFC 4954", (535, 554)),
        ("5.7.26", "Multiple authentication checks failed", "RFC 7372", (550,)),
        ("5.7.30", "REQUIRETLS support required", "RFC 8689", (550,)),
        ("5.1.10", "Recipient address has null MX", "RFC 7505; RFC 7504", (556,)),
    ],
)
def test_registry_lookup(
    code: str, title: str, reference: str, reply_codes: tuple[int, ...]
) -> None:
    entry = lookup(code)
    assert isinstance(entry, RegistryEntry)
    assert entry.code == "X." + code.split(".", 1)[1]
    assert entry.title == title
    assert entry.reference == reference
    assert entry.reply_codes == reply_codes
    assert entry.description
    status = EnhancedStatus.from_string(code)
    assert status.title == title
    assert status.description == entry.description == describe(code)
    assert status.entry == entry == lookup(status) == lookup(code.encode())
    assert status.registry_code == entry.code


def test_every_class_finds_the_registry_code() -> None:
    entry = lookup("X.1.1")
    assert entry is not None
    assert lookup("x.1.1") == lookup("2.1.1") == lookup("4.1.1") == lookup("5.1.1") == entry
    assert describe("X.7.1") == describe("4.7.1") == describe("5.7.1")
    assert describe("5.2.2") is not None and describe("5.2.2").startswith(  # type: ignore[union-attr]
        "The mailbox is full"
    )


def test_unregistered_codes() -> None:
    assert lookup("5.7.500") is None and describe("4.7.500") is None
    status = EnhancedStatus(5, 7, 500)
    assert status.entry is None and status.title is None and status.description is None
    assert status.subject_title == "Security or Policy Status"
    assert status.class_title == "Permanent Failure"
    odd = EnhancedStatus(4, 16, 50)  # Yahoo's "4.16.50"
    assert odd.subject_title is None and odd.title is None
    assert odd.class_title == "Persistent Transient Failure"


def test_registered_code_without_a_title() -> None:
    # X.6.10 is registered with no sample text, as a deprecated duplicate of X.6.8.
    status = EnhancedStatus(5, 6, 10)
    assert status.entry is not None and status.entry.title == ""
    assert status.title is None
    assert status.description is not None and "X.6.8" in status.description


@pytest.mark.parametrize("bad", ["3.1.1", "5.1", "5.01.1", "5.1.1 ", "Y.1.1", "", b"5.1", "X.1.1x"])
def test_lookup_refuses_what_is_not_a_status_code(bad: str | bytes) -> None:
    with pytest.raises(ValueError):
        lookup(bad)
    with pytest.raises(ValueError):
        describe(bad)


def test_class_and_subject_titles() -> None:
    assert [class_title(c) for c in (2, 4, 5, 3)] == [
        "Success", "Persistent Transient Failure", "Permanent Failure", None,
    ]
    assert subject_title(1) == "Addressing Status"
    assert subject_title(7) == "Security or Policy Status"
    assert subject_title(0) == "Other or Undefined Status"
    assert subject_title(8) is None
    assert EnhancedStatus(2, 0, 0).class_title == "Success"


def test_registry_contents() -> None:
    entries = registry()
    assert len(entries) == 81
    assert list(entries)[:3] == ["X.0.0", "X.1.0", "X.1.1"]
    for key, entry in entries.items():
        assert key == entry.code
        assert re.fullmatch(r"X\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})", key)
        assert entry.description and entry.reference
        assert all(isinstance(code, int) and 200 <= code <= 599 for code in entry.reply_codes)
        assert lookup(key) is entry
    with pytest.raises(TypeError):
        entries["X.9.9"] = entries["X.0.0"]  # type: ignore[index]
    assert registry() is entries  # read once


def test_registry_is_package_data() -> None:
    # Shipped inside the package (pyproject's package-data has data/*.json).
    path = resources.files("fastreply") / "data" / "enhanced_status.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert {"codes", "classes", "subjects", "source"} <= set(data)
    assert len(data["codes"]) == len(registry())


def test_documentation_examples() -> None:
    result = doctest.testmod(fastreply.enhanced)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("bad", [None, 5, 5.1, ["5.1.1"]])
def test_lookup_refuses_what_is_no_string_with_a_type_error(bad: object) -> None:
    for call in (lookup, describe):
        with pytest.raises(TypeError, match="a status code must be a str, bytes or "
                           f"EnhancedStatus, not {type(bad).__name__}"):
            call(bad)  # type: ignore[arg-type]
    assert lookup(bytearray(b"5.1.1")) == lookup(memoryview(b"5.1.1")) == lookup("5.1.1")
