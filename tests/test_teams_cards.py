"""Adaptive Card builders for Teams: the Slack card's content, buttons by state with the
right verbs and data, hostile text inert, every card under 80 KB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.audit import Head
from bot.bulk import untouched
from bot.commands import ApprovalPrompt
from bot.digest import CaseLink, DepartmentFigures, Digest
from bot.models import Case, CaseState, Intent, Priority, Sentiment, text_hash
from bot.views import AuthorView, CaseView, EarlierContact, GroupedCase, ThreadPost
from handlers.slack_cards import ELLIPSIS, ZWJ, card_actions
from handlers.teams_cards import (
    CONTENT_TYPE,
    MAX_CARD_BYTES,
    OPTIONAL_PARTS,
    VERBS,
    approval_prompt_card,
    attachment,
    card_bytes,
    case_card,
    digest_card,
    inert,
    notice_card,
    refusal_card,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
GUID = "6b1a2c3d-0000-4000-8000-00000000a001"
DEPARTMENTS = [("support", "Customer support"), ("sales", "Sales"), ("press", "Press & PR")]
ALL_STATES = list(CaseState)
INTENTS = [Intent.COMPLAINT, Intent.QUESTION, Intent.PRAISE, Intent.SPAM, Intent.OTHER]

# Every hostile text carries the marker, so a test can tell where it ended up.
MARK = "Zq9"
HOSTILE = [
    f"{MARK} **bold** __b__ _it_ *em* ~~s~~ `code` ```block```",
    f"{MARK} [link](http://evil.example) [x](https://evil.example/a?b=1&c=2)",
    f'{MARK} <at>Ana</at> <at id="0">Bob</at>',
    f"{MARK} visit http://evil.example now or HTTPS://evil.example/login",
    f"{MARK} www.evil.example and mail root@evil.example",
    f"# {MARK} heading\n## sub\n### third",
    f"- {MARK} item\n* item\n+ item\n1. one\n2. two",
    f"> {MARK} quote\n---\n| a | b |\n|---|---|",
    f"![{MARK}](https://evil.example/pixel.png)",
    f"<b>{MARK}</b><script>alert(1)</script><img src=x onerror=alert(1)>",
    f"{MARK} \u202eevil\u202c \u2066iso\u2069 a\u200bb\ufeffc\U000e0041",
    f"{MARK} \x00\x07\x1b[31mred\x7f\x85",
    f"{MARK} lone \ud800 surrogate \udfff",
    f"{MARK} " + "x" * 10_000,
    f"{MARK} " + "👍🏽" * 5_000,
    f"{MARK} " + "\n" * 3_000 + "tail",
    f"{MARK} &lt;at&gt;Ana&lt;/at&gt; &amp;",
]
# Never anywhere on a card (the raw draft in an input's value aside).
FORBIDDEN = [
    "<",
    ">",
    "http://evil.example",
    "https://evil.example",
    "HTTPS://evil.example",
    "www.evil.example",
    "root@evil.example",
    "\u202e",
    "\u2066",
    "\u200b",
    "\ufeff",
    "\U000e0041",
    "\x00",
    "\x1b",
    "\ud800",
    "\udfff",
]
EXPECTED_ACTIONS = {
    CaseState.NEW: ["claim", "dismiss", "reassign"],
    CaseState.CLAIMED: ["edit_reply", "submit", "dismiss", "reassign"],
    CaseState.AWAITING_APPROVAL: ["approve", "reject", "edit_reply"],
    CaseState.APPROVED: [],
    CaseState.PUBLISHED: [],
    CaseState.DISMISSED: [],
    CaseState.FAILED: ["retry", "edit_reply", "dismiss"],
}
VERB = {"edit_reply": "edit"}
SHOW_CARDS = {"edit_reply", "reject", "dismiss", "reassign"}


# ----------------------------------------------------------------- fixtures


def make_case(
    state: CaseState = CaseState.NEW, intent: Intent = Intent.COMPLAINT, **overrides: Any
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
        "sla_due_at": NOW + timedelta(minutes=42),
    }
    if state is not CaseState.NEW:
        fields["claimed_by"] = "U0AGENT1"
    if state not in (CaseState.NEW, CaseState.CLAIMED, CaseState.DISMISSED):
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


def make_view(case: Case, text: str = "My order #123 never arrived", **kw: Any) -> CaseView:
    return CaseView(
        case=case,
        department_name=kw.pop("department_name", "Customer support"),
        author=kw.pop(
            "author", AuthorView(handle="jane_doe", name="Jane Doe", followers=12345, verified=True)
        ),
        text=text,
        url=kw.pop("url", "https://x.com/jane_doe/status/1860000000000000001"),
        **kw,
    )


def rich_extras(text: str = "Earlier issue with delivery") -> dict[str, Any]:
    return {
        "suggestions": [f"Suggestion {n}: sorry, DM us your order number." for n in (1, 2, 3)],
        "earlier": [
            EarlierContact(n, "published", "complaint", NOW - timedelta(days=n), text)
            for n in range(1, 8)
        ],
        "thread": [
            ThreadPost(str(n), text, NOW - timedelta(minutes=n), f"https://x.com/j/status/{n}")
            for n in range(1, 9)
        ],
        "grouped": [GroupedCase(100 + n, f"fan{n}", "new") for n in range(3)],
        "paused": True,
    }


def huge_view(state: CaseState, intent: Intent, text: str) -> CaseView:
    """The largest card the builders can be asked for: every part present, every text huge."""
    case = make_case(
        state,
        intent,
        id=10**12,
        claimed_by=text[:300],
        draft_text=text,
        draft_by=text[:300],
        note=text,
        published_url="https://x.com/" + "a" * 1990,
        route_reason=text,
        mention_count=10**6,
        language=text[:40],
        priority=Priority.URGENT,
        sla_due_at=NOW - timedelta(days=400),
        publish_uncertain_since=NOW,
    )
    return make_view(
        case,
        text,
        author=AuthorView(handle=text[:300], name=text, followers=10**12, verified=True),
        department_name=text,
        url="https://x.com/" + "a" * 1990,
        suggestions=[text] * 3,
        earlier=[EarlierContact(n, text, text, NOW, text) for n in range(50)],
        thread=[ThreadPost(str(n), text, NOW, "https://x.com/" + "b" * 1990) for n in range(50)],
        grouped=[GroupedCase(n, text, text) for n in range(100)],
        paused=True,
    )


# ----------------------------------------------------------------- card walkers


def nodes(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from nodes(item)


def of_type(card: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [n for n in nodes(card) if n.get("type") == kind]


def markdown_texts(card: dict[str, Any]) -> list[str]:
    """Text Teams parses as Markdown (and auto-links): TextBlocks and facts."""
    texts = [n["text"] for n in of_type(card, "TextBlock")]
    for fact_set in of_type(card, "FactSet"):
        texts += [part for fact in fact_set["facts"] for part in (fact["title"], fact["value"])]
    return texts


def runs(card: dict[str, Any]) -> list[str]:
    return [n["text"] for n in of_type(card, "TextRun")]


def blob(card: dict[str, Any]) -> str:
    """What a reader sees, one line per text block, in order."""
    lines: list[str] = []
    for node in nodes(card):
        if node.get("type") == "RichTextBlock":
            lines.append("".join(run["text"] for run in node["inlines"]))
        elif node.get("type") == "TextBlock":
            lines.append(node["text"])
    return "\n".join(lines)


def strings(node: object, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, string) of every string in the card."""
    if isinstance(node, str):
        yield key, node
    elif isinstance(node, dict):
        for k, value in node.items():
            yield from strings(value, k)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item, key)


