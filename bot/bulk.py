"""Bulk actions: one command or button, many cases, one summary answer.

Each case of a list is done or refused on its own merits by the ordinary use case (its
own transaction, its own audit entry, its own refusal audit), so a bulk action can never
do to a case what the single action would refuse. "Dismiss all similar" on a grouped
card is one transaction: every untouched copy is dismissed (one audit entry each), the
copies someone took up are left alone and named.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlite_utils import Database

from bot.cards import queue_card
from bot.caselist import compact
from bot.desk_service import tag_command
from bot.errors import InvalidTransition, NotAllowed, Refusal, UnknownCase
from bot.models import Actor, Case, CaseState
from bot.service import CareService, _required_reason
from bot.views import CaseView
from bot.workflow import STATE_WORDS, Action, Role, authorize, role_of

# Past-tense words of the verbs a list may carry.
DONE_WORDS = {
    "claim": "Claimed",
    "dismiss": "Dismissed",
    "reject": "Rejected",
    "hide": "Hiding the comments of",  # the outbox does it: "hiding", not "hid"
    "unhide": "Showing again the comments of",
    "tag": "Tagged",
}
CLOSED = frozenset({CaseState.PUBLISHED, CaseState.DISMISSED})


@dataclass
class BulkOutcome:
    """What one bulk action did: the cases done, and why each other one was refused."""

    verb: str
    done: list[int] = field(default_factory=list)
    # (singular, plural) predicate -> the cases it applies to, e.g. "is already closed".
    refused: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    reason: str = ""
    # Group leader -> the untouched copies its dismissal closed that the list did not name.
    along: dict[int, list[int]] = field(default_factory=dict)

    def refuse(self, case_id: int, why: tuple[str, str]) -> None:
        self.refused.setdefault(why, []).append(case_id)

    @property
    def refused_count(self) -> int:
        return sum(len(ids) for ids in self.refused.values())

    def summary(self) -> str:
        """`Dismissed 6 cases: #12, #14, #20–#23. Refused 2: #24 is in Sales (not your
        department), #25 is already closed.`"""
        word = DONE_WORDS.get(self.verb, self.verb.capitalize() + "ed")
        count = len(self.done)
        if count:
            text = f"{word} {count} case{'s' * (count != 1)}: {compact(self.done)}."
            if self.reason:
                text += f" Reason: {self.reason}"
                text += "" if self.reason.endswith((".", "!", "?")) else "."
        else:
            text = f"{word} no cases."
        for leader, copies in self.along.items():
            n = len(copies)
            text += (
                f" With them {n} similar case{'s' * (n != 1)} on #{leader}'s card:"
                f" {compact(copies)}."
            )
        if self.refused:
            clauses = [
                f"{compact(ids)} {singular if len(ids) == 1 else plural}"
                for (singular, plural), ids in self.refused.items()
            ]
            text += f" Refused {self.refused_count}: " + ", ".join(clauses) + "."
        return text


def _plural(predicate: str) -> str:
    for one, many in (("is ", "are "), ("was ", "were "), ("has ", "have "), ("does ", "do ")):
        if predicate.startswith(one):
            return many + predicate[len(one) :]
    return predicate


def why_refused(
    service: CareService, actor: Actor, case_id: int, refusal: Refusal
) -> tuple[str, str]:
    """A refusal of one case of a list, as a short predicate for the summary."""
    if isinstance(refusal, UnknownCase):
        return "does not exist", "do not exist"
    case = service.get_case(case_id)
    if (
        isinstance(refusal, NotAllowed)
        and role_of(service.config, actor, case.department) is Role.NONE
    ):
        dept = service.config.department(case.department)
        where = f"is in {dept.name if dept else case.department} (not your department)"
        return where, _plural(where)
    if case.state in CLOSED and isinstance(refusal, InvalidTransition):
        return "is already closed", "are already closed"
    if refusal.code == "no_change" and service.config.same_person(case.claimed_by, actor.user_id):
        return "is already yours", "are already yours"
    if isinstance(refusal, InvalidTransition):
        if case.state is CaseState.CLAIMED and case.claimed_by:
            predicate = f"is claimed by <@{case.claimed_by}>"
        else:
            predicate = STATE_WORDS[case.state]
        return predicate, _plural(predicate)
    message = str(refusal).rstrip(".")
    return f"was refused ({message})", f"were refused ({message})"


def _run_one(service: CareService, actor: Actor, verb: str, case_id: int, reason: str) -> Case:
    if verb == "claim":
        return service.claim(actor, case_id)
    if verb == "dismiss":
        return service.dismiss(actor, case_id, reason)
    if verb == "reject":
        return service.reject(actor, case_id, reason)
    if verb == "hide":
        return service.hide(actor, case_id, reason)
    if verb == "unhide":
        return service.unhide(actor, case_id)
    if verb == "tag":
        return tag_command(service, actor, case_id, reason.split()).case
    raise ValueError(f"no bulk form of {verb!r}")


def run_list(
    service: CareService, actor: Actor, verb: str, case_ids: Sequence[int], reason: str = ""
) -> BulkOutcome:
    """`verb` on each case in turn, each through its ordinary use case (audited each)."""
    outcome = BulkOutcome(verb, reason=" ".join(reason.split())[:500])
    along: set[int] = set()
    for case_id in case_ids:
        if case_id in along:
            # Dismissed with its group's first case a moment ago, by this same command.
            outcome.done.append(case_id)
            continue
        try:
            _run_one(service, actor, verb, case_id, reason)
        except Refusal as refusal:
            outcome.refuse(case_id, why_refused(service, actor, case_id, refusal))
            continue
        outcome.done.append(case_id)
        if verb == "dismiss":
            copies = _dismissed_with(service, case_id)
            along |= copies
            unnamed = sorted(copies - set(case_ids))
            if unnamed:
                outcome.along[case_id] = unnamed
    return outcome


def _dismissed_with(service: CareService, case_id: int) -> set[int]:
    """The copies the dismissal of a group's first case took along (from its audit entry)."""
    detail = service.store.scalar(
        "SELECT detail FROM audit WHERE case_id = ? AND action = 'dismiss' AND outcome = 'ok'"
        " ORDER BY seq DESC LIMIT 1",
        [case_id],
    )
    return {int(i) for i in json.loads(detail or "{}").get("with_group", [])}


