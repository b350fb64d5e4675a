"""Queueing card posts and thread notes: the one way every use case (ingest, workflow,
follow-up, AI) asks for a case's card to be shown again.

Lives below `service` and `pipeline` so both can use it without importing each other.
"""

from __future__ import annotations

from datetime import datetime

from sqlite_utils import Database

from bot import outbox
from bot.outbox import CARD, NOTE

__all__ = ["CARD", "NOTE", "PUBLISH", "queue_card"]

PUBLISH = "publish"


def queue_card(db: Database, case_id: int, now: datetime, *, note: str | None = None) -> None:
    """Inside a write transaction: re-render the case's card, with an optional thread note.

    A grouped case has no card of its own: its changes refresh its group's card.
    """
    dept, group = db.execute(
        "SELECT department, group_id FROM cases WHERE id = ?", (case_id,)
    ).fetchone()
    card_case = group or case_id
    # One pending card item per case is enough: it renders the latest state when sent.
    outbox.enqueue(db, kind=CARD, now=now, case_id=card_case, channel=dept, unless_pending=True)
    if note:
        text = f"#{case_id}: {note}" if group else note
        outbox.enqueue(
            db, kind=NOTE, now=now, case_id=card_case, channel=dept, payload={"text": text}
        )