def by_id(card: dict[str, Any], element_id: str) -> dict[str, Any]:
    return next(n for n in nodes(card) if n.get("id") == element_id)


def has_id(card: dict[str, Any], element_id: str) -> bool:
    return any(n.get("id") == element_id for n in nodes(card))


def top_actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    return list(card.get("actions", []))


def executes(card: dict[str, Any]) -> list[dict[str, Any]]:
    return of_type(card, "Action.Execute")


def assert_card_valid(card: dict[str, Any], case_id: int | None = None) -> None:
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.5"
    assert card["$schema"].startswith("http://adaptivecards.io/schemas/adaptive-card.json")
    assert card["body"]
    wire = json.dumps(card)  # what aiohttp sends: ASCII escapes
    assert json.loads(wire) == card
    assert len(wire.encode("ascii")) == card_bytes(card) < MAX_CARD_BYTES
    assert len(json.dumps(card, ensure_ascii=False).encode("utf-8")) < MAX_CARD_BYTES
    ids = [n["id"] for n in nodes(card) if "id" in n and isinstance(n["id"], str)]
    assert len(ids) == len(set(ids)), ids
    for action in executes(card):
        assert action["verb"] in VERBS
        assert action["title"]
        if case_id is not None:
            assert action["data"]["case"] == case_id
    for block in of_type(card, "RichTextBlock"):
        assert block["inlines"], block
        assert all(run["type"] == "TextRun" and run["text"] for run in block["inlines"])
    for open_url in of_type(card, "Action.OpenUrl"):
        assert open_url["url"].startswith(("https://", "http://"))


def assert_inert(card: dict[str, Any]) -> None:
    """The marked hostile text is shown only in TextRuns, and neutralised everywhere."""
    for text in markdown_texts(card):
        assert MARK not in text, text[:200]
    assert any(MARK in run for run in runs(card))
    for key, text in strings(card):
        if key == "value":
            continue  # an input's value is the raw draft, editable, never rendered as text
        for forbidden in FORBIDDEN:
            assert forbidden not in text, (key, forbidden, text[:200])


