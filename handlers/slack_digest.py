"""Renderings of a daily digest (`bot.digest.Digest`): a Slack message and plain text.

Pure functions, nothing talks to Slack. `digest_message()` returns the payload for
`chat.postMessage` (the chart from `integrations.charts.digest_chart` is uploaded
separately by the caller); `digest_text()` is the same content for the console and logs.

Everything that comes from the outside (case texts, topics, intents, department names,
URLs) is escaped with `escape_mrkdwn()` for Slack, or cleaned with `plain()` for the
terminal, so a post saying "<!channel> *x*" neither pings nor formats anywhere.
Every section has its own character budget; together they stay under the Block Kit
limits, and `validate_blocks()` is a safety net that drops optional sections if not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.audit import Head
from bot.digest import CaseLink, DepartmentFigures, Digest
from bot.reports import format_duration
from handlers.slack_cards import (
    MAX_FIELD_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    clip,
    escape_mrkdwn,
    plain,
    validate_blocks,
)

# Budgets, in escaped characters. Their sum (plus the fixed parts, ~1,500 chars)
# stays under MAX_TOTAL_TEXT (10,000).
BREAKDOWN_CHARS = 1000
BREAKDOWN_ITEMS = 10
LABEL_CHARS = 40
DEPARTMENTS_CHARS = 1800
DEPARTMENT_NAME_CHARS = 60
OLDEST_CHARS = 2200
SNIPPET_CHARS = 160
TOPICS_CHARS = 600
TOPIC_CHARS = 40
SUGGESTIONS_CHARS = 2200
SUGGESTION_ITEMS = 10
LINK_URL_CHARS = 500  # longer URLs are not linked (they would eat the budget)
FALLBACK_CHARS = 300
TEXT_SNIPPET_CHARS = 160

_URL_OK = re.compile(r"https?://[^\s<>|\"'`\\]+", re.IGNORECASE)
# Sections `_fit_total` may drop, in this order, if the message is ever over a limit.
_OPTIONAL_BLOCKS = ("suggestions", "top_tags", "topics", "departments", "breakdown", "oldest_open")


# --------------------------------------------------------------------------- values


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return UTC


def _moment(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _local(value: str, tz: tzinfo) -> str:
    moment = _moment(value)
    if moment is None:
        return "?"
    return moment.astimezone(tz).strftime("%a %d %b %Y %H:%M")


def period(digest: Digest) -> str:
    """The digest's period in its time zone, e.g. "Mon 02 Nov 2026 09:00 – … (Europe/London)"."""
    tz = _zone(digest.timezone)
    zone = digest.timezone if isinstance(tz, ZoneInfo) else "UTC"
    return f"{_local(digest.since, tz)} – {_local(digest.until, tz)} ({zone})"


def percent(rate: float | None) -> str:
    """A response rate as a whole percentage ("67%"), "n/a" when nothing needed a reply."""
    return "n/a" if rate is None else f"{round(rate * 100)}%"


def age(mention_at: str, until: str) -> str:
    """How long before the end of the period a mention arrived ("3 h 05 min", "2 d 4 h")."""
    start, end = _moment(mention_at), _moment(until)
    if start is None or end is None:
        return "age unknown"
    return format_duration(max(0.0, (end - start).total_seconds()))


def breaches(n: int) -> str:
    return f"{n} SLA breach" if n == 1 else f"{n} SLA breaches"


def audit_entries(head: Head) -> str:
    """The audit log's size as a digest says it ("1 entry", "1,234 entries")."""
    return "1 entry" if head.entries == 1 else f"{head.entries:,} entries"


def _ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _linkable(url: str | None) -> str | None:
    if url and len(url) <= LINK_URL_CHARS and _URL_OK.fullmatch(url):
        return url
    return None


def _department_names(digest: Digest) -> dict[str, str]:
    names = {d.department: d.name for d in digest.departments}
    names.setdefault(digest.totals.department, digest.totals.name)
    return names


# --------------------------------------------------------------------------- mrkdwn


def _m(text: str) -> str:
    """Escape untrusted text for one line of mrkdwn."""
    return escape_mrkdwn(_one_line(text), limit=MAX_SECTION_TEXT, max_lines=1)


