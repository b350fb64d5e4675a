"""KPIs over the store: pure queries, shared by `/care stats`, `socialcare report` and digests.

Definitions (also in the README):
- first-response time (FRT): the first published reply minus the mention's time, in
  calendar seconds and in business seconds (only time inside [sla] business hours);
- response rate: cases replied to / cases that needed a reply;
- SLA breach: a case that needed a reply and got its first reply after its due time,
  or has none yet and the due time has passed by the end of the period.
Cases count in the period their mention arrived in.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.sla import BusinessCalendar, business_seconds_between
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
    median_first_response_business_s: float | None = None
    sla_breaches: int = 0
    by_intent: dict[str, int] = field(default_factory=dict)
    by_network: dict[str, int] = field(default_factory=dict)
    by_sentiment: dict[str, int] = field(default_factory=dict)

    @property
    def response_rate(self) -> float | None:
        return self.replied / self.needs_reply if self.needs_reply else None


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def case_rows(
    store: Store,
    *,
    since: datetime,
    until: datetime,
    department: str | None = None,
    departments: Collection[str] | None = None,
    network: str | None = None,
    tag: str | None = None,
) -> list[dict[str, Any]]:
    """Cases whose mention arrived in [since, until): one department, several, or all;
    one network or all; with one tag or any."""
    # Stored times are UTC ISO strings: compare like with like.
    where = "mention_at >= ? AND mention_at < ?"
    params: list[object] = [since.astimezone(UTC).isoformat(), until.astimezone(UTC).isoformat()]
    wanted = [department] if department else departments
    if wanted is not None:
        where += f" AND department IN ({', '.join('?' for _ in wanted) or 'NULL'})"
        params.extend(wanted)
    if network:
        where += " AND network = ?"
        params.append(network)
    if tag:
        where += " AND id IN (SELECT case_id FROM case_tags WHERE tag = ?)"
        params.append(tag)
    return store.query(f"SELECT * FROM cases WHERE {where} ORDER BY id", params)


def kpis_of(
    rows: list[dict[str, Any]],
    *,
    department: str,
    until: datetime,
    calendar: BusinessCalendar | None = None,
) -> Kpis:
    calendar_s: list[float] = []
    business_s: list[float] = []
    breaches = 0
    by_intent: dict[str, int] = {}
    by_network: dict[str, int] = {}
    by_sentiment: dict[str, int] = {}
    for row in rows:
        by_intent[row["intent"]] = by_intent.get(row["intent"], 0) + 1
        by_network[row["network"]] = by_network.get(row["network"], 0) + 1
        by_sentiment[row["sentiment"]] = by_sentiment.get(row["sentiment"], 0) + 1
        mention_at = datetime.fromisoformat(row["mention_at"])
        first = (
            datetime.fromisoformat(row["first_response_at"]) if row["first_response_at"] else None
        )
        if first is not None:
            calendar_s.append((first - mention_at).total_seconds())
            if calendar is not None:
                business_s.append(business_seconds_between(calendar, mention_at, first))
        due = datetime.fromisoformat(row["sla_due_at"]) if row["sla_due_at"] else None
        late = row["needs_reply"] and due is not None and (first or until) > due
        # A case dismissed unanswered needed no reply after all: not a breach.
        if late and (first is not None or row["state"] != "dismissed"):
            breaches += 1
    return Kpis(
        department=department,
        received=len(rows),
        needs_reply=sum(1 for r in rows if r["needs_reply"]),
        replied=sum(1 for r in rows if r["needs_reply"] and r["first_response_at"]),
        dismissed=sum(1 for r in rows if r["state"] == "dismissed"),
        open=sum(1 for r in rows if r["state"] not in {"published", "dismissed"}),
        median_first_response_s=statistics.median(calendar_s) if calendar_s else None,
        p90_first_response_s=percentile(calendar_s, 90),
        median_first_response_business_s=statistics.median(business_s) if business_s else None,
        sla_breaches=breaches,
        by_intent=by_intent,
        by_network=by_network,
        by_sentiment=by_sentiment,
    )


def kpis(
    store: Store,
    *,
    since: datetime,
    until: datetime,
    department: str | None = None,
    departments: Collection[str] | None = None,
    network: str | None = None,
    calendar: BusinessCalendar | None = None,
    tag: str | None = None,
) -> Kpis:
    """KPIs of the cases whose mention arrived in [since, until)."""
    rows = case_rows(
        store,
        since=since,
        until=until,
        department=department,
        departments=departments,
        network=network,
        tag=tag,
    )
    return kpis_of(rows, department=department or "all", until=until, calendar=calendar)


def format_duration(seconds: float | None) -> str:
    """42 min, 3 h 05 min, 4 d 2 h (from 48 hours on); n/a for None."""
    if seconds is None:
        return "n/a"
    minutes = round(abs(seconds) / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def tags_in_period(store: Store, *, since: datetime, until: datetime) -> list[str]:
    """The tags on cases whose mention arrived in [since, until), by name."""
    rows = store.query(
        "SELECT DISTINCT t.tag FROM case_tags t JOIN cases c ON c.id = t.case_id"
        " WHERE c.mention_at >= ? AND c.mention_at < ? ORDER BY t.tag",
        [since.astimezone(UTC).isoformat(), until.astimezone(UTC).isoformat()],
    )
    return [str(row["tag"]) for row in rows]
