"""A model SMTP/LMTP server for the sending tests: it answers by rules, not
by a script, so that a pipelining client and a sequential one can be run
against the same behaviour and their outcomes compared.

:class:`ModelServer` is sans-IO: :meth:`ModelServer.receive` takes what a
client sent and returns what the server says back (and whether it has hung
up).  What it does:

* replies to MAIL, RCPT and the end of the data are chosen by address
  (:class:`Rules`), anything else is accepted; 421 closes the connection;
* state as RFC 5321 and RFC 2920 ask: RCPT without MAIL gets 503, a second
  MAIL inside a transaction 503, DATA without MAIL 503 and DATA with no
  recipient accepted 554 (what a pipelining server must answer), BDAT
  likewise; the transaction ends at the end of the data, with RSET, and
  with a refused DATA it stays open (as Postfix keeps it);
* it records every message it accepted (:attr:`ModelServer.delivered`), so
  a test can tell that nothing was delivered twice or by mistake, and
  whether a transaction was left open (:attr:`ModelServer.open_transaction`).

:class:`ModelSocket` puts it behind a socket for ``smtplib.SMTP`` (no
network); :func:`serve` runs it on 127.0.0.1 for the asyncio client.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass, field
from typing import Any, Callable

HOST = "127.0.0.1"


@dataclass
class Rules:
    """How the model server answers (replies without CRLF)."""

    greeting: bytes = b"220 mx.example.org ESMTP model"
    extensions: tuple[str, ...] = ("PIPELINING", "SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8")
    #: sender -> reply to MAIL
    mail: dict[str, bytes] = field(default_factory=dict)
    #: recipient -> reply to RCPT
    rcpt: dict[str, bytes] = field(default_factory=dict)
    #: sender -> reply to DATA (when MAIL and a recipient were accepted)
    data: dict[str, bytes] = field(default_factory=dict)
    #: sender -> reply to the end of the data (SMTP)
    end: dict[str, bytes] = field(default_factory=dict)
    #: recipient -> its reply to the end of the data (LMTP)
    lmtp_end: dict[str, bytes] = field(default_factory=dict)
    lmtp: bool = False
    #: reply to EHLO when not 250 (HELO is then accepted)
    ehlo: bytes | None = None
    #: AUTH: user -> password; replies 235 / 535
    users: dict[str, str] = field(default_factory=dict)


_ADDRESS = re.compile(rb"<([^>]*)>")


def _address(args: bytes) -> str:
    found = _ADDRESS.search(args)
    return found.group(1).decode("utf-8", "surrogateescape") if found else ""


class ModelServer:
    """The server side of one connection (see the module documentation)."""

    def __init__(self, rules: Rules | None = None) -> None:
        self.rules = rules or Rules()
        self.buffer = b""
        self.closed = False
        self.sender: str | None = None
        self.accepted: list[str] = []
        self.in_data = False
        self.bdat: tuple[int, bool] | None = None  # (bytes still to read, last)
        self.content = b""
        self.chunks = 0  # BDAT chunks of the transaction read so far
        self.chunk_refused = False
        self.auth: tuple[str, list[bytes]] | None = None  # mechanism, responses so far
        #: (sender, recipients, content) of every message accepted
        self.delivered: list[tuple[str, tuple[str, ...], bytes]] = []
        #: every command line received, in order
        self.commands: list[bytes] = []

    @property
    def open_transaction(self) -> bool:
        """A MAIL was accepted and its transaction has not ended."""
        return self.sender is not None

    def greeting(self) -> bytes:
        reply = self.rules.greeting + b"\r\n"
        if reply.startswith(b"421"):
            self.closed = True
        return reply

    def receive(self, data: bytes) -> bytes:
        """What the server sends back for ``data`` (and everything before)."""
        if self.closed:
            return b""
        self.buffer += data
        out = []
        while not self.closed:
            if self.bdat is not None:
                size, last = self.bdat
                take = self.buffer[:size]
                self.buffer = self.buffer[len(take) :]
                self.content += take
                size -= len(take)
                if size:
                    self.bdat = (size, last)
                    break
                self.bdat = None
                out.append(self._end_of_chunk(last))
                continue
            if self.in_data:
                if self.buffer.startswith(b".\r\n"):
                    body, self.buffer = b"", self.buffer[3:]
                else:
                    end = self.buffer.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    body, self.buffer = self.buffer[: end + 2], self.buffer[end + 5 :]
                self.in_data = False
                out.append(self._end_of_data(re.sub(rb"(?m)^\.", b"", body)))
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            self.commands.append(line)
            out.append(self._command(line))
        return b"".join(out)

    def _reply(self, reply: bytes) -> bytes:
        if reply.startswith(b"421"):
            self.closed = True
        return reply + b"\r\n"

    def _reset(self) -> None:
        self.sender = None
        self.accepted = []
        self.content = b""

    def _command(self, line: bytes) -> bytes:
        rules = self.rules
        if self.auth is not None:
            return self._auth_step(line)
        verb, _, args = line.partition(b" ")
        verb = verb.upper()
        if verb in (b"EHLO", b"LHLO"):
            if rules.ehlo is not None:
                return self._reply(rules.ehlo)
            self._reset()
            lines = [b"mx.example.org"] + [e.encode() for e in rules.extensions]
            return b"".join(
                b"250%s%s\r\n" % (b" " if i == len(lines) - 1 else b"-", text) for i, text in enumerate(lines)
            )
        if verb == b"HELO":
            self._reset()
            return self._reply(b"250 mx.example.org")
        if verb == b"MAIL":
            if self.sender is not None:
                return self._reply(b"503 5.5.1 Error: nested MAIL command")
            sender = _address(args)
            reply = rules.mail.get(sender, b"250 2.1.0 Ok")
            if reply.startswith(b"2"):
                self.sender = sender
            return self._reply(reply)
        if verb == b"RCPT":
            if self.sender is None:
                return self._reply(b"503 5.5.1 Error: need MAIL command")
            recipient = _address(args)
            reply = rules.rcpt.get(recipient, b"250 2.1.5 Ok")
            if reply.startswith(b"2"):
                self.accepted.append(recipient)
            return self._reply(reply)
        if verb == b"DATA":
            refusal = self._before_data()
            if refusal:
                return refusal
            assert self.sender is not None
            reply = rules.data.get(self.sender, b"354 End data with <CR><LF>.<CR><LF>")
            if reply.startswith(b"354"):
                self.in_data = True
            return self._reply(reply)
        if verb == b"BDAT":
            words = args.split()
            size = int(words[0])
            last = len(words) > 1 and words[1].upper() == b"LAST"
            self.bdat = (size, last)
            if size == 0:
                self.bdat = None
                return self._end_of_chunk(last)
            return b""  # the answer comes once the chunk is read
        if verb == b"RSET":
            self._reset()
            return self._reply(b"250 2.0.0 Ok")
        if verb == b"NOOP":
            return self._reply(b"250 2.0.0 Ok")
        if verb == b"VRFY":
            return self._reply(b"252 2.0.0 " + args)
        if verb == b"QUIT":
            self.closed = True
            return b"221 2.0.0 Bye\r\n"
        if verb == b"AUTH":
            mechanism, _, initial = args.partition(b" ")
            self.auth = (mechanism.upper().decode(), [initial] if initial else [])
            return self._auth_step(None)
        return self._reply(b"502 5.5.2 Error: command not recognized")

    def _auth_step(self, line: bytes | None) -> bytes:
        import base64

        assert self.auth is not None
        mechanism, answers = self.auth
        if line is not None:
            answers.append(line)
        if mechanism == "PLAIN":
            if not answers:
                return self._reply(b"334 ")
            _, user, password = base64.b64decode(answers[0]).split(b"\0")
        elif mechanism == "LOGIN":
            if len(answers) == 0:
                return self._reply(b"334 VXNlcm5hbWU6")
            if len(answers) == 1:
                return self._reply(b"334 UGFzc3dvcmQ6")
            user, password = base64.b64decode(answers[0]), base64.b64decode(answers[1])
        else:
            self.auth = None
            return self._reply(b"504 5.5.4 Unrecognized authentication type")
        self.auth = None
        if self.rules.users.get(user.decode()) == password.decode():
            return self._reply(b"235 2.7.0 Authentication successful")
        return self._reply(b"535 5.7.8 Error: authentication failed")

    def _before_data(self) -> bytes:
        if self.sender is None:
            return self._reply(b"503 5.5.1 Error: need MAIL command")
        if not self.accepted:
            return self._reply(b"554 5.5.1 Error: no valid recipients")
        return b""

    def _end_of_chunk(self, last: bool) -> bytes:
        refusal = self._before_data()
        if not refusal and self.chunks == 0:
            # The first chunk: the server decides here what DATA would decide.
            assert self.sender is not None
            reply = self.rules.data.get(self.sender, b"354")
            if not reply.startswith(b"354"):
                refusal = self._reply(reply)
        if refusal or self.chunk_refused:
            self.content = b""
            self.chunk_refused = not last
            if not last:
                self.chunks += 1
            else:
                self.chunks = 0
            return refusal or self._reply(b"503 5.5.1 Error: BDAT refused")
        self.chunks = 0 if last else self.chunks + 1
        if not last:
            return self._reply(b"250 2.0.0 %d octets received" % len(self.content))
        return self._end_of_data(self.content)

    def _end_of_data(self, content: bytes) -> bytes:
        rules = self.rules
        sender = self.sender
        if sender is None or not self.accepted:
            self._reset()
            return self._reply(b"503 5.5.1 Error: no transaction")
        if rules.lmtp:
            out = []
            delivered = []
            for recipient in self.accepted:
                reply = rules.lmtp_end.get(recipient, b"250 2.0.0 Ok: delivered")
                if reply.startswith(b"2"):
                    delivered.append(recipient)
                out.append(self._reply(reply))
            if delivered:
                self.delivered.append((sender, tuple(delivered), content))
            self._reset()
            return b"".join(out)
        reply = rules.end.get(sender, b"250 2.0.0 Ok: queued as MODEL")
        if reply.startswith(b"2"):
            self.delivered.append((sender, tuple(self.accepted), content))
        self._reset()
        return self._reply(reply)


class _Raw(io.RawIOBase):
    def __init__(self, sock: ModelSocket) -> None:
        self.sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.sock.recv_into(buffer)


class ModelSocket:
    """A connected socket whose peer is a :class:`ModelServer`: what the
    client sends is answered at once; ``chunk`` cuts what it reads into
    pieces of at most that many bytes."""

    def __init__(self, server: ModelServer, chunk: int | None = None) -> None:
        self.server = server
        self.chunk = chunk
        self.incoming = bytearray(server.greeting())
        self.sent = bytearray()
        self.writes: list[bytes] = []

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self.sent += data
        self.writes.append(bytes(data))
        self.incoming += self.server.receive(bytes(data))

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        size = min(nbytes or len(view), len(self.incoming), self.chunk or len(self.incoming))
        view[:size] = self.incoming[:size]
        del self.incoming[:size]
        return size  # 0: the server has nothing more (it hung up, or the test is wrong)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = bytearray(bufsize)
        return bytes(data[: self.recv_into(data, bufsize)])

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_Raw(self))

    def settimeout(self, value: float | None) -> None:
        pass

    def close(self) -> None:
        pass


def connect(cls: type, rules: Rules | None = None, chunk: int | None = None, **attributes: Any) -> Any:
    """An ``smtplib.SMTP`` (sub)class instance connected to a new model
    server: ``(client, server, socket)``."""
    server = ModelServer(rules)
    sock = ModelSocket(server, chunk)
    client = cls(local_hostname="client.example")
    for name, value in attributes.items():
        setattr(client, name, value)
    client._get_socket = lambda host, port, timeout: sock
    client.connect("mx.example.org", 25)
    return client, server, sock


async def serve(
    rules: Rules | Callable[[], Rules] | None = None,
    *,
    servers: list[ModelServer] | None = None,
    ssl_context: Any = None,
    delay: float = 0.0,
) -> asyncio.Server:
    """A model server on 127.0.0.1 (a free port), one :class:`ModelServer`
    per connection (appended to ``servers`` when given).  ``delay`` holds
    every answer back that many seconds (a slow server).  STARTTLS is
    answered (and the handshake made) when ``ssl_context`` is given."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        current = rules() if callable(rules) else rules
        server = ModelServer(current)
        if servers is not None:
            servers.append(server)
        try:
            writer.write(server.greeting())
            while not server.closed:
                data = await reader.read(65536)
                if not data:
                    break
                if ssl_context is not None and data.upper().startswith(b"STARTTLS\r\n"):
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                    await writer.drain()
                    await writer.start_tls(ssl_context)
                    server.buffer = b""
                    continue
                answer = server.receive(data)
                if delay:
                    await asyncio.sleep(delay)
                if answer:
                    writer.write(answer)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, HOST, 0)
