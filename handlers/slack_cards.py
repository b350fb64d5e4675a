"""Pure Block Kit builders for the Slack surface: cards, modals and thread notes.

Nothing here talks to Slack. Every function returns plain dicts/lists ready for
`chat.postMessage` / `chat.update` / `views.open`, in the style of the Bolt samples'
`listeners/views/*_builder.py`. `validate_blocks()` / `validate_view()` check the
Block Kit limits the builders are meant to respect (the tests run them on every card
shape the builders can produce).

Untrusted text (mention text, author names, thread posts, suggested replies, drafts,
notes) always goes through `escape_mrkdwn()` (or `note_text()` for text the bot writes
itself) and is rendered in `mrkdwn` objects with `verbatim: true`, so Slack neither
auto-links nor auto-parses anything in it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.bulk import untouched
from bot.commands import ApprovalPrompt
from bot.meta_rules import ELSEWHERE_PREFIX, META_NETWORKS, private_channel
from bot.models import Case, CaseState, Intent, Priority, network_name, shows_handle
from bot.reports import format_duration
from bot.views import CaseView

# --------------------------------------------------------------------------- limits

MAX_BLOCKS_MESSAGE = 50
MAX_BLOCKS_MODAL = 100
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 2000
MAX_ACTIONS_ELEMENTS = 25
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ID = 255  # action_id, block_id, callback_id
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_OPTIONS = 100
MAX_OVERFLOW_OPTIONS = 5  # and at least 2
MAX_INPUT_LENGTH = 3000
MAX_LABEL_TEXT = 2000
MAX_PLACEHOLDER_TEXT = 150
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_MODAL_TITLE = 24
MAX_MODAL_BUTTON = 24
MAX_PRIVATE_METADATA = 3000
# Slack rejects a message whose combined block text is around 13k characters
# (`msg_blocks_too_long`); we stay well under that.
MAX_TOTAL_TEXT = 10_000

# Per-part budgets of the card (in escaped characters). They add up to less than
# MAX_TOTAL_TEXT; `_fit_budget` is a safety net on top.
MENTION_CHARS = 2000
MENTION_LINES = 40
SPAM_MENTION_CHARS = 280
SPAM_MENTION_LINES = 6
AUTHOR_NAME_CHARS = 100
HANDLE_CHARS = 60
ROUTE_REASON_CHARS = 300
THREAD_POSTS = 5
THREAD_POST_CHARS = 220
EARLIER_CONTACTS = 5
EARLIER_SNIPPET_CHARS = 80
SUGGESTIONS = 3
SUGGESTION_CHARS = 500
DRAFT_CHARS = 2000
NOTE_CHARS = 500
FALLBACK_SNIPPET_CHARS = 150
NOTE_TEXT_CHARS = 3000
EDIT_REPLY_MAX_LENGTH = 1000
REASON_MAX_LENGTH = 500

ELLIPSIS = "…"
# Inserted next to mrkdwn control characters so they can never open or close
# formatting, and after "@" in "@here"-style words so they can never notify.
ZWJ = "\u200d"

# --------------------------------------------------------------------------- escaping

_USER_ID = re.compile(r"[UW][A-Z0-9]{1,30}")
_USER_TOKEN = re.compile(r"<@([UW][A-Z0-9]{1,30})>")
_MASS_PING = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
_URL_OK = re.compile(r"https?://[^\s<>|\"'`\\]+", re.IGNORECASE)
_MAX_URL = 1000
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")  # Hangul fillers: render as nothing


def _sanitize(text: str | bytes | None) -> str:
    """Make any input a clean, valid Unicode string before escaping.

    - bytes are decoded as UTF-8 with U+FFFD for invalid sequences;
    - lone surrogates (e.g. "\\ud800" from a broken decoder) become U+FFFD and a
      surrogate *pair* stored as two code points is joined into its real character,
      so the result always encodes to UTF-8 / JSON;
    - NFC, so the same text typed two ways renders alike;
    - all format characters (Unicode category Cf) are dropped: zero-width spaces and
      joiners U+200B-U+200F, U+2060, U+FEFF, bidi embeddings/overrides U+202A-U+202E,
      isolates U+2066-U+2069, invisible tag characters U+E0000-U+E007F (text
      smuggling). The cost is cosmetic: ZWJ emoji sequences show as separate emoji;
    - C0/C1 controls other than newline and tab are dropped; CR and the Unicode line/
      paragraph separators become newlines; runs of blank lines are collapsed.
    """
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    elif not isinstance(text, str):
        text = str(text)
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
            continue
        category = unicodedata.category(ch)
        if category in ("Zl", "Zp"):
            out.append("\n")
        elif category in ("Cc", "Cf", "Cs") or ch in _INVISIBLE_LETTERS:
            continue
        else:
            out.append(ch)
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", "".join(out)).strip()


def _is_mark(ch: str) -> bool:
    """Characters that belong to the previous one (never cut between them)."""
    code = ord(ch)
    return (
        unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0100 <= code <= 0xE01EF
    )


def _escape_units(text: str, *, keep_users: bool = False) -> list[str]:
    """Escape sanitized text into indivisible output units.

    Each unit is the escaped form of one character (plus any combining marks after
    it) or, with `keep_users`, one whole `<@U…>` token. Truncation only ever cuts
    between units, so it never splits `&amp;`, a `<@U…>` token, a character and
    its accents, or (having been joined by `_sanitize`) a surrogate pair.

    Neutralising mrkdwn: `&`, `<`, `>` become entities, which kills every control
    sequence Slack parses inside angle brackets (`<!channel>`, `<!here>`, `<@U…>`,
    `<#C…>`, `<!subteam^…>`, `<url|label>`, `<!date^…>`). For the inline markers
    `* _ ~ \\``, we put a zero-width joiner on both sides of each one: Slack only
    opens/closes bold, italic, strike and code when the marker touches whitespace,
    punctuation or the start/end of text, and a ZWJ is none of these, so no pair of
    markers can ever format - yet the text still reads the same. (Backslash escapes
    do not exist in Slack mrkdwn, and homoglyph substitution would change what staff
    copy.) A `>` at the start of a line (even after spaces) also gets a leading ZWJ so
    it cannot open a block quote. "@here"-style words get a ZWJ after the "@" so the
    clients never treat them as mass mentions. Text objects are also sent with
    `verbatim: true`, which turns off Slack's own auto-parsing of names and links.
    """
    text = _MASS_PING.sub("@" + ZWJ, text)
    units: list[str] = []
    line_start = True
    i = 0
    length = len(text)
    while i < length:
        ch = text[i]
        if keep_users and ch == "<":
            match = _USER_TOKEN.match(text, i)
            if match:
                units.append(match.group(0))
                i = match.end()
                line_start = False
                continue
        if units and _is_mark(ch):
            units[-1] += ch
            i += 1
            continue
        if ch == "&":
            unit = "&amp;"
        elif ch == "<":
            unit = "&lt;"
        elif ch == ">":
            unit = ZWJ + "&gt;" if line_start else "&gt;"
        elif ch in "*_~`":
            unit = ZWJ + ch + ZWJ
        else:
            unit = ch
        units.append(unit)
        line_start = ch == "\n" or (line_start and ch in " \t")
        i += 1
    return units


