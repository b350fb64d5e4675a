"""Meta's JSON (webhook changes and Graph objects) as Mentions: pure functions, no I/O.

Ids are Meta's own, so a comment seen by a webhook and again by the backfill poller is one
mention (the pipeline stores a (network, id) once):

- Facebook: a comment's id (`{post}_{comment}`), or a visitor post's id (`{page}_{post}`).
  A reply goes to `POST /{id}/comments` either way.
- Instagram: a comment on the brand's media: the comment id (reply: `POST /{id}/replies`).
  Someone else's media naming the brand (an @mention in its caption, or a photo tag):
  `mention:{media_id}`; an @mention in a comment on someone else's media:
  `mention:{media_id}:{comment_id}` (reply for both: `POST /{ig-user}/mentions`).

Conversations: a comment joins its post (Facebook) or media (Instagram), so one person's
comments under one post are one case. Authors: Facebook gives a page-scoped user id and a
display name (no handle; the id stands in for one); Instagram gives a username.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.models import UNNAMED_FACEBOOK_AUTHOR, Mention

UNNAMED_INSTAGRAM_AUTHOR = "instagram-user"

FACEBOOK, INSTAGRAM = "facebook", "instagram"
MENTION_PREFIX = "mention:"
NO_TEXT = "(no text: a photo, sticker or GIF)"
# Visitor posts in a Page's feed webhook come as these items; the rest (reactions, likes,
# shares of the page's own posts) are not something to answer.
POST_ITEMS = frozenset({"post", "status", "photo", "video"})


class PayloadError(ValueError):
    """A change or object that lacks what a mention needs."""


@dataclass(frozen=True)
class MentionRef:
    """An Instagram @mention the webhook names only by ids: it has to be fetched."""

    media_id: str
    comment_id: str | None = None

    @property
    def mention_id(self) -> str:
        suffix = f":{self.comment_id}" if self.comment_id else ""
        return f"{MENTION_PREFIX}{self.media_id}{suffix}"


def parse_mention_id(mention_id: str) -> MentionRef | None:
    """The media (and comment) of an Instagram mention id; None for a plain comment id."""
    if not mention_id.startswith(MENTION_PREFIX):
        return None
    media, _, comment = mention_id.removeprefix(MENTION_PREFIX).partition(":")
    return MentionRef(media, comment or None)


def graph_time(value: object) -> datetime:
    """Graph times: unix seconds (webhooks) or ISO 8601 with +0000 (Graph objects)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", value.replace("Z", "+00:00"))
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise PayloadError("no creation time")


def _id(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise PayloadError("no id")


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) and value.strip() else NO_TEXT


# ------------------------------------------------------------------ Facebook


def facebook_mention(
    obj: Mapping[str, Any], *, page_id: str, post_id: str | None = None
) -> Mention | None:
    """A Graph comment or post (`id, message, from{id,name}, created_time, permalink_url,
    parent{id}`) as a Mention; None for the page's own."""
    author = _dict(obj.get("from"))
    author_id = str(author.get("id") or "")
    if author_id == page_id:
        return None
    item_id = _id(obj.get("id"))
    parent = _dict(obj.get("parent")).get("id")
    return _facebook(
        item_id=item_id,
        author_id=author_id,
        name=str(author.get("name") or ""),
        text=obj.get("message"),
        created=obj.get("created_time"),
        post_id=post_id,
        parent_id=str(parent) if parent else post_id,
        url=obj.get("permalink_url"),
    )


def facebook_change(
    value: Mapping[str, Any], *, page_id: str, time: object = None
) -> Mention | None:
    """A Page `feed` change as a Mention; None for what is no case: edits and removals
    (the first version is the case), reactions, the page's own posts and comments."""
    if value.get("verb") != "add":
        return None
    item = value.get("item")
    author = _dict(value.get("from"))
    author_id = str(author.get("id") or "")
    if author_id == page_id:
        return None
    post_id = str(value.get("post_id") or "")
    if item == "comment":
        item_id = _id(value.get("comment_id"))
        parent = str(value.get("parent_id") or post_id)
    elif item in POST_ITEMS:
        if not post_id:
            raise PayloadError("a post without post_id")
        item_id, parent, post_id = post_id, "", ""
    else:
        return None
    post = _dict(value.get("post"))
    return _facebook(
        item_id=item_id,
        author_id=author_id,
        name=str(author.get("name") or ""),
        text=value.get("message"),
        created=value.get("created_time") or time,  # else when Meta sent the change
        post_id=post_id or None,
        parent_id=parent or None,
        url=post.get("permalink_url") if item != "comment" else None,
    )


