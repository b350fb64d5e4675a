"""Secrets never reach logs, even inside exceptions."""

from __future__ import annotations

import logging

from bot.logs import RedactSecrets
from tests import test_slack

FAKE_TOKEN = "xoxb-test-0000-not-a-real-token"


def test_secret_values_are_scrubbed_from_messages_args_and_tracebacks(caplog) -> None:  # type: ignore[no-untyped-def]
    logger = logging.getLogger("socialcare.test")
    redact = RedactSecrets([FAKE_TOKEN, ""])
    caplog.handler.addFilter(redact)
    logger.warning("posting with %s", FAKE_TOKEN)
    try:
        raise RuntimeError(f"auth failed for token {FAKE_TOKEN}")
    except RuntimeError:
        logger.exception("Slack said no")
    text = caplog.text
    assert FAKE_TOKEN not in text
    assert text.count("[redacted]") >= 2
    assert "Slack said no" in text and "RuntimeError" in text


def test_a_traceback_another_filter_already_formatted_is_scrubbed_too(caplog) -> None:  # type: ignore[no-untyped-def]
    """Two filters (another handler's secrets first): each blanks what it knows."""
    logger = logging.getLogger("socialcare.test.two")
    caplog.handler.addFilter(RedactSecrets(["some-other-secret"]))
    caplog.handler.addFilter(RedactSecrets([FAKE_TOKEN]))
    try:
        raise RuntimeError(f"auth failed for token {FAKE_TOKEN} and some-other-secret")
    except RuntimeError:
        logger.exception("Slack said no")
    assert FAKE_TOKEN not in caplog.text and "some-other-secret" not in caplog.text
    assert caplog.text.count("[redacted]") >= 2


slack_harness = test_slack.harness  # the Slack end-to-end fixture, shared


def test_tokens_never_reach_logs_or_message_bodies(slack_harness, caplog) -> None:  # type: ignore[no-untyped-def]
    """A whole Slack flow: the bot token appears only in Authorization headers."""
    from tests.test_slack import REPLY, SECRET, TOKEN, wait_until

    harness = slack_harness
    caplog.set_level(logging.DEBUG)
    case_id = harness.ingest()
    harness.deliver()
    harness.click("U0AGENT1", "claim", str(case_id))
    harness.click("U0MKT1", "approve", "not json")  # a refusal, logged and shown
    answer = harness.ask("U0AGENT1", f"reply {case_id} {REPLY}")
    assert TOKEN not in repr(answer) and SECRET not in repr(answer)
    wait_until(lambda: len(harness.fake.calls_to("chat.postEphemeral")) >= 1)
    harness.deliver()
    assert len(harness.fake.calls) >= 4
    for call in harness.fake.calls:
        body = repr(call.params)
        assert TOKEN not in body and SECRET not in body, call.method
        headers = {k: v for k, v in call.headers.items() if k != "authorization"}
        assert TOKEN not in repr(headers)
    assert TOKEN not in caplog.text and SECRET not in caplog.text
    audit = repr(harness.service.store.query("SELECT * FROM audit"))
    assert TOKEN not in audit and SECRET not in audit
