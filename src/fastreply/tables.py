"""Which reply codes each command may get: tables of command x code bitmasks.

A :class:`ReplyTable` holds, for every :class:`~fastreply.commands.Command`,
one bitmask with a bit per reply code, computed once when the table is built;
:meth:`~ReplyTable.allows` is then one shift and one AND (in C when the
compiled module is in use).  A code that a table does not list is
*unexpected*, not unparseable: the reply is still a reply, and its first digit
still says what happened (RFC 5321 section 4.2).

>>> from fastreply import ReplyParser
>>> from fastreply.tables import MODERN
>>> from fastreply.commands import Command
>>> MODERN.allows(Command.RCPT, 550)
True
>>> reply, = ReplyParser().feed(b"354 go ahead\\r\\n")
>>> print(MODERN.check(Command.MAIL, reply))
MAIL 354: unexpected (positive intermediate)

The named tables (:data:`TABLES`), each built from the package's
``data/reply_tables.json`` (where each row's source is written down):

``SEED_2002``
    The table the project started from, exactly as it was: RFC 821's rows,
    plus EHLO, 521 for HELO and RCPT, and 200 for RSET and NOOP.
``RFC821``
    RFC 821 section 4.3, command by command (and UNKNOWN: 500, 421).
``RFC5321``
    RFC 5321 section 4.3.2, with the codes its preamble lets any command
    return (500, 501 and 421), SEND/SOML/SAML/TURN as in RFC 821 (appendix
    F), and UNKNOWN: 500, 501, 421.
``MODERN`` (the default)
    RFC 5321 plus STARTTLS (RFC 3207), AUTH (RFC 4954), BDAT (RFC 3030),
    ETRN (RFC 1985) and LHLO (RFC 2033, LMTP); RFC 7504's 521 (a host that
    accepts no mail: at connection and then to every command but QUIT) and
    556 (at RCPT); and the codes the RFCs allow on any command: 530 (TLS or
    authentication required, RFC 3207 section 4 and RFC 4954 section 6, not
    for NOOP, EHLO, LHLO or QUIT), 554 (security insufficient, RFC 3207
    section 4.1, all but QUIT) and 503 (after a 554 greeting, RFC 5321
    section 3.1, all but QUIT).  UNKNOWN also gets 502, which real servers
    use for verbs they do not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterable, Iterator, Mapping, Union

from ._parser import CodeMasks
from .commands import Command

__all__ = [
    "ReplyTable",
    "Verdict",
    "SEED_2002",
    "RFC821",
    "RFC5321",
    "MODERN",
    "TABLES",
    "DEFAULT_TABLE",
    "get_table",
]

#: The lowest and highest code a table may list.
MIN_CODE = 100
MAX_CODE = 599

_MEANINGS = {
    1: "positive preliminary",
    2: "positive completion",
    3: "positive intermediate",
    4: "transient negative",
    5: "permanent negative",
}

CommandKey = Union[Command, str]


def _in_rfc5321_range(code: int) -> bool:
    """RFC 5321 section 4.2: first digit 2-5, second 0-5, third 0-9."""
    return 200 <= code <= 559 and code // 10 % 10 <= 5


def _command(key: object) -> Command:
    if isinstance(key, Command):
        return key
    if isinstance(key, str):
        return Command.from_name(key)
    if isinstance(key, int) and not isinstance(key, bool):
        return Command(key)
    raise TypeError(f"a command must be a Command or its name, not {type(key).__name__}")


def _code(value: object) -> int:
    code = getattr(value, "code", value)
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"a reply code must be an int or a Reply, not {type(value).__name__}")
    return code


@dataclass(frozen=True, repr=False)
class Verdict:
    """What a table says about one reply to one command.

    ``status`` is ``"expected"`` (the table lists the code for the command),
    ``"unexpected"`` (a well-formed code the table does not list for it) or
    ``"out of range"`` (outside RFC 5321's grammar: first digit 2-5, second
    0-5).  Whatever the status, ``meaning`` is what the first digit says,
    which is how a client must act on a reply it does not know.  A verdict is
    true when the code is expected.  Verdicts are immutable values: equal
    when all four fields are.
    """

    command: Command
    code: int
    expected: bool
    table: str = ""

    @property
    def in_range(self) -> bool:
        """Whether the code fits RFC 5321's reply-code grammar."""
        return _in_rfc5321_range(self.code)

    @property
    def status(self) -> str:
        """``"expected"``, ``"unexpected"`` or ``"out of range"``."""
        if self.expected:
            return "expected"
        return "unexpected" if self.in_range else "out of range"

    @property
    def meaning(self) -> str:
        """What the code's first digit means (RFC 5321 section 4.2.1)."""
        return _MEANINGS.get(self.code // 100, "no meaning (first digit not 1-5)")

    def __bool__(self) -> bool:
        return self.expected

    def __repr__(self) -> str:
        return (
            f"Verdict(command=Command.{self.command.name}, code={self.code}, "
            f"status={self.status!r}, table={self.table!r})"
        )

    def __str__(self) -> str:
        return f"{self.command.name} {self.code}: {self.status} ({self.meaning})"

    def as_dict(self) -> dict[str, object]:
        """The verdict as plain data (for JSON)."""
        return {
            "command": self.command.name,
            "code": self.code,
            "status": self.status,
            "meaning": self.meaning,
            "table": self.table,
        }


class ReplyTable(CodeMasks):
    """For each command, the set of reply codes it may get, as a bitmask.

    ``ReplyTable({Command.MAIL: [250, 550], "RCPT": [250]}, name="mine")``
    builds one from a mapping (commands as :class:`Command` or names, codes
    100-599); commands not given allow no code.  Tables are immutable; ``|``
    combines two (a code allowed by either is allowed), :meth:`extend` adds
    rows, and two tables are equal when they allow the same codes.
    """

    _rows: tuple[frozenset[int], ...]
    name: str

    def __init__(self, rows: Mapping[Any, Iterable[int]] | None = None, *,
                 name: str = "custom") -> None:
        super().__init__()
        sets: list[set[int]] = [set() for _ in Command]
        for key, codes in (rows or {}).items():
            command = _command(key)
            if isinstance(codes, (str, bytes)) or not isinstance(codes, Iterable):
                raise TypeError(
                    f"the codes of {command.name} must be an iterable of ints, "
                    f"not {type(codes).__name__}"
                )
            for code in codes:
                if isinstance(code, bool) or not isinstance(code, int):
                    raise TypeError(
                        f"{command.name}: a reply code must be an int, not {type(code).__name__}"
                    )
                if not MIN_CODE <= code <= MAX_CODE:
                    raise ValueError(
                        f"{command.name}: reply code {code} is outside {MIN_CODE}-{MAX_CODE}"
                    )
                sets[command].add(code)
        self._rows = tuple(frozenset(codes) for codes in sets)
        self._set_masks(sum(1 << code for code in codes) for codes in sets)
        self.name = name

    def codes(self, command: CommandKey) -> frozenset[int]:
        """The codes ``command`` may get."""
        return self._rows[_command(command)]

    def rows(self) -> dict[Command, tuple[int, ...]]:
        """Every command that allows at least one code, with its sorted codes."""
        return {c: tuple(sorted(self._rows[c])) for c in Command if self._rows[c]}

    def check(self, command: CommandKey, reply: Any) -> Verdict:
        """Judge ``reply`` (a :class:`~fastreply.Reply` or a code) as the
        answer to ``command``."""
        command = _command(command)
        code = _code(reply)
        return Verdict(command, code, self.allows(command, code), self.name)

    def extend(self, rows: Mapping[Any, Iterable[int]], *, name: str | None = None) -> ReplyTable:
        """A new table with these codes added to these commands, named
        ``name`` (default: this table's name)."""
        extra = ReplyTable(rows)
        merged = {c: self._rows[c] | extra._rows[c] for c in Command}
        return ReplyTable(merged, name=self.name if name is None else name)

    def __or__(self, other: object) -> ReplyTable:
        if not isinstance(other, ReplyTable):
            return NotImplemented
        merged = {c: self._rows[c] | other._rows[c] for c in Command}
        name = self.name if self.name == other.name else f"{self.name}|{other.name}"
        return ReplyTable(merged, name=name)

    def __iter__(self) -> Iterator[tuple[Command, frozenset[int]]]:
        return ((c, self._rows[c]) for c in Command)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReplyTable):
            return NotImplemented
        return self.masks == other.masks

    def __hash__(self) -> int:
        return hash(self.masks)

    def __repr__(self) -> str:
        filled = sum(1 for codes in self._rows if codes)
        total = sum(len(codes) for codes in self._rows)
        return f"<ReplyTable {self.name!r}: {filled} commands, {total} command-code pairs>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, ({c.name: sorted(self._rows[c]) for c in Command}, self.name))

    def format(self, commands: Iterable[CommandKey] | None = None) -> str:
        """The table as text, one line per command: ``MAIL  250 421 451 ...``."""
        chosen = [_command(c) for c in commands] if commands is not None else list(Command)
        width = max(len(c.name) for c in chosen) if chosen else 0
        lines = [f"# table {self.name}"]
        for c in chosen:
            codes = " ".join(str(code) for code in sorted(self._rows[c])) or "-"
            lines.append(f"{c.name:<{width}}  {codes}")
        return "\n".join(lines)


