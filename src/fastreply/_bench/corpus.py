"""Deterministic SMTP reply workloads, for benchmarks and load tests.

Every workload is generated from a seed, so the same call gives the same bytes
on every machine and Python version (no files to download)::

    >>> from fastreply._bench.corpus import generate
    >>> corpus = generate("mix", size=20_000, seed=1)
    >>> corpus.data[:4]
    b'220 '
    >>> len(corpus.codes) == len(corpus.command_lines) == len(corpus.exchanges)
    True

Workloads (:data:`WORKLOADS`):

``mix``
    What a busy MTA client sees across many sessions: a banner, a multiline
    EHLO reply with 8-12 extensions (again after STARTTLS on some sessions),
    MAIL, RCPT, DATA and end-of-data replies with enhanced status codes, QUIT.
    About 10% of the replies are 4xx/5xx, some of them multiline; on average
    about 2.5 lines and 70 bytes a reply.
``single``
    Short one-line replies (``250 2.1.5 Ok``, ``354 ...``, ``221 2.0.0 Bye``).
``ehlo``
    EHLO replies of exactly 11 lines (the greeting line and 10 extensions).
``long``
    Replies whose lines are several hundred bytes long (policy rejections,
    long queue confirmations, help texts).

Each reply comes with the command that it answers (:class:`Exchange`): the
command's name as in :class:`fastreply.commands.Command` (``"CONNECT"`` for
the greeting, ``"DATA_END"`` for the reply after the final ``.``) and the
command line the client sent (``None`` for the greeting, ``b"."`` for the
end of data), so that a validation benchmark or a fake server can pair them.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple, Sequence, TypeVar

from .._common import READ_SIZE

_T = TypeVar("_T")

__all__ = [
    "WORKLOADS",
    "DEFAULT_SIZE",
    "DEFAULT_SEED",
    "Exchange",
    "Corpus",
    "CorpusStats",
    "generate",
]

#: The workload names, in the order benchmarks report them.
WORKLOADS = ("mix", "single", "ehlo", "long")
#: Default size of a generated corpus, in bytes of replies.
DEFAULT_SIZE = 1_000_000
DEFAULT_SEED = 0


class Exchange(NamedTuple):
    """One reply and the command it answers."""

    command: str
    """The command's name, as :class:`fastreply.commands.Command` spells it."""
    line: bytes | None
    """The command line the client sent, without CRLF (``None`` for the greeting)."""
    reply: bytes
    """The reply as the server sends it, with CRLF line ends."""
    code: int
    """The reply code."""
    lines: int
    """How many lines the reply has."""


class CorpusStats(NamedTuple):
    replies: int
    lines: int
    bytes: int
    mean_lines: float
    """Lines per reply."""
    mean_bytes: float
    """Bytes per reply."""
    error_share: float
    """Share of 4xx/5xx replies."""
    multiline_share: float
    """Share of replies with more than one line."""
    multiline_errors: int
    """How many 4xx/5xx replies are multiline."""


@dataclass(frozen=True)
class Corpus:
    """A generated workload: its exchanges and the reply stream they make."""

    workload: str
    seed: int
    exchanges: tuple[Exchange, ...]
    data: bytes = field(repr=False)
    """Every reply, back to back: what the client reads from the socket."""

    @property
    def codes(self) -> list[int]:
        """The code of each reply, in order."""
        return [e.code for e in self.exchanges]

    @property
    def commands(self) -> list[str]:
        """The name of the command each reply answers, in order."""
        return [e.command for e in self.exchanges]

    @property
    def command_lines(self) -> list[bytes | None]:
        """The command line each reply answers, in order (``None``: the greeting)."""
        return [e.line for e in self.exchanges]

    def chunks(self, size: int = READ_SIZE) -> list[bytes]:
        """The stream cut into pieces of ``size`` bytes (the last may be shorter),
        as successive socket reads would return it."""
        if size < 1:
            raise ValueError(f"chunk size must be at least 1, got {size}")
        data = self.data
        return [data[i : i + size] for i in range(0, len(data), size)]

    def stats(self) -> CorpusStats:
        replies = len(self.exchanges)
        lines = sum(e.lines for e in self.exchanges)
        errors = [e for e in self.exchanges if e.code >= 400]
        multiline = sum(1 for e in self.exchanges if e.lines > 1)
        return CorpusStats(
            replies=replies,
            lines=lines,
            bytes=len(self.data),
            mean_lines=lines / replies,
            mean_bytes=len(self.data) / replies,
            error_share=len(errors) / replies,
            multiline_share=multiline / replies,
            multiline_errors=sum(1 for e in errors if e.lines > 1),
        )


