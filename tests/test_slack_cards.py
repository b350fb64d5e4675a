"""Block Kit builders: every card/modal meets Slack's limits; hostile text is neutralised."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.models import Case, CaseState, Intent, Priority, Sentiment, text_hash
from bot.views import AuthorView, CaseView, EarlierContact, GroupedCase, ThreadPost
from handlers.slack_cards import (
    ALL_ACTIONS,
    ELLIPSIS,
    MAX_TOTAL_TEXT,
    ZWJ,
    case_card,
    edit_reply_modal,
    escape_mrkdwn,
    note_text,
    parse_approve_value,
    reason_modal,
    reassign_modal,
    total_text,
    validate_blocks,
    validate_view,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

HOSTILE = [
    "<!channel> hi",
    "<!here|here> and <!everyone>",
    "<@U0LEAD> look",
    "<#C0GENERAL> <!subteam^S123|@team>",
    "@here @channel @everyone",
    "*bold* _it_ ~s~ `code` ```block```",
    "> quoted\n  > also quoted",
    "a\u200bb\u200cc\u200dd\u200ee\u200ff\u2060g\ufeffh",
    "evil \u202eusers\u202c and \u2066iso\u2069 \u202a\u202b\u202d",
    "x" * 10_000,
    "&" * 10_000,
    "<" * 5_000 + ">" * 5_000,
    "lone \ud800 surrogate \udfff here",
    "<https://evil.example|click me> <javascript:alert(1)|x>",
    "<!date^1392734382^{date}|Feb 18, 2014>",
    "tag\U000e0041\U000e0042 smuggling",
    "\n\n\n\n\n" * 500 + "tail",
    "\x00\x07\x1b[31mred\x7f\x85",
]
# What must never appear raw anywhere on a card built from the texts above.
FORBIDDEN = [
    "<!channel>",
    "<!here",
    "<!everyone>",
    "<@U0LEAD>",
    "<#C0GENERAL>",
    "<!subteam",
    "@here",
    "@channel",
    "@everyone",
    "<https://evil",
    "<javascript",
    "<!date^1392734382",
    "*bold*",
    "_it_",
    "~s~",
    "`code`",
    "\u202e",
    "\u202a",
    "\u2066",
    "\u200b",
    "\ufeff",
    "\ud800",
    "\udfff",
    "\U000e0041",
    "\x00",
    "\x1b",
]


def make_case(
    state: CaseState = CaseState.NEW,
    intent: Intent = Intent.COMPLAINT,
    **overrides: Any,
) -> Case:
    fields: dict[str, Any] = {
        "id": 42,
        "network": "x",
        "mention_id": "1860000000000000001",
        "author_id": "9001",
        "department": "support",
        "state": state,
        "intent": intent,
        "sentiment": Sentiment.NEGATIVE,
        "priority": Priority.HIGH,
        "needs_reply": intent is not Intent.SPAM,
        "language": "en",
        "route_reason": "intent complaint → support",
        "created_at": NOW - timedelta(minutes=30),
        "updated_at": NOW - timedelta(minutes=5),
        "sla_due_at": NOW + timedelta(minutes=30),
    }
    if state is not CaseState.NEW:
        fields["claimed_by"] = "U0AGENT1"
    if state in (
        CaseState.AWAITING_APPROVAL,
        CaseState.APPROVED,
        CaseState.PUBLISHED,
        CaseState.FAILED,
    ):
        fields["draft_text"] = "Sorry about that! We're on it & will DM you."
        fields["draft_by"] = "U0AGENT1"
    if state is CaseState.PUBLISHED:
        fields["published_url"] = "https://x.com/brand/status/1860000000000000999"
    if state is CaseState.FAILED:
        fields["note"] = "Publishing failed: 503 from X"
    if state is CaseState.DISMISSED:
        fields["note"] = "No reply needed"
    fields.update(overrides)
    return Case(**fields)


def make_view(case: Case, text: str = "My order #123 never arrived & nobody answers", **kw: Any):
    author = kw.pop(
        "author", AuthorView(handle="jane_doe", name="Jane Doe", followers=12345, verified=True)
    )
    return CaseView(
        case=case,
        department_name=kw.pop("department_name", "Customer support"),
        author=author,
        text=text,
        url=kw.pop("url", "https://x.com/jane_doe/status/1860000000000000001"),
        **kw,
    )


def rich_extras(text: str = "Earlier issue with delivery") -> dict[str, Any]:
    return {
        "suggestions": [f"Suggestion {n}: sorry, DM us your order number." for n in (1, 2, 3)],
        "earlier": [
            EarlierContact(
                case_id=n,
                state="published",
                intent="complaint",
                created_at=NOW - timedelta(days=n),
                text=text,
            )
            for n in range(1, 8)
        ],
        "thread": [
            ThreadPost(
                mention_id=str(n),
                text=text,
                created_at=NOW - timedelta(minutes=n),
                url=f"https://x.com/jane_doe/status/{n}",
            )
            for n in range(1, 9)
        ],
        "paused": True,
    }


def huge_view(state: CaseState, intent: Intent, text: str) -> CaseView:
    """Every optional part present and every text at its worst."""
    case = make_case(
        state,
        intent,
        claimed_by=text[:200],
        draft_text=text,
        draft_by="U0AGENT1",
        note=text,
        published_url="https://x.com/" + "a" * 3000,
        route_reason=text,
        mention_count=99,
        language=text[:40],
    )
    return make_view(
        case,
        text,
        author=AuthorView(handle=text[:300], name=text, followers=10**12, verified=True),
        department_name=text,
        url="https://x.com/" + "&" * 900,
        grouped=[GroupedCase(1000 + i, text[:60], "new") for i in range(500)],
        **rich_extras(text),
    )


def all_texts(card: dict[str, Any]) -> list[str]:
    """Every string anywhere in the card (block texts, values, ids, fallback text)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


