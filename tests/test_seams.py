"""Where features built apart meet: saved replies, tags, VIPs, the LLM and the care desk's
bulk and claim verbs on Facebook and Instagram cases."""

from __future__ import annotations

from bot import desk
from bot.ai import safe_suggestions
from bot.config import Config
from tests.conftest import AGENT

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
