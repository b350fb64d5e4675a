"""Queueing card posts and thread notes: the one way every use case (ingest, workflow,
follow-up, AI) asks for a case's card to be shown again.

Lives below `service` and `pipeline` so both can use it without importing each other.
"""

from __future__ import annotations

from datetime import datetime

from sqlite_utils import Database

from bot import outbox

CARD, NOTE, PUBLISH = "card", "note", "publish"


def queue_card(db: Database, case_id: int, now: datetime, *, note: str | None = None) -> None:
    """Inside a write transaction: re-render the case's card, with an optional thread note.

    A grouped case has no card of its own: its changes refresh its group's card.
    """
    dept, group = db.execute(
        "SELECT department, group_id FROM cases WHERE id = ?", (case_id,)
    ).fetchone()
    card_case = group or case_id
    # One pending card item per case is enough: it renders the latest state when sent.
    pending = db.execute(
        "SELECT 1 FROM outbox WHERE kind = 'card' AND case_id = ? AND state = 'pending'",
        (card_case,),
    ).fetchone()
    if not pending:
        outbox.enqueue(db, kind=CARD, now=now, case_id=card_case, channel=dept)
    if note:
        text = f"#{case_id}: {note}" if group else note
        outbox.enqueue(
            db, kind=NOTE, now=now, case_id=card_case, channel=dept, payload={"text": text}
        )
