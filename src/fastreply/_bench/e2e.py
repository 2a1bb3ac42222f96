"""End-to-end sending benchmark: ``fastreply bench --e2e``.

Sends the same small message (about 400 bytes, one recipient) N times to a
real SMTP server with each client, and reports messages a second and the
client's CPU time a message, as ratios measured in one run:

``stdlib``       the standard library's ``smtplib.SMTP.sendmail()``, one connection
``dropin``       ``fastreply.smtplib.SMTP.sendmail()``, one connection
``aiosmtplib``   ``aiosmtplib.SMTP.sendmail()`` on C connections, each sending its
                 share one message after another (when aiosmtplib is installed)
``pool``         ``fastreply.aio.SMTPPool(connections=C)``, fed by 4 x C tasks that
                 each send their share one message after another
``smtp-source``  Postfix's C load generator, C sessions, messages of about the same
                 size (when installed; no pipelining)

The server is Postfix's ``smtp-sink`` (Debian package ``postfix``), started
on a free 127.0.0.1 port and stopped at the end whatever happens, or the
server given with ``--server HOST:PORT`` (loopback only unless
``--allow-remote``).  With smtp-sink, its own message counter (``-c``) must
have grown by exactly the messages each client sent, or the run fails.

Each Python client runs in its own process (``python -m
fastreply._bench.e2e client NAME --server HOST:PORT --messages N
--connections C``), which prints one JSON object: ``messages``, ``seconds``
(``time.perf_counter()``) and ``cpu_seconds`` (``time.process_time()``: user +
system time of the whole client process), both measured from after the
imports, the connections and EHLO to the reply to the last message's end of
data (QUIT is not counted).  The pool has no separate connection set-up: it
first sends three warm-up messages per connection, concurrently (not counted,
reported as ``warmup``).  ``smtp-source`` is measured from outside: wall time
from its start to its exit (connections and process start-up included, a
few milliseconds) and CPU from its resource usage (``os.wait4``).

The clients run in rounds (``--e2e-rounds``, default 3), each round every
client once, starting one client further along each time; reported are the
median msg/s and CPU a message, and for the ratios the median of each round's
ratio (a busy machine slows clients measured close together alike).

Latency mode (``--latency 1,10,50``): the same clients on one connection
each, through :mod:`fastreply._bench.proxy` (its own process) which delays
each direction by half the round trip, report messages a second at each
round trip: what pipelining saves where each round trip costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Sequence

__all__ = [
    "CLIENTS",
    "E2EError",
    "MESSAGE",
    "Settings",
    "format_report",
    "main",
    "parse_address",
    "run_cli",
    "run_client",
    "run_e2e",
    "write_plot",
]

#: Client names, in report order.
CLIENTS = ("stdlib", "dropin", "aiosmtplib", "pool", "smtp-source")
BLOCKING = ("stdlib", "dropin")
LABELS = {
    "stdlib": "smtplib.SMTP",
    "dropin": "fastreply.smtplib.SMTP",
    "aiosmtplib": "aiosmtplib.SMTP",
    "pool": "fastreply.aio.SMTPPool",
    "smtp-source": "smtp-source (C)",
}
#: What each client is compared with (msg/s and CPU a message).
BASELINES = {
    "stdlib": ("stdlib",),
    "dropin": ("stdlib",),
    "aiosmtplib": ("aiosmtplib", "smtp-source"),
    "pool": ("aiosmtplib", "smtp-source"),
    "smtp-source": ("aiosmtplib", "smtp-source"),
}

DEFAULT_MESSAGES = 10_000
DEFAULT_CONNECTIONS = 100
DEFAULT_ROUNDS = 3
CLIENT_TIMEOUT = 60.0  # an SMTP wait, in the clients

HELO = "client.fastreply.test"
SENDER = "bench@client.fastreply.test"
RECIPIENT = "sink@sink.fastreply.test"
MESSAGE = (
    f"From: Benchmark <{SENDER}>\r\n"
    f"To: Sink <{RECIPIENT}>\r\n"
    "Subject: fastreply end-to-end benchmark\r\n"
    "Date: Mon, 30 Nov 2026 12:00:00 +0000\r\n"
    "Message-ID: <e2e-benchmark@client.fastreply.test>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    + "A small message, the same for every client of the benchmark.\r\n" * 2
).encode("ascii")

#: Where Postfix's programs live when /usr/sbin is not on PATH (non-root users).
SBIN_PATHS = ("/usr/sbin", "/usr/local/sbin", "/usr/lib/postfix/sbin")


class E2EError(RuntimeError):
    """The benchmark could not run or a client misbehaved (not a slow result)."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


