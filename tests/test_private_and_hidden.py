"""Private replies and hidden comments (Facebook / Instagram), as every surface offers them:
the same approval rules as public replies, Meta's window checked at draft, approval and
send time, and hiding as an audited manager action through the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console

from bot import audit
from bot.commands import run_command
from bot.config import Secrets
from bot.delivery import DryRunPublisher, PublishWorker
from bot.errors import PublishError, Refusal
from bot.models import Actor, CaseState, reply_hash, text_hash
from bot.moderation import DryRunModerator, ModerationWorker, ModeratorRouter
from bot.ports import FixedClock
from bot.reports import kpis
from bot.runtime import Runtime
from bot.service import CareService
from bot.store import Store
from handlers.console import ConsoleSurface, render_card, run_line
from handlers.slack_cards import case_card as slack_card
from handlers.teams_cards import VERBS
from handlers.teams_cards import case_card as teams_card
from tests.conftest import ADMIN, AGENT, AGENT2, LEAD, LEAD2, START, mention, new_case
from tests.fakes.slack import start_fake_slack
from tests.test_slack import SECRET, TOKEN, Harness, slack_config, wait_until
from tests.test_teams import (
    MANAGER,
    MEMBER,
    Teams,
    teams,  # noqa: F401 (the fixture)
)

WORDS = "Please send us your booking reference here and we will sort the refund."
DAY = 86400


def fb_case(service: CareService, **fields: object) -> int:
    return new_case(service, network="facebook", **fields)


def private_posts(service: CareService) -> list[dict[str, object]]:
    return service.store.query("SELECT * FROM dry_run_posts ORDER BY id")


def card_text(service: CareService, case_id: int) -> str:
    return json.dumps(slack_card(service.view(case_id), now=service.clock.now()))


# ------------------------------------------------------------------ private replies


def test_a_private_reply_is_approved_and_sent_privately_once(
    service: CareService, publisher: PublishWorker
) -> None:
    case_id = fb_case(service)
    answer = run_command(service, AGENT, f"reply-private {case_id} {WORDS}")
    assert answer.ok and "Private reply (Messenger)" in answer.text
    case = service.get_case(case_id)
    assert case.state is CaseState.AWAITING_APPROVAL and case.draft_private
    assert "not posted publicly" in card_text(service, case_id)

    # The approval prompt says how the words go out; its code is the private reply's.
    prompt = run_command(service, LEAD, f"approve {case_id}")
    assert "private Messenger message (not posted publicly)" in prompt.text
    assert prompt.approval is not None
    assert prompt.approval.text_hash == reply_hash(case.draft_text or "", private=True)
    assert prompt.approval.text_hash != text_hash(case.draft_text or "")
    assert run_command(service, LEAD, f"approve {case_id} {prompt.approval.text_hash[:8]}").ok

    assert publisher.drain() == 1
    assert publisher.drain() == 0
    [post] = private_posts(service)
    assert post["private"] == 1 and post["in_reply_to_id"] == case.mention_id
    assert post["text"] == case.draft_text
    case = service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED
    card = card_text(service, case_id)
    assert "Replied privately" in card and "View published reply" not in card
    notes = [
        json.loads(r["payload"])["text"]
        for r in service.store.query("SELECT payload FROM outbox WHERE kind = 'note'")
    ]
    assert notes[-1].startswith("Replied privately (Messenger): dry-run://facebook/private/")
    # Reports count it as a reply.
    figures = kpis(service.store, since=START, until=service.clock.now() + timedelta(seconds=1))
    assert figures.replied == 1
    assert audit.verify(service.store.db).ok


def test_instagram_private_replies_go_to_instagram_direct(service: CareService) -> None:
    case_id = new_case(service, network="instagram")
    answer = run_command(service, AGENT, f"reply-private {case_id} {WORDS}")
    assert "Private reply (Instagram Direct)" in answer.text
    assert "Instagram Direct message, not posted publicly" in card_text(service, case_id)


@pytest.mark.parametrize(("day", "allowed"), [(6, True), (7, True), (8, False)])
def test_the_seven_day_window_counts_from_the_comment(
    service: CareService, clock: FixedClock, day: int, allowed: bool
) -> None:
    case_id = fb_case(service)
    clock.advance(day * DAY - 60)  # a minute short of the day: day 7 is still inside
    answer = run_command(service, AGENT, f"reply-private {case_id} {WORDS}")
    assert answer.ok is allowed
    if not allowed:
        assert "only within 7 days of the comment" in answer.text
        assert service.get_case(case_id).draft_text is None


def test_approved_on_day_6_but_sent_on_day_8_fails_with_the_reason(
    service: CareService, publisher: PublishWorker, clock: FixedClock
) -> None:
    case_id = fb_case(service)
    clock.advance(6 * DAY)
    service.reply(AGENT, case_id, WORDS, private=True)
    service.approve(LEAD, case_id)
    service.set_paused(ADMIN, True)  # publishing waits ...
    clock.advance(2 * DAY)  # ... past the window
    service.set_paused(ADMIN, False)
    assert publisher.drain() == 1
    assert private_posts(service) == []
    case = service.get_case(case_id)
    assert case.state is CaseState.FAILED
    assert case.note is not None and "only within 7 days of the comment" in case.note


def test_one_private_reply_per_comment(service: CareService, publisher: PublishWorker) -> None:
    case_id = fb_case(service)
    service.reply(AGENT, case_id, WORDS, private=True)
    service.approve(LEAD, case_id)
    publisher.drain()
    answer = run_command(service, AGENT, f"reply-private {case_id} One more thing.")
    assert not answer.ok and "already sent" in answer.text and "one per comment" in answer.text
    assert len(private_posts(service)) == 1


def test_switching_public_and_private_voids_the_approval(
    service: CareService, publisher: PublishWorker
) -> None:
    case_id = fb_case(service)
    service.reply(AGENT, case_id, WORDS)
    public_hash = service.get_case(case_id).draft_hash
    service.approve(LEAD, case_id)
    assert service.get_case(case_id).state is CaseState.APPROVED

    # The same words, now to be sent privately: the public approval no longer stands.
    switched = service.set_draft(AGENT, case_id, WORDS, private=True)
    assert switched.state is CaseState.CLAIMED and switched.approved_hash is None
    voided = service.store.one("SELECT void_reason FROM approvals WHERE case_id = ?", [case_id])
    assert voided == {"void_reason": "reply kind changed"}
    service.submit(AGENT, case_id)
    # A manager who saw (and approved) public words cannot have them sent privately.
    with pytest.raises(Refusal, match="changed since you saw it"):
        service.approve(LEAD2, case_id, expected_hash=public_hash)
    publisher.drain()  # the voided approval's publish item is dropped, not sent
    assert private_posts(service) == []

    # And back: the public reply is again a draft nobody approved.
    back = service.set_draft(AGENT, case_id, WORDS, private=False)
    assert back.state is CaseState.CLAIMED and not back.draft_private


def test_the_same_private_words_again_change_nothing(service: CareService) -> None:
    case_id = fb_case(service)
    service.set_draft(AGENT, case_id, WORDS, private=True)
    # An edit that keeps the kind (private=None) of the same words is no change.
    with pytest.raises(Refusal, match="already says exactly that"):
        service.set_draft(AGENT, case_id, WORDS)
    assert service.get_case(case_id).draft_private


# ------------------------------------------------------------------ hiding comments


def moderation(service: CareService) -> ModerationWorker:
    return ModerationWorker(service, DryRunModerator(service.store, service.clock))


def test_a_manager_hides_a_comment_audited_and_shown_on_the_card(service: CareService) -> None:
    case_id = fb_case(service)
    answer = run_command(service, LEAD, f"hide {case_id} posted a phone number")
    assert answer.ok
    assert "Hiding the comment on Facebook" in card_text(service, case_id)
    assert moderation(service).drain() == 1
    case = service.get_case(case_id)
    assert case.hidden_state == "hidden" and case.state is CaseState.NEW  # not closed
    [done] = service.store.query("SELECT * FROM dry_run_moderations")
    assert (done["network"], done["comment_id"], done["hidden"]) == (
        "facebook",
        case.mention_id,
        1,
    )
    card = card_text(service, case_id)
    assert "Comment hidden on Facebook (by <@U0LEAD>: posted a phone number)" in card
    assert '"hide_comment"' not in card  # hidden already: no button to hide it again
    actions = [r["action"] for r in service.audit_trail(case_id)]
    assert actions[-2:] == ["hide", "hide_ok"]
    assert audit.verify(service.store.db).ok

    assert run_command(service, LEAD2, f"unhide {case_id}").ok
    moderation(service).drain()
    assert service.get_case(case_id).hidden_state is None
    rows = service.store.query("SELECT hidden FROM dry_run_moderations ORDER BY id")
    assert [r["hidden"] for r in rows] == [1, 0]


class FlakyModerator:
    """Down for the first `outages` calls, then hides."""

    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.hidden: list[tuple[str, str, bool]] = []

    def set_hidden(self, network: str, comment_id: str, hidden: bool) -> None:
        if self.outages:
            self.outages -= 1
            raise PublishError("Graph API unreachable", permanent=False)
        self.hidden.append((network, comment_id, hidden))


def test_an_outage_retries_the_hide_until_it_is_done(
    service: CareService, clock: FixedClock
) -> None:
    case_id = fb_case(service)
    service.hide(LEAD, case_id, "abuse")
    flaky = FlakyModerator(outages=2)
    worker = ModerationWorker(service, flaky)
    for _ in range(3):
        worker.run_once()
        clock.advance(600)  # past the back-off
    assert flaky.hidden == [("facebook", service.get_case(case_id).mention_id, True)]
    assert service.get_case(case_id).hidden_state == "hidden"


def test_a_network_without_a_moderator_fails_the_hide_with_the_reason(
    service: CareService,
) -> None:
    case_id = new_case(service, network="instagram")
    service.hide(LEAD, case_id, "spam")
    ModerationWorker(service, ModeratorRouter({})).drain()
    case = service.get_case(case_id)
    assert case.hidden_state is None
    notes = [
        json.loads(r["payload"])["text"]
        for r in service.store.query("SELECT payload FROM outbox WHERE kind = 'note'")
    ]
    assert notes[-1].startswith("Could not hide the comment on Instagram")
    assert service.audit_trail(case_id)[-1]["outcome"] == "failed"


def test_pause_holds_hiding_too(service: CareService) -> None:
    case_id = fb_case(service)
    service.hide(LEAD, case_id, "spam")
    service.set_paused(ADMIN, True)
    assert moderation(service).drain() == 0
    service.set_paused(ADMIN, False)
    assert moderation(service).drain() == 1


# ------------------------------------------------------------------ cards on each surface


def test_cards_offer_the_meta_actions_only_on_meta_cases(service: CareService) -> None:
    fb = fb_case(service)
    # Other words: the same words would group the two cases on one card.
    x = new_case(
        service, "@AcmeAir my flight to Rome was cancelled", author_id="7", author_handle="bo"
    )
    now = service.clock.now()

    def ids(case_id: int) -> list[str]:
        blocks = slack_card(service.view(case_id), now=now)["blocks"]
        return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]

    assert ids(fb) == ["claim", "reply_private", "dismiss", "reassign", "hide_comment"]
    assert "reply_private" not in ids(x) and "hide_comment" not in ids(x)
    adaptive = teams_card(service.view(fb), now=now)
    titles = [a["title"] for a in adaptive["actions"]]
    assert "Reply privately" in titles and "Hide comment" in titles
    verbs = [
        a["card"]["actions"][0]["verb"]
        for a in adaptive["actions"]
        if a["type"] == "Action.ShowCard" and a["card"].get("actions")
    ]
    assert "reply_private" in verbs and "hide" in verbs
    assert set(verbs) <= set(VERBS)


def test_console_shows_private_drafts_and_hidden_comments(
    service: CareService, publisher: PublishWorker
) -> None:
    case_id = fb_case(service)
    assert run_line(service, AGENT, f"/care reply-private {case_id} {WORDS}").ok
    console = Console(record=True, width=120)
    console.print(render_card(service.view(case_id), now=service.clock.now()))
    shown = console.export_text()
    assert "Private reply (sent as a private Messenger message, not posted publicly)" in shown
    assert "[ Hide comment ]" in shown
    refused = run_line(service, AGENT2, f"/care hide {case_id} spam")
    assert not refused.ok and "Only managers" in refused.text
    assert run_line(service, LEAD, f"/care hide {case_id} spam").ok
    moderation(service).drain()
    console = Console(record=True, width=120)
    surface = ConsoleSurface(console, service.clock.now, names={"U0LEAD": "Lee"})
    surface.post_card("#care", service.view(case_id))
    assert "Comment hidden on Facebook (by Lee: spam)" in console.export_text()


# ------------------------------------------------------------------ through Slack


@pytest.fixture
def slack(tmp_path: Path) -> Iterator[Harness]:
    clock = FixedClock(START)
    with start_fake_slack() as fake:
        secrets = Secrets(
            slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=fake.api_url
        )
        runtime = Runtime(slack_config(tmp_path), secrets, clock=clock)
        h = Harness(fake, runtime, clock)
        try:
            yield h
        finally:
            h.server.stop()
            runtime.store.close()


def _fb(h: Harness) -> int:
    stats = h.service.ingest(mention(network="facebook"))
    return stats.case_ids[0]


def test_slack_reply_privately_claim_draft_approve_send(slack: Harness) -> None:
    case_id = _fb(slack)
    slack.deliver()
    assert slack.click("U0AGENT1", "reply_private", str(case_id)) == 200
    modal = slack.fake.wait_for("views.open")[0]["view"]
    assert modal["callback_id"] == "reply_private"
    assert "not posted publicly" in json.dumps(modal)
    status, body = slack.submit_view(
        "U0AGENT1", "reply_private", case_id, {"reply": {"reply_text": {"value": WORDS}}}
    )
    assert status == 200 and "errors" not in body
    case = slack.service.get_case(case_id)
    assert case.state is CaseState.CLAIMED and case.draft_private  # claimed by drafting
    slack.click("U0AGENT1", "submit", str(case_id))
    wait_until(lambda: slack.state(case_id) is CaseState.AWAITING_APPROVAL)

    # The card's Approve button carries the private reply's hash.
    slack.deliver()
    blocks = slack.fake.calls_to("chat.update")[-1]["blocks"]
    [approve] = [
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "approve"
    ]
    assert json.loads(approve["value"])["hash"] == case.draft_hash
    assert "*Private reply* (sent as a private Messenger message" in json.dumps(blocks)
    slack.click("U0LEAD", "approve", approve["value"])
    wait_until(lambda: slack.state(case_id) is CaseState.APPROVED)
    assert slack.runtime.publish_worker.drain() == 1
    [post] = private_posts(slack.service)
    assert post["private"] == 1
    slack.deliver()
    card = json.dumps(slack.fake.calls_to("chat.update")[-1]["blocks"])
    assert "Replied privately" in card
    assert slack.ephemerals() == []


def test_slack_reply_privately_outside_the_window_is_refused_before_the_form(
    slack: Harness,
) -> None:
    case_id = _fb(slack)
    slack.clock.advance(8 * DAY)
    slack.click("U0AGENT1", "reply_private", str(case_id))
    [refusal] = slack.fake.wait_for("chat.postEphemeral")
    assert "only within 7 days of the comment" in refusal["text"]
    assert slack.fake.calls_to("views.open") == []
    last = slack.service.audit_trail(case_id)[-1]
    assert (last["action"], last["outcome"]) == ("reply_private", "refused:window_closed")


def test_slack_hide_by_a_manager_and_refused_for_a_member(slack: Harness) -> None:
    case_id = _fb(slack)
    slack.deliver()
    posted = json.dumps(slack.fake.calls_to("chat.postMessage")[0]["blocks"])
    assert '"hide_comment"' in posted and "Hide this comment on Facebook?" in posted

    slack.click("U0AGENT1", "hide_comment", str(case_id))
    [refusal] = slack.fake.wait_for("chat.postEphemeral")
    assert "Only managers of Customer Care" in refusal["text"]
    assert slack.fake.calls_to("views.open") == []

    slack.click("U0LEAD", "hide_comment", str(case_id))
    modal = slack.fake.wait_for("views.open")[0]["view"]
    assert modal["callback_id"] == "hide_reason"
    status, body = slack.submit_view(
        "U0LEAD", "hide_reason", case_id, {"reason": {"reason_text": {"value": "abuse"}}}
    )
    assert status == 200 and "errors" not in body
    assert slack.runtime.moderation_worker.drain() == 1  # dry_run: the dry-run moderator
    slack.deliver()
    card = json.dumps(slack.fake.calls_to("chat.update")[-1]["blocks"])
    assert "Comment hidden on Facebook (by <@U0LEAD>: abuse)" in card
    assert slack.state(case_id) is CaseState.NEW
    # A hidden comment's card offers Unhide (no more Hide), as `/care unhide N` does.
    assert '"unhide_comment"' in card and '"hide_comment"' not in card
    slack.click("U0LEAD", "unhide_comment", str(case_id))
    wait_until(lambda: slack.service.get_case(case_id).hidden_state == "unhiding")
    assert slack.runtime.moderation_worker.drain() == 1
    assert slack.service.get_case(case_id).hidden_state is None
    moderations = slack.service.store.query("SELECT hidden FROM dry_run_moderations ORDER BY id")
    assert [m["hidden"] for m in moderations] == [1, 0]


def test_slack_hide_on_an_x_case_is_refused_with_the_reason(slack: Harness) -> None:
    case_id = slack.ingest()
    answer = slack.ask("U0LEAD", f"hide {case_id} spam")
    assert "only possible for Facebook and Instagram comments" in answer["text"]
    assert slack.service.get_case(case_id).hidden_state is None
    assert slack.service.store.query("SELECT * FROM outbox WHERE kind = 'moderate'") == []


def test_the_runtime_takes_moderators_per_network(tmp_path: Path) -> None:
    from bot.config import parse_config
    from tests.conftest import config_data

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, bool]] = []

        def set_hidden(self, network: str, comment_id: str, hidden: bool) -> None:
            self.calls.append((network, comment_id, hidden))

    data = config_data(publish={"dry_run": False})
    data["slack"] = {"enabled": False}
    recorder = Recorder()
    config = parse_config(data, base_dir=tmp_path)
    posts = Store(config.database_path)
    runtime = Runtime(
        config,
        Secrets(),
        clock=FixedClock(START),
        publisher=DryRunPublisher(posts, FixedClock(START)),
        moderators={"facebook": recorder},
    )
    try:
        case_id = runtime.service.ingest(mention(network="facebook")).case_ids[0]
        runtime.service.hide(LEAD, case_id, "spam")
        assert runtime.moderation_worker.drain() == 1
        assert recorder.calls == [("facebook", runtime.service.get_case(case_id).mention_id, True)]
    finally:
        runtime.store.close()
        posts.close()


# ------------------------------------------------------------------ through Teams


def test_teams_reply_privately_and_hide_from_the_card(teams: Teams) -> None:  # noqa: F811
    service = teams.service
    case_id = service.ingest(mention(network="facebook")).case_ids[0]
    teams.deliver()

    status, answer = teams.press("reply_private", MEMBER, inputs={"reply_text": WORDS})
    assert status == 200 and answer["statusCode"] == 200
    case = service.get_case(case_id)
    assert case.draft_private and case.state is CaseState.CLAIMED
    assert "not posted publicly" in json.dumps(answer["value"])
    teams.deliver()
    teams.press("submit", MEMBER)
    teams.deliver()
    status, answer = teams.press("approve", MANAGER)
    assert status == 200 and service.get_case(case_id).state is CaseState.APPROVED
    PublishWorker(service, DryRunPublisher(service.store, service.clock)).drain()
    [post] = private_posts(service)
    assert post["private"] == 1
    teams.deliver()

    # A member's Hide is refused on the card shown to them; a manager's goes through.
    status, answer = teams.press("hide", MEMBER, inputs={"reason": "abuse"})
    assert "Only managers of Customer Care" in json.dumps(answer["value"])
    assert service.get_case(case_id).hidden_state is None
    teams.press("hide", MANAGER, inputs={"reason": "abuse"})
    moderation(service).drain()
    teams.deliver()
    final = json.dumps(teams.card_message().card)
    assert "Replied privately" in final
    assert "Comment hidden on Facebook (by " in final and ": abuse)" in final


# ------------------------------------------------------------------ ingest


def test_socialcare_ingest_takes_facebook_and_instagram_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main
    from tests.test_cli import CONFIG, line

    config_path = tmp_path / "socialcare.toml"
    config_path.write_text(CONFIG)
    jsonl = tmp_path / "meta.jsonl"
    jsonl.write_text(
        line(1, network="facebook", in_reply_to_id="post_1") + "\n" + line(2, network="instagram")
    )
    assert main(["ingest", str(jsonl), "-c", str(config_path)]) == 0
    assert "2 new cases" in capsys.readouterr().out


def test_the_meta_cards_and_forms_keep_within_slacks_limits(
    service: CareService, publisher: PublishWorker
) -> None:
    from handlers.slack_cards import edit_reply_modal, reason_modal, validate_blocks, validate_view

    case_id = new_case(service, network="instagram")
    long_reason = "personal data <!channel> " * 40
    service.reply(AGENT, case_id, WORDS, private=True)
    service.hide(LEAD, case_id, long_reason)
    moderation(service).drain()
    card = slack_card(service.view(case_id), now=service.clock.now())
    assert validate_blocks(card["blocks"]) == []
    text = json.dumps(card)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert validate_view(edit_reply_modal(999_999_999, WORDS, "a" * 90, private_via="x")) == []
    assert validate_view(reason_modal(999_999_999, "hide")) == []


def test_editing_a_private_draft_keeps_it_private_and_inside_the_window(
    service: CareService, clock: FixedClock
) -> None:
    case_id = fb_case(service)
    service.set_draft(AGENT, case_id, WORDS, private=True)
    edited = service.set_draft(AGENT, case_id, "Thanks!")
    assert edited.draft_private and edited.draft_text == "Thanks!"  # Facebook adds no @handle
    clock.advance(8 * DAY)
    with pytest.raises(Refusal, match="only within 7 days"):
        service.set_draft(AGENT, case_id, "Thanks again!")
    # Made public, the reply is still possible.
    assert not service.set_draft(AGENT, case_id, "Thanks again!", private=False).draft_private


def test_slack_edit_reply_of_a_private_draft_opens_the_private_form(slack: Harness) -> None:
    case_id = _fb(slack)
    agent = Actor("U0AGENT1", team_id="T0ACME")  # the workspace the config pins
    slack.service.set_draft(agent, case_id, WORDS, private=True)
    slack.click("U0AGENT1", "edit_reply", str(case_id))
    modal = slack.fake.wait_for("views.open")[0]["view"]
    assert modal["callback_id"] == "reply_private" and "not posted publicly" in json.dumps(modal)
    slack.submit_view(
        "U0AGENT1", "reply_private", case_id, {"reply": {"reply_text": {"value": "Thanks!"}}}
    )
    case = slack.service.get_case(case_id)
    assert case.draft_text == "Thanks!" and case.draft_private


def test_many_comments_are_hidden_with_one_command_each_on_its_own_merits(
    service: CareService,
) -> None:
    """`/care hide 1-4 REASON`: the Facebook comments are hidden (audited each), the X post
    is refused with the reason, one summary answer; `unhide` and `tag` take lists too."""
    spam = [
        new_case(
            service,
            f"You lost my bag {n} and nobody answers, call 07700 90012{n}",
            network="facebook",
            author_id=f"s{n}",
        )
        for n in range(3)
    ]
    x_post = new_case(service, "@AcmeAir my bag is lost", author_id="7", author_handle="bo")
    answer = run_command(service, LEAD, f"hide {spam[0]}-{x_post} phone numbers in public")
    assert answer.ok
    assert answer.text.startswith(
        f"Hiding the comments of 3 cases: #{spam[0]}–#{spam[-1]}. Reason: phone numbers in public."
    )
    assert f"Refused 1: #{x_post} was refused" in answer.text
    assert [service.get_case(c).hidden_state for c in spam] == ["hiding"] * 3
    assert moderation(service).drain() == 3
    hides = service.store.query(
        "SELECT case_id FROM audit WHERE action = 'hide' AND outcome = 'ok'"
    )
    assert sorted(r["case_id"] for r in hides) == spam

    assert run_command(service, LEAD, f"unhide {spam[0]},{spam[1]}").ok
    assert moderation(service).drain() == 2
    assert [service.get_case(c).hidden_state for c in spam] == [None, None, "hidden"]

    tagged = run_command(service, AGENT, f"tag {spam[0]}-{spam[-1]} +lost-bag")
    assert tagged.ok and tagged.text.startswith("Tagged 3 cases")
    assert all("lost-bag" in service.view(c).tags for c in spam)
    refused = run_command(service, LEAD, f"reply-private {spam[0]},{spam[1]} Hi")
    assert not refused.ok and "one case at a time" in refused.text
