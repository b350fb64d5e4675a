"""Pure Adaptive Card builders for the Microsoft Teams surface: cases, digests, notices.

Nothing here talks to Teams. Each builder returns the `content` of an attachment with
contentType `application/vnd.microsoft.card.adaptive` (`attachment()` wraps it), schema
1.5, built from the same surface-neutral data as the Slack builders. What a card shows and
which buttons a state gets come from `handlers/slack_cards.py` (`card_actions`, budgets,
labels) and `handlers/slack_digest.py`, so both surfaces always agree.

Escaping. A TextBlock (and a FactSet) renders a Markdown subset and Teams auto-links URLs
in it, so untrusted text - mention text, names, handles, drafts, suggestions, thread posts,
reasons, department names, digest snippets - never goes into one: it goes into the
`TextRun`s of a `RichTextBlock`, whose text is not Markdown. `inert()` also makes that text
harmless should a client ever parse it:
- `_sanitize` (shared with Slack): valid Unicode, NFC, no control, format, bidi or
  invisible characters, no runs of blank lines;
- `<` and `>` become `‹` and `›`, so no `<at>…</at>` mention (nor any tag) can form;
- a zero-width joiner goes after every `://`, after `www` before a dot and after an `@`
  before a word character, so no linkifier sees a URL, a `www.` host, an e-mail address
  or an @name. We chose this over "hxxp" rewriting because it is invisible: staff read the
  customer's words exactly as written;
- every field is cut to a budget counted in UTF-16 code units (what Teams' JavaScript
  counts), never between a character and its combining marks, ending in "…".
Our own words (labels, numbers, durations, times) are the only text in TextBlocks.

Size. Teams refuses a message over ~100 KB. Every card stays under MAX_CARD_BYTES
measured as the SDK sends it (aiohttp's `json.dumps`, ASCII escapes: one UTF-16 unit
costs at most 6 bytes). The per-field budgets keep cards under it; `_fit_size` drops
optional parts (thread, earlier contacts, extra suggestions) as a last resort.

People. User ids (Slack `U…`, Teams GUIDs, `[[people]]` ids) are shown as display names
from `names` (the id when unknown), and `<@id>` tokens in the bot's notes become names.
No `<at>` mention is ever produced: a card never notifies anyone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.actions import VERBS
from bot.bulk import seen_upto, untouched
from bot.commands import ApprovalPrompt
from bot.digest import CaseLink, DepartmentFigures, Digest
from bot.meta_rules import private_channel
from bot.models import CaseState, Intent, Priority, network_name, shows_handle
from bot.reports import format_duration
from bot.views import CaseView
from handlers.slack_cards import (
    AUTHOR_NAME_CHARS,
    BUTTON_TEXT,
    DRAFT_CHARS,
    EARLIER_CONTACTS,
    EARLIER_SNIPPET_CHARS,
    EDIT_REPLY_MAX_LENGTH,
    ELLIPSIS,
    GROUPED_SHOWN,
    HANDLE_CHARS,
    MENTION_CHARS,
    MENTION_LINES,
    NOTE_CHARS,
    REASON_MAX_LENGTH,
    ROUTE_REASON_CHARS,
    SPAM_MENTION_CHARS,
    SPAM_MENTION_LINES,
    SUGGESTION_CHARS,
    SUGGESTIONS,
    THREAD_POST_CHARS,
    THREAD_POSTS,
    USE_REPLY_STATES,
    ZWJ,
    _is_mark,
    _sanitize,
    card_actions,
    group_button_text,
    hidden_status,
    private_notice,
    state_label,
)
from handlers.slack_digest import (
    DEPARTMENT_NAME_CHARS,
    SNIPPET_CHARS,
    SUGGESTION_ITEMS,
    TOPIC_CHARS,
    _counts,
    _department_names,
    age,
    audit_entries,
    breaches,
    figure_pairs,
    percent,
    period,
)

Card = dict[str, Any]
Names = Mapping[str, str] | None

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_CARD_BYTES = 80_000
# The verbs of `Action.Execute` are the surface-neutral card verbs (bot.actions.VERBS).
MAX_PRIMARY_ACTIONS = 6  # Teams' host config (maxActions)
SECONDARY_FIRST = (
    "hide_comment",
    "unhide_comment",
    "reassign",
)  # the rarest buttons, to the "…" menu first
# Input ids are unique per card, so a verb whose form can sit next to another form with
# the same field has its own id; handlers.teams reads it back as the usual field.
INPUT_ID = {"hide": "hide_reason", "reply_private": "private_text"}
INPUT_FIELD = {"hide": "reason", "reply_private": "reply_text"}
# card_actions() speaks in Slack action ids; these are their Teams verbs.
VERB = {
    "reply_private": "reply_private",
    "hide_comment": "hide",
    "unhide_comment": "unhide",
    "claim": "claim",
    "edit_reply": "edit",
    "submit": "submit",
    "approve": "approve",
    "reject": "reject",
    "dismiss": "dismiss",
    "reassign": "reassign",
    "retry": "retry",
}
POSITIVE = frozenset({"claim", "approve", "retry"})
DESTRUCTIVE = frozenset({"reject", "dismiss", "hide_comment"})

# Budgets in UTF-16 units, for parts the Slack budgets do not cover.
NAME_CHARS = 100
ERROR_CHARS = 500
NOTICE_CHARS = 3000
PROMPT_CHARS = DRAFT_CHARS + 2000  # the draft, quoted line by line, plus our sentences
CHOICES = 50
CHOICE_CHARS = 40
CHOICE_VALUE_CHARS = 64  # department ids are at most 40 characters
GROUPED_HANDLE_CHARS = 40
WORD_CHARS = 30
DIGEST_DEPARTMENTS = 20
DIGEST_ITEMS = 10
DIGEST_TOPICS = 20
MAX_URL = 2000

STATE_EMOJI: dict[CaseState, str] = {
    CaseState.NEW: "🟡",
    CaseState.CLAIMED: "🔵",
    CaseState.AWAITING_APPROVAL: "🟣",
    CaseState.APPROVED: "✅",
    CaseState.PUBLISHED: "🟢",
    CaseState.DISMISSED: "⚪",
    CaseState.FAILED: "🔴",
}

# Body parts `_fit_size` may drop, in this order, if a card is ever too big.
OPTIONAL_PARTS = ("thread", "earlier", "suggestion_3", "suggestion_2", "grouped", "routing")

# --------------------------------------------------------------------------- text

_LINKISH = re.compile(r"://|\bwww(?=\.)|@(?=\w)", re.IGNORECASE)
_USER_TOKEN = re.compile(r"<@([^<>\s|]{1,128})>")
_URL_OK = re.compile(r"https?://[^\s<>\"'`\\]+", re.IGNORECASE)
_HTTPS_OK = re.compile(r"https://[^\s<>\"'`\\]+", re.IGNORECASE)
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif);base64,[A-Za-z0-9+/]+={0,2}")


def _units(text: str) -> int:
    """Length in UTF-16 code units, as Teams (JavaScript) counts it."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _head(text: str, budget: int) -> str:
    """The longest start of `text` within `budget` UTF-16 units, not cutting off marks."""
    end = size = 0
    for ch in text:
        size += 2 if ord(ch) > 0xFFFF else 1
        if size > budget:
            break
        end += 1
    while 0 < end < len(text) and _is_mark(text[end]):
        end -= 1  # drop the base character whose accent or skin tone would be cut off
    return text[:end]


