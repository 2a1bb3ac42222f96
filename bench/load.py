"""Load: hundreds of concurrent SMTP sessions against a real server on 127.0.0.1, no reply lost.

    python bench/load.py                          # 300 sessions at once, 5 recipients each
    python bench/load.py --sessions 100           # the short form (ci/hostile.sh)
    python bench/load.py --sessions 1000 --concurrency 500 --rcpts 20
    python bench/load.py --server 127.0.0.1:10025 --sessions 300 --concurrency 40   # Postfix

The server is aiosmtpd (from PyPI), run in a child process of its own on a
free port of 127.0.0.1, so that client and server each have a core; or,
with --server, a Postfix that is already running (ci/postfix.sh: local
user fastreply-test@fastreply.test, unknown local users refused at RCPT).  Every
session is a complete transaction with pipelining (RFC 2920):

    connect -> 220;  EHLO -> 250 (multiline)
    MAIL FROM, RCPT TO x N (one in five refused by the server), DATA   in one write
    the message and its final "."                                     -> 250
    RSET, NOOP, QUIT                                                   in one write

The client reads replies with ``fastreply.aio``: sessions alternate
between :class:`~fastreply.aio.ReplyReader` over asyncio streams and
:class:`~fastreply.aio.ReplyProtocol` (``--api`` picks one).  A
:class:`~fastreply.tracker.ReplyTracker` is told every command as it is
sent and matches every reply to its command, in order, and judges its code
against the ``MODERN`` table.  Each reply is also checked against what the
client knows it must be: the command, the code, and a text the server makes
specific to that command (the sender's or the recipient's address, the
session's queue id), so a reply lost, duplicated, cut or matched to the
wrong command is counted, not missed.  After QUIT nothing may be left read
ahead and the stream must end cleanly between replies.  The run is
bounded (--timeout, default 120 s, and each reply 30 s), stops by itself,
prints its figures and exits 1 unless every session completed and every
reply matched.

Sessions open at once are limited by --concurrency and by the open-file
limit (each session is a socket on both sides; the script raises its soft
limit to the hard one).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"


# -- the server (a child process) ---------------------------------------------


class Handler:
    """aiosmtpd hooks: every reply names what it answers."""

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return f"250 2.1.0 Sender <{address}> ok"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address.startswith("refused"):
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return f"250 2.1.5 Recipient <{address}> ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        subject = b""
        for line in envelope.original_content.split(b"\r\n"):
            if line.startswith(b"Subject: "):
                subject = line[9:]
                break
        return f"250 2.0.0 Ok: queued as {subject.decode()} ({len(envelope.rcpt_tos)} rcpts)"


def serve(port_file: str) -> None:
    from aiosmtpd.smtp import SMTP

    _raise_fd_limit()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = Handler()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="mx.load.test", ident="fastreply load"),
            HOST, 0, backlog=4096,
        )
        port = server.sockets[0].getsockname()[1]
        with open(port_file + ".tmp", "w") as handle:
            handle.write(str(port))
        os.replace(port_file + ".tmp", port_file)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the client -------------------------------------------------------------------


@dataclass
class Stats:
    sessions_ok: int = 0
    sessions_failed: int = 0
    by_api: collections.Counter[str] = field(default_factory=collections.Counter)
    commands: int = 0  # replies expected: the greeting, each command, the end of data
    replies: int = 0  # replies received
    matched: int = 0  # received, in order, for the right command, with the right code and text
    lost: int = 0
    mismatched: int = 0
    extra: int = 0
    unexpected: int = 0  # codes the tracker's table does not allow for the command
    pipelined: int = 0  # commands sent in writes of more than one command
    open_now: int = 0  # sessions connected at this moment
    peak_open: int = 0  # the most connected at once
    failures: list[str] = field(default_factory=list)


class _Streams:
    """``fastreply.aio.ReplyReader`` over ``asyncio.open_connection``."""

    name = "streams"

    async def open(self, host: str, port: int) -> None:
        from fastreply.aio import ReplyReader

        reader, self.writer = await asyncio.open_connection(host, port)
        self.replies = ReplyReader(reader)

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def next_reply(self) -> Any:
        return await self.replies.read_reply()

    def read_ahead(self) -> int:
        return self.replies.pending + self.replies.buffered

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class _Protocol:
    """``fastreply.aio.ReplyProtocol`` over ``loop.create_connection``."""

    name = "protocol"

    async def open(self, host: str, port: int) -> None:
        from fastreply.aio import ReplyProtocol

        loop = asyncio.get_running_loop()
        self.transport, self.proto = await loop.create_connection(ReplyProtocol, host, port)

    def write(self, data: bytes) -> None:
        self.proto.write(data)

    async def next_reply(self) -> Any:
        return await self.proto.next_reply()

    def read_ahead(self) -> int:
        return self.proto.replies.pending + self.proto.replies.parser.buffered

    async def close(self) -> None:
        self.transport.close()


APIS: dict[str, type[_Streams] | type[_Protocol]] = {"streams": _Streams, "protocol": _Protocol}


@dataclass
class Target:
    """The server and what its replies say.  Our aiosmtpd handler names
    what each reply answers; Postfix (``--server``) names the address only
    in a refused RCPT, so there the order is checked by codes, the tracker
    and those addresses."""

    host: str
    port: int
    postfix: bool = False
    user: str = "fastreply-test"
    domain: str = "fastreply.test"

    def sender(self, index: int) -> str:
        return f"sender{index}@{self.domain if self.postfix else 'load.test'}"

    def recipient(self, index: int, r: int, refused: bool) -> str:
        if self.postfix:
            # the local test user, or an unknown local user (550 at RCPT)
            return f"nobody-{index}-{r}@{self.domain}" if refused else f"{self.user}@{self.domain}"
        return f"{'refused' if refused else 'user'}{r}.s{index}@load.test"

    def needles(self, index: int) -> dict[str, str]:
        if self.postfix:
            return {"CONNECT": "ESMTP", "EHLO": "PIPELINING", "MAIL": "2.1.0", "RCPT": "2.1.5",
                    "DATA_END": "queued as"}
        return {"CONNECT": "mx.load.test", "EHLO": "8BITMIME",
                "MAIL": f"<{self.sender(index)}>", "RCPT": "", "DATA_END": ""}

    def end_of_data(self, queue_id: str, accepted: int) -> str:
        return "queued as" if self.postfix else f"queued as {queue_id} ({accepted} rcpts)"

    @property
    def no_valid_recipients(self) -> int:
        return 554 if self.postfix else 503  # DATA with every RCPT refused


async def session(index: int, target: Target, rcpts: int, api: str, stats: Stats) -> None:
    from fastreply.aio import ClosedMidReply, ConnectionClosed
    from fastreply.tracker import ReplyTracker

    conn: _Streams | _Protocol = APIS[api]()
    tracker = ReplyTracker()  # matches each reply to its command (RFC 2920 order)
    expected: collections.deque[tuple[str, int, str]] = collections.deque()
    sent = matched = received = 0

    def expect(command: str, code: int, needle: str = "") -> None:
        nonlocal sent
        expected.append((command, code, needle))
        sent += 1

    def send(lines: list[str]) -> None:
        for line in lines:
            tracker.sent(line)
        if len(lines) > 1:
            stats.pipelined += len(lines)
        conn.write("".join(line + "\r\n" for line in lines).encode())  # one write

    async def collect(count: int) -> None:
        nonlocal matched, received
        for _ in range(count):
            command, code, needle = expected.popleft()
            reply = await asyncio.wait_for(conn.next_reply(), timeout=30)
            received += 1
            tracked = tracker.received(reply)
            text = reply.text.decode("utf-8", "replace")
            got = tracked.command.name if tracked.command is not None else "unsolicited"
            if got != command or reply.code != code or needle not in text:
                stats.mismatched += 1
                raise AssertionError(f"session {index}: {command} expected {code} {needle!r}, "
                                     f"got {reply.code} {text!r} (tracker: {got})")
            if not tracked.expected:
                stats.unexpected += 1
                raise AssertionError(f"session {index}: {reply.code} is not a reply {command} "
                                     f"allows (table {tracker.table})")
            matched += 1

    opened = False
    try:
        await conn.open(target.host, target.port)
        opened = True
        stats.open_now += 1
        stats.peak_open = max(stats.peak_open, stats.open_now)
        needles = target.needles(index)
        expect("CONNECT", 220, needles["CONNECT"])
        await collect(1)
        send([f"EHLO client{index}.load.test"])
        expect("EHLO", 250, needles["EHLO"])
        await collect(1)
        sender = target.sender(index)
        lines = [f"MAIL FROM:<{sender}>"]
        expect("MAIL", 250, needles["MAIL"])
        accepted = 0
        for r in range(rcpts):
            refused = r % 5 == 4
            address = target.recipient(index, r, refused)
            lines.append(f"RCPT TO:<{address}>")
            expect("RCPT", 550 if refused else 250,
                   f"<{address}>" if refused or not target.postfix else needles["RCPT"])
            accepted += not refused
        lines.append("DATA")
        expect("DATA", 354 if accepted else target.no_valid_recipients)
        send(lines)  # MAIL, RCPT x N, DATA pipelined in one write
        await collect(len(lines))
        if accepted:
            queue_id = f"load-{index}"
            body = (f"From: <{sender}>\r\nSubject: {queue_id}\r\n\r\n"
                    + "line of text\r\n" * 20 + ".\r\n")
            conn.write(body.encode())  # the tracker expects the end-of-data reply by itself
            expect("DATA_END", 250, target.end_of_data(queue_id, accepted))
            await collect(1)
        send(["RSET", "NOOP", "QUIT"])
        expect("RSET", 250)
        expect("NOOP", 250)
        expect("QUIT", 221)
        await collect(3)
        if tracker.pending:
            raise AssertionError(f"session {index}: tracker still waits for {tracker.pending}")
        # After QUIT the server closes: nothing more may arrive, and the
        # stream must end cleanly between replies.
        if conn.read_ahead():
            stats.extra += 1
            raise AssertionError(f"session {index}: {conn.read_ahead()} bytes or replies "
                                 f"read ahead after QUIT")
        try:
            more = await asyncio.wait_for(conn.next_reply(), timeout=10)
        except ClosedMidReply as exc:
            stats.extra += 1
            raise AssertionError(f"session {index}: a cut reply after QUIT: {exc}") from exc
        except ConnectionClosed:
            pass
        else:
            received += 1
            stats.extra += 1
            raise AssertionError(f"session {index}: a reply after QUIT: {more!r}")
        stats.sessions_ok += 1
        stats.by_api[api] += 1
    except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
        stats.sessions_failed += 1
        if len(stats.failures) < 10:
            stats.failures.append(f"{api} session {index}: {type(exc).__name__}: {exc}")
    finally:
        if opened:
            stats.open_now -= 1
        stats.commands += sent
        stats.matched += matched
        stats.replies += received
        stats.lost += sent - matched
        if opened:
            await conn.close()


async def run_client(target: Target, sessions: int, concurrency: int, rcpts: int,
                     timeout: float, apis: list[str]) -> tuple[Stats, float]:
    stats = Stats()
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await session(index, target, rcpts, apis[index % len(apis)], stats)

    start = time.perf_counter()
    tasks = [asyncio.create_task(one(i)) for i in range(sessions)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
        stats.failures.append(f"{len(pending)} sessions still running after {timeout} s")
    return stats, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=None,
                        help="sessions open at once (default: all of them)")
    parser.add_argument("--rcpts", type=int, default=5, help="recipients per session (5)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the run (120)")
    parser.add_argument("--api", choices=["streams", "protocol", "both"], default="both",
                        help="fastreply.aio way in: ReplyReader (streams), ReplyProtocol "
                        "(protocol), or sessions alternating between them (both, the default)")
    parser.add_argument("--server", metavar="HOST:PORT",
                        help="a Postfix already running there (ci/postfix.sh prints "
                        "FASTREPLY_POSTFIX=127.0.0.1:PORT) instead of our aiosmtpd; its "
                        "per-client limits (50 connections, 100 smtpd processes by default) "
                        "call for --concurrency 40")
    parser.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    _raise_fd_limit()
    concurrency = args.concurrency or args.sessions
    apis = ["streams", "protocol"] if args.api == "both" else [args.api]
    import tempfile

    import fastreply

    if args.server:
        host, _, port_text = args.server.rpartition(":")
        target = Target(host or HOST, int(port_text), postfix=True)
        server_name = f"Postfix on {target.host}:{target.port}"
        stats, elapsed = asyncio.run(
            run_client(target, args.sessions, concurrency, args.rcpts, args.timeout, apis))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            port_file = os.path.join(tmp, "port")
            server = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--serve", port_file])
            try:
                deadline = time.monotonic() + 30
                while not os.path.exists(port_file):
                    if server.poll() is not None or time.monotonic() > deadline:
                        print("load: the server did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.05)
                with open(port_file) as handle:
                    target = Target(HOST, int(handle.read()))
                server_name = f"aiosmtpd on {HOST}:{target.port}"
                stats, elapsed = asyncio.run(
                    run_client(target, args.sessions, concurrency, args.rcpts, args.timeout,
                               apis))
            finally:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    print(f"load: fastreply {fastreply.__version__} ({fastreply.IMPLEMENTATION}), "
          f"fastreply.aio ({args.api}), ReplyTracker; {server_name}")
    api_counts = ", ".join(f"{n} via {a}" for a, n in sorted(stats.by_api.items()))
    print(f"load: {args.sessions} sessions ({concurrency} at once, {args.rcpts} recipients, "
          f"pipelined) in {elapsed:.2f} s: {stats.sessions_ok} complete ({api_counts}), "
          f"{stats.sessions_failed} failed; at most {stats.peak_open} connected at once")
    print(f"load: {stats.commands} replies expected, {stats.replies} received, "
          f"{stats.matched} matched in order; {stats.lost} lost, {stats.extra} duplicated or "
          f"extra, {stats.mismatched} misparsed or mismatched, {stats.unexpected} not allowed "
          f"by the table; {stats.pipelined} commands pipelined; "
          f"{stats.replies / elapsed if elapsed else 0:.0f} replies/s")
    for failure in stats.failures:
        print(f"  {failure}")
    ok = (stats.sessions_ok == args.sessions and not stats.sessions_failed and not stats.lost
          and not stats.extra and not stats.mismatched and not stats.unexpected
          and stats.matched == stats.commands == stats.replies)
    print(f"load: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