def generate(workload: str, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> Corpus:
    """Generate ``workload`` with at least ``size`` bytes of replies.

    The result depends only on the arguments.  ``mix`` ends at the end of a
    session (after the reply to QUIT), so it can be a little longer than
    ``size``; the other workloads stop after the reply that reaches it.
    """
    try:
        make = _GENERATORS[workload]
    except KeyError:
        raise ValueError(
            f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}"
        ) from None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive number of bytes, got {size!r}")
    # (The module's old name seeds the generator: the same bytes as ever.)
    rng = _Rng(f"fastreply.corpus:{workload}:{seed}")
    exchanges: list[Exchange] = []
    total = 0
    for batch in make(rng):
        exchanges.extend(batch)
        total += sum(len(e.reply) for e in batch)
        if total >= size:
            break
    return Corpus(workload, seed, tuple(exchanges), b"".join(e.reply for e in exchanges))


# -- building blocks ---------------------------------------------------------


class _Rng:
    """The few random helpers the generators need, built on ``random()`` alone.

    Python promises that ``Random(seed).random()`` gives the same sequence
    for the same (str) seed in every version; ``choice``, ``sample``,
    ``shuffle`` and friends carry no such promise, so they are redone here:
    the corpus is the same bytes on every Python and platform.
    """

    __slots__ = ("random",)

    def __init__(self, seed: str) -> None:
        self.random: Callable[[], float] = random.Random(seed).random

    def below(self, n: int) -> int:
        """An int in ``[0, n)``."""
        return int(self.random() * n)

    def randrange(self, start: int, stop: int | None = None) -> int:
        if stop is None:
            return self.below(start)
        return start + self.below(stop - start)

    def choice(self, seq: Sequence[_T]) -> _T:
        return seq[self.below(len(seq))]

    def sample(self, seq: Sequence[_T], k: int) -> list[_T]:
        pool = list(seq)
        return [pool.pop(self.below(len(pool))) for _ in range(k)]

    def shuffle(self, items: list[Any]) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]

    def choices(self, population: Sequence[_T], weights: Sequence[float], k: int) -> list[_T]:
        total = float(sum(weights))
        cumulative = list(itertools.accumulate(weights))
        last = len(population) - 1
        return [
            population[min(bisect.bisect_right(cumulative, self.random() * total), last)]
            for _ in range(k)
        ]


def _reply(code: int, texts: Sequence[str | bytes]) -> bytes:
    """Wire form: CRLF, ``-`` on every line but the last."""
    prefix = b"%03d" % code
    out = []
    last = len(texts) - 1
    for i, text in enumerate(texts):
        raw = text.encode("ascii") if isinstance(text, str) else text
        out.append(prefix + (b"-" if i < last else b" ") + raw + b"\r\n")
    return b"".join(out)


def _ex(command: str, line: bytes | None, code: int, *texts: str | bytes) -> Exchange:
    return Exchange(command, line, _reply(code, texts), code, len(texts))


_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HEX = "0123456789ABCDEF"
_WORDS = (
    "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy "
    "rupert sybil trent victor walter info sales support billing noreply newsletter "
    "orders admin postmaster hr jobs team hello contact notifications alerts"
).split()
_DOMAINS = (
    "example.org example.com example.net mail.example.org corp.example.com "
    "lists.example.net shop.example.com eu.example.org mx.example.net cloud.example.com"
).split()