# Blocks showing text the bot or staff wrote (routing reason, case note): real user
# mentions such as "reassigned by <@U0LEAD>" stay live there, everything else is escaped.
USER_MENTIONS_KEPT = ("routing", "note", "hidden")


MARKDOWN = ("*bold*", "_it_", "~s~", "`code`")


def text_objects(node: object, block_id: str = "") -> list[tuple[str, str, str]]:
    """(block_id, text type, text) of every text object and every other string."""
    found: list[tuple[str, str, str]] = []
    if isinstance(node, str):
        found.append((block_id, "string", node))
    elif isinstance(node, dict):
        block_id = node.get("block_id", block_id)
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            found.append((block_id, node["type"], node["text"]))
        for key, value in node.items():
            if not (key == "text" and isinstance(value, str)):
                found.extend(text_objects(value, block_id))
    elif isinstance(node, list):
        for item in node:
            found.extend(text_objects(item, block_id))
    return found


def assert_neutralised(card: dict[str, Any]) -> None:
    """No ping, link, date, hidden or bidi control anywhere; no markdown in mrkdwn text.

    Slack never formats plain_text (header, button labels), so markdown markers are
    only checked in mrkdwn objects and in the fallback `text` (which is mrkdwn).
    """
    found = text_objects(card["blocks"]) + [("", "mrkdwn", card["text"])]
    for block_id, kind, text in found:
        for forbidden in FORBIDDEN:
            if forbidden in MARKDOWN and kind != "mrkdwn":
                continue
            if forbidden == "<@U0LEAD>" and block_id in USER_MENTIONS_KEPT:
                continue
            assert forbidden not in text, (block_id, kind, forbidden, text[:200])


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    """All buttons of a card: actions-block elements and section accessories."""
    found: list[dict[str, Any]] = []
    for block in card["blocks"]:
        if block["type"] == "actions":
            found.extend(block["elements"])
        elif block.get("accessory", {}).get("type") == "button":
            found.append(block["accessory"])
    return found


def action_ids(card: dict[str, Any]) -> list[str]:
    return [b["action_id"] for b in buttons(card)]