# -- the clients (each runs in its own process) ---------------------------------------


class Skipped(Exception):
    """The client cannot run here (the reason is the message)."""


def _measured(messages: int, connections: int, seconds: float, cpu: float, refused: int,
              **extra: Any) -> dict[str, Any]:
    return {"messages": messages, "connections": connections, "seconds": seconds,
            "cpu_seconds": cpu, "refused": refused, **extra}


def _blocking(module_name: str, host: str, port: int, messages: int) -> dict[str, Any]:
    import importlib

    module = importlib.import_module(module_name)  # smtplib or fastreply.smtplib
    client = module.SMTP(host, port, local_hostname=HELO, timeout=CLIENT_TIMEOUT)
    try:
        client.ehlo()
        refused = 0
        sendmail = client.sendmail
        recipients = [RECIPIENT]
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(messages):
            if sendmail(SENDER, recipients, MESSAGE):
                refused += 1
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        client.quit()
    finally:
        client.close()
    return _measured(messages, 1, wall, cpu, refused)


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


async def _aiosmtplib(host: str, port: int, messages: int, connections: int) -> dict[str, Any]:
    try:
        import aiosmtplib
    except ImportError:
        raise Skipped("aiosmtplib is not installed (pip install aiosmtplib)") from None
    connections = max(1, min(connections, messages))
    clients = [aiosmtplib.SMTP(hostname=host, port=port, local_hostname=HELO,
                               timeout=CLIENT_TIMEOUT, start_tls=False)
               for _ in range(connections)]
    await asyncio.gather(*(c.connect() for c in clients))
    await asyncio.gather(*(c.ehlo() for c in clients))
    refused = 0

    async def send(client: Any, count: int) -> None:
        nonlocal refused
        for _ in range(count):
            errors, _ = await client.sendmail(SENDER, [RECIPIENT], MESSAGE)
            refused += bool(errors)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(send(c, n) for c, n in zip(clients, _shares(messages, connections))))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await asyncio.gather(*(c.quit() for c in clients), return_exceptions=True)
    return _measured(messages, connections, wall, cpu, refused,
                     version=getattr(aiosmtplib, "__version__", None))


