"""Block Kit for the care desk (issue 14): tags and VIP lines on the card, the saved-reply
picker, the Tags button and its modal. Pure builders, checked by validate_blocks()."""

from __future__ import annotations

from typing import Any

from bot.errors import Refusal
from bot.models import CaseState, Intent
from bot.views import CaseView
from handlers.slack_cards import (
    MAX_OPTION_TEXT,
    MAX_OPTION_VALUE,
    MAX_OPTIONS,
    USE_REPLY_STATES,
    _context,
    _modal,
    _plain_text,
    _section,
    escape_mrkdwn,
    plain,
)

SAVED_REPLY_ACTION = "saved_reply"
TAGS_ACTION = "edit_tags"
TAGS_CALLBACK = "edit_tags"
TAGS_INPUT_MAX = 400
SLACK_INPUT_MAX = 3000  # plain_text_input's own ceiling
TAGS_SHOWN = 20
MANAGERS_SHOWN = 10
# The picker's option texts count towards the card's combined text (msg_blocks_too_long):
# a long list would crowd out the post, the thread and the suggestions, or fail the card.
PICKER_TEXT_BUDGET = 1400  # leaves room for every button a busy Facebook card shows
CLOSED_STATES = frozenset({CaseState.APPROVED, CaseState.PUBLISHED, CaseState.DISMISSED})


def desk_blocks(view: CaseView) -> list[dict[str, Any]]:
    """The tags line (with an overflow to edit them while the case is open), the VIP
    line calling in the managers, and the saved-reply picker while a reply can be drafted.

    The controls are section accessories, not buttons: the card's button row stays the
    workflow's, and a closed card keeps no controls at all."""
    case = view.case
    open_case = case.state not in CLOSED_STATES
    blocks: list[dict[str, Any]] = []
    if view.tags:
        shown = " · ".join(
            f"`{escape_mrkdwn(t, limit=40, max_lines=1)}`" for t in view.tags[:TAGS_SHOWN]
        )
        more = len(view.tags) - TAGS_SHOWN
        line = f":label: Tags: {shown}" + (f" and {more} more" if more > 0 else "")
    else:
        line = ":label: No tags"
    if open_case:
        blocks.append(_section("tags", line, accessory=_tags_overflow(case.id)))
    elif view.tags:
        blocks.append(_context("tags", line))
    if view.vip_managers and open_case:
        people = [
            f"<@{m.slack}>" if m.slack else escape_mrkdwn(m.name, limit=60, max_lines=1)
            for m in view.vip_managers[:MANAGERS_SHOWN]
        ]
        blocks.append(
            _context("vip", f":star: *VIP author* — for the managers: {', '.join(people)}")
        )
    picker = _saved_reply_picker(view)
    if picker is not None:
        blocks.append(_section("saved_replies", "*Saved replies* for this case", accessory=picker))
    return blocks


def saved_reply_value(case_id: int, reply_id: str) -> str:
    return f"{case_id}:{reply_id}"


def parse_saved_reply_value(value: str) -> tuple[str, str] | None:
    """(case, saved reply id) from a picker option's value; None if malformed."""
    case, sep, reply_id = value.partition(":")
    return (case, reply_id) if sep and case.isdigit() and reply_id else None


def _tags_overflow(case_id: int) -> dict[str, Any]:
    # An overflow needs two options: edit (a modal) and clear (at once, audited).
    return {
        "type": "overflow",
        "action_id": TAGS_ACTION,
        "options": [
            {"text": _plain_text("Edit tags…"), "value": f"edit:{case_id}"},
            {"text": _plain_text("Remove all tags"), "value": f"clear:{case_id}"},
        ],
    }


def parse_tags_value(value: str) -> tuple[str, str] | None:
    """("edit" or "clear", case) from a tags overflow option; None if malformed."""
    verb, sep, case = value.partition(":")
    return (verb, case) if sep and verb in {"edit", "clear"} and case.isdigit() else None


def _saved_reply_picker(view: CaseView) -> dict[str, Any] | None:
    """A static_select of the saved replies (the department's first), or None."""
    case = view.case
    if case.state not in USE_REPLY_STATES or case.intent == Intent.SPAM:
        return None
    options: list[dict[str, Any]] = []
    spent = 0
    for choice in view.saved_replies:  # the department's own first
        value = saved_reply_value(case.id, choice.id)
        label = plain(choice.title, limit=MAX_OPTION_TEXT) or choice.id
        if len(value) > MAX_OPTION_VALUE:
            continue
        if len(options) == MAX_OPTIONS or spent + len(label) > PICKER_TEXT_BUDGET:
            break  # the rest stay reachable with `/care saved` and `/care reply N :id`
        spent += len(label)
        options.append({"text": _plain_text(label), "value": value})
    if not options:
        return None
    return {
        "type": "static_select",
        "action_id": SAVED_REPLY_ACTION,
        "placeholder": _plain_text("Saved reply"),
        "options": options,
    }


def tags_modal(case_id: int, tags: list[str]) -> dict[str, Any]:
    """`views.open` payload to edit a case's tags: the field lists them; what it lists
    on submit are the tags. Read `values["tags"]["tags_text"]["value"]`."""
    current = " ".join(tags)
    if len(current) > SLACK_INPUT_MAX:
        # Cutting the list would remove every tag past the cut on save.
        raise Refusal(
            f"Case #{case_id} has too many tags to edit in a form;"
            f" use `/care tag {case_id} +tag -tag`.",
            code="too_long",
        )
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "tags_text",
        # Room for every current tag (the field lists them all) plus a few more.
        "max_length": min(SLACK_INPUT_MAX, max(TAGS_INPUT_MAX, len(current) + TAGS_INPUT_MAX)),
        "placeholder": _plain_text("refund lost-bag", emoji=False),
    }
    if current:
        element["initial_value"] = current
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
    # The tags shown ride along, so saving applies only this person's changes.
    shown = ",".join(tags)
    metadata = f"{case_id}:{shown}" if len(shown) < 2900 else str(case_id)
    return _modal(TAGS_CALLBACK, title, blocks, metadata, "Save tags")
