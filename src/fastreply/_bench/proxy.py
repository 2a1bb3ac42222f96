"""A TCP proxy that delays every byte by a fixed time in each direction.

``python -m fastreply._bench.proxy --upstream HOST:PORT --rtt-ms MS`` listens
on 127.0.0.1 (a free port unless ``--listen HOST:PORT``), prints
``LISTENING HOST:PORT`` on stdout once it accepts connections, and forwards
each connection to ``--upstream``, holding what it reads in each direction
for half the round trip before writing it on: a client sees ``MS`` more
milliseconds between a command and its reply, as on a longer path.  Order
is kept; an end of stream is passed on after the same delay.  It runs until
it is terminated or its stdin closes.

Threads, not an event loop: ``time.sleep()`` wakes within about 0.1 ms of
the deadline, where an event loop's timers round up to whole milliseconds
(which would turn a 1 ms round trip into 2-3 ms).  Each connection takes
four threads (a reader and a delayed writer each way); the latency benchmark
uses one connection at a time.  It runs in its own process so that its CPU
is not counted as the client's (``fastreply bench --e2e --latency``).  User
space only: no ``tc netem``, which needs root and a kernel module.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import socket
import sys
import threading
import time
from typing import Sequence

from .._common import READ_SIZE
from .e2e import parse_address

__all__ = ["Pipe", "serve", "main"]


class Pipe:
    """One direction of a proxied connection: bytes read from ``source`` are
    written to ``target`` ``delay`` seconds after they were read."""

    def __init__(self, source: socket.socket, target: socket.socket, delay: float,
                 done: threading.Event) -> None:
        self.source, self.target, self.delay = source, target, delay
        self.done = done  # set when this direction has ended
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self._ready = threading.Condition()
        self.threads = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=self._write, daemon=True)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _put(self, data: bytes) -> None:
        with self._ready:
            self._queue.append((time.monotonic() + self.delay, data))
            self._ready.notify()

    def _read(self) -> None:
        try:
            while data := self.source.recv(READ_SIZE):
                self._put(data)
        except OSError:
            pass
        self._put(b"")  # the end of this direction

    def _write(self) -> None:
        try:
            while True:
                with self._ready:
                    while not self._queue:
                        self._ready.wait()
                    when, data = self._queue.popleft()
                wait = when - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    self.target.shutdown(socket.SHUT_WR)
                    break
                self.target.sendall(data)
        except OSError:
            with contextlib.suppress(OSError):
                self.source.shutdown(socket.SHUT_RDWR)  # stop the reader too
        finally:
            self.done.set()


def _nodelay(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _proxy(client: socket.socket, upstream: tuple[str, int], delay: float) -> None:
    try:
        server = socket.create_connection(upstream, timeout=10)
    except OSError as exc:
        print(f"proxy: cannot connect to {upstream[0]}:{upstream[1]}: {exc}", file=sys.stderr)
        client.close()
        return
    server.settimeout(None)
    for sock in (client, server):
        _nodelay(sock)
    ends = [threading.Event(), threading.Event()]
    pipes = [Pipe(client, server, delay, ends[0]), Pipe(server, client, delay, ends[1])]
    for pipe in pipes:
        pipe.start()
    for end in ends:
        end.wait()
    client.close()
    server.close()


def serve(listen: tuple[str, int], upstream: tuple[str, int], rtt: float) -> None:
    """Accept connections forever (``rtt`` in seconds), each in its own thread."""
    listener = socket.create_server(listen)
    host, port = listener.getsockname()[:2]
    print(f"LISTENING {host}:{port}", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_proxy, args=(client, upstream, rtt / 2), daemon=True).start()


def _exit_when_stdin_closes() -> None:
    with contextlib.suppress(OSError, ValueError):
        while os.read(sys.stdin.fileno(), 1024):
            pass
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastreply._bench.proxy",
                                description="a TCP proxy that adds a round trip")
    p.add_argument("--upstream", required=True, type=parse_address, metavar="HOST:PORT")
    p.add_argument("--listen", default=("127.0.0.1", 0), type=parse_address, metavar="HOST:PORT")
    p.add_argument("--rtt-ms", required=True, type=float, metavar="MS",
                   help="round trip added: each direction is delayed by half of it")
    args = p.parse_args(argv)
    if not 0 <= args.rtt_ms <= 10_000:
        p.error("--rtt-ms must be 0 to 10000")
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    try:
        serve(args.listen, args.upstream, args.rtt_ms / 1000)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