def _fit(units: Sequence[str], limit: int, max_lines: int | None = None) -> str:
    """Join units, cutting with an ellipsis to at most `limit` chars / `max_lines` lines."""
    limit = max(limit, 1)
    total = sum(len(unit) for unit in units)
    lines = 1 + sum(1 for unit in units if unit == "\n")
    if total <= limit and (max_lines is None or lines <= max_lines):
        return "".join(units)
    budget = limit - len(ELLIPSIS)
    kept: list[str] = []
    size = 0
    line = 1
    for unit in units:
        if unit == "\n":
            line += 1
            if max_lines is not None and line > max_lines:
                break
        if size + len(unit) > budget:
            break
        kept.append(unit)
        size += len(unit)
    return "".join(kept).rstrip() + ELLIPSIS


def escape_mrkdwn(
    text: str | bytes | None, *, limit: int = MAX_SECTION_TEXT, max_lines: int | None = None
) -> str:
    """Escape untrusted text for a Slack `mrkdwn` object so it can never ping or format.

    The result is at most `limit` characters (after escaping) and `max_lines` lines,
    ending in "…" when cut. See `_sanitize` and `_escape_units` for what is done.
    """
    return _fit(_escape_units(_sanitize(text)), limit, max_lines)


def note_text(text: str | bytes | None, *, limit: int = NOTE_TEXT_CHARS) -> str:
    """Escape a thread note the bot writes, keeping its own `<@U…>`/`<@W…>` mentions.

    Everything else (reasons typed by managers, error messages, URLs) is escaped
    exactly like `escape_mrkdwn`, so a reason containing `<!channel>` cannot ping.
    """
    return _fit(_escape_units(_sanitize(text), keep_users=True), limit)


def plain(text: str | bytes | None, *, limit: int) -> str:
    """Clean text for a `plain_text` object, cut to `limit`.

    Slack does not parse plain_text, but we still never let a `<!channel>`-shaped or
    "@here" string through verbatim (it would be live if the text were ever reused in
    mrkdwn): angle brackets become the look-alike single guillemets and mass-mention
    words get a zero-width joiner after the "@".
    """
    clean = _MASS_PING.sub("@" + ZWJ, _sanitize(text)).replace("<", "‹").replace(">", "›")
    if len(clean) <= limit:
        return clean
    cut = max(limit - len(ELLIPSIS), 0)
    while 0 < cut < len(clean) and _is_mark(clean[cut]):
        cut -= 1
    return clean[:cut].rstrip() + ELLIPSIS


def _word(value: object) -> str:
    """An enum value (or a stray string standing in for one), escaped, on one line."""
    return escape_mrkdwn(str(value), limit=30, max_lines=1)


def _user(user_id: str | None) -> str:
    """A Slack user mention if `user_id` is a real user id, otherwise escaped text."""
    if not user_id:
        return "someone"
    if _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return escape_mrkdwn(user_id, limit=60)


def _link(url: str | None, label: str) -> str:
    """`<url|label>` for a plain http(s) URL; anything else is shown escaped, unlinked."""
    if not url:
        return ""
    if len(url) <= _MAX_URL and _URL_OK.fullmatch(url):
        return f"<{url.replace('&', '&amp;')}|{label}>"
    return escape_mrkdwn(url, limit=200)


# --------------------------------------------------------------------------- time


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def slack_date(moment: datetime, tz: ZoneInfo | None = None) -> str:
    """`<!date^…>` that each reader sees in their own time zone; fallback in `tz` (UTC)."""
    moment = _aware(moment)
    fallback = moment.astimezone(tz or UTC).strftime("%a %d %b %H:%M %Z")
    fallback = re.sub(r"[<>|&]", "", fallback)
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _day(moment: datetime, tz: ZoneInfo | None) -> str:
    return _aware(moment).astimezone(tz or UTC).strftime("%d %b %Y")


# --------------------------------------------------------------------------- blocks

STATE_LABEL: dict[CaseState, str] = {
    CaseState.NEW: "New",
    CaseState.CLAIMED: "Claimed",
    CaseState.AWAITING_APPROVAL: "Awaiting approval",
    CaseState.APPROVED: "Approved",
    CaseState.PUBLISHED: "Published",
    CaseState.DISMISSED: "Dismissed",
    CaseState.FAILED: "Publishing failed",
}

STATE_EMOJI: dict[CaseState, str] = {
    CaseState.NEW: ":large_yellow_circle:",
    CaseState.CLAIMED: ":large_blue_circle:",
    CaseState.AWAITING_APPROVAL: ":large_purple_circle:",
    CaseState.APPROVED: ":white_check_mark:",
    CaseState.PUBLISHED: ":large_green_circle:",
    CaseState.DISMISSED: ":white_circle:",
    CaseState.FAILED: ":red_circle:",
}

