"""Adaptive Card parts of the care desk (issue 14): tags and the VIP line on the card, a
"Saved reply" choice (Input.ChoiceSet + Action.Execute verb `saved_reply`) and a "Tags"
field (Input.Text + verb `tag`), both opened inline like the card's other inputs."""

from __future__ import annotations

from bot.models import Intent
from bot.views import CaseView
from handlers.slack_cards import USE_REPLY_STATES
from handlers.slack_desk import CLOSED_STATES
from handlers.teams_cards import (
    CHOICE_CHARS,
    CHOICE_VALUE_CHARS,
    CHOICES,
    Card,
    _execute,
    _label,
    _rich,
    _show_card,
    inert,
)

TAGS_SHOWN = 20
TAGS_INPUT_MAX = 400


def desk_parts(view: CaseView) -> list[Card]:
    """Tags, the VIP line and, while the case is open, an ActionSet with the saved-reply
    choice and the tag field (in the body: the card's own action row stays the workflow's)."""
    parts: list[Card] = []
    if view.tags:
        shown = " · ".join(inert(t, limit=40, one_line=True) for t in view.tags[:TAGS_SHOWN])
        parts.append(_rich("tag_list", "🏷️ Tags: ", shown, subtle=True))
    open_case = view.case.state not in CLOSED_STATES
    if view.vip_managers and open_case:  # as on Slack: a closed case calls nobody in
        parts.append(_vip_line(view))
    if view.case.state not in CLOSED_STATES:
        parts.append({"type": "ActionSet", "id": "desk", "actions": desk_actions(view)})
    return parts


def _vip_line(view: CaseView) -> Card:
    """Managers with a Teams account are @mentioned (Teams notifies them when the card is
    posted; see `vip_mention_entities`), the others named."""
    called = []
    for manager in view.vip_managers:
        name = _mention_name(manager.name)
        called.append(f"<at>{name}</at>" if manager.teams else name)
    return {
        "type": "TextBlock",
        "id": "vip",
        "wrap": True,
        "text": "⭐ VIP author — for " + ", ".join(called),
    }


def _mention_name(name: str) -> str:
    # Config text, but still kept out of card markup: no markdown, no tags of its own.
    cleaned = inert(name, limit=60, one_line=True)
    return "".join(ch for ch in cleaned if ch not in "<>*_[]`#~|\\") or "manager"


def vip_mention_entities(view: CaseView) -> list[Card]:
    """The card's `msteams.entities`: one mention per manager named `<at>…</at>` above."""
    return [
        {
            "type": "mention",
            "text": f"<at>{_mention_name(m.name)}</at>",
            "mentioned": {"id": m.teams, "name": _mention_name(m.name)},
        }
        for m in view.vip_managers
        if m.teams and view.case.state not in CLOSED_STATES
    ]


def desk_actions(view: CaseView) -> list[Card]:
    case = view.case
    actions: list[Card] = []
    choices = [
        {"title": inert(c.title, limit=CHOICE_CHARS, one_line=True) or c.id, "value": c.id}
        for c in view.saved_replies
        if len(c.id) <= CHOICE_VALUE_CHARS
    ][:CHOICES]
    if case.state in USE_REPLY_STATES and case.intent != Intent.SPAM and choices:
        body: list[Card] = [
            {
                "type": "Input.ChoiceSet",
                "id": "saved_reply",
                "label": "Saved reply",
                "style": "compact",
                "placeholder": "Choose a saved reply",
                "isRequired": True,
                "errorMessage": "Choose a saved reply.",
                "choices": choices,
            },
            _label(
                "It becomes the draft, filled in for this case; it still needs approval.",
                isSubtle=True,
                size="Small",
            ),
        ]
        submit = _execute("saved_reply", "Use saved reply", case.id, style="positive")
        actions.append(_show_card("saved_replies", "Saved reply", body, submit))
    field: Card = {
        "type": "Input.Text",
        "id": "tags",
        "label": "Tags",
        "maxLength": TAGS_INPUT_MAX,
        "placeholder": "refund lost-bag",
    }
    if view.tags:
        field["value"] = " ".join(view.tags)
        # The field lists every tag (saving removes what it does not list): never cut it.
        field["maxLength"] = len(field["value"]) + TAGS_INPUT_MAX
    body = [
        field,
        _label(
            "Lower-case words, hyphens inside, separated by spaces. Delete a word to remove"
            " that tag.",
            isSubtle=True,
            size="Small",
        ),
    ]
    save = _execute("tag", "Save tags", case.id, shown=",".join(view.tags))
    actions.append(_show_card("tags_show", "Tags", body, save))
    return actions