async def _pool(host: str, port: int, messages: int, connections: int) -> dict[str, Any]:
    from fastreply.aio import SMTPPool

    connections = max(1, min(connections, messages))
    refused = 0
    # Senders: as many tasks as the pool keeps messages in flight, and one
    # more a connection, each sending its share one message after another
    # (as aiosmtplib's tasks do, one a connection): the pool always has
    # the next message of every connection at hand.
    depth = 3
    senders = max(1, min(messages, connections * (depth + 1)))

    async def send(pool: SMTPPool, count: int) -> None:
        nonlocal refused
        for _ in range(count):
            errors, _ = await pool.sendmail(SENDER, [RECIPIENT], MESSAGE)
            refused += bool(errors)

    async with SMTPPool(host, port, connections=connections, depth=depth, local_hostname=HELO,
                        timeout=CLIENT_TIMEOUT) as pool:
        # Warm-up: a few messages a connection, so that the pool opens them all.
        await asyncio.gather(*(pool.sendmail(SENDER, [RECIPIENT], MESSAGE)
                               for _ in range(connections * depth)))
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(send(pool, n) for n in _shares(messages, senders)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return _measured(messages, connections, wall, cpu, refused, warmup=connections * depth)


def run_client(name: str, host: str, port: int, messages: int,
               connections: int) -> dict[str, Any]:
    """Run one Python client in this process; the measurement as a dict (see
    the module documentation).  Raises :class:`Skipped` when it cannot run."""
    if name == "stdlib":
        result = _blocking("smtplib", host, port, messages)
    elif name == "dropin":
        result = _blocking("fastreply.smtplib", host, port, messages)
    elif name == "aiosmtplib":
        result = asyncio.run(_aiosmtplib(host, port, messages, connections))
    elif name == "pool":
        result = asyncio.run(_pool(host, port, messages, connections))
    else:
        raise ValueError(f"no Python client {name!r} (choose from "
                         f"{', '.join(c for c in CLIENTS if c != 'smtp-source')})")
    if name in ("dropin", "pool"):
        import fastreply

        result["implementation"] = fastreply.IMPLEMENTATION
    return {"client": name, **result}


def _client_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m fastreply._bench.e2e client")
    p.add_argument("name", choices=[c for c in CLIENTS if c != "smtp-source"])
    p.add_argument("--server", required=True, type=parse_address, metavar="HOST:PORT")
    p.add_argument("--messages", type=_positive_int, default=DEFAULT_MESSAGES)
    p.add_argument("--connections", type=_positive_int, default=DEFAULT_CONNECTIONS)
    args = p.parse_args(argv)
    try:
        host, port = args.server
        result = run_client(args.name, host, port, args.messages, args.connections)
    except Skipped as exc:
        result = {"client": args.name, "skipped": str(exc)}
    print(json.dumps(result), flush=True)
    return 0


# -- the parent: server, processes, tables ---------------------------------------------


def find_tool(name: str) -> str | None:
    """Postfix's ``smtp-sink`` / ``smtp-source``: on PATH or in an sbin directory."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *SBIN_PATHS])
    return shutil.which(name, path=path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _greeting(address: tuple[str, int], timeout: float) -> bytes:
    with socket.create_connection(address, timeout=timeout) as sock:
        data = sock.recv(1024)
        with contextlib.suppress(OSError):
            sock.sendall(b"QUIT\r\n")
        return data


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Sink:
    """Postfix's smtp-sink on a free 127.0.0.1 port, counting messages (``-c``)."""

    path: str
    connections: int
    address: tuple[str, int] = ("127.0.0.1", 0)
    command: list[str] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = None
    _counter: IO[bytes] | None = None

    def start(self) -> None:
        for attempt in range(5):
            self._counter = tempfile.TemporaryFile()
            port = _free_port()
            self.command = [self.path, "-c", "-m", str(max(256, 2 * self.connections + 16))]
            if hasattr(os, "geteuid") and os.geteuid() == 0:  # smtp-sink needs -u as root
                self.command += ["-u", _unprivileged_user()]
            self.command += [f"127.0.0.1:{port}", "1024"]
            self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                             stdout=self._counter, stderr=subprocess.PIPE)
            self.address = ("127.0.0.1", port)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._process.poll() is None:
                with contextlib.suppress(OSError):
                    if _greeting(self.address, 2).startswith(b"220"):
                        return
                time.sleep(0.05)
            error = self._process.stderr.read().decode(errors="replace") if (
                self._process.poll() is not None and self._process.stderr) else ""
            self.stop()
            if attempt == 4 or "in use" not in error:
                raise E2EError(f"smtp-sink did not start on 127.0.0.1:{port}: "
                               f"{error.strip() or 'no greeting within 10 s'}")

    def count(self) -> int:
        """Messages the sink has received so far (its last ``mesg=`` counter)."""
        assert self._counter is not None
        self._counter.seek(0)
        data = self._counter.read()
        found = re.findall(rb"mesg=(\d+)", data[-200:])
        return int(found[-1]) if found else 0

    def settled_count(self, expected: int, timeout: float = 3.0) -> int:
        """:meth:`count` once it reached ``expected`` (or stopped changing)."""
        deadline = time.monotonic() + timeout
        last = self.count()
        while last != expected and time.monotonic() < deadline:
            time.sleep(0.05)
            last = self.count()
        return last

    def stop(self) -> None:
        """Stop the sink (the counter is gone with it)."""
        if self._process is not None:
            _stop(self._process)
            if self._process.stderr is not None:
                self._process.stderr.close()
            self._process = None
        if self._counter is not None:
            self._counter.close()
            self._counter = None


