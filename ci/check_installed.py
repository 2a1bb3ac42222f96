"""Exit non-zero unless the interpreter running this holds this tree's
fastreply: the same .py files, and a compiled module built after the .pyx
last changed.  Used by ci/fuzz.sh and ci/valgrind.sh when FASTREPLY_PY names
a venv (run from the project root)."""

import filecmp
import glob
import os
import sys

import fastreply
import fastreply._classify_c
import fastreply._parser_c

installed = os.path.dirname(fastreply.__file__)
stale = [
    os.path.basename(src)
    for src in sorted(glob.glob("src/fastreply/*.py"))
    if not filecmp.cmp(src, os.path.join(installed, os.path.basename(src)), shallow=False)
]
for compiled, sources in (
    (fastreply._parser_c, ["src/fastreply/_parser_c.pyx"]),
    (fastreply._classify_c, ["src/fastreply/_classify_c.pyx", "src/fastreply/_classify.h"]),
):
    for source in sources:
        if os.path.getmtime(compiled.__file__) < os.path.getmtime(source):
            stale.append(os.path.basename(compiled.__file__) + f" (older than {source})")
if stale:
    sys.exit(
        f"the fastreply in {installed} is not this tree's: {', '.join(stale)} differ; "
        "rebuild it (bash ci/setup.sh VENV) or leave FASTREPLY_PY unset"
    )