def _facebook(
    *,
    item_id: str,
    author_id: str,
    name: str,
    text: object,
    created: object,
    post_id: str | None,
    parent_id: str | None,
    url: object,
) -> Mention:
    # Without `from` (a person Meta does not name to the page) each comment stands alone.
    who = author_id or f"unknown-{item_id}"
    return Mention(
        network=FACEBOOK,
        id=item_id,
        author_id=who,
        author_handle=who,
        author_name=name[:200] or UNNAMED_FACEBOOK_AUTHOR,
        text=_text(text),
        created_at=graph_time(created),
        in_reply_to_id=parent_id,
        conversation_id=post_id or item_id,
        url=url if isinstance(url, str) and url else f"https://www.facebook.com/{item_id}",
    )


# ------------------------------------------------------------------ Instagram


def instagram_comment(
    obj: Mapping[str, Any],
    *,
    account_id: str,
    media_id: str,
    permalink: str | None = None,
    fallback_time: object = None,
    username: str | None = None,
) -> Mention | None:
    """A comment on the brand's media (Graph object or `comments` webhook value) as a
    Mention; None for the brand's own."""
    author = _dict(obj.get("from"))
    author_id = str(author.get("id") or "")
    handle = str(author.get("username") or obj.get("username") or "")
    if author_id == account_id or (username and handle.lower() == username.lower()):
        return None
    if not handle:
        raise PayloadError("a comment without a username")
    item_id = _id(obj.get("id"))
    parent = obj.get("parent_id") or _dict(obj.get("parent")).get("id")
    return Mention(
        network=INSTAGRAM,
        id=item_id,
        author_id=author_id or f"username:{handle}",
        author_handle=handle,
        author_name=handle,
        text=_text(obj.get("text")),
        created_at=graph_time(obj.get("timestamp") or fallback_time),
        in_reply_to_id=str(parent) if parent else media_id,
        conversation_id=media_id,
        url=permalink or None,
    )


def instagram_change(
    field: str, value: Mapping[str, Any], *, account_id: str, time: object
) -> Mention | MentionRef | None:
    """An Instagram webhook change: a `comments` value is a Mention already; a `mentions`
    value only names ids (a MentionRef to fetch). Other fields are no case."""
    if field == "comments":
        media = _dict(value.get("media"))
        return instagram_comment(
            value, account_id=account_id, media_id=_id(media.get("id")), fallback_time=time
        )
    if field == "mentions":
        comment = value.get("comment_id")
        return MentionRef(_id(value.get("media_id")), _id(comment) if comment else None)
    return None


def instagram_media_mention(obj: Mapping[str, Any], ref: MentionRef) -> Mention:
    """Someone else's media naming the brand (caption @mention or a photo tag), or a
    comment on it (`ref.comment_id`), as fetched from the Graph API."""
    if ref.comment_id is not None:
        comment = obj
        media = _dict(obj.get("media"))
        text, when = comment.get("text"), comment.get("timestamp")
    else:
        media = obj
        text, when = obj.get("caption"), obj.get("timestamp")
    handle = str(obj.get("username") or "")
    if not handle and ref.comment_id is not None:
        # Meta did not say who wrote the comment: it is answered under the comment all
        # the same (POST /{ig-user}/mentions), without an @name.
        handle = f"{UNNAMED_INSTAGRAM_AUTHOR}-{ref.comment_id}"
    if not handle:
        raise PayloadError("a mention without a username")
    author = _dict(obj.get("from"))
    return Mention(
        network=INSTAGRAM,
        id=ref.mention_id,
        author_id=str(author.get("id") or f"username:{handle}"),
        author_handle=handle,
        author_name=handle,
        text=_text(text),
        created_at=graph_time(when),
        conversation_id=ref.mention_id,
        url=str(media.get("permalink") or "") or None,
    )