def assert_slack_valid(card: dict[str, Any]) -> None:
    assert validate_blocks(card["blocks"]) == []
    for block in card["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.to_dict()  # slack_sdk's own validators raise on limit violations
    # The payload must serialise to valid UTF-8 JSON (no lone surrogates).
    json.dumps(card, ensure_ascii=False).encode("utf-8")
    assert total_text(card["blocks"]) <= MAX_TOTAL_TEXT
    assert card["unfurl_links"] is False
    assert card["unfurl_media"] is False
    assert card["text"]
    assert len(card["text"]) <= 400


ALL_STATES = list(CaseState)
INTENTS = [Intent.COMPLAINT, Intent.QUESTION, Intent.PRAISE, Intent.SPAM, Intent.OTHER]


# ----------------------------------------------------------------- acceptance: limits


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("intent", INTENTS)
@pytest.mark.parametrize("variant", ["bare", "rich", "no_optional_fields", "long"])
def test_every_card_meets_block_kit_limits(state: CaseState, intent: Intent, variant: str) -> None:
    if variant == "bare":
        view = make_view(make_case(state, intent))
    elif variant == "rich":
        view = make_view(make_case(state, intent, mention_count=3), **rich_extras())
    elif variant == "no_optional_fields":
        case = make_case(
            state,
            intent,
            claimed_by=None,
            draft_text=None,
            draft_by=None,
            note=None,
            published_url=None,
            sla_due_at=None,
            route_reason="",
        )
        view = make_view(
            case,
            "x",
            author=AuthorView(handle="h", name="", followers=None, verified=False),
            url=None,
            department_name="",
        )
    else:
        view = huge_view(state, intent, "long text " * 1000)
    assert_slack_valid(case_card(view, now=NOW))


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("intent", [Intent.COMPLAINT, Intent.SPAM])
@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_worst_case_cards_meet_limits_and_neutralise_text(
    state: CaseState, intent: Intent, hostile: str
) -> None:
    card = case_card(huge_view(state, intent, hostile), now=NOW, tz=ZoneInfo("Europe/Berlin"))
    assert_slack_valid(card)
    assert_neutralised(card)


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize(
    "where",
    ["text", "name", "handle", "thread", "earlier", "suggestion", "draft", "note", "route"],
)
def test_hostile_text_in_any_field_is_neutralised(hostile: str, where: str) -> None:
    state = CaseState.AWAITING_APPROVAL if where == "draft" else CaseState.CLAIMED
    overrides: dict[str, Any] = {}
    if where == "draft":
        overrides["draft_text"] = hostile
    if where == "note":
        overrides["note"] = hostile
    if where == "route":
        overrides["route_reason"] = hostile
    case = make_case(state, **overrides)
    kw: dict[str, Any] = {}
    if where == "name":
        kw["author"] = AuthorView(handle="jane", name=hostile, followers=1, verified=False)
    if where == "handle":
        kw["author"] = AuthorView(handle=hostile, name="Jane", followers=1, verified=False)
    if where == "thread":
        kw["thread"] = [ThreadPost(mention_id="1", text=hostile, created_at=NOW, url=None)]
    if where == "earlier":
        kw["earlier"] = [EarlierContact(1, "published", "complaint", NOW, hostile)]
    if where == "suggestion":
        kw["suggestions"] = [hostile]
    view = make_view(case, hostile if where == "text" else "hello", **kw)
    card = case_card(view, now=NOW)
    assert_slack_valid(card)
    assert_neutralised(card)


# ----------------------------------------------------------------- buttons per state

EXPECTED_ACTIONS = {
    CaseState.NEW: ["claim", "dismiss", "reassign"],
    CaseState.CLAIMED: ["edit_reply", "submit", "dismiss", "reassign"],
    CaseState.AWAITING_APPROVAL: ["approve", "reject", "edit_reply"],
    CaseState.APPROVED: [],
    CaseState.PUBLISHED: [],
    CaseState.DISMISSED: [],
    CaseState.FAILED: ["retry", "edit_reply", "dismiss"],
}


@pytest.mark.parametrize("state", ALL_STATES)
def test_buttons_follow_the_state(state: CaseState) -> None:
    card = case_card(make_view(make_case(state)), now=NOW)
    assert action_ids(card) == EXPECTED_ACTIONS[state]
    has_actions_block = any(b["type"] == "actions" for b in card["blocks"])
    assert has_actions_block == bool(EXPECTED_ACTIONS[state])
    assert set(action_ids(card)) <= set(ALL_ACTIONS)


@pytest.mark.parametrize(
    ("state", "present", "absent"),
    [
        (CaseState.NEW, {"claim"}, {"approve", "reject", "retry", "submit"}),
        (CaseState.CLAIMED, {"submit", "edit_reply"}, {"claim", "approve"}),
        (CaseState.AWAITING_APPROVAL, {"approve", "reject"}, {"claim", "submit", "dismiss"}),
        (CaseState.FAILED, {"retry"}, {"approve", "claim"}),
    ],
)
def test_key_buttons(state: CaseState, present: set[str], absent: set[str]) -> None:
    ids = set(action_ids(case_card(make_view(make_case(state), **rich_extras()), now=NOW)))
    assert present <= ids
    assert not absent & ids


@pytest.mark.parametrize("state", [CaseState.APPROVED, CaseState.PUBLISHED, CaseState.DISMISSED])
def test_closed_or_approved_cards_have_no_buttons(state: CaseState) -> None:
    card = case_card(make_view(make_case(state), **rich_extras()), now=NOW)
    assert buttons(card) == []
    assert all(block["type"] != "actions" for block in card["blocks"])


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("count", [0, 1, 2, 3, 5])
def test_use_reply_buttons(state: CaseState, count: int) -> None:
    suggestions = [f"reply {n}" for n in range(1, count + 1)]
    card = case_card(make_view(make_case(state), suggestions=suggestions), now=NOW)
    use = [a for a in action_ids(card) if a.startswith("use_reply_")]
    if state in (CaseState.NEW, CaseState.CLAIMED, CaseState.FAILED):
        assert use == [f"use_reply_{n}" for n in range(1, min(count, 3) + 1)]
        texts = [
            b["text"]["text"]
            for b in card["blocks"]
            if b.get("block_id", "").startswith("suggestion_")
        ]
        assert len(texts) == min(count, 3)
        for n, text in enumerate(texts, start=1):
            assert f"AI-suggested reply {n}" in text
        labels = [b["text"]["text"] for b in buttons(card) if b["action_id"] in use]
        assert labels == [f"Use reply {n}" for n in range(1, min(count, 3) + 1)]
    else:
        assert use == []


@pytest.mark.parametrize("state", ALL_STATES)
def test_button_values_are_the_case_id(state: CaseState) -> None:
    card = case_card(make_view(make_case(state, id=7), **rich_extras()), now=NOW)
    for element in buttons(card):
        if element["action_id"] == "approve":
            assert json.loads(element["value"])["case"] == 7
        else:
            assert element["value"] == "7"


@pytest.mark.parametrize(
    "draft", ["Sorry! DM us.", "café & <stuff>", "x" * 280, "emoji 👍🏽 ok", "*bold* reply"]
)
def test_approve_binds_to_the_draft_hash(draft: str) -> None:
    case = make_case(CaseState.AWAITING_APPROVAL, draft_text=draft)
    card = case_card(make_view(case), now=NOW)
    (approve,) = [b for b in buttons(card) if b["action_id"] == "approve"]
    assert json.loads(approve["value"]) == {"case": 42, "hash": text_hash(draft)}
    assert parse_approve_value(approve["value"]) == (42, text_hash(draft))
    assert approve["style"] == "primary"
    draft_block = next(b for b in card["blocks"] if b["block_id"] == "draft")
    assert escape_mrkdwn(draft) in draft_block["text"]["text"]


def test_no_approve_without_a_draft_or_when_it_cannot_be_shown() -> None:
    no_draft = make_case(CaseState.AWAITING_APPROVAL, draft_text=None)
    assert "approve" not in action_ids(case_card(make_view(no_draft), now=NOW))
    too_long = make_case(CaseState.AWAITING_APPROVAL, draft_text="&" * 1000)
    card = case_card(make_view(too_long), now=NOW)
    assert "approve" not in action_ids(card)
    assert "reject" in action_ids(card)
    assert any(b["block_id"] == "draft_too_long" for b in card["blocks"])


@pytest.mark.parametrize(
    "value",
    [
        "",
        "7",
        "null",
        "[]",
        '{"case": "7", "hash": "ab"}',
        '{"case": true, "hash": "' + "a" * 64 + '"}',
    ],
)
def test_parse_approve_value_rejects_junk(value: str) -> None:
    assert parse_approve_value(value) is None


def test_button_styles_and_dismiss_confirm() -> None:
    card = case_card(make_view(make_case(CaseState.CLAIMED)), now=NOW)
    by_id = {b["action_id"]: b for b in buttons(card)}
    assert by_id["dismiss"]["style"] == "danger"
    confirm = by_id["dismiss"]["confirm"]
    assert confirm["confirm"]["text"] == "Dismiss"
    assert "#42" in confirm["title"]["text"]
    card = case_card(make_view(make_case(CaseState.AWAITING_APPROVAL)), now=NOW)
    by_id = {b["action_id"]: b for b in buttons(card)}
    assert by_id["reject"]["style"] == "danger"
    assert by_id["approve"]["style"] == "primary"


@pytest.mark.parametrize("state", ALL_STATES)
def test_spam_cards_are_compact_with_dismiss_first(state: CaseState) -> None:
    view = make_view(make_case(state, Intent.SPAM), "x" * 5000, **rich_extras())
    card = case_card(view, now=NOW)
    ids = [b["block_id"] for b in card["blocks"]]
    for absent in ("thread", "earlier", "routing", "sla", "suggestion_1"):
        assert absent not in ids
    assert {"header", "author", "mention", "reading"} <= set(ids)
    mention = next(b for b in card["blocks"] if b["block_id"] == "mention")
    assert len(mention["text"]["text"]) <= 280
    if "dismiss" in EXPECTED_ACTIONS[state]:
        assert action_ids(card)[0] == "dismiss"
    assert not any(a.startswith("use_reply_") for a in action_ids(card))


# ----------------------------------------------------------------- content


def test_card_shows_everything() -> None:
    case = make_case(
        CaseState.AWAITING_APPROVAL,
        id=1234,
        note="Rejected: tone",
        route_reason="reassigned by <@U0LEAD>",
        published_url=None,
    )
    view = make_view(case, **rich_extras())
    card = case_card(view, now=NOW)
    blob = "\n".join(all_texts(card))
    assert "#1234" in card["blocks"][0]["text"]["text"]
    assert "Awaiting approval" in card["blocks"][0]["text"]["text"]
    assert "Customer support" in card["blocks"][0]["text"]["text"]
    assert "Jane Doe @jane" in blob
    assert "12,345 followers" in blob
    assert "verified" in blob
    assert "<https://x.com/jane_doe/status/1860000000000000001|View on X>" in blob
    assert "complaint · negative · priority high · en · needs reply" in blob
    assert "Routed: reassigned by <@U0LEAD>" in blob  # the bot's own mention is kept
    assert "Claimed by <@U0AGENT1>" in blob
    assert "by <@U0AGENT1>" in blob
    assert "Note: Rejected: tone" in blob
    assert "Earlier contacts" in blob
    assert blob.count("• #") == 5 and "and 2 more" in blob
    assert "↳" in blob and "3 earlier not shown" in blob
    assert "Conversation" in blob


def test_sla_due_and_overdue() -> None:
    due = NOW + timedelta(minutes=90)
    card = case_card(make_view(make_case(sla_due_at=due)), now=NOW, tz=ZoneInfo("Europe/Berlin"))
    sla = next(b for b in card["blocks"] if b["block_id"] == "sla")["elements"][0]["text"]
    assert f"<!date^{int(due.timestamp())}^{{date_short_pretty}} {{time}}|" in sla
    assert "in 1 h 30 min" in sla
    assert "11:30 CET" in sla  # fallback in the given zone
    late = make_case(sla_due_at=NOW - timedelta(minutes=20))
    card = case_card(make_view(late), now=NOW)
    sla = next(b for b in card["blocks"] if b["block_id"] == "sla")["elements"][0]["text"]
    assert "overdue" in sla and "20 min" in sla
    for state in (CaseState.PUBLISHED, CaseState.DISMISSED):
        card = case_card(make_view(make_case(state)), now=NOW)
        assert all(b["block_id"] != "sla" for b in card["blocks"])


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("paused", [True, False])
def test_paused_line_only_for_approved(state: CaseState, paused: bool) -> None:
    card = case_card(make_view(make_case(state), paused=paused), now=NOW)
    has = any(b["block_id"] == "paused" for b in card["blocks"])
    assert has == (paused and state is CaseState.APPROVED)


def test_published_link() -> None:
    card = case_card(make_view(make_case(CaseState.PUBLISHED)), now=NOW)
    blob = "\n".join(all_texts(card))
    assert "<https://x.com/brand/status/1860000000000000999|View published reply>" in blob


@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://a.b/<!channel>", "https://x|y"])
def test_unsafe_urls_are_not_linked(url: str) -> None:
    card = case_card(make_view(make_case(CaseState.PUBLISHED, published_url=url), url=url), now=NOW)
    for text in all_texts(card):
        assert "<!channel>" not in text
        assert "<javascript" not in text
        assert "<https://x|y" not in text


@pytest.mark.parametrize("state", ALL_STATES)
def test_block_ids_stable_and_unique(state: CaseState) -> None:
    view = make_view(make_case(state), **rich_extras())
    first = case_card(view, now=NOW)
    second = case_card(view, now=NOW + timedelta(minutes=1))
    ids = [b["block_id"] for b in first["blocks"]]
    assert len(ids) == len(set(ids))
    assert ids == [b["block_id"] for b in second["blocks"]]


# ----------------------------------------------------------------- escaping


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a & b <c>", "a &amp; b &lt;c&gt;"),
        ("<!channel> hi", "&lt;!channel&gt; hi"),
        ("<@U0LEAD>", "&lt;@U0LEAD&gt;"),
        ("<#C1>", "&lt;#C1&gt;"),
        ("<http://x|y>", "&lt;http://x|y&gt;"),
        ("hi @here", f"hi @{ZWJ}here"),
        ("@Channel and @EVERYONE", f"@{ZWJ}Channel and @{ZWJ}EVERYONE"),
        ("mail@hereford.com", "mail@hereford.com"),
        ("*b*", f"{ZWJ}*{ZWJ}b{ZWJ}*{ZWJ}"),
        ("> q", f"{ZWJ}&gt; q"),
        ("a > b", "a &gt; b"),
        ("x\n  > q", f"x\n  {ZWJ}&gt; q"),
        ("a\u200bb\u2060c\ufeffd\u200ee", "abcde"),
        ("\u202eevil\u202c \u2067x\u2069", "evil x"),
        ("lone \ud800", "lone \ufffd"),
        ("pair \ud83d\ude00", "pair \U0001f600"),
        ("nul\x00bell\x07", "nulbell"),
        ("a\r\nb\u2028c", "a\nb\nc"),
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("  padded  ", "padded"),
        ("", ""),
    ],
)
def test_escape_mrkdwn(raw: str, expected: str) -> None:
    assert escape_mrkdwn(raw) == expected


