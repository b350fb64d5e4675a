"""Block Kit for the care desk (issue 14): tags and VIP lines on the card, the saved-reply
picker, the Tags button and its modal. Pure builders, checked by validate_blocks()."""

from __future__ import annotations

from typing import Any

from bot.models import Intent
from bot.views import CaseView
from handlers.slack_cards import (
    MAX_OPTION_TEXT,
    MAX_OPTION_VALUE,
    MAX_OPTIONS,
    USE_REPLY_STATES,
    _context,
    _modal,
    _plain_text,
    escape_mrkdwn,
    plain,
)

SAVED_REPLY_ACTION = "saved_reply"
TAGS_ACTION = "edit_tags"
TAGS_CALLBACK = "edit_tags"
TAGS_INPUT_MAX = 400
TAGS_SHOWN = 20
MANAGERS_SHOWN = 10


def desk_blocks(view: CaseView) -> list[dict[str, Any]]:
    """The tags line, and for a VIP's case the line that calls in the managers."""
    blocks: list[dict[str, Any]] = []
    if view.tags:
        shown = " · ".join(
            f"`{escape_mrkdwn(t, limit=40, max_lines=1)}`" for t in view.tags[:TAGS_SHOWN]
        )
        more = len(view.tags) - TAGS_SHOWN
        blocks.append(
            _context("tags", f":label: Tags: {shown}" + (f" and {more} more" if more > 0 else ""))
        )
    if view.vip_managers:
        people = [
            f"<@{m.slack}>" if m.slack else escape_mrkdwn(m.name, limit=60, max_lines=1)
            for m in view.vip_managers[:MANAGERS_SHOWN]
        ]
        blocks.append(
            _context("vip", f":star: *VIP author* — for the managers: {', '.join(people)}")
        )
    return blocks


def saved_reply_value(case_id: int, reply_id: str) -> str:
    return f"{case_id}:{reply_id}"


def parse_saved_reply_value(value: str) -> tuple[str, str] | None:
    """(case, saved reply id) from a picker option's value; None if malformed."""
    case, sep, reply_id = value.partition(":")
    return (case, reply_id) if sep and case.isdigit() and reply_id else None


def desk_actions(view: CaseView) -> list[dict[str, Any]]:
    """An actions block: the saved-reply picker (while a reply can be drafted) and Tags."""
    case = view.case
    elements: list[dict[str, Any]] = []
    drafting = case.state in USE_REPLY_STATES and case.intent != Intent.SPAM
    options = [
        {
            "text": _plain_text(plain(choice.title, limit=MAX_OPTION_TEXT) or choice.id),
            "value": saved_reply_value(case.id, choice.id),
        }
        for choice in view.saved_replies
        if len(saved_reply_value(case.id, choice.id)) <= MAX_OPTION_VALUE
    ][:MAX_OPTIONS]
    if drafting and options:
        elements.append(
            {
                "type": "static_select",
                "action_id": SAVED_REPLY_ACTION,
                "placeholder": _plain_text("Saved reply"),
                "options": options,
            }
        )
    elements.append(
        {
            "type": "button",
            "action_id": TAGS_ACTION,
            "text": _plain_text("Tags"),
            "value": str(case.id),
        }
    )
    return [{"type": "actions", "block_id": "desk", "elements": elements}]


def tags_modal(case_id: int, tags: list[str]) -> dict[str, Any]:
    """`views.open` payload to edit a case's tags: the field lists them; what it lists
    on submit are the tags. Read `values["tags"]["tags_text"]["value"]`."""
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "tags_text",
        "max_length": TAGS_INPUT_MAX,
        "placeholder": _plain_text("refund lost-bag", emoji=False),
    }
    current = " ".join(tags)
    if current:
        element["initial_value"] = current[:TAGS_INPUT_MAX]
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": "tags",
            "optional": True,
            "label": _plain_text("Tags"),
            "hint": _plain_text(
                "Lower-case words, hyphens inside (lost-bag), separated by spaces."
                " Delete a word to remove that tag."
            ),
            "element": element,
        }
    ]
    title = f"Tags of case #{case_id}"
    if len(title) > 24:
        title = "Tags"
    return _modal(TAGS_CALLBACK, title, blocks, str(case_id), "Save tags")