def _label(text: str, limit: int = LABEL_CHARS) -> str:
    return escape_mrkdwn(_one_line(text), limit=limit, max_lines=1)


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(block_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "block_id": block_id,
        "text": _mrkdwn(clip(text, MAX_SECTION_TEXT)),
    }


def _context(block_id: str, text: str) -> dict[str, Any]:
    return {"type": "context", "block_id": block_id, "elements": [_mrkdwn(clip(text, 2000))]}


def _lines(
    heading: str, lines: Sequence[str], budget: int, *, more: str = "more", hidden: int = 0
) -> str:
    """`heading` then as many `lines` as fit in `budget` chars, then "…and N more".

    `hidden` counts items that were left out before (they add to N).
    """
    text = heading
    shown = 0
    for line in lines:
        left = len(lines) - shown - 1 + hidden
        reserve = 50 if left else 0
        if len(text) + 1 + len(line) + reserve > budget:
            break
        text += "\n" + line
        shown += 1
    rest = len(lines) - shown + hidden
    if rest > 0:
        text += f"\n_…and {rest} {more}_"
    return text


def _counts(
    counts: dict[str, int],
    *,
    label: Callable[[str], str] = _label,
    sep: str = " · ",
    limit: int = BREAKDOWN_ITEMS,
) -> str:
    """Highest counts first, each with its cleaned label; the rest summed up as "+N more"."""
    ranked = _ranked(counts)
    if not ranked:
        return "none"
    parts = [f"{label(name or 'unknown')} {n}" for name, n in ranked[:limit]]
    if len(ranked) > limit:
        parts.append(f"+{len(ranked) - limit} more")
    return sep.join(parts)


def figure_pairs(f: DepartmentFigures, *, open_label: str = "Open") -> list[tuple[str, str]]:
    """A digest's figures as (label, value) pairs: numbers and durations only, so every
    surface may render them as it likes (Slack fields, Teams facts)."""
    replied = f"{f.replied} of {f.needs_reply}" if f.needs_reply else str(f.replied)
    return [
        ("Received", str(f.received)),
        ("Needs reply", str(f.needs_reply)),
        ("Replied", replied),
        ("Response rate", percent(f.response_rate)),
        ("Dismissed", str(f.dismissed)),
        (open_label, str(f.open)),
        (
            "First response (median / p90)",
            f"{format_duration(f.median_first_response_s)}"
            f" / {format_duration(f.p90_first_response_s)}",
        ),
        ("Median in business time", format_duration(f.median_first_response_business_s)),
        ("SLA breaches", str(f.sla_breaches)),
    ]


def _figure_fields(f: DepartmentFigures) -> list[dict[str, Any]]:
    return [
        _mrkdwn(clip(f"*{label}*\n{value}", MAX_FIELD_TEXT)) for label, value in figure_pairs(f)
    ]


def _department_line(f: DepartmentFigures) -> str:
    name = _label(f.name or f.department, DEPARTMENT_NAME_CHARS)
    return (
        f"• *{name}*: {f.received} received · {f.replied} of {f.needs_reply} replied"
        f" ({percent(f.response_rate)}) · median {format_duration(f.median_first_response_s)}"
        f" · {breaches(f.sla_breaches)} · {f.open} open"
    )


def _case_line(case: CaseLink, digest: Digest, names: dict[str, str], *, oldest: bool) -> str:
    parts = [f"*#{case.case_id}*"]
    if oldest:
        parts.append(f"{age(case.mention_at, digest.until)} old")
    parts.append(_label(case.intent or "unknown", 30))
    if digest.scope == "all":
        parts.append(_label(names.get(case.department, case.department), DEPARTMENT_NAME_CHARS))
    snippet = escape_mrkdwn(_one_line(case.text), limit=SNIPPET_CHARS, max_lines=1)
    line = "• " + " · ".join(parts)
    if snippet:
        line += f" — “{snippet}”"
    url = _linkable(case.url)
    if url:
        line += f" <{url.replace('&', '&amp;')}|view post>"
    return line


# --------------------------------------------------------------------------- message