@pytest.mark.parametrize("raw", ["*bold* _it_ ~s~ `code`", "```x```", "_*~`", "a*b*c"])
def test_markdown_markers_are_neutralised_but_readable(raw: str) -> None:
    escaped = escape_mrkdwn(raw)
    for marker in "*_~`":
        # every marker is fenced by zero-width joiners on both sides
        assert escaped.count(marker) == escaped.count(f"{ZWJ}{marker}{ZWJ}")
    assert escaped.replace(ZWJ, "") == raw


def test_invalid_utf8_bytes() -> None:
    assert escape_mrkdwn(b"caf\xc3\xa9 \xff\xfe <!here>") == "café \ufffd\ufffd &lt;!here&gt;"


@pytest.mark.parametrize("limit", [1, 2, 5, 10, 100, 2000, 3000])
@pytest.mark.parametrize(
    "raw", ["x" * 10_000, "&" * 10_000, "<>" * 5000, "é" * 10_000, "👍🏽" * 5000]
)
def test_truncation(limit: int, raw: str) -> None:
    escaped = escape_mrkdwn(raw, limit=limit)
    assert len(escaped) <= limit
    assert escaped.endswith(ELLIPSIS)
    body = escaped[: -len(ELLIPSIS)]
    # never half an entity, never a lone surrogate or a separated skin-tone modifier
    assert body.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0
    body.encode("utf-8")
    assert not body.startswith("\U0001f3fd")
    if "👍" in raw:
        assert body.count("👍") == body.count("🏽")


