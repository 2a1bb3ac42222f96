"""`fastreply parse` (and `python -m fastreply`)."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_parse_does_not_load_the_benchmark_harness() -> None:
    """The harness (fastreply._bench) is imported only by ``fastreply bench``."""
    code = (
        "import sys\n"
        "from fastreply import cli\n"
        f"status = cli.main(['parse', {str(SAMPLE)!r}])\n"
        "assert status == 0, status\n"
        "print(sorted(m for m in sys.modules if m.startswith('fastreply')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    loaded = eval(proc.stdout.splitlines()[-1])  # noqa: S307 - our own child's list
    assert "fastreply.cli" in loaded
    assert not [name for name in loaded if name.startswith("fastreply._bench")], loaded


def test_bench_options_are_the_harness_own(capsys: pytest.CaptureFixture[str]) -> None:
    """``fastreply bench`` hands everything after it to the harness's parser:
    its help, and its errors (named ``fastreply bench``)."""
    with pytest.raises(SystemExit) as info:
        cli.main(["bench", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fastreply bench") and "--e2e" in out and "--workload" in out
    with pytest.raises(SystemExit) as info:
        cli.main(["bench", "--no-such-option"])
    assert info.value.code == 2
    assert "fastreply bench: error: unrecognized arguments: --no-such-option" in (
        capsys.readouterr().err)


def test_other_commands_refuse_unknown_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["parse", str(SAMPLE), "--rounds", "3"])
    assert info.value.code == 2
    assert "fastreply: error: unrecognized arguments: --rounds 3" in capsys.readouterr().err


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


def _rows(out: str) -> list[tuple[str, int, str]]:
    return [(r["command"], r["code"], r["verdict"]) for r in map(json.loads, out.splitlines())]


def test_parse_with_commands_follows_auth(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """SASL responses after AUTH's 334 are part of AUTH: the CLI told the
    tracker every line before the first reply, and they became UNKNOWN."""
    commands = tmp_path / "commands.txt"
    commands.write_bytes(b"EHLO me\r\nAUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\n"
                         b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n.\r\nQUIT\r\n")
    stream = tmp_path / "replies.txt"
    stream.write_bytes(b"220 hi\r\n250 mx\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"
                       b"235 2.7.0 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n")
    status, out, err = run_main(capsys, "parse", "--commands", str(commands), str(stream))
    assert status == 0 and err == ""
    assert _rows(out) == [
        ("CONNECT", 220, "expected"), ("EHLO", 250, "expected"), ("AUTH", 334, "expected"),
        ("AUTH", 334, "expected"), ("AUTH", 235, "expected"), ("MAIL", 250, "expected"),
        ("RCPT", 250, "expected"), ("DATA", 354, "expected"), ("DATA_END", 250, "expected"),
        ("QUIT", 221, "expected")]


def test_parse_with_commands_empty_sasl_response_and_leftovers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commands = tmp_path / "commands.txt"
    # An empty line after a 334 is an (empty) SASL response; elsewhere it is skipped.
    commands.write_bytes(b"\nAUTH DIGEST-MD5\ncmVzcG9uc2U=\n\n\nNOOP\nQUIT\n")
    stream = tmp_path / "replies.txt"
    stream.write_bytes(b"334 bm9uY2U=\r\n334 cnNwYXV0aA==\r\n235 ok\r\n250 ok\r\n")
    status, out, err = run_main(capsys, "parse", "--no-greeting", "--commands", str(commands),
                                str(stream))
    assert status == 0
    assert [(c, code) for c, code, _ in _rows(out)] == [
        ("AUTH", 334), ("AUTH", 334), ("AUTH", 235), ("NOOP", 250)]
    assert "1 commands got no reply: QUIT" in err


def test_parse_with_commands_lmtp_and_bdat(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    commands = tmp_path / "commands.txt"
    commands.write_bytes(b"LHLO me\nMAIL FROM:<a@x>\nRCPT TO:<b@x>\nRCPT TO:<c@x>\n"
                         b"RCPT TO:<d@x>\nDATA\n.\nMAIL FROM:<a@x>\nRCPT TO:<b@x>\n"
                         b"BDAT 10\nBDAT 5 LAST\nQUIT\n")
    stream = tmp_path / "replies.txt"
    stream.write_bytes(b"220 lmtp\r\n250 hi\r\n250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n"
                       b"354 go\r\n250 b done\r\n452 d full\r\n250 ok\r\n250 ok\r\n"
                       b"250 chunk\r\n250 b done\r\n221 bye\r\n")
    status, out, err = run_main(capsys, "parse", "--lmtp", "--commands", str(commands),
                                str(stream))
    assert status == 0 and err == ""
    assert [c for c, _, _ in _rows(out)] == [
        "CONNECT", "LHLO", "MAIL", "RCPT", "RCPT", "RCPT", "DATA", "DATA_END", "DATA_END",
        "MAIL", "RCPT", "BDAT", "BDAT_LAST", "QUIT"]


def test_parse_closed_stdin(monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", None)  # what Python sets when fd 0 is closed
    status, out, err = run_main(capsys, "parse", "-")
    assert status == 2 and out == "" and err == "fastreply parse: standard input is closed\n"


def test_parse_read_error_mid_file(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    class Failing(io.BytesIO):
        reads = 0

        def read(self, size: Any = -1) -> bytes:
            self.reads += 1
            if self.reads > 1:
                raise OSError(errno.EIO, "Input/output error")
            return b"220 hi\r\n250 o"

    monkeypatch.setattr(cli, "_open_input", lambda path: Failing())
    status, out, err = run_main(capsys, "parse", "session.txt")
    assert status == 1
    assert [json.loads(line)["code"] for line in out.splitlines()] == [220]
    assert err == ("fastreply parse: session.txt: read error after 13 bytes: "
                   "Input/output error\n")
