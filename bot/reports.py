"""KPIs over the store: pure queries, shared by `/care stats`, `socialcare report` and digests.

Definitions (also in the README):
- first-response time: first published reply minus the mention's time;
- response rate: cases replied to / cases that needed a reply.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from bot.store import Store


@dataclass(frozen=True)
class Kpis:
    department: str
    received: int
    needs_reply: int
    replied: int
    dismissed: int
    open: int
    median_first_response_s: float | None
    p90_first_response_s: float | None
    by_intent: dict[str, int] = field(default_factory=dict)
    by_sentiment: dict[str, int] = field(default_factory=dict)

    @property
    def response_rate(self) -> float | None:
        return self.replied / self.needs_reply if self.needs_reply else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def kpis(store: Store, *, since: datetime, until: datetime, department: str | None = None) -> Kpis:
    """KPIs of the cases whose mention arrived in [since, until)."""
    where = "mention_at >= ? AND mention_at < ?"
    params: list[object] = [since.isoformat(), until.isoformat()]
    if department:
        where += " AND department = ?"
        params.append(department)
    rows = store.query(f"SELECT * FROM cases WHERE {where}", params)
    durations = sorted(
        (
            datetime.fromisoformat(r["first_response_at"]) - datetime.fromisoformat(r["mention_at"])
        ).total_seconds()
        for r in rows
        if r["first_response_at"]
    )
    by_intent: dict[str, int] = {}
    by_sentiment: dict[str, int] = {}
    for row in rows:
        by_intent[row["intent"]] = by_intent.get(row["intent"], 0) + 1
        by_sentiment[row["sentiment"]] = by_sentiment.get(row["sentiment"], 0) + 1
    return Kpis(
        department=department or "all",
        received=len(rows),
        needs_reply=sum(1 for r in rows if r["needs_reply"]),
        replied=sum(1 for r in rows if r["needs_reply"] and r["state"] == "published"),
        dismissed=sum(1 for r in rows if r["state"] == "dismissed"),
        open=sum(1 for r in rows if r["state"] not in {"published", "dismissed"}),
        median_first_response_s=statistics.median(durations) if durations else None,
        p90_first_response_s=_percentile(durations, 90),
        by_intent=by_intent,
        by_sentiment=by_sentiment,
    )


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