# The buttons of the card's actions block, per state, in order (same as BUTTONS in
# handlers/console.py). `use_reply_N` buttons sit next to each suggested reply.
STATE_ACTIONS: dict[CaseState, tuple[str, ...]] = {
    CaseState.NEW: ("claim", "dismiss", "reassign"),
    CaseState.CLAIMED: ("edit_reply", "submit", "dismiss", "reassign"),
    CaseState.AWAITING_APPROVAL: ("approve", "reject", "edit_reply"),
    CaseState.APPROVED: (),
    CaseState.PUBLISHED: (),
    CaseState.DISMISSED: (),
    CaseState.FAILED: ("retry", "edit_reply", "dismiss"),
}
USE_REPLY_STATES = frozenset({CaseState.NEW, CaseState.CLAIMED, CaseState.FAILED})
USE_REPLY_ACTIONS = tuple(f"use_reply_{n}" for n in range(1, SUGGESTIONS + 1))
ALL_ACTIONS = (
    "claim",
    *USE_REPLY_ACTIONS,
    "edit_reply",
    "submit",
    "approve",
    "reject",
    "dismiss",
    "reassign",
    "retry",
    "reply_private",
    "hide_comment",
    "unhide_comment",
)
# Facebook/Instagram only: a private reply where a reply can be written, and hiding the
# comment in any state (hiding answers nobody and closes nothing).
PRIVATE_REPLY_STATES = frozenset(
    {CaseState.NEW, CaseState.CLAIMED, CaseState.AWAITING_APPROVAL, CaseState.FAILED}
)

BUTTON_TEXT: dict[str, str] = {
    "claim": "Claim",
    "reply_private": "Reply privately",
    "hide_comment": "Hide comment",
    "unhide_comment": "Unhide",
    "edit_reply": "Edit reply",
    "submit": "Submit for approval",
    "approve": "Approve",
    "reject": "Reject",
    "dismiss": "Dismiss",
    "reassign": "Reassign",
    "retry": "Retry",
    **{action: f"Use reply {n}" for n, action in enumerate(USE_REPLY_ACTIONS, start=1)},
}
BUTTON_STYLE: dict[str, str] = {
    "approve": "primary",
    "claim": "primary",
    "retry": "primary",
    "reject": "danger",
    "dismiss": "danger",
}

# Blocks `_fit_budget` may drop, in this order, if a card is ever over MAX_TOTAL_TEXT.
_OPTIONAL_BLOCKS = (
    "thread",
    "earlier",
    "suggestion_3",
    "suggestion_2",
    "routing",
    "saved_replies",
)


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain_text(text: str, *, emoji: bool = True) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": emoji}


def _section(block_id: str, text: str, accessory: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "section",
        "block_id": block_id,
        "text": _mrkdwn(clip(text, MAX_SECTION_TEXT)),
    }
    if accessory is not None:
        block["accessory"] = accessory
    return block


def _context(block_id: str, *texts: str) -> dict[str, Any]:
    elements = [_mrkdwn(clip(t, MAX_CONTEXT_TEXT)) for t in texts if t][:MAX_CONTEXT_ELEMENTS]
    return {"type": "context", "block_id": block_id, "elements": elements}


def clip(text: str, limit: int) -> str:
    """Last-resort cut of already-escaped text (builders normally stay under budget)."""
    if len(text) <= limit:
        return text
    cut = limit - len(ELLIPSIS)
    # never leave half an entity ("&am") or half a <…> token behind
    amp = text.rfind("&", max(cut - 6, 0), cut)
    if amp != -1 and ";" not in text[amp:cut]:
        cut = amp
    lt = text.rfind("<", max(cut - 300, 0), cut)
    if lt != -1 and ">" not in text[lt:cut]:
        cut = lt
    return text[:cut] + ELLIPSIS


def _confirm(title: str, text: str, confirm: str, *, danger: bool = True) -> dict[str, Any]:
    dialog: dict[str, Any] = {
        "title": _plain_text(plain(title, limit=MAX_CONFIRM_TITLE)),
        "text": _plain_text(plain(text, limit=MAX_CONFIRM_TEXT)),
        "confirm": _plain_text(plain(confirm, limit=MAX_CONFIRM_BUTTON)),
        "deny": _plain_text("Cancel"),
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def approve_value(case: Case) -> str:
    """The Approve button's value: the case and the hash of the draft the manager saw
    (its words and whether it is a private reply)."""
    return json.dumps({"case": case.id, "hash": case.draft_hash or ""}, separators=(",", ":"))


def approval_prompt_blocks(prompt: ApprovalPrompt, message: str) -> list[dict[str, Any]]:
    """The answer to `/care approve N`: the exact words, and an Approve button bound to
    their hash (the same action and value as the card's button)."""
    return [
        _section("approval_prompt", note_text(message, limit=MAX_SECTION_TEXT)),
        {
            "type": "actions",
            "block_id": "approval_prompt_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "text": _plain_text(BUTTON_TEXT["approve"]),
                    "style": "primary",
                    "value": json.dumps(
                        {"case": prompt.case_id, "hash": prompt.text_hash}, separators=(",", ":")
                    ),
                }
            ],
        },
    ]


def parse_approve_value(value: str) -> tuple[int, str] | None:
    """(case id, draft hash) from an Approve button value; None if it is malformed."""
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    case_id, digest = data.get("case"), data.get("hash")
    if isinstance(case_id, bool) or not isinstance(case_id, int) or case_id <= 0:
        return None
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        return None
    return case_id, digest


def button(action_id: str, case: Case) -> dict[str, Any]:
    """One card button; `value` is the case id (JSON with the draft hash for Approve)."""
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": _plain_text(BUTTON_TEXT[action_id]),
        "value": str(case.id),
    }
    if action_id == "approve":
        element["value"] = approve_value(case)
    style = BUTTON_STYLE.get(action_id)
    if style:
        element["style"] = style
    if action_id == "dismiss":
        element["confirm"] = _confirm(
            f"Dismiss case #{case.id}?",
            "No reply will be sent. You will be asked for a reason, "
            "which is logged in the card's thread.",
            "Dismiss",
        )
    if action_id == "hide_comment":
        element["confirm"] = _confirm(
            f"Hide this comment on {network_name(case.network)}?",
            "It stays visible to its author and their friends only. The case stays open;"
            " you will be asked for a reason, which is logged on the card and audited.",
            "Hide",
        )
    if action_id == "unhide_comment":
        element["confirm"] = _confirm("Show the comment again?", "Everyone will see it.", "Show")
    return element


