"""What each part of the bot last did, for `/healthz`, `/metrics` and honest logs.

Every outside dependency (a chat surface, a network, the LLM) reports each call's
outcome here. A dependency that starts failing logs one line; while it keeps failing it
only counts; when it recovers it logs one line with the count and how long it was down.
So an outage of an hour is two log lines, not a traceback per retry.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from bot.ports import Clock

log = logging.getLogger("socialcare.health")

OK, FAILING, UNKNOWN = "ok", "failing", "unknown"


@dataclass
class DependencyState:
    """One dependency's record: a snapshot is a copy, safe to read without the lock."""

    name: str
    critical: bool
    state: str = UNKNOWN
    last_success: datetime | None = None
    last_failure: datetime | None = None
    failing_since: datetime | None = None
    failures: int = 0
    last_error: str | None = None

    def down_for(self, now: datetime) -> float:
        """Seconds since it started failing without a success since (0 when not failing)."""
        if self.state != FAILING or self.failing_since is None:
            return 0.0
        return (now - self.failing_since).total_seconds()

    def as_json(self, now: datetime) -> dict[str, object]:
        return {
            "state": self.state,
            "critical": self.critical,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_failure": self.last_failure.isoformat() if self.last_failure else None,
            "failing_for_seconds": round(self.down_for(now)) if self.state == FAILING else None,
            "failures": self.failures,
            "last_error": self.last_error,
        }


class Health:
    """Thread-safe registry of dependencies. `critical` ones make `/healthz` answer 503
    after failing for longer than the configured time (a chat surface, the publisher);
    the others (the LLM: there is an offline fallback) are reported only."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._deps: dict[str, DependencyState] = {}

    def track(self, name: str, *, critical: bool) -> None:
        with self._lock:
            self._deps.setdefault(name, DependencyState(name, critical))

    def ok(self, name: str) -> None:
        now = self.clock.now()
        with self._lock:
            dep = self._deps.setdefault(name, DependencyState(name, critical=False))
            if dep.state == FAILING and dep.failing_since is not None:
                down = (now - dep.failing_since).total_seconds()
                log.warning(
                    "%s recovered after %d failed call(s) over %s",
                    name,
                    dep.failures,
                    _seconds(down),
                )
            dep.state, dep.last_success = OK, now
            dep.failing_since, dep.failures, dep.last_error = None, 0, None

    def failed(self, name: str, error: str) -> None:
        now = self.clock.now()
        with self._lock:
            dep = self._deps.setdefault(name, DependencyState(name, critical=False))
            if dep.state != FAILING:
                log.warning("%s is failing: %s (retrying with back-off)", name, error)
                dep.failing_since = now
            dep.state, dep.last_failure, dep.last_error = FAILING, now, error
            dep.failures += 1

    def answered(self, name: str, error: str, *, outage: bool) -> None:
        """A call that raised: an outage counts against the dependency; a refusal of one
        item (a message, a reply) is still an answer, so the dependency is up."""
        if outage:
            self.failed(name, error)
        else:
            self.ok(name)

    def snapshot(self) -> list[DependencyState]:
        with self._lock:
            return [DependencyState(**vars(d)) for d in self._deps.values()]


def _seconds(value: float) -> str:
    value = max(0, round(value))
    if value < 120:
        return f"{value} s"
    if value < 7200:
        return f"{value // 60} min"
    return f"{value // 3600} h {value % 3600 // 60} min"
