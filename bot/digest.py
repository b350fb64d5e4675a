"""What a daily digest says, computed from the store. Rendering lives with each surface."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import audit, desk
from bot.config import Config
from bot.reports import Kpis, case_rows, kpis_of
from bot.sla import BusinessCalendar
from bot.store import Store

OLDEST_OPEN = 5
TOP_TOPICS = 8
_WORD = re.compile(r"#?[a-z][a-z'-]{2,}")
# Words that say nothing about what people talk about.
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "you",
        "your",
        "with",
        "this",
        "that",
        "have",
        "has",
        "had",
        "not",
        "but",
        "are",
        "was",
        "were",
        "will",
        "would",
        "can",
        "could",
        "just",
        "get",
        "got",
        "what",
        "when",
        "where",
        "why",
        "how",
        "who",
        "all",
        "any",
        "our",
        "out",
        "now",
        "one",
        "two",
        "its",
        "it's",
        "i'm",
        "im",
        "from",
        "they",
        "them",
        "their",
        "there",
        "here",
        "about",
        "been",
        "being",
        "into",
        "than",
        "then",
        "too",
        "very",
        "also",
        "don't",
        "didn't",
        "can't",
        "cannot",
        "won't",
        "yes",
        "please",
        "thanks",
        "thank",
        "still",
        "again",
        "today",
        "today's",
        "amp",
        "http",
        "https",
        "via",
        "rt",
    ]
)


@dataclass(frozen=True)
class CaseLink:
    case_id: int
    department: str
    state: str
    intent: str
    mention_at: str
    text: str
    url: str | None


@dataclass(frozen=True)
class DepartmentFigures:
    department: str
    name: str
    received: int
    needs_reply: int
    replied: int
    dismissed: int
    open: int
    response_rate: float | None
    median_first_response_s: float | None
    p90_first_response_s: float | None
    median_first_response_business_s: float | None
    sla_breaches: int
    by_intent: dict[str, int]
    by_sentiment: dict[str, int]
    by_network: dict[str, int] = field(default_factory=dict)  # absent in older digests

    @classmethod
    def of(cls, k: Kpis, name: str) -> DepartmentFigures:
        return cls(
            department=k.department,
            name=name,
            received=k.received,
            needs_reply=k.needs_reply,
            replied=k.replied,
            dismissed=k.dismissed,
            open=k.open,
            response_rate=k.response_rate,
            median_first_response_s=k.median_first_response_s,
            p90_first_response_s=k.p90_first_response_s,
            median_first_response_business_s=k.median_first_response_business_s,
            sla_breaches=k.sla_breaches,
            by_intent=dict(k.by_intent),
            by_network=dict(k.by_network),
            by_sentiment=dict(k.by_sentiment),
        )


@dataclass(frozen=True)
class Digest:
    """One digest: a department's, or the managers' across all departments (scope "all")."""

    brand: str
    scope: str
    title: str
    since: str
    until: str
    timezone: str
    totals: DepartmentFigures
    departments: list[DepartmentFigures] = field(default_factory=list)
    oldest_open: list[CaseLink] = field(default_factory=list)
    topics: list[tuple[str, int]] = field(default_factory=list)
    suggestions: list[CaseLink] = field(default_factory=list)
    # Per hour of the period, oldest first: mentions received, and the median first
    # response (minutes) of those mentions that got one.
    volume_by_hour: list[int] = field(default_factory=list)
    first_response_by_hour: list[float | None] = field(default_factory=list)
    # The most used tags on the period's cases, most first (absent in older digests).
    top_tags: list[tuple[str, int]] = field(default_factory=list)
    # The managers' digest only: the audit chain's head when it was built, a witness for
    # `socialcare audit verify --expect-head` that lives outside the database.
    audit_head: audit.Head | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Digest:
        def figures(d: dict[str, Any]) -> DepartmentFigures:
            return DepartmentFigures(**d)

        return cls(
            **{
                **data,
                "totals": figures(data["totals"]),
                "departments": [figures(d) for d in data["departments"]],
                "oldest_open": [CaseLink(**c) for c in data["oldest_open"]],
                "suggestions": [CaseLink(**c) for c in data["suggestions"]],
                "topics": [(str(t), int(n)) for t, n in data["topics"]],
                "top_tags": [(str(t), int(n)) for t, n in data.get("top_tags", [])],
                "audit_head": audit.Head(**data["audit_head"]) if data.get("audit_head") else None,
            }
        )


def topics(texts: list[str], *, brand: str, limit: int = TOP_TOPICS) -> list[tuple[str, int]]:
    """The most frequent words and hashtags, minus stop words, handles and the brand."""
    brand_words = {w.lower() for w in re.findall(r"\w+", brand)}
    counts: Counter[str] = Counter()
    for text in texts:
        plain = re.sub(r"@\w+|https?://\S+", " ", text.lower())
        seen = {
            w
            for w in _WORD.findall(plain)
            if w.lstrip("#") not in _STOP and w.lstrip("#") not in brand_words
        }
        counts.update(seen)  # once per mention: a rant repeating a word counts once
    return [(word, n) for word, n in counts.most_common(limit) if n > 1]


def build_digest(
    config: Config, store: Store, *, until: datetime, department: str | None = None
) -> Digest:
    """The digest of the 24 hours before `until`, for one department or for all."""
    until = until.astimezone(UTC)
    since = until - timedelta(hours=24)
    calendar = BusinessCalendar.from_config(config)
    departments = [d for d in config.departments if department in (None, d.id)]
    figures: list[DepartmentFigures] = []
    all_rows: list[dict[str, Any]] = []
    for dept in departments:
        rows = case_rows(store, since=since, until=until, department=dept.id)
        all_rows.extend(rows)
        k = kpis_of(rows, department=dept.id, until=until, calendar=calendar)
        figures.append(DepartmentFigures.of(k, dept.name))
    scope = department or "all"
    totals = DepartmentFigures.of(
        kpis_of(all_rows, department=scope, until=until, calendar=calendar),
        departments[0].name if department else "All departments",
    )
    texts = _texts(store, [r["id"] for r in all_rows])
    oldest = _oldest_open(store, department, until)
    volume = [0] * 24
    responses: list[list[float]] = [[] for _ in range(24)]
    for row in all_rows:
        at = datetime.fromisoformat(row["mention_at"])
        slot = min(23, max(0, int((at - since).total_seconds() // 3600)))
        volume[slot] += 1
        if row["first_response_at"]:
            first = datetime.fromisoformat(row["first_response_at"])
            responses[slot].append((first - at).total_seconds() / 60)
    return Digest(
        brand=config.bot.brand,
        scope=scope,
        title=f"Daily digest: {totals.name}",
        since=since.isoformat(),
        until=until.isoformat(),
        timezone=config.bot.timezone,
        totals=totals,
        departments=figures,
        oldest_open=oldest,
        topics=topics(list(texts.values()), brand=config.bot.brand),
        suggestions=[
            _link(row, texts.get(row["id"], ""), store)
            for row in all_rows
            if row["intent"] == "suggestion"
        ][:10],
        top_tags=desk.top_tags(store, [r["id"] for r in all_rows]),
        volume_by_hour=volume,
        first_response_by_hour=[sorted(r)[len(r) // 2] if r else None for r in responses],
        audit_head=audit.head(store.db) if department is None else None,
    )


def _texts(store: Store, case_ids: list[int]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for start in range(0, len(case_ids), 500):
        chunk = case_ids[start : start + 500]
        marks = ",".join("?" for _ in chunk)
        for row in store.query(
            f"SELECT c.id, m.text FROM cases c JOIN mentions m"
            f" ON m.network = c.network AND m.id = c.mention_id WHERE c.id IN ({marks})",
            chunk,
        ):
            texts[row["id"]] = row["text"]
    return texts


def _link(row: dict[str, Any], text: str, store: Store) -> CaseLink:
    url = store.scalar(
        "SELECT url FROM mentions WHERE network = ? AND id = ?", [row["network"], row["mention_id"]]
    )
    return CaseLink(
        case_id=row["id"],
        department=row["department"],
        state=row["state"],
        intent=row["intent"],
        mention_at=row["mention_at"],
        text=text[:280],
        url=url,
    )


def _oldest_open(store: Store, department: str | None, until: datetime) -> list[CaseLink]:
    where = "c.state NOT IN ('published', 'dismissed') AND c.mention_at < ?"
    params: list[object] = [until.isoformat()]
    if department:
        where += " AND c.department = ?"
        params.append(department)
    rows = store.query(
        f"SELECT c.*, m.text AS text, m.url AS url FROM cases c JOIN mentions m"
        f" ON m.network = c.network AND m.id = c.mention_id WHERE {where}"
        f" ORDER BY c.mention_at LIMIT {OLDEST_OPEN}",
        params,
    )
    return [
        CaseLink(
            case_id=r["id"],
            department=r["department"],
            state=r["state"],
            intent=r["intent"],
            mention_at=r["mention_at"],
            text=r["text"][:280],
            url=r["url"],
        )
        for r in rows
    ]