def _token(rng: _Rng, n: int, alphabet: str = _ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _address(rng: _Rng) -> str:
    local = rng.choice(_WORDS)
    if rng.random() < 0.4:
        local += "." + rng.choice(_WORDS)
    if rng.random() < 0.2:
        local += str(rng.randrange(1, 999))
    return f"{local}@{rng.choice(_DOMAINS)}"


def _ip(rng: _Rng) -> str:
    first = rng.choice((192, 198, 203))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _mx_host(rng: _Rng) -> str:
    name = rng.choice(("mx", "mx1", "mx2", "smtp", "mail", "in", "relay"))
    return f"{name}{rng.randrange(1, 40)}.{rng.choice(_DOMAINS)}"


def _client_host(rng: _Rng) -> str:
    return f"out{rng.randrange(1, 300)}.sender.{rng.choice(_DOMAINS)}"


class _Server(NamedTuple):
    """A style of server: how it words its replies."""

    banner: Callable[[_Rng, str], str]
    hello: Callable[[_Rng, str, str, str], str]
    mail_ok: str
    rcpt_ok: str
    data_go: str
    queued: Callable[[_Rng], str]
    bye: str
    reset: str
    tls_go: str


_SERVERS = (
    _Server(  # Postfix
        banner=lambda rng, host: f"{host} ESMTP Postfix (Debian/GNU)",
        hello=lambda rng, host, client, ip: host,
        mail_ok="2.1.0 Ok",
        rcpt_ok="2.1.5 Ok",
        data_go="End data with <CR><LF>.<CR><LF>",
        queued=lambda rng: f"2.0.0 Ok: queued as {_token(rng, rng.randrange(10, 13), _HEX)}",
        bye="2.0.0 Bye",
        reset="2.0.0 Ok",
        tls_go="2.0.0 Ready to start TLS",
    ),
    _Server(  # Exim
        banner=lambda rng, host: (
            f"{host} ESMTP Exim 4.9{rng.randrange(4, 8)} "
            f"Tue, {rng.randrange(1, 29):02d} Oct 2025 {rng.randrange(24):02d}:"
            f"{rng.randrange(60):02d}:{rng.randrange(60):02d} +0000"
        ),
        hello=lambda rng, host, client, ip: f"{host} Hello {client} [{ip}]",
        mail_ok="OK",
        rcpt_ok="Accepted",
        data_go='Enter message, ending with "." on a line by itself',
        queued=lambda rng: f"OK id={_token(rng, 6)}-{_token(rng, 6)}-{_token(rng, 2)}",
        bye="closing connection",
        reset="Reset OK",
        tls_go="TLS go ahead",
    ),
    _Server(  # a large provider
        banner=lambda rng, host: (
            f"{host} ESMTP {_token(rng, 10).lower()}.{rng.randrange(100, 400)} - gsmtp"
        ),
        hello=lambda rng, host, client, ip: f"{host} at your service, [{ip}]",
        mail_ok="2.1.0 OK {0} - gsmtp",
        rcpt_ok="2.1.5 OK {0} - gsmtp",
        data_go="Go ahead {0} - gsmtp",
        queued=lambda rng: (
            f"2.0.0 OK  {rng.randrange(10**9, 10**10)} {_token(rng, 20).lower()}."
            f"{rng.randrange(100, 400)} - gsmtp"
        ),
        bye="2.0.0 closing connection {0} - gsmtp",
        reset="2.1.5 Flushed {0} - gsmtp",
        tls_go="2.0.0 Ready to start TLS",
    ),
    _Server(  # Sendmail
        banner=lambda rng, host: (
            f"{host} ESMTP Sendmail 8.1{rng.randrange(5, 8)}.1/8.1{rng.randrange(5, 8)}.1; "
            f"Tue, {rng.randrange(1, 29)} Oct 2025 "
            f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:00 GMT"
        ),
        hello=lambda rng, host, client, ip: f"{host} Hello {client} [{ip}]",
        mail_ok="2.1.0 Sender ok",
        rcpt_ok="2.1.5 Recipient ok",
        data_go='Enter mail, end with "." on a line by itself',
        queued=lambda rng: f"2.0.0 {_token(rng, 14)} Message accepted for delivery",
        bye="2.0.0 closing connection",
        reset="2.0.0 Reset state",
        tls_go="2.0.0 Ready to start TLS",
    ),
)

_EXTENSIONS = (
    "PIPELINING",
    "SIZE {size}",
    "VRFY",
    "ETRN",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
    "SMTPUTF8",
    "CHUNKING",
    "BINARYMIME",
    "DELIVERBY",
    "HELP",
    "X-RCPTLIMIT 100",
    "REQUIRETLS",
    "MT-PRIORITY MIXER",
    "LIMITS RCPTMAX=100 MAILMAX=50",
)


_AUTH = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "SCRAM-SHA-256")


def _ehlo_lines(
    rng: _Rng, host: str, server: _Server, client: str, ip: str, extensions: int, tls: bool
) -> list[str]:
    """The greeting line and ``extensions`` keyword lines."""
    chosen = rng.sample(_EXTENSIONS, extensions - 1)
    # STARTTLS before TLS, AUTH after it (as servers advertise them).
    chosen.append("AUTH " + " ".join(rng.sample(_AUTH, rng.randrange(2, 5))) if tls else "STARTTLS")
    rng.shuffle(chosen)
    size = rng.choice((10240000, 35882577, 52428800, 157286400))
    return [server.hello(rng, host, client, ip)] + [x.format(size=size) for x in chosen]


