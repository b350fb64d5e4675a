"""Surface review of the care desk through the Slack fake (real Bolt app and slack_sdk)."""

from __future__ import annotations

import json
from typing import Any

from bot.models import Actor
from tests.test_desk_slack import DeskHarness, harness  # noqa: F401  (the fixture)

AGENT = Actor("U0AGENT1", surface="slack", team_id="T0ACME")


def test_editing_many_tags_in_the_modal_keeps_every_tag(harness: DeskHarness) -> None:  # noqa: F811
    """A case with more tags than the old 400-character field held: the modal lists all
    of them, so saving it unchanged (or with one more) removes none and cuts none."""
    from bot import desk_service

    case_id = harness.ingest()
    many = [f"tag-number-{n:02d}-with-a-long-name" for n in range(16)]  # ~530 chars
    desk_service.set_tags(harness.service, AGENT, case_id, " ".join(many))
    before = harness.service.view(case_id).tags

    harness.choose("U0AGENT1", "edit_tags", f"edit:{case_id}")
    modal = harness.fake.wait_for("views.open")[0]["view"]
    modal = json.loads(modal) if isinstance(modal, str) else modal
    element = modal["blocks"][0]["element"]
    assert element["initial_value"].split() == before
    assert len(element["initial_value"]) <= element["max_length"] <= 3000

    value = element["initial_value"] + " extra"
    status, body = harness.submit_view(
        "U0AGENT1", "edit_tags", case_id, {"tags": {"tags_text": {"value": value}}}
    )
    assert status == 200 and "errors" not in body
    assert harness.service.view(case_id).tags == sorted([*before, "extra"])


def _facebook_case(harness: DeskHarness) -> int:  # noqa: F811
    from datetime import timedelta

    from bot.models import Mention
    from tests.conftest import START

    harness.runtime.service.ingest_many(
        [
            Mention(
                network="facebook",
                id="102030405060708_222",
                author_id="psid-maya",
                author_handle="maya.okafor",
                author_name="Maya <!channel> Okafor",
                text="My bag never arrived <!here> and nobody answers",
                created_at=START - timedelta(minutes=5),
            )
        ]
    )
    harness.deliver()
    [case] = harness.runtime.service.queue("care")
    return case.id


def _modal(harness: DeskHarness, n: int) -> dict[str, Any]:  # noqa: F811
    view = harness.fake.wait_for("views.open", n)[n - 1]["view"]
    return json.loads(view) if isinstance(view, str) else view


def test_hide_comment_from_slack_refused_validated_and_done_once(harness: DeskHarness) -> None:  # noqa: F811
    case_id = _facebook_case(harness)
    card = json.dumps(harness.fake.calls_to("chat.postMessage")[0])
    assert "hide_comment" in card and "reply_private" in card
    assert "<!channel>" not in card and "<!here>" not in card

    # An agent: told privately, no form, no change.
    harness.click("U0AGENT1", "hide_comment", str(case_id))
    harness.fake.wait_for("chat.postEphemeral", 1)
    assert "manager" in harness.ephemerals()[0].lower()
    assert harness.fake.calls_to("views.open") == []

    harness.click("U0LEAD", "hide_comment", str(case_id))
    modal = _modal(harness, 1)
    assert modal["callback_id"] == "hide_reason" and modal["private_metadata"] == str(case_id)
    assert len(modal["private_metadata"]) <= 3000

    status, body = harness.submit_view("U0LEAD", "hide_reason", case_id, {"reason": {}})
    assert status == 200 and "errors" in body  # an empty reason is shown on the field
    assert harness.service.get_case(case_id).hidden_state is None

    values = {"reason": {"reason_text": {"value": "personal data"}}}
    status, body = harness.submit_view("U0LEAD", "hide_reason", case_id, values)
    assert status == 200 and "errors" not in body
    case = harness.service.get_case(case_id)
    assert case.hidden_state in {"hiding", "hidden"} and case.hidden_reason == "personal data"
    # The same delivery again (Slack retried it): nothing is done twice.
    harness.triggers -= 1
    harness.submit_view("U0LEAD", "hide_reason", case_id, values)
    hides = [e for e in harness.service.audit_trail(case_id) if e["action"] == "hide"]
    assert len([e for e in hides if e["outcome"] in (None, "ok")]) == 1


def test_reply_privately_from_slack_checks_the_text_in_the_form(harness: DeskHarness) -> None:  # noqa: F811
    case_id = _facebook_case(harness)
    harness.click("U0AGENT1", "reply_private", str(case_id))
    modal = _modal(harness, 1)
    assert modal["callback_id"] == "reply_private"
    field = modal["blocks"][[b.get("block_id") for b in modal["blocks"]].index("reply")]
    assert field["element"]["max_length"] >= 1

    status, body = harness.submit_view(
        "U0AGENT1", "reply_private", case_id, {"reply": {"reply_text": {"value": " "}}}
    )
    assert status == 200 and "errors" in body
    text = "Hi Maya, please send us your booking reference here."
    status, body = harness.submit_view(
        "U0AGENT1", "reply_private", case_id, {"reply": {"reply_text": {"value": text}}}
    )
    assert status == 200 and "errors" not in body
    case = harness.service.get_case(case_id)
    assert case.draft_private and case.draft_text is not None and text in case.draft_text
