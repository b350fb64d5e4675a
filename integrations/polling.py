"""What every mention source does alike: which of its streams are due, and backing off
a stream that failed (exponentially, capped), reporting the outage once through the
health registry instead of a log line per failed poll."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from bot.health import Health
from bot.ports import Clock

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 900


class PolledStream(Protocol):
    key: str
    next_at: datetime | None
    failures: int


S = TypeVar("S", bound=PolledStream)


def due(streams: Iterable[S], now: datetime) -> list[S]:
    """The streams whose next poll time has come (or that were never polled)."""
    return [s for s in streams if s.next_at is None or s.next_at <= now]


def back_off(
    stream: PolledStream,
    *,
    network: str,
    problem: str,
    poll_seconds: int,
    clock: Clock,
    health: Health | None,
) -> int:
    """Schedule the stream's next poll after a failure; the delay in seconds."""
    stream.failures += 1
    delay = int(min(MAX_BACKOFF_SECONDS, poll_seconds * 2**stream.failures))
    stream.next_at = clock.now() + timedelta(seconds=delay)
    if health is not None:
        # The health registry logs the start and the end of an outage, once each.
        health.failed(network, f"reading {stream.key}: {problem}")
        log.debug("%s: poll failed (%s); retrying in %ss", stream.key, problem, delay)
    else:
        log.warning("%s: poll failed (%s); retrying in %ss", stream.key, problem, delay)
    return delay