def _hashable(text: str) -> bool:
    """Whether `text_hash` can hash it (a lone surrogate cannot be UTF-8 encoded)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def card_actions(case: Case, *, draft_shown: bool = True) -> list[str]:
    """The action_ids of the card's actions block for this case, in display order."""
    actions = list(STATE_ACTIONS[case.state])
    if "approve" in actions and not (
        case.draft_text and draft_shown and _hashable(case.draft_text)
    ):
        actions.remove("approve")  # never approve a text the manager could not read
    if case.intent == Intent.SPAM and "dismiss" in actions:
        actions.remove("dismiss")
        actions.insert(0, "dismiss")
    # An Instagram @mention on someone else's post is no comment of the brand's: Meta
    # takes neither a private reply nor a hide for it (bot.meta_rules.elsewhere_reason).
    if case.network in META_NETWORKS and not case.mention_id.startswith(ELSEWHERE_PREFIX):
        if case.state in PRIVATE_REPLY_STATES and not case.draft_private:
            after = "edit_reply" if "edit_reply" in actions else "claim"
            actions.insert(actions.index(after) + 1 if after in actions else 0, "reply_private")
        if case.hidden_state not in {"hiding", "hidden"}:
            actions.append("hide_comment")
        elif case.hidden_state == "hidden":
            actions.append("unhide_comment")
    return actions


def state_label(case: Case) -> str:
    """The card header's state; a private reply that went out says so."""
    if case.state is CaseState.PUBLISHED and case.draft_private:
        return "Replied privately"
    return STATE_LABEL[case.state]


def hidden_status(case: Case, who: str) -> str | None:
    """The comment's moderation, in words (`who`: the manager, as the surface names them)."""
    network = network_name(case.network)
    if case.hidden_state == "hidden":
        return f"Comment hidden on {network} (by {who}: {case.hidden_reason})"
    if case.hidden_state == "hiding":
        return f"Hiding the comment on {network} (asked by {who}: {case.hidden_reason})…"
    if case.hidden_state == "unhiding":
        return f"Showing the comment on {network} again (asked by {who})…"
    return None


def private_notice(case: Case) -> str:
    return f"sent as a private {private_channel(case.network)} message, not posted publicly"


def _header(view: CaseView) -> dict[str, Any]:
    case = view.case
    text = f"{STATE_EMOJI[case.state]} #{case.id} · {state_label(case)}"
    department = plain(view.department_name, limit=60)
    if department:
        text += f" · {department}"
    return {
        "type": "header",
        "block_id": "header",
        "text": _plain_text(plain(text, limit=MAX_HEADER_TEXT)),
    }


def _author_line(view: CaseView) -> str:
    author = view.author
    case = view.case
    name = escape_mrkdwn(author.name, limit=AUTHOR_NAME_CHARS, max_lines=1)
    handle = escape_mrkdwn(author.handle, limit=HANDLE_CHARS, max_lines=1)
    if not shows_handle(case.network) and name:
        parts = [name]  # a Facebook "handle" is a page-scoped id, not a name
    else:
        parts = [f"{name} @{handle}" if name else f"@{handle}"]
    if author.followers is not None:
        parts.append(f"{max(author.followers, 0):,} followers")
    if author.verified:
        parts.append(":heavy_check_mark: verified")
    network = escape_mrkdwn(network_name(case.network), limit=20, max_lines=1) or "post"
    link = _link(view.url, f"View on {network}")
    if link:
        parts.append(link)
    if case.mention_count > 1:
        parts.append(f"{case.mention_count} messages grouped on this card")
    return " · ".join(parts)


def _reading_line(case: Case) -> str:
    flag = " :rotating_light:" if case.priority == Priority.URGENT else ""
    spam = ":no_entry_sign: likely spam · " if case.intent == Intent.SPAM else ""
    language = escape_mrkdwn(case.language, limit=16, max_lines=1) or "?"
    reply = "needs reply" if case.needs_reply else "no reply needed"
    return (
        f"{spam}{_word(case.intent)} · {_word(case.sentiment)} · "
        f"priority {_word(case.priority)}{flag} · {language} · {reply}"
    )


def _sla_line(case: Case, now: datetime, tz: ZoneInfo | None) -> str:
    if case.sla_due_at is None or not case.needs_reply:
        return ""
    if case.state in (CaseState.PUBLISHED, CaseState.DISMISSED):
        return ""
    due = _aware(case.sla_due_at)
    delta = (due - _aware(now)).total_seconds()
    stamp = slack_date(due, tz)
    if delta >= 0:
        return f":alarm_clock: First response due {stamp} (in {format_duration(delta)})"
    return f":warning: First response *overdue* by {format_duration(delta)} (was due {stamp})"


def _thread_section(view: CaseView, tz: ZoneInfo | None) -> dict[str, Any] | None:
    if not view.thread:
        return None
    shown = view.thread[-THREAD_POSTS:]
    count = len(view.thread)
    lines = [f"*Conversation* ({count} other post{'s' * (count != 1)} in this thread)"]
    hidden = len(view.thread) - len(shown)
    if hidden:
        lines.append(f"_…{hidden} earlier not shown_")
    for post in shown:
        text = escape_mrkdwn(post.text, limit=THREAD_POST_CHARS, max_lines=4).replace("\n", " ")
        link = _link(post.url, "open")
        when = _aware(post.created_at).astimezone(tz or UTC).strftime("%d %b %H:%M")
        lines.append(f"↳ {when} {text}" + (f" ({link})" if link else ""))
    return _section("thread", "\n".join(lines))


def who(view: CaseView) -> str:
    """The author as people know them, escaped: `@handle`, or the name on networks
    whose handles are opaque ids (Facebook)."""
    author = view.author
    if not shows_handle(view.case.network) and author.name:
        return escape_mrkdwn(author.name, limit=AUTHOR_NAME_CHARS, max_lines=1)
    return "@" + escape_mrkdwn(author.handle, limit=HANDLE_CHARS, max_lines=1)