def _cut(text: str, limit: int, max_lines: int | None = None) -> str:
    lines = text.split("\n")
    too_many = max_lines is not None and len(lines) > max_lines
    if too_many:
        text = "\n".join(lines[:max_lines])
    if not too_many and _units(text) <= limit:
        return text
    return _head(text, max(limit, 1) - len(ELLIPSIS)).rstrip() + ELLIPSIS


def _neutral(text: str | None) -> str:
    """Untrusted text made inert but not cut (see the module docstring)."""
    clean = _sanitize(text).replace("<", "‹").replace(">", "›")
    return _LINKISH.sub(lambda match: match.group(0) + ZWJ, clean)


def inert(
    text: str | None, *, limit: int, max_lines: int | None = None, one_line: bool = False
) -> str:
    """Untrusted text for a TextRun: cannot format, link or mention; at most `limit` units."""
    clean = _neutral(text)
    if one_line:
        clean = " ".join(clean.split())
    return _cut(clean, limit, max_lines)


def _with_names(text: str | None, names: Names) -> str:
    """The bot's `<@id>` mentions (Slack-style, in notes) replaced by display names."""
    return _USER_TOKEN.sub(lambda m: (names or {}).get(m.group(1)) or m.group(1), text or "")


def _person(user_id: str | None, names: Names) -> str:
    if not user_id:
        return "someone"
    return inert((names or {}).get(user_id) or user_id, limit=NAME_CHARS, one_line=True)


def _word(value: object) -> str:
    """An enum value (or a stray string standing in for one), inert, on one line."""
    return inert(str(value), limit=WORD_CHARS, one_line=True)


def _input_value(text: str) -> str:
    """A prefilled input: the raw words (an edit saves them), valid Unicode, within maxLength."""
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return _head(text, EDIT_REPLY_MAX_LENGTH)


def _linkable(url: str | None) -> str | None:
    """`url` if it is a plain http(s) URL we may link, else None."""
    if url and len(url) <= MAX_URL and _URL_OK.fullmatch(url):
        return url
    return None


def _stamp(moment: datetime, tz: ZoneInfo | None, fmt: str = "%a %d %b %H:%M %Z") -> str:
    # A fixed time in the bot's zone, named: Teams' {{DATE()}} functions only work in
    # TextBlocks and show raw braces on clients that lack them.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(tz or UTC).strftime(fmt)


# --------------------------------------------------------------------------- elements


def _card(body: list[Card], actions: list[Card] | None = None) -> Card:
    card: Card = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return card