def _unprivileged_user() -> str:
    if sys.platform == "win32":
        raise E2EError("smtp-sink runs on Unix only")
    import pwd

    for name in ("nobody", "daemon"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise E2EError("running as root, smtp-sink needs an unprivileged user (-u): "
                   "there is no 'nobody' or 'daemon'")


@contextlib.contextmanager
def delaying_proxy(upstream: tuple[str, int], rtt_ms: float) -> Iterator[tuple[str, int]]:
    """The delaying proxy (its own process) in front of ``upstream``: its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fastreply._bench.proxy", "--upstream",
         f"{upstream[0]}:{upstream[1]}", "--rtt-ms", str(rtt_ms)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode(errors="replace")
        if not line.startswith("LISTENING "):
            _stop(process)
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise E2EError(f"the delaying proxy did not start: {line!r} {error.strip()}")
        yield parse_address(line.split()[1])
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        _stop(process)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _run_python_client(name: str, address: tuple[str, int], messages: int, connections: int,
                       timeout: float) -> dict[str, Any]:
    command = [sys.executable, "-m", "fastreply._bench.e2e", "client", name,
               "--server", f"{address[0]}:{address[1]}", "--messages", str(messages),
               "--connections", str(connections)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"client": name, "failed": f"no result within {timeout:.0f} s"}
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        return {"client": name,
                "failed": f"exit status {done.returncode}: {' | '.join(tail) or 'no output'}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _smtp_source_length() -> int:
    """The ``-l`` (payload bytes) that makes smtp-source's messages about
    :data:`MESSAGE`'s size (it adds From, To, Date and Message-Id headers)."""
    headers = (f"From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\n"
               "Date: Mon, 30 Nov 2026 12:00:00 +0000 (UTC)\r\n"
               f"Message-Id: <1234.0001.0001@{HELO}>\r\n\r\n")
    return max(1, len(MESSAGE) - len(headers))


def _run_smtp_source(path: str, address: tuple[str, int], messages: int, connections: int,
                     timeout: float) -> dict[str, Any]:
    if sys.platform == "win32":
        return {"client": "smtp-source", "skipped": "smtp-source runs on Unix only"}
    connections = max(1, min(connections, messages))
    command = [path, "-d", "-s", str(connections), "-m", str(messages),
               "-l", str(_smtp_source_length()), "-f", SENDER, "-t", RECIPIENT, "-M", HELO,
               f"{address[0]}:{address[1]}"]
    with tempfile.TemporaryFile() as err:
        wall = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=err)
        killer = threading.Timer(timeout, process.kill)  # a hung run ends as a failure
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # its exit and its resource usage
        except BaseException:  # interrupted: leave nothing running
            process.kill()
            os.wait4(process.pid, 0)
            raise
        finally:
            killer.cancel()
        wall = time.perf_counter() - wall
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode == -signal.SIGKILL:
            return {"client": "smtp-source", "failed": f"no result within {timeout:.0f} s"}
        err.seek(0)
        error = err.read().decode(errors="replace").strip()
    if process.returncode != 0:
        return {"client": "smtp-source",
                "failed": f"exit status {process.returncode}: {error[-300:] or 'no output'}"}
    return {"client": "smtp-source", **_measured(
        messages, connections, wall, usage.ru_utime + usage.ru_stime, 0,
        payload_bytes=_smtp_source_length())}