def test_truncation_bounds_lines() -> None:
    escaped = escape_mrkdwn("line\n" * 100, max_lines=3)
    assert escaped == "line\nline\nline" + ELLIPSIS


def test_short_text_is_not_cut() -> None:
    assert escape_mrkdwn("x" * 3000) == "x" * 3000
    assert escape_mrkdwn("x" * 3001).endswith(ELLIPSIS)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Claimed by <@U0AGENT1>", "Claimed by <@U0AGENT1>"),
        ("Approved by <@W0MANAGER>", "Approved by <@W0MANAGER>"),
        (
            "Rejected by <@U0LEAD>: <!channel> no & <@u1> <@U1|x> <@B12>",
            "Rejected by <@U0LEAD>: &lt;!channel&gt; no &amp; "
            "&lt;@u1&gt; &lt;@U1|x&gt; &lt;@B12&gt;",
        ),
        ("Dismissed by <@U1>: @here spam", f"Dismissed by <@U1>: @{ZWJ}here spam"),
        ("Published: https://x.com/a?b=1&c=2", "Published: https://x.com/a?b=1&amp;c=2"),
        ("Failed: *oops*", f"Failed: {ZWJ}*{ZWJ}oops{ZWJ}*{ZWJ}"),
        ("bidi <@U1>\u202e", "bidi <@U1>"),
    ],
)
def test_note_text(raw: str, expected: str) -> None:
    assert note_text(raw) == expected


