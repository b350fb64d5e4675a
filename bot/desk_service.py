"""Care-desk use cases on top of CareService: saved replies and tags. Each runs through
the service's own `_act` (one transaction, refusals audited) and `set_draft`/`submit`, so
a saved reply is checked and approved like any draft."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from bot import audit, desk
from bot.cards import queue_card
from bot.errors import NotAllowed, Refusal
from bot.models import Actor, Case
from bot.service import CareService
from bot.workflow import Action, Role, authorize, role_of

TAG_ACTION = "tag"


def use_saved_reply(
    service: CareService,
    actor: Actor,
    ref: str | int,
    reply_id: str,
    *,
    private: bool | None = None,
) -> Case:
    """Make the saved reply, its variables filled for this case and person, the draft
    (`private`: as a private reply; None keeps the draft's kind)."""
    reply_id = reply_id.strip().lstrip(":")

    def fill(db: Database, case: Case, now: datetime) -> str:
        authorize(service.config, actor, Action.DRAFT, case.department)
        reply = desk.saved_reply(service.config, reply_id)
        if reply is None:
            raise Refusal(
                f"There is no saved reply :{reply_id[:40]};"
                f" `{service.config.bot.slash_command} saved` lists them.",
                code="unknown_saved_reply",
            )
        if reply.departments and case.department not in reply.departments:
            raise Refusal(
                f"The saved reply :{reply.id} is not for {case.department} cases"
                f" (it is for {', '.join(reply.departments)}).",
                code="not_for_department",
            )
        handle, name = db.execute(
            "SELECT handle, name FROM authors WHERE network = ? AND id = ?",
            (case.network, case.author_id),
        ).fetchone()
        values = desk.saved_reply_values(
            service.config,
            case_id=case.id,
            handle=handle,
            author_name=name,
            actor=actor,
            network=case.network,
        )
        return desk.fill(reply.text, values)

    text = service._act(actor, "draft", ref, fill)
    return service.set_draft(actor, ref, text, source=f"saved:{reply_id}", private=private)


def reply_with_saved(
    service: CareService, actor: Actor, ref: str | int, reply_id: str, *, private: bool = False
) -> Case:
    """`/care reply N :id` (or `reply-private N :id`): the saved reply as the draft,
    submitted for approval."""
    try:
        use_saved_reply(service, actor, ref, reply_id, private=private)
    except Refusal as refusal:
        if refusal.code != "no_change":
            raise
        # The draft already says this (the refusal is audited): submit it.
    return service.submit(actor, ref)


@dataclass(frozen=True)
class TagChange:
    case: Case
    added: list[str]
    removed: list[str]


def change_tags(
    service: CareService,
    actor: Actor,
    ref: str | int,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    bad: Sequence[str] = (),
    exact: Sequence[str] | None = None,
) -> TagChange:
    """Add and remove tags (or, with `exact`, make the case's tags exactly these).

    Members and managers of the case's department (and admins) may; each change is
    audited with who made it. Nothing to change, or a malformed tag, is a refusal.
    """

    def work(db: Database, case: Case, now: datetime) -> TagChange:
        if role_of(service.config, actor, case.department) < Role.MEMBER:
            dept = service.config.department(case.department)
            raise NotAllowed(
                f"Only members of {dept.name if dept else case.department} can tag its cases."
            )
        if bad:
            raise Refusal(
                f"{', '.join(repr(b[:40]) for b in bad[:5])}: a tag is lower-case letters and"
                " digits, words joined by hyphens (e.g. +refund -lost-bag).",
                code="bad_tag",
            )
        current = desk.tags_of(db, case.id)
        wanted_add = [t for t in (exact if exact is not None else add) if t not in current]
        wanted_remove = (
            [t for t in current if t not in exact] if exact is not None else list(remove)
        )
        added = desk.add_tags(
            db, case.id, wanted_add, by=f"{actor.surface}:{actor.user_id}", now=now
        )
        removed = desk.remove_tags(db, case.id, wanted_remove)
        if not added and not removed:
            raise Refusal(
                f"The tags of case #{case.id} are already so"
                f" ({', '.join(current) if current else 'none'}); nothing changed.",
                code="no_change",
            )
        audit.append(
            db,
            at=now,
            actor=f"{actor.surface}:{actor.user_id}",
            action=TAG_ACTION,
            case_id=case.id,
            detail={"added": added, "removed": removed},
        )
        words = [f"+{t}" for t in added] + [f"-{t}" for t in removed]
        queue_card(db, case.id, now, note=f"Tags {' '.join(words)} by <@{actor.user_id}>")
        return TagChange(service._load(db, case.id), added, removed)

    return service._act(actor, TAG_ACTION, ref, work)


def set_tags(
    service: CareService,
    actor: Actor,
    ref: str | int,
    text: str,
    *,
    shown: Sequence[str] | None = None,
) -> TagChange:
    """From a card's tag field: the tags it lists, space or comma separated, are the
    case's tags from now on (so removing a word removes the tag).

    `shown`: the tags the field showed when it was opened. Then only what the person
    changed is applied, so a tag someone else added meanwhile is kept."""
    words = text.replace(",", " ").split()
    add, _, bad = desk.parse_tag_changes(w.lstrip("+") for w in words)
    bad = [*bad, *(w for w in words if w.startswith("-"))]
    if shown is None:
        return change_tags(service, actor, ref, bad=bad, exact=add)
    before = set(shown)
    return change_tags(
        service,
        actor,
        ref,
        add=[t for t in add if t not in before],
        remove=[t for t in shown if t not in set(add)],
        bad=bad,
    )


def shown_tags(value: object) -> list[str] | None:
    """The tags a form showed, as the surface carried them ("a,b"; "" for none)."""
    if not isinstance(value, str):
        return None
    return [t for t in value.split(",") if t]


def tag_command(service: CareService, actor: Actor, ref: str | int, words: list[str]) -> TagChange:
    """`/care tag N +refund -spam`."""
    add, remove, bad = desk.parse_tag_changes(words)
    return change_tags(service, actor, ref, add=add, remove=remove, bad=bad)