@dataclass
class Settings:
    messages: int = DEFAULT_MESSAGES
    connections: int = DEFAULT_CONNECTIONS
    server: tuple[str, int] | None = None  # None: start smtp-sink
    allow_remote: bool = False
    latency_ms: list[float] = field(default_factory=list)
    latency_messages: int | None = None  # None: by round trip (latency_messages_for)
    clients: tuple[str, ...] = CLIENTS
    rounds: int = DEFAULT_ROUNDS


def latency_messages_for(rtt_ms: float) -> int:
    """Messages a client sends at this round trip: about 2 s for smtplib
    (4 round trips a message), at least 10."""
    return max(10, min(500, round(500 / max(rtt_ms, 1.0))))


def _check_loopback(host: str) -> None:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise ValueError(f"--server: cannot resolve {host!r}: {exc}") from None
    remote = sorted({str(info[4][0]) for info in infos
                     if not ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback})
    if remote:
        raise ValueError(
            f"--server {host} is not a loopback address ({', '.join(remote)}): the benchmark "
            "sends thousands of messages; pass --allow-remote if that server is yours for it"
        )


Progress = Callable[[str], None]


def _measure(name: str, address: tuple[str, int], messages: int, connections: int,
             sink: Sink | None, source: str | None, progress: Progress) -> dict[str, Any]:
    timeout = max(120.0, messages / 50)
    before = sink.count() if sink is not None else None
    if name == "smtp-source":
        if source is None:
            return {"client": name, "skipped": "smtp-source is not installed (Debian package "
                    "postfix; `sudo bash ci/postfix.sh --install`)"}
        result = _run_smtp_source(source, address, messages, connections, timeout)
    else:
        result = _run_python_client(name, address, messages, connections, timeout)
    if "seconds" in result:
        result["msg_per_s"] = result["messages"] / result["seconds"]
        result["cpu_us_per_msg"] = result["cpu_seconds"] / result["messages"] * 1e6
        if before is not None and sink is not None:
            sent = result["messages"] + result.get("warmup", 0)
            result["sink_accepted"] = sink.settled_count(before + sent) - before
            if result["sink_accepted"] != sent:
                raise E2EError(f"{name}: smtp-sink received {result['sink_accepted']} "
                               f"messages, the client sent {sent}")
        if result["refused"]:
            raise E2EError(f"{name}: {result['refused']} messages refused by the server")
        progress(f"{name}: {result['msg_per_s']:,.0f} msg/s, "
                 f"{result['cpu_us_per_msg']:.0f} µs CPU a message")
    else:
        progress(f"{name}: {result.get('skipped') or result.get('failed')}")
    return result


def _combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One client's rounds as one result: the median msg/s and CPU a message,
    every round kept in ``rounds``; failed or skipped if any round was."""
    for run in runs:
        if "msg_per_s" not in run:
            return run
    result = dict(runs[0])
    for key in ("msg_per_s", "cpu_us_per_msg"):
        result[key] = statistics.median(run[key] for run in runs)
    for key in ("seconds", "cpu_seconds"):
        del result[key]
    if "sink_accepted" in result:
        result["sink_accepted"] = sum(run["sink_accepted"] for run in runs)
    result["rounds"] = [{key: run[key] for key in
                         ("seconds", "cpu_seconds", "msg_per_s", "cpu_us_per_msg")}
                        for run in runs]
    return result


def _ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """For each client and each of its baselines: the median over the rounds
    of that round's ratio (msg/s, and CPU a message), with the range of the
    msg/s ratio.  Ratios within a round compare runs made minutes apart at
    most, so a busy machine skews them less than the medians do."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, result in results.items():
        for base in BASELINES[name]:
            ref = results.get(base, {})
            if "rounds" not in result or "rounds" not in ref:
                continue
            pairs = list(zip(result["rounds"], ref["rounds"]))
            speed = [r["msg_per_s"] / b["msg_per_s"] for r, b in pairs]
            out.setdefault(name, {})[base] = {
                "msg_per_s": statistics.median(speed),
                "cpu_per_msg": statistics.median(
                    r["cpu_us_per_msg"] / b["cpu_us_per_msg"] for r, b in pairs),
                "msg_per_s_min": min(speed),
                "msg_per_s_max": max(speed),
            }
    return out


