"""`fastreply classify` and `fastreply parse --classify`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fastreply import cli

STREAM = (b"220 mx.example.org ESMTP\r\n250 mx\r\n250 2.1.0 Ok\r\n"
          b"550-5.1.1 The email account that you tried to reach does not exist.\r\n"
          b"550 5.1.1 Please check the address. x12 - gsmtp\r\n"
          b"451 4.7.1 Greylisting in action, please come back in 00:05:00\r\n")
COMMANDS = b"EHLO me\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\nRCPT TO:<c@example.org>\n"


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict], str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    stream = tmp_path / "replies.txt"
    stream.write_bytes(STREAM)
    commands = tmp_path / "commands.txt"
    commands.write_bytes(COMMANDS)
    return str(stream), str(commands)


def test_classify_with_commands(files: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    status, rows, err = run_main(capsys, "classify", files[0], "--commands", files[1])
    assert status == 0 and err == ""
    assert [r["command"] for r in rows] == ["CONNECT", "EHLO", "MAIL", "RCPT", "RCPT"]
    assert [(r["category"], r["action"], r["scope"]) for r in rows] == [
        ("delivered", "none", "connection"), ("delivered", "none", "connection"),
        ("delivered", "none", "message"), ("invalid_recipient", "suppress", "recipient"),
        ("greylisted", "retry", "recipient")]
    assert rows[3]["provider"] == "google" and rows[3]["rule"] == "invalid-recipient"
    assert rows[4]["retry_after"] == 300 and rows[4]["offset"] == STREAM.index(b"451")


def test_classify_without_commands_and_provider(
    files: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, rows, _ = run_main(capsys, "classify", files[0], "--provider", "yahoo")
    assert status == 0 and "command" not in rows[0]
    assert {r["provider"] for r in rows} == {"yahoo"}
    status, _, err = run_main(capsys, "classify", files[0], "--provider", "nosuch")
    assert status == 2 and "unknown provider 'nosuch'" in err


def test_classify_malformed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"550 5.1.1 user unknown\r\nHTTP/1.1 200 OK\r\n")
    status, rows, err = run_main(capsys, "classify", str(bad))
    assert status == 1 and "offset 24" in err
    assert [r["category"] for r in rows] == ["invalid_recipient"]
    status, _, err = run_main(capsys, "classify", str(tmp_path / "missing"))
    assert status == 2 and "cannot open" in err


def test_parse_classify(files: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    status, rows, _ = run_main(capsys, "parse", "--classify", files[0], "--commands", files[1])
    assert status == 0
    assert rows[3]["verdict"] == "expected" and rows[3]["category"] == "invalid_recipient"
    status, plain, _ = run_main(capsys, "parse", files[0])
    assert "category" not in plain[0]


def test_classify_from_stdin() -> None:
    out = subprocess.run([sys.executable, "-m", "fastreply", "classify", "-"], input=STREAM,
                         capture_output=True, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows[-1]["category"] == "greylisted"


def test_bench_classify_reports_the_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    from fastreply._bench import classify as classify_bench

    section = classify_bench.measure_classification(count=400, rounds=1, min_time=0.001)
    results = section["results"]
    assert results["getreply"]["ratio_to_getreply"] == 1.0
    assert {"python", "getreply"} <= set(results)
    for result in results.values():
        assert result["ns_per_reply"] > 0
    text = classify_bench.format_classification(section)
    assert "x getreply" in text and "pure Python" in text
    stream, commands = classify_bench.make_replies(50, seed=3)
    assert stream == classify_bench.make_replies(50, seed=3)[0] and len(commands) == 50
    assert len(set(stream.split(b"\r\n"))) > 40  # unique ids


def test_bench_cli_classify_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    status = cli.main(["bench", "--classify", "--rounds", "1", "--min-time", "0.001", "-q",
                       "--json", str(out)])
    text, _ = capsys.readouterr()
    assert status == 0 and "classify(Reply)" in text
    assert "getreply" in json.loads(out.read_text())["classification"]["results"]