def digest_blocks(digest: Digest) -> list[dict[str, Any]]:
    """The Block Kit blocks of a digest message (always valid for `validate_blocks`)."""
    totals = digest.totals
    names = _department_names(digest)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "block_id": "header",
            "text": {
                "type": "plain_text",
                "text": plain(digest.title or "Daily digest", limit=MAX_HEADER_TEXT)
                or "Daily digest",
                "emoji": False,
            },
        },
        _context("period", f":calendar: {_m(period(digest))} · {_label(digest.brand, 80)}"),
        {"type": "section", "block_id": "figures", "fields": _figure_fields(totals)},
    ]
    if totals.received == 0:
        blocks.append(_section("quiet", "No mentions arrived in this period."))
    else:
        blocks.append(
            _section(
                "breakdown",
                clip(
                    f"*By intent:* {_counts(totals.by_intent)}\n"
                    f"*By sentiment:* {_counts(totals.by_sentiment)}"
                    + (
                        f"\n*By network:* {_counts(totals.by_network)}"
                        if len(totals.by_network) > 1
                        else ""
                    ),
                    BREAKDOWN_CHARS,
                ),
            )
        )
    if digest.scope == "all" and digest.departments:
        lines = [_department_line(f) for f in digest.departments]
        blocks.append(
            _section(
                "departments",
                _lines("*By department*", lines, DEPARTMENTS_CHARS, more="more departments"),
            )
        )
    blocks.append({"type": "divider", "block_id": "divider_cases"})
    if digest.oldest_open:
        lines = [_case_line(c, digest, names, oldest=True) for c in digest.oldest_open]
        blocks.append(_section("oldest_open", _lines("*Oldest open cases*", lines, OLDEST_CHARS)))
    else:
        blocks.append(_section("oldest_open", "*Oldest open cases*\nNone: every case is handled."))
    if digest.topics:
        words = [f"{_label(word, TOPIC_CHARS)} ({n})" for word, n in digest.topics]
        blocks.append(
            _section("topics", clip("*Most frequent topics:* " + " · ".join(words), TOPICS_CHARS))
        )
    if digest.top_tags:
        tags = [f"{_label(tag, TOPIC_CHARS)} ({n})" for tag, n in digest.top_tags]
        blocks.append(_section("top_tags", clip("*Top tags:* " + " · ".join(tags), TOPICS_CHARS)))
    if digest.suggestions:
        lines = [
            _case_line(c, digest, names, oldest=False)
            for c in digest.suggestions[:SUGGESTION_ITEMS]
        ]
        text = _lines(
            "*Product suggestions received*",
            lines,
            SUGGESTIONS_CHARS,
            hidden=len(digest.suggestions) - len(lines),
        )
        blocks.append(_section("suggestions", text))
    if digest.audit_head:
        # The full N:HASH in a code span, so it copies cleanly into `--expect-head`.
        head = escape_mrkdwn(str(digest.audit_head), limit=100, max_lines=1)
        blocks.append(
            _context(
                "audit_head",
                f":lock: Audit log: {audit_entries(digest.audit_head)}, head `{head}`"
                " (check later: `socialcare audit verify --expect-head N:HASH`)",
            )
        )
    return _fit_total(blocks)


