"""Every refusal of the use cases: the person is told why, nothing changes, and the
refusal is in the audit log with who, what, which case and the reason shown."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bot.delivery import DryRunPublisher, PublishWorker
from bot.errors import Refusal
from bot.models import Actor
from bot.service import CareService
from tests.conftest import ADMIN, AGENT, AGENT2, LEAD, LEAD2, STRANGER, new_case

REPLY = "Sorry about the delay! Please DM us your booking reference."


def claimed(service: CareService) -> int:
    case_id = new_case(service)
    service.claim(AGENT, case_id)
    return case_id


def submitted(service: CareService) -> int:
    case_id = new_case(service)
    service.reply(AGENT, case_id, REPLY)
    return case_id


def approved(service: CareService) -> int:
    case_id = submitted(service)
    service.approve(LEAD, case_id)
    return case_id


def sending(service: CareService) -> int:
    case_id = approved(service)
    assert service.outbox.claim(["publish"]) is not None  # an attempt is in flight
    return case_id


def uncertain(service: CareService) -> int:
    case_id = approved(service)
    service.begin_publish_attempt(case_id)
    return case_id


def grouped_draft(service: CareService) -> int:
    text = "@AcmeAir Bring back the free snacks! #SnackGate https://t.co/abc"
    leader = new_case(service, text)
    member = new_case(service, text, author_id="77", author_handle="bo")
    service.reply(AGENT, member, "Thanks, we hear you about the snacks!")
    # As an older version left it: drafted while still shown only on the group's card.
    service.store.db.execute("UPDATE cases SET group_id = ? WHERE id = ?", (leader, member))
    return member


def facebook(service: CareService) -> int:
    return new_case(service, network="facebook")


def hidden(service: CareService) -> int:
    case_id = facebook(service)
    service.hide(LEAD, case_id, "personal data")
    return case_id


def eight_days_on(service: CareService) -> int:
    case_id = facebook(service)
    service.clock.advance(8 * 86400)  # type: ignore[attr-defined]
    return case_id


def private_awaiting_on_day_8(service: CareService) -> int:
    case_id = facebook(service)
    service.reply(AGENT, case_id, REPLY, private=True)
    service.clock.advance(8 * 86400)  # type: ignore[attr-defined]
    return case_id


def privately_replied(service: CareService) -> int:
    case_id = facebook(service)
    service.reply(AGENT, case_id, REPLY, private=True)
    service.approve(LEAD, case_id)
    assert PublishWorker(service, DryRunPublisher(service.store, service.clock)).drain() == 1
    return case_id


@dataclass(frozen=True)
class Case_:
    name: str
    setup: Callable[[CareService], int | None]
    act: Callable[[CareService, int | None], object]
    actor: Actor
    action: str
    code: str
    says: str
    audited_case: bool = True


CASES = [
    Case_("bad reference", lambda s: None, lambda s, c: s.claim(AGENT, "abc"), AGENT,
          "claim", "refused", "is not a case number", audited_case=False),
    Case_("unknown case", lambda s: None, lambda s, c: s.claim(AGENT, 999), AGENT,
          "claim", "unknown_case", "There is no case #999", audited_case=False),
    Case_("stranger claims", new_case, lambda s, c: s.claim(STRANGER, c), STRANGER,
          "claim", "not_allowed", "Only members of Customer Care"),
    Case_("own claim again", claimed, lambda s, c: s.claim(AGENT, c), AGENT,
          "claim", "no_change", "You have already claimed case"),
    Case_("claimed by another", claimed, lambda s, c: s.claim(AGENT2, c), AGENT2,
          "claim", "wrong_state", "already claimed by <@U0AGENT1>"),
    Case_("own claim past claimed", submitted, lambda s, c: s.claim(AGENT, c), AGENT,
          "claim", "wrong_state", "waiting for approval"),
    Case_("draft over another's claim", claimed,
          lambda s, c: s.set_draft(AGENT2, c, REPLY), AGENT2,
          "draft", "not_allowed", "claimed by <@U0AGENT1>"),
    Case_("a reply that fails the checks", claimed,
          lambda s, c: s.set_draft(AGENT, c, "@other hello"), AGENT,
          "draft", "bad_reply", "mentions other accounts"),
    Case_("the same words again", claimed,
          lambda s, c: (s.set_draft(AGENT, c, REPLY), s.set_draft(AGENT, c, REPLY)), AGENT,
          "draft", "no_change", "already says exactly that"),
    Case_("an edit while publishing", sending,
          lambda s, c: s.set_draft(LEAD, c, "@maya new words"), LEAD,
          "draft", "publishing", "being published right now"),
    Case_("an edit while the outcome is unknown", uncertain,
          lambda s, c: s.set_draft(LEAD, c, "@maya new words"), LEAD,
          "draft", "uncertain", "may already be on X"),
    Case_("submit without a draft", claimed, lambda s, c: s.submit(AGENT, c), AGENT,
          "submit", "no_draft", "no reply draft"),
    Case_("submit twice", submitted, lambda s, c: s.submit(AGENT, c), AGENT,
          "submit", "no_change", "already waiting for approval"),
    Case_("a suggestion that is not there", claimed,
          lambda s, c: s.use_suggestion(AGENT, c, 2), AGENT,
          "draft", "no_suggestion", "has no suggested reply 2"),
    Case_("a member approves", submitted, lambda s, c: s.approve(AGENT2, c), AGENT2,
          "approve", "not_allowed", "Only managers of Customer Care"),
    Case_("approving one's own draft", lambda s: (
        (cid := new_case(s)), s.reply(LEAD, cid, REPLY))[0],
          lambda s, c: s.approve(LEAD, c), LEAD,
          "approve", "not_allowed", "another manager has to approve"),
    Case_("words changed since seen", submitted,
          lambda s, c: s.approve(LEAD, c, expected_hash="0" * 64), LEAD,
          "approve", "stale", "changed since you saw it"),
    Case_("a code that is not a code", submitted,
          lambda s, c: s.approve(LEAD, c, expected_hash="xyz"), LEAD,
          "approve", "usage", "is not the code of a reply"),
    Case_("approved twice", approved, lambda s, c: s.approve(LEAD, c), LEAD,
          "approve", "no_change", "You already approved"),
    Case_("a grouped draft nobody saw", grouped_draft, lambda s, c: s.approve(LEAD, c), LEAD,
          "approve", "not_shown", "not shown on any card"),
    Case_("approve while uncertain", uncertain, lambda s, c: s.approve(LEAD2, c), LEAD2,
          "approve", "uncertain", "may already be on X"),
    Case_("reject without a reason", submitted, lambda s, c: s.reject(LEAD, c, "  "), LEAD,
          "reject", "no_reason", "Say why you reject it"),
    Case_("dismiss without a reason", new_case, lambda s, c: s.dismiss(AGENT, c, ""), AGENT,
          "dismiss", "no_reason", "Say why you dismiss it"),
    Case_("reassign to nowhere", new_case, lambda s, c: s.reassign(AGENT, c, "legal"), AGENT,
          "reassign", "unknown_department", "Unknown department 'legal'"),
    Case_("reassign to where it is", new_case, lambda s, c: s.reassign(AGENT, c, "care"),
          AGENT, "reassign", "no_change", "already with Customer Care"),
    Case_("retry what did not fail", approved, lambda s, c: s.retry(AGENT, c), AGENT,
          "retry", "wrong_state", "Cannot retry"),
    Case_("a stranger's queue", lambda s: None, lambda s, c: s.queue(actor=STRANGER),
          STRANGER, "queue", "not_allowed", "Only members and managers",
          audited_case=False),
    Case_("another department's queue", lambda s: None,
          lambda s, c: s.queue("marketing", actor=AGENT), AGENT, "queue", "not_allowed",
          "Only members and managers of marketing", audited_case=False),
    Case_("an unknown department's queue", lambda s: None,
          lambda s, c: s.queue("legal", actor=AGENT), AGENT, "queue", "unknown_department",
          "Unknown department 'legal'", audited_case=False),
    Case_("pause by a member", lambda s: None, lambda s, c: s.set_paused(AGENT, True), AGENT,
          "pause", "not_allowed", "Only admins can pause", audited_case=False),
    Case_("a private reply on X", claimed,
          lambda s, c: s.set_draft(AGENT, c, REPLY, private=True), AGENT,
          "reply_private", "wrong_network", "only possible for Facebook and Instagram"),
    Case_("a private reply after 7 days", eight_days_on,
          lambda s, c: s.reply(AGENT, c, REPLY, private=True), AGENT,
          "reply_private", "window_closed", "only within 7 days of the comment"),
    Case_("a private reply approved after 7 days", private_awaiting_on_day_8,
          lambda s, c: s.approve(LEAD, c), LEAD,
          "approve", "window_closed", "only within 7 days of the comment"),
    Case_("a second private reply", privately_replied,
          lambda s, c: s.set_draft(AGENT, c, REPLY + " Again.", private=True), AGENT,
          "reply_private", "already_sent", "allows one per comment"),
    Case_("a member hides a comment", facebook, lambda s, c: s.hide(AGENT, c, "spam"), AGENT,
          "hide", "not_allowed", "Only managers of Customer Care"),
    Case_("hiding on X", new_case, lambda s, c: s.hide(LEAD, c, "spam"), LEAD,
          "hide", "wrong_network", "only possible for Facebook and Instagram comments"),
    Case_("hiding without a reason", facebook, lambda s, c: s.hide(LEAD, c, " "), LEAD,
          "hide", "no_reason", "Say why you hide it"),
    Case_("hiding twice", hidden, lambda s, c: s.hide(LEAD2, c, "abuse"), LEAD2,
          "hide", "no_change", "already hiding on Facebook"),
    Case_("showing what is not hidden", facebook, lambda s, c: s.unhide(LEAD, c), LEAD,
          "unhide", "no_change", "is not hidden on Facebook"),
    Case_("a member shows a comment again", hidden, lambda s, c: s.unhide(AGENT, c), AGENT,
          "unhide", "not_allowed", "Only managers of Customer Care"),
    Case_("resume when running", lambda s: None, lambda s, c: s.set_paused(ADMIN, False),
          ADMIN, "resume", "no_change", "already running", audited_case=False),
    Case_("settle by a manager", uncertain,
          lambda s, c: s.settle(LEAD, c, "not-posted"), LEAD,
          "settle", "not_allowed", "Only admins can settle"),
    Case_("settle what is not uncertain", approved,
          lambda s, c: s.settle(ADMIN, c, "not-posted"), ADMIN,
          "settle", "no_change", "no publish of unknown outcome"),
    Case_("settle as published without a link", uncertain,
          lambda s, c: s.settle(ADMIN, c, "published", "status 123"), ADMIN,
          "settle", "usage", "Give the link of the reply"),
    Case_("settle with an unknown outcome", uncertain,
          lambda s, c: s.settle(ADMIN, c, "maybe"), ADMIN,
          "settle", "usage", "not-posted"),
    Case_("settle while a check is running", lambda s: (
        (_cid := uncertain(s)), s.outbox.claim(["publish"]))[0],
          lambda s, c: s.settle(ADMIN, c, "not-posted"), ADMIN,
          "settle", "busy", "checking X for case"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_refusal_says_why_changes_nothing_and_is_audited(
    case: Case_, service: CareService, publisher: PublishWorker
) -> None:
    case_id = case.setup(service)
    tables = ("cases", "drafts", "approvals", "outbox", "suggestions")

    def snapshot() -> list[object]:
        # The audit log (and its head in settings) is the one thing a refusal adds to.
        return [service.store.query(f"SELECT * FROM {t} ORDER BY 1") for t in tables] + [
            service.store.query("SELECT * FROM settings WHERE key != 'audit_head'")
        ]

    before = snapshot()
    with pytest.raises(Refusal) as refused:
        case.act(service, case_id)
    assert refused.value.code == case.code
    assert case.says in str(refused.value)
    if case.name != "the same words again":  # its first draft is a real change
        assert snapshot() == before, "a refusal must change nothing"
    entry = service.store.one("SELECT * FROM audit ORDER BY seq DESC LIMIT 1")
    assert entry is not None
    assert entry["actor"] == f"slack:{case.actor.user_id}"
    assert entry["action"] == case.action
    assert entry["outcome"] == f"refused:{case.code}"
    assert entry["case_id"] == (case_id if case.audited_case else None)
    assert json.loads(entry["detail"])["reason"] == str(refused.value)


def test_a_reply_whose_words_are_already_the_draft_is_still_submitted(
    service: CareService,
) -> None:
    case_id = claimed(service)
    service.set_draft(AGENT, case_id, REPLY)
    assert service.reply(AGENT, case_id, REPLY).state.value == "awaiting_approval"


def test_approving_while_paused_says_the_reply_waits_for_resume(service: CareService) -> None:
    from bot.commands import run_command
    from bot.models import text_hash

    case_id = submitted(service)
    service.set_paused(ADMIN, True)
    code = text_hash(service.get_case(case_id).draft_text or "")[:8]
    answer = run_command(service, LEAD, f"approve {case_id} {code}")
    assert answer.ok and "paused" in answer.text and "/care resume" in answer.text
    assert "shortly" not in answer.text