@pytest.mark.parametrize("limit", range(10, 40))
def test_note_text_never_splits_a_mention(limit: int) -> None:
    text = note_text("Reassigned by <@U0AGENT1234> and <@U0AGENT5678> & more", limit=limit)
    assert len(text) <= limit
    body = text.removesuffix(ELLIPSIS)
    assert body.count("<") == body.count(">")
    assert "&am" not in body.replace("&amp;", "")


# ----------------------------------------------------------------- modals


def assert_modal_valid(view: dict[str, Any]) -> None:
    assert validate_view(view) == []
    assert len(view["title"]["text"]) <= 24
    View(**view).to_dict()  # slack_sdk's validators
    json.dumps(view, ensure_ascii=False).encode("utf-8")


def input_block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b["block_id"] == block_id)


@pytest.mark.parametrize("case_id", [1, 42, 10**12])
@pytest.mark.parametrize(
    "draft", ["", "Sorry! DM us.", "x" * 5000, "<!channel> *hi*", "bad \ud800"]
)
def test_edit_reply_modal(case_id: int, draft: str) -> None:
    view = edit_reply_modal(case_id, draft, "@jane_doe")
    assert_modal_valid(view)
    assert view["type"] == "modal"
    assert view["callback_id"] == "edit_reply"
    assert view["private_metadata"] == str(case_id)
    element = input_block(view, "reply")["element"]
    assert element["type"] == "plain_text_input"
    assert element["action_id"] == "reply_text"
    assert element["multiline"] is True
    assert element["max_length"] == 1000
    if draft and "\ud800" not in draft:
        assert element["initial_value"] == draft[:1000]
    assert "initial_value" in element or not draft
    assert "@jane" in "\n".join(all_texts(view))


