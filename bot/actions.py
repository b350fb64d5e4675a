"""Card buttons, surface-neutral: a verb and its data become one use case.

Slack buttons and Teams `Action.Execute` verbs name the same actions; each adapter only
translates its payload into `(verb, data)` and shows the answer. Refusals are raised
(bot.errors.Refusal) for the adapter to show to the person who acted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot import desk_service
from bot.bulk import dismiss_group
from bot.claimnext import next_answer
from bot.errors import Refusal
from bot.models import Actor, Case
from bot.service import CareService

VERBS = (
    "claim",
    "use_reply",
    "edit",
    "submit",
    "approve",
    "reject",
    "dismiss",
    "reassign",
    "retry",
    "dismiss_group",  # "Dismiss all N similar" on a grouped card (data: case, reason)
    "claim_next",  # "Claim next" with the queue answer (no case: the next one is picked)
    "reply_private",
    "hide",
    "unhide",
    "saved_reply",
    "tag",
)


def _text(data: Mapping[str, Any], key: str) -> str:
    # An empty value goes on to the use case, which refuses it with its reason (audited).
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def _group_reason(data: Mapping[str, Any]) -> str:
    # Teams names the group's reason field apart from Dismiss's (ids are unique per card).
    return _text(data, "group_reason") or _text(data, "reason")


def _number(value: object) -> int | None:
    """A number as a surface carries it: an int, or a string of digits (not a bool)."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _upto(data: Mapping[str, Any]) -> int | None:
    """ "Dismiss all similar": the newest case the confirmation showed (None: no bound)."""
    return _number(data.get("upto"))


def _position(data: Mapping[str, Any]) -> int:
    value = _number(data.get("n"))
    if value is None or not 1 <= value <= 3:
        raise Refusal("This button does not name a suggested reply.", code="bad_payload")
    return value


def _hash(data: Mapping[str, Any]) -> str:
    value = data.get("hash")
    if not isinstance(value, str) or not value:
        # Unbound approvals are never taken from a button: the words must be the ones seen.
        raise Refusal(
            "This Approve button does not say which words it approves.", code="bad_payload"
        )
    return value


_ACTIONS: dict[str, Callable[[CareService, Actor, int, Mapping[str, Any]], Case]] = {
    "claim": lambda s, a, c, d: s.claim(a, c),
    "use_reply": lambda s, a, c, d: s.use_suggestion(a, c, _position(d)),
    "edit": lambda s, a, c, d: s.set_draft(a, c, _text(d, "reply_text")),
    "submit": lambda s, a, c, d: s.submit(a, c),
    "approve": lambda s, a, c, d: s.approve(a, c, expected_hash=_hash(d)),
    "reject": lambda s, a, c, d: s.reject(a, c, _text(d, "reason")),
    "dismiss": lambda s, a, c, d: s.dismiss(a, c, _text(d, "reason")),
    "reassign": lambda s, a, c, d: s.reassign(a, c, _text(d, "department")),
    "retry": lambda s, a, c, d: s.retry(a, c),
    "dismiss_group": lambda s, a, c, d: (
        dismiss_group(s, a, c, _group_reason(d), upto=_upto(d)).case
    ),
    "reply_private": lambda s, a, c, d: s.set_draft(a, c, _text(d, "reply_text"), private=True),
    "hide": lambda s, a, c, d: s.hide(a, c, _text(d, "reason")),
    "unhide": lambda s, a, c, d: s.unhide(a, c),
    # The card's picker names a saved reply by id; its tag field lists the case's tags.
    "saved_reply": lambda s, a, c, d: desk_service.use_saved_reply(
        s, a, c, _text(d, "saved_reply")
    ),
    "tag": lambda s, a, c, d: (
        desk_service.set_tags(
            s, a, c, _text(d, "tags"), shown=desk_service.shown_tags(d.get("shown"))
        ).case
    ),
}


def case_of(data: Mapping[str, Any]) -> int:
    """The case a button names (`case`: a number); a refusal if it names none."""
    value = _number(data.get("case"))
    if value is None or value <= 0:
        raise Refusal("This button does not name a case.", code="bad_payload")
    return value


def perform(service: CareService, actor: Actor, verb: str, data: Mapping[str, Any]) -> Case:
    """Run the action a button names; raise Refusal for anything not allowed or malformed."""
    action = _ACTIONS.get(verb)
    if action is None:
        raise Refusal("Sorry, this bot does not know that action.", code="bad_payload")
    return action(service, actor, case_of(data), data)


# Verbs whose answer is a sentence for the person who acted, besides (or instead of) a card.
ANSWERED_VERBS = frozenset({"dismiss_group", "claim_next"})


def perform_answered(
    service: CareService, actor: Actor, verb: str, data: Mapping[str, Any]
) -> tuple[Case | None, str]:
    """`perform`, plus the sentence to tell the person who acted: the summary of a bulk
    action, or what "Claim next" claimed ("" for single-case verbs: the card says it).
    The case is the one whose card to show (None: "Claim next" found nothing)."""
    if verb == "dismiss_group":
        outcome = dismiss_group(
            service, actor, case_of(data), _group_reason(data), upto=_upto(data)
        )
        return outcome.case, outcome.summary()
    if verb == "claim_next":
        text, case_id = next_answer(service, actor)
        return (service.get_case(case_id) if case_id is not None else None), text
    return perform(service, actor, verb, data), ""
