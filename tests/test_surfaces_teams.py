"""Surface review of the Meta actions through the Teams fake (the real Agents SDK): Hide
comment and Reply privately from the card, next to Dismiss and Edit reply."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.models import CaseState, Mention
from tests.conftest import START
from tests.fakes.teams import card_action, find_action
from tests.test_desk_teams import teams  # noqa: F401  (the fixture)
from tests.test_teams import MANAGER, MEMBER, Teams
from tests.test_teams_cards import by_id


def _facebook_case(teams: Teams) -> int:  # noqa: F811
    teams.runtime.service.ingest_many(
        [
            Mention(
                network="facebook",
                id="102030405060708_111",
                author_id="psid-maya",
                author_handle="maya.okafor",
                author_name="Maya Okafor",
                text="My bag never arrived and nobody answers",
                created_at=START - timedelta(minutes=5),
            )
        ]
    )
    teams.deliver()
    [case] = teams.runtime.service.queue("care")
    return case.id


def _input_id(teams: Teams, verb: str) -> str:  # noqa: F811
    """The id of the one input in the ShowCard whose submit carries `verb` (what a person
    types into in Teams)."""
    card = teams.card_message().card
    assert card is not None
    for show in card.get("actions", []):
        inner = show.get("card") or {}
        if any(a.get("verb") == verb for a in inner.get("actions", [])):
            [field] = [p for p in inner["body"] if str(p.get("type", "")).startswith("Input.")]
            return str(field["id"])
    raise LookupError(verb)


def test_hide_and_private_reply_from_the_teams_card_use_their_own_fields(
    teams: Teams,  # noqa: F811
) -> None:
    case_id = _facebook_case(teams)
    assert find_action(teams.card_message().card or {}, "hide", None)

    inputs: dict[str, Any] = {_input_id(teams, "hide"): "personal data in the comment"}
    # An agent may not hide: told on the card they clicked, nothing changes.
    puts = len(teams.connector.calls_to("PUT"))
    status, answer = teams.press("hide", MEMBER, inputs=inputs)
    assert status == 200
    banner = json.dumps(by_id(answer["value"], "error"), ensure_ascii=False)
    assert "manager" in banner.lower()
    assert teams.runtime.service.get_case(case_id).hidden_state is None
    teams.deliver()
    assert len(teams.connector.calls_to("PUT")) == puts

    status, answer = teams.press("hide", MANAGER, inputs=inputs)
    assert status == 200 and answer["statusCode"] == 200
    case = teams.runtime.service.get_case(case_id)
    assert case.hidden_state in {"hiding", "hidden"}
    assert case.hidden_reason == "personal data in the comment"
    assert case.state is CaseState.NEW  # hiding is not dismissing

    teams.deliver()
    text = "Hi Maya, please send us your booking reference here."
    field = _input_id(teams, "reply_private")
    status, answer = teams.press("reply_private", MEMBER, inputs={field: text})
    assert status == 200 and answer["statusCode"] == 200
    case = teams.runtime.service.get_case(case_id)
    assert case.draft_private and case.draft_text is not None and text in case.draft_text


def test_a_retried_claim_next_invoke_claims_once_and_still_says_what_was_claimed(
    teams: Teams,  # noqa: F811
) -> None:
    """Teams retries an invoke it got no answer to in time: the retry must not claim a
    second case, and the person must not be shown an error for a click that worked."""
    first = _facebook_case(teams)
    card = teams.card_message()
    invoke = card_action(
        "claim_next",
        {},
        conversation_id=card.conversation_id,
        reply_to_id=card.id,
        service_url=teams.url,
        **MEMBER,
    )
    status, answer = teams.post(invoke)
    assert status == 200 and f"#{first}" in json.dumps(answer["value"], ensure_ascii=False)
    assert teams.runtime.service.get_case(first).state is CaseState.CLAIMED
    claims = teams.runtime.service.store.scalar("SELECT count(*) FROM audit WHERE action = 'claim'")

    status, again = teams.post(invoke)  # the same delivery once more
    assert status == 200
    shown = json.dumps(again["value"], ensure_ascii=False)
    assert "does not name a case" not in shown and '"id": "refusal"' not in shown
    assert (
        teams.runtime.service.store.scalar("SELECT count(*) FROM audit WHERE action = 'claim'")
        == claims
    )