# ----------------------------------------------------------------- validity and size


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("intent", INTENTS)
@pytest.mark.parametrize("variant", ["bare", "rich", "no_optional_fields", "huge"])
def test_every_card_is_valid_and_small(state: CaseState, intent: Intent, variant: str) -> None:
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
        author = AuthorView(handle="h", name="", followers=None, verified=False)
        view = make_view(case, "x", author=author, url=None, department_name="")
    else:
        view = huge_view(state, intent, "long text " * 1000)
    card = case_card(view, now=NOW, departments=DEPARTMENTS)
    assert_card_valid(card, view.case.id)


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("intent", [Intent.COMPLAINT, Intent.SPAM])
@pytest.mark.parametrize("char", ["😀", "👍🏽", "é", "x", "&", "<", "\n"])
def test_the_largest_card_stays_under_80_kb(state: CaseState, intent: Intent, char: str) -> None:
    """10,000 chars of each kind in every text, 3 suggestions, 50 thread posts, 50 earlier
    contacts, 100 grouped cases, long names, 300 departments to reassign to, an error."""
    text = char * 10_000
    view = huge_view(state, intent, text)
    departments = [(f"d{n}", text) for n in range(300)]
    names = {text[:300]: text}
    card = case_card(
        view,
        now=NOW,
        tz=ZoneInfo("Europe/Berlin"),
        error=text,
        names=names,
        departments=departments,
    )
    assert_card_valid(card, 10**12)
    for element_id in ("header", "author", "mention", "reading"):
        assert has_id(card, element_id)
    # A draft of only blank lines shows as "(no text)" and fits, as on Slack (textcheck
    # refuses to submit it); every other huge draft is too long to approve from the card.
    # ...and "Dismiss all N similar" last while the group has untouched cases.
    group = ["dismiss_group"] if untouched(view) else []
    expected = card_actions(view.case, draft_shown=char == "\n") + group
    assert [a["id"] for a in top_actions(card)] == expected


@pytest.mark.parametrize("state", [CaseState.NEW, CaseState.CLAIMED, CaseState.FAILED])
@pytest.mark.parametrize("char", ["😀", "é", "<"])
def test_the_size_safety_net_always_has_room(state: CaseState, char: str) -> None:
    """Without its optional parts the largest card is far under the limit, so dropping
    them (largest cards only) always brings a card under it."""
    text = char * 10_000
    card = case_card(
        huge_view(state, Intent.COMPLAINT, text),
        now=NOW,
        error=text,
        names={text[:300]: text},
        departments=[(f"d{n}", text) for n in range(300)],
    )
    card["body"] = [part for part in card["body"] if part.get("id") not in OPTIONAL_PARTS]
    assert card_bytes(card) < 0.8 * MAX_CARD_BYTES


def test_typical_card_is_far_below_the_limit() -> None:
    view = make_view(make_case(CaseState.CLAIMED), **rich_extras())
    assert card_bytes(case_card(view, now=NOW, departments=DEPARTMENTS)) < 20_000


def test_attachment() -> None:
    card = refusal_card("no")
    assert attachment(card) == {"contentType": CONTENT_TYPE, "content": card}
    assert CONTENT_TYPE == "application/vnd.microsoft.card.adaptive"


# ----------------------------------------------------------------- escaping


@pytest.mark.parametrize("state", [CaseState.CLAIMED, CaseState.AWAITING_APPROVAL])
@pytest.mark.parametrize("intent", [Intent.COMPLAINT, Intent.SPAM])
@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_worst_case_cards_neutralise_text(state: CaseState, intent: Intent, hostile: str) -> None:
    view = huge_view(state, intent, hostile)
    card = case_card(view, now=NOW, error=hostile, departments=[("d1", hostile)])
    assert_card_valid(card)
    assert_inert(card)


WHERE = [
    "text",
    "name",
    "handle",
    "thread",
    "earlier",
    "suggestion",
    "draft",
    "note",
    "route",
    "claimed_by",
    "display_name",
    "department_name",
    "grouped",
    "error",
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("where", WHERE)
def test_hostile_text_in_any_field_is_inert(hostile: str, where: str) -> None:
    state = CaseState.AWAITING_APPROVAL if where == "draft" else CaseState.CLAIMED
    overrides: dict[str, Any] = {}
    kw: dict[str, Any] = {}
    names: dict[str, str] = {}
    if where == "draft":
        overrides["draft_text"] = hostile
    elif where == "note":
        overrides["note"] = hostile
    elif where == "route":
        overrides["route_reason"] = hostile
    elif where == "claimed_by":
        overrides["claimed_by"] = hostile
    elif where == "display_name":
        overrides["claimed_by"] = GUID
        names[GUID] = hostile
    elif where == "name":
        kw["author"] = AuthorView(handle="jane", name=hostile, followers=1, verified=False)
    elif where == "handle":
        kw["author"] = AuthorView(handle=hostile, name="Jane", followers=1, verified=False)
    elif where == "thread":
        kw["thread"] = [ThreadPost(mention_id="1", text=hostile, created_at=NOW, url=None)]
    elif where == "earlier":
        kw["earlier"] = [EarlierContact(1, "published", "complaint", NOW, hostile)]
    elif where == "suggestion":
        kw["suggestions"] = [hostile]
    elif where == "department_name":
        kw["department_name"] = hostile
    elif where == "grouped":
        kw["grouped"] = [GroupedCase(7, hostile, "new")]
    view = make_view(make_case(state, **overrides), hostile if where == "text" else "hello", **kw)
    card = case_card(
        view, now=NOW, error=hostile if where == "error" else None, names=names or None
    )
    assert_card_valid(card, 42)
    assert_inert(card)


def test_markdown_stays_literal_in_text_runs() -> None:
    text = "**bold** [link](http://evil.example) <at>Ana</at> # h"
    card = case_card(make_view(make_case(), text), now=NOW)
    (mention,) = by_id(card, "mention")["inlines"]
    assert mention["text"] == f"**bold** [link](http://{ZWJ}evil.example) ‹at›Ana‹/at› # h"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain words", "plain words"),
        ("**b** _i_ `c` [l](x) # h", "**b** _i_ `c` [l](x) # h"),  # TextRun: not Markdown
        ("<at>Ana</at>", "‹at›Ana‹/at›"),
        ("a < b > c", "a ‹ b › c"),
        ("see http://evil.example/x", f"see http://{ZWJ}evil.example/x"),
        ("HTTPS://a.b ftp://c.d", f"HTTPS://{ZWJ}a.b ftp://{ZWJ}c.d"),
        ("www.evil.example", f"www{ZWJ}.evil.example"),
        ("mail a@b.example", f"mail a@{ZWJ}b.example"),
        ("hi @AcmeAir", f"hi @{ZWJ}AcmeAir"),
        ("a @ b", "a @ b"),
        ("a\u200bb\u2060c\ufeffd\u200de", "abcde"),
        ("\u202eevil\u202c \u2067x\u2069", "evil x"),
        ("lone \ud800", "lone \ufffd"),
        ("nul\x00bell\x07", "nulbell"),
        ("a\r\nb\u2028c", "a\nb\nc"),
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("", ""),
    ],
)
def test_inert(raw: str, expected: str) -> None:
    assert inert(raw, limit=1000) == expected