def _tag(rng: _Rng) -> str:
    return f"{_token(rng, 10).lower()}.{rng.randrange(100, 400)}"


# Negative replies: (code, lines) builders for each stage, some multiline.
def _rcpt_error(rng: _Rng, rcpt: str) -> tuple[int, list[str]]:
    roll = rng.random()
    if roll < 0.35:
        return 550, [f"5.1.1 <{rcpt}>: Recipient address rejected: User unknown"]
    if roll < 0.55:  # a large provider's three-line rejection
        tag = _tag(rng)
        return 550, [
            f"5.1.1 The email account that you tried to reach does not exist. Please try {tag}",
            f"5.1.1 double-checking the recipient's email address for typos or {tag}",
            f"5.1.1 unnecessary spaces. For more information, go to {tag}",
        ]
    if roll < 0.75:  # greylisting, two lines
        return 450, [
            f"4.2.0 <{rcpt}>: Recipient address rejected: Greylisted, see",
            "4.2.0 https://postgrey.example.org/",
        ]
    if roll < 0.88:
        return 452, ["4.5.3 Too many recipients"]
    return 554, [f"5.7.1 <{rcpt}>: Relay access denied"]


def _data_error(rng: _Rng) -> tuple[int, list[str]]:
    roll = rng.random()
    if roll < 0.5:  # a content rejection, multiline
        ref = _token(rng, 12, _HEX)
        return 554, [
            "5.7.1 Message rejected as spam by Content Filtering.",
            f"5.7.1 Reference {ref}; see https://policy.example.org/spam",
        ]
    if roll < 0.8:
        return 451, ["4.3.0 Error: queue file write error"]
    return 552, ["5.3.4 Message size exceeds fixed limit"]


def _session(rng: _Rng) -> list[Exchange]:
    server = rng.choice(_SERVERS)
    host = _mx_host(rng)
    client = _client_host(rng)
    ip = _ip(rng)
    tag = _tag(rng)
    out: list[Exchange] = []
    # Banner: rarely multiline, rarely a refusal.
    roll = rng.random()
    if roll < 0.02:
        out.append(
            _ex(
                "CONNECT",
                None,
                554,
                f"5.7.1 {host} Service unavailable; client [{ip}] blocked using "
                "zen.spamhaus.example",
            )
        )
        out.append(_ex("QUIT", b"QUIT", 221, server.bye.format(tag)))
        return out
    if roll < 0.03:
        out.append(
            _ex(
                "CONNECT",
                None,
                421,
                f"4.7.0 {host} Too many concurrent SMTP connections; try again later",
            )
        )
        return out
    if roll < 0.08:
        out.append(
            _ex(
                "CONNECT",
                None,
                220,
                server.banner(rng, host),
                "Unsolicited bulk email is not accepted here",
            )
        )
    else:
        out.append(_ex("CONNECT", None, 220, server.banner(rng, host)))
    ehlo_line = b"EHLO " + client.encode()
    out.append(
        _ex(
            "EHLO",
            ehlo_line,
            250,
            *_ehlo_lines(rng, host, server, client, ip, rng.randrange(8, 13), False),
        )
    )
    if rng.random() < 0.3:
        out.append(_ex("STARTTLS", b"STARTTLS", 220, server.tls_go))
        out.append(
            _ex(
                "EHLO",
                ehlo_line,
                250,
                *_ehlo_lines(rng, host, server, client, ip, rng.randrange(8, 13), True),
            )
        )
    messages = 1
    while messages < 6 and rng.random() < 0.25:
        messages += 1
    for _ in range(messages):
        sender = _address(rng)
        size = rng.randrange(2_000, 400_000)
        mail_line = f"MAIL FROM:<{sender}> SIZE={size}".encode()
        if rng.random() < 0.05:
            out.append(_ex("MAIL", mail_line, 452, "4.3.1 Insufficient system storage"))
            continue
        out.append(_ex("MAIL", mail_line, 250, server.mail_ok.format(tag)))
        accepted = 0
        recipients = 1
        while recipients < 20 and rng.random() < 0.3:
            recipients += 1
        for _ in range(recipients):
            rcpt = _address(rng)
            rcpt_line = f"RCPT TO:<{rcpt}>".encode()
            if rng.random() < 0.4:
                code, texts = _rcpt_error(rng, rcpt)
                out.append(_ex("RCPT", rcpt_line, code, *texts))
            else:
                out.append(_ex("RCPT", rcpt_line, 250, server.rcpt_ok.format(tag)))
                accepted += 1
        if not accepted:
            out.append(_ex("RSET", b"RSET", 250, server.reset.format(tag)))
            continue
        out.append(_ex("DATA", b"DATA", 354, server.data_go.format(tag)))
        if rng.random() < 0.12:
            code, texts = _data_error(rng)
            out.append(_ex("DATA_END", b".", code, *texts))
        else:
            out.append(_ex("DATA_END", b".", 250, server.queued(rng)))
    out.append(_ex("QUIT", b"QUIT", 221, server.bye.format(tag)))
    return out