def _run(text: str, **style: Any) -> Card:
    return {"type": "TextRun", "text": text, **style}


def _rich(element_id: str | None, *runs: str | Card, subtle: bool = False, **props: Any) -> Card:
    """A RichTextBlock of our labels and `inert()` values (a bare str is a plain run).

    `subtle` greys every run (a RichTextBlock has no text style of its own); `props` are
    the block's layout (`spacing`, `separator`).
    """
    inlines = [_run(r) if isinstance(r, str) else r for r in runs]
    if subtle:
        inlines = [{**r, "isSubtle": True} for r in inlines]
    block: Card = {
        "type": "RichTextBlock",
        "inlines": [r for r in inlines if r["text"]],
        **props,
    }
    if element_id:
        block["id"] = element_id
    return block


def _said(text: str, **style: Any) -> Card:
    """The run of a text someone wrote; "(no text)" when nothing visible is left of it."""
    return _run(text, **style) if text else _run("(no text)", italic=True)


def _label(text: str, element_id: str | None = None, **props: Any) -> Card:
    """A TextBlock: only ever our own words."""
    block: Card = {"type": "TextBlock", "text": text, "wrap": True, **props}
    if element_id:
        block["id"] = element_id
    return block


def _link_run(title: str, url: str) -> Card:
    return _run(title, selectAction={"type": "Action.OpenUrl", "url": url})


def _link_or_text(url: str | None, title: str) -> Card:
    """A link run for an http(s) URL; anything else is shown inert, not linked."""
    ok = _linkable(url)
    return _link_run(title, ok) if ok else _run(inert(url, limit=200, one_line=True))


def _banner(element_id: str, text: str) -> Card:
    """A red box with text for the person who acted (a refusal, an error)."""
    run = _said(inert(text, limit=ERROR_CHARS), color="Attention", weight="Bolder")
    return {
        "type": "Container",
        "id": element_id,
        "style": "attention",
        "items": [_rich(None, run)],
    }


def _good_banner(element_id: str, text: str) -> Card:
    """A green box for the person who acted: what their bulk action or "Claim next" did."""
    run = _said(inert(text, limit=NOTICE_CHARS), weight="Bolder")
    return {"type": "Container", "id": element_id, "style": "good", "items": [_rich(None, run)]}


def _execute(verb: str, title: str, case_id: int, *, style: str | None = None, **data: Any) -> Card:
    action: Card = {
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": {"case": case_id, **data},
        # Gather the inputs of the card this button sits in (a ShowCard's reason, reply…).
        "associatedInputs": "auto",
    }
    if style:
        action["style"] = style
    return action


def _show_card(action_id: str, title: str, body: list[Card], submit: Card | None) -> Card:
    action: Card = {
        "type": "Action.ShowCard",
        "id": action_id,
        "title": title,
        "card": {"type": "AdaptiveCard", "body": body, **({"actions": [submit]} if submit else {})},
    }
    if action_id in DESTRUCTIVE:
        action["style"] = "destructive"
    return action


# --------------------------------------------------------------------------- case card


def _edit_action(view: CaseView, *, private: bool = False) -> Card:
    """Write or edit the reply; `private`: as a private message (Messenger / Direct)."""
    case = view.case
    handle = inert(view.author.handle.lstrip("@"), limit=HANDLE_CHARS, one_line=True)
    prefill = case.draft_text or (view.suggestions[0] if view.suggestions else "")
    field: Card = {
        "type": "Input.Text",
        "id": "reply_text",
        "label": "Reply",
        "isMultiline": True,
        "maxLength": EDIT_REPLY_MAX_LENGTH,
        "placeholder": "Write the public reply…",
        "isRequired": True,
        "errorMessage": "Write the reply first.",
    }
    value = _input_value(prefill)
    if value:
        field["value"] = value
    intro = f"Public reply to @{handle} for case #{case.id}."
    hint = "Posted publicly as the brand once a manager approves it. "
    if private:
        via = private_channel(case.network)
        field["id"] = INPUT_ID["reply_private"]  # Edit reply may sit on the same card
        field["label"] = "Private message"
        field["placeholder"] = "Write the private message…"
        intro = (
            f"Private reply to @{handle} for case #{case.id}: sent as a {via} message,"
            " not posted publicly."
        )
        hint = (
            f"Sent privately ({via}) once a manager approves it; one private reply per"
            " comment, within 7 days of it. "
        )
    body = [
        _rich(None, intro, subtle=True),
        field,
        _label(
            hint + "Saving a new text cancels any earlier approval.",
            isSubtle=True,
            size="Small",
        ),
    ]
    verb, action_id = ("reply_private", "reply_private") if private else ("edit", "edit_reply")
    if private and case.draft_private:
        action_id = "edit_reply"  # the card's Edit reply of a private draft
    submit = _execute(verb, "Save draft", case.id, style="positive")
    return _show_card(action_id, BUTTON_TEXT[action_id], body, submit)


