"""Where features built apart meet: saved replies, tags, VIPs, the LLM and the care desk's
bulk and claim verbs on Facebook and Instagram cases."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import audit, desk
from bot.ai import safe_suggestions
from bot.commands import run_command
from bot.config import Config, parse_config
from bot.errors import PublishError, Refusal
from bot.models import Mention
from bot.moderation import DryRunModerator, ModerationWorker
from bot.ports import FixedClock
from bot.service import CareService
from bot.store import Store
from integrations.meta_payloads import facebook_change
from tests.conftest import AGENT, LEAD, START, mention, new_case
from tests.test_desk import desk_data

PSID = "7391847239012345"  # what a Facebook comment's author "handle" is: a page-scoped id


def test_an_llm_suggestion_for_a_facebook_comment_does_not_print_the_page_scoped_id() -> None:
    kept = safe_suggestions(
        [
            "@customer So sorry about the delay. Please message us your booking reference.",
            "Thanks for telling us, @customer. We're on it.",
        ],
        handle=PSID,
        forbidden=[],
        system_prompt="You draft replies.",
        limit=3,
        network="facebook",
    )
    assert kept == [
        "So sorry about the delay. Please message us your booking reference.",
        "Thanks for telling us. We're on it.",
    ]


def test_an_llm_suggestion_for_an_instagram_comment_is_addressed_and_kept_within_2200() -> None:
    long = "@customer " + "We are so sorry. " * 140
    kept = safe_suggestions(
        ["@customer So sorry! Send us a DM with your booking reference.", long],
        handle="maya_travels",
        forbidden=[],
        system_prompt="You draft replies.",
        limit=3,
        network="instagram",
    )
    assert kept == ["@maya_travels So sorry! Send us a DM with your booking reference."]


def test_an_instagram_username_is_not_taken_for_a_first_name(config: Config) -> None:
    # Instagram gives a username and no name: the payload's name is the username, so
    # "acme_fan_2000" must not become "Hi Acme".
    values = desk.saved_reply_values(
        config,
        case_id=7,
        handle="acme_fan_2000",
        author_name="acme_fan_2000",
        actor=AGENT,
        network="instagram",
    )
    assert values["first_name"] == "@acme_fan_2000"
    assert values["handle"] == "@acme_fan_2000"


# ------------------------------------------------------------------ exactly-once hide


class SlowModerator:
    """Hides, but so slowly the first time that the lease lapses and `rival` (another
    process's worker) takes the item over and finishes it meanwhile."""

    def __init__(self, clock: FixedClock, lease: timedelta) -> None:
        self.clock = clock
        self.lease = lease
        self.rival: ModerationWorker | None = None
        self.calls: list[bool] = []

    def set_hidden(self, network: str, comment_id: str, hidden: bool) -> None:
        self.calls.append(hidden)
        if self.rival is not None:
            rival, self.rival = self.rival, None
            self.clock.advance(self.lease.total_seconds() + 1)
            assert rival.run_once()


def _hide_taken_over(
    config: Config, store: Store, clock: FixedClock, *, slow_fails: bool
) -> tuple[CareService, int, SlowModerator]:
    service = CareService(config, store, clock=clock)
    other = CareService(config, store, clock=clock)
    other.outbox.owner = "other-process"
    case_id = new_case(service, network="facebook")
    service.hide(LEAD, case_id, "posted a phone number")

    moderator = SlowModerator(clock, service.outbox.lease)
    moderator.rival = ModerationWorker(other, DryRunModerator(store, clock))

    class Late(SlowModerator):
        def set_hidden(self, network: str, comment_id: str, hidden: bool) -> None:
            moderator.set_hidden(network, comment_id, hidden)
            if slow_fails:
                raise PublishError("(#100) permissions error", permanent=True)

    assert ModerationWorker(service, Late(clock, service.outbox.lease)).run_once()
    return service, case_id, moderator


def _hide_trail(service: CareService, case_id: int) -> list[str]:
    trail = [f"{r['action']}:{r['outcome']}" for r in service.audit_trail(case_id)]
    return [t for t in trail if t.startswith("hide")]


@pytest.mark.parametrize("slow_fails", [False, True])
def test_a_hide_taken_over_by_another_process_is_recorded_once(
    config: Config, store: Store, clock: FixedClock, slow_fails: bool
) -> None:
    service, case_id, moderator = _hide_taken_over(config, store, clock, slow_fails=slow_fails)
    assert moderator.calls == [True]  # the rival's call went to the dry-run moderator
    assert service.store.scalar("SELECT count(*) FROM dry_run_moderations") == 1
    assert service.get_case(case_id).hidden_state == "hidden"
    trail = _hide_trail(service, case_id)
    # The process that lost its lease leaves the record to the one that took over:
    # one hide_ok, no "could not hide" after the comment was hidden.
    assert trail == ["hide:ok", "hide_ok:ok"]
    assert audit.verify(service.store.db).ok


# ------------------------------------------------------------------ saved replies, privately


def _desk_service(tmp_path: Path, clock: FixedClock, **overrides: Any) -> CareService:
    config = parse_config(desk_data(**overrides), base_dir=tmp_path)
    return CareService(config, Store(tmp_path / "desk.db"), clock=clock)


def test_a_saved_reply_as_an_instagram_private_reply_keeps_to_directs_1000_bytes(
    tmp_path: Path, clock: FixedClock
) -> None:
    middle = "We are very sorry about your flight today. " * 30  # ~1,290 characters
    service = _desk_service(
        tmp_path,
        clock,
        saved_replies=[
            {"id": "long", "title": "Long apology", "text": "Hi {first_name}! " + middle},
            {"id": "dm", "title": "Ask for DM", "text": "Hi {first_name}, case {case}: {handle}"},
        ],
    )
    case_id = new_case(
        service, network="instagram", author_handle="maya_travels", author_name="maya_travels"
    )
    # Public, it fits Instagram's 2,200; as a Direct message it is over 1,000 bytes.
    answer = run_command(service, AGENT, f"reply-private {case_id} :long")
    assert not answer.ok and "1000" in answer.text.replace(",", "")
    assert service.get_case(case_id).draft_text is None
    answer = run_command(service, AGENT, f"reply {case_id} :long")
    assert answer.ok, answer.text
    draft = service.get_case(case_id).draft_text or ""
    assert draft.startswith("Hi @maya_travels! We are very sorry")  # addressed: no prefix

    other = new_case(
        service, network="instagram", author_handle="maya_travels", author_name="maya_travels"
    )
    assert run_command(service, AGENT, f"reply-private {other} :dm").ok
    private = service.get_case(other)
    assert private.draft_private
    assert private.draft_text == f"Hi @maya_travels, case {other}: @maya_travels"


def test_a_saved_reply_on_facebook_greets_by_name_publicly_and_privately(
    tmp_path: Path, clock: FixedClock
) -> None:
    service = _desk_service(tmp_path, clock)
    public = new_case(service, network="facebook", author_handle=PSID, author_name="Jo Bloggs")
    private = new_case(service, network="facebook", author_handle=PSID, author_name="Jo Bloggs")
    assert run_command(service, AGENT, f"reply {public} :thanks").ok
    assert run_command(service, AGENT, f"reply-private {private} :sorry").ok
    assert service.get_case(public).draft_text == "Thanks Jo! Acme Air"
    text = service.get_case(private).draft_text or ""
    assert text.startswith("Hi Jo, we're sorry.") and PSID not in text


# ------------------------------------------------------------------ grouping across networks


def test_copies_group_per_network_so_one_card_never_mixes_x_and_facebook(
    service: CareService,
) -> None:
    text = "@AcmeAir Boycott Acme Air, they lost my bag and never answered"
    x_one = new_case(service, text, network="x", author_id="1", author_handle="one")
    x_two = new_case(service, text, network="x", author_id="2", author_handle="two")
    fb_one = new_case(service, text, network="facebook", author_id=PSID, author_handle=PSID)
    fb_two = new_case(service, text, network="facebook", author_id="99", author_handle="99")
    groups = {
        r["id"]: r["group_id"]
        for r in service.store.query("SELECT id, group_id FROM cases ORDER BY id")
    }
    # A reply on a card goes to its own network, and only Meta's comments can be hidden
    # or answered privately (one per comment): a Facebook copy gets a Facebook card.
    assert groups == {x_one: None, x_two: x_one, fb_one: None, fb_two: fb_one}
    assert [g.case_id for g in service.view(x_one).grouped] == [x_two]
    # A Facebook card lists its copies by number: their "handles" are page-scoped ids.
    from handlers.slack_cards import case_card
    from handlers.teams_cards import case_card as teams_card

    now = service.clock.now()
    for card in (
        case_card(service.view(fb_one), now=now),
        teams_card(service.view(fb_one), now=now),
    ):
        shown = json.dumps(card, ensure_ascii=False)
        assert f"#{fb_two} (" in shown and "@99" not in shown
    assert "@two" in json.dumps(case_card(service.view(x_one), now=now))

    # "Dismiss" on the X card dismisses the X copy and leaves the Facebook ones alone.
    service.dismiss(AGENT, x_one, "campaign")
    states = [service.get_case(n).state.value for n in (x_one, x_two, fb_one, fb_two)]
    assert states == ["dismissed", "dismissed", "new", "new"]


# ------------------------------------------------------------------ hiding a conversation


def test_hiding_a_case_hides_the_follow_up_comment_that_joined_it(service: CareService) -> None:
    # Two comments by one person under the brand's post are one case (the conversation);
    # the personal data is in the second. "Hide" on the card must not leave it on show.
    first = mention(
        "@AcmeAir my flight was delayed 3 hours",
        network="facebook",
        id="post_1_c1",
        author_id=PSID,
        author_handle=PSID,
        conversation_id="post_1",
    )
    second = mention(
        "my booking ref is QX7Y2Z and my phone 07700 900123, call me",
        network="facebook",
        id="post_1_c2",
        author_id=PSID,
        author_handle=PSID,
        conversation_id="post_1",
        created_at=START + timedelta(minutes=2),
    )
    [case_id] = service.ingest(first).case_ids
    assert service.ingest(second).joined == 1
    service.hide(LEAD, case_id, "posted a phone number")
    ModerationWorker(service, DryRunModerator(service.store, service.clock)).drain()
    hidden = service.store.query(
        "SELECT comment_id FROM dry_run_moderations WHERE hidden = 1 ORDER BY comment_id"
    )
    assert [r["comment_id"] for r in hidden] == ["post_1_c1", "post_1_c2"]
    assert service.get_case(case_id).hidden_state == "hidden"
    assert _hide_trail(service, case_id) == ["hide:ok", "hide_ok:ok"]

    # Shown again: both.
    service.unhide(LEAD, case_id)
    ModerationWorker(service, DryRunModerator(service.store, service.clock)).drain()
    shown = service.store.query("SELECT comment_id FROM dry_run_moderations WHERE hidden = 0")
    assert sorted(r["comment_id"] for r in shown) == ["post_1_c1", "post_1_c2"]


def test_a_facebook_comment_meta_does_not_name_is_not_greeted_as_facebook(
    tmp_path: Path, clock: FixedClock
) -> None:
    # Without `from` (Meta does not name everyone to the page) the comment has no name.
    unnamed = facebook_change(
        {
            "item": "comment",
            "verb": "add",
            "comment_id": "post_9_c1",
            "post_id": "post_9",
            "message": "My flight was delayed 3 hours and nobody told us anything",
            "created_time": int(START.timestamp()),
        },
        page_id="102030405060708",
    )
    assert unnamed is not None
    service = _desk_service(tmp_path, clock)
    [case_id] = service.ingest(unnamed).case_ids
    assert run_command(service, AGENT, f"reply {case_id} :thanks").ok
    assert service.get_case(case_id).draft_text == "Thanks there! Acme Air"


def test_a_comment_that_joins_a_hidden_case_can_be_hidden_too(service: CareService) -> None:
    def comment(n: int, text: str) -> Mention:
        return mention(
            text,
            network="facebook",
            id=f"post_2_c{n}",
            author_id=PSID,
            author_handle=PSID,
            conversation_id="post_2",
            created_at=START + timedelta(minutes=n),
        )

    [case_id] = service.ingest(comment(1, "You are all useless liars, worst airline")).case_ids
    service.hide(LEAD, case_id, "abuse")
    worker = ModerationWorker(service, DryRunModerator(service.store, service.clock))
    worker.drain()
    # "Why did you hide my comment? Call me on ..." joins the hidden case.
    assert service.ingest(comment(2, "why did you hide my comment?? call me 07700 900123")).joined
    service.hide(LEAD, case_id, "posted a phone number")
    worker.drain()
    hidden = service.store.query("SELECT comment_id FROM dry_run_moderations WHERE hidden = 1")
    assert "post_2_c2" in {r["comment_id"] for r in hidden}
    # Nothing new to hide: refused as before.
    with pytest.raises(Refusal, match="already hidden"):
        service.hide(LEAD, case_id, "again")
