"""The generated benchmark workloads: deterministic, shaped as documented, and
parsed the same by fastreply (both implementations) and smtplib."""

from __future__ import annotations

import hashlib
import io
import smtplib
from types import ModuleType

import pytest

from fastreply._bench.corpus import WORKLOADS, Corpus, Exchange, generate

SMALL = 40_000

# The names of fastreply.commands.Command, as docs/validation.md lists them.
COMMAND_NAMES = set(
    "CONNECT HELO EHLO LHLO MAIL RCPT DATA DATA_END BDAT BDAT_LAST RSET VRFY EXPN HELP "
    "NOOP QUIT TURN SEND SOML SAML STARTTLS AUTH ETRN UNKNOWN".split()
)


@pytest.fixture(scope="module", params=WORKLOADS)
def corpus(request: pytest.FixtureRequest) -> Corpus:
    return generate(request.param, size=SMALL, seed=0)


def test_deterministic(corpus: Corpus) -> None:
    again = generate(corpus.workload, size=SMALL, seed=0)
    assert again == corpus and again.data == corpus.data
    other = generate(corpus.workload, size=SMALL, seed=1)
    assert other.data != corpus.data


# The corpus is built on random.Random(str).random() alone, whose sequence Python
# promises to keep: these digests hold on every Python version and platform.
GOLDEN = {
    "mix": "2c6f1feee752d8b9",
    "single": "1e572466a1b64880",
    "ehlo": "14cbf855fa9597b2",
    "long": "26e1ec27c1da6e6a",
}


def test_same_bytes_everywhere(corpus: Corpus) -> None:
    digest = hashlib.sha256(corpus.data).hexdigest()[:16]
    assert digest == GOLDEN[corpus.workload]


def test_size_and_stream(corpus: Corpus) -> None:
    assert SMALL <= len(corpus.data) < SMALL + 8_000
    assert corpus.data == b"".join(e.reply for e in corpus.exchanges)
    for exchange in corpus.exchanges:
        assert isinstance(exchange, Exchange)
        assert exchange.reply.endswith(b"\r\n")
        assert exchange.reply.count(b"\r\n") == exchange.lines
        assert exchange.reply.startswith(b"%d" % exchange.code)
        # Every line: the code, then '-' on all but the last, ' ' on the last.
        lines = exchange.reply.split(b"\r\n")[:-1]
        assert all(line[:4] == b"%d-" % exchange.code for line in lines[:-1])
        assert lines[-1][:4] == b"%d " % exchange.code
        assert all(len(line) + 2 <= 8192 for line in lines)


def test_chunks(corpus: Corpus) -> None:
    chunks = corpus.chunks(1000)
    assert b"".join(chunks) == corpus.data
    assert all(len(c) == 1000 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 1000
    assert corpus.chunks() == [
        corpus.data[i : i + 65536] for i in range(0, len(corpus.data), 65536)
    ]
    with pytest.raises(ValueError):
        corpus.chunks(0)


def test_commands(corpus: Corpus) -> None:
    assert len(corpus.commands) == len(corpus.command_lines) == len(corpus.codes)
    for exchange in corpus.exchanges:
        assert exchange.command in COMMAND_NAMES
        if exchange.command == "CONNECT":
            assert exchange.line is None
        elif exchange.command == "DATA_END":
            assert exchange.line == b"."
        else:
            assert exchange.line is not None
            assert (
                exchange.line.split(b" ", 1)[0].split(b":")[0].upper() == exchange.command.encode()
            )
            assert b"\r" not in exchange.line and b"\n" not in exchange.line


def test_commands_match_command_from_line(corpus: Corpus) -> None:
    commands = pytest.importorskip("fastreply.commands")
    for exchange in corpus.exchanges:
        if exchange.command not in ("CONNECT", "DATA_END"):
            assert commands.Command.from_line(exchange.line) == commands.Command[exchange.command]


def test_parsed_by_both_implementations(impl: ModuleType, corpus: Corpus) -> None:
    parser = impl.ReplyParser()
    replies = [r for chunk in corpus.chunks(4096) for r in parser.feed(chunk)]
    parser.close()
    assert [r.code for r in replies] == corpus.codes
    assert [r.raw for r in replies] == [e.reply for e in corpus.exchanges]
    assert [len(r.lines) for r in replies] == [e.lines for e in corpus.exchanges]


def test_parsed_by_smtplib(corpus: Corpus) -> None:
    client = smtplib.SMTP(local_hostname="localhost")
    client.file = io.BufferedReader(io.BytesIO(corpus.data))
    assert [client.getreply()[0] for _ in corpus.exchanges] == corpus.codes
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.getreply()  # nothing left over


def test_mix_shape() -> None:
    """About 2.5 lines and 70 bytes a reply, about 10% 4xx/5xx, some multiline."""
    for seed in (0, 1):
        stats = generate("mix", size=300_000, seed=seed).stats()
        assert 2.35 <= stats.mean_lines <= 2.65, stats
        assert 65 <= stats.mean_bytes <= 76, stats
        assert 0.08 <= stats.error_share <= 0.12, stats
        assert stats.multiline_errors >= 0.2 * stats.error_share * stats.replies, stats


def test_mix_sessions() -> None:
    corpus = generate("mix", size=SMALL, seed=3)
    exchanges = corpus.exchanges
    assert exchanges[0].command == "CONNECT" and exchanges[-1].command == "QUIT"
    ehlo = [e for e in exchanges if e.command == "EHLO"]
    # A greeting line and 8-12 extensions.
    assert ehlo and all(9 <= e.lines <= 13 for e in ehlo)
    assert {e.command for e in exchanges} >= {
        "CONNECT",
        "EHLO",
        "MAIL",
        "RCPT",
        "DATA",
        "DATA_END",
        "QUIT",
        "STARTTLS",
    }
    # Every session starts with the greeting, after the previous QUIT (or a 421 greeting).
    for before, after in zip(exchanges, exchanges[1:]):
        if after.command == "CONNECT":
            assert before.command == "QUIT" or (before.command == "CONNECT" and before.code == 421)
    # Enhanced status codes on the replies to MAIL/RCPT/DATA_END, in most sessions.
    assert sum(b"2.1.5" in e.reply for e in exchanges) > 10


def test_other_shapes() -> None:
    single = generate("single", size=SMALL).stats()
    assert single.mean_lines == 1 and single.mean_bytes < 40
    ehlo = generate("ehlo", size=SMALL)
    assert {(e.code, e.lines, e.command) for e in ehlo.exchanges} == {(250, 11, "EHLO")}
    long = generate("long", size=SMALL)
    lines = [line for e in long.exchanges for line in e.reply.split(b"\r\n")[:-1]]
    assert all(200 <= len(line) <= 1000 for line in lines)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown workload"):
        generate("huge")
    with pytest.raises(ValueError, match="size"):
        generate("mix", size=0)
