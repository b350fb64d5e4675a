"""Durable queue for everything the bot sends out: chat cards, thread notes, replies.

An item is written in the same transaction as the state change that caused it, so a
crash can never lose a card or a publish, nor send one for a change that rolled back.

States: pending -> sending -> done | failed (pending again on a transient error).
`sending` is committed *before* the outside call: after a crash an item found in
`sending` may or may not have gone out, and its worker must reconcile before trying
again. Items are taken oldest first and one at a time per channel, so a channel's
messages keep their order even across an outage.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from bot.ports import Clock
from bot.store import Store

PENDING, SENDING, DONE, FAILED = "pending", "sending", "done", "failed"
CARD, NOTE, NOTIFY, DIGEST = "card", "note", "notify", "digest"
CHAT_KINDS = (CARD, NOTE, NOTIFY, DIGEST)
# settings key: the chat surfaces a running bot serves (JSON list), written at start-up.
SURFACES_KEY = "chat_surfaces"


def chat_surfaces(db: Database) -> list[str | None]:
    """The surfaces a chat item is queued for: one row each when several are on (each
    surface delivers, paces and retries on its own); a single untagged row otherwise."""
    row = db.execute("SELECT value FROM settings WHERE key = ?", (SURFACES_KEY,)).fetchone()
    surfaces = json.loads(row[0]) if row else []
    return list(surfaces) if len(surfaces) > 1 else [None]


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    case_id: int | None
    channel: str | None
    payload: dict[str, Any]
    attempts: int
    created_at: str


def enqueue(
    db: Database,
    *,
    kind: str,
    now: datetime,
    case_id: int | None = None,
    channel: str | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    unless_pending: bool = False,
) -> int | None:
    """Add an item inside the caller's transaction; None if `dedupe_key` was already queued.

    Chat items go once to each surface (see `chat_surfaces`). `unless_pending`: skip a
    surface that already has a pending item of this kind for the case (a card renders the
    case's latest state when sent, so one pending update is enough).
    """
    first: int | None = None
    for surface in chat_surfaces(db) if kind in CHAT_KINDS else [None]:
        if (
            unless_pending
            and db.execute(
                "SELECT 1 FROM outbox WHERE kind = ? AND case_id = ? AND state = 'pending'"
                " AND surface IS NOT DISTINCT FROM ?",
                (kind, case_id, surface),
            ).fetchone()
        ):
            continue
        key = f"{dedupe_key}@{surface}" if dedupe_key and surface else dedupe_key
        row = db.execute(
            "INSERT INTO outbox (kind, case_id, channel, surface, dedupe_key,"
            " payload, next_attempt_at, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
            (
                kind,
                case_id,
                channel,
                surface,
                key,
                json.dumps(payload or {}, ensure_ascii=False),
                now.isoformat(),
                now.isoformat(),
                now.isoformat(),
            ),
        ).fetchone()
        if row is not None and first is None:
            first = int(row[0])
    return first


def backoff_seconds(attempts: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """2, 4, 8, ... seconds, capped: an hour-long outage costs at most `cap` of extra delay."""
    return float(min(cap, base ** max(1, attempts)))


class Outbox:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def claim(
        self,
        kinds: Collection[str],
        *,
        skip_channels: Collection[str] = (),
        surface: str | None = None,
    ) -> OutboxItem | None:
        """Take the oldest due item whose channel has nothing older queued or in flight.

        `surface`: only items queued for that surface (or for any surface).
        """
        now = self.clock.now().isoformat()
        marks = ",".join("?" for _ in kinds)
        mine = "AND (surface = ? OR surface IS NULL)" if surface else ""
        with self.store.write() as db:
            rows = list(
                db.query(
                    f"""
                    SELECT o.* FROM outbox o
                    WHERE o.id IN (
                        SELECT MIN(id) FROM outbox
                        WHERE state IN ('pending', 'sending') AND kind IN ({marks}) {mine}
                        GROUP BY coalesce(surface, ''), coalesce(channel, '')
                    )
                    AND o.state = 'pending' AND o.next_attempt_at <= ?
                    ORDER BY o.id
                    """,
                    [*kinds, *([surface] if surface else []), now],
                )
            )
            row = next((r for r in rows if (r["channel"] or "") not in skip_channels), None)
            if row is None:
                return None
            db.execute(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?"
                " WHERE id = ?",
                (now, row["id"]),
            )
        return OutboxItem(
            id=row["id"],
            kind=row["kind"],
            case_id=row["case_id"],
            channel=row["channel"],
            payload=json.loads(row["payload"]),
            attempts=row["attempts"] + 1,
            created_at=row["created_at"],
        )

    def finish(self, db: Database, item_id: int, result: dict[str, Any] | None = None) -> None:
        """Mark done inside the caller's transaction (with the state change it caused)."""
        db.execute(
            "UPDATE outbox SET state = 'done', result = ?, last_error = NULL, updated_at = ?"
            " WHERE id = ?",
            (json.dumps(result or {}), self.clock.now().isoformat(), item_id),
        )

    def done(self, item_id: int, result: dict[str, Any] | None = None) -> None:
        with self.store.write() as db:
            self.finish(db, item_id, result)

    def retry_later(self, item_id: int, error: str, delay_seconds: float) -> None:
        now = self.clock.now()
        with self.store.write() as db:
            db.execute(
                "UPDATE outbox SET state = 'pending', last_error = ?, next_attempt_at = ?,"
                " updated_at = ? WHERE id = ?",
                (
                    error[:500],
                    (now + timedelta(seconds=delay_seconds)).isoformat(),
                    now.isoformat(),
                    item_id,
                ),
            )

    def fail(self, db: Database, item_id: int, error: str) -> None:
        db.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?, updated_at = ? WHERE id = ?",
            (error[:500], self.clock.now().isoformat(), item_id),
        )

    def release_in_flight(self, kinds: Collection[str]) -> int:
        """At start-up: items left `sending` by a dead process go back to pending.

        Their attempt counter stays, so the worker knows to reconcile first.
        """
        marks = ",".join("?" for _ in kinds)
        with self.store.write() as db:
            cursor = db.execute(
                f"UPDATE outbox SET state = 'pending', updated_at = ?"
                f" WHERE state = 'sending' AND kind IN ({marks})",
                [self.clock.now().isoformat(), *kinds],
            )
            return int(cursor.rowcount)

    def oldest_pending(self, now: datetime) -> dict[str, float]:
        """Seconds the oldest item not yet done has waited, by kind (for /healthz)."""
        rows = self.store.query(
            "SELECT kind, min(created_at) AS oldest FROM outbox"
            " WHERE state IN ('pending', 'sending') GROUP BY kind"
        )
        return {
            row["kind"]: max(0.0, (now - datetime.fromisoformat(row["oldest"])).total_seconds())
            for row in rows
        }

    def depth(self) -> dict[str, int]:
        """Items not yet done, by kind (for /metrics and the demo)."""
        rows = self.store.query(
            "SELECT kind, count(*) AS n FROM outbox WHERE state IN ('pending', 'sending')"
            " GROUP BY kind"
        )
        return {row["kind"]: row["n"] for row in rows}
