"""``fastreply bench --classify``: the cost of :func:`fastreply.classify` a
reply against the standard library's ``smtplib.SMTP.getreply()`` parsing the
same reply.

The replies are realistic (Gmail, Microsoft, Yahoo, Postfix, greylisting and
DNSBL refusals, and the successes around them) and each carries its own queue
id, IP address or user name, as real replies do, so no cache keyed by the
whole text could help.  ``getreply()`` reads them from the buffered reader an
``SMTP`` connection uses, fed in 64 KiB socket reads; ``classify()`` gets each
reply already parsed and the command it answers (what a sending loop holds).
Rounds alternate the contenders; the report gives each one's median ns per
reply and the median of each round's ratio to ``getreply()``.
"""

from __future__ import annotations

import random
import smtplib
from typing import Any, Callable

from ..commands import Command
from .engine import DEFAULT_CHUNK, FakeSocket, Progress, Runner, median, time_rounds

__all__ = [
    "TEMPLATES",
    "make_replies",
    "getreply_runner",
    "classify_runner",
    "measure_classification",
    "format_classification",
]

DEFAULT_COUNT = 20_000

#: (command, reply template): {id} a queue id, {ip} an address, {user} a local part, {n} a number.
TEMPLATES: tuple[tuple[str, str], ...] = (
    ("DATA_END", "250 2.0.0 Ok: queued as {id}\r\n"),
    ("DATA_END", "250 2.0.0 OK  {n} {id}.{n} - gsmtp\r\n"),
    ("RCPT", "250 2.1.5 OK {id}.{n} - gsmtp\r\n"),
    ("MAIL", "250 2.1.0 Sender <{user}@example.org> OK\r\n"),
    ("DATA", "354 End data with <CR><LF>.<CR><LF>\r\n"),
    ("RCPT", "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
             "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
             "550-5.1.1 unnecessary spaces. For more information, go to\r\n"
             "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser {id}.{n} - gsmtp\r\n"),
    ("RCPT", "452-4.2.2 The recipient's inbox is out of storage space. Please direct the\r\n"
             "452 4.2.2 recipient to https://support.google.com/mail/?p=OverQuotaTemp {id} - gsmtp\r\n"),
    ("DATA_END", "421-4.7.28 [{ip}] Our system has detected an unusual rate of\r\n"
                 "421-4.7.28 unsolicited mail originating from your IP address. To protect our\r\n"
                 "421 4.7.28 users from spam, mail sent from your IP address has been temporarily rate limited. {id} - gsmtp\r\n"),
    ("MAIL", "550 5.7.1 Unfortunately, messages from [{ip}] weren't sent. Please contact your "
             "Internet service provider since part of their network is on our block list (S3150). "
             "[{id}.eop-eur04.prod.protection.outlook.com]\r\n"),
    ("RCPT", "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) "
             "[{id}.eop-nam12.prod.protection.outlook.com]\r\n"),
    ("MAIL", "451 4.7.500 Server busy. Please try again later from [{ip}]. (S77719) "
             "[{id}.eop-nam11.prod.protection.outlook.com]\r\n"),
    ("MAIL", "421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due to unexpected volume "
             "or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes\r\n"),
    ("RCPT", "554 delivery error: dd This user doesn't have a yahoo.com account ({user}@yahoo.com) "
             "[0] - mta{n}.mail.bf1.yahoo.com\r\n"),
    ("RCPT", "550 5.1.1 <{user}@example.org>: Recipient address rejected: User unknown in local "
             "recipient table\r\n"),
    ("RCPT", "554 5.7.1 Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org; "
             "https://www.spamhaus.org/query/ip/{ip}\r\n"),
    ("RCPT", "450 4.2.0 <{user}@example.org>: Recipient address rejected: Greylisted, see "
             "http://postgrey.schweikert.ch/help/example.org.html\r\n"),
    ("RCPT", "451 4.7.1 Greylisting in action, please come back in 00:05:00 ({id})\r\n"),
    ("DATA_END", "552 5.3.4 Message size exceeds fixed limit ({id})\r\n"),
)

_ID_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTVWXYZ"


