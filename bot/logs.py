"""Logging set-up with a filter that blanks every secret value before a record is written."""

from __future__ import annotations

import logging
from collections.abc import Iterable


class RedactSecrets(logging.Filter):
    """Replace known secret values in messages and arguments with [redacted]."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.scrub(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
            elif record.exc_text:
                # Already formatted (by another handler, or another filter of this kind
                # that knew other secrets): scrub the text itself.
                record.exc_text = self.scrub(record.exc_text)
            if record.stack_info:
                record.stack_info = self.scrub(record.stack_info)
        return True


# The SDKs log every failed attempt and retry (slack_sdk at ERROR, once per try), and
# Bolt warns about set-up choices we make on purpose. The bot reports each outage once
# itself (bot.health), so their own lines only show with --debug.
QUIET_LIBRARIES = {
    "slack_sdk": logging.CRITICAL,
    "slack_bolt": logging.ERROR,
    "apscheduler": logging.WARNING,
    "openai": logging.WARNING,
    "httpx": logging.WARNING,
    "httpx2": logging.WARNING,
    "urllib3": logging.WARNING,
    "aiohttp.access": logging.WARNING,
}


def setup_logging(*, level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if level != "DEBUG":
        for name, quiet in QUIET_LIBRARIES.items():
            logging.getLogger(name).setLevel(quiet)