def test_inert_one_line() -> None:
    assert inert(" a\n\n b\tc ", limit=100, one_line=True) == "a b c"


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 10, 99, 100, 2000])
@pytest.mark.parametrize(
    "raw", ["x" * 10_000, "😀" * 5000, "👍🏽" * 5000, "é" * 3000, "e\u0301" * 3000]
)
def test_inert_cuts_by_utf16_units(limit: int, raw: str) -> None:
    text = inert(raw, limit=limit)
    assert units(text) <= limit
    assert text.endswith(ELLIPSIS)
    body = text.removesuffix(ELLIPSIS)
    body.encode("utf-8")  # no half surrogate pair
    if "👍" in raw:
        assert body.count("👍") == body.count("🏽")  # a skin tone stays with its hand
    if "\u0301" in raw:
        assert body.count("e") == body.count("\u0301")


def test_inert_cuts_lines() -> None:
    assert inert("line\n" * 100, limit=1000, max_lines=3) == "line\nline\nline" + ELLIPSIS
    assert inert("x" * 100, limit=100) == "x" * 100


# ----------------------------------------------------------------- buttons per state


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("intent", [Intent.COMPLAINT, Intent.SPAM])
def test_buttons_follow_card_actions(state: CaseState, intent: Intent) -> None:
    case = make_case(state, intent, id=7)
    card = case_card(make_view(case), now=NOW, departments=DEPARTMENTS)
    expected = card_actions(case)
    assert [a["id"] for a in top_actions(card)] == expected
    if intent is Intent.COMPLAINT:
        assert expected == EXPECTED_ACTIONS[state]
    assert ("actions" in card) == bool(expected)
    for action in top_actions(card):
        verb = VERB.get(action["id"], action["id"])
        if action["id"] in SHOW_CARDS:
            assert action["type"] == "Action.ShowCard"
            inner = executes(action["card"])
            assert all(e["verb"] == verb and e["data"] == {"case": 7} for e in inner)
        else:
            assert action["type"] == "Action.Execute"
            assert action["verb"] == verb
            expected_data: dict[str, Any] = {"case": 7}
            if verb == "approve":
                expected_data["hash"] = text_hash(case.draft_text or "")
            assert action["data"] == expected_data


@pytest.mark.parametrize("state", ALL_STATES)
def test_spam_cards_are_compact_with_dismiss_first(state: CaseState) -> None:
    view = make_view(make_case(state, Intent.SPAM), "x" * 5000, **rich_extras())
    card = case_card(view, now=NOW)
    for absent in ("thread", "earlier", "routing", "sla", "suggestion_1", "use_reply_1"):
        assert not has_id(card, absent)
    for present in ("header", "author", "mention", "reading"):
        assert has_id(card, present)
    assert units(by_id(card, "mention")["inlines"][0]["text"]) <= 280
    assert "likely spam" in blob(card)
    if "dismiss" in EXPECTED_ACTIONS[state]:
        assert top_actions(card)[0]["id"] == "dismiss"


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("count", [0, 1, 2, 3, 5])
def test_use_reply_buttons(state: CaseState, count: int) -> None:
    suggestions = [f"reply {n}" for n in range(1, count + 1)]
    card = case_card(make_view(make_case(state, id=9), suggestions=suggestions), now=NOW)
    use = [e for e in executes(card) if e["verb"] == "use_reply"]
    if state in (CaseState.NEW, CaseState.CLAIMED, CaseState.FAILED):
        shown = min(count, 3)
        assert [e["data"] for e in use] == [{"case": 9, "n": n} for n in range(1, shown + 1)]
        assert [e["title"] for e in use] == [f"Use reply {n}" for n in range(1, shown + 1)]
        for n in range(1, shown + 1):
            text = blob(by_id(card, f"suggestion_{n}"))
            assert f"AI-suggested reply {n}" in text and "(check before sending)" in text
            assert f"reply {n}" in text
    else:
        assert use == []