@pytest.mark.parametrize("action", ["reject", "dismiss"])
@pytest.mark.parametrize("case_id", [1, 99999, 10**15])
def test_reason_modal(action: str, case_id: int) -> None:
    view = reason_modal(case_id, action)
    assert_modal_valid(view)
    assert view["callback_id"] == f"{action}_reason"
    assert view["private_metadata"] == str(case_id)
    assert input_block(view, "reason")["element"]["action_id"] == "reason_text"


@pytest.mark.parametrize("action", ["approve", "", "REJECT"])
def test_reason_modal_rejects_other_actions(action: str) -> None:
    with pytest.raises(ValueError):
        reason_modal(1, action)


def test_reassign_modal() -> None:
    departments = [("support", "Customer support"), ("sales", "Sales"), ("press", "Press & PR")]
    view = reassign_modal(5, departments, "support")
    assert_modal_valid(view)
    assert view["callback_id"] == "reassign"
    assert view["private_metadata"] == "5"
    element = input_block(view, "department")["element"]
    assert element["type"] == "static_select"
    assert element["action_id"] == "department_select"
    assert [o["value"] for o in element["options"]] == ["sales", "press"]
    assert element["options"][1]["text"]["text"] == "Press & PR"


def test_reassign_modal_edge_cases() -> None:
    many = [(f"d{n}", "N" * 500) for n in range(300)] + [("d1", "dup"), ("x" * 200, "too long")]
    view = reassign_modal(10**15, many, "d0")
    assert_modal_valid(view)
    options = input_block(view, "department")["element"]["options"]
    assert len(options) == 100
    assert all(len(o["text"]["text"]) <= 75 for o in options)
    alone = reassign_modal(5, [("support", "Support")], "support")
    assert_modal_valid(alone)
    assert "submit" not in alone