def _reason_action(action_id: str, case_id: int) -> Card:
    if action_id == "hide_comment":
        question = "Why hide this comment?"
        hint = (
            "E.g. spam, abuse, personal data. Shown on the card and audited; the case stays open."
        )
    elif action_id == "reject":
        question = "Why is this draft rejected?"
        hint = "The agent sees this note on the card and in its thread."
    else:
        question = "Why does this case need no reply?"
        hint = "No reply will be sent. The reason is logged in the card's thread."
    body = [
        {
            "type": "Input.Text",
            "id": INPUT_ID.get(VERB[action_id], "reason"),
            "label": question,
            "isMultiline": True,
            "maxLength": REASON_MAX_LENGTH,
            "isRequired": True,
            "errorMessage": "Give a reason.",
        },
        _label(hint, isSubtle=True, size="Small"),
    ]
    submit = _execute(VERB[action_id], BUTTON_TEXT[action_id], case_id, style="destructive")
    return _show_card(action_id, BUTTON_TEXT[action_id], body, submit)


def _reassign_action(case_id: int, current: str, departments: Sequence[tuple[str, str]]) -> Card:
    choices: list[Card] = []
    seen = {current}
    for dept_id, name in departments:
        if not dept_id or dept_id in seen or len(dept_id) > CHOICE_VALUE_CHARS:
            continue  # the current one, a duplicate, or an id we could not carry intact
        seen.add(dept_id)
        title = inert(name, limit=CHOICE_CHARS, one_line=True) or dept_id
        choices.append({"title": title, "value": dept_id})
        if len(choices) == CHOICES:
            break
    if not choices:
        body = [_label("There is no other department to reassign to.")]
        return _show_card("reassign", BUTTON_TEXT["reassign"], body, None)
    body = [
        {
            "type": "Input.ChoiceSet",
            "id": "department",
            "label": "Move to department",
            "style": "compact",
            "placeholder": "Choose a department",
            "isRequired": True,
            "errorMessage": "Choose a department.",
            "choices": choices,
        },
        _label(
            "The claim is released; the new department's channel gets the card.",
            isSubtle=True,
            size="Small",
        ),
    ]
    submit = _execute("reassign", BUTTON_TEXT["reassign"], case_id, style="positive")
    return _show_card("reassign", BUTTON_TEXT["reassign"], body, submit)


def _case_action(action_id: str, view: CaseView, departments: Sequence[tuple[str, str]]) -> Card:
    """The card-level action for one of `card_actions()`; inputs open inline (ShowCard)."""
    case = view.case
    if action_id in ("edit_reply", "reply_private"):
        return _edit_action(view, private=action_id == "reply_private" or case.draft_private)
    if action_id in ("reject", "dismiss", "hide_comment"):
        return _reason_action(action_id, case.id)
    if action_id == "reassign":
        return _reassign_action(case.id, case.department, departments)
    extra: dict[str, Any] = {}
    if action_id == "approve":
        # Bound to the words on this card: a draft changed since is refused.
        extra["hash"] = case.draft_hash or ""
    style = "positive" if action_id in POSITIVE else None
    action = _execute(VERB[action_id], BUTTON_TEXT[action_id], case.id, style=style, **extra)
    action["id"] = action_id
    return action


def _group_action(view: CaseView) -> Card | None:
    """ "Dismiss all N similar" on a grouped card: one reason for every untouched copy."""
    count = len(untouched(view))
    if not count:
        return None
    title = group_button_text(count)
    body = [
        {
            "type": "Input.Text",
            "id": "group_reason",  # ids are unique per card: Dismiss has its own "reason"
            "label": "Why do these need no reply?",
            "isMultiline": True,
            "maxLength": REASON_MAX_LENGTH,
            "isRequired": True,
            "errorMessage": "Give a reason.",
        },
        _label(
            f"Dismisses the {count} untouched case{'s' * (count != 1)} on this card."
            " Cases someone has claimed or drafted are left alone.",
            isSubtle=True,
            size="Small",
        ),
    ]
    submit = _execute(
        "dismiss_group", "Dismiss all", view.case.id, style="destructive", upto=seen_upto(view)
    )
    action = _show_card("dismiss_group", title, body, submit)
    action["style"] = "destructive"
    return action


def _header(view: CaseView) -> Card:
    case = view.case
    text = f"{STATE_EMOJI[case.state]} #{case.id} · {state_label(case)}"
    department = inert(view.department_name, limit=60, one_line=True)
    return _rich(
        "header",
        _run(text, size="Large", weight="Bolder"),
        _run(f" · {department}" if department else "", size="Large", weight="Bolder"),
    )


def _author(view: CaseView) -> Card:
    author, case = view.author, view.case
    name = inert(author.name, limit=AUTHOR_NAME_CHARS, one_line=True)
    handle = inert(author.handle.lstrip("@"), limit=HANDLE_CHARS, one_line=True)
    at = f"@{handle}" if shows_handle(case.network) or not name else ""  # Facebook: an id
    runs: list[str | Card] = [_run(name + " ", weight="Bolder") if name else "", at]
    if author.followers is not None:
        runs.append(f" · {max(author.followers, 0):,} followers")
    if author.verified:
        runs.append(" · ✔ verified")
    if case.mention_count > 1:
        runs.append(f" · {case.mention_count} messages grouped on this card")
    return _rich("author", *runs)