@pytest.mark.parametrize(
    "draft", ["Sorry! DM us.", "café & <stuff>", "x" * 280, "emoji 👍🏽 ok", "**bold** reply"]
)
def test_approve_binds_to_the_draft_hash(draft: str) -> None:
    card = case_card(make_view(make_case(CaseState.AWAITING_APPROVAL, draft_text=draft)), now=NOW)
    (approve,) = [e for e in executes(card) if e["verb"] == "approve"]
    assert approve["data"] == {"case": 42, "hash": text_hash(draft)}
    assert approve["style"] == "positive"
    assert inert(draft, limit=2000) in runs(by_id(card, "draft"))


def test_no_approve_without_a_draft_or_when_it_cannot_be_shown() -> None:
    no_draft = make_case(CaseState.AWAITING_APPROVAL, draft_text=None)
    card = case_card(make_view(no_draft), now=NOW)
    assert "approve" not in [a["id"] for a in top_actions(card)]
    too_long = make_case(CaseState.AWAITING_APPROVAL, draft_text="x" * 2001)
    card = case_card(make_view(too_long), now=NOW)
    assert [a["id"] for a in top_actions(card)] == ["reject", "edit_reply"]
    assert has_id(card, "draft_too_long")


# ----------------------------------------------------------------- inline inputs


def show_card(card: dict[str, Any], action_id: str) -> dict[str, Any]:
    action = next(a for a in top_actions(card) if a["id"] == action_id)
    assert action["type"] == "Action.ShowCard"
    inner: dict[str, Any] = action["card"]
    assert inner["type"] == "AdaptiveCard"
    return inner


def an_input(card: dict[str, Any], input_id: str) -> dict[str, Any]:
    return next(n for n in nodes(card) if n.get("id") == input_id and n["type"].startswith("Input"))


@pytest.mark.parametrize(
    ("draft", "suggestions", "value"),
    [
        ("Sorry! DM us.", ["other"], "Sorry! DM us."),
        (None, ["first one", "second"], "first one"),
        (None, [], None),
        ("x" * 5000, [], "x" * 1000),
        ("😀" * 800, [], "😀" * 500),  # maxLength counts UTF-16 units, as Teams does
        ("bad \ud800 text", [], "bad \ufffd text"),
        ("<at>Ana</at> http://x.example **b**", [], "<at>Ana</at> http://x.example **b**"),
    ],
)
def test_edit_reply_is_an_inline_input(
    draft: str | None, suggestions: list[str], value: str | None
) -> None:
    case = make_case(CaseState.CLAIMED, id=5, draft_text=draft)
    card = case_card(make_view(case, suggestions=suggestions), now=NOW)
    inner = show_card(card, "edit_reply")
    field = an_input(inner, "reply_text")
    assert field["type"] == "Input.Text"
    assert field["isMultiline"] is True
    assert field["maxLength"] == 1000
    assert field.get("value") == value
    (save,) = inner["actions"]
    assert save["type"] == "Action.Execute"
    assert (save["verb"], save["data"]) == ("edit", {"case": 5})


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (CaseState.AWAITING_APPROVAL, "reject"),
        (CaseState.NEW, "dismiss"),
        (CaseState.CLAIMED, "dismiss"),
        (CaseState.FAILED, "dismiss"),
    ],
)
def test_reject_and_dismiss_ask_for_a_reason(state: CaseState, action: str) -> None:
    card = case_card(make_view(make_case(state, id=11)), now=NOW)
    inner = show_card(card, action)
    field = an_input(inner, "reason")
    assert field["type"] == "Input.Text"
    assert field["isRequired"] is True
    assert field["errorMessage"]
    assert field["isMultiline"] is True
    (submit,) = inner["actions"]
    assert (submit["verb"], submit["data"], submit["style"]) == (
        action,
        {"case": 11},
        "destructive",
    )


def test_reassign_offers_the_other_departments() -> None:
    departments = [*DEPARTMENTS, ("sales", "duplicate"), ("x" * 65, "id too long"), ("", "empty")]
    card = case_card(make_view(make_case(CaseState.NEW, id=3)), now=NOW, departments=departments)
    inner = show_card(card, "reassign")
    field = an_input(inner, "department")
    assert field["type"] == "Input.ChoiceSet"
    assert field["isRequired"] is True
    assert field["choices"] == [
        {"title": "Sales", "value": "sales"},
        {"title": "Press & PR", "value": "press"},
    ]
    (submit,) = inner["actions"]
    assert (submit["verb"], submit["data"]) == ("reassign", {"case": 3})


def test_reassign_without_another_department() -> None:
    for departments in ([], [("support", "Customer support")]):
        card = case_card(make_view(make_case()), now=NOW, departments=departments)
        inner = show_card(card, "reassign")
        assert executes(inner) == []
        assert "no other department" in blob(inner)


