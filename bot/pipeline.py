"""The ingest pipeline: normalise -> dedupe by (network, id) -> classify -> route -> case,
with conversations joined and near-duplicates grouped, in one transaction per batch."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlite_utils import Database

from bot import audit, desk, outbox
from bot.cards import queue_card
from bot.classify import Classifier
from bot.config import Config
from bot.models import Classification, Mention, Priority
from bot.ports import Clock
from bot.routing import route
from bot.sla import BusinessCalendar, first_response_due
from bot.store import Store

T = TypeVar("T")

# Near-duplicates (retweet storms, copy-paste campaigns) arriving within this window are
# grouped on the first one's card while it is still unclaimed. Per network: a card's reply,
# hide and private reply act on its own network's post, and its copies are listed by handle.
GROUP_WINDOW = timedelta(minutes=30)
_HANDLE_OR_URL = re.compile(r"^rt\s+@\w+:?|@\w+|https?://\S+|[^\w\s]", re.UNICODE)


def fingerprint(text: str) -> str | None:
    """What two posts share when one is a copy of the other; None if too short to tell."""
    words = _HANDLE_OR_URL.sub(" ", text.lower()).split()
    joined = " ".join(words)
    return joined if len(words) >= 3 and len(joined) >= 12 else None


@dataclass
class IngestStats:
    created: int = 0
    joined: int = 0
    duplicates: int = 0
    case_ids: list[int] = field(default_factory=list)


class IngestPipeline:
    """Stores mentions as cases, each with its card queued (and its AI reading if on)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock,
        classifier: Classifier,
        calendar: BusinessCalendar,
        ai_enabled: bool,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.classifier = classifier
        self.calendar = calendar
        self.ai_enabled = ai_enabled

    def read(self, mention: Mention) -> tuple[Classification, str, str]:
        """Classify and route without storing anything: (reading, department, reason)."""
        reading = desk.with_vip(self.config, mention, self.classifier.classify(mention))
        where = route(self.config, mention, reading)
        return reading, where.department, where.reason

    def ingest(self, mention: Mention) -> IngestStats:
        return self.ingest_many([mention])

    def ingest_many(self, mentions: Iterable[Mention], *, batch_size: int = 200) -> IngestStats:
        """Store each mention once, as a new case or joined to its open conversation.

        Idempotent by (network, id). Each batch commits as one transaction, so a crash
        loses at most the batch in progress, which the next run ingests again.
        """
        stats = IngestStats()
        for batch in _chunks(mentions, batch_size):
            self._ingest_batch(batch, stats)
        return stats

    def _ingest_batch(self, batch: list[Mention], stats: IngestStats) -> None:
        keys = {(m.network, m.id) for m in batch}
        known = self._known_mentions(keys)
        fresh: list[Mention] = []
        for mention in batch:
            key = (mention.network, mention.id)
            if key in known:
                stats.duplicates += 1
                continue
            known.add(key)
            fresh.append(mention)
        # Classify outside the write lock: it is the slow part and needs no database.
        readings = [(m, *self.read(m)) for m in fresh]
        now = self.clock.now()
        with self.store.write() as db:
            for mention, reading, department, reason in readings:
                if db.execute(
                    "SELECT 1 FROM mentions WHERE network = ? AND id = ?",
                    (mention.network, mention.id),
                ).fetchone():
                    stats.duplicates += 1  # another process stored it meanwhile
                    continue
                self._upsert_author(db, mention, now)
                joined = self._open_conversation_case(db, mention)
                if joined is not None:
                    self._join(db, joined, mention, now)
                    desk.tag_joined(db, self.config, joined, mention, reading, now)
                    stats.joined += 1
                    stats.case_ids.append(joined)
                else:
                    case_id = self._create_case(db, mention, reading, department, reason, now)
                    stats.created += 1
                    stats.case_ids.append(case_id)

    def _known_mentions(self, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
        known: set[tuple[str, str]] = set()
        by_network: dict[str, list[str]] = {}
        for network, mention_id in keys:
            by_network.setdefault(network, []).append(mention_id)
        for network, ids in by_network.items():
            marks = ",".join("?" for _ in ids)
            for row in self.store.db.execute(
                f"SELECT id FROM mentions WHERE network = ? AND id IN ({marks})", [network, *ids]
            ):
                known.add((network, row[0]))
        return known

    @staticmethod
    def _upsert_author(db: Database, mention: Mention, now: datetime) -> None:
        db.execute(
            """
            INSERT INTO authors
                (network, id, handle, name, followers, verified, first_seen, last_seen)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (network, id) DO UPDATE SET
                handle = excluded.handle, name = excluded.name,
                followers = coalesce(excluded.followers, authors.followers),
                verified = excluded.verified, last_seen = excluded.last_seen
            """,
            (
                mention.network,
                mention.author_id,
                mention.author_handle,
                mention.author_name,
                mention.author_followers,
                int(mention.author_verified),
                now.isoformat(),
                now.isoformat(),
            ),
        )

    @staticmethod
    def _open_conversation_case(db: Database, mention: Mention) -> int | None:
        """A reply by the same author in a conversation that already has an open case."""
        if not mention.conversation_id or mention.conversation_id == mention.id:
            return None
        row = db.execute(
            "SELECT id FROM cases WHERE network = ? AND author_id = ? AND conversation_id = ?"
            " AND state NOT IN ('published', 'dismissed') ORDER BY id DESC LIMIT 1",
            (mention.network, mention.author_id, mention.conversation_id),
        ).fetchone()
        return int(row[0]) if row else None

    def _join(self, db: Database, case_id: int, mention: Mention, now: datetime) -> None:
        self._insert_mention(db, mention, case_id, now)
        db.execute(
            "UPDATE cases SET mention_count = mention_count + 1, updated_at = ? WHERE id = ?",
            (now.isoformat(), case_id),
        )
        audit.append(
            db,
            at=now,
            actor="system:socialcare",
            action="mention.joined",
            case_id=case_id,
            detail={"network": mention.network, "mention_id": mention.id},
        )
        queue_card(
            db,
            case_id,
            now,
            note=f"New message from @{mention.author_handle} in this conversation.",
        )

    def _create_case(
        self,
        db: Database,
        mention: Mention,
        reading: Classification,
        department: str,
        reason: str,
        now: datetime,
    ) -> int:
        dept = self.config.department(department) or self.config.default_department
        due = first_response_due(
            self.calendar,
            mention.created_at,
            dept.first_response_minutes,
            urgent=reading.priority is Priority.URGENT,
            urgent_calendar_time=self.config.sla.urgent_calendar_time,
        )
        # A VIP's post neither joins nor leads a copy-paste group: grouped, it would call
        # in no managers and go with the spam on "Dismiss all similar".
        print_ = None if desk.is_vip(self.config.vip, mention) else fingerprint(mention.text)
        leader = None
        if print_ is not None:
            row = db.execute(
                "SELECT id FROM cases WHERE department = ? AND fingerprint = ? AND group_id IS NULL"
                " AND network = ? AND state = 'new' AND created_at >= ? ORDER BY id LIMIT 1",
                (dept.id, print_, mention.network, (now - GROUP_WINDOW).isoformat()),
            ).fetchone()
            leader = int(row[0]) if row else None
        cursor = db.execute(
            """
            INSERT INTO cases (network, mention_id, author_id, conversation_id, department, state,
                intent, sentiment, priority, needs_reply, language, classifier, route_reason,
                mention_at, created_at, updated_at, sla_due_at, fingerprint, group_id)
            VALUES (?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            RETURNING id
            """,
            (
                mention.network,
                mention.id,
                mention.author_id,
                mention.conversation_id or mention.id,
                dept.id,
                reading.intent.value,
                reading.sentiment.value,
                reading.priority.value,
                int(reading.needs_reply),
                reading.language,
                reading.source,
                reason,
                mention.created_at.isoformat(),
                now.isoformat(),
                now.isoformat(),
                due.isoformat() if reading.needs_reply else None,
                print_,
                leader,
            ),
        )
        case_id = int(cursor.fetchone()[0])
        self._insert_mention(db, mention, case_id, now)
        tags = desk.add_tags(
            db, case_id, desk.ingest_tags(self.config, mention, reading), by="rule", now=now
        )
        audit.append(
            db,
            at=now,
            actor="system:socialcare",
            action="case.created",
            case_id=case_id,
            detail={
                "network": mention.network,
                "mention_id": mention.id,
                "department": dept.id,
                "reason": reason,
                "intent": reading.intent.value,
                "priority": reading.priority.value,
                "grouped_with": leader,
                "tags": tags,
            },
        )
        queue_card(db, case_id, now)
        if self.ai_enabled:
            # Its own channel per case: LLM calls for different cases may run in parallel.
            outbox.enqueue(db, kind="ai", now=now, case_id=case_id, channel=f"ai:{case_id}")
        return case_id

    @staticmethod
    def _insert_mention(db: Database, mention: Mention, case_id: int, now: datetime) -> None:
        db.execute(
            """
            INSERT INTO mentions (network, id, author_id, text, created_at, in_reply_to_id,
                conversation_id, url, lang, ingested_at, case_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                mention.network,
                mention.id,
                mention.author_id,
                mention.text,
                mention.created_at.isoformat(),
                mention.in_reply_to_id,
                mention.conversation_id,
                mention.url,
                mention.lang,
                now.isoformat(),
                case_id,
            ),
        )


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
