"""The care desk through Slack: the real Bolt app and slack_sdk against the fake Slack, with
signed requests. The saved-reply picker, the tags overflow and modal, and a VIP's card."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Secrets, parse_config
from bot.models import CaseState, text_hash
from bot.ports import FixedClock
from bot.runtime import Runtime
from tests.conftest import START
from tests.fakes.slack import start_fake_slack
from tests.test_desk import desk_data
from tests.test_slack import SECRET, TOKEN, Harness, wait_until


class DeskHarness(Harness):
    def choose(self, user: str, action_id: str, value: str, *, name: str | None = None) -> int:
        """A pick in a select menu or an overflow (Slack sends `selected_option`)."""
        self.triggers += 1
        payload = {
            "type": "block_actions",
            "user": {"id": user, "team_id": "T0ACME", **({"name": name} if name else {})},
            "team": {"id": "T0ACME"},
            "channel": {"id": "C0CARE"},
            "trigger_id": f"trigger-{self.triggers}",
            "response_url": self.fake.response_url(f"pick{self.triggers}"),
            "container": {"type": "message", "message_ts": "1700000000.000100"},
            "actions": [
                {
                    "action_id": action_id,
                    "type": "static_select",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": "x"},
                        "value": value,
                    },
                    "action_ts": "1.2",
                }
            ],
        }
        status, _ = self.signed_post("payload=" + urllib.parse.quote(json.dumps(payload)))
        return status


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[DeskHarness]:
    clock = FixedClock(START)
    data = desk_data()
    data["slack"] = {"enabled": True, "mode": "http", "admins": ["U0ADMIN"], "team_id": "T0ACME"}
    config = parse_config(data, base_dir=tmp_path)
    with start_fake_slack() as fake:
        secrets = Secrets(
            slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=fake.api_url
        )
        runtime = Runtime(config, secrets, clock=clock)
        h = DeskHarness(fake, runtime, clock)
        try:
            yield h
        finally:
            h.server.stop()
            runtime.store.close()


def _blocks(call: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = call["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


def test_picker_to_draft_to_approval_to_published_with_variables_filled(
    harness: DeskHarness,
) -> None:
    case_id = harness.ingest(author_name="Maya López")
    harness.deliver()
    card = _blocks(harness.fake.calls_to("chat.postMessage")[0])
    picker = next(b for b in card if b["block_id"] == "saved_replies")["accessory"]
    assert picker["options"][0]["value"] == f"{case_id}:sorry"

    # U0AGENT2 has no [[people]] name: the name Slack sends signs the reply.
    assert harness.choose("U0AGENT2", "saved_reply", f"{case_id}:sorry", name="bo.smith") == 200
    wait_until(lambda: harness.service.get_case(case_id).draft_text is not None)
    filled = f"@maya Hi Maya, we're sorry. Please DM us your booking ref (case {case_id}). Bo"
    case = harness.service.get_case(case_id)
    assert case.draft_text == filled and case.state is CaseState.CLAIMED
    assert case.claimed_by == "U0AGENT2"  # drafting an unclaimed case claims it

    harness.click("U0AGENT2", "submit", str(case_id))
    wait_until(lambda: harness.state(case_id) is CaseState.AWAITING_APPROVAL)
    harness.click("U0LEAD", "approve", json.dumps({"case": case_id, "hash": text_hash(filled)}))
    wait_until(lambda: harness.state(case_id) is CaseState.APPROVED)
    assert harness.runtime.publish_worker.drain() == 1
    assert harness.state(case_id) is CaseState.PUBLISHED
    posted = harness.service.store.one("SELECT text FROM dry_run_posts")
    assert posted == {"text": filled}
    harness.deliver()
    assert filled.split(" Bo")[0][:40] in json.dumps(harness.fake.calls_to("chat.update"))
    assert harness.ephemerals() == []


def test_an_unknown_or_too_long_saved_reply_is_refused_privately(harness: DeskHarness) -> None:
    case_id = harness.ingest()
    harness.choose("U0AGENT1", "saved_reply", f"{case_id}:nope")
    harness.choose("U0AGENT1", "saved_reply", f"{case_id}:long")
    harness.choose("U0AGENT1", "saved_reply", "garbage")
    harness.fake.wait_for("chat.postEphemeral", 3)
    said = harness.ephemerals()
    assert said[0] == "There is no saved reply :nope; `/care saved` lists them."
    assert said[1].startswith("The reply cannot be used: it is ")
    assert "over the limit of 280" in said[1]
    assert said[2] == "This picker does not name a saved reply."
    case = harness.service.get_case(case_id)
    assert case.state is CaseState.NEW and case.draft_text is None


def test_tags_from_the_card_overflow_modal_and_clear(harness: DeskHarness) -> None:
    case_id = harness.ingest()
    harness.deliver()
    card = _blocks(harness.fake.calls_to("chat.postMessage")[0])
    tags_block = next(b for b in card if b["block_id"] == "tags")
    assert "`late` · `refund`" in tags_block["text"]["text"]

    harness.choose("U0AGENT1", "edit_tags", f"edit:{case_id}")
    modal = harness.fake.wait_for("views.open")[0]["view"]
    modal = json.loads(modal) if isinstance(modal, str) else modal
    # The form carries the tags it shows, so saving applies only this person's changes.
    assert modal["callback_id"] == "edit_tags"
    assert modal["private_metadata"] == f"{case_id}:late,refund"
    element = modal["blocks"][0]["element"]
    assert element["initial_value"] == "late refund"

    status, body = harness.submit_view(
        "U0AGENT1",
        "edit_tags",
        case_id,
        {"tags": {"tags_text": {"value": "refund lost-bag"}}},
        metadata=modal["private_metadata"],
    )
    assert status == 200 and "errors" not in body
    assert harness.service.view(case_id).tags == ["lost-bag", "refund"]
    status, body = harness.submit_view(
        "U0AGENT1", "edit_tags", case_id, {"tags": {"tags_text": {"value": "Lost Bag!"}}}
    )
    assert "errors" in body and "a tag is lower-case" in body
    assert harness.service.view(case_id).tags == ["lost-bag", "refund"]

    harness.choose("U0AGENT1", "edit_tags", f"clear:{case_id}")
    wait_until(lambda: harness.service.view(case_id).tags == [])
    entries = [r for r in harness.service.audit_trail(case_id) if r["action"] == "tag"]
    details = [(json.loads(r["detail"]), r["outcome"]) for r in entries]
    assert details[0] == ({"added": ["lost-bag"], "removed": ["late"]}, "ok")
    assert details[1][1] == "refused:bad_tag"
    assert details[2] == ({"added": [], "removed": ["lost-bag", "refund"]}, "ok")
    harness.deliver()
    notes = [p["text"] for p in harness.fake.calls_to("chat.postMessage") if p.get("thread_ts")]
    assert "Tags +lost-bag -late by <@U0AGENT1>" in notes


def test_a_tag_added_by_someone_else_while_the_form_was_open_is_kept(
    harness: DeskHarness,
) -> None:
    from bot.commands import run_command
    from bot.models import Actor

    case_id = harness.ingest()
    harness.choose("U0AGENT1", "edit_tags", f"edit:{case_id}")
    modal = harness.fake.wait_for("views.open")[0]["view"]
    modal = json.loads(modal) if isinstance(modal, str) else modal
    # Meanwhile a colleague tags the case from the command line.
    assert run_command(
        harness.service, Actor("U0LEAD", team_id="T0ACME"), f"tag {case_id} +press"
    ).ok
    status, body = harness.submit_view(
        "U0AGENT1",
        "edit_tags",
        case_id,
        {"tags": {"tags_text": {"value": "refund lost-bag"}}},  # removed late, added lost-bag
        metadata=modal["private_metadata"],
    )
    assert status == 200 and "errors" not in body
    assert harness.service.view(case_id).tags == ["lost-bag", "press", "refund"]


def test_a_vips_card_mentions_the_departments_managers(harness: DeskHarness) -> None:
    case_id = harness.ingest("@AcmeAir where is my bag", author_followers=250_000)
    harness.deliver()
    card = _blocks(harness.fake.calls_to("chat.postMessage")[0])
    vip = next(b for b in card if b["block_id"] == "vip")
    assert "<@U0LEAD>, <@U0LEAD2>" in vip["elements"][0]["text"]
    assert harness.service.get_case(case_id).priority.value == "high"


def test_saved_and_tag_commands_answer_privately(harness: DeskHarness) -> None:
    case_id = harness.ingest()
    answer = harness.ask("U0AGENT1", "saved")
    assert answer["response_type"] == "ephemeral" and ":sorry" in answer["text"]
    answer = harness.ask("U0AGENT1", f"tag {case_id} +vip -late")
    assert answer["text"] == f"Case #{case_id} tags +vip -late; now: refund, vip."
    answer = harness.ask("U0AGENT1", f"reply {case_id} :thanks")
    assert "Thanks Maya! Acme Air" in answer["text"]
    assert harness.state(case_id) is CaseState.AWAITING_APPROVAL
    listing = harness.ask("U0LEAD", "queue tag:vip")["text"]
    assert listing.startswith("Open cases tagged vip: 1")
