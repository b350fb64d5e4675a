"""Stale claims: a claim with no draft is a promise nobody is keeping.

After `stale_claim_minutes` (per department) with no draft on the case, the claimant
gets a private reminder; as long again after that reminder, the case goes back to the
queue (unclaimed, `new`) with a note in the card's thread and an audit entry. The SLA due
time is not touched: the customer's wait did not restart. A draft ends it; a new
claim starts a fresh cycle (the events are keyed by the claim's start time), and each
reminder and release is recorded with the message it queues, in one transaction, so a
restart or a second tick never repeats one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot import audit, outbox
from bot.models import CaseState
from bot.service import SYSTEM_ACTOR, CareService
from bot.workflow import Action

REMINDER = "reminder"
RELEASE = "release"

_STALE = (
    "SELECT c.id, c.department, c.claimed_by, c.claimed_at FROM cases c"
    " WHERE c.state = 'claimed' AND c.claimed_by IS NOT NULL AND c.claimed_at IS NOT NULL"
    " AND c.claimed_at <= ?"
    # Any draft on the case ends it, not only one written since the claim: a case
    # reassigned with its draft (or a claim migration 0014 dated after its draft) has
    # words on the card, and taking it away "with no draft" would be false.
    " AND NOT EXISTS (SELECT 1 FROM drafts d WHERE d.case_id = c.id)"
)


class StaleClaims:
    def __init__(self, service: CareService) -> None:
        self.service = service
        self.config = service.config

    def minutes(self, department: str) -> int:
        dept = self.config.department(department)
        return (
            dept.stale_claim_minutes if dept else self.config.default_department.stale_claim_minutes
        )

    def check(self, now: datetime) -> dict[str, int]:
        """Remind and release what is due now; the counts of each."""
        shortest = min(d.stale_claim_minutes for d in self.config.departments)
        rows = self.service.store.query(_STALE, [(now - timedelta(minutes=shortest)).isoformat()])
        done = {REMINDER: 0, RELEASE: 0}
        for row in rows:
            wait = timedelta(minutes=self.minutes(row["department"]))
            claimed_at = datetime.fromisoformat(row["claimed_at"])
            reminded = self.service.store.scalar(
                "SELECT at FROM claim_events WHERE case_id = ? AND claimed_at = ? AND kind = ?",
                [row["id"], row["claimed_at"], REMINDER],
            )
            if reminded is None:
                if now >= claimed_at + wait:
                    done[REMINDER] += self._remind(row, wait, now)
            elif now >= datetime.fromisoformat(reminded) + wait:
                done[RELEASE] += self._release(row, wait, now)
        return done

    def _still_stale(self, db: Any, row: dict[str, Any]) -> bool:
        """Under the write lock: the same claim, still without a draft."""
        return bool(
            db.execute(
                _STALE + " AND c.id = ? AND c.claimed_at = ?",
                (row["claimed_at"], row["id"], row["claimed_at"]),
            ).fetchone()
        )

    def _record(self, db: Any, row: dict[str, Any], kind: str, now: datetime) -> bool:
        return bool(
            db.execute(
                "INSERT INTO claim_events (case_id, claimed_at, kind, at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (row["id"], row["claimed_at"], kind, now.isoformat()),
            ).rowcount
        )

    def _remind(self, row: dict[str, Any], wait: timedelta, now: datetime) -> int:
        minutes = int(wait.total_seconds() // 60)
        release_at = (now + wait).astimezone(self.config.tz)
        text = (
            f"Reminder: you claimed case #{row['id']} {minutes} minutes ago and it has no"
            f" draft yet. Write one, or it goes back to the queue at {release_at:%H:%M}."
        )
        with self.service.store.write() as db:
            if not self._still_stale(db, row) or not self._record(db, row, REMINDER, now):
                return 0
            _tell(db, now, row, text)
            audit.append(
                db,
                at=now,
                actor="system:socialcare",
                action="claim.stale_reminder",
                case_id=row["id"],
                detail={"claimed_by": row["claimed_by"], "claimed_at": row["claimed_at"]},
            )
        return 1

    def _release(self, row: dict[str, Any], wait: timedelta, now: datetime) -> int:
        held = int((now - datetime.fromisoformat(row["claimed_at"])).total_seconds() // 60)
        who = f"<@{row['claimed_by']}>"
        note = (
            f"Back in the queue: claimed by {who} {held} minutes ago with no draft."
            " Anyone in the department can claim it now."
        )
        with self.service.store.write() as db:
            if not self._still_stale(db, row) or not self._record(db, row, RELEASE, now):
                return 0
            case = self.service._load(db, int(row["id"]))
            if case.state is not CaseState.CLAIMED:
                return 0
            self.service._transition(
                db,
                case,
                SYSTEM_ACTOR,
                Action.RELEASE,
                now,
                sets={"claimed_by": None, "claimed_at": None},
                detail={
                    "claimed_by": row["claimed_by"],
                    "claimed_at": row["claimed_at"],
                    "reason": "stale claim",
                },
                note=note,
            )
            _tell(
                db,
                now,
                row,
                f"Case #{row['id']} went back to the queue: it had no draft"
                f" {held} minutes after you claimed it.",
            )
        return 1


def _tell(db: Any, now: datetime, row: dict[str, Any], text: str) -> None:
    """A private message to the claimant (the surface's 1:1 / DM), like SLA reminders."""
    outbox.enqueue(
        db,
        kind=outbox.NOTIFY,
        now=now,
        case_id=row["id"],
        channel=f"user:{row['claimed_by']}",
        payload={"text": text},
    )
