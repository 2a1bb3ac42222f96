"""`fastreply bench` with tiny sizes: the table, the JSON, the plot, the checks.

These test the harness, never the speed: the speed goals are benchmark results
(`fastreply bench`, `pytest bench`), not test assertions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import fastreply
from fastreply import cli
from fastreply._bench import engine, parsers
from fastreply._bench.corpus import WORKLOADS, generate

TINY = ["--size", "0.004", "--rounds", "2", "--min-time", "0.0005", "--feeding-size", "1500"]
ENTRY_KEYS = {
    "label",
    "replies_per_s",
    "mb_per_s",
    "ns_per_reply",
    "ratio_to_smtplib",
    "ratio_min",
    "ratio_max",
    "loops",
    "seconds",
    "ratios",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(["bench", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def measured() -> set[str]:
    """What this environment can measure."""
    return {c.key for c in engine.candidates() if c.prepare is not None}


def test_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bench.json"
    status, out, err = run(capsys, *TINY, "--json", str(path))
    assert status == 0, err
    report = json.loads(path.read_text())
    assert set(report["workloads"]) == set(WORKLOADS)
    assert report["implementation"] == fastreply.IMPLEMENTATION
    assert report["settings"]["rounds"] == 2
    keys = measured()
    assert {"fallback", "codes", "smtplib"} <= keys
    assert ("compiled" in keys) == (fastreply.IMPLEMENTATION == "cython")
    for name, section in report["workloads"].items():
        assert section["replies"] > 0 and section["bytes"] >= 4000
        assert set(section["results"]) == keys
        for key, entry in section["results"].items():
            assert ENTRY_KEYS <= set(entry), (name, key)
            assert len(entry["seconds"]) == len(entry["ratios"]) == 2
            assert entry["replies_per_s"] > 0 and entry["ns_per_reply"] > 0
        assert section["results"]["smtplib"]["ratio_to_smtplib"] == 1.0
    # Whatever is missing here is named, with the reason, in the JSON and the table.
    assert set(report["skipped"]) == set(engine.IMPLEMENTATIONS) - keys
    for key, reason in report["skipped"].items():
        assert reason and f"{report['labels'][key]} not measured: {reason}" in out
    feeding = report["feeding"]["results"]
    assert "fallback" in feeding
    assert (
        feeding["fallback"]["bytewise_ns_per_byte"] > feeding["fallback"]["one_chunk_ns_per_byte"]
    )
    # The table.
    for name in WORKLOADS:
        assert f"\n{name}: " in "\n" + out
    assert "smtplib.getreply" in out and "ratio to smtplib.getreply" in out
    assert "1 byte at a time" in out
    # Progress on stderr, not in the table.
    assert "bench mix: done" in err and "bench mix: done" not in out


def test_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, *TINY, "--workload", "ehlo", "--feeding-size", "0", "--json", "-", "-q"
    )
    assert status == 0, err
    report = json.loads(out)
    assert list(report["workloads"]) == ["ehlo"] and "feeding" not in report
    assert "ratio to smtplib.getreply" in err  # the table went to stderr


def test_implementations_subset(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, *TINY, "--workload", "single", "--implementations", "fallback", "--json", "-", "-q"
    )
    assert status == 0, err
    results = json.loads(out)["workloads"]["single"]["results"]
    assert set(results) == {"fallback", "smtplib"}  # smtplib always: the baseline


def test_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, *TINY, "--implementations", "fallback,turbo")
    assert status == 2 and "turbo" in err
    with pytest.raises(SystemExit):
        cli.main(["bench", "--workload", "nope"])
    with pytest.raises(SystemExit):
        cli.main(["bench", "--rounds", "0"])
    capsys.readouterr()


def test_plot_without_matplotlib(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    path = tmp_path / "bench.png"
    status, out, err = run(capsys, *TINY, "--plot", str(path))
    # Refused before measuring anything, with what to install.
    assert status == 2 and out == ""
    assert "matplotlib" in err and "pip install" in err and "Traceback" not in err
    assert not path.exists()


def test_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "bench.png"
    status, out, err = run(capsys, *TINY, "--workload", "mix", "--plot", str(path), "-q")
    assert status == 0, err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {path}" in err


def test_disagreement_is_an_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An implementation that loses a reply is a bug, not a fast result."""
    real = engine.candidates

    def lossy_feed(corpus: Any, chunk_size: int) -> engine.Prepared:
        prepared = engine.prepare("fallback", corpus, chunk_size, fastreply.ReplyParser)
        return engine.Prepared(prepared.run, lambda: prepared.codes()[1:])

    def with_lossy() -> list[engine.Candidate]:
        return [engine.Candidate("fallback", "lossy", lossy_feed)] + [
            c for c in real() if c.key != "fallback"
        ]

    monkeypatch.setattr(parsers, "candidates", with_lossy)
    status, out, err = run(capsys, *TINY, "--workload", "single", "--implementations", "fallback")
    assert status == 1 and "fallback disagrees with the corpus" in err


def test_smtplib_runner_reads_everything() -> None:
    """The baseline parses the whole stream through smtplib's buffered reader,
    reply for reply, and nothing is left over."""
    corpus = generate("mix", size=5000)
    prepared = engine.prepare("smtplib", corpus)
    assert prepared.codes() == corpus.codes
    assert prepared.run() == len(corpus.exchanges)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--json", "{tmp}/missing/out.json"], "--json {tmp}/missing/out.json: no such directory"),
        (["--json", "{tmp}"], "--json {tmp}: is a directory"),
        (["--implementations", ","], "--implementations needs at least one of"),
        (["--implementations", ""], "--implementations needs at least one of"),
    ],
)
def test_bad_outputs_are_refused_before_measuring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], message: str,
) -> None:
    """A whole benchmark run, then a traceback for the output path: no more."""
    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the benchmark ran")

    monkeypatch.setattr(parsers, "run_bench", must_not_run)
    status, out, err = run(capsys, *TINY, *[a.format(tmp=tmp_path) for a in argv])
    assert status == 2 and out == ""
    assert message.format(tmp=tmp_path) in err and "Traceback" not in err
