"""`/care next`: claim the most urgent unclaimed case in the person's departments.

Order: priority (urgent, high, normal, low), then the SLA due time (cases with none
last), then age (oldest mention first). The pick and the claim happen in one write
transaction (SQLite's BEGIN IMMEDIATE, PostgreSQL's write lock), so two people pressing
"next" at the same moment always get different cases.
"""

from __future__ import annotations

from datetime import datetime

from bot.models import Actor, Case
from bot.service import CareService
from bot.workflow import Action, Role, authorize, role_of

PRIORITY_RANK = (
    "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END"
)
# Ties broken by the case number: the order is total, so tests and people can rely on it.
NEXT_ORDER = f"{PRIORITY_RANK}, sla_due_at IS NULL, sla_due_at, mention_at, id"
# Candidates read per pick; more than one only so a case the actor may not claim is skipped.
_CANDIDATES = 20


def claim_next(service: CareService, actor: Actor) -> Case | None:
    """Claim and return the next case for `actor`; None when nothing is waiting.

    Refused (and audited as `next`) for someone with no department.
    """
    departments = service.departments_of(actor, "next")
    marks = ", ".join("?" for _ in departments)
    now: datetime = service.clock.now()
    with service.store.write() as db:
        service._mark_delivered(db, now)
        rows = db.execute(
            f"SELECT id FROM cases WHERE state = 'new' AND department IN ({marks})"
            f" AND publish_uncertain_since IS NULL ORDER BY {NEXT_ORDER} LIMIT {_CANDIDATES}",
            departments,
        ).fetchall()
        for (case_id,) in rows:
            case = service._load(db, int(case_id))
            if role_of(service.config, actor, case.department) < Role.MEMBER:
                continue
            authorize(service.config, actor, Action.CLAIM, case.department)
            return service._claim_in(db, case, actor, now)
    return None


def next_answer(service: CareService, actor: Actor) -> tuple[str, int | None]:
    """The words `/care next` answers with, and the case it claimed."""
    case = claim_next(service, actor)
    if case is None:
        names = ", ".join(
            (d.name if (d := service.config.department(i)) else i)
            for i in service.departments_of(actor, "next")
        )
        return f"Nothing waiting: no unclaimed open case in {names}.", None
    view = service.view(case.id)
    due = ""
    if case.sla_due_at is not None:
        local = case.sla_due_at.astimezone(service.config.tz)
        due = f", first reply due {local:%a %H:%M}"
    words = " ".join(view.text.split())
    quoted = words if len(words) <= 200 else words[:199] + "…"
    return (
        f"You claimed case #{case.id} ({case.priority.value} priority, {case.intent.value}"
        f"{due}) from @{view.author.handle}: {quoted}",
        case.id,
    )