def test_many_departments_are_capped() -> None:
    departments = [(f"d{n}", "N" * 500) for n in range(300)]
    card = case_card(make_view(make_case()), now=NOW, departments=departments)
    choices = an_input(show_card(card, "reassign"), "department")["choices"]
    assert len(choices) == 50
    assert all(units(c["title"]) <= 40 for c in choices)


# ----------------------------------------------------------------- content


def test_card_shows_everything() -> None:
    case = make_case(
        CaseState.AWAITING_APPROVAL,
        id=1234,
        note="Rejected by <@U0LEAD>: tone",
        route_reason="reassigned by <@U0LEAD>",
        mention_count=3,
    )
    view = make_view(case, **rich_extras())
    names = {"U0LEAD": "Lea Lead", "U0AGENT1": "Ana Agent"}
    card = case_card(view, now=NOW, names=names)
    header = blob(by_id(card, "header"))
    assert "#1234" in header and "Awaiting approval" in header and "Customer support" in header
    text = blob(card)
    assert "Jane Doe" in text and "@jane_doe" in text
    assert "12,345 followers" in text and "verified" in text
    assert "3 messages grouped on this card" in text
    assert "My order #123 never arrived" in text
    (link,) = of_type(by_id(card, "post_link"), "Action.OpenUrl")
    assert link == {
        "type": "Action.OpenUrl",
        "title": "View on X",
        "url": "https://x.com/jane_doe/status/1860000000000000001",
    }
    assert "complaint · negative · priority high · en · needs reply" in text
    assert "Routed: reassigned by Lea Lead" in text
    assert "Claimed by Ana Agent" in text
    assert "Draft reply by Ana Agent:" in text
    assert "Note: Rejected by Lea Lead: tone" in text
    assert "3 similar mentions grouped here: #100 @fan0 (new)" in text
    assert "Earlier contacts by @jane_doe" in text
    assert text.count("• #") == 5 and "and 2 more" in text
    assert "Conversation (8 other posts in this thread)" in text.replace("**", "")
    assert "3 earlier not shown" in text and text.count("↳") == 5
    opens = [r for r in of_type(by_id(card, "thread"), "TextRun") if "selectAction" in r]
    assert [r["selectAction"]["url"] for r in opens] == [  # the last five, as on Slack
        f"https://x.com/j/status/{n}" for n in range(4, 9)
    ]


@pytest.mark.parametrize("state", ALL_STATES)
def test_names_replace_ids_and_no_at_tags(state: CaseState) -> None:
    case = make_case(state, claimed_by=GUID, draft_by=GUID, note=f"Claimed by <@{GUID}>")
    named = case_card(make_view(case), now=NOW, names={GUID: "Ana Lima"})
    unnamed = case_card(make_view(case), now=NOW)
    for card in (named, unnamed):
        for _, text in strings(card):
            assert "<at" not in text and f"<@{GUID}>" not in text
    if state is not CaseState.NEW:
        assert "Claimed by Ana Lima" in blob(named)
        assert GUID not in blob(named)
        assert f"Claimed by {GUID}" in blob(unnamed)  # unknown: the id itself


def test_sla_due_and_overdue() -> None:
    due = NOW + timedelta(minutes=90)
    card = case_card(make_view(make_case(sla_due_at=due)), now=NOW, tz=ZoneInfo("Europe/Berlin"))
    sla = by_id(card, "sla")["text"]
    assert "due Sun 22 Nov 11:30 CET (in 1 h 30 min)" in sla
    late = make_case(sla_due_at=NOW - timedelta(minutes=20))
    sla = by_id(case_card(make_view(late), now=NOW), "sla")["text"]
    assert "overdue** by 20 min (was due Sun 22 Nov 08:40 UTC)" in sla
    for state in (CaseState.PUBLISHED, CaseState.DISMISSED):
        assert not has_id(case_card(make_view(make_case(state)), now=NOW), "sla")
    quiet = make_case(needs_reply=False)
    assert not has_id(case_card(make_view(quiet), now=NOW), "sla")


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("paused", [True, False])
def test_paused_line_only_for_approved(state: CaseState, paused: bool) -> None:
    card = case_card(make_view(make_case(state), paused=paused), now=NOW)
    assert has_id(card, "paused") == (paused and state is CaseState.APPROVED)
    if has_id(card, "paused"):
        assert "Publishing is paused" in by_id(card, "paused")["text"]


def test_outcome_unknown_banner() -> None:
    case = make_case(CaseState.APPROVED, publish_uncertain_since=NOW - timedelta(minutes=3))
    card = case_card(make_view(case), now=NOW)
    banner = by_id(card, "uncertain")
    assert banner["style"] == "warning"
    assert "Outcome unknown: the reply may already be on X" in blob(banner)
    assert "08:57 UTC" in blob(banner)
    assert not has_id(case_card(make_view(make_case(CaseState.APPROVED)), now=NOW), "uncertain")