def _post_link(view: CaseView) -> Card:
    network = inert(network_name(view.case.network), limit=20, one_line=True) or "the network"
    url = _linkable(view.url)
    if url:
        link = {"type": "Action.OpenUrl", "title": f"View on {network}", "url": url}
        return {"type": "ActionSet", "id": "post_link", "actions": [link]}
    return _rich("post_link", "Post: ", _run(inert(view.url, limit=200, one_line=True)))


def _reading(view: CaseView) -> Card:
    case = view.case
    spam = "🚫 likely spam · " if case.intent == Intent.SPAM else ""
    flag = " 🚨" if case.priority == Priority.URGENT else ""
    language = inert(case.language, limit=16, one_line=True) or "?"
    reply = "needs reply" if case.needs_reply else "no reply needed"
    text = (
        f"{spam}{_word(case.intent)} · {_word(case.sentiment)} · "
        f"priority {_word(case.priority)}{flag} · {language} · {reply}"
    )
    return _rich("reading", text, subtle=True)


def _grouped(view: CaseView) -> Card | None:
    if not view.grouped:
        return None
    count = len(view.grouped)
    runs: list[str | Card] = [
        f"🔗 {count} similar mention{'s' * (count != 1)} grouped here: ",
        ", ".join(
            f"#{g.case_id}"
            + (
                f" @{inert(g.handle, limit=GROUPED_HANDLE_CHARS, one_line=True)}"
                if shows_handle(view.case.network)  # Facebook: page-scoped ids
                else ""
            )
            + f" ({_word(g.state)})"
            for g in view.grouped[:GROUPED_SHOWN]
        ),
    ]
    if count > GROUPED_SHOWN:
        runs.append(f" and {count - GROUPED_SHOWN} more")
    runs.append(". Act on each with “care … N”.")
    return _rich("grouped", *runs, subtle=True)


def _sla(view: CaseView, now: datetime, tz: ZoneInfo | None) -> Card | None:
    case = view.case
    if case.sla_due_at is None or not case.needs_reply:
        return None
    if case.state in (CaseState.PUBLISHED, CaseState.DISMISSED):
        return None
    due = case.sla_due_at if case.sla_due_at.tzinfo else case.sla_due_at.replace(tzinfo=UTC)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    delta = (due - now).total_seconds()
    stamp = _stamp(due, tz)
    if delta >= 0:
        return _label(f"⏰ First response due {stamp} (in {format_duration(delta)})", "sla")
    text = f"⚠️ First response **overdue** by {format_duration(delta)} (was due {stamp})"
    return _label(text, "sla", color="Attention")


def _thread(view: CaseView, tz: ZoneInfo | None) -> Card | None:
    if not view.thread:
        return None
    count = len(view.thread)
    shown = view.thread[-THREAD_POSTS:]
    items = [_label(f"**Conversation** ({count} other post{'s' * (count != 1)} in this thread)")]
    if count > len(shown):
        items.append(_label(f"…{count - len(shown)} earlier not shown", isSubtle=True))
    for post in shown:
        runs: list[str | Card] = [
            f"↳ {_stamp(post.created_at, tz, '%d %b %H:%M')} ",
            inert(post.text, limit=THREAD_POST_CHARS, one_line=True),
        ]
        url = _linkable(post.url)
        if url:
            runs += [" (", _link_run("open", url), ")"]
        items.append(_rich(None, *runs, spacing="Small"))
    return {"type": "Container", "id": "thread", "items": items, "separator": True}


def _earlier(view: CaseView, tz: ZoneInfo | None) -> Card | None:
    if not view.earlier:
        return None
    handle = inert(view.author.handle.lstrip("@"), limit=HANDLE_CHARS, one_line=True)
    items = [_rich(None, _run(f"Earlier contacts by @{handle}", weight="Bolder"))]
    for contact in view.earlier[:EARLIER_CONTACTS]:
        line = (
            f"• #{contact.case_id} · {_stamp(contact.created_at, tz, '%d %b %Y')} · "
            f"{_word(contact.intent)} · {_word(contact.state)} — "
        )
        snippet = inert(contact.text, limit=EARLIER_SNIPPET_CHARS, one_line=True)
        items.append(_rich(None, line, snippet, spacing="Small"))
    more = len(view.earlier) - EARLIER_CONTACTS
    if more > 0:
        items.append(_label(f"…and {more} more", isSubtle=True, spacing="Small"))
    return {"type": "Container", "id": "earlier", "items": items, "separator": True}