def _earlier_section(view: CaseView, tz: ZoneInfo | None) -> dict[str, Any] | None:
    if not view.earlier:
        return None
    lines = [f"*Earlier contacts by {who(view)}*"]
    for contact in view.earlier[:EARLIER_CONTACTS]:
        snippet = escape_mrkdwn(contact.text, limit=EARLIER_SNIPPET_CHARS, max_lines=1)
        intent = escape_mrkdwn(contact.intent, limit=20, max_lines=1)
        state = escape_mrkdwn(contact.state, limit=20, max_lines=1)
        lines.append(
            f"• #{contact.case_id} · {_day(contact.created_at, tz)} · {intent} · {state}"
            f" — {snippet}"
        )
    more = len(view.earlier) - EARLIER_CONTACTS
    if more > 0:
        lines.append(f"_…and {more} more_")
    return _section("earlier", "\n".join(lines))


def _suggestion_blocks(view: CaseView) -> list[dict[str, Any]]:
    case = view.case
    if case.state not in USE_REPLY_STATES or not view.suggestions:
        return []
    blocks: list[dict[str, Any]] = [{"type": "divider", "block_id": "suggestions_divider"}]
    for number, suggestion in enumerate(view.suggestions[:SUGGESTIONS], start=1):
        text = escape_mrkdwn(suggestion, limit=SUGGESTION_CHARS, max_lines=10)
        blocks.append(
            _section(
                f"suggestion_{number}",
                f":robot_face: *AI-suggested reply {number}* (check before sending)\n{text}",
                accessory=button(f"use_reply_{number}", case),
            )
        )
    return blocks


def _status_blocks(view: CaseView, tz: ZoneInfo | None) -> tuple[list[dict[str, Any]], bool]:
    """Claimant, draft, note, published link, pause; and whether the draft fits."""
    case = view.case
    blocks: list[dict[str, Any]] = []
    draft_shown = True
    if case.claimed_by:
        blocks.append(_context("claimed", f":raising_hand: Claimed by {_user(case.claimed_by)}"))
    if case.draft_text:
        units = _escape_units(_sanitize(case.draft_text))
        draft_shown = sum(len(u) for u in units) <= DRAFT_CHARS
        text = _fit(units, DRAFT_CHARS)
        kind = (
            f"*Private reply* ({private_notice(case)})" if case.draft_private else "*Draft reply*"
        )
        blocks.append(_section("draft", f"{kind} by {_user(case.draft_by)}:\n{text}"))
        if not draft_shown:
            blocks.append(
                _context(
                    "draft_too_long",
                    ":warning: The draft is too long to show in full; "
                    "open *Edit reply* to review or shorten it.",
                )
            )
    if case.note:
        blocks.append(_context("note", f":memo: Note: {note_text(case.note, limit=NOTE_CHARS)}"))
    if case.published_url and case.draft_private:
        where = private_channel(case.network)
        blocks.append(_context("published", f":envelope: Replied privately ({where})"))
    elif case.published_url:
        link = _link(case.published_url, "View published reply")
        blocks.append(_context("published", f":link: Published: {link}"))
    hidden = hidden_status(case, _user(case.hidden_by))
    if hidden:
        blocks.append(_context("hidden", f":no_entry_sign: {note_text(hidden, limit=NOTE_CHARS)}"))
    if case.publish_uncertain_since is not None:
        network = network_name(case.network)
        since = slack_date(case.publish_uncertain_since, tz)
        blocks.append(
            _context(
                "uncertain",
                f":warning: *Outcome unknown:* the reply may already be on {network}"
                f" (no clear answer since {since}). socialcare keeps checking {network} and"
                " will record the reply it finds or post this one once; until then the case"
                " cannot be changed.",
            )
        )
    if view.paused and case.state == CaseState.APPROVED:
        blocks.append(
            _context(
                "paused",
                ":double_vertical_bar: Publishing is paused: this reply goes out on resume.",
            )
        )
    return blocks, draft_shown


def _fallback_text(view: CaseView) -> str:
    case = view.case
    snippet = escape_mrkdwn(view.text, limit=FALLBACK_SNIPPET_CHARS, max_lines=1)
    return (
        f"Case #{case.id} ({STATE_LABEL[case.state].lower()}) · "
        f"{_word(case.intent)} from {who(view)}: {snippet}"
    )


def case_card(view: CaseView, *, now: datetime, tz: ZoneInfo | None = None) -> dict[str, Any]:
    """The card for a case: kwargs for `chat.postMessage` / `chat.update` (add `channel`/`ts`).

    `now` decides "due in"/"overdue by"; `tz` is the zone of plain-text fallbacks
    (Slack shows `<!date^…>` stamps in each reader's own zone).
    """
    from handlers.slack_desk import desk_blocks  # builds on this module

    case = view.case
    spam = case.intent == Intent.SPAM
    blocks: list[dict[str, Any]] = [_header(view), _context("author", _author_line(view))]
    if spam:
        mention = escape_mrkdwn(view.text, limit=SPAM_MENTION_CHARS, max_lines=SPAM_MENTION_LINES)
    else:
        mention = escape_mrkdwn(view.text, limit=MENTION_CHARS, max_lines=MENTION_LINES)
    blocks.append(_section("mention", mention or "_(no text)_"))
    blocks.append(_context("reading", _reading_line(case)))
    grouped = _grouped_line(view)
    if grouped:
        blocks.append(_context("grouped", grouped))
    if not spam:
        reason = note_text(case.route_reason, limit=ROUTE_REASON_CHARS)
        if reason:
            blocks.append(_context("routing", f"Routed: {reason}"))
        sla = _sla_line(case, now, tz)
        if sla:
            blocks.append(_context("sla", sla))
        for optional in (_thread_section(view, tz), _earlier_section(view, tz)):
            if optional is not None:
                blocks.append(optional)
        blocks.extend(_suggestion_blocks(view))
    status, draft_shown = _status_blocks(view, tz)
    blocks.extend(status)
    blocks.extend(desk_blocks(view))
    actions = card_actions(case, draft_shown=draft_shown)
    elements = [button(action, case) for action in actions] + group_buttons(view)
    if elements:
        blocks.append({"type": "actions", "block_id": "actions", "elements": elements})
    return {
        "text": _fallback_text(view),
        "blocks": _fit_budget(blocks),
        "unfurl_links": False,
        "unfurl_media": False,
    }


