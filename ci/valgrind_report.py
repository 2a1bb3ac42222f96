"""Read memcheck's XML reports and decide: errors in fastreply's code fail.

    python ci/valgrind_report.py REPORT.xml...

An error is fastreply's when one of its compiled modules (an object file
named ``_parser_c`` or ``_classify_c``) is to blame:

* for a read or write of a bad address, a jump on or a use of an
  uninitialised value, a bad free and the like: a frame of the module is on
  the error's stack *before any interpreter eval frame*
  (``_PyEval_EvalFrameDefault``) -- the module's own code, or a C API function
  the module called directly, did it -- or the same holds for the stack
  where the uninitialised value came from (``--track-origins=yes``) or where
  the block was allocated or freed.  An error raised in Python code that the
  module merely called (its ``Reply.enhanced`` getter runs enhanced.py, say)
  has an eval frame between the module and the error: that is the
  interpreter's, and is listed as such ("via fastreply");
* for a leak: a frame of the module anywhere on the allocation stack (a
  reference the module forgot to drop shows there even when the object was
  made by Python code it called).

Each such error is printed in full and the exit status is 1.  Everything
else left after the suppressions (ci/valgrind-python.supp) is interpreter
or libc noise: counted, and the kinds shown by their top frames and origin,
without failing.

One kind of interpreter noise does reach our frames: CPython 3.11 returns
the int 0 of ``int("0")`` (``PyLong_FromString``) and of ``int.from_bytes``
(``_PyLong_FromByteArray``) through a pointer computed from an
uninitialised digit (``Py_SIZE`` 0 times ``ob_digit[0]``, then the small-int
table).  The pointer is right, but memcheck then calls every use of that
object a use of an uninitialised value, in whatever code holds it: the
classifier reads the tables ``fastreply.classification`` makes with
``int()`` (an enhanced code "X.1.0").  An uninitialised-value error whose
value was born there (``malloc`` < ``_PyLong_New`` < one of those two, with
no frame of ours on that origin stack) is counted as that noise
(3.12 changed the layout of ints).
"""

from __future__ import annotations

import collections
import os
import sys
import xml.etree.ElementTree as ET

OURS = ("_parser_c", "_classify_c")
EVAL = "_PyEval_EvalFrameDefault"


def ours(obj: str) -> bool:
    """An object file of one of fastreply's compiled modules."""
    return any(name in obj for name in OURS)


def blames_us(stack: list[tuple[str, str, str]]) -> bool:
    """A frame of ours before (inside of) any interpreter eval frame."""
    for fn, obj, _ in stack:
        if ours(obj):
            return True
        if fn == EVAL:
            return False
    return False


def passes_through_us(stack: list[tuple[str, str, str]]) -> bool:
    return any(ours(obj) for _, obj, _ in stack)


SMALL_INT_MAKERS = ("PyLong_FromString", "_PyLong_FromByteArray")


def cpython_small_int(kind: str, stacks: list[list[tuple[str, str, str]]]) -> bool:
    """The value is CPython 3.11's int 0 from int(str) or int.from_bytes (see above)."""
    if not kind.startswith("Uninit") or len(stacks) < 2:
        return False
    origin = [fn for fn, _, _ in stacks[1][:3]]
    return (len(origin) == 3 and origin[1] == "_PyLong_New" and origin[2] in SMALL_INT_MAKERS
            and not passes_through_us(stacks[1]))


def frames(stack: ET.Element) -> list[tuple[str, str, str]]:
    out = []
    for frame in stack.iter("frame"):
        where = frame.findtext("file") or ""
        if where:
            where = f"{where}:{frame.findtext('line') or '?'}"
        out.append((frame.findtext("fn") or "?", frame.findtext("obj") or "?", where))
    return out


def main(paths: list[str]) -> int:
    found: list[str] = []
    noise: collections.Counter[tuple[str, str, str]] = collections.Counter()
    suppressed = 0
    reports = 0
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            print(f"valgrind_report: cannot read {path}: {exc}", file=sys.stderr)
            return 2
        reports += 1
        for pair in root.iter("pair"):
            suppressed += int(pair.findtext("count") or 0)
        for error in root.iter("error"):
            kind = error.findtext("kind") or "?"
            what = error.findtext("what") or error.findtext("xwhat/text") or ""
            stacks = [frames(stack) for stack in error.findall("stack")]
            if kind.startswith("Leak_"):
                ours_here = any(passes_through_us(stack) for stack in stacks)
            else:
                ours_here = any(blames_us(stack) for stack in stacks)
            if ours_here and cpython_small_int(kind, stacks):
                ours_here = False
                kind += " (CPython 3.11's int 0 from int(str))"
            if ours_here:
                text = [f"{kind}: {what}"]
                for index, stack in enumerate(stacks):
                    text.append("  origin:" if index else "  at:")
                    text += [f"    {fn}  {where or obj}"
                             + (f"  [{os.path.basename(obj)}]" if where and ours(obj) else "")
                             for fn, obj, where in stack[:25]]
                found.append("\n".join(text))
            else:
                top = " < ".join(fn for fn, _, _ in stacks[0][:3]) if stacks else "?"
                origin = " < ".join(fn for fn, _, _ in stacks[1][:3]) if len(stacks) > 1 else ""
                via = " via fastreply" if any(passes_through_us(st) for st in stacks) else ""
                noise[(kind + via, top, origin)] += 1
    print(f"valgrind: {reports} process report(s); {len(found)} error(s) in fastreply code; "
          f"{sum(noise.values())} unsuppressed interpreter/libc error(s) in "
          f"{len(noise)} kind(s); {suppressed} suppressed")
    for (kind, top, origin), count in noise.most_common(8):
        print(f"  noise x{count}: {kind} at {top}" + (f" (origin {origin})" if origin else ""))
    for text in found:
        print("\nFASTREPLY ERROR " + text)
    return 1 if found else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