def _suggestions(view: CaseView) -> list[Card]:
    case = view.case
    if case.state not in USE_REPLY_STATES:
        return []
    parts: list[Card] = []
    for n, suggestion in enumerate(view.suggestions[:SUGGESTIONS], start=1):
        use = _execute("use_reply", f"Use reply {n}", case.id, n=n)
        use["id"] = f"use_reply_{n}"
        items = [
            _rich(
                None,
                _run(f"🤖 AI-suggested reply {n}", weight="Bolder"),
                _run(" (check before sending)", isSubtle=True),
            ),
            _rich(None, _said(inert(suggestion, limit=SUGGESTION_CHARS, max_lines=10))),
            {"type": "ActionSet", "actions": [use]},
        ]
        parts.append(
            {"type": "Container", "id": f"suggestion_{n}", "items": items, "separator": True}
        )
    return parts


def _status(view: CaseView, tz: ZoneInfo | None, names: Names) -> tuple[list[Card], bool]:
    """Claimant, draft, note, published link, outcome unknown, pause; whether the draft fits."""
    case = view.case
    parts: list[Card] = []
    draft_shown = True
    if case.claimed_by:
        parts.append(_rich("claimed", "🙋 Claimed by ", _person(case.claimed_by, names)))
    if case.draft_text:
        draft = _neutral(case.draft_text)
        draft_shown = _units(draft) <= DRAFT_CHARS
        items = [
            _rich(
                None,
                _run("Private reply" if case.draft_private else "Draft reply", weight="Bolder"),
                f" ({private_notice(case)})" if case.draft_private else "",
                f" by {_person(case.draft_by, names)}:",
            ),
            _rich(None, _said(_cut(draft, DRAFT_CHARS))),
        ]
        parts.append({"type": "Container", "id": "draft", "style": "emphasis", "items": items})
        if not draft_shown:
            parts.append(
                _label(
                    "⚠️ The draft is too long to show in full; "
                    "open **Edit reply** to review or shorten it.",
                    "draft_too_long",
                    color="Warning",
                )
            )
    if case.note:
        note = inert(_with_names(case.note, names), limit=NOTE_CHARS)
        parts.append(_rich("note", "📝 Note: ", note))
    if case.published_url and case.draft_private:
        where = private_channel(case.network)
        parts.append(_rich("published", f"✉️ Replied privately ({where})"))
    elif case.published_url:
        link = _link_or_text(case.published_url, "View published reply")
        parts.append(_rich("published", "🔗 Published: ", link))
    hidden = hidden_status(case, "{who}")
    if hidden:
        text = inert(hidden, limit=NOTE_CHARS)
        head, _, tail = text.partition("{who}")
        parts.append(_rich("hidden", "🚫 ", head, _person(case.hidden_by, names), tail))
    if case.publish_uncertain_since is not None:
        network = inert(network_name(case.network), limit=20, one_line=True)
        since = _stamp(case.publish_uncertain_since, tz)
        text = (
            f" the reply may already be on {network} (no clear answer since {since})."
            f" socialcare keeps checking {network} and will record the reply it finds or"
            " post this one once; until then the case cannot be changed."
        )
        box = _rich(None, _run("⚠️ Outcome unknown:", weight="Bolder"), text)
        parts.append({"type": "Container", "id": "uncertain", "style": "warning", "items": [box]})
    if view.paused and case.state == CaseState.APPROVED:
        text = "⏸️ Publishing is paused: this reply goes out on resume."
        parts.append(_label(text, "paused"))
    return parts, draft_shown


def case_card(
    view: CaseView,
    *,
    now: datetime,
    tz: ZoneInfo | None = None,
    error: str | None = None,
    names: Names = None,
    departments: Sequence[tuple[str, str]] = (),
    notice: str | None = None,
) -> Card:
    """The Adaptive Card of a case (post it, or `PUT` it to update the card in place).

    `now` decides "due in"/"overdue by"; times are shown in `tz` (UTC when None).
    `error`: a red banner on top, for the person whose action was refused.
    `names`: user id -> display name. `departments`: (id, name) pairs for Reassign.
    """
    from handlers import teams_desk  # builds on this module

    case = view.case
    spam = case.intent == Intent.SPAM
    body: list[Card] = []
    if error:
        body.append(_banner("error", error))
    if notice:
        body.append(_good_banner("notice_banner", notice))
    body += [_header(view), _author(view)]
    if spam:  # compact, like Slack: the words, the reading, Dismiss first
        mention = inert(view.text, limit=SPAM_MENTION_CHARS, max_lines=SPAM_MENTION_LINES)
    else:
        mention = inert(view.text, limit=MENTION_CHARS, max_lines=MENTION_LINES)
    body.append(_rich("mention", _said(mention)))
    if view.url:
        body.append(_post_link(view))
    body.append(_reading(view))
    optional: list[Card | None] = [_grouped(view)]
    if not spam:
        reason = inert(_with_names(case.route_reason, names), limit=ROUTE_REASON_CHARS)
        optional += [
            _rich("routing", "Routed: ", reason, subtle=True) if reason else None,
            _sla(view, now, tz),
            _thread(view, tz),
            _earlier(view, tz),
            *_suggestions(view),
        ]
    body += [part for part in optional if part is not None]
    status, draft_shown = _status(view, tz, names)
    body += status
    body += teams_desk.desk_parts(view)
    actions = [
        _case_action(action_id, view, departments)
        for action_id in card_actions(case, draft_shown=draft_shown)
    ]
    group = _group_action(view)
    if group is not None:
        actions.append(group)
    card = _card(body, _fit_buttons(actions))
    mentions = teams_desk.vip_mention_entities(view)
    if mentions:
        card["msteams"] = {**card.get("msteams", {}), "entities": mentions}
    return _fit_size(card)


