"""The worst card of all: a Facebook VIP case, grouped, tagged, with suggestions, a private
draft, a hidden comment, saved replies and every button at once, on Slack and on Teams,
with hostile text in every field the care desk added (tags, saved-reply titles, managers)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bot.models import CaseState, Intent
from bot.views import CaseView, ManagerRef, SavedReplyChoice
from handlers import slack_cards, teams_cards
from tests import test_slack_cards as sc
from tests import test_teams_cards as tc

STATES = list(CaseState)


def everything(
    view: CaseView, text: str, network: str = "facebook", *, config_text: str | None = None
) -> CaseView:
    """`view` plus every care-desk and Meta part at its largest. `config_text` (default:
    `text`) is what the config supplies: saved-reply titles and managers' names."""
    config_text = text if config_text is None else config_text
    case = replace(
        view.case,
        network=network,
        draft_private=view.case.draft_text is not None,
        hidden_state="hidden",
        hidden_by="U0MODERATOR",
        hidden_reason=text,
    )
    return replace(
        view,
        case=case,
        tags=[f"tag-{n}" for n in range(200)],
        saved_replies=[
            SavedReplyChoice(f"r{n}", config_text, dedicated=n % 2 == 0) for n in range(300)
        ],
        vip_managers=[ManagerRef(f"U0M{n}", f"aaaa-{n}", config_text[:60]) for n in range(10)],
    )


def slack_ids(card: dict[str, Any]) -> tuple[list[str], list[str]]:
    blocks = card["blocks"]
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    action_ids = [n["action_id"] for n in tc.nodes(blocks) if "action_id" in n]
    return block_ids, action_ids


@pytest.mark.parametrize("network", ["facebook", "instagram"])
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("intent", [Intent.COMPLAINT, Intent.SPAM])
def test_slack_everything_card_meets_block_kit_limits(
    network: str, state: CaseState, intent: Intent
) -> None:
    text = "long text " * 1000
    view = everything(sc.huge_view(state, intent, text), text, network)
    card = slack_cards.case_card(view, now=sc.NOW)
    sc.assert_slack_valid(card)
    assert len(card["blocks"]) <= 50
    block_ids, action_ids = slack_ids(card)
    assert len(block_ids) == len(set(block_ids)), block_ids
    assert len(action_ids) == len(set(action_ids)), action_ids
    for block in card["blocks"]:
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25


@pytest.mark.parametrize("hostile", sc.HOSTILE, ids=range(len(sc.HOSTILE)))
@pytest.mark.parametrize("state", [CaseState.CLAIMED, CaseState.AWAITING_APPROVAL])
def test_slack_everything_card_neutralises_hostile_text(hostile: str, state: CaseState) -> None:
    view = everything(sc.huge_view(state, Intent.COMPLAINT, hostile), hostile)
    card = slack_cards.case_card(view, now=sc.NOW)
    sc.assert_slack_valid(card)
    sc.assert_neutralised(card)


@pytest.mark.parametrize("network", ["facebook", "instagram"])
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("char", ["😀", "<", "x"])
def test_teams_everything_card_stays_valid_and_under_80_kb(
    network: str, state: CaseState, char: str
) -> None:
    text = char * 10_000
    title = "Apology, rebooking options and claim form"[:40]
    view = everything(tc.huge_view(state, Intent.COMPLAINT, text), text, network, config_text=title)
    card = teams_cards.case_card(
        view,
        now=tc.NOW,
        error=text,
        names={text[:300]: text},
        departments=[(f"d{n}", text) for n in range(300)],
    )
    tc.assert_card_valid(card, view.case.id)
    inputs = [n["id"] for n in tc.nodes(card) if str(n.get("type", "")).startswith("Input.")]
    assert len(inputs) == len(set(inputs)), inputs


@pytest.mark.parametrize("hostile", tc.HOSTILE, ids=range(len(tc.HOSTILE)))
def test_teams_everything_card_neutralises_hostile_text(hostile: str) -> None:
    # Managers' names are the operator's config; an @mention must sit in a TextBlock.
    view = everything(tc.huge_view(CaseState.CLAIMED, Intent.COMPLAINT, hostile), hostile)
    view = replace(view, vip_managers=[ManagerRef("U0M1", None, "Lea Lead")])
    card = teams_cards.case_card(view, now=tc.NOW, error=hostile, departments=[("d1", hostile)])
    tc.assert_card_valid(card)
    tc.assert_inert(card)