def make_replies(count: int = DEFAULT_COUNT, seed: int = 0) -> tuple[bytes, list[Command]]:
    """``count`` replies (the stream, and the command each answers), every one
    with its own ids; the same bytes for the same seed."""
    rng = random.Random(seed)
    out = []
    commands = []
    for i in range(count):
        command, template = TEMPLATES[i % len(TEMPLATES)]
        text = template.format(
            id="".join(rng.choice(_ID_ALPHABET) for _ in range(12)),
            ip=f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}."
               f"{rng.randrange(1, 255)}",
            user=f"user{rng.randrange(10**7)}",
            n=rng.randrange(10**9),
        )
        out.append(text.encode())
        commands.append(Command[command])
    return b"".join(out), commands


def getreply_runner(stream: bytes, count: int) -> Runner:
    """``count`` calls of ``smtplib.SMTP.getreply()`` reading ``stream`` in
    socket-sized reads (the baseline)."""

    def run() -> int:
        smtp = smtplib.SMTP(local_hostname="localhost")
        sock = FakeSocket(stream, DEFAULT_CHUNK)
        smtp.sock = sock  # type: ignore[assignment]
        smtp.file = sock.makefile("rb")
        getreply = smtp.getreply
        for _ in range(count):
            getreply()
        return count

    return run


def classify_runner(function: Callable[..., Any], items: list[tuple[Any, Command]]) -> Runner:
    """``function(reply, command)`` for each pair of ``items``."""

    def run() -> int:
        for reply, command in items:
            function(reply, command)
        return len(items)

    return run


def measure_classification(
    *, count: int = DEFAULT_COUNT, rounds: int = 7, min_time: float = 0.05, seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure; return the JSON-ready section of the report."""
    from .. import _classify_py, _parser_py, classification
    from ..classification import Classifier

    stream, commands = make_replies(count, seed)
    contenders: dict[str, Runner] = {"getreply": getreply_runner(stream, count)}
    labels = {"getreply": "smtplib getreply() (parsing)"}
    if classification.IMPLEMENTATION == "cython":  # (a pure build has no compiled modules)
        from .. import _classify_c, _parser_c

        replies = _parser_c.ReplyParser().feed(stream)
        pairs = [(reply.code, reply.text) for reply in replies]
        contenders["compiled"] = classify_runner(_classify_c.classify, list(zip(replies, commands)))
        labels["compiled"] = "classify(Reply), compiled"
        contenders["compiled_pair"] = classify_runner(_classify_c.classify,
                                                      list(zip(pairs, commands)))
        labels["compiled_pair"] = "classify((code, message)), compiled"
    python = Classifier(matcher=_classify_py.Matcher)
    replies_py = _parser_py.ReplyParser().feed(stream)
    contenders["python"] = classify_runner(python.classify, list(zip(replies_py, commands)))
    labels["python"] = "classify(Reply), pure Python"
    if len(replies_py) != count:
        raise RuntimeError(f"the stream parsed into {len(replies_py)} replies, not {count}")
    seconds = time_rounds({key: (run, count) for key, run in contenders.items()},
                          rounds=rounds, min_time=min_time,
                          progress=progress or Progress(quiet=True), prefix="bench classify: ")
    base = seconds.seconds["getreply"]
    return {
        "replies": count,
        "templates": len(TEMPLATES),
        "rounds": rounds,
        "labels": labels,
        "results": {
            key: {"ns_per_reply": median(times) / count * 1e9,
                  "ratio_to_getreply": median([t / b for t, b in zip(times, base)])}
            for key, times in seconds.seconds.items()
        },
    }


def format_classification(section: dict[str, Any]) -> str:
    """The human-readable table."""
    lines = [
        f"classify() vs smtplib getreply(): {section['replies']} replies from "
        f"{section['templates']} templates, each with its own ids; {section['rounds']} rounds, "
        "medians",
        f"{'':38} {'ns/reply':>9}  {'x getreply':>10}",
    ]
    for key, result in section["results"].items():
        lines.append(f"{section['labels'][key]:38} {result['ns_per_reply']:9.0f}  "
                     f"{result['ratio_to_getreply']:9.2f}x")
    return "\n".join(lines) + "\n"