def run_e2e(settings: Settings, progress: Progress = lambda _text: None) -> dict[str, Any]:
    """Run the benchmark; the report (see :func:`format_report`)."""
    import fastreply

    unknown = [c for c in settings.clients if c not in CLIENTS]
    if unknown:
        raise ValueError(f"unknown client {unknown[0]!r} (choose from {', '.join(CLIENTS)})")
    source = find_tool("smtp-source")
    with contextlib.ExitStack() as stack:
        sink: Sink | None = None
        server: dict[str, Any]
        if settings.server is not None:
            if not settings.allow_remote:
                _check_loopback(settings.server[0])
            address = settings.server
            server = {"kind": "given", "address": f"{address[0]}:{address[1]}"}
        else:
            path = find_tool("smtp-sink")
            if path is None:
                raise E2EError(
                    "smtp-sink is not installed (it comes with Debian's postfix package: "
                    "`sudo bash ci/postfix.sh --install`, or `apt-get install postfix`); "
                    "or pass --server HOST:PORT of a server that accepts every message")
            sink = Sink(path, max(settings.connections, 1))
            sink.start()
            stack.callback(sink.stop)
            address = sink.address
            server = {"kind": "smtp-sink", "address": f"{address[0]}:{address[1]}",
                      "command": sink.command}
        progress(f"server: {server['kind']} on {server['address']}")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in settings.clients}
        for round_ in range(settings.rounds):
            # Each round measures every client once, starting one further along.
            start = round_ % len(settings.clients)
            order = [*settings.clients[start:], *settings.clients[:start]]
            if settings.rounds > 1:
                progress(f"round {round_ + 1} of {settings.rounds}")
            for name in order:
                if runs[name] and "msg_per_s" not in runs[name][-1]:
                    continue  # skipped or failed: once is enough
                runs[name].append(_measure(name, address, settings.messages,
                                           1 if name in BLOCKING else settings.connections,
                                           sink, source, progress))
        results = {name: _combine(runs[name]) for name in settings.clients}
        latency: dict[str, Any] = {}
        if settings.latency_ms:
            latency = {"rtt_ms": settings.latency_ms, "messages": {}, "results": {}}
            for rtt in settings.latency_ms:
                count = settings.latency_messages or latency_messages_for(rtt)
                latency["messages"][_ms(rtt)] = count
                progress(f"round trip {_ms(rtt)} ms, {count} messages a client, one connection")
                with delaying_proxy(address, rtt) as proxied:
                    for name in settings.clients:
                        result = _measure(name, proxied, count, 1, sink, source, progress)
                        latency["results"].setdefault(name, {})[_ms(rtt)] = result
    return {
        "benchmark": "e2e",
        "fastreply": fastreply.__version__,
        "implementation": fastreply.IMPLEMENTATION,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "settings": {"messages": settings.messages, "connections": settings.connections,
                     "rounds": settings.rounds, "message_bytes": len(MESSAGE),
                     "clients": list(settings.clients)},
        "server": server,
        "labels": {name: LABELS[name] for name in settings.clients},
        "results": results,
        "ratios": _ratios(results),
        "latency": latency,
    }


