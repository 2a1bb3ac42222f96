"""Every Python example in the README runs as written, with the active
implementation (the README is part of the suite: an example that rots fails)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def examples() -> list[tuple[str, str]]:
    text = README.read_text("utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    out = []
    for block in blocks:
        heading = text[: text.index(block)].rsplit("\n## ", 1)[-1].split("\n", 1)[0]
        out.append((heading, block))
    return out


def test_readme_has_examples() -> None:
    assert len(examples()) >= 2


@pytest.mark.parametrize(("heading", "code"), examples(), ids=[h for h, _ in examples()])
def test_readme_example(heading: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(code, f"README.md ({heading})", "exec"), {"__name__": "readme"})
