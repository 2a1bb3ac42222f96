"""The ``fastreply`` command line (also ``python -m fastreply``).

Each subcommand is built by its own ``_add_<name>`` function and run by its
own ``_run_<name>`` function; :func:`main` only wires them together.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import IO, TYPE_CHECKING, Callable, Sequence

from . import IMPLEMENTATION, __version__
from ._parser import ReplyParser
from .errors import ReplyError

if TYPE_CHECKING:
    from .tracker import ReplyTracker

Runner = Callable[[argparse.Namespace], int]

#: How many bytes ``parse`` reads from its input at a time.
READ_SIZE = 64 * 1024


def _open_input(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")


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
    p.add_argument("--max-line-length", type=int, default=8192, metavar="N")
    p.add_argument("--max-reply-lines", type=int, default=1000, metavar="N")
    p.add_argument(
        "--commands",
        metavar="FILE",
        help=(
            "the client's command lines, one per reply in order (the first reply is "
            "taken as the greeting; write '.' for the end of a message); each reply "
            "then shows the command it answers and the table's verdict"
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


def _make_tracker(args: argparse.Namespace) -> ReplyTracker | None:
    """The tracker for ``--commands``, told every command line of the file."""
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
    for line in lines:
        if line.strip():
            tracker.sent(line)
    return tracker


def _run_parse(args: argparse.Namespace) -> int:
    try:
        parser = ReplyParser(
            max_line_length=args.max_line_length,
            max_reply_lines=args.max_reply_lines,
            strict=args.strict,
        )
        tracker = _make_tracker(args)
    except (TypeError, ValueError) as exc:
        print(f"fastreply parse: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    offset = 0
    unexpected = 0

    def emit(replies: Sequence[object]) -> None:
        nonlocal offset, unexpected
        for reply in replies:
            row = _reply_json(reply, offset)
            if tracker is not None:
                item = tracker.received(reply)  # type: ignore[arg-type]
                row["command"] = item.command.name if item.command is not None else None
                row["verdict"] = item.verdict.status if item.verdict is not None else (
                    "unsolicited"
                )
                unexpected += not item.expected
            if getattr(args, "classify", False):
                row.update(_classification_json(reply, row.get("command")))
            out.write(json.dumps(row, ensure_ascii=True) + "\n")
            offset += len(reply.raw)  # type: ignore[attr-defined]

    try:
        stream = _open_input(args.file)
    except OSError as exc:
        print(f"fastreply parse: cannot open {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        with stream:
            while True:
                chunk = stream.read(READ_SIZE)
                if not chunk:
                    break
                emit(parser.feed(chunk))
            parser.close()
    except ReplyError as exc:
        emit(exc.replies)
        out.flush()
        print(f"fastreply parse: {args.file}: {exc}", file=sys.stderr)
        return 1
    if tracker is not None:
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
    parser = ReplyParser()
    try:
        tracker = _make_tracker(args)
        if args.provider is not None:
            _classification_json((250, b""), None, args.provider)  # check it once
    except (TypeError, ValueError) as exc:
        print(f"fastreply classify: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    offset = 0

    def emit(replies: Sequence[object]) -> None:
        nonlocal offset
        for reply in replies:
            row = _reply_json(reply, offset)
            command = None
            if tracker is not None:
                item = tracker.received(reply)  # type: ignore[arg-type]
                command = item.command
                row["command"] = command.name if command is not None else None
            row.update(_classification_json(reply, command, args.provider))
            out.write(json.dumps(row, ensure_ascii=True) + "\n")
            offset += len(reply.raw)  # type: ignore[attr-defined]

    try:
        stream = _open_input(args.file)
    except OSError as exc:
        print(f"fastreply classify: cannot open {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        with stream:
            while chunk := stream.read(READ_SIZE):
                emit(parser.feed(chunk))
            parser.close()
    except ReplyError as exc:
        emit(exc.replies)
        out.flush()
        print(f"fastreply classify: {args.file}: {exc}", file=sys.stderr)
        return 1
    return 0


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
    from . import bench

    p = subparsers.add_parser(
        "bench",
        help="benchmark fastreply against smtplib (and aiosmtplib) on generated replies",
        description=(
            "Parse the same generated reply streams (mix, single, ehlo, long) with "
            "fastreply's compiled and pure-Python parsers, smtplib.SMTP.getreply(), "
            "aiosmtplib (when installed) and fastreply's smtplib drop-in, in rounds "
            "that alternate the implementations; print median replies/s, MB/s, "
            "ns per reply and the ratio to smtplib. Progress goes to stderr."
        ),
    )
    bench.add_arguments(p)
    p.set_defaults(run=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from . import bench

    return bench.run_cli(args)


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
    args = parser.parse_args(argv)
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
