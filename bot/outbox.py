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
import logging
import os
import socket
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from bot.ports import Clock
from bot.store import Store

PENDING, SENDING, DONE, FAILED = "pending", "sending", "done", "failed"
CARD, NOTE, NOTIFY, DIGEST = "card", "note", "notify", "digest"
CHAT_KINDS = (CARD, NOTE, NOTIFY, DIGEST)
META_DELIVERY = "meta_delivery"  # a signed Meta webhook delivery, stored before its ack
# settings key: the chat surfaces a running bot serves (JSON list), written at start-up.
SURFACES_KEY = "chat_surfaces"
# An item this process may still settle: in flight and leased to it (or to nobody, as
# after `release_in_flight` on a single-process database).
_HELD = "state = 'sending' AND (claimed_by = ? OR claimed_by IS NULL)"

log = logging.getLogger(__name__)


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


def process_name() -> str:
    """This process, as lease holders are named: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Outbox:
    """The queue. An item taken is leased to this process (`owner`) for `lease_seconds`,
    renewed while the work runs (`renew`); with several processes on one database, only
    an expired lease is taken over, so a living process's work is never done twice."""

    def __init__(
        self, store: Store, clock: Clock, *, owner: str | None = None, lease_seconds: float = 30
    ) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner or process_name()
        self.lease = timedelta(seconds=lease_seconds)

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
            self._take_over_expired(db, kinds, now)
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
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?,"
                " claimed_by = ?, lease_until = ? WHERE id = ?",
                (now, self.owner, self._lease_end(), row["id"]),
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

    @contextmanager
    def released_on_error(self, item: OutboxItem) -> Iterator[None]:
        """A bug or a surprise answer must not leave an item `sending` (blocking its
        channel, or never done under a lease this living process keeps renewing): it goes
        back to the queue with back-off, and the error is logged for a person."""
        try:
            yield
        except Exception as exc:
            log.exception("unexpected error on %s #%s; it will be retried", item.kind, item.id)
            self.retry_later(
                item.id,
                f"unexpected: {exc.__class__.__name__}: {exc}",
                backoff_seconds(item.attempts),
            )

    def done(self, item_id: int, result: dict[str, Any] | None = None) -> None:
        with self.store.write() as db:
            self.finish(db, item_id, result)

    def retry_later(self, item_id: int, error: str, delay_seconds: float) -> bool:
        """Back to the queue after `delay_seconds`. False (and nothing changed) when this
        process no longer holds the item: its lease lapsed and another process took it
        over (and may have finished it), so putting it back would send it twice."""
        with self.store.write() as db:
            return self.requeue(db, item_id, error, delay_seconds)

    def requeue(self, db: Database, item_id: int, error: str, delay_seconds: float) -> bool:
        """`retry_later` inside the caller's transaction."""
        now = self.clock.now()
        cursor = db.execute(
            "UPDATE outbox SET state = 'pending', last_error = ?, next_attempt_at = ?,"
            f" updated_at = ? WHERE id = ? AND {_HELD}",
            (
                error[:500],
                (now + timedelta(seconds=delay_seconds)).isoformat(),
                now.isoformat(),
                item_id,
                self.owner,
            ),
        )
        return self._held(cursor.rowcount, item_id)

    def fail(self, db: Database, item_id: int, error: str) -> bool:
        """Give up on the item, inside the caller's transaction; False as `retry_later`."""
        cursor = db.execute(
            f"UPDATE outbox SET state = 'failed', last_error = ?, updated_at = ?"
            f" WHERE id = ? AND {_HELD}",
            (error[:500], self.clock.now().isoformat(), item_id, self.owner),
        )
        return self._held(cursor.rowcount, item_id)

    def holds(self, db: Database, item_id: int) -> bool:
        """Whether this process still holds the item (its lease was not taken over)."""
        row = db.execute(f"SELECT 1 FROM outbox WHERE id = ? AND {_HELD}", (item_id, self.owner))
        return self._held(1 if row.fetchone() else 0, item_id)

    @staticmethod
    def _held(rowcount: int, item_id: int) -> bool:
        if rowcount:
            return True
        log.warning("outbox #%s was taken over by another process; leaving it to that one", item_id)
        return False

    def release_in_flight(self, kinds: Collection[str]) -> int:
        """At start-up: items left `sending` by a dead process go back to pending.

        With one process per database (SQLite) that is every item in flight; with
        several, only those whose lease expired (another process may be sending the
        rest right now). Their attempt counter stays, so the worker reconciles first.
        """
        now = self.clock.now().isoformat()
        with self.store.write() as db:
            if not self.store.single_process:
                return self._take_over_expired(db, kinds, now)
            marks = ",".join("?" for _ in kinds)
            cursor = db.execute(
                f"UPDATE outbox SET state = 'pending', updated_at = ?, claimed_by = NULL"
                f" WHERE state = 'sending' AND kind IN ({marks})",
                [now, *kinds],
            )
            return int(cursor.rowcount)

    def _lease_end(self) -> str:
        return (self.clock.now() + self.lease).isoformat()

    @staticmethod
    def _take_over_expired(db: Database, kinds: Collection[str], now: str) -> int:
        """Items whose holder stopped renewing (it died) go back to the queue."""
        marks = ",".join("?" for _ in kinds)
        cursor = db.execute(
            f"UPDATE outbox SET state = 'pending', updated_at = ?, claimed_by = NULL"
            f" WHERE state = 'sending' AND lease_until < ? AND kind IN ({marks})",
            [now, now, *kinds],
        )
        return int(cursor.rowcount)

    def renew(self) -> int:
        """Extend the leases of everything this process is sending (called periodically)."""
        with self.store.write() as db:
            cursor = db.execute(
                "UPDATE outbox SET lease_until = ? WHERE state = 'sending' AND claimed_by = ?",
                (self._lease_end(), self.owner),
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
