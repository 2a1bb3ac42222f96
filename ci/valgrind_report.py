"""Read memcheck's XML reports and decide: errors in fastreply's code fail.

    python ci/valgrind_report.py REPORT.xml...

An error is fastreply's when its compiled module (an object file named
``_parser_c``) is to blame:

* for a read or write of a bad address, a jump on or a use of an
  uninitialised value, a bad free and the like: a frame of the module is on
  the error's stack *before any interpreter eval frame*
  (``_PyEval_EvalFrameDefault``) -- the module's own code, or a C API function
  the module called directly, did it -- or the same holds for the stack
  where the uninitialised value came from (``--track-origins=yes``) or where
  the block was allocated or freed.  An error raised in Python code that the
  module merely called (its ``Reply.enhanced`` getter runs enhanced.py, say)
  has an eval frame between the module and the error: that is the
  interpreter's, and is listed as such ("via _parser_c");
* for a leak: a frame of the module anywhere on the allocation stack (a
  reference the module forgot to drop shows there even when the object was
  made by Python code it called).

Each such error is printed in full and the exit status is 1.  Everything
else left after the suppressions (ci/valgrind-python.supp) is interpreter
or libc noise: counted, and the kinds shown by their top frames and origin,
without failing.
"""

from __future__ import annotations

import collections
import sys
import xml.etree.ElementTree as ET

OURS = "_parser_c"
EVAL = "_PyEval_EvalFrameDefault"


def blames_us(stack: list[tuple[str, str, str]]) -> bool:
    """A frame of ours before (inside of) any interpreter eval frame."""
    for fn, obj, _ in stack:
        if OURS in obj:
            return True
        if fn == EVAL:
            return False
    return False


def passes_through_us(stack: list[tuple[str, str, str]]) -> bool:
    return any(OURS in obj for _, obj, _ in stack)


def frames(stack: ET.Element) -> list[tuple[str, str, str]]:
    out = []
    for frame in stack.iter("frame"):
        where = frame.findtext("file") or ""
        if where:
            where = f"{where}:{frame.findtext('line') or '?'}"
        out.append((frame.findtext("fn") or "?", frame.findtext("obj") or "?", where))
    return out


def main(paths: list[str]) -> int:
    ours: list[str] = []
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
            if ours_here:
                text = [f"{kind}: {what}"]
                for index, stack in enumerate(stacks):
                    text.append("  origin:" if index else "  at:")
                    text += [f"    {fn}  {where or obj}" for fn, obj, where in stack[:25]]
                ours.append("\n".join(text))
            else:
                top = " < ".join(fn for fn, _, _ in stacks[0][:3]) if stacks else "?"
                origin = " < ".join(fn for fn, _, _ in stacks[1][:3]) if len(stacks) > 1 else ""
                via = " via _parser_c" if any(passes_through_us(st) for st in stacks) else ""
                noise[(kind + via, top, origin)] += 1
    print(f"valgrind: {reports} process report(s); {len(ours)} error(s) in fastreply code; "
          f"{sum(noise.values())} unsuppressed interpreter/libc error(s) in "
          f"{len(noise)} kind(s); {suppressed} suppressed")
    for (kind, top, origin), count in noise.most_common(8):
        print(f"  noise x{count}: {kind} at {top}" + (f" (origin {origin})" if origin else ""))
    for text in ours:
        print("\nFASTREPLY ERROR " + text)
    return 1 if ours else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
