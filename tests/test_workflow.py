"""Every action from every state: what is allowed, what is refused; refusals change nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.delivery import PublishWorker
from bot.errors import InvalidTransition, NotAllowed, PublishError, Refusal, UnknownCase
from bot.models import Actor, CaseState, text_hash
from bot.ports import PublishedReply, PublishRequest
from bot.service import CareService
from bot.workflow import TRANSITIONS, Action, advance
from tests.conftest import ADMIN, AGENT, AGENT2, LEAD, LEAD2, MKT, STRANGER, mention, new_case

S = CaseState
REPLY = "Sorry about the delay, DM us your booking reference and we will sort the refund."


class FailingPublisher:
    def publish(self, request: PublishRequest) -> PublishedReply:
        raise PublishError("403 forbidden: account suspended", permanent=True)

    def find_existing(self, request: PublishRequest) -> PublishedReply | None:
        return None


def drive_to(state: CaseState, service: CareService, publisher: PublishWorker) -> int:
    """A fresh case in `state`, reached through the real use cases."""
    case_id = new_case(service)
    if state is S.NEW:
        return case_id
    if state is S.DISMISSED:
        service.dismiss(AGENT, case_id, "not for us")
        return case_id
    service.claim(AGENT, case_id)
    if state is S.CLAIMED:
        return case_id
    service.reply(AGENT, case_id, REPLY)
    if state is S.AWAITING_APPROVAL:
        return case_id
    service.approve(LEAD, case_id)
    if state is S.APPROVED:
        return case_id
    if state is S.PUBLISHED:
        assert publisher.drain() == 1
    else:
        assert PublishWorker(service, FailingPublisher()).drain() == 1
    return case_id


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("action", list(Action))
def test_advance_follows_the_table(state: CaseState, action: Action) -> None:
    transition = TRANSITIONS[action]
    if state in transition.sources:
        assert advance(state, action) == (transition.target or state)
    else:
        with pytest.raises(InvalidTransition):
            advance(state, action)


ACTIONS: dict[str, Callable[[CareService, int], object]] = {
    "claim": lambda s, c: s.claim(LEAD2, c),
    "draft": lambda s, c: s.set_draft(LEAD2, c, "We are on it, DM us please."),
    "submit": lambda s, c: s.submit(LEAD2, c),
    "approve": lambda s, c: s.approve(LEAD2, c),
    "reject": lambda s, c: s.reject(LEAD2, c, "too vague"),
    "dismiss": lambda s, c: s.dismiss(LEAD2, c, "resolved by phone"),
    "reassign": lambda s, c: s.reassign(LEAD2, c, "marketing"),
    "retry": lambda s, c: s.retry(LEAD2, c),
}
R = None  # refused
# What a manager of the department (who neither claimed nor drafted) gets, by state.
EXPECTED: dict[CaseState, dict[str, CaseState | None]] = {
    S.NEW: dict(claim=S.CLAIMED, draft=S.CLAIMED, submit=R, approve=R, reject=R,
                dismiss=S.DISMISSED, reassign=S.NEW, retry=R),
    S.CLAIMED: dict(claim=R, draft=S.CLAIMED, submit=R, approve=R, reject=R,
                    dismiss=S.DISMISSED, reassign=S.NEW, retry=R),
    S.AWAITING_APPROVAL: dict(claim=R, draft=S.CLAIMED, submit=R,
                              approve=S.APPROVED, reject=S.CLAIMED, dismiss=S.DISMISSED,
                              reassign=S.NEW, retry=R),
    S.APPROVED: dict(claim=R, draft=S.CLAIMED, submit=R, approve=R, reject=R, dismiss=R,
                     reassign=R, retry=R),
    S.PUBLISHED: dict(claim=R, draft=R, submit=R, approve=R, reject=R, dismiss=R, reassign=R,
                      retry=R),
    S.DISMISSED: dict(claim=R, draft=R, submit=R, approve=R, reject=R, dismiss=R, reassign=R,
                      retry=R),
    S.FAILED: dict(claim=R, draft=S.CLAIMED, submit=R, approve=R, reject=R,
                   dismiss=S.DISMISSED, reassign=S.NEW, retry=S.APPROVED),
}  # fmt: skip


def snapshot(service: CareService, case_id: int) -> tuple[object, ...]:
    store = service.store
    return (
        store.one("SELECT * FROM cases WHERE id = ?", [case_id]),
        store.scalar("SELECT count(*) FROM drafts"),
        store.scalar("SELECT count(*) FROM approvals WHERE voided_at IS NULL"),
        store.scalar("SELECT count(*) FROM outbox"),
    )


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_in_every_state(
    state: CaseState, action: str, service: CareService, publisher: PublishWorker
) -> None:
    case_id = drive_to(state, service, publisher)
    assert service.get_case(case_id).state is state
    expected = EXPECTED[state][action]
    before = snapshot(service, case_id)
    audit_before = service.store.scalar("SELECT count(*) FROM audit")
    if expected is None:
        with pytest.raises(Refusal):
            ACTIONS[action](service, case_id)
        assert snapshot(service, case_id) == before, "a refusal must change nothing"
        last = service.store.one("SELECT * FROM audit ORDER BY seq DESC LIMIT 1")
        assert last is not None and last["outcome"].startswith("refused")
        assert service.store.scalar("SELECT count(*) FROM audit") == audit_before + 1
    else:
        ACTIONS[action](service, case_id)
        assert service.get_case(case_id).state is expected


def test_unknown_case_and_bad_reference_are_refused(service: CareService) -> None:
    with pytest.raises(UnknownCase, match="#999"):
        service.claim(AGENT, "#999")
    with pytest.raises(Refusal, match="not a case number"):
        service.claim(AGENT, "twelve")
    assert service.store.scalar("SELECT count(*) FROM cases") == 0


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [(AGENT, True), (LEAD, True), (ADMIN, True), (MKT, False), (STRANGER, False)],
)
def test_only_department_members_managers_or_admins_claim(
    service: CareService, actor: object, allowed: bool
) -> None:
    case_id = new_case(service)
    if allowed:
        assert service.claim(actor, case_id).claimed_by == actor.user_id  # type: ignore[attr-defined]
    else:
        with pytest.raises(NotAllowed):
            service.claim(actor, case_id)  # type: ignore[arg-type]
        assert service.get_case(case_id).state is S.NEW


@pytest.mark.parametrize(
    ("actor", "allowed"), [(AGENT2, False), (MKT, False), (LEAD, True), (ADMIN, True)]
)
def test_only_managers_of_the_department_or_admins_approve(
    service: CareService, actor: object, allowed: bool
) -> None:
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    if allowed:
        assert service.approve(actor, case_id).state is S.APPROVED  # type: ignore[arg-type]
    else:
        with pytest.raises(NotAllowed):
            service.approve(actor, case_id)  # type: ignore[arg-type]
        assert service.get_case(case_id).state is S.AWAITING_APPROVAL


def test_member_cannot_reject(service: CareService) -> None:
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    with pytest.raises(NotAllowed):
        service.reject(AGENT2, case_id, "no")


def test_manager_may_not_approve_own_draft(service: CareService) -> None:
    case_id = new_case(service)
    service.reply(LEAD, case_id, REPLY)
    with pytest.raises(NotAllowed, match="another manager"):
        service.approve(LEAD, case_id)
    assert service.approve(LEAD2, case_id).state is S.APPROVED


def test_self_approval_when_config_allows(config, store, clock) -> None:  # type: ignore[no-untyped-def]
    relaxed = config.model_copy(
        update={"publish": config.publish.model_copy(update={"allow_self_approval": True})}
    )
    service = CareService(relaxed, store, clock=clock)
    case_id = new_case(service)
    service.reply(LEAD, case_id, REPLY)
    assert service.approve(LEAD, case_id).state is S.APPROVED


def test_a_claim_by_someone_else_is_refused_and_names_the_owner(service: CareService) -> None:
    case_id = new_case(service)
    service.claim(AGENT, case_id)
    with pytest.raises(InvalidTransition, match="U0AGENT1"):
        service.claim(AGENT2, case_id)


def test_other_member_cannot_overwrite_a_claimed_draft(service: CareService) -> None:
    case_id = new_case(service)
    service.claim(AGENT, case_id)
    with pytest.raises(NotAllowed, match="claimed by"):
        service.set_draft(AGENT2, case_id, "my words instead")


def test_an_edit_after_approval_voids_it_and_nothing_is_published(
    service: CareService, publisher: PublishWorker
) -> None:
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    approved = service.approve(LEAD, case_id)
    assert approved.approved_hash == text_hash(approved.draft_text or "")
    edited = service.set_draft(AGENT, case_id, "Actually, call us on the usual line.")
    assert edited.state is S.CLAIMED
    assert edited.approved_hash is None
    publisher.drain()
    assert service.store.scalar("SELECT count(*) FROM dry_run_posts") == 0
    # The new words need their own approval before anything goes out.
    service.submit(AGENT, case_id)
    service.approve(LEAD, case_id)
    publisher.drain()
    posts = service.store.query("SELECT text FROM dry_run_posts")
    assert [p["text"] for p in posts] == ["@maya Actually, call us on the usual line."]


def test_approval_of_text_the_manager_did_not_see_is_refused(service: CareService) -> None:
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    with pytest.raises(Refusal, match="changed since you saw it"):
        service.approve(LEAD, case_id, expected_hash=text_hash("older words"))
    seen = service.get_case(case_id).draft_text or ""
    assert service.approve(LEAD, case_id, expected_hash=text_hash(seen)).state is S.APPROVED


def test_reject_returns_to_claimed_with_the_managers_note(service: CareService) -> None:
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    case = service.reject(LEAD, case_id, "Please apologise first")
    assert case.state is S.CLAIMED and case.note == "Please apologise first"
    assert case.claimed_by == "U0AGENT1"


def test_reject_and_dismiss_need_a_reason(service: CareService) -> None:
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    with pytest.raises(Refusal, match="Say why"):
        service.reject(LEAD, case_id, "   ")
    with pytest.raises(Refusal, match="Say why"):
        service.dismiss(LEAD, case_id, "")


def test_pause_and_resume_are_admin_only_and_hold_publishing(
    service: CareService, publisher: PublishWorker
) -> None:
    with pytest.raises(NotAllowed):
        service.set_paused(LEAD, True)
    service.set_paused(ADMIN, True)
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    service.approve(LEAD, case_id)
    assert publisher.drain() == 0
    assert service.get_case(case_id).state is S.APPROVED
    service.set_paused(ADMIN, False)
    assert publisher.drain() == 1
    assert service.get_case(case_id).state is S.PUBLISHED


def test_slack_identity_from_another_workspace_is_a_stranger(config, store, clock) -> None:  # type: ignore[no-untyped-def]
    from bot.models import Actor

    pinned = config.model_copy(
        update={"slack": config.slack.model_copy(update={"team_id": "T0ACME"})}
    )
    service = CareService(pinned, store, clock=clock)
    case_id = new_case(service)
    with pytest.raises(NotAllowed):
        service.claim(Actor("U0AGENT1", team_id="T0EVIL"), case_id)
    assert service.claim(Actor("U0AGENT1", team_id="T0ACME"), case_id).state is S.CLAIMED


def test_an_enterprise_grid_org_can_be_pinned_too(config, store, clock) -> None:  # type: ignore[no-untyped-def]
    from bot.models import Actor

    pinned = config.model_copy(
        update={"slack": config.slack.model_copy(update={"enterprise_id": "E0ACME"})}
    )
    service = CareService(pinned, store, clock=clock)
    case_id = new_case(service)
    with pytest.raises(NotAllowed):
        service.claim(Actor("U0AGENT1", enterprise_id="E0OTHER"), case_id)
    assert service.claim(Actor("U0AGENT1", enterprise_id="E0ACME"), case_id).state is S.CLAIMED


ANA_TEAMS = "6b1a2c3d-0000-4000-8000-00000000a001"


def people_service(tmp_path, clock) -> CareService:  # type: ignore[no-untyped-def]
    from bot.config import parse_config
    from bot.store import Store
    from tests.conftest import config_data

    data = config_data()
    data["people"] = [{"id": "ana", "name": "Ana", "slack": "U0ANA", "teams": ANA_TEAMS}]
    data["departments"][0]["managers"] = ["ana", "U0LEAD"]
    data["teams"] = {"enabled": True, "admins": []}
    config = parse_config(data, base_dir=tmp_path)
    return CareService(config, Store(config.database_path), clock=clock)


def test_a_person_keeps_their_role_on_both_surfaces(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from bot.workflow import Role, role_of

    service = people_service(tmp_path, clock)
    on_slack, on_teams = Actor("U0ANA"), Actor(ANA_TEAMS.upper(), surface="teams")
    assert role_of(service.config, on_slack, "care") is Role.MANAGER
    assert role_of(service.config, on_teams, "care") is Role.MANAGER
    assert role_of(service.config, Actor(ANA_TEAMS, surface="teams"), "marketing") is Role.NONE


def test_a_draft_written_on_slack_cannot_be_approved_by_its_author_on_teams(
    tmp_path, clock
) -> None:  # type: ignore[no-untyped-def]
    service = people_service(tmp_path, clock)
    case_id = service.ingest(mention()).case_ids[0]
    service.reply(Actor("U0ANA"), case_id, "Sorry about that, we are on it.")
    with pytest.raises(NotAllowed, match="another manager has to approve"):
        service.approve(Actor(ANA_TEAMS, surface="teams"), case_id)
    assert service.approve(LEAD, case_id).state is CaseState.APPROVED


def test_a_claim_on_slack_is_the_same_persons_claim_on_teams(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    service = people_service(tmp_path, clock)
    case_id = service.ingest(mention()).case_ids[0]
    service.claim(Actor("U0ANA"), case_id)
    with pytest.raises(Refusal, match="already claimed"):
        service.claim(Actor(ANA_TEAMS, surface="teams"), case_id)
    # Her Teams account may write the reply of the case she claimed on Slack.
    service.set_draft(Actor(ANA_TEAMS, surface="teams"), case_id, "We are on it, sorry!")


def test_an_unknown_people_id_in_a_role_list_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bot.config import parse_config
    from bot.errors import ConfigError
    from tests.conftest import config_data

    data = config_data()
    data["departments"][0]["members"] = ["U0AGENT1", "bob"]
    with pytest.raises(ConfigError) as error:
        parse_config(data, base_dir=tmp_path)
    assert any(
        p.startswith("departments[0].members[1]: 'bob' is not a [[people]] id")
        for p in error.value.problems
    )