def _ms(rtt: float) -> str:
    return f"{rtt:g}"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def format_report(report: dict[str, Any]) -> str:
    """The tables, as text."""
    settings = report["settings"]
    labels = report["labels"]
    width = max(len(label) for label in labels.values())
    out = [
        f"fastreply {report['fastreply']} ({report['implementation']} implementation), "
        f"{report['python_implementation']} {report['python']}, {report['platform']}, "
        f"{report['cpus']} CPUs",
        f"end to end: {settings['messages']:,} messages of {settings['message_bytes']} bytes "
        f"(one recipient) to {report['server']['kind']} on {report['server']['address']}",
        "msg/s: messages / wall time; CPU: the client process's user + system time a message "
        "(from after connecting and EHLO to the last reply)",
        f"median of {settings['rounds']} round(s), the clients in rotating order; ratios: "
        "median of each round's ratio (msg/s range in brackets)",
        "",
        f"  {'client':<{width}}  {'conns':>5}  {'msg/s':>8}  {'CPU µs/msg':>10}"
        f"  {'compared with':<14} {'msg/s':>7}  {'CPU/msg':>7}  (msg/s range)",
    ]
    for name in settings["clients"]:
        r = report["results"][name]
        head = f"  {labels[name]:<{width}}  "
        if "msg_per_s" not in r:
            why = f"skipped: {r['skipped']}" if "skipped" in r else f"FAILED: {r.get('failed')}"
            out.append(head + why)
            continue
        row = head + f"{r['connections']:>5}  {_rate(r['msg_per_s']):>8}  " \
                     f"{r['cpu_us_per_msg']:>10.0f}"
        ratios = report["ratios"].get(name, {})
        if not ratios:
            out.append(row)
        for i, (base, ratio) in enumerate(ratios.items()):
            prefix = row if i == 0 else " " * len(row)
            spread = (f"  ({ratio['msg_per_s_min']:.2f}-{ratio['msg_per_s_max']:.2f})"
                      if settings["rounds"] > 1 and base != name else "")
            out.append(f"{prefix}  {base:<14} {ratio['msg_per_s']:>6.2f}x  "
                       f"{ratio['cpu_per_msg']:>6.2f}x{spread}")
    latency = report.get("latency")
    if latency:
        rtts = [_ms(r) for r in latency["rtt_ms"]]
        out += [
            "",
            "latency: messages/s on one connection through a proxy adding the round trip "
            "(in brackets: x smtplib.SMTP at that round trip)",
            "  messages each: " + ", ".join(f"{latency['messages'][r]} at {r} ms" for r in rtts),
            f"  {'client':<{width}}" + "".join(f"  {r + ' ms':>16}" for r in rtts),
        ]
        base = latency["results"].get("stdlib", {})
        for name in settings["clients"]:
            cells = []
            for rtt in rtts:
                r = latency["results"][name][rtt]
                if "msg_per_s" not in r:
                    cells.append(f"{'skipped' if 'skipped' in r else 'FAILED':>16}")
                    continue
                ref = base.get(rtt, {}).get("msg_per_s")
                ratio = f" ({r['msg_per_s'] / ref:.2f}x)" if ref else ""
                cells.append(f"{_rate(r['msg_per_s']) + ratio:>16}")
            out.append(f"  {labels[name]:<{width}}" + "".join(f"  {c}" for c in cells))
    skipped = [f"{name}: {r['skipped']}" for name, r in report["results"].items()
               if "skipped" in r]
    if skipped:
        out += ["", "skipped: " + "; ".join(skipped)]
    return "\n".join(out) + "\n"