def test_a_long_saved_reply_list_does_not_crowd_the_case_off_the_slack_card() -> None:
    """80 saved replies with 70-character titles on a busy claimed case: the card stays
    under Slack's combined-text limit and still shows the thread, history and all three
    suggestions; the picker offers the first replies (the department's own come first)."""
    post = ("My flight was cancelled and nobody answers. " * 50)[:2000]
    case = sc.make_case(
        CaseState.CLAIMED, Intent.COMPLAINT, draft_text="We are so sorry. " * 110, note="n" * 200
    )
    view = sc.make_view(case, post, **sc.rich_extras("I wrote about my lost bag last week " * 3))
    view = replace(view, suggestions=["We are sorry to hear that. " * 18] * 3)
    title = "Apology with rebooking options and a link to the claims form (Facebook)"
    view = everything(view, "hidden: spam", config_text=title)
    card = slack_cards.case_card(view, now=sc.NOW)
    sc.assert_slack_valid(card)
    shown = [b["block_id"] for b in card["blocks"]]
    for block_id in ("thread", "earlier", "suggestion_1", "suggestion_2", "suggestion_3"):
        assert block_id in shown
    picker = next(b for b in card["blocks"] if b["block_id"] == "saved_replies")["accessory"]
    assert picker["options"][0]["value"] == "42:r0"
    assert 1 <= len(picker["options"]) < 80


def test_the_tag_fields_list_every_tag_uncut() -> None:
    """Saving a tag field sets the tags to what it lists: a cut list would drop tags."""
    from bot.errors import Refusal
    from handlers.slack_desk import tags_modal

    tags = [f"tag-number-{n:02d}-with-a-long-name" for n in range(16)]
    view = replace(tc.make_view(tc.make_case(CaseState.CLAIMED)), tags=tags)
    card = teams_cards.case_card(view, now=tc.NOW)
    field = tc.by_id(card, "tags")
    assert field["value"].split() == tags and len(field["value"]) <= field["maxLength"]

    element = tags_modal(7, tags)["blocks"][0]["element"]
    assert element["initial_value"].split() == tags
    assert len(element["initial_value"]) <= element["max_length"] <= 3000
    with pytest.raises(Refusal, match="too many tags to edit in a form"):
        tags_modal(7, [f"t{n:03d}-{'x' * 34}" for n in range(80)])


@pytest.mark.parametrize("network", ["facebook", "instagram"])
@pytest.mark.parametrize("state", STATES)
def test_teams_meta_card_input_ids_are_unique(network: str, state: CaseState) -> None:
    """Dismiss, Reject and Hide comment each ask a reason, Edit reply and Reply privately
    each a text, on the same card: every Input.* needs its own id (Teams merges inputs
    into the action's data by id, and a card with duplicate ids is invalid)."""
    view = everything(tc.make_view(tc.make_case(state)), "x", network)
    view = replace(view, case=replace(view.case, hidden_state=None, draft_private=False))
    card = teams_cards.case_card(view, now=tc.NOW)
    tc.assert_card_valid(card, view.case.id)


@pytest.mark.parametrize("network", ["x", "facebook", "instagram"])
@pytest.mark.parametrize("state", STATES)
def test_teams_cards_keep_at_most_six_primary_buttons(network: str, state: CaseState) -> None:
    """Teams shows six buttons on a card; more are cut off unless marked secondary (its
    "…" menu). A grouped Facebook card has up to seven: the rarest go to the menu."""
    view = everything(tc.make_view(tc.make_case(state)), "x", network)
    view = replace(view, case=replace(view.case, hidden_state=None, draft_private=False))
    view = replace(view, grouped=[tc.GroupedCase(100 + n, f"fan{n}", "new") for n in range(3)])
    card = teams_cards.case_card(view, now=tc.NOW)
    actions = card.get("actions", [])
    primary = [a["id"] for a in actions if a.get("mode") != "secondary"]
    assert len(primary) <= 6, primary
    # Nothing is dropped: every action of the state is still on the card.
    expected = [*slack_cards.card_actions(view.case), "dismiss_group"]
    assert [a["id"] for a in actions] == expected
    assert all(a["id"] in ("hide_comment", "reassign") for a in actions if a.get("mode"))


def test_every_teams_verb_has_a_handler() -> None:
    """A verb a card can carry that `perform` does not know would be refused as unknown."""
    from bot import actions

    handled = set(actions._ACTIONS) | set(actions.ANSWERED_VERBS)
    assert set(teams_cards.VERBS) <= handled, set(teams_cards.VERBS) - handled
    assert set(teams_cards.VERB.values()) <= set(teams_cards.VERBS)


@pytest.mark.parametrize("state", [CaseState.NEW, CaseState.CLAIMED, CaseState.FAILED])
def test_an_instagram_mention_elsewhere_offers_no_button_that_always_refuses(
    state: CaseState,
) -> None:
    """An @mention in someone else's caption can be neither answered privately nor hidden
    (bot.meta_rules.elsewhere_reason): its card must not offer buttons that only refuse."""
    case = sc.make_case(state, network="instagram", mention_id="mention:17900000000000001")
    view = sc.make_view(case)
    slack_ids = slack_cards.card_actions(case)
    teams_ids = [a["id"] for a in teams_cards.case_card(view, now=tc.NOW).get("actions", [])]
    for ids in (slack_ids, teams_ids):
        assert "reply_private" not in ids and "hide_comment" not in ids, ids
    comment = replace(case, mention_id="17900000000000002")
    assert {"reply_private", "hide_comment"} <= set(slack_cards.card_actions(comment))
