"""The case state machine and who may drive it: one table, one `advance()`.

Every action a person or the bot can take on a case is a row in TRANSITIONS:
from which states it applies, the state it leads to, and the least role it needs.
`advance()` raises InvalidTransition on misuse; `authorize()` raises NotAllowed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.config import Config
from bot.errors import InvalidTransition, NotAllowed
from bot.models import Actor, CaseState

S = CaseState


class Role(enum.IntEnum):
    """Ordered: each role can do what the roles below it can."""

    NONE = 0
    MEMBER = 1
    MANAGER = 2
    ADMIN = 3
    SYSTEM = 4


class Action(enum.StrEnum):
    CLAIM = "claim"
    DRAFT = "draft"
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    DISMISS = "dismiss"
    REASSIGN = "reassign"
    RETRY = "retry"
    HIDE = "hide"
    UNHIDE = "unhide"
    PUBLISH_OK = "publish_ok"
    PUBLISH_FAILED = "publish_failed"
    RELEASE = "release"  # a stale claim goes back to the queue (bot/stale.py)


@dataclass(frozen=True)
class Transition:
    sources: frozenset[CaseState]
    target: CaseState | None  # None: the state does not change
    role: Role


_OPEN_BEFORE_APPROVAL = frozenset({S.NEW, S.CLAIMED, S.AWAITING_APPROVAL})

TRANSITIONS: dict[Action, Transition] = {
    Action.CLAIM: Transition(frozenset({S.NEW}), S.CLAIMED, Role.MEMBER),
    # A new draft (or an edit) always returns the case to `claimed`: an approval
    # or a pending request for one was for other words, so it no longer stands.
    Action.DRAFT: Transition(
        frozenset({S.CLAIMED, S.AWAITING_APPROVAL, S.APPROVED, S.FAILED}), S.CLAIMED, Role.MEMBER
    ),
    Action.SUBMIT: Transition(frozenset({S.CLAIMED}), S.AWAITING_APPROVAL, Role.MEMBER),
    Action.APPROVE: Transition(frozenset({S.AWAITING_APPROVAL}), S.APPROVED, Role.MANAGER),
    Action.REJECT: Transition(frozenset({S.AWAITING_APPROVAL}), S.CLAIMED, Role.MANAGER),
    Action.DISMISS: Transition(_OPEN_BEFORE_APPROVAL | {S.FAILED}, S.DISMISSED, Role.MEMBER),
    Action.REASSIGN: Transition(_OPEN_BEFORE_APPROVAL | {S.FAILED}, S.NEW, Role.MEMBER),
    Action.RETRY: Transition(frozenset({S.FAILED}), S.APPROVED, Role.MEMBER),
    # Hiding a comment (Facebook/Instagram) changes no state: the case goes on as it was.
    Action.HIDE: Transition(frozenset(CaseState), None, Role.MANAGER),
    Action.UNHIDE: Transition(frozenset(CaseState), None, Role.MANAGER),
    Action.PUBLISH_OK: Transition(frozenset({S.APPROVED}), S.PUBLISHED, Role.SYSTEM),
    Action.PUBLISH_FAILED: Transition(frozenset({S.APPROVED}), S.FAILED, Role.SYSTEM),
    Action.RELEASE: Transition(frozenset({S.CLAIMED}), S.NEW, Role.SYSTEM),
}

STATE_WORDS = {
    S.NEW: "is new and unclaimed",
    S.CLAIMED: "is claimed and has no reply waiting for approval",
    S.AWAITING_APPROVAL: "is waiting for approval",
    S.APPROVED: "is approved and being published",
    S.PUBLISHED: "is already published",
    S.DISMISSED: "was dismissed",
    S.FAILED: "failed to publish",
}


def advance(state: CaseState, action: Action) -> CaseState:
    """The state after `action`, or InvalidTransition if it does not apply in `state`."""
    transition = TRANSITIONS[action]
    if state not in transition.sources:
        raise InvalidTransition(
            f"Cannot {action.value.replace('_', ' ')}: the case {STATE_WORDS[state]}."
        )
    return transition.target or state


def role_of(config: Config, actor: Actor, department_id: str) -> Role:
    """The actor's role for one department, from config IDs only (never display names).

    Roles follow the person ([[people]]), whichever surface they act from.
    """
    if actor.surface == "system":
        return Role.SYSTEM
    if not _home_ok(config, actor):
        return Role.NONE
    if config.listed(actor.user_id, [*config.slack.admins, *config.teams.admins]):
        return Role.ADMIN
    dept = config.department(department_id)
    if dept is None:
        return Role.NONE
    if config.listed(actor.user_id, dept.managers):
        return Role.MANAGER
    if config.listed(actor.user_id, dept.members):
        return Role.MEMBER
    return Role.NONE


def _home_ok(config: Config, actor: Actor) -> bool:
    # When the config pins a Slack workspace (or an Enterprise Grid org), a user ID from
    # any other one is a stranger: user IDs are only unique within their workspace.
    # (Teams object ids are unique; the Teams edge refuses other tenants itself.)
    if actor.surface != "slack":
        return True
    team_ok = config.slack.team_id is None or actor.team_id == config.slack.team_id
    org = config.slack.enterprise_id
    return team_ok and (org is None or actor.enterprise_id == org)


def is_admin(config: Config, actor: Actor) -> bool:
    return _home_ok(config, actor) and config.listed(
        actor.user_id, [*config.slack.admins, *config.teams.admins]
    )


def authorize(config: Config, actor: Actor, action: Action, department_id: str) -> Role:
    """Raise NotAllowed unless the actor's role covers the action in this department."""
    needed = TRANSITIONS[action].role
    have = role_of(config, actor, department_id)
    if have < needed:
        dept = config.department(department_id)
        name = dept.name if dept else department_id
        who = {
            Role.MEMBER: f"members of {name}",
            Role.MANAGER: f"managers of {name}",
            Role.ADMIN: "admins",
            Role.SYSTEM: "the bot itself",
        }[needed]
        raise NotAllowed(f"Only {who} can {action.value.replace('_', ' ')} this case.")
    return have