# ----------------------------------------------------------------- the validator itself


@pytest.mark.parametrize(
    ("blocks", "fragment"),
    [
        (
            [{"type": "section", "block_id": "a", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            "3001",
        ),
        ([{"type": "divider", "block_id": f"b{n}"} for n in range(51)], "51 blocks"),
        ([{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}], "duplicate"),
        ([{"type": "divider", "block_id": "a" * 256}], "256"),
        (
            [{"type": "header", "block_id": "h", "text": {"type": "mrkdwn", "text": "x"}}],
            "plain_text",
        ),
        (
            [
                {
                    "type": "header",
                    "block_id": "h",
                    "text": {"type": "plain_text", "text": "x" * 151},
                }
            ],
            "151",
        ),
        (
            [
                {
                    "type": "context",
                    "block_id": "c",
                    "elements": [{"type": "mrkdwn", "text": "x"}] * 11,
                }
            ],
            "11 elements",
        ),
        (
            [
                {
                    "type": "context",
                    "block_id": "c",
                    "elements": [{"type": "mrkdwn", "text": "x" * 2001}],
                }
            ],
            "2001",
        ),
        (
            [
                {
                    "type": "actions",
                    "block_id": "a",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": f"b{n}",
                            "text": {"type": "plain_text", "text": "x"},
                        }
                        for n in range(26)
                    ],
                }
            ],
            "26 elements",
        ),
        (
            [
                {
                    "type": "actions",
                    "block_id": "a",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "b",
                            "text": {"type": "plain_text", "text": "x" * 76},
                            "value": "v" * 2001,
                        }
                    ],
                }
            ],
            "76",
        ),
        (
            [
                {
                    "type": "section",
                    "block_id": f"s{n}",
                    "text": {"type": "mrkdwn", "text": "x" * 2900},
                }
                for n in range(5)
            ],
            "combined",
        ),
    ],
)
def test_validate_blocks_reports_violations(blocks: list[dict[str, Any]], fragment: str) -> None:
    problems = validate_blocks(blocks)
    assert problems
    assert any(fragment in p for p in problems), problems


def test_validate_view_reports_long_title() -> None:
    view = reason_modal(1, "reject")
    view["title"]["text"] = "x" * 25
    assert any("title" in p for p in validate_view(view))


@pytest.mark.parametrize("state", [s.value for s in CaseState])
def test_plain_string_enums_still_render(state: str) -> None:
    case = replace(make_case(CaseState(state)), state=state, intent="spam", priority="urgent")
    card = case_card(make_view(case), now=NOW)
    assert_slack_valid(card)
    assert action_ids(card) == (
        ["dismiss"] + [a for a in EXPECTED_ACTIONS[CaseState(state)] if a != "dismiss"]
        if "dismiss" in EXPECTED_ACTIONS[CaseState(state)]
        else EXPECTED_ACTIONS[CaseState(state)]
    )