def _fit_buttons(actions: list[Card]) -> list[Card]:
    """Teams shows at most MAX_PRIMARY_ACTIONS buttons and cuts off the rest: past that,
    the rarest ones move to its "…" menu (mode secondary) instead of disappearing."""
    extra = len(actions) - MAX_PRIMARY_ACTIONS
    for action_id in SECONDARY_FIRST:
        if extra <= 0:
            break
        for action in actions:
            if action.get("id") == action_id:
                action["mode"] = "secondary"
                extra -= 1
    return actions


def _fit_size(card: Card) -> Card:
    """Safety net: drop optional body parts until the card is under MAX_CARD_BYTES."""
    for element_id in OPTIONAL_PARTS:
        if card_bytes(card) <= MAX_CARD_BYTES:
            break
        card["body"] = [part for part in card["body"] if part.get("id") != element_id]
    return card


# --------------------------------------------------------------------------- other cards


def approval_prompt_card(prompt: ApprovalPrompt, message: str, *, names: Names = None) -> Card:
    """The answer to `care approve N` without a code: the exact words and an Approve
    button bound to their hash (the same verb and data as the card's Approve)."""
    text = _neutral(_with_names(message, names))
    body = [_rich("approval_prompt", _said(_cut(text, PROMPT_CHARS)))]
    if _units(text) > PROMPT_CHARS:
        # Never offer to approve words the manager could not read in full.
        body.append(
            _label(
                "⚠️ The reply is too long to show here in full; review it on its card.",
                "too_long",
                color="Warning",
            )
        )
        return _card(body)
    approve = _execute(
        "approve", BUTTON_TEXT["approve"], prompt.case_id, style="positive", hash=prompt.text_hash
    )
    approve["id"] = "approve"
    return _card(body, [approve])


def notice_card(text: str, *, names: Names = None) -> Card:
    """A reminder, escalation, spike alert or thread note (ours, but it may quote posts)."""
    return _card([_rich("notice", _said(inert(_with_names(text, names), limit=NOTICE_CHARS)))])


def queue_answer_card(text: str, *, names: Names = None) -> Card:
    """The `/care queue` answer with a "Claim next" button."""
    card = notice_card(text, names=names)
    card["actions"] = [
        {
            "type": "Action.Execute",
            "id": "claim_next",
            "title": "Claim next",
            "verb": "claim_next",
            "data": {},
            "style": "positive",
        }
    ]
    return card


def refusal_card(text: str) -> Card:
    """A small card with the reason an action was refused (invoke response, no case)."""
    return _card([_banner("refusal", text)])


def attachment(card: Card) -> Card:
    """An activity attachment carrying `card`."""
    return {"contentType": CONTENT_TYPE, "content": card}


def card_bytes(card: Card) -> int:
    """The size of `card` as the SDK sends it (`json.dumps`, ASCII escapes: the worst case)."""
    return len(json.dumps(card).encode("ascii"))


# --------------------------------------------------------------------------- digest


def _figures(f: DepartmentFigures) -> Card:
    # Fact values render Markdown in Teams: only numbers and durations go here.
    facts = figure_pairs(f, open_label="Open (unanswered)")
    return {
        "type": "FactSet",
        "id": "figures",
        "facts": [{"title": title, "value": value} for title, value in facts],
    }


def _one_label(text: str, limit: int = 40) -> str:
    return inert(text, limit=limit, one_line=True)


def _case_line(case: CaseLink, digest: Digest, names: dict[str, str], *, oldest: bool) -> Card:
    parts = [f"#{case.case_id}"]
    if oldest:
        parts.append(f"{age(case.mention_at, digest.until)} old")
    parts.append(_one_label(case.intent or "unknown", WORD_CHARS))
    if digest.scope == "all":
        department = names.get(case.department, case.department)
        parts.append(_one_label(department, DEPARTMENT_NAME_CHARS))
    runs: list[str | Card] = ["• " + " · ".join(parts)]
    snippet = inert(case.text, limit=SNIPPET_CHARS, one_line=True)
    if snippet:
        runs.append(f" — “{snippet}”")
    url = _linkable(case.url)
    if url:
        runs += [" ", _link_run("view post", url)]
    return _rich(None, *runs, spacing="Small")


def _section(element_id: str, heading: str, lines: list[Card], more: int = 0) -> Card:
    items = [_label(f"**{heading}**"), *lines]
    if more > 0:
        items.append(_label(f"…and {more} more", isSubtle=True, spacing="Small"))
    return {"type": "Container", "id": element_id, "items": items, "separator": True}


