"""`fastreply parse` (and `python -m fastreply`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastreply import cli

SAMPLE = Path(cli.__file__).parent / "data" / "sample_session.txt"


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_parse_sample(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_main(capsys, "parse", str(SAMPLE))
    assert status == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    data = SAMPLE.read_bytes()
    assert [r["code"] for r in rows] == [220, 250, 250, 250, 550, 354, 250, 221]
    assert rows[1]["multiline"] is True and rows[1]["lines"][1] == "PIPELINING"
    # Offsets point at each reply's first byte in the file.
    for row in rows:
        assert data[row["offset"] :].startswith(b"%d" % row["code"])


def test_parse_malformed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"220 hi\r\n250 \xff\r\nHTTP/1.1 200 OK\r\n")
    status, out, err = run_main(capsys, "parse", str(bad))
    assert status == 1
    assert [json.loads(line)["code"] for line in out.splitlines()] == [220, 250]
    assert json.loads(out.splitlines()[1])["lines"] == ["\udcff"]
    assert "offset 15" in err and "Traceback" not in err


def test_parse_incomplete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.txt"
    cut.write_bytes(b"220 hi\r\n250-a\r\n")
    status, out, err = run_main(capsys, "parse", str(cut))
    assert status == 1 and "stream ended inside a reply" in err and "offset 8" in err


def test_parse_strict_and_limits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "lf.txt"
    f.write_bytes(b"250 ok\n")
    assert run_main(capsys, "parse", str(f))[0] == 0
    assert run_main(capsys, "parse", "--strict", str(f))[0] == 1
    assert run_main(capsys, "parse", "--max-line-length", "5", str(f))[0] == 1
    status, _, err = run_main(capsys, "parse", "--max-line-length", "2", str(f))
    assert status == 2 and "max_line_length" in err


def test_parse_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run_main(capsys, "parse", str(tmp_path / "nope"))
    assert status == 2 and "cannot open" in err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(capsys, )[0] == 2


def test_python_dash_m_reads_stdin() -> None:
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "fastreply", "parse", "-"],
        input=b"220 a\r\n250-b\r\n250 c\r\n",
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["lines"] for line in proc.stdout.splitlines()] == [["a"], ["b", "c"]]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    import fastreply

    assert fastreply.IMPLEMENTATION in capsys.readouterr().out


def test_parse_with_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commands = tmp_path / "commands.txt"
    commands.write_bytes(
        b"EHLO client.example.net\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
        b"RCPT TO:<nobody@example.org>\r\nDATA\r\n.\r\nQUIT\r\n"
    )
    status, out, err = run_main(capsys, "parse", "--commands", str(commands), str(SAMPLE))
    assert status == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["command"] for r in rows] == [
        "CONNECT", "EHLO", "MAIL", "RCPT", "RCPT", "DATA", "DATA_END", "QUIT"]
    assert {r["verdict"] for r in rows} == {"expected"}


def test_parse_with_commands_reports_surprises(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    commands = tmp_path / "commands.txt"
    commands.write_bytes(b"NOOP\nHELO x\nQUIT\n")
    stream = tmp_path / "replies.txt"
    stream.write_bytes(b"220 hi\r\n354 odd\r\n")
    status, out, err = run_main(capsys, "parse", "--commands", str(commands), "--table",
                                "rfc821", str(stream))
    assert status == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["command"], r["verdict"]) for r in rows] == [
        ("CONNECT", "expected"), ("NOOP", "unexpected")]
    assert "1 replies not expected by table RFC821" in err
    assert "2 commands got no reply: HELO QUIT" in err


def test_parse_option_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_main(capsys, "parse", "--table", "MODERN", str(SAMPLE))
    assert status == 2 and "--table, --no-greeting and --lmtp need --commands FILE" in err
    status, _, err = run_main(capsys, "parse", "--commands", str(tmp_path / "missing"),
                              str(SAMPLE))
    assert status == 2 and "cannot open" in err and "missing" in err
    status, _, err = run_main(capsys, "parse", "--commands", str(SAMPLE), "--table", "nope",
                              str(SAMPLE))
    assert status == 2 and "unknown table 'nope'" in err


def test_table_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_main(capsys, "table", "--table", "SEED_2002", "QUIT", "NOOP")
    assert status == 0 and err == ""
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    assert lines[0].split() == ["200", "221", "250", "421", "500"]
    assert lines[1].split() == ["QUIT", ".", "x", ".", ".", "x"]
    assert lines[2].split() == ["NOOP", "x", ".", "x", "x", "x"]


def test_table_list_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_main(capsys, "table", "--list", "data_end")
    assert status == 0
    assert out.splitlines()[1].split() == [
        "DATA_END", "250", "421", "450", "451", "452", "550", "552", "554"]
    status, out, _ = run_main(capsys, "table", "--json", "--table", "rfc5321")
    data = json.loads(out)
    assert data["table"] == "RFC5321" and data["rows"]["QUIT"] == [221, 421, 500, 501]
    assert "STARTTLS" not in data["rows"]  # only commands the table fills
    status, _, err = run_main(capsys, "table", "FOO")
    assert status == 2 and "unknown command name 'FOO'" in err