def test_published_link() -> None:
    card = case_card(make_view(make_case(CaseState.PUBLISHED)), now=NOW)
    (link,) = [r for r in of_type(by_id(card, "published"), "TextRun") if "selectAction" in r]
    assert link["text"] == "View published reply"
    assert link["selectAction"] == {
        "type": "Action.OpenUrl",
        "url": "https://x.com/brand/status/1860000000000000999",
    }


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "https://a.b/<at>x</at>", "ftp://x.example/y", "https://a b"]
)
def test_unsafe_urls_are_not_linked(url: str) -> None:
    case = make_case(CaseState.PUBLISHED, published_url=url)
    thread = [ThreadPost("1", "post", NOW, url)]
    card = case_card(make_view(case, url=url, thread=thread), now=NOW)
    assert of_type(card, "Action.OpenUrl") == []
    assert not any("selectAction" in r for r in of_type(card, "TextRun"))
    assert all("<" not in text for _, text in strings(card))
    assert inert(url, limit=200, one_line=True) in runs(card)  # shown, inert, not linked


@pytest.mark.parametrize("state", ALL_STATES)
def test_error_banner_on_top(state: CaseState) -> None:
    error = "Only managers of Customer Care can approve this case."
    card = case_card(make_view(make_case(state)), now=NOW, error=error)
    banner = card["body"][0]
    assert banner["id"] == "error" and banner["style"] == "attention"
    assert runs(banner) == [error]
    assert not has_id(case_card(make_view(make_case(state)), now=NOW), "error")


@pytest.mark.parametrize("state", [s.value for s in CaseState])
def test_plain_string_enums_still_render(state: str) -> None:
    stray: dict[str, Any] = {"state": state, "intent": "spam", "priority": "urgent"}
    case = replace(make_case(CaseState(state)), **stray)
    card = case_card(make_view(case), now=NOW)
    assert_card_valid(card, 42)
    assert "🚨" in blob(card)


@pytest.mark.parametrize("state", ALL_STATES)
def test_element_ids_are_stable(state: CaseState) -> None:
    view = make_view(make_case(state), **rich_extras())
    first = case_card(view, now=NOW, departments=DEPARTMENTS)
    second = case_card(view, now=NOW + timedelta(minutes=1), departments=DEPARTMENTS)
    assert [b.get("id") for b in first["body"]] == [b.get("id") for b in second["body"]]


# ----------------------------------------------------------------- other cards


def test_approval_prompt_card() -> None:
    draft = "Sorry! **We** will fix it: http://acme.example"
    prompt = ApprovalPrompt(12, draft, text_hash(draft))
    message = (
        f"Reply of case #12, by <@{GUID}>, exactly as it would be posted:\n> {draft}\n"
        "To publish exactly these words, click Approve or type `care approve 12 abcd`."
    )
    card = approval_prompt_card(prompt, message, names={GUID: "Ana Lima"})
    assert_card_valid(card, 12)
    (approve,) = top_actions(card)
    assert approve["type"] == "Action.Execute"
    assert (approve["verb"], approve["data"]) == ("approve", {"case": 12, "hash": text_hash(draft)})
    text = blob(card)
    assert "by Ana Lima" in text and "<@" not in text
    assert f"Sorry! **We** will fix it: http://{ZWJ}acme.example" in text
    assert markdown_texts(card) == []


def test_approval_prompt_too_long_to_show_has_no_button() -> None:
    draft = "x" * 5000
    card = approval_prompt_card(ApprovalPrompt(3, draft, text_hash(draft)), f"> {draft}")
    assert_card_valid(card)
    assert "actions" not in card and executes(card) == []
    assert has_id(card, "too_long")


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_notice_card_neutralises_quoted_posts(hostile: str) -> None:
    card = notice_card(f"Spike alert: 40 mentions in the last hour.\n#12: {hostile}")
    assert_card_valid(card)
    assert_inert(card)


def test_notice_card_names() -> None:
    text = "SLA breached: case #4 in Care had no reply by 10:00 UTC (new). <@U0LEAD> <@U0X>"
    card = notice_card(text, names={"U0LEAD": "Lea"})
    assert runs(card) == ["SLA breached: case #4 in Care had no reply by 10:00 UTC (new). Lea U0X"]


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_refusal_card(hostile: str) -> None:
    card = refusal_card(hostile)
    assert_card_valid(card)
    assert_inert(card)
    assert card["body"][0]["style"] == "attention"
    plain = refusal_card("Case #12 is already claimed by Ana.")
    assert runs(plain) == ["Case #12 is already claimed by Ana."]


# ----------------------------------------------------------------- digest

SINCE = "2026-11-02T09:00:00+00:00"
UNTIL = "2026-11-03T09:00:00+00:00"
HEAD = Head(1234, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4"
    "DwABBAEAcCBlCwAAAABJRU5ErkJggg=="
)


def figures(department: str = "care", name: str = "Customer Care", **kw: Any) -> DepartmentFigures:
    data: dict[str, Any] = {
        "department": department,
        "name": name,
        "received": 12,
        "needs_reply": 9,
        "replied": 6,
        "dismissed": 2,
        "open": 4,
        "response_rate": 6 / 9,
        "median_first_response_s": 42 * 60,
        "p90_first_response_s": 3 * 3600 + 300,
        "median_first_response_business_s": 30 * 60,
        "sla_breaches": 1,
        "by_intent": {"complaint": 7, "question": 5},
        "by_sentiment": {"negative": 8, "neutral": 4},
    }
    data.update(kw)
    return DepartmentFigures(**data)


