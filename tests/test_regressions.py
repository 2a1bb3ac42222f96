"""Inputs found by fuzzing (fuzz/), kept as tests, and the fuzz corpus replayed.

Every case runs on each implementation, which must end as the case says,
and on both with the same options and the same chunks, which must return the
same replies from each ``feed()``, hold the same bytes and end with the same
error (type, offset, line, message).  A case that once crashed or diverged names where it
came from; add new ones at the end of ``CASES`` with the exact minimised input.

``test_fuzz_corpus_replays_clean`` runs every seed of ``fuzz/corpus`` through
the fuzzer's own check (``fuzz/harness.py``) when the source tree is there
(it is not in the copy of ``tests/`` that cibuildwheel runs).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any, Sequence

import pytest

from conftest import feed_chunks
from fastreply.errors import ReplyError

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.join(HERE, os.pardir, "fuzz")


def cut(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """``data`` cut into pieces of the given sizes (the last size repeats)."""
    out, i, k = [], 0, 0
    while i < len(data):
        size = sizes[min(k, len(sizes) - 1)]
        out.append(data[i : i + size])
        i += size
        k += 1
    return out


# (name, chunks, options, expected last observation: "closed" or the error's
#  (type, offset)).  Edge cases of the compiled parser's two paths (in place
#  over the caller's buffer, and continuing a buffered reply): a line end
#  exactly at a chunk or window boundary, limits shorter than the error
#  preview, limits of 4 (the minimum) and 1 line.
CASES: list[tuple[str, list[Any], dict[str, Any], Any]] = [
    ("lf at the last byte of the window (direct)",
     [b"250 " + b"x" * 4 + b"\n"], {"max_line_length": 9}, "closed"),
    ("no lf in exactly max_line bytes (direct)",
     [b"250 " + b"x" * 5], {"max_line_length": 9}, ("LineTooLong", 0)),
    ("no lf in exactly max_line bytes (buffered)",
     [b"250 ", b"x" * 5], {"max_line_length": 9}, ("LineTooLong", 0)),
    ("lf arrives as the byte after a full window",
     [b"250 xxxx", b"x", b"\n"], {"max_line_length": 9}, ("LineTooLong", 0)),
    ("crlf split across chunks at the limit",
     [b"250 xxx\r", b"\n"], {"max_line_length": 9}, "closed"),
    ("minimum line length, bare code",
     [b"250\n", b"25", b"1\n"], {"max_line_length": 4}, "closed"),
    ("minimum line length, crlf is one byte too many",
     [b"250\r\n"], {"max_line_length": 4}, ("LineTooLong", 0)),
    ("one line per reply, continuation refused",
     [b"250 a\r\n250-b\r\n"], {"max_reply_lines": 1}, ("TooManyLines", 7)),
    ("error preview shorter than 80 bytes (buffered)",
     cut(b"220 ok\r\n250 " + b"y" * 200, [3, 5, 7]), {"max_line_length": 50},
     ("LineTooLong", 8)),
    ("error preview of a 81-byte limit (direct)",
     [b"250 " + b"z" * 300], {"max_line_length": 81}, ("LineTooLong", 0)),
    ("error preview of a 82-byte limit (buffered)",
     [b"250 ", b"z" * 300], {"max_line_length": 82}, ("LineTooLong", 0)),
    ("reply completed in the buffer, the rest parsed in place",
     [b"250-a\r\n25", b"0 b\r\n220 c\r\n354-d"], {}, ("IncompleteReply", 21)),
    ("64 KiB reply then a small one (buffer released and regrown)",
     cut(b"250-" + b"x" * 1000 + b"\r\n", [1000]) * 70 + [b"250 end\r\n220 next\r\n"],
     {"max_line_length": 2000}, "closed"),
    ("nul and 8-bit text in a buffered multiline reply",
     cut(b"250-\x00\x00\xff\r\n250-\x80\r\n250 \xfe\x00\r\n", [1, 2, 3]), {}, "closed"),
    ("lone cr runs up to the limit",
     cut(b"250 " + b"\r" * 10 + b"\n", [4]), {"max_line_length": 15}, "closed"),
    ("strict inconsistent code in the buffered path",
     [b"250-a\r\n", b"251 b\r\n"], {"strict": True}, ("InconsistentReply", 7)),
    ("strict bare lf at a chunk boundary",
     [b"250 a", b"\n"], {"strict": True}, ("MalformedReply", 0)),
    ("bytearray and memoryview chunks",
     [bytearray(b"250-a\r\n"), memoryview(b"250 b\r\n"), memoryview(b"x220 c\r\n")[1:]],
     {}, "closed"),
    ("strided memoryview chunk",
     [memoryview(b"2x5x0x xoxkx\rx\nx")[::2]], {}, "closed"),
    # Found by fuzz/ (random-mutation driver, seed 7, input 483; atheris found
    # the same within 400 inputs) in 5bb617c's compiled parser, which took
    # bytes 0x1a-0x1f and 0x2a-0x2f in the 2nd and 3rd place as digits
    # (code 81 here, -126 for b"1\x1a*"); fixed in 6e8ed79.
    ("second code byte just below '0' (fuzz: random-7-483, minimised)",
     [b"1.1 \n"], {"max_line_length": 195, "max_reply_lines": 31}, ("MalformedReply", 0)),
    ("third code byte below '0', continuation line",
     [b"250-a\r\n2.0 b\r\n"], {}, ("MalformedReply", 7)),
    ("control bytes as digits, strict",
     [b"220 ok\r\n1\x1a* x\r\n"], {"strict": True}, ("MalformedReply", 8)),
]


@pytest.mark.parametrize(("name", "chunks", "options", "ending"), CASES,
                         ids=[case[0] for case in CASES])
def test_case(impl: ModuleType, name: str, chunks: list[Any], options: dict[str, Any],
              ending: Any) -> None:
    last = feed_chunks(impl.ReplyParser(**options), chunks).trace[-1]
    assert (last if last == "closed" else tuple(last[:2])) == ending


@pytest.mark.parametrize(("name", "chunks", "options", "ending"), CASES,
                         ids=[case[0] for case in CASES])
def test_case_same_in_both(both: tuple[ModuleType, ModuleType], name: str, chunks: list[Any],
                           options: dict[str, Any], ending: Any) -> None:
    reference, compiled = both
    assert (feed_chunks(compiled.ReplyParser(**options), chunks).trace
            == feed_chunks(reference.ReplyParser(**options), chunks).trace)


# The state of a parser stopped by an error (found by tests/test_hostile.py:
# the implementations used to disagree).  A stopped parser holds nothing:
# ``buffered`` is 0 and ``offset`` counts every byte fed since reset().
STOPPED = [
    ("malformed line in the first chunk", [b"250 ok\r\nx\n"], {}),
    ("malformed line after a buffered reply", [b"220 hi\r\n250-a", b"\r\nxyz\r\n250 b\r\n"], {}),
    ("endless line in a large chunk", [b"250 ", b"x" * 1000],
     {"max_line_length": 20, "max_reply_lines": 2}),
    ("too many lines", [b"250-a\r\n" * 5 + b"zzzz"], {"max_reply_lines": 3}),
]


@pytest.mark.parametrize(("name", "chunks", "options"), STOPPED, ids=[s[0] for s in STOPPED])
def test_state_of_a_stopped_parser(impl: ModuleType, name: str, chunks: list[bytes],
                                   options: dict[str, Any]) -> None:
    fed = sum(map(len, chunks))
    parser = impl.ReplyParser(**options)
    with pytest.raises(ReplyError):
        for chunk in chunks:
            parser.feed(chunk)
    assert (parser.offset, parser.buffered) == (fed, 0)
    with pytest.raises(ReplyError):  # still stopped, and still holding nothing
        parser.feed(b"250 ok\r\n")
    assert (parser.offset, parser.buffered) == (fed, 0)
    parser.reset()
    assert (parser.offset, parser.buffered) == (0, 0)
    assert [r.code for r in parser.feed(b"250 ok\r\n")] == [250]


def _harness(name: str = "harness", folder: str = "corpus") -> ModuleType:
    """fuzz/harness.py (or another target's harness), or a skip in a run
    from an installed package (its tests/ copied alone, as cibuildwheel
    does); in the source tree, a missing fuzz/ folder is a failure, not a
    skip."""
    corpus = os.path.join(FUZZ, folder)
    if not os.path.isdir(corpus):
        if os.path.exists(os.path.join(HERE, os.pardir, "pyproject.toml")):
            pytest.fail(f"the source tree has no fuzz corpus at {corpus}")
        pytest.skip("fuzz/ is not beside tests/ (an installed-package run)")
    sys.path.insert(0, FUZZ)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(FUZZ)


def _corpus(folder: str = "corpus", least: int = 100) -> list[bytes]:
    corpus = os.path.join(FUZZ, folder)
    names = sorted(os.listdir(corpus))
    assert len(names) >= least
    out = []
    for name in names:
        with open(os.path.join(corpus, name), "rb") as handle:
            out.append(handle.read())
    return out


def test_fuzz_seeds_are_what_make_seeds_writes() -> None:
    """The seed corpora and the classifier targets' dictionary follow what
    they are made from (the wire rules, the labelled set, the shipped rules):
    ``fuzz/make_seeds.py --check`` fails when one of them is out of date."""
    _harness()  # (the source tree's fuzz/ folder, or a skip when installed alone)
    import subprocess

    done = subprocess.run([sys.executable, os.path.join(FUZZ, "make_seeds.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_fuzz_corpus_replays_clean(both: tuple[ModuleType, ModuleType]) -> None:
    harness = _harness()
    for data in _corpus():
        harness.check(data, both)


def test_fuzz_corpus_keeps_the_invariants(impl: ModuleType) -> None:
    """Each implementation alone (the only check a pure-Python run has):
    offsets, held bytes within the limits, raw bytes that are the stream,
    results that do not depend on the chunking, a stopped parser that holds
    nothing."""
    harness = _harness()
    for data in _corpus():
        harness.check(data, (impl, impl))


def test_the_fuzz_harness_catches_what_it_must(both: tuple[ModuleType, ModuleType]) -> None:
    """The check the fuzzer and the corpus replay rely on fails on a parser
    that loses a reply, on one that misreports what it holds, and on one
    that keeps its state after an error."""
    harness = _harness()
    reference, compiled = both
    data = harness.encode(b"220 hi\r\n250-a\r\n250 b\r\nxyz\r\n", chunking=1)
    harness.check(data, both)  # the real pair agrees

    class LosesAReply(reference.ReplyParser):  # type: ignore[misc, name-defined]
        def feed(self, chunk: Any) -> list[Any]:
            return super().feed(chunk)[1:]

    class MisreportsBuffered(reference.ReplyParser):  # type: ignore[misc, name-defined]
        @property
        def buffered(self) -> int:
            return super().buffered + 1

    class KeepsStateAfterError(reference.ReplyParser):  # type: ignore[misc, name-defined]
        stopped = False

        def feed(self, chunk: Any) -> list[Any]:
            try:
                return super().feed(chunk)
            except ReplyError:
                self.stopped = True
                raise

        @property
        def offset(self) -> int:
            return super().offset - int(self.stopped)

    for broken in (LosesAReply, MisreportsBuffered, KeepsStateAfterError):
        fake = type(sys)("broken_parser")
        fake.ReplyParser = broken
        with pytest.raises(harness.Divergence):
            harness.check(data, (reference, fake))
        with pytest.raises(harness.Divergence):  # an invariant, even as the reference
            harness.check(data, (fake, compiled))


@pytest.mark.parametrize(("name", "folder", "least"), [
    ("harness_checked", "corpus-checked", 90), ("harness_aio", "corpus-aio", 10)])
def test_other_fuzz_targets_replay_clean(both: tuple[ModuleType, ModuleType], name: str,
                                          folder: str, least: int) -> None:
    """feed_checked() with every kind of command log, and the aio queue and
    reader with callers cancelled at random: the seeds of those targets."""
    harness = _harness(name, folder)
    for data in _corpus(folder, least):
        harness.check(data, both)


@pytest.mark.parametrize(("name", "folder", "least"), [
    ("harness_checked", "corpus-checked", 90), ("harness_aio", "corpus-aio", 10)])
def test_other_fuzz_targets_keep_the_invariants(impl: ModuleType, name: str, folder: str,
                                                least: int) -> None:
    harness = _harness(name, folder)
    for data in _corpus(folder, least):
        harness.check(data, (impl, impl))


# -- the classifier -----------------------------------------------------------------
#
# Found by the classify fuzz target (fuzz/harness_classify.py) in the first
# differential runs: an object with ``code`` and ``lines`` that is not a
# parser's Reply was read differently by the two matchers (the compiled one
# joins its lines, the reference read them as given: a float code compared
# as a float, bytearray lines made an unhashable word, an empty list raised
# IndexError, a str raised a regex error); and a compiled Matcher made
# without its tables (``Matcher.__new__``, or an ``__init__`` that failed)
# read NULL pointers and crashed the interpreter.


class Duck:
    """Has ``code`` and ``lines``, and nothing else of a Reply."""

    def __init__(self, code: Any, lines: Any) -> None:
        self.code = code
        self.lines = lines


DUCK_ERRORS: list[tuple[Any, Any, type[Exception], str]] = [
    (550.0, [b"5.1.1 user unknown"], TypeError, "reply code must be an int, not float"),
    (550.5, [b"x"], TypeError, "reply code must be an int, not float"),
    (True, [b"x"], TypeError, "reply code must be an int, not bool"),
    ("550", [b"x"], TypeError, "reply code must be an int, not str"),
    (550, "user unknown", TypeError, "reply lines must be an iterable of bytes, not str"),
    (550, b"user unknown", TypeError, "reply lines must be an iterable of bytes, not bytes"),
    (550, [], ValueError, "a reply has at least one line"),
    (550, iter(()), ValueError, "a reply has at least one line"),
    (550, [b"a", 5], TypeError, "reply line 1 must be bytes, not int"),
    (550, ["user unknown"], TypeError, "reply line 0 must be bytes, not str"),
    (550, None, TypeError, "'NoneType' object is not iterable"),
    (1000, [b"x"], ValueError, "reply code must be -1 to 999, got 1000"),
]


@pytest.mark.parametrize(("code", "lines", "error", "message"), DUCK_ERRORS,
                         ids=[m for *_, m in DUCK_ERRORS])
def test_classify_refuses_a_bad_reply_object(classifier: Any, code: Any, lines: Any,
                                             error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        classifier.classify(Duck(code, lines), "RCPT")
    assert str(info.value) == message


@pytest.mark.parametrize("lines", [
    [b"5.1.1 user unknown"],
    (bytearray(b"5.1.1 user"), memoryview(b"unknown")),
    [b"4.2.0 greylisted, try again in", b"5 minutes"],
    [b"4.2.0 greylisted\n5.1.1 try again\r\nin 5 minutes"],  # a line feed inside a line
    (b"5.2.2 mailbox", b"full"),  # given as an iterator
], ids=["bytes", "bytearray-memoryview", "two-lines", "lf-inside", "iterator"])
def test_a_reply_object_reads_as_its_joined_lines(classifier: Any, lines: Any) -> None:
    """An object with code and lines classifies as ``(code, b"\\n".join(lines))``."""
    want = classifier.classify((450, b"\n".join(bytes(x) for x in lines)), "RCPT")
    given = iter(lines) if isinstance(lines, tuple) and lines[-1] == b"full" else lines
    assert classifier.classify(Duck(450, given), "RCPT") == want
    assert want.rule != "default-4xx"


def test_a_matcher_without_tables_refuses_to_classify(classifier: Any,
                                                      classifier_impl: ModuleType) -> None:
    empty = classifier_impl.Matcher.__new__(classifier_impl.Matcher)
    for _ in range(2):
        with pytest.raises(TypeError, match=r"has no tables: make one with Matcher\(tables\)"):
            empty.classify((250, b"ok"))
    tables = classifier._tables
    built = classifier_impl.Matcher(tables)
    with pytest.raises(TypeError, match="set once"):
        built.__init__(tables)  # the tables of a matcher in use never change
    assert built.classify((550, b"5.1.1 user unknown"), "RCPT").category == "invalid_recipient"


def small_classifier() -> Any:
    """A classifier of a few rules and one provider (quick to build)."""
    from fastreply.classification import Classifier

    return Classifier([
        {"id": "no-user", "phrases": ["does not exist", "user unknown"],
         "category": "invalid_recipient"},
        {"id": "full", "codes": ["4xx"], "phrases": ["mailbox full"], "category": "mailbox_full"},
        {"id": "quota", "enhanced": ["X.2.2"], "category": "mailbox_full"},
    ], {"google": {"hosts": ["gmail.com", "google.com"], "tokens": ["gsmtp"]}})


def test_a_compiled_matcher_whose_init_failed_refuses_to_classify(both: Any) -> None:
    from fastreply import _classify_c

    tables = small_classifier()._tables
    broken = _classify_c.Matcher.__new__(_classify_c.Matcher)
    with pytest.raises(ValueError, match="bad trie entry"):
        broken.__init__(tables._replace(trie={1 << 16 | 1: 10 ** 6}))  # words built, trie not
    with pytest.raises(TypeError, match="has no tables"):
        broken.classify((550, b"5.1.1 user unknown"), "RCPT")
    with pytest.raises(TypeError, match="set once"):
        broken.__init__(tables)


def test_a_phrase_that_is_not_unicode_names_its_rule(classifier_impl: ModuleType) -> None:
    from fastreply.classification import Classifier

    with pytest.raises(ValueError, match=r"rule 'mine': phrase '\\udce9t\\udce9' is not valid "
                                         r"Unicode \(surrogates not allowed at 0\)"):
        Classifier([{"id": "mine", "phrases": ["\udce9t\udce9"], "category": "spam_content"}],
                   matcher=classifier_impl.Matcher)
    with pytest.raises(ValueError, match=r"provider 'acme': phrase '\\ud800' is not valid"):
        Classifier([], {"acme": {"hosts": [], "tokens": ["\ud800"]}},
                   matcher=classifier_impl.Matcher)


def _classify_modules() -> tuple[ModuleType, ModuleType]:
    from fastreply import _classify_c, _classify_py

    return _classify_py, _classify_c


@pytest.mark.parametrize(("name", "folder", "least"), [
    ("harness_classify", "corpus-classify", 400), ("harness_classify_rules",
                                                    "corpus-classify-rules", 40)])
def test_classify_fuzz_targets_replay_clean(both: Any, name: str, folder: str,
                                            least: int) -> None:
    """The classifier's seeds (fuzz/corpus-classify*): both matchers give the
    same answers, which keep the invariants and agree with the rules read one
    by one."""
    harness = _harness(name, folder)
    modules = _classify_modules()
    for data in _corpus(folder, least):
        harness.check(data, modules)


@pytest.mark.parametrize(("name", "folder", "least"), [
    ("harness_classify", "corpus-classify", 400), ("harness_classify_rules",
                                                    "corpus-classify-rules", 40)])
def test_classify_fuzz_targets_keep_the_invariants(classifier_impl: ModuleType, name: str,
                                                   folder: str, least: int) -> None:
    harness = _harness(name, folder)
    for data in _corpus(folder, least):
        harness.check(data, (classifier_impl, classifier_impl))


def test_the_classify_harness_catches_what_it_must(both: Any) -> None:
    """The check fails on a matcher that answers differently, on one that
    breaks an invariant even as the reference, and on one that raises an
    exception other than TypeError or ValueError."""
    from fastreply import classification

    harness = _harness("harness_classify", "corpus-classify")
    reference, compiled = _classify_modules()
    data = harness.encode(b"5.1.1 user unknown", 550, command=2 | 5 << 3)
    harness.check(data, (reference, compiled))

    class Wrong(reference.Matcher):  # type: ignore[misc, name-defined]
        def classify(self, reply: Any, command: Any = None, provider: Any = None) -> Any:
            return super().classify(reply, command, provider)._replace(action="bounce")

    class Unknown(reference.Matcher):  # type: ignore[misc, name-defined]
        def classify(self, reply: Any, command: Any = None, provider: Any = None) -> Any:
            return super().classify(reply, command, provider)._replace(category="lost")

    class Raises(reference.Matcher):  # type: ignore[misc, name-defined]
        def classify(self, reply: Any, command: Any = None, provider: Any = None) -> Any:
            raise IndexError("list index out of range")

    for broken in (Wrong, Unknown, Raises):
        fake = type(sys)(f"broken_{broken.__name__}_c")
        fake.Matcher = broken
        with pytest.raises(harness.Divergence):
            harness.check(data, (reference, fake))
        with pytest.raises(harness.Divergence):  # an invariant or the oracle, even alone
            harness.check(data, (fake, fake))
    assert classification.IMPLEMENTATION in ("cython", "python")


# Found by ci/thread_stress.py's classify phase on free-threaded 3.13t: a
# classifier shared by 4 threads answered right but the pure-Python matcher
# ran 30 times slower in any thread but the one that built it (about 1,000
# replies a second with 4 threads instead of 30,000), and the compiled one 14
# times slower with a command or provider given as a str.  The cause: on 3.13t
# ``dict.get()`` of a key equal to (not the same object as) a key that
# another thread stored takes a slow path, some 50 times slower than ``key in
# d`` and ``d[key]``.  The matcher's word table, trie and enhanced-code index
# and the command and provider caches are read with ``in`` and ``[]`` now.


class GetlessDict(dict):  # type: ignore[type-arg]
    """A dict whose ``get()`` fails the test once ``armed``."""

    armed = False

    def get(self, *args: Any) -> Any:
        if GetlessDict.armed:
            raise AssertionError("dict.get() on the classify path")
        return super().get(*args)


def test_classify_reads_its_tables_and_caches_without_dict_get(
    classifier_impl: ModuleType, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastreply import classification

    tables = small_classifier()._tables
    if classifier_impl.__name__.endswith("_py"):  # (the compiled one copies them into C arrays)
        tables = tables._replace(words=GetlessDict(tables.words), trie=GetlessDict(tables.trie),
                                 by_subject=GetlessDict(tables.by_subject))
    for cell in tables.provider_number.__closure__ or ():  # the provider cache and index
        if type(cell.cell_contents) is dict:
            cell.cell_contents = GetlessDict(cell.cell_contents)
    monkeypatch.setattr(classification, "_COMMAND_CACHE", GetlessDict())
    matcher = classifier_impl.Matcher(tables)
    monkeypatch.setattr(GetlessDict, "armed", True)
    reply = (550, b"5.1.1 The email account that you tried to reach does not exist. x1 - gsmtp")
    assert 2 in tables.by_subject  # (X.2.2: the index is read)
    for _ in range(2):  # the caches empty, then holding the command and the host
        for command, provider in (("".join(["RC", "PT"]), None),
                                  (b"RCPT TO:<a@example.org>", "".join(["mx.", "gmail.com"])),
                                  (5, "google")):  # 5: Command.RCPT
            result = matcher.classify(reply, command, provider)
            assert (result.category, result.provider) == ("invalid_recipient", "google")
        assert matcher.classify((452, b"4.2.2 mailbox full, try again in 5 minutes"),
                                "RCPT").retry_after == 300
