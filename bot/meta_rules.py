"""Meta's rules for private replies and hidden comments, network-neutral in form.

A private reply answers a public comment with a private message (Facebook Messenger,
Instagram Direct). Meta allows one per comment, within 7 days of the comment; the bot
checks both when the draft is written and again just before it is sent, so a reply
approved on day 6 but publishable only on day 8 fails with the reason instead.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlite_utils import Database

from bot.models import network_name

# The outbox kind that hides or shows a comment again (bot.moderation works it off).
MODERATE = "moderate"
# The networks whose comments can be answered privately, and hidden by the page.
META_NETWORKS = frozenset({"facebook", "instagram"})
PRIVATE_REPLY_WINDOW = timedelta(days=7)
ELSEWHERE_PREFIX = "mention:"
PRIVATE_CHANNEL = {"facebook": "Messenger", "instagram": "Instagram Direct"}
# A private reply is a message, with the message limits (Messenger: 2,000 characters;
# Instagram Direct: 1,000 bytes of UTF-8), not the public comment limits.
PRIVATE_REPLY_LIMITS = {"facebook": (2000, "characters"), "instagram": (1000, "bytes")}


def private_channel(network: str) -> str:
    """Where a private reply arrives: "Messenger" for Facebook, "Instagram Direct"."""
    return PRIVATE_CHANNEL.get(network, "a private message")


def not_meta_reason(network: str, what: str) -> str | None:
    """Why `what` cannot be done on `network` (None when it can)."""
    if network in META_NETWORKS:
        return None
    return (
        f"{what} is only possible for Facebook and Instagram comments;"
        f" this case came from {network_name(network)}."
    )


def private_reply_length_problem(network: str, text: str) -> str | None:
    """Why `text` is too long for a private reply on `network` (None when it fits)."""
    limit, unit = PRIVATE_REPLY_LIMITS.get(network, (0, ""))
    length = len(text.encode()) if unit == "bytes" else len(text)
    if not limit or length <= limit:
        return None
    return (
        f"it is {length} {unit}, {length - limit} over the limit of {limit} {unit} for a"
        f" private reply ({private_channel(network)})"
    )


def elsewhere_reason(comment_id: str, what: str) -> str | None:
    """Why `what` cannot be done to an Instagram @mention on someone else's media (its id is
    `mention:...`, integrations.meta_payloads): it is no comment on the brand's posts."""
    if not comment_id.startswith(ELSEWHERE_PREFIX):
        return None
    return (
        f"{what} is only possible for comments on the brand's own posts; this case is an"
        " Instagram @mention on someone else's post. Reply publicly instead."
    )


def comment_time(db: Database, network: str, comment_id: str) -> datetime | None:
    row = db.execute(
        "SELECT created_at FROM mentions WHERE network = ? AND id = ?", (network, comment_id)
    ).fetchone()
    return datetime.fromisoformat(row[0]) if row else None


def private_reply_problem(
    db: Database, network: str, comment_id: str, now: datetime
) -> tuple[str, str] | None:
    """Why a private reply to this comment cannot be sent now, as (refusal code, reason);
    None when it can."""
    unsupported = not_meta_reason(network, "A private reply")
    if unsupported:
        return "wrong_network", unsupported
    elsewhere = elsewhere_reason(comment_id, "A private reply")
    if elsewhere:
        return "wrong_network", elsewhere
    sent = db.execute(
        "SELECT case_id, sent_at FROM private_replies WHERE network = ? AND comment_id = ?",
        (network, comment_id),
    ).fetchone()
    if sent:
        at = datetime.fromisoformat(sent[1])
        return "already_sent", (
            f"A private reply to this comment was already sent (case #{sent[0]},"
            f" {at:%d %b %Y %H:%M} UTC); {network_name(network)} allows one per comment."
        )
    posted = comment_time(db, network, comment_id)
    if posted is not None and now - posted > PRIVATE_REPLY_WINDOW:
        return "window_closed", (
            f"The comment is {(now - posted).days} days old; {network_name(network)} allows"
            f" a private reply only within 7 days of the comment (until"
            f" {posted + PRIVATE_REPLY_WINDOW:%d %b %Y %H:%M} UTC). Reply publicly instead."
        )
    return None


def case_comments(db: Database, case_id: int, network: str) -> list[str]:
    """The comments a hide acts on: every one of the case, since a follow-up that joined
    it (the same person under the same post) may be the one with the personal data."""
    return [
        str(row[0])
        for row in db.execute(
            "SELECT id FROM mentions WHERE case_id = ? AND network = ? ORDER BY created_at, id",
            (case_id, network),
        )
        if not str(row[0]).startswith(ELSEWHERE_PREFIX)
    ]


def last_hide_request(db: Database, case_id: int) -> set[str]:
    """The comments the case's latest hide or unhide request named."""
    row = db.execute(
        "SELECT payload FROM outbox WHERE kind = ? AND case_id = ? ORDER BY id DESC LIMIT 1",
        (MODERATE, case_id),
    ).fetchone()
    payload = json.loads(row[0]) if row else {}
    return {str(c) for c in payload.get("comment_ids") or [payload.get("comment_id")] if c}
