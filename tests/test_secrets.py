"""Secrets never reach logs, even inside exceptions."""

from __future__ import annotations

import logging

from bot.logs import RedactSecrets

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
