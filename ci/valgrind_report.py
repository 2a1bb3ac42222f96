"""Read memcheck's XML reports and decide: errors in fastreply's code fail.

    python ci/valgrind_report.py REPORT.xml...

An error is fastreply's when a frame of its compiled module (an object file
named ``_parser_c``) is in the error's stack, or in the stack where an
uninitialised value came from (``--track-origins=yes``), or, for a leak, in
the stack that allocated the lost block.  Each such error is printed in full
and the exit status is 1.  Everything else left after the suppressions
(ci/valgrind-python.supp) is interpreter or libc noise: counted, and the
kinds shown by their top frames and origin, without failing.
"""

from __future__ import annotations

import collections
import sys
import xml.etree.ElementTree as ET

OURS = "_parser_c"


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
            if any(OURS in obj for stack in stacks for _, obj, _ in stack):
                text = [f"{kind}: {what}"]
                for index, stack in enumerate(stacks):
                    text.append("  origin:" if index else "  at:")
                    text += [f"    {fn}  {where or obj}" for fn, obj, where in stack[:25]]
                ours.append("\n".join(text))
            else:
                top = " < ".join(fn for fn, _, _ in stacks[0][:3]) if stacks else "?"
                origin = " < ".join(fn for fn, _, _ in stacks[1][:3]) if len(stacks) > 1 else ""
                noise[(kind, top, origin)] += 1
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