def _fit_total(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop optional sections until the message meets every Block Kit limit."""
    if not validate_blocks(blocks):
        return blocks
    note = _context("left_out", "Some sections were left out to fit in one message.")
    for block_id in _OPTIONAL_BLOCKS:
        blocks = [b for b in blocks if b.get("block_id") != block_id]
        if not validate_blocks([*blocks, note]):
            break
    return [*blocks, note]


def fallback_text(digest: Digest) -> str:
    """The notification / fallback `text` of the message (mrkdwn, escaped)."""
    t = digest.totals
    summary = (
        f"{t.received} received, {t.replied} of {t.needs_reply} replied"
        f" ({percent(t.response_rate)}), median first response"
        f" {format_duration(t.median_first_response_s)}, {breaches(t.sla_breaches)}"
    )
    title = escape_mrkdwn(_one_line(digest.title or "Daily digest"), limit=FALLBACK_CHARS)
    return f"{title}: {summary}"


def digest_message(digest: Digest) -> dict[str, Any]:
    """`chat.postMessage` arguments for a digest: {"text": fallback, "blocks": [...]}."""
    return {"text": fallback_text(digest), "blocks": digest_blocks(digest)}


# --------------------------------------------------------------------------- plain text


def _plain_label(name: str) -> str:
    return _p(name, LABEL_CHARS)


def _p(text: str | None, limit: int) -> str:
    """Untrusted text cleaned for a terminal: one line, no controls, no live markup."""
    return plain(_one_line(text), limit=limit)


def _plain_case(case: CaseLink, digest: Digest, names: dict[str, str], *, oldest: bool) -> str:
    parts = [f"#{case.case_id}"]
    if oldest:
        parts.append(f"{age(case.mention_at, digest.until)} old")
    parts.append(_p(case.intent or "unknown", 30))
    if digest.scope == "all":
        parts.append(_p(names.get(case.department, case.department), DEPARTMENT_NAME_CHARS))
    line = "  - " + " · ".join(parts)
    snippet = _p(case.text, TEXT_SNIPPET_CHARS)
    if snippet:
        line += f' "{snippet}"'
    url = _linkable(case.url)
    if url:
        line += f" {url}"
    return line


def digest_text(digest: Digest) -> str:
    """The digest as plain multi-line text for the console and logs (no markup)."""
    t = digest.totals
    names = _department_names(digest)
    title = _p(digest.title or "Daily digest", MAX_HEADER_TEXT) or "Daily digest"
    replied = f"{t.replied} of {t.needs_reply}" if t.needs_reply else str(t.replied)
    rows: list[tuple[str, str]] = [
        ("Received", str(t.received)),
        ("Needs reply", str(t.needs_reply)),
        ("Replied", replied),
        ("Response rate", percent(t.response_rate)),
        ("Dismissed", str(t.dismissed)),
        ("Open", str(t.open)),
        ("First response, median", format_duration(t.median_first_response_s)),
        ("First response, p90", format_duration(t.p90_first_response_s)),
        ("Median in business time", format_duration(t.median_first_response_business_s)),
        ("SLA breaches", str(t.sla_breaches)),
    ]
    width = max(len(label) for label, _ in rows)
    out = [title, "=" * len(title), _p(period(digest), 200), ""]
    out += [f"{label:<{width}}  {value}" for label, value in rows]
    out.append("")
    out.append(f"By intent: {_counts(t.by_intent, label=_plain_label, sep=', ')}")
    out.append(f"By sentiment: {_counts(t.by_sentiment, label=_plain_label, sep=', ')}")
    if len(t.by_network) > 1:
        out.append(f"By network: {_counts(t.by_network, label=_plain_label, sep=', ')}")
    if digest.scope == "all" and digest.departments:
        out += ["", "By department:"]
        for f in digest.departments:
            out.append(
                f"  - {_p(f.name or f.department, DEPARTMENT_NAME_CHARS)}: {f.received} received,"
                f" {f.replied} of {f.needs_reply} replied ({percent(f.response_rate)}),"
                f" median {format_duration(f.median_first_response_s)},"
                f" {breaches(f.sla_breaches)}, {f.open} open"
            )
    out += ["", "Oldest open cases:"]
    if digest.oldest_open:
        out += [_plain_case(c, digest, names, oldest=True) for c in digest.oldest_open]
    else:
        out.append("  none")
    if digest.topics:
        words = ", ".join(f"{_p(word, TOPIC_CHARS)} ({n})" for word, n in digest.topics)
        out += ["", f"Most frequent topics: {words}"]
    if digest.top_tags:
        tags = ", ".join(f"{_p(tag, TOPIC_CHARS)} ({n})" for tag, n in digest.top_tags)
        out += ["", f"Top tags: {tags}"]
    if digest.suggestions:
        out += ["", "Product suggestions received:"]
        out += [_plain_case(c, digest, names, oldest=False) for c in digest.suggestions]
    if digest.audit_head:
        out += [
            "",
            f"Audit log: {audit_entries(digest.audit_head)},"
            f" head {_p(str(digest.audit_head), 100)}",
            "  (check later: socialcare audit verify --expect-head N:HASH)",
        ]
    return "\n".join(out) + "\n"


__all__ = [
    "age",
    "audit_entries",
    "digest_blocks",
    "digest_message",
    "digest_text",
    "fallback_text",
    "percent",
    "period",
]
