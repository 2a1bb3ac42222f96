"""The documentation runs: every example in docs/ and every doctest in the package.

- Each ```python block of a page runs as written, with the active
  implementation; the blocks of one page run in order, in one namespace (a
  later block may use what an earlier one made).  Line numbers in a traceback
  are the page's own.
- Each ```console block is a short shell session: ``$ `` lines are commands,
  the other lines what they print (standard output, then standard error).
  Only the forms below are run, without a shell, so the check is the same on
  every platform; any other command fails the test, so a page cannot show a
  command that is not checked (``sh`` blocks are for commands not run here:
  installs, servers, long benchmarks):

  ``fastreply ARGS``                    the command line of the installed package
  ``printf 'TEXT' | fastreply ARGS``    the same, TEXT (with \\r, \\n, \\t) on stdin
  ``printf 'TEXT' > FILE``              write a file (in a fresh directory)
  ``echo $?``                           the exit status of the last command

- The doctests in the package's modules run too.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import fastreply

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def blocks(page: Path, language: str) -> list[tuple[int, str]]:
    """The ``language`` blocks of a page: (line of their first line, text)."""
    text = page.read_text("utf-8")
    return [
        (text.count("\n", 0, match.start(2)) + 1, match.group(2))
        for match in FENCE.finditer(text)
        if match.group(1) == language
    ]


def page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


PYTHON_PAGES = [page for page in pages() if blocks(page, "python")]
CONSOLE_PAGES = [page for page in pages() if blocks(page, "console")]


def test_the_docs_are_there() -> None:
    assert (DOCS / "conf.py").is_file() and (DOCS / "index.md").is_file()
    assert len(PYTHON_PAGES) >= 10
    assert sum(len(blocks(page, "python")) for page in PYTHON_PAGES) >= 20
    assert CONSOLE_PAGES


def test_code_blocks_are_checked_or_said_not_to_be() -> None:
    """A code block is ``python`` or ``console`` (run here), ``sh`` (commands
    not run here) or ``text``: an example in any other fence would escape the
    checks above unnoticed."""
    for page in pages():
        text = page.read_text("utf-8")
        for match in re.finditer(r"^```(\S*)", text, flags=re.M):
            fence = match.group(1)
            if fence and not fence.startswith("{"):
                assert fence in ("python", "console", "sh", "text"), (
                    f"docs/{page_id(page)}: a ```{fence} block"
                )


def test_readme_links_to_docs_exist() -> None:
    readme = (DOCS.parent / "README.md").read_text("utf-8")
    targets = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(targets) >= 10
    for target in targets:
        assert (DOCS.parent / target).is_file(), target


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=page_id)
def test_python_examples(page: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for line, code in blocks(page, "python"):
        # Padded so that the line numbers of a traceback are the page's.
        source = "\n" * (line - 1) + code
        exec(compile(source, f"docs/{page_id(page)}", "exec"), namespace)


def _unescape(text: str) -> bytes:
    """What ``printf 'TEXT'`` writes (no % formats in the docs)."""
    assert "%" not in text, "printf with a % format is not supported here"
    out = text.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t")
    return out.replace("\\\\", "\\").encode("utf-8")


def _run_console(code: str, cwd: Path) -> str:
    output: list[str] = []
    status = 0
    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="80")
    for line in code.splitlines():
        if not line.startswith("$ "):
            continue
        command = line[2:].strip()
        if command == "echo $?":
            output.append(f"{status}\n")
            continue
        stdin = b""
        written = re.fullmatch(r"printf '([^']*)' > (\S+)", command)
        if written:
            (cwd / written.group(2)).write_bytes(_unescape(written.group(1)))
            continue
        piped = re.fullmatch(r"printf '([^']*)' \| (.*)", command)
        if piped:
            stdin, command = _unescape(piped.group(1)), piped.group(2)
        words = shlex.split(command)
        assert words and words[0] == "fastreply", f"not a command these tests run: {line!r}"
        done = subprocess.run(
            [sys.executable, "-m", "fastreply", *words[1:]],
            input=stdin,
            capture_output=True,
            cwd=cwd,
            env=env,
            timeout=60,
        )
        status = done.returncode
        output.append(done.stdout.decode("utf-8").replace("\r\n", "\n"))
        output.append(done.stderr.decode("utf-8").replace("\r\n", "\n"))
    return "".join(output)


@pytest.mark.parametrize("page", CONSOLE_PAGES, ids=page_id)
def test_console_examples(page: Path, tmp_path: Path) -> None:
    for line, code in blocks(page, "console"):
        expected = "".join(
            text + "\n" for text in code.splitlines() if not text.startswith("$ ")
        )
        got = _run_console(code, tmp_path)
        assert got == expected, f"docs/{page_id(page)}, the console block at line {line}"


def _modules() -> list[str]:
    names = ["fastreply"]
    for info in pkgutil.walk_packages(fastreply.__path__, "fastreply."):
        names.append(info.name)
    return sorted(names)


# Modules whose docstrings hold examples: they must keep some (a doctest
# that disappears is a test lost).
WITH_DOCTESTS = {
    "fastreply",
    "fastreply.commands",
    "fastreply.tables",
    "fastreply.tracker",
    "fastreply.ehlo",
    "fastreply.enhanced",
    "fastreply._bench.corpus",
}


@pytest.mark.parametrize("name", _modules())
def test_module_doctests(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = 0
    for test in finder.find(module, name):
        examples += len(test.examples)
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{name}: {results.failed} doctest example(s) failed"
    if name in WITH_DOCTESTS:
        assert examples > 0, f"{name} has no doctest examples any more"