def write_plot(report: dict[str, Any], path: str) -> None:
    """A PNG: messages/s and CPU a message per client; messages/s by round trip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in report["settings"]["clients"] if "msg_per_s" in report["results"][n]]
    labels = [f"{report['labels'][n]}\n({report['results'][n]['connections']} conn.)"
              for n in names]
    latency = report.get("latency") or {}
    panels = 3 if latency else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.8), dpi=110)
    for ax, key, title in [(axes[0], "msg_per_s", "messages a second"),
                           (axes[1], "cpu_us_per_msg", "client CPU µs a message")]:
        values = [report["results"][n][key] for n in names]
        bars = ax.bar(range(len(names)), values, color=[f"C{i}" for i in range(len(names))])
        ax.bar_label(bars, [_rate(v) for v in values], fontsize=7)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(labels, fontsize=7, rotation=20, ha="right")
        ax.set_title(title, fontsize=10)
    if latency:
        ax = axes[2]
        rtts = latency["rtt_ms"]
        for i, name in enumerate(report["settings"]["clients"]):
            points = [(rtt, latency["results"][name][_ms(rtt)].get("msg_per_s")) for rtt in rtts]
            points = [(x, y) for x, y in points if y]
            if points:
                ax.plot(*zip(*points), marker="o", label=report["labels"][name], color=f"C{i}")
        if min(rtts) > 0:
            ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("round trip added (ms)")
        ax.set_title("messages a second, one connection", fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"fastreply {report['fastreply']} end to end: {report['settings']['messages']:,} "
        f"messages to {report['server']['kind']}, {report['python_implementation']} "
        f"{report['python']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


# -- command line ---------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, not {value}")
    return value


def _latencies(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected round trips in ms separated by commas, like 1,10,50, not {text!r}"
        ) from None
    if not values or any(not math.isfinite(v) or v < 0 or v > 10_000 for v in values):
        raise argparse.ArgumentTypeError(f"round trips must be 0-10000 ms, not {text!r}")
    return values


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_cli(args: argparse.Namespace) -> int:
    """``fastreply bench --e2e``: the tables on stdout (progress on stderr)."""
    from .parsers import DEFAULT_ROUNDS as PARSER_ROUNDS, PLOT_MISSING, have_matplotlib

    stdout, stderr = sys.stdout, sys.stderr
    if args.plot and not have_matplotlib():
        stderr.write(f"fastreply bench --e2e: {PLOT_MISSING}\n")
        return 2
    # The options come as text (the end-to-end group of the options is built
    # without importing this module): checked here.
    if getattr(args, "rounds", PARSER_ROUNDS) != PARSER_ROUNDS:
        stderr.write("fastreply bench --e2e: --rounds is the parser benchmark's; "
                     "use --e2e-rounds\n")
        return 2
    try:
        settings = Settings(
            messages=_positive_int(str(args.messages)),
            connections=_positive_int(str(args.connections)),
            rounds=_positive_int(str(args.e2e_rounds)),
            server=parse_address(args.server) if args.server else None,
            allow_remote=args.allow_remote,
            latency_ms=_latencies(args.latency) if args.latency else [],
            latency_messages=(_positive_int(str(args.latency_messages))
                              if args.latency_messages is not None else None),
            clients=(tuple(c.strip() for c in args.clients.split(",") if c.strip())
                     if args.clients else CLIENTS),
        )
    except argparse.ArgumentTypeError as exc:
        print(f"fastreply bench --e2e: {exc}", file=stderr)
        return 2

    def progress(text: str) -> None:
        if not args.quiet:
            print(f"fastreply bench --e2e: {text}", file=stderr, flush=True)

    # A SIGTERM unwinds like Ctrl-C, so that smtp-sink and the proxy are stopped.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        report = run_e2e(settings, progress)
    except (ValueError, E2EError) as exc:
        print(f"fastreply bench --e2e: {exc}", file=stderr)
        return 2 if isinstance(exc, ValueError) else 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    # The tables go to stdout, or to stderr when the JSON goes to stdout (--json -).
    json_to_stdout = args.json == "-"
    (stderr if json_to_stdout else stdout).write(format_report(report))
    if args.json:
        data = json.dumps(report, indent=2) + "\n"
        if json_to_stdout:
            stdout.write(data)
        else:
            Path(args.json).write_text(data, encoding="utf-8")
    if args.plot:
        write_plot(report, args.plot)
        progress(f"wrote {args.plot}")
    results = [*report["results"].values()]
    for by_rtt in (report["latency"] or {}).get("results", {}).values():
        results += by_rtt.values()
    return 1 if any("failed" in r for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastreply._bench.e2e client NAME ...``: one measured client."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "client":
        print("usage: python -m fastreply._bench.e2e client NAME --server HOST:PORT "
              "[--messages N] [--connections C]\n(the whole benchmark: fastreply bench --e2e)",
              file=sys.stderr)
        return 2
    return _client_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
