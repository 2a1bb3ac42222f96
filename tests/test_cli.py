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