GROUPED_SHOWN = 10


def group_button_text(count: int) -> str:
    return f"Dismiss all {count} similar" if count > 1 else "Dismiss 1 similar"


def group_buttons(view: CaseView) -> list[dict[str, Any]]:
    """ "Dismiss all N similar" on a grouped card while some of its cases are untouched;
    it opens one modal asking one reason (bot.bulk.dismiss_group)."""
    count = len(untouched(view))
    if not count:
        return []
    return [
        {
            "type": "button",
            "action_id": "dismiss_group",
            "text": _plain_text(group_button_text(count)),
            "value": str(view.case.id),
            "style": "danger",
        }
    ]


def group_dismiss_modal(case_id: int, count: int, upto: int | None = None) -> dict[str, Any]:
    """`views.open` payload: the one confirmation of "Dismiss all N similar", with its reason.

    callback_id `dismiss_group_reason`; the reason at `values["reason"]["reason_text"]`;
    private_metadata `CASE:UPTO` (the newest case counted: later copies are not covered).
    """
    blocks: list[dict[str, Any]] = [
        _section(
            "group_dismiss_context",
            f"Dismiss the {count} untouched case{'s' * (count != 1)} grouped on the card of"
            f" #{case_id}. No reply will be sent to them. Cases someone has claimed or"
            " drafted are left alone.",
        ),
        {
            "type": "input",
            "block_id": "reason",
            "label": _plain_text("Why do these need no reply?"),
            "hint": _plain_text(
                "Logged for each case in the audit trail and in the card's thread."
            ),
            "element": {
                "type": "plain_text_input",
                "action_id": "reason_text",
                "multiline": True,
                "min_length": 1,
                "max_length": REASON_MAX_LENGTH,
            },
        },
    ]
    metadata = f"{case_id}:{upto}" if upto is not None else str(case_id)
    return _modal(
        "dismiss_group_reason", f"Dismiss {count} similar", blocks, metadata, "Dismiss all"
    )


def summary_modal(title: str, text: str) -> dict[str, Any]:
    """A modal that only tells (the answer to a bulk action, shown where it was asked)."""
    blocks = [_section("summary", note_text(text, limit=MAX_SECTION_TEXT))]
    return _modal("summary", title, blocks, "", None)


def queue_answer_blocks(message: str) -> list[dict[str, Any]]:
    """The `/care queue` answer with a "Claim next" button (bot.claimnext)."""
    return [
        _section("queue", note_text(message, limit=MAX_SECTION_TEXT)),
        {
            "type": "actions",
            "block_id": "queue_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "claim_next",
                    "text": _plain_text("Claim next"),
                    "style": "primary",
                    "value": "next",
                }
            ],
        },
    ]


def _grouped_line(view: CaseView) -> str:
    """Near-duplicates grouped on this card: how many, and the first few by number."""
    if not view.grouped:
        return ""
    # Copies group per network; where handles are page-scoped ids (Facebook), the number says it.
    handles = shows_handle(view.case.network)
    shown = ", ".join(
        f"#{g.case_id}"
        + (f" @{escape_mrkdwn(g.handle, limit=40, max_lines=1)}" if handles else "")
        + f" ({g.state})"
        for g in view.grouped[:GROUPED_SHOWN]
    )
    more = len(view.grouped) - GROUPED_SHOWN
    tail = f" and {more} more" if more > 0 else ""
    count = len(view.grouped)
    noun = "similar mention" if count == 1 else "similar mentions"
    return f":link: {count} {noun} grouped here: {shown}{tail}. Act on each with `/care … N`."


