"""Near-duplicates in a burst (retweet storms, copy-paste campaigns) share one card."""

from __future__ import annotations

import json

import pytest

from bot.delivery import ChatWorker
from bot.errors import Refusal
from bot.pipeline import fingerprint
from bot.ports import FixedClock
from bot.service import CareService
from tests.conftest import AGENT, LEAD, mention
from tests.test_outbox import RecordingSurface

CAMPAIGN = "@AcmeAir Bring back the free snacks! #SnackGate https://t.co/abc"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (CAMPAIGN, "@AcmeAir bring back the FREE snacks!!! #snackgate https://t.co/xyz", True),
        (CAMPAIGN, f"RT @someone: {CAMPAIGN}", True),
        (CAMPAIGN, "@AcmeAir Bring back the free drinks! #SnackGate", False),
        ("@AcmeAir thanks", "@AcmeAir thanks", None),  # too short to tell: never grouped
    ],
)
def test_fingerprint(a: str, b: str, same: bool | None) -> None:
    if same is None:
        assert fingerprint(a) is None
    else:
        assert (fingerprint(a) == fingerprint(b)) is same


def burst(service: CareService, n: int, text: str = CAMPAIGN, prefix: str = "a") -> list[int]:
    stats = service.ingest_many(
        [mention(text, author_id=f"{prefix}{i}", author_handle=f"{prefix}{i}") for i in range(n)]
    )
    return stats.case_ids


def test_copies_get_their_own_cases_but_share_one_card(service: CareService) -> None:
    ids = burst(service, 5)
    assert len(set(ids)) == 5
    surface = RecordingSurface()
    ChatWorker(service, surface).drain()
    assert [c[0] for c in surface.calls] == ["post"]
    view = service.view(ids[0])
    assert [g.case_id for g in view.grouped] == ids[1:]
    groups = service.store.query("SELECT id, group_id FROM cases ORDER BY id")
    assert [g["group_id"] for g in groups] == [None, ids[0], ids[0], ids[0], ids[0]]


def test_claiming_a_grouped_case_gives_it_a_card_of_its_own(service: CareService) -> None:
    """Once someone works on a near-duplicate, its draft must be on screen before approval."""
    leader, member, *_ = burst(service, 3)
    surface = RecordingSurface()
    chat = ChatWorker(service, surface)
    chat.drain()
    service.claim(AGENT, member)
    chat.drain()
    assert surface.calls[1:] == [
        ("update", "C0CARE", f"#{leader} new"),
        ("note", "C0CARE", f"#{member} now has its own card"),
        ("post", "C0CARE", f"#{member} claimed"),
        ("note", "C0CARE", "Claimed by <@U0AGENT1>"),
    ]
    assert member not in [g.case_id for g in service.view(leader).grouped]
    service.reply(AGENT, member, "Thanks, we hear you about the snacks!")
    chat.drain()
    assert ("update", "C0CARE", f"#{member} awaiting_approval") in surface.calls
    assert "Thanks, we hear you" in (service.view(member).case.draft_text or "")


def test_a_grouped_draft_nobody_was_shown_cannot_be_approved(service: CareService) -> None:
    """A case left in a group by an older version with a draft: refused until it has a card."""
    leader, member = burst(service, 2)
    service.reply(AGENT, member, "Thanks, we hear you about the snacks!")
    service.store.db.execute("UPDATE cases SET group_id = ? WHERE id = ?", (leader, member))
    with pytest.raises(Refusal) as refused:
        service.approve(LEAD, member)
    assert refused.value.code == "not_shown"
    assert service.audit_trail(member)[-1]["outcome"] == "refused:not_shown"


def test_grouping_ends_with_the_window_or_a_claim(service: CareService, clock: FixedClock) -> None:
    leader = burst(service, 1)[0]
    clock.advance(31 * 60)
    late = burst(service, 1, prefix="b")[0]
    assert service.view(leader).grouped == []
    service.claim(AGENT, late)
    after_claim = burst(service, 1, prefix="c")[0]
    assert service.get_case(after_claim).id == after_claim
    assert service.store.scalar("SELECT group_id FROM cases WHERE id = ?", [after_claim]) is None


def test_reassigning_a_grouped_case_gives_it_its_own_card(service: CareService) -> None:
    leader, member = burst(service, 2)
    surface = RecordingSurface()
    chat = ChatWorker(service, surface)
    chat.drain()
    service.reassign(LEAD, member, "marketing")
    chat.drain()
    posts = [c for c in surface.calls if c[0] == "post"]
    assert posts == [("post", "C0CARE", f"#{leader} new"), ("post", "C0MKT", f"#{member} new")]
    assert service.view(leader).grouped == []


def test_a_burst_of_5000_is_stored_once_with_few_cards(service: CareService) -> None:
    texts = [f"@AcmeAir campaign message number {k} about the new baggage fees" for k in range(40)]
    batch = [
        mention(texts[i % 40], id=str(900_000 + i), author_id=f"u{i}", author_handle=f"u{i}")
        for i in range(5000)
    ]
    stats = service.ingest_many(batch + batch[:100])
    assert (stats.created, stats.duplicates) == (5000, 100)
    cards = service.store.scalar("SELECT count(*) FROM outbox WHERE kind = 'card'")
    assert cards == 40
    payload = service.store.scalar("SELECT detail FROM audit WHERE case_id = 41")
    assert json.loads(payload)["grouped_with"] == 1


def test_dismissing_the_first_case_dismisses_the_untouched_copies(service: CareService) -> None:
    leader, taken, *rest = burst(service, 4)
    service.claim(AGENT, taken)
    service.dismiss(AGENT, leader, "spam campaign")
    states = {r["id"]: r["state"] for r in service.store.query("SELECT id, state FROM cases")}
    assert states == {leader: "dismissed", taken: "claimed", **{i: "dismissed" for i in rest}}
    notes = service.store.query("SELECT payload FROM outbox WHERE kind = 'note' ORDER BY id")
    assert "spam campaign (and 2 similar)" in notes[-1]["payload"]
    assert len(service.audit_trail(rest[0])) == 2  # created, then dismissed with the group
