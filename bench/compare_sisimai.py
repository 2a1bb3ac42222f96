"""Side by side: fastreply.classify() and Sisimai (the Perl bounce analyser)
against the labelled replies of tests/data/classification_cases.json.

    python bench/compare_sisimai.py [--part PART] [--misses]

``--part`` takes a part of the labelled set (``dev``, ``heldout``, ``heldout2``,
``heldout3``, ``heldout4``; see tests/data/classification_cases.md) or ``all`` (the default).

Needs Perl and Sisimai (Debian: ``apt-get install libsisimai-perl``).  Each
reply goes to Sisimai wrapped in the bounce Postfix would write for it (see
bench/sisimai_reasons.pl), with the provider's real MX host as the remote
host, so Sisimai's own provider tables (chosen by that host) apply.  fastreply
is run twice: on the reply and its command alone, and with the same MX host
as ``provider=``.  Sisimai 4 is the version Debian ships (the research figures
quoted for Sisimai elsewhere are of version 5, whose reason list is longer).

Sisimai's reasons are coarser or cut differently from fastreply's categories;
REASON_MAP says which categories count as agreeing with each reason (more
than one where a reason covers several categories: ``blocked`` is any refusal
of the client's IP or name).  Actions: Sisimai only says hard or soft bounce,
and by its definition a hard bounce is one whose address is dead: both are
compared on that ("dead": Sisimai's hard bounce, fastreply's ``suppress``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from fastreply import _parser_py
from fastreply.classification import DEFAULT_CLASSIFIER

HERE = Path(__file__).resolve().parent
CASES = HERE.parent / "tests" / "data" / "classification_cases.json"

#: Sisimai 4 reason -> the fastreply categories that count as the same answer.
REASON_MAP: dict[str, set[str]] = {
    "delivered": {"delivered"},
    "userunknown": {"invalid_recipient"},
    "hostunknown": {"bad_domain"},
    "notaccept": {"bad_domain"},
    "mailboxfull": {"mailbox_full"},
    "mesgtoobig": {"message_too_large"},
    "exceedlimit": {"message_too_large"},
    "suspend": {"inactive_recipient"},
    "hasmoved": {"inactive_recipient"},
    "norelaying": {"relay_denied"},
    "rejected": {"sender_rejected"},
    "blocked": {"reputation_block", "dnsbl_listed", "reverse_dns_helo"},
    "toomanyconn": {"too_many_connections", "rate_limited"},
    "spamdetected": {"spam_content"},
    "virusdetected": {"virus_or_attachment"},
    "policyviolation": {"policy_rejection"},
    "filtered": {"policy_rejection"},
    "securityerror": {"auth_failure", "tls_required"},
    "contenterror": {"message_noncompliant"},
    "syntaxerror": {"protocol_error"},
    "systemerror": {"remote_system_error"},
    "systemfull": {"remote_system_error"},
    "networkerror": {"remote_system_error"},
    "expired": {"remote_system_error"},
    "mailererror": {"remote_system_error"},
    "onhold": {"uncategorized"},
    "undefined": {"uncategorized"},
}

#: The MX host each provider's replies come from (what a sender knows).
MX_HOSTS = {
    "google": "gmail-smtp-in.l.google.com", "microsoft": "example-com.mail.protection.outlook.com",
    "yahoo": "mta5.am0.yahoodns.net", "apple": "mx01.mail.icloud.com",
    "comcast": "mx1a1.comcast.net", "gmx": "mx00.gmx.net", "orange": "smtp-in.orange.fr",
    "mimecast": "eu-smtp-inbound-1.mimecast.com", "proofpoint": "mx0a-001.pphosted.com",
    "barracuda": "d123.ess.barracudanetworks.com", "tonline": "mx00.t-online.de",
    "free": "mx1.free.fr", "yandex": "mx.yandex.ru", "mailru": "mxs.mail.ru",
    "zoho": "mx.zoho.com", "att": "ff-ip4-mx-vip1.prodigy.net", "godaddy": "smtp.secureserver.net",
    "cisco": "mx1.hc1234-12.iphmx.com", "symantec": "cluster1.eu.messagelabs.com",
    "trendmicro": "in.hes.trendmicro.com", "cloudflare": "route1.mx.cloudflare.net",
}
DOMAINS = {"google": "gmail.com", "microsoft": "outlook.com", "yahoo": "yahoo.com",
           "apple": "icloud.com", "comcast": "comcast.net", "gmx": "gmx.net",
           "orange": "orange.fr", "tonline": "t-online.de", "free": "free.fr",
           "yandex": "yandex.ru", "mailru": "mail.ru", "zoho": "zoho.com", "att": "att.net"}


def dead(action: str) -> bool | None:
    """Whether the action says the address is dead (None for a success)."""
    return None if action == "none" else action == "suppress"


def sisimai(cases: list[dict]) -> dict[str, dict]:
    if shutil.which("perl") is None:
        sys.exit("perl is needed")
    lines = []
    for n, case in enumerate(cases):
        lines.append(json.dumps({
            "id": case["id"], "code": case["code"], "text": "\n".join(case["lines"]),
            "command": case["command"],
            "rhost": MX_HOSTS.get(case["provider"], "mx.example.net"),
            "recipient": f"user{n}@{DOMAINS.get(case['provider'], 'example.net')}",
        }))
    out = subprocess.run(["perl", str(HERE / "sisimai_reasons.pl")], input="\n".join(lines),
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"sisimai_reasons.pl failed (is libsisimai-perl installed?):\n{out.stderr}")
    return {row["id"]: row for row in map(json.loads, out.stdout.splitlines())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    every = json.loads(CASES.read_text("utf-8"))["cases"]
    parts = sorted({c["split"] for c in every})
    ap.add_argument("--part", "--split", dest="part", choices=parts + ["all"], default="all",
                    help="the part of the labelled set to compare on (default: all)")
    ap.add_argument("--misses", action="store_true", help="list every disagreement")
    args = ap.parse_args(argv)
    cases = [c for c in every if args.part == "all" or c["split"] == args.part]
    theirs = sisimai(cases)
    score: Counter[str] = Counter()
    misses = []
    for case in cases:
        reply = _parser_py.Reply(case["code"], [line.encode() for line in case["lines"]])
        ours = DEFAULT_CLASSIFIER.classify(reply, case["command"])
        ours_mx = DEFAULT_CLASSIFIER.classify(
            reply, case["command"], provider=MX_HOSTS.get(case["provider"], "mx.example.net"))
        reason = theirs[case["id"]]["reason"] or "undefined"
        want_dead = dead(case["action"])
        sisimai_dead = {1: False, 0: True}.get(theirs[case["id"]]["softbounce"])
        score["n"] += 1
        score["cat_ours"] += ours.category == case["category"]
        score["cat_ours_mx"] += ours_mx.category == case["category"]
        score["cat_sisimai"] += case["category"] in REASON_MAP.get(reason, set())
        score["act_ours"] += ours.action == case["action"]
        score["act_ours_mx"] += ours_mx.action == case["action"]
        if want_dead is not None:
            score["hs_n"] += 1
            score["hs_ours"] += dead(ours.action) == want_dead
            score["hs_sisimai"] += sisimai_dead == want_dead
        if case["category"] not in REASON_MAP.get(reason, set()) or ours.category != case["category"]:
            misses.append(f"{case['id']:14} want {case['category']:20} fastreply "
                          f"{ours.category:20} sisimai {reason}")
    n, hs = score["n"], score["hs_n"]
    print(f"{n} replies ({args.part}); Sisimai "
          f"{subprocess.run(['perl', '-MSisimai', '-e', 'print Sisimai->version'], capture_output=True, text=True).stdout}")
    print(f"{'':34} {'category':>10} {'action':>10} {'dead addr':>10}")
    print(f"{'fastreply (reply + command)':34} {score['cat_ours'] / n:10.1%} "
          f"{score['act_ours'] / n:10.1%} {score['hs_ours'] / hs:10.1%}")
    print(f"{'fastreply (+ provider= MX host)':34} {score['cat_ours_mx'] / n:10.1%} "
          f"{score['act_ours_mx'] / n:10.1%}")
    print(f"{'Sisimai (Postfix bounce, MX host)':34} {score['cat_sisimai'] / n:10.1%} "
          f"{'-':>10} {score['hs_sisimai'] / hs:10.1%}")
    if args.misses:
        print("\n".join(misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