def _fit_budget(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Safety net: drop optional blocks until the card is within the message limits."""
    for block_id in _OPTIONAL_BLOCKS:
        if total_text(blocks) <= MAX_TOTAL_TEXT and len(blocks) <= MAX_BLOCKS_MESSAGE:
            break
        blocks = [b for b in blocks if b.get("block_id") != block_id]
    if len(blocks) > MAX_BLOCKS_MESSAGE:
        blocks = blocks[: MAX_BLOCKS_MESSAGE - 1] + blocks[-1:]
    return blocks


# --------------------------------------------------------------------------- modals


def _modal(
    callback_id: str,
    title: str,
    blocks: list[dict[str, Any]],
    private_metadata: str,
    submit: str | None,
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain_text(plain(title, limit=MAX_MODAL_TITLE)),
        "close": _plain_text("Cancel"),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }
    if submit:
        view["submit"] = _plain_text(plain(submit, limit=MAX_MODAL_BUTTON))
    return view


def edit_reply_modal(
    case_id: int, draft: str, author_handle: str, *, private_via: str | None = None
) -> dict[str, Any]:
    """`views.open` payload to write or edit the reply of a case.

    On submit read `view["state"]["values"]["reply"]["reply_text"]["value"]` and the
    case id from `view["private_metadata"]`. A draft longer than the input allows
    (1000) is cut to fit: Slack rejects an initial_value over max_length.
    `private_via` ("Messenger", "Instagram Direct"): a private reply, callback_id
    `reply_private`.
    """
    handle = escape_mrkdwn(author_handle.lstrip("@"), limit=HANDLE_CHARS, max_lines=1)
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "reply_text",
        "multiline": True,
        "max_length": EDIT_REPLY_MAX_LENGTH,
        "placeholder": _plain_text("Write the public reply…", emoji=False),
    }
    # An input value is not parsed as mrkdwn: only make it valid Unicode, never escape it.
    initial = draft.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if initial:
        element["initial_value"] = initial[:EDIT_REPLY_MAX_LENGTH]
    context = f"Public reply to @{handle} for case #{case_id}."
    hint = "Posted publicly as the brand once a manager approves it. "
    if private_via:
        element["placeholder"] = _plain_text("Write the private message…", emoji=False)
        context = (
            f"*Private reply* to @{handle} for case #{case_id}: sent as a {private_via}"
            " message, *not posted publicly*."
        )
        hint = (
            f"Sent privately ({private_via}) once a manager approves it; one private reply"
            " per comment, within 7 days of it. "
        )
    blocks: list[dict[str, Any]] = [
        _context("edit_context", context),
        {
            "type": "input",
            "block_id": "reply",
            "label": _plain_text("Private message" if private_via else "Reply"),
            "hint": _plain_text(hint + "Saving a new text cancels any earlier approval."),
            "element": element,
        },
    ]
    if private_via:
        return _modal("reply_private", "Reply privately", blocks, str(case_id), "Save draft")
    return _modal("edit_reply", "Edit reply", blocks, str(case_id), "Save draft")


def reason_modal(case_id: int, action: str) -> dict[str, Any]:
    """`views.open` payload asking why a draft is rejected or a case dismissed.

    `action` is "reject" or "dismiss"; callback_id is f"{action}_reason"; read the
    text from `values["reason"]["reason_text"]["value"]`.
    """
    if action not in ("reject", "dismiss", "hide"):
        raise ValueError(f"reason_modal: action must be reject, dismiss or hide, not {action!r}")
    if action == "hide":
        title, submit = f"Hide comment #{case_id}", "Hide"
        label = "Why hide this comment?"
        hint = "E.g. spam, abuse, personal data. Shown on the card and audited."
    elif action == "reject":
        title, submit = f"Reject draft #{case_id}", "Reject"
        label = "Why is this draft rejected?"
        hint = "The agent sees this note on the card and in its thread."
    else:
        title, submit = f"Dismiss case #{case_id}", "Dismiss"
        label = "Why does this case need no reply?"
        hint = "Logged in the card's thread and the audit trail."
    if len(title) > MAX_MODAL_TITLE:
        title = {"reject": "Reject draft", "dismiss": "Dismiss case"}.get(action, "Hide comment")
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": "reason",
            "label": _plain_text(label),
            "hint": _plain_text(hint),
            "element": {
                "type": "plain_text_input",
                "action_id": "reason_text",
                "multiline": True,
                "min_length": 1,
                "max_length": REASON_MAX_LENGTH,
            },
        }
    ]
    return _modal(f"{action}_reason", title, blocks, str(case_id), submit)


def reassign_modal(
    case_id: int, departments: Iterable[tuple[str, str]], current: str
) -> dict[str, Any]:
    """`views.open` payload to move a case to another department.

    `departments` are (id, name) pairs; the current one is left out. Read the choice
    from `values["department"]["department_select"]["selected_option"]["value"]`.
    With no other department the modal only says so (no submit button).
    """
    options: list[dict[str, Any]] = []
    seen: set[str] = set()
    for dept_id, name in departments:
        if dept_id == current or dept_id in seen or not dept_id:
            continue
        if len(dept_id) > MAX_OPTION_VALUE:
            continue  # cannot be carried in an option value without changing it
        seen.add(dept_id)
        label = plain(name or dept_id, limit=MAX_OPTION_TEXT) or dept_id[:MAX_OPTION_TEXT]
        options.append({"text": _plain_text(label), "value": dept_id})
        if len(options) == MAX_OPTIONS:
            break
    title = f"Reassign case #{case_id}"
    if len(title) > MAX_MODAL_TITLE:
        title = "Reassign case"
    if not options:
        blocks = [_section("no_departments", "There is no other department to reassign to.")]
        return _modal("reassign", title, blocks, str(case_id), None)
    blocks = [
        {
            "type": "input",
            "block_id": "department",
            "label": _plain_text("Move to department"),
            "hint": _plain_text(
                "The claim is released; the new department's channel gets the card."
            ),
            "element": {
                "type": "static_select",
                "action_id": "department_select",
                "placeholder": _plain_text("Choose a department"),
                "options": options,
            },
        }
    ]
    return _modal("reassign", title, blocks, str(case_id), "Reassign")


# --------------------------------------------------------------------------- validation


def _texts(node: object) -> Iterable[str]:
    """Every text-object string inside a block tree."""
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            yield node["text"]
        for key, value in node.items():
            if key != "text" or not isinstance(value, str):
                yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def total_text(blocks: Sequence[dict[str, Any]]) -> int:
    """Combined length of all text objects in `blocks` (what `msg_blocks_too_long` counts)."""
    return sum(len(text) for text in _texts(list(blocks)))


def _check_text(
    problems: list[str], where: str, obj: object, limit: int, *, plain_only: bool = False
) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        problems.append(f"{where}: not a text object")
        return
    if plain_only and obj["type"] != "plain_text":
        problems.append(f"{where}: must be plain_text")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}: empty text")
    elif len(text) > limit:
        problems.append(f"{where}: text is {len(text)} chars (max {limit})")


def _check_id(problems: list[str], where: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        problems.append(f"{where}: missing")
    elif len(value) > MAX_ID:
        problems.append(f"{where}: {len(value)} chars (max {MAX_ID})")


def _check_element(
    problems: list[str], where: str, element: dict[str, Any], action_ids: set[str]
) -> None:
    kind = element.get("type")
    action_id = element.get("action_id")
    _check_id(problems, f"{where}.action_id", action_id)
    if isinstance(action_id, str):
        if action_id in action_ids:
            problems.append(f"{where}: duplicate action_id {action_id!r}")
        action_ids.add(action_id)
    if kind == "button":
        _check_text(
            problems, f"{where}.text", element.get("text"), MAX_BUTTON_TEXT, plain_only=True
        )
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE):
            problems.append(f"{where}.value: not a string of at most {MAX_BUTTON_VALUE} chars")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"{where}.style: {element.get('style')!r}")
        confirm = element.get("confirm")
        if confirm is not None:
            _check_text(problems, f"{where}.confirm.title", confirm.get("title"), MAX_CONFIRM_TITLE)
            _check_text(problems, f"{where}.confirm.text", confirm.get("text"), MAX_CONFIRM_TEXT)
            for key in ("confirm", "deny"):
                _check_text(
                    problems, f"{where}.confirm.{key}", confirm.get(key), MAX_CONFIRM_BUTTON
                )
    elif kind == "plain_text_input":
        max_length = element.get("max_length", MAX_INPUT_LENGTH)
        if not isinstance(max_length, int) or not 1 <= max_length <= MAX_INPUT_LENGTH:
            problems.append(f"{where}.max_length: {max_length!r} (max {MAX_INPUT_LENGTH})")
            max_length = MAX_INPUT_LENGTH
        initial = element.get("initial_value")
        if initial is not None and (not isinstance(initial, str) or len(initial) > max_length):
            problems.append(f"{where}.initial_value: longer than max_length {max_length}")
        if "placeholder" in element:
            _check_text(
                problems, f"{where}.placeholder", element["placeholder"], MAX_PLACEHOLDER_TEXT
            )
    elif kind == "static_select":
        options = element.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= MAX_OPTIONS:
            problems.append(f"{where}.options: need 1..{MAX_OPTIONS}")
            options = []
        values: set[str] = set()
        for n, option in enumerate(options):
            _check_text(problems, f"{where}.options[{n}].text", option.get("text"), MAX_OPTION_TEXT)
            value = option.get("value")
            if not isinstance(value, str) or not value or len(value) > MAX_OPTION_VALUE:
                problems.append(f"{where}.options[{n}].value: 1..{MAX_OPTION_VALUE} chars")
            elif value in values:
                problems.append(f"{where}.options[{n}].value: duplicate {value!r}")
            else:
                values.add(value)
        if "placeholder" in element:
            _check_text(
                problems, f"{where}.placeholder", element["placeholder"], MAX_PLACEHOLDER_TEXT
            )
    elif kind == "overflow":
        options = element.get("options")
        if not isinstance(options, list) or not 2 <= len(options) <= MAX_OVERFLOW_OPTIONS:
            problems.append(f"{where}.options: need 2..{MAX_OVERFLOW_OPTIONS}")
            options = []
        for n, option in enumerate(options):
            _check_text(problems, f"{where}.options[{n}].text", option.get("text"), MAX_OPTION_TEXT)
            value = option.get("value")
            if not isinstance(value, str) or not value or len(value) > MAX_OPTION_VALUE:
                problems.append(f"{where}.options[{n}].value: 1..{MAX_OPTION_VALUE} chars")
    else:
        problems.append(f"{where}: unsupported element type {kind!r}")


def validate_blocks(
    blocks: Sequence[dict[str, Any]], *, max_blocks: int = MAX_BLOCKS_MESSAGE
) -> list[str]:
    """The Block Kit limits `blocks` break, one line each; [] when they are all met."""
    problems: list[str] = []
    if not blocks:
        problems.append("no blocks")
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks (max {max_blocks})")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for index, block in enumerate(blocks):
        kind = block.get("type")
        where = f"blocks[{index}]({kind}, {block.get('block_id')!r})"
        block_id = block.get("block_id")
        _check_id(problems, f"{where}.block_id", block_id)
        if isinstance(block_id, str):
            if block_id in block_ids:
                problems.append(f"{where}: duplicate block_id")
            block_ids.add(block_id)
        if kind == "header":
            _check_text(
                problems, f"{where}.text", block.get("text"), MAX_HEADER_TEXT, plain_only=True
            )
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: needs text or fields")
            if "text" in block:
                _check_text(problems, f"{where}.text", block["text"], MAX_SECTION_TEXT)
            fields = block.get("fields", [])
            if len(fields) > MAX_SECTION_FIELDS:
                problems.append(f"{where}: {len(fields)} fields (max {MAX_SECTION_FIELDS})")
            for n, field in enumerate(fields):
                _check_text(problems, f"{where}.fields[{n}]", field, MAX_FIELD_TEXT)
            if "accessory" in block:
                _check_element(problems, f"{where}.accessory", block["accessory"], action_ids)
        elif kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}: {len(elements)} elements (1..{MAX_CONTEXT_ELEMENTS})")
            for n, element in enumerate(elements):
                if element.get("type") != "image":
                    _check_text(problems, f"{where}.elements[{n}]", element, MAX_CONTEXT_TEXT)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
                problems.append(f"{where}: {len(elements)} elements (1..{MAX_ACTIONS_ELEMENTS})")
            for n, element in enumerate(elements):
                _check_element(problems, f"{where}.elements[{n}]", element, action_ids)
        elif kind == "input":
            _check_text(
                problems, f"{where}.label", block.get("label"), MAX_LABEL_TEXT, plain_only=True
            )
            if "hint" in block:
                _check_text(
                    problems, f"{where}.hint", block["hint"], MAX_LABEL_TEXT, plain_only=True
                )
            element = block.get("element")
            if not isinstance(element, dict):
                problems.append(f"{where}: missing element")
            else:
                _check_element(problems, f"{where}.element", element, action_ids)
        elif kind != "divider":
            problems.append(f"{where}: unsupported block type")
    total = total_text(blocks)
    if total > MAX_TOTAL_TEXT:
        problems.append(f"combined block text is {total} chars (max {MAX_TOTAL_TEXT})")
    return problems


def validate_view(view: dict[str, Any]) -> list[str]:
    """`validate_blocks` for a modal, plus the modal's own limits."""
    problems: list[str] = []
    if view.get("type") != "modal":
        problems.append("type is not 'modal'")
    _check_text(problems, "title", view.get("title"), MAX_MODAL_TITLE, plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            _check_text(problems, key, view[key], MAX_MODAL_BUTTON, plain_only=True)
    if (
        any(block.get("type") == "input" for block in view.get("blocks", []))
        and "submit" not in view
    ):
        problems.append("a modal with inputs needs a submit button")
    _check_id(problems, "callback_id", view.get("callback_id"))
    metadata = view.get("private_metadata", "")
    if not isinstance(metadata, str) or len(metadata) > MAX_PRIVATE_METADATA:
        problems.append(f"private_metadata: not a string of at most {MAX_PRIVATE_METADATA} chars")
    problems.extend(validate_blocks(view.get("blocks", []), max_blocks=MAX_BLOCKS_MODAL))
    return problems
