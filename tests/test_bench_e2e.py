"""`fastreply bench --e2e` with a few hundred messages: the harness, never the speed.

Every message a client sends must reach the server (smtp-sink's own counter,
or aiosmtpd's handler), the JSON must be complete, the tables must name every
client, and what cannot run must say why.  The speed goals are benchmark
results (`fastreply bench --e2e`), not test assertions.

smtp-sink comes with Postfix (Debian package postfix; ci/postfix.sh installs
it, so .ci/run has it): without it the smtp-sink tests are skipped, saying
so, or fail when FASTREPLY_REQUIRE_SERVERS is set.  The tests with
``--server`` use an aiosmtpd server and run everywhere.
"""

from __future__ import annotations

import json
import re
import os
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

import fastreply.aio  # noqa: F401
from fastreply import cli
from fastreply._bench import e2e, parsers
from fastreply._bench.parsers import have_matplotlib
from sending_scenarios import start_controller

pytestmark = pytest.mark.server
REPORT_KEYS = {"benchmark", "fastreply", "implementation", "python", "platform", "settings",
               "server", "labels", "results", "ratios", "latency"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(["bench", "--e2e", "-q", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def smtp_sink() -> str:
    path = e2e.find_tool("smtp-sink")
    if path is None:
        why = "smtp-sink is not installed (Debian package postfix: sudo bash ci/postfix.sh)"
        if os.environ.get("FASTREPLY_REQUIRE_SERVERS"):
            pytest.fail(why + " and FASTREPLY_REQUIRE_SERVERS is set")
        pytest.skip(why)
    return path


def check_run(run: dict[str, Any], messages: int) -> None:
    assert run["seconds"] > 0 and run["cpu_seconds"] >= 0
    assert run["msg_per_s"] == pytest.approx(messages / run["seconds"])
    assert run["cpu_us_per_msg"] == pytest.approx(run["cpu_seconds"] / messages * 1e6)


def check_measured(result: dict[str, Any], messages: int, rounds: int = 1) -> None:
    """A client's result over ``rounds`` rounds (medians of each round's run)."""
    assert result["messages"] == messages and result["refused"] == 0
    assert len(result["rounds"]) == rounds
    for run in result["rounds"]:
        check_run(run, messages)
    for key in ("msg_per_s", "cpu_us_per_msg"):
        values = sorted(run[key] for run in result["rounds"])
        assert values[0] <= result[key] <= values[-1]


def expected_skips() -> dict[str, str]:
    """Client -> the start of the reason it is skipped in this environment."""
    skips = {}
    try:
        import aiosmtplib  # noqa: F401
    except ImportError:
        skips["aiosmtplib"] = "aiosmtplib is not installed"
    if e2e.find_tool("smtp-source") is None:
        skips["smtp-source"] = "smtp-source is not installed"
    return skips


def test_e2e_against_smtp_sink(smtp_sink: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "e2e.json"
    status, out, err = run(capsys, "--messages", "300", "--connections", "4", "--e2e-rounds", "2",
                           "--json", str(path))
    assert status == 0, err
    report = json.loads(path.read_text())
    assert REPORT_KEYS <= set(report)
    assert report["server"]["kind"] == "smtp-sink"
    assert report["server"]["command"][0] == smtp_sink
    assert list(report["results"]) == list(e2e.CLIENTS)
    skips = expected_skips()
    for name, result in report["results"].items():
        if name in skips:
            assert result["skipped"].startswith(skips[name]), result
            assert re.search(rf"{re.escape(report['labels'][name])} +skipped: {re.escape(skips[name])}",
                             out), out
            continue
        check_measured(result, 300, rounds=2)
        # smtp-sink counted every message the client sent, warm-up included.
        assert result["sink_accepted"] == 2 * (300 + result.get("warmup", 0))
        assert result["connections"] == (1 if name in e2e.BLOCKING else 4)
        assert report["labels"][name] in out
    assert set(report["ratios"]["dropin"]) == {"stdlib"}
    assert report["ratios"]["stdlib"]["stdlib"]["msg_per_s"] == 1.0
    dropin = report["ratios"]["dropin"]["stdlib"]
    speeds = [d["msg_per_s"] / s["msg_per_s"] for d, s in zip(
        report["results"]["dropin"]["rounds"], report["results"]["stdlib"]["rounds"])]
    assert (dropin["msg_per_s_min"], dropin["msg_per_s_max"]) == (min(speeds), max(speeds))
    assert report["settings"]["rounds"] == 2
    assert "end to end: 300 messages of 404 bytes" in out
    assert "median of 2 round(s)" in out


def test_e2e_latency_mode(smtp_sink: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--messages", "20", "--clients", "stdlib,dropin",
                           "--e2e-rounds", "1",
                           "--latency", "0,2", "--latency-messages", "15", "--json", "-")
    assert status == 0, err
    report = json.loads(out)
    latency = report["latency"]
    assert latency["rtt_ms"] == [0.0, 2.0] and latency["messages"] == {"0": 15, "2": 15}
    for name in ("stdlib", "dropin"):
        for rtt in ("0", "2"):
            result = latency["results"][name][rtt]
            check_run(result, 15)
            assert result["refused"] == 0
            assert result["connections"] == 1 and result["sink_accepted"] == 15
    assert "latency: messages/s on one connection" in err  # the table went to stderr


class CountingHandler:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        assert envelope.content == e2e.MESSAGE
        with self.lock:
            self.count += 1
        return "250 2.0.0 Ok"


@pytest.fixture
def aiosmtpd_server() -> Iterator[tuple[int, CountingHandler]]:
    controller_module = pytest.importorskip("aiosmtpd.controller")
    handler = CountingHandler()
    controller = start_controller(controller_module.Controller, handler)
    try:
        yield controller.port, handler
    finally:
        controller.stop()


def test_e2e_given_server(aiosmtpd_server: tuple[int, CountingHandler], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    port, handler = aiosmtpd_server
    clients = ["stdlib", "dropin", "aiosmtplib"]
    plot = tmp_path / "e2e.png"
    status, out, err = run(capsys, "--server", f"127.0.0.1:{port}", "--messages", "60",
                           "--e2e-rounds", "1",
                           "--connections", "3", "--clients", ",".join(clients),
                           "--latency", "0", "--latency-messages", "5", "--json", "-",
                           *(["--plot", str(plot)] if have_matplotlib() else []))
    assert status == 0, err
    report = json.loads(out)
    assert report["server"] == {"kind": "given", "address": f"127.0.0.1:{port}"}
    measured = [n for n in clients if "skipped" not in report["results"][n]]
    assert measured[:2] == ["stdlib", "dropin"]
    for name in measured:
        check_measured(report["results"][name], 60)
        assert "sink_accepted" not in report["results"][name]  # no counter but the server's
        check_run(report["latency"]["results"][name]["0"], 5)
    assert handler.count == (60 + 5) * len(measured)
    if have_matplotlib():
        assert plot.read_bytes().startswith(b"\x89PNG")


def test_e2e_plot_needs_matplotlib(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsers, "have_matplotlib", lambda: False)
    status, out, err = run(capsys, "--plot", str(tmp_path / "x.png"))
    assert status == 2 and "--plot needs matplotlib" in err


@pytest.mark.parametrize("argv, message", [
    (["--server", "192.0.2.1:25"], "is not a loopback address"),
    (["--server", "nonsense"], "expected HOST:PORT"),
    (["--messages", "0"], "expected a number >= 1"),
    (["--connections", "x"], "expected a whole number"),
    (["--latency", "1,ten"], "expected round trips in ms"),
    (["--latency", "-5"], "round trips must be 0-10000 ms"),
    (["--clients", "stdlib,sendmail"], "unknown client 'sendmail'"),
    (["--e2e-rounds", "0"], "expected a number >= 1"),
    (["--rounds", "2"], "use --e2e-rounds"),
])
def test_e2e_bad_options(capsys: pytest.CaptureFixture[str], argv: list[str],
                         message: str) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert message in err


def test_client_process_usage() -> None:
    assert e2e.main([]) == 2
    with pytest.raises(SystemExit):
        e2e.main(["client", "sendmail", "--server", "127.0.0.1:25"])


# -- the delaying proxy ------------------------------------------------------------------


def echo_server() -> tuple[int, threading.Thread]:
    """Echo one connection back, then close once the client has ended its side."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


def test_proxy_keeps_bytes_order_and_end_of_stream() -> None:
    port, thread = echo_server()
    payload = bytes(range(256)) * 4096  # 1 MiB, many reads and writes
    with e2e.delaying_proxy(("127.0.0.1", port), 1.0) as address:
        with socket.create_connection(address, timeout=10) as sock:
            def send() -> None:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)  # our end of the stream, passed on

            sender = threading.Thread(target=send)
            sender.start()
            received = bytearray()
            while data := sock.recv(65536):  # b"": the echo server's end, passed on
                received += data
            sender.join(10)
    thread.join(10)
    assert not thread.is_alive()
    assert bytes(received) == payload