def link(case_id: int, text: str, **kw: Any) -> CaseLink:
    data: dict[str, Any] = {
        "case_id": case_id,
        "department": "care",
        "state": "new",
        "intent": "complaint",
        "mention_at": "2026-11-02T10:00:00+00:00",
        "text": text,
        "url": f"https://x.com/a/status/{case_id}",
    }
    data.update(kw)
    return CaseLink(**data)


def a_digest(text: str = "My bag is lost", **kw: Any) -> Digest:
    data: dict[str, Any] = {
        "brand": "Acme Air",
        "scope": "all",
        "title": "Daily digest: All departments",
        "since": SINCE,
        "until": UNTIL,
        "timezone": "Europe/London",
        "totals": figures("all", "All departments"),
        "departments": [figures(), figures("mkt", "Marketing", received=3)],
        "oldest_open": [link(n, text) for n in range(1, 6)],
        "topics": [("refund", 5), ("#delayed", 3)],
        "suggestions": [link(n, text, intent="suggestion") for n in range(20, 32)],
        "volume_by_hour": [1] * 24,
        "first_response_by_hour": [None] * 24,
        "audit_head": HEAD,
    }
    data.update(kw)
    return Digest(**data)


def test_digest_card_content() -> None:
    card = digest_card(a_digest(), chart_url=PNG)
    assert_card_valid(card)
    text = blob(card)
    assert "Daily digest: All departments" in blob(by_id(card, "header"))
    assert "Mon 02 Nov 2026 09:00 – Tue 03 Nov 2026 09:00 (Europe/London)" in text
    facts = {f["title"]: f["value"] for f in by_id(card, "figures")["facts"]}
    assert facts["Received"] == "12"
    assert facts["Replied"] == "6 of 9"
    assert facts["Response rate"] == "67%"
    assert facts["Open (unanswered)"] == "4"
    assert facts["First response (median / p90)"] == "42 min / 3 h 05 min"
    assert facts["SLA breaches"] == "1"
    assert "complaint 7 · question 5" in text and "negative 8 · neutral 4" in text
    assert "Marketing: " in text and "3 received" in text
    assert text.count("old · complaint · Customer Care") == 5
    assert "refund (5) · #delayed (3)" in text
    assert "…and 2 more" in blob(by_id(card, "suggestions"))
    assert f"head {HEAD}" in text.replace("\n", "") or str(HEAD) in runs(card)
    assert "socialcare audit verify --expect-head" in text
    (image,) = of_type(card, "Image")
    assert image["url"] == PNG and image["altText"]
    posts = [r for r in of_type(card, "TextRun") if "selectAction" in r]
    assert posts[0]["selectAction"]["url"] == "https://x.com/a/status/1"


def test_department_digest_and_a_quiet_day() -> None:
    quiet = a_digest(
        scope="care",
        totals=figures(received=0, needs_reply=0, replied=0, response_rate=None),
        departments=[],
        oldest_open=[],
        topics=[],
        suggestions=[],
        audit_head=None,
    )
    card = digest_card(quiet)
    assert_card_valid(card)
    assert "No mentions arrived in this period." in blob(card)
    assert "None: every case is handled." in blob(card)
    assert of_type(card, "Image") == []
    assert not has_id(card, "audit_head") and not has_id(card, "departments")
    assert {f["title"]: f["value"] for f in by_id(card, "figures")["facts"]}["Response rate"] == (
        "n/a"
    )


@pytest.mark.parametrize(
    "chart_url",
    [
        "http://charts.example/x.png",
        "javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "data:image/png;base64,<at>",
        "",
    ],
)
def test_digest_refuses_unsafe_charts(chart_url: str) -> None:
    assert of_type(digest_card(a_digest(), chart_url=chart_url), "Image") == []


def test_digest_accepts_https_chart_and_drops_an_oversized_one() -> None:
    card = digest_card(a_digest(), chart_url="https://charts.example/d.png")
    assert of_type(card, "Image")[0]["url"] == "https://charts.example/d.png"
    huge = "data:image/png;base64," + "A" * 100_000
    card = digest_card(a_digest(), chart_url=huge)
    assert_card_valid(card)
    assert of_type(card, "Image") == []
    assert "chart was left out" in by_id(card, "chart")["text"]


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_digest_neutralises_hostile_text(hostile: str) -> None:
    digest = a_digest(
        hostile,
        title=hostile,
        brand=hostile,
        totals=figures("all", hostile, by_intent={hostile: 3}, by_sentiment={hostile: 1}),
        departments=[figures(f"d{n}", hostile) for n in range(40)],
        oldest_open=[link(n, hostile, intent=hostile, department=f"d{n}") for n in range(10)],
        topics=[(hostile, n) for n in range(30)],
        suggestions=[link(n, hostile, url="https://x.com/" + "a" * 5000) for n in range(30)],
    )
    card = digest_card(digest, chart_url=PNG)
    assert_card_valid(card)
    assert_inert(card)
