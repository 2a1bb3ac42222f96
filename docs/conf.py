"""Sphinx configuration of the fastreply documentation.

Build it with ``bash ci/docs.sh`` (HTML in ``build/docs``), or by hand with
fastreply and ``docs/requirements.txt`` installed::

    sphinx-build -W --keep-going -b html docs build/docs
"""

from __future__ import annotations

import os
import re
from typing import Any

# The API reference is generated from the pure-Python implementation: its
# classes carry the full docstrings and annotations, and the compiled module
# has the same surface (its stub, _parser_c.pyi, is held to it by stubtest).
# Set before fastreply is imported, here and by autodoc.
os.environ["FASTREPLY_NO_EXTENSIONS"] = "1"

import fastreply  # noqa: E402
from sphinx.ext.napoleon import Config as NapoleonConfig  # noqa: E402
from sphinx.ext.napoleon.docstring import GoogleDocstring  # noqa: E402

project = "fastreply"
author = "The fastreply developers"
copyright = "The fastreply developers"
release = fastreply.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "requirements.txt"]

# MyST: ``{directive}`` fences, ``:::`` fences for notes, anchors for the
# headings down to level 3 (``[text](page.md#heading)`` links).
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc: members in source order, signatures with their annotations, the
# class docstring and __init__'s merged.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_default_options = {}
autodoc_preserve_defaults = True

# Docstrings of functions and classes have Google-style sections (Args:,
# Attributes:, Raises:), read with napoleon; those of properties and data are
# plain text, which napoleon would take for "type: description".
_GOOGLE = NapoleonConfig(napoleon_use_rtype=False, napoleon_use_ivar=True)

html_theme = "furo"
html_title = f"fastreply {release}"
html_show_sourcelink = False
html_theme_options = {
    "source_repository": "https://github.com/fastreply/fastreply/",
    "source_branch": "main",
    "source_directory": "docs/",
}

# Module docstrings use plain reST section titles (``Title`` over ``-----``),
# which docutils refuses inside an autodoc directive; they become rubrics.
_UNDERLINE = re.compile(r"^(-{3,}|={3,}|~{3,})$")


def _titles_to_rubrics(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    for index in range(len(lines) - 1):
        title, underline = lines[index], lines[index + 1]
        if title.strip() and _UNDERLINE.match(underline) and len(underline) >= len(title.strip()):
            lines[index] = f".. rubric:: {title.strip()}"
            lines[index + 1] = ""


def _google_sections(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what not in ("attribute", "property", "data"):
        lines[:] = GoogleDocstring(lines, _GOOGLE, app, what, name, obj, options).lines()


def setup(app: Any) -> None:
    app.connect("autodoc-process-docstring", _titles_to_rubrics)
    app.connect("autodoc-process-docstring", _google_sections)
