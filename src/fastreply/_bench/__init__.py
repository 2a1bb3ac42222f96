"""The benchmark harness behind ``fastreply bench`` (private: not an API).

Nothing here is imported by the library or by the other commands: ``fastreply
bench`` hands its arguments to :func:`main` when it runs.

* :mod:`.engine` -- the measuring engine: the runner of each implementation
  (shared with the pytest-benchmark suite in ``bench/``) and the timing in
  rotating rounds;
* :mod:`.corpus` -- the generated reply streams (workloads ``mix``, ``single``,
  ``ehlo``, ``long``);
* :mod:`.parsers` -- ``fastreply bench``: parsing, against smtplib and
  aiosmtplib; :mod:`.classify` -- ``fastreply bench --classify``;
* :mod:`.e2e` and :mod:`.proxy` -- ``fastreply bench --e2e``: sending end to end
  (to Postfix's ``smtp-sink`` or a given server), through a delaying proxy for
  its latency mode.
"""

from __future__ import annotations

import argparse
from typing import Sequence

DESCRIPTION = (
    "Parse the same generated reply streams (mix, single, ehlo, long) with "
    "fastreply's compiled and pure-Python parsers, smtplib.SMTP.getreply(), "
    "aiosmtplib (when installed) and fastreply's smtplib drop-in, in rounds "
    "that alternate the implementations; print median replies/s, MB/s, "
    "ns per reply and the ratio to smtplib. Progress goes to stderr. "
    "With --e2e: send mail end to end instead (see below)."
)


def build_parser(prog: str = "fastreply bench") -> argparse.ArgumentParser:
    """The options of ``fastreply bench`` (the parser benchmark's, and the
    end-to-end benchmark's group)."""
    from . import parsers

    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    parsers.add_arguments(p)
    _add_e2e_arguments(p)
    return p


def main(argv: Sequence[str]) -> int:
    """``fastreply bench ARGS``."""
    args = build_parser().parse_args(argv)
    if args.e2e:
        from . import e2e

        return e2e.run_cli(args)
    from . import parsers

    return parsers.run_cli(args)


def _add_e2e_arguments(p: argparse.ArgumentParser) -> None:
    """``fastreply bench --e2e`` (:mod:`.e2e`, imported only when it runs;
    it checks these values itself).  --json, --plot and -q are shared."""
    g = p.add_argument_group(
        "end to end (--e2e)",
        "Send mail to a real server instead: smtplib, fastreply.smtplib, aiosmtplib, "
        "fastreply.aio.SMTPPool and Postfix's smtp-source, to Postfix's smtp-sink on "
        "127.0.0.1 (started and stopped by the benchmark) or to --server; prints msg/s "
        "and client CPU a message. Of the parsing options above only --json, --plot and "
        "-q apply.",
    )
    g.add_argument("--e2e", action="store_true", help="run the end-to-end benchmark")
    g.add_argument("--server", metavar="HOST:PORT",
                   help="send to this server (it must accept every message) instead of "
                   "starting smtp-sink; loopback only unless --allow-remote")
    g.add_argument("--allow-remote", action="store_true",
                   help="allow a --server that is not on loopback")
    g.add_argument("--messages", default="10000", metavar="N",
                   help="messages each client sends (default 10000)")
    g.add_argument("--connections", default="100", metavar="C",
                   help="connections of aiosmtplib, the pool and smtp-source (default 100; "
                   "smtplib and the drop-in use one)")
    g.add_argument("--e2e-rounds", default="3", metavar="N",
                   help="rounds, each sending with every client once in rotating order; "
                   "medians are reported (default 3)")
    g.add_argument("--latency", nargs="?", const="1,10,50", metavar="MS,...",
                   help="also run each client on one connection through a delaying proxy "
                   "adding these round trips (default 1,10,50)")
    g.add_argument("--latency-messages", metavar="N",
                   help="messages a client sends at each round trip (default: 500 / round "
                   "trip in ms, 10 to 500)")
    g.add_argument("--clients", metavar="LIST",
                   help="comma-separated subset of stdlib, dropin, aiosmtplib, pool, smtp-source")
