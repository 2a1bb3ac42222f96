"""Which implementation may be used.

``FASTREPLY_NO_EXTENSIONS`` (any non-empty value) forces the pure-Python
implementation; interpreters other than CPython never load the extension.
A pure-Python build (``FASTREPLY_NO_EXTENSIONS=1`` at build time, e.g. the
``py3-none-any`` wheel) ships no compiled module and uses the fallback too;
a compiled module that is installed but fails to import still raises.
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec

NO_EXTENSIONS: bool = (
    bool(os.environ.get("FASTREPLY_NO_EXTENSIONS"))
    or sys.implementation.name != "cpython"
    or find_spec("fastreply._parser_c") is None
)
