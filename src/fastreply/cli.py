"""The ``fastreply`` command line (also ``python -m fastreply``).

Each subcommand is built by its own ``_add_<name>`` function and run by its
own ``_run_<name>`` function; :func:`main` only wires them together.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections import deque
from typing import IO, TYPE_CHECKING, Callable, Sequence

from . import IMPLEMENTATION, __version__
from ._parser import ReplyParser
from ._common import DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_REPLY_LINES, READ_SIZE
from .errors import ReplyError

if TYPE_CHECKING:
    from .tracker import ReplyTracker

Runner = Callable[[argparse.Namespace], int]


class _NoInput(Exception):
    """The input cannot be opened (the message says why)."""


def _open_input(path: str) -> IO[bytes]:
    if path == "-":
        stdin = sys.stdin
        if stdin is None or getattr(stdin, "closed", False):
            raise _NoInput("standard input is closed")
        buffer: IO[bytes] | None = getattr(stdin, "buffer", None)
        if buffer is None:
            raise _NoInput("standard input is not a byte stream")
        return buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise _NoInput(f"cannot open {path}: {exc.strerror}") from None


def _add_parse(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "parse",
        help="parse a raw reply stream and print one JSON object per reply",
        description=(
            "Read a raw stream of SMTP replies (as a server sends them) and print "
            "one JSON object per reply: its stream offset, code, lines (as text, "
            "undecodable bytes as \\udcXX escapes) and whether it is multiline. "
            "Malformed input ends with a message naming the offset, exit status 1."
        ),
    )
    p.add_argument("file", nargs="?", default="-", help="input file, '-' for stdin (default)")
    p.add_argument("--strict", action="store_true", help="apply RFC 5321 strictly")
    p.add_argument("--max-line-length", type=int, default=DEFAULT_MAX_LINE_LENGTH, metavar="N")
    p.add_argument("--max-reply-lines", type=int, default=DEFAULT_MAX_REPLY_LINES, metavar="N")
    p.add_argument(
        "--commands",
        metavar="FILE",
        help=(
            "the client's lines, in the order it sent them: commands, '.' for the end "
            "of a message, SASL responses after AUTH's 334 (message text and BDAT "
            "chunks left out). Each reply then shows the command it answers and the "
            "table's verdict. Lines are taken one at a time, when a reply needs one, "
            "so that AUTH, DATA, BDAT and LMTP are followed as replies arrive; the "
            "first reply is taken as the greeting"
        ),
    )
    p.add_argument(
        "--table",
        default=None,
        metavar="NAME",
        help="table to judge replies with (with --commands; default MODERN)",
    )
    p.add_argument(
        "--no-greeting",
        action="store_true",
        help="with --commands: the stream does not start with the server's greeting",
    )
    p.add_argument("--lmtp", action="store_true", help="with --commands: LMTP (RFC 2033) rules")
    p.add_argument("--classify", action="store_true",
                   help="add what each reply means for the sender (fastreply.classify)")
    p.set_defaults(run=_run_parse)


def _reply_json(reply: object, offset: int) -> dict[str, object]:
    from ._parser import Reply

    assert isinstance(reply, Reply)
    return {
        "offset": offset,
        "code": reply.code,
        "lines": [line.decode("utf-8", "surrogateescape") for line in reply.lines],
        "multiline": reply.is_multiline,
    }


def _make_tracker(args: argparse.Namespace) -> tuple[ReplyTracker, deque[bytes]] | None:
    """The tracker for ``--commands`` and the command lines it will be told."""
    from .tables import DEFAULT_TABLE, get_table
    from .tracker import ReplyTracker

    if args.commands is None:
        if args.table is not None or args.no_greeting or args.lmtp:
            raise ValueError("--table, --no-greeting and --lmtp need --commands FILE")
        return None
    table = DEFAULT_TABLE if args.table is None else get_table(args.table)
    tracker = ReplyTracker(table, lmtp=args.lmtp, greeting=not args.no_greeting)
    try:
        with open(args.commands, "rb") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot open {args.commands}: {exc.strerror}") from None
    return tracker, deque(lines)


def _tell(tracker: ReplyTracker, lines: deque[bytes], everything: bool = False) -> None:
    """Tell the tracker the client's lines a reply is about to need, as the
    client sent them: one when no command waits for a reply (after AUTH's
    334 that is the SASL response), and the final "." of a message whose
    end of data the tracker already expects.  Blank lines are skipped but
    as a SASL response.  ``everything``: the lines left at the end."""
    from .commands import Command

    while lines:
        if tracker.pending and not everything:
            if not tracker.end_of_data_untold:
                return  # the next reply answers a command already told
            if Command.from_line(lines[0]) is not Command.DATA_END:
                return  # it answers the end of data; the next line comes later
        line = lines.popleft()
        if line.strip() or tracker.sasl_response_next:
            tracker.sent(line)


def _run_parse(args: argparse.Namespace) -> int:
    return _run_stream(args, "parse")


def _run_stream(args: argparse.Namespace, name: str) -> int:
    """``fastreply parse`` and ``fastreply classify``: read the reply stream,
    print a JSON object per reply (with its command and verdict when the
    client's lines are given, with its classification when asked for)."""
    classifying = name == "classify" or getattr(args, "classify", False)
    provider = getattr(args, "provider", None)
    try:
        parser = ReplyParser(
            max_line_length=getattr(args, "max_line_length", DEFAULT_MAX_LINE_LENGTH),
            max_reply_lines=getattr(args, "max_reply_lines", DEFAULT_MAX_REPLY_LINES),
            strict=getattr(args, "strict", False),
        )
        tracking = _make_tracker(args)
        if provider is not None:
            _classification_json((250, b""), None, provider)  # check it once
    except (TypeError, ValueError) as exc:
        print(f"fastreply {name}: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    offset = 0
    unexpected = 0

    def emit(replies: Sequence[object]) -> None:
        nonlocal offset, unexpected
        for reply in replies:
            row = _reply_json(reply, offset)
            command = None
            if tracking is not None:
                tracker, lines = tracking
                _tell(tracker, lines)
                item = tracker.received(reply)  # type: ignore[arg-type]
                command = item.command
                row["command"] = command.name if command is not None else None
                if name == "parse":
                    row["verdict"] = item.verdict.status if item.verdict is not None else (
                        "unsolicited"
                    )
                unexpected += not item.expected
            if classifying:
                row.update(_classification_json(reply, command, provider))
            out.write(json.dumps(row, ensure_ascii=True) + "\n")
            offset += len(reply.raw)  # type: ignore[attr-defined]

    try:
        stream = _open_input(args.file)
    except _NoInput as exc:
        print(f"fastreply {name}: {exc}", file=sys.stderr)
        return 2
    read = 0
    try:
        with stream:
            while True:
                try:
                    chunk = stream.read(READ_SIZE)
                except OSError as exc:
                    out.flush()
                    print(f"fastreply {name}: {args.file}: read error after {read} bytes: "
                          f"{exc.strerror or exc}", file=sys.stderr)
                    return 1
                if not chunk:
                    break
                read += len(chunk)
                emit(parser.feed(chunk))
            parser.close()
    except ReplyError as exc:
        emit(exc.replies)
        out.flush()
        print(f"fastreply {name}: {args.file}: {exc}", file=sys.stderr)
        return 1
    if tracking is not None and name == "parse":
        tracker, lines = tracking
        _tell(tracker, lines, everything=True)
        if unexpected:
            print(f"fastreply parse: {unexpected} replies not expected by table "
                  f"{tracker.table.name}", file=sys.stderr)
        if tracker.pending:
            names = " ".join(c.name for c in tracker.pending)
            print(f"fastreply parse: {len(tracker.pending)} commands got no reply: {names}",
                  file=sys.stderr)
    return 0


def _classification_json(reply: object, command: object, provider: str | None = None
                          ) -> dict[str, object]:
    """The fields of ``fastreply.classify(reply, command)`` for a JSON row."""
    from .classification import classify

    return dict(classify(reply, command, provider=provider)._asdict())


def _add_classify(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "classify",
        help="say what each reply of a raw reply stream means for the sender (JSON lines)",
        description=(
            "Read a raw stream of SMTP replies (as a server sends them) and print one "
            "JSON object per reply: its offset, code and lines, and what it means for "
            "the sender: category, action, scope, retry_after (seconds), provider and "
            "the rule that decided. With --commands each reply is classified for the "
            "command it answers. Malformed input ends with a message naming the "
            "offset, exit status 1."
        ),
    )
    p.add_argument("file", nargs="?", default="-", help="input file, '-' for stdin (default)")
    p.add_argument("--commands", metavar="FILE",
                   help="the client's command lines, one per reply in order (the first "
                   "reply is taken as the greeting; write '.' for the end of a message)")
    p.add_argument("--no-greeting", action="store_true",
                   help="with --commands: the stream does not start with the greeting")
    p.add_argument("--provider", metavar="NAME|HOST", default=None,
                   help="the provider (google, microsoft, ...) or MX host the replies "
                   "came from (default: recognised from each reply)")
    p.set_defaults(run=_run_classify, table=None, lmtp=False)


def _run_classify(args: argparse.Namespace) -> int:
    return _run_stream(args, "classify")


def _add_table(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "table",
        help="print the command x code table used to validate replies",
        description=(
            "Print which reply codes each command may get in a named table: a matrix "
            "with a column per code (default), one line of codes per command (--list), "
            "or JSON (--json)."
        ),
    )
    p.add_argument("commands", nargs="*", metavar="COMMAND",
                   help="only these commands (e.g. MAIL RCPT DATA_END)")
    p.add_argument("--table", default="MODERN", metavar="NAME",
                   help="SEED_2002, RFC821, RFC5321 or MODERN (default)")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--list", action="store_true", help="one line of codes per command")
    form.add_argument("--json", action="store_true", help="JSON: command name -> codes")
    p.set_defaults(run=_run_table)


def _run_table(args: argparse.Namespace) -> int:
    from .commands import Command
    from .tables import SOURCES, get_table

    try:
        table = get_table(args.table)
        chosen = [Command.from_name(name) for name in args.commands] or [
            c for c in Command if table.codes(c)
        ]
    except ValueError as exc:
        print(f"fastreply table: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    if args.json:
        rows = {c.name: sorted(table.codes(c)) for c in chosen}
        out.write(json.dumps({"table": table.name, "rows": rows}, indent=1) + "\n")
        return 0
    if args.list:
        out.write(table.format(chosen) + "\n")
        return 0
    codes = sorted(set().union(*(table.codes(c) for c in chosen)))
    width = max([len(c.name) for c in chosen] + [7])
    about = textwrap.wrap(f"table {table.name}: {SOURCES[table.name]}", 88)
    out.write("".join(f"# {line}\n" for line in about))
    out.write(" " * width + " " + " ".join(f"{code}" for code in codes) + "\n")
    for c in chosen:
        marks = " ".join(f"{'x' if code in table.codes(c) else '.':^3}" for code in codes)
        out.write(f"{c.name:<{width}} {marks}".rstrip() + "\n")
    return 0


def _add_bench(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    # The options are the harness's (fastreply._bench, imported only when
    # this command runs): main() hands it everything after "bench".
    p = subparsers.add_parser(
        "bench",
        help="benchmark fastreply against smtplib (and aiosmtplib) on generated replies",
        add_help=False,
    )
    p.set_defaults(run=_run_bench, takes_rest=True)


def _run_bench(args: argparse.Namespace) -> int:
    from ._bench import main

    return main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastreply",
        description="Parse, validate and benchmark SMTP server replies.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"fastreply {__version__} ({IMPLEMENTATION} implementation)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_parse(subparsers)
    _add_classify(subparsers)
    _add_table(subparsers)
    _add_bench(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "takes_rest", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    run: Runner | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return run(args)
    except BrokenPipeError:
        # `fastreply parse big.txt | head`: not an error worth a traceback.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
