"""fastreply.classify(): the API, the evidence it reads and its errors, on both
matchers (the ``classifier`` fixture runs each test with the compiled and the
pure-Python one)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from types import ModuleType
from typing import Any

import pytest

import fastreply
from fastreply import _parser_py
from fastreply.classification import (
    ACTIONS,
    CATEGORIES,
    DEFAULT_ACTIONS,
    DEFAULT_SCOPES,
    PROVIDERS,
    SCOPES,
    Classification,
    Classifier,
    Rule,
    shipped_rules,
)
from fastreply.commands import Command


def wire(data: bytes, impl: ModuleType) -> Any:
    (reply,) = impl.ReplyParser().feed(data)
    return reply


# -- which implementation runs ---------------------------------------------------


def test_the_fixture_runs_the_matcher_it_names(classifier: Classifier,
                                               classifier_impl: ModuleType) -> None:
    expected = "cython" if classifier_impl.__name__.endswith("_c") else "python"
    assert classifier.implementation == expected


def test_default_classify_uses_the_selected_matcher(selected: ModuleType) -> None:
    """The matcher of the implementation ``import fastreply`` runs (the
    ``selected`` fixture checks ``fastreply.classify`` against it too)."""
    from fastreply import classification

    assert classification.DEFAULT_CLASSIFIER.implementation == classification.IMPLEMENTATION


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython only")
def test_environment_variable_forces_the_python_matcher() -> None:
    env = dict(os.environ, FASTREPLY_NO_EXTENSIONS="1")
    code = "import fastreply.classification as c; print(c.IMPLEMENTATION)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "python"


# -- results -------------------------------------------------------------------


def test_result_fields_and_type(classifier: Classifier) -> None:
    result = classifier.classify((550, b"5.1.1 <bob@example.org>... User unknown"), "RCPT")
    assert isinstance(result, Classification)
    assert result == Classification("invalid_recipient", "suppress", "recipient", None, None,
                                    "invalid-recipient")
    assert result.permanent
    assert result._asdict()["category"] == "invalid_recipient"
    assert pickle.loads(pickle.dumps(result)) == result


def test_every_result_uses_the_published_names(classifier: Classifier) -> None:
    # Every result the compiled tables hold (made once, then shared), not
    # only those some reply happens to reach.
    for row in classifier._tables.results:
        for slot in row:
            for result in slot or ():
                assert result.category in CATEGORIES
                assert result.action in ACTIONS
                assert result.scope in SCOPES
                assert result.provider is None or result.provider in PROVIDERS


def test_results_are_shared_without_a_delay(classifier: Classifier) -> None:
    first = classifier.classify((550, b"5.1.1 user unknown, queue id A1"), "RCPT")
    second = classifier.classify((550, b"5.1.1 user unknown, queue id B2"), "RCPT")
    assert first is second


def test_positive_replies_are_delivered(classifier: Classifier) -> None:
    for code, command in ((250, "RCPT"), (220, None), (354, "DATA"), (251, "RCPT")):
        result = classifier.classify((code, b"OK"), command)
        assert (result.category, result.action) == ("delivered", "none"), code


@pytest.mark.parametrize(
    ("code", "text", "category", "action"),
    [
        (452, b"4.2.2 mailbox full", "mailbox_full", "retry"),
        (552, b"5.2.2 mailbox full", "mailbox_full", "bounce"),
        (450, b"4.1.1 user unknown", "invalid_recipient", "retry"),
        (550, b"5.1.1 user unknown", "invalid_recipient", "suppress"),
        (451, b"4.7.1 rate limit exceeded", "rate_limited", "throttle"),
        (550, b"5.7.1 rate limit exceeded", "rate_limited", "throttle"),
        (552, b"5.5.3 too many recipients", "too_many_recipients", "retry"),
        (421, b"4.7.0 [TS03] All messages from 192.0.2.1 will be permanently deferred; "
              b"Retrying will NOT succeed.", "reputation_block", "bounce"),
        (421, b"4.7.0 unusual rate of unsolicited mail", "reputation_block", "throttle"),
        (554, b"5.7.1 unusual rate of unsolicited mail", "reputation_block", "bounce"),
    ],
)
def test_action_comes_from_category_and_code(
    classifier: Classifier, code: int, text: bytes, category: str, action: str
) -> None:
    result = classifier.classify((code, text), "RCPT")
    assert (result.category, result.action) == (category, action)


def test_codes_outside_the_classes(classifier: Classifier) -> None:
    # smtplib returns -1 for a line it cannot read.
    result = classifier.classify((-1, b"garbage"))
    assert (result.category, result.action, result.rule) == ("protocol_error", "retry",
                                                              "default-other")
    assert classifier.classify((999, b"?")).category == "protocol_error"


def test_no_evidence_falls_back_by_class(classifier: Classifier) -> None:
    assert classifier.classify((554, b"5.0.0 zork"), "DATA_END").rule == "uncategorized-x0"
    result = classifier.classify((554, b"zork"), "DATA_END")
    assert (result.category, result.action, result.rule) == ("uncategorized", "bounce",
                                                              "default-5xx")
    assert classifier.classify((453, b"zork"), "RCPT").rule == "default-4xx"


# -- evidence: command, enhanced code, text --------------------------------------


def test_scope_follows_the_command_when_the_category_leaves_it_open(
    classifier: Classifier,
) -> None:
    text = b"zork"
    assert classifier.classify((554, text), "RCPT").scope == "recipient"
    assert classifier.classify((554, text), "MAIL").scope == "message"
    assert classifier.classify((554, text), Command.DATA_END).scope == "message"
    assert classifier.classify((554, text), "EHLO").scope == "connection"
    assert classifier.classify((554, text), Command.CONNECT).scope == "connection"
    assert classifier.classify((554, text)).scope == "message"
    # A 421 closes the connection, whatever the command.
    assert classifier.classify((421, b"4.3.2 mumble"), "RCPT").scope in ("connection",
                                                                         "destination")
    assert classifier.classify((421, b"zork"), "RCPT").scope == "destination"


def test_category_scopes_override_the_command(classifier: Classifier) -> None:
    assert classifier.classify((552, b"5.3.4 message too big"), "RCPT").scope == "message"
    assert classifier.classify((550, b"5.1.1 user unknown"), "DATA_END").scope == "recipient"


@pytest.mark.parametrize(
    "command",
    [Command.RCPT, "RCPT", "rcpt", "RCPT TO:<bob@example.org>", b"RCPT TO:<bob@example.org>\r\n",
     int(Command.RCPT)],
)
def test_command_forms(classifier: Classifier, command: Any) -> None:
    assert classifier.classify((554, b"zork"), command).scope == "recipient"


def test_bad_commands(classifier: Classifier) -> None:
    with pytest.raises(TypeError, match="command must be"):
        classifier.classify((550, b"x"), 4.5)
    with pytest.raises(TypeError, match="not bool"):
        classifier.classify((550, b"x"), True)
    with pytest.raises(ValueError, match="no command number 99"):
        classifier.classify((550, b"x"), 99)
    # A string that is neither a name nor a known verb is UNKNOWN, as Command.from_line says.
    assert classifier.classify((554, b"zork"), "FROBNICATE x").scope == "connection"


def test_enhanced_code_decides_without_text(classifier: Classifier) -> None:
    assert classifier.classify((550, b"5.1.1"), "RCPT").category == "invalid_recipient"
    assert classifier.classify((552, b"5.3.4 whatever"), "DATA_END").category == (
        "message_too_large")
    assert classifier.classify((550, b"5.7.26 x"), "DATA_END").category == "auth_failure"
    # Only at the very start of the first line, in RFC 3463's grammar.
    assert classifier.classify((550, b"x 5.1.1"), "RCPT").rule == "default-5xx"
    assert classifier.classify((550, b"5.1.01 x"), "RCPT").rule == "default-5xx"
    assert classifier.classify((550, b"5.1.1x"), "RCPT").rule == "default-5xx"


def test_text_refines_the_enhanced_code(classifier: Classifier) -> None:
    generic = classifier.classify((550, b"5.7.1 go away"), "RCPT")
    assert generic.category == "policy_rejection"
    listed = classifier.classify(
        (554, b"5.7.1 Service unavailable; Client host [192.0.2.1] blocked using "
              b"zen.spamhaus.org"), "RCPT")
    assert listed.category == "dnsbl_listed"
    # A host that sends rate limits as 5.1.1: the text wins.
    assert classifier.classify((550, b"5.1.1 rate limit exceeded"), "RCPT").category == (
        "rate_limited")


def test_words_ignore_case_and_punctuation(classifier: Classifier) -> None:
    for text in (b"USER UNKNOWN", b"User_Unknown", b"user   unknown", b"user\tunknown",
                 b"<user.unknown>"):
        assert classifier.classify((550, text), "RCPT").category == "invalid_recipient", text
    # Whole words only.
    assert classifier.classify((550, b"superuser unknownish"), "RCPT").rule == "default-5xx"


def test_phrases_run_across_lines(classifier: Classifier, impl: ModuleType) -> None:
    reply = wire(b"550-5.1.1 The email account that you tried to reach does\r\n"
                 b"550-5.1.1 not exist. Please try double-checking.\r\n"
                 b"550 5.1.1 https://support.google.com/mail/?p=NoSuchUser x - gsmtp\r\n", impl)
    result = classifier.classify(reply, "RCPT")
    assert (result.category, result.provider) == ("invalid_recipient", "google")


def test_enhanced_codes_of_later_lines_are_not_words(classifier: Classifier,
                                                     impl: ModuleType) -> None:
    # "5.2.1" repeated on each line must not split "is" / "disabled".
    reply = wire(b"550-5.2.1 The email account that you tried to reach is\r\n"
                 b"550 5.2.1 disabled. x - gsmtp\r\n", impl)
    assert classifier.classify(reply, "RCPT").category == "inactive_recipient"


# -- providers -----------------------------------------------------------------


def test_provider_from_the_text(classifier: Classifier) -> None:
    google = classifier.classify((450, b"4.2.1 The user you are trying to contact is receiving "
                                       b"mail at a rate that prevents additional messages "
                                       b"from being delivered. x - gsmtp"), "RCPT")
    assert (google.provider, google.category, google.scope) == ("google", "rate_limited",
                                                                 "recipient")
    yahoo = classifier.classify((421, b"4.7.0 [TSS04] Messages from 192.0.2.1 temporarily "
                                      b"deferred"), "MAIL")
    assert (yahoo.provider, yahoo.action) == ("yahoo", "throttle")
    msft = classifier.classify((550, b"5.4.1 Recipient address rejected: Access denied. "
                                     b"[DM6NAM12FT019.eop-nam12.prod.protection.outlook.com]"),
                               "RCPT")
    assert (msft.provider, msft.category) == ("microsoft", "invalid_recipient")


def test_provider_meaning_of_an_enhanced_code(classifier: Classifier) -> None:
    # IANA 4.2.1 is "mailbox disabled"; Google's is "receiving mail too fast".
    assert classifier.classify((450, b"4.2.1 zork")).category == "inactive_recipient"
    assert classifier.classify((450, b"4.2.1 zork"), provider="google").category == (
        "rate_limited")
    # Microsoft 5.4.1: an unknown recipient (IANA: no answer from host).
    assert classifier.classify((550, b"5.4.1 zork")).category == "remote_system_error"
    assert classifier.classify((550, b"5.4.1 zork"), provider="microsoft").category == (
        "invalid_recipient")


def test_provider_argument(classifier: Classifier) -> None:
    text = (450, b"4.2.1 zork")
    by_host = classifier.classify(text, provider="gmail-smtp-in.l.google.com")
    assert (by_host.provider, by_host.category) == ("google", "rate_limited")
    assert classifier.classify(text, provider="GMAIL-SMTP-IN.L.GOOGLE.COM.").provider == "google"
    # An unknown host: no provider, and the text may still name one.
    assert classifier.classify(text, provider="mx.example.org").provider is None
    assert classifier.classify((450, b"4.2.1 x - gsmtp"), provider="mx.example.org").provider == (
        "google")
    # The argument wins over the text.
    assert classifier.classify((450, b"4.2.1 x - gsmtp"), provider="yahoo").provider == "yahoo"
    with pytest.raises(ValueError, match="unknown provider 'nosuch'"):
        classifier.classify(text, provider="nosuch")
    with pytest.raises(TypeError, match="provider must be a str"):
        classifier.classify(text, provider=3)


def test_first_provider_token_wins(classifier: Classifier) -> None:
    result = classifier.classify((550, b"5.7.1 x mimecast y - gsmtp"))
    assert result.provider == "mimecast"


# -- retry_after ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (b"4.7.1 Please try again in 15 minutes", 900),
        (b"4.7.1 retry in 30 seconds", 30),
        (b"4.7.1 Try again after 1 hour", 3600),
        (b"4.7.1 please wait 90 secs", 90),
        (b"4.7.1 Greylisted for 300 seconds", 300),
        (b"4.7.1 try again within 2 hrs", 7200),
        (b"4.7.1 blocked for 1 day", 86400),
        (b"4.7.1 Greylisting in action, please come back in 00:03:51", 231),
        (b"4.7.1 come back in 1:00:00 or in 5 minutes", 3600),
        (b"4.7.1 try again in 5 minutes, or in 10 minutes", 300),
    ],
)
def test_retry_after(classifier: Classifier, text: bytes, seconds: int) -> None:
    result = classifier.classify((450, text), "RCPT")
    assert result.retry_after == seconds
    assert type(result) is Classification


@pytest.mark.parametrize(
    "text",
    [b"4.7.1 try again later", b"4.7.1 in 5 mice", b"4.7.1 5 minutes", b"4.7.1 in 1234567 seconds",
     b"4.7.1 in 00:05", b"4.7.1 in 00-05-00", b"4.7.1 in 00::05:00", b"4.7.1 in five minutes"],
)
def test_no_retry_after(classifier: Classifier, text: bytes) -> None:
    assert classifier.classify((450, text), "RCPT").retry_after is None


def test_retry_after_across_lines(classifier: Classifier, impl: ModuleType) -> None:
    reply = wire(b"450-4.7.1 Greylisted, try again in\r\n450 4.7.1 5 minutes\r\n", impl)
    assert classifier.classify(reply, "RCPT").retry_after == 300


# -- reply forms and errors -------------------------------------------------------


def test_reply_forms_agree(classifier: Classifier, impl: ModuleType) -> None:
    raw = b"550-5.7.1 [192.0.2.1] Our system has detected an unusual rate of\r\n" \
          b"550 5.7.1 unsolicited mail. x - gsmtp\r\n"
    parsed = wire(raw, impl)
    made = impl.Reply(550, parsed.lines)
    text = b"\n".join(parsed.lines)
    results = {
        classifier.classify(parsed, "DATA_END"),
        classifier.classify(made, "DATA_END"),
        classifier.classify((550, text), "DATA_END"),
        classifier.classify([550, text], "DATA_END"),
        classifier.classify((550, text.decode()), "DATA_END"),
        classifier.classify((550, bytearray(text)), "DATA_END"),
    }
    assert len(results) == 1
    assert results.pop().category == "reputation_block"


def test_reply_method_on_both_parsers(impl: ModuleType) -> None:
    reply = wire(b"552 5.2.2 Mailbox full\r\n", impl)
    assert reply.classify("RCPT") == fastreply.classify(reply, "RCPT")
    assert reply.classify("RCPT", provider="google").provider == "google"
    assert reply.classify().category == "mailbox_full"


def test_bad_replies(classifier: Classifier) -> None:
    with pytest.raises(TypeError, match="takes a Reply or a"):
        classifier.classify(b"550 5.1.1 user unknown\r\n")
    with pytest.raises(TypeError, match="takes a Reply or a"):
        classifier.classify(None)
    with pytest.raises(TypeError, match=r"must be \(code, message\)"):
        classifier.classify((550, b"x", b"y"))
    with pytest.raises(TypeError, match="reply code must be an int"):
        classifier.classify(("550", b"x"))
    with pytest.raises(TypeError, match="reply code must be an int"):
        classifier.classify((True, b"x"))
    with pytest.raises(TypeError, match="message must be bytes or str"):
        classifier.classify((550, 5))
    with pytest.raises(ValueError, match="-1 to 999, got 1000"):
        classifier.classify((1000, b"x"))
    with pytest.raises(ValueError, match="-1 to 999"):
        classifier.classify((-(2 ** 80), b"x"))


def test_odd_bytes_are_safe(classifier: Classifier) -> None:
    for text in (b"", b"\n", b"\n\n\n", b"\x00\xff\x80" * 50, b"5.", b"5.1.", b"5.1.1",
                 b"x" * 100_000, b"a " * 10_000, b"1:2:3:4:5:6:7", b"in " * 1000 + b"5 m"):
        result = classifier.classify((550, text), "RCPT")
        assert result.category in CATEGORIES


def test_free_threads_share_a_classifier(classifier: Classifier) -> None:
    replies = [((550, b"5.1.1 user unknown %d" % i), "RCPT") for i in range(200)] + \
              [((450, b"4.7.1 try again in %d minutes" % i), "RCPT") for i in range(200)]
    expected = [classifier.classify(*args) for args in replies]
    failures: list[int] = []

    def worker() -> None:
        for _ in range(20):
            if [classifier.classify(*args) for args in replies] != expected:
                failures.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# -- rules and classifiers --------------------------------------------------------


def test_shipped_rules_are_consistent() -> None:
    rules = shipped_rules()
    assert len({r.id for r in rules}) == len(rules)
    for rule in rules:
        assert Rule.from_dict(rule.to_dict()) == rule
    assert set(DEFAULT_ACTIONS) == set(CATEGORIES) == set(DEFAULT_SCOPES)
    used = {r.category for r in rules}
    assert used == set(CATEGORIES) - {"uncategorized"} | {"uncategorized"} & used


def test_extend_puts_new_rules_first(classifier_impl: ModuleType) -> None:
    base = Classifier(matcher=classifier_impl.Matcher)
    mine = base.extend([{"id": "acme-quota", "codes": ["5xx"], "commands": ["RCPT"],
                         "phrases": ["acme storage exhausted"], "category": "mailbox_full",
                         "action": {"5xx": "suppress"}}])
    result = mine.classify((554, b"ACME storage exhausted for bob"), "RCPT")
    assert (result.rule, result.category, result.action) == ("acme-quota", "mailbox_full",
                                                              "suppress")
    # Conditions hold: not at MAIL.
    assert mine.classify((554, b"ACME storage exhausted"), "MAIL").rule == "default-5xx"
    assert base.classify((554, b"ACME storage exhausted for bob"), "RCPT").rule == "default-5xx"
    assert mine.rules[0].id == "acme-quota" and len(mine.rules) == len(base.rules) + 1
    assert mine.implementation == base.implementation


def test_extend_replaces_a_rule_by_id(classifier_impl: ModuleType) -> None:
    base = Classifier(matcher=classifier_impl.Matcher)
    mine = base.extend([{"id": "mailbox-full", "phrases": ["mailbox full"],
                         "category": "inactive_recipient"}])
    assert len(mine.rules) == len(base.rules)
    assert mine.classify((552, b"mailbox full"), "RCPT").category == "inactive_recipient"


def test_extend_with_providers(classifier_impl: ModuleType) -> None:
    mine = Classifier(matcher=classifier_impl.Matcher).extend(
        [{"id": "acme-x21", "provider": "acme", "enhanced": ["X.2.1"],
          "category": "rate_limited"}],
        providers={"acme": {"hosts": ["acme.example"], "tokens": ["acme mx"]}},
    )
    assert mine.classify((450, b"4.2.1 ACME-MX says no")).rule == "acme-x21"
    assert mine.classify((450, b"4.2.1 no"), provider="mx1.acme.example").provider == "acme"
    assert "acme" in mine.providers and "google" in mine.providers


def test_own_rules_only(classifier_impl: ModuleType) -> None:
    mine = Classifier([{"id": "only", "codes": ["550"], "category": "bad_domain"}], {},
                      matcher=classifier_impl.Matcher)
    assert mine.classify((550, b"anything")).category == "bad_domain"
    assert mine.classify((551, b"anything")).rule == "default-5xx"
    assert mine.classify((250, b"ok")).rule == "default-positive"
    assert repr(mine).startswith("<Classifier: 1 rules")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"category": "bad_domain"}, "'id' must be"),
        ({"id": "Bad Id", "category": "bad_domain"}, "'id' must be"),
        ({"id": "x", "category": "nope"}, "category 'nope' is not one of"),
        ({"id": "x", "category": "bad_domain", "codes": ["6xx"]}, "code '6xx'"),
        ({"id": "x", "category": "bad_domain", "codes": ["554-550"]}, "within 100-599"),
        ({"id": "x", "category": "bad_domain", "codes": "5xx"}, "'codes' must be a list"),
        ({"id": "x", "category": "bad_domain", "commands": ["FROB"]}, "unknown command 'FROB'"),
        ({"id": "x", "category": "bad_domain", "enhanced": ["5.1"]}, "enhanced code '5.1'"),
        ({"id": "x", "category": "bad_domain", "enhanced": ["X.7.9-1"]}, "is empty"),
        ({"id": "x", "category": "bad_domain", "phrases": ["..."]}, "has no words"),
        ({"id": "x", "category": "bad_domain", "phrases": ["a " * 17]}, "more than 16 words"),
        ({"id": "x", "category": "bad_domain", "phrases": ["a" * 65]}, "longer than 64"),
        ({"id": "x", "category": "bad_domain", "scope": "world"}, "scope 'world'"),
        ({"id": "x", "category": "bad_domain", "action": "explode"}, "action 'explode'"),
        ({"id": "x", "category": "bad_domain", "action": {"3xx": "none"}}, "action keys"),
        ({"id": "x", "category": "bad_domain", "colour": "red"}, "unknown field"),
        ({"id": "x", "category": "delivered"}, "must name its codes"),
        ({"id": "x", "category": "delivered", "codes": ["5xx"]}, "all 1xx-3xx"),
    ],
)
def test_bad_rules_name_the_rule_and_field(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Classifier([rule], {})


def test_bad_rule_sets() -> None:
    with pytest.raises(ValueError, match="used twice"):
        Classifier([{"id": "a", "category": "bad_domain"}, {"id": "a", "category": "bad_domain"}],
                   {})
    with pytest.raises(ValueError, match="unknown provider 'acme'"):
        Classifier([{"id": "a", "provider": "acme", "category": "bad_domain"}], {})
    with pytest.raises(TypeError, match="a rule must be a mapping"):
        Classifier(["not a rule"], {})  # type: ignore[list-item]
    with pytest.raises(ValueError, match="provider 'Acme'"):
        Classifier([], {"Acme": {"hosts": []}})


def test_load_rules_reads_the_shipped_format(tmp_path: Any) -> None:
    from fastreply.classification import load_rules

    path = tmp_path / "rules.json"
    path.write_text('{"format": 1, "providers": {"acme": {"hosts": ["acme.example"], '
                    '"tokens": []}}, "rules": [{"id": "r1", "codes": ["550"], '
                    '"category": "bad_domain"}]}')
    rules, providers = load_rules(str(path))
    assert [r.id for r in rules] == ["r1"] and "acme" in providers
    assert Classifier(rules, providers).classify((550, b"x"), provider="acme").rule == "r1"
    path.write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_rules(str(path))
    path.write_text('{"format": 2}')
    with pytest.raises(ValueError, match='"format": 1'):
        load_rules(str(path))


def test_matcher_tables_are_set_once(classifier: Classifier, classifier_impl: ModuleType) -> None:
    # What lets threads share a matcher: nothing is written after it is built.
    if classifier_impl.__name__.endswith("_c"):
        with pytest.raises(TypeError, match="set once"):
            classifier._matcher.__init__(classifier._tables)
    from fastreply import classification

    with pytest.raises(RuntimeError, match="set once"):
        classification._impl._set_default(classification.DEFAULT_CLASSIFIER._matcher)


# -- the tracker ------------------------------------------------------------------


def test_tracked_replies_know_their_classification() -> None:
    from fastreply.tracker import ReplyTracker

    tracker = ReplyTracker()
    for line in (b"EHLO me", b"MAIL FROM:<a@example.org>", b"RCPT TO:<b@example.org>", b"DATA"):
        tracker.sent(line)
    items = tracker.feed(b"220 mx ESMTP\r\n250 mx\r\n250 2.1.0 Ok\r\n"
                         b"550 5.1.1 <b@example.org>: Recipient address rejected: User unknown\r\n"
                         b"554 5.5.1 Error: no valid recipients\r\n421 4.4.2 bye\r\n")
    found = [(i.classification.category, i.classification.scope) for i in items]
    assert found == [("delivered", "connection"), ("delivered", "connection"),
                     ("delivered", "message"), ("invalid_recipient", "recipient"),
                     ("protocol_error", "message"), ("remote_system_error", "destination")]
    assert items[3].classification.action == "suppress"
    assert items[-1].unsolicited


def test_python_reference_reads_lines(classifier_impl: ModuleType) -> None:
    # The pure-Python matcher reads Reply.lines, the compiled one Reply.raw: a
    # hand-made reply of the pure parser must give the same on both.
    reply = _parser_py.Reply(550, [b"5.1.1 user", b"5.1.1 unknown"])
    assert Classifier(matcher=classifier_impl.Matcher).classify(reply).category == (
        "invalid_recipient")


def test_module_examples_run() -> None:
    import doctest

    from fastreply import classification

    result = doctest.testmod(classification)
    assert result.attempted >= 10 and result.failed == 0