def _network_breakdown(by_network: dict[str, int]) -> list[str | dict[str, Any]]:
    """The "By network" line, when the period saw more than one network."""
    if len(by_network) < 2:
        return []
    return [
        "\n",
        _run("By network: ", weight="Bolder"),
        _counts(by_network, label=_one_label, limit=DIGEST_ITEMS),
    ]


def digest_card(digest: Digest, *, chart_url: str | None = None) -> Card:
    """A daily digest: the same content as the Slack digest, with the chart as an Image
    when `chart_url` (a `data:image/…;base64,` URI or an https URL) is given."""
    totals = digest.totals
    names = _department_names(digest)
    title = inert(digest.title or "Daily digest", limit=150, one_line=True) or "Daily digest"
    body: list[Card] = [
        _rich("header", _run(title, size="Large", weight="Bolder")),
        _rich(
            "period",
            f"📅 {_one_label(period(digest), 200)} · {_one_label(digest.brand, 80)}",
            subtle=True,
        ),
        _figures(totals),
    ]
    if totals.received == 0:
        body.append(_label("No mentions arrived in this period.", "quiet"))
    else:
        body.append(
            _rich(
                "breakdown",
                _run("By intent: ", weight="Bolder"),
                _counts(totals.by_intent, label=_one_label, limit=DIGEST_ITEMS) + "\n",
                _run("By sentiment: ", weight="Bolder"),
                _counts(totals.by_sentiment, label=_one_label, limit=DIGEST_ITEMS),
                *_network_breakdown(totals.by_network),
            )
        )
    chart = None
    if chart_url and (_DATA_IMAGE.fullmatch(chart_url) or _HTTPS_OK.fullmatch(chart_url)):
        chart = {
            "type": "Image",
            "id": "chart",
            "url": chart_url,
            "altText": "Mentions and median first response, by hour",
            "size": "Stretch",
        }
        body.append(chart)
    if digest.scope == "all" and digest.departments:
        lines = [
            _rich(
                None,
                _run(
                    f"• {_one_label(f.name or f.department, DEPARTMENT_NAME_CHARS)}: ",
                    weight="Bolder",
                ),
                f"{f.received} received · {f.replied} of {f.needs_reply} replied"
                f" ({percent(f.response_rate)}) · median"
                f" {format_duration(f.median_first_response_s)}"
                f" · {breaches(f.sla_breaches)} · {f.open} open",
                spacing="Small",
            )
            for f in digest.departments[:DIGEST_DEPARTMENTS]
        ]
        more = len(digest.departments) - len(lines)
        body.append(_section("departments", "By department", lines, more))
    if digest.oldest_open:
        lines = [
            _case_line(c, digest, names, oldest=True) for c in digest.oldest_open[:DIGEST_ITEMS]
        ]
        more = len(digest.oldest_open) - len(lines)
        body.append(_section("oldest_open", "Oldest open cases", lines, more))
    else:
        none = [_label("None: every case is handled.", spacing="Small")]
        body.append(_section("oldest_open", "Oldest open cases", none))
    if digest.topics:
        words = " · ".join(
            f"{_one_label(word, TOPIC_CHARS)} ({n})" for word, n in digest.topics[:DIGEST_TOPICS]
        )
        body.append(_rich("topics", _run("Most frequent topics: ", weight="Bolder"), words))
    if digest.top_tags:
        tags = " · ".join(
            f"{_one_label(tag, TOPIC_CHARS)} ({n})" for tag, n in digest.top_tags[:DIGEST_TOPICS]
        )
        body.append(_rich("top_tags", _run("Top tags: ", weight="Bolder"), tags))
    if digest.suggestions:
        shown = digest.suggestions[:SUGGESTION_ITEMS]
        lines = [_case_line(c, digest, names, oldest=False) for c in shown]
        more = len(digest.suggestions) - len(shown)
        body.append(_section("suggestions", "Product suggestions received", lines, more))
    if digest.audit_head:
        head = _one_label(str(digest.audit_head), 100)
        body.append(
            _rich(
                "audit_head",
                f"🔒 Audit log: {audit_entries(digest.audit_head)}, head ",
                _run(head, fontType="Monospace"),
                " (check later: socialcare audit verify --expect-head N:HASH)",
                subtle=True,
            )
        )
    card = _card(body)
    if chart is not None and card_bytes(card) > MAX_CARD_BYTES:
        # A big data: URI chart would make Teams refuse the whole digest: leave it out.
        index = body.index(chart)
        body[index] = _label("The chart was left out to fit in one message.", "chart")
    return card


__all__ = [
    "CONTENT_TYPE",
    "MAX_CARD_BYTES",
    "OPTIONAL_PARTS",
    "VERB",
    "VERBS",
    "approval_prompt_card",
    "attachment",
    "card_bytes",
    "case_card",
    "digest_card",
    "inert",
    "notice_card",
    "refusal_card",
]
