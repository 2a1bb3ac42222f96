"""The ``fastreply`` command line (also ``python -m fastreply``).

Each subcommand is built by its own ``_add_<name>`` function and run by its
own ``_run_<name>`` function; :func:`main` only wires them together.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Callable, Sequence

from . import IMPLEMENTATION, __version__
from ._parser import ReplyParser
from .errors import ReplyError

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


def _run_parse(args: argparse.Namespace) -> int:
    try:
        parser = ReplyParser(
            max_line_length=args.max_line_length,
            max_reply_lines=args.max_reply_lines,
            strict=args.strict,
        )
    except (TypeError, ValueError) as exc:
        print(f"fastreply parse: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    offset = 0

    def emit(replies: Sequence[object]) -> None:
        nonlocal offset
        for reply in replies:
            out.write(json.dumps(_reply_json(reply, offset), ensure_ascii=True) + "\n")
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
    return 0


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