# ------------------------------------------------------------------ a group at once


def seen_upto(view: CaseView) -> int:
    """The newest case of a grouped card as shown: what a confirmation covers."""
    return max([view.case.id, *(g.case_id for g in view.grouped)])


def untouched(view: CaseView) -> list[int]:
    """The cases of a grouped card nobody has taken up: what "Dismiss all similar" dismisses
    (the card's own case too, while it is new). Empty when the card groups nothing."""
    if not view.grouped:
        return []
    ids = [view.case.id] if view.case.state is CaseState.NEW else []
    return ids + [g.case_id for g in view.grouped if g.state == CaseState.NEW.value]


@dataclass(frozen=True)
class GroupOutcome:
    case: Case  # the group's card case, as it is now
    dismissed: list[int]
    left_alone: list[tuple[int, str]]  # (case, why), e.g. (13, "claimed by <@U0AGENT2>")
    reason: str

    def summary(self) -> str:
        count = len(self.dismissed)
        text = (
            f"Dismissed {count} similar case{'s' * (count != 1)}: {compact(self.dismissed)}."
            f" Reason: {self.reason}"
        )
        text += "" if self.reason.endswith((".", "!", "?")) else "."
        if self.left_alone:
            shown = ", ".join(f"#{i} ({why})" for i, why in self.left_alone)
            text += f" Left alone {len(self.left_alone)}: {shown}."
        return text


def dismiss_group(
    service: CareService,
    actor: Actor,
    ref: str | int,
    reason_text: str,
    *,
    upto: int | None = None,
) -> GroupOutcome:
    """Dismiss every untouched case of a grouped card with one reason, in one transaction.

    One audit entry per dismissed case; cases someone claimed or drafted (on the card or
    taken out of it) are left alone and named; one thread note on the card sums it up.
    `upto`: the newest case the person saw when they confirmed (`seen_upto`); copies that
    arrived since are left for them to see, as the confirmation named a count.
    """
    result: list[GroupOutcome] = []

    def work(db: Database, card: Case, now: datetime) -> Case:
        authorize(service.config, actor, Action.DISMISS, card.department)
        reason = _required_reason(reason_text, "dismiss")
        members = [card] + [
            service._load(db, int(r[0]))
            for r in db.execute(
                "SELECT id FROM cases WHERE (group_id = ? OR left_group_id = ?) AND id != ?"
                " ORDER BY id",
                (card.id, card.id, card.id),
            )
        ]
        if len(members) == 1:
            raise Refusal(
                f"Case #{card.id} has no similar cases grouped with it; use Dismiss.",
                code="no_group",
            )
        dismissed: list[int] = []
        left: list[tuple[int, str]] = []
        for case in members:
            on_card = case.id == card.id or case.group_id == card.id
            why = _left_alone_because(service, actor, case, on_card=on_card)
            if why is None and upto is not None and case.id > upto:
                why = "came in after you confirmed"
            if why is None:
                service._transition(
                    db,
                    case,
                    actor,
                    Action.DISMISS,
                    now,
                    sets={"note": reason, "closed_at": now.isoformat()},
                    detail={"reason": reason, "bulk": "group", "group": card.id},
                )
                dismissed.append(case.id)
            elif why:
                left.append((case.id, why))
        if not dismissed:
            raise Refusal(
                f"No case on the card of #{card.id} is untouched: nothing was dismissed.",
                code="no_change",
            )
        outcome = GroupOutcome(service._load(db, card.id), dismissed, left, reason)
        queue_card(db, card.id, now, note=f"<@{actor.user_id}>: {outcome.summary()}")
        result.append(outcome)
        return outcome.case

    service._act(actor, "dismiss", ref, work)
    return result[0]


def _left_alone_because(
    service: CareService, actor: Actor, case: Case, *, on_card: bool = True
) -> str | None:
    """None: dismiss it. "": skip it silently (already closed). Else why it is left alone.

    A copy that left the card (`on_card` False) is never dismissed from it: it has its own
    card, and even when it is `new` again (a stale claim released) the button did not
    count it."""
    if case.state in CLOSED:
        return ""
    if not on_card and case.state is CaseState.NEW:
        return "back in the queue on its own card"
    if role_of(service.config, actor, case.department) < Role.MEMBER:
        dept = service.config.department(case.department)
        return f"in {dept.name if dept else case.department}"
    if case.publish_uncertain:
        return "a reply may already be out"
    if case.state is CaseState.NEW:
        return None
    who = f"claimed by <@{case.claimed_by}>" if case.claimed_by else case.state.value
    if case.state is not CaseState.CLAIMED:
        who += f", {case.state.value.replace('_', ' ')}"
    elif case.draft_text:
        who += ", drafted"
    return who
