"""Surface review of the care desk through the Slack fake (real Bolt app and slack_sdk)."""

from __future__ import annotations

import json

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