def _mix(rng: _Rng) -> Iterator[list[Exchange]]:
    while True:
        yield _session(rng)


def _single(rng: _Rng) -> Iterator[list[Exchange]]:
    choices: list[Callable[[], Exchange]] = [
        lambda: _ex("MAIL", b"MAIL FROM:<" + _address(rng).encode() + b">", 250, "2.1.0 Ok"),
        lambda: _ex("RCPT", b"RCPT TO:<" + _address(rng).encode() + b">", 250, "2.1.5 Ok"),
        lambda: _ex("RCPT", b"RCPT TO:<" + _address(rng).encode() + b">", 250, "OK"),
        lambda: _ex("DATA", b"DATA", 354, "Go ahead"),
        lambda: _ex("DATA_END", b".", 250, f"2.0.0 Ok: queued as {_token(rng, 10, _HEX)}"),
        lambda: _ex("RSET", b"RSET", 250, "2.0.0 Ok"),
        lambda: _ex("NOOP", b"NOOP", 250, "2.0.0 Ok"),
        lambda: _ex("QUIT", b"QUIT", 221, "2.0.0 Bye"),
        lambda: _ex("CONNECT", None, 220, f"{_mx_host(rng)} ESMTP"),
        lambda: _ex("HELO", b"HELO " + _client_host(rng).encode(), 250, _mx_host(rng)),
        lambda: _ex("RCPT", b"RCPT TO:<" + _address(rng).encode() + b">", 450, "4.2.0 Greylisted"),
        lambda: _ex(
            "RCPT", b"RCPT TO:<" + _address(rng).encode() + b">", 550, "5.1.1 User unknown"
        ),
    ]
    weights = [14, 30, 6, 10, 10, 4, 2, 8, 8, 2, 3, 3]
    while True:
        yield [f() for f in rng.choices(choices, weights, k=64)]


def _ehlo(rng: _Rng) -> Iterator[list[Exchange]]:
    while True:
        server = rng.choice(_SERVERS)
        host, client, ip = _mx_host(rng), _client_host(rng), _ip(rng)
        lines = _ehlo_lines(rng, host, server, client, ip, 10, rng.random() < 0.5)
        yield [_ex("EHLO", b"EHLO " + client.encode(), 250, *lines)]


_LOREM = (
    "policy reputation sender domain address listed blocked message content rejected "
    "please contact your administrator visit https://support.example.org/smtp-errors for "
    "details reference authentication SPF DKIM DMARC alignment failure retry later quota "
    "exceeded mailbox unavailable temporarily suspended outbound relay network abuse"
).split()


def _prose(rng: _Rng, length: int) -> str:
    words: list[str] = []
    total = 0
    while total < length:
        word = rng.choice(_LOREM)
        words.append(word)
        total += len(word) + 1
    return " ".join(words)[:length]


def _long(rng: _Rng) -> Iterator[list[Exchange]]:
    while True:
        nlines = rng.choice((1, 1, 2, 3, 4))
        roll = rng.random()
        if roll < 0.4:
            code, command, line, status = (
                550,
                "RCPT",
                b"RCPT TO:<" + _address(rng).encode() + b">",
                "5.7.1 ",
            )
        elif roll < 0.6:
            code, command, line, status = 554, "DATA_END", b".", "5.7.1 "
        elif roll < 0.8:
            code, command, line, status = 250, "DATA_END", b".", "2.0.0 "
        else:
            code, command, line, status = 214, "HELP", b"HELP", "2.0.0 "
        texts = [status + _prose(rng, rng.randrange(200, 900)) for _ in range(nlines)]
        yield [_ex(command, line, code, *texts)]


_GENERATORS: dict[str, Callable[[_Rng], Iterator[list[Exchange]]]] = {
    "mix": _mix,
    "single": _single,
    "ehlo": _ehlo,
    "long": _long,
}
