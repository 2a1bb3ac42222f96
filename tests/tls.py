"""A test certificate and a scripted one-connection STARTTLS server on loopback.

Shared by the drop-in's and the asyncio helpers' real-handshake tests: the
server answers STARTTLS with ``220`` *and*, in the same write, bytes that a
man in the middle could have injected in plaintext; a client must not take
them as replies after the handshake.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"
TIMEOUT = 10.0

#: What the server sends after its 220 to STARTTLS, still in plaintext.
INJECTED = b"250-evil.example\r\n250 AUTH PLAIN LOGIN\r\n"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, made with the
    ``openssl`` command in ``folder``: (certificate, key).  Skips the test
    where openssl is missing or too old."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    key, cert = folder / "key.pem", folder / "cert.pem"
    made = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        capture_output=True, timeout=60,
    )
    if made.returncode != 0:  # an old OpenSSL or LibreSSL without -addext, say
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-300:]!r}")
    return cert, key


def client_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that trusts the test certificate."""
    return ssl.create_default_context(cafile=str(cert[0]))


def _readline(conn: Any) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        data = conn.recv(1)
        if not data:
            break
        line += data
    return line


def tls_server(
    cert: tuple[Path, Path], injected: bytes, *, ehlo_first: bool
) -> tuple[int, threading.Thread, list[Any]]:
    """Serve one connection in a thread: the greeting; an EHLO offering
    STARTTLS (when ``ehlo_first``, as smtplib's ``starttls()`` needs); STARTTLS
    answered by ``220`` followed by ``injected`` in the same write; the
    handshake; then an honest EHLO (``250 SIZE 1000``) and QUIT over TLS.

    Returns the port, the thread and a list that collects the server's
    failures (a test asserts it is empty)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(1)
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]
    errors: list[Any] = []

    def serve() -> None:
        try:
            with listener:
                conn, _ = listener.accept()
            conn.settimeout(TIMEOUT)
            with conn:
                conn.sendall(b"220 mx.example.org ESMTP\r\n")
                if ehlo_first:
                    assert _readline(conn).upper().startswith(b"EHLO")
                    conn.sendall(b"250-mx.example.org\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                assert _readline(conn).upper() == b"STARTTLS\r\n"
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n" + injected)
                with context.wrap_socket(conn, server_side=True) as tls:
                    assert _readline(tls).upper().startswith(b"EHLO")
                    tls.sendall(b"250-mx.example.org\r\n250 SIZE 1000\r\n")
                    assert _readline(tls).upper() == b"QUIT\r\n"
                    tls.sendall(b"221 2.0.0 Bye\r\n")
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread, errors
