"""Which implementation may be used.

``FASTREPLY_NO_EXTENSIONS`` (any non-empty value) forces the pure-Python
implementation; interpreters other than CPython never load the extension.
"""

from __future__ import annotations

import os
import sys

NO_EXTENSIONS: bool = bool(os.environ.get("FASTREPLY_NO_EXTENSIONS")) or (
    sys.implementation.name != "cpython"
)