def _rebuild(rows: Mapping[str, Iterable[int]], name: str) -> ReplyTable:
    return ReplyTable(rows, name=name)


# -- the named tables -----------------------------------------------------


def _load_data() -> dict[str, Any]:
    text = resources.files("fastreply").joinpath("data/reply_tables.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


_DATA = _load_data()
_TABLES_DATA: dict[str, dict[str, list[int]]] = _DATA["tables"]

#: Every command a client can send (not the greeting or end of data).
_REAL_COMMANDS = [c for c in Command if c not in (Command.CONNECT, Command.DATA_END)]


def _rows_of(table: str) -> dict[Command, set[int]]:
    return {Command.from_name(name): set(codes) for name, codes in _TABLES_DATA[table].items()}


def _build_modern() -> dict[Command, set[int]]:
    rows = _rows_of("rfc5321")
    for name, codes in _TABLES_DATA["extensions"].items():
        # The extension rows, plus what RFC 5321's preamble lets any command get.
        rows[Command.from_name(name)] = set(codes) | {421, 500, 501}
    rows[Command.UNKNOWN] = {500, 501, 502, 421}
    for command in _REAL_COMMANDS:
        row = rows.setdefault(command, set())
        if command is not Command.QUIT:
            row |= {503, 521, 554}  # RFC 5321 s3.1, RFC 7504 s3, RFC 3207 s4.1
        if command not in (Command.NOOP, Command.EHLO, Command.LHLO, Command.QUIT):
            row.add(530)  # RFC 3207 s4, RFC 4954 s6
    rows[Command.CONNECT].add(521)  # RFC 7504 s3
    rows[Command.RCPT].add(556)  # RFC 7504 s3, RFC 7505 (null MX)
    return rows


#: The table the project started from in 2002, exactly.
SEED_2002 = ReplyTable(_rows_of("seed-2002"), name="SEED_2002")
#: RFC 821 section 4.3.
RFC821 = ReplyTable({**_rows_of("rfc821"), Command.UNKNOWN: {500, 421}}, name="RFC821")
#: RFC 5321 section 4.3.2 with the codes any command may return.
RFC5321 = ReplyTable({**_rows_of("rfc5321"), Command.UNKNOWN: {500, 501, 421}}, name="RFC5321")
#: RFC 5321 and the extensions and updates a current server speaks (the default).
MODERN = ReplyTable(_build_modern(), name="MODERN")

#: The named tables by name.
TABLES: dict[str, ReplyTable] = {
    table.name: table for table in (SEED_2002, RFC821, RFC5321, MODERN)
}
#: The table used when none is named.
DEFAULT_TABLE = MODERN

#: Where each named table's rows come from (from the data file).
SOURCES: dict[str, str] = {
    "SEED_2002": _DATA["sources"]["seed-2002"],
    "RFC821": _DATA["sources"]["rfc821"],
    "RFC5321": _DATA["sources"]["rfc5321"],
    "MODERN": (
        "RFC5321's rows; " + _DATA["sources"]["extensions"] + " Any command: 421, 500, 501; "
        "503 and 554 but QUIT (RFC 5321 section 3.1, RFC 3207 section 4.1); 530 but NOOP, "
        "EHLO, LHLO and QUIT (RFC 3207 section 4, RFC 4954 section 6); 521 at connection and "
        "to all but QUIT, 556 at RCPT (RFC 7504). UNKNOWN: 500, 501, 502 (real servers' "
        "answer to an unknown verb), 421."
    ),
}


def get_table(name: str) -> ReplyTable:
    """A named table, by name (case-insensitive): ``get_table("rfc5321")``."""
    try:
        return TABLES[name.upper().replace("-", "_")]
    except KeyError:
        raise ValueError(
            f"unknown table {name!r} (known: {', '.join(TABLES)})"
        ) from None
