"""Replies and moderation on Facebook and Instagram through the Graph API.

Exactly once, with `PublishWorker`: Graph has no idempotency key. After an unknown outcome
`find_existing()` lists the replies under the comment and takes one by the page (Facebook)
or the Instagram account as the reply: a case gets one reply. A private reply cannot be
looked up, but Meta takes one per comment and answers a second with error 10900 ("already
replied to"); so after an unknown outcome `find_existing()` sends it again as the check:
10900 means the earlier attempt went out, success that it had not and now has, "outside the
window" that nothing went out (the case fails with the reason). On a first
attempt 10900 means someone else answered (Meta Business Suite): refused, not counted as
ours (docs/DECISIONS.md 38, 46).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.errors import PublishError
from bot.models import network_name
from bot.ports import PublishedReply, PublishRequest
from integrations.meta_graph import (
    TOKEN_VARIABLE,
    GraphClient,
    GraphCredentialRefused,
    GraphError,
    GraphRateLimited,
    GraphRefused,
    GraphUnavailable,
    describe,
)
from integrations.meta_payloads import FACEBOOK, INSTAGRAM, MentionRef, parse_mention_id

log = logging.getLogger(__name__)

FIND_PAGES = 5  # pages of replies looked through for an earlier attempt
# Meta's answers to a second private reply and to one past 7 days, known by code or by
# their words (the codes are not in every version of Meta's error table).
ALREADY_REPLIED = 10900  # "Activity already replied to"
OUTSIDE_WINDOW_SUBCODE = 2018278  # "This message is sent outside of allowed window"


class MetaPublisher:
    """Posts approved replies on Facebook or Instagram as the page (one per network, both
    on the same GraphClient)."""

    def __init__(
        self,
        graph: GraphClient,
        *,
        network: str,
        page_id: str | None = None,
        account_id: str | None = None,
    ) -> None:
        assert network in (FACEBOOK, INSTAGRAM)
        self.graph = graph
        self.network = network
        self.page_id = page_id
        self.account_id = account_id

    def publish(self, request: PublishRequest) -> PublishedReply:
        target = request.in_reply_to_id
        if request.private:
            return self._private(request)
        ref = parse_mention_id(target) if self.network == INSTAGRAM else None
        try:
            if ref is not None:
                fields: dict[str, object] = {"media_id": ref.media_id, "message": request.text}
                if ref.comment_id:
                    fields["comment_id"] = ref.comment_id
                answer = self.graph.post(f"{self.account_id}/mentions", fields)
            else:
                under, _ = self._thread(target)
                edge = "comments" if self.network == FACEBOOK else "replies"
                answer = self.graph.post(f"{under}/{edge}", {"message": request.text})
        except GraphError as exc:
            raise _publish_error(exc, self.network) from None
        return self._published(answer)

    def _private(self, request: PublishRequest, *, retry: bool = False) -> PublishedReply:
        """Send the private reply. `retry`: an earlier attempt may have sent it, so Meta's
        "already replied to" is that attempt's; on a first attempt it is someone else's."""
        target = request.in_reply_to_id
        if parse_mention_id(target) is not None:
            raise PublishError(
                "a private reply answers a comment on the brand's own posts; this is a mention"
                " elsewhere on Instagram",
                permanent=True,
                outage=False,
            )
        # A visitor post on the page (`{page}_{post}`) is named as a post, a comment as one.
        visitor_post = self.network == FACEBOOK and bool(self.page_id)
        visitor_post = visitor_post and target.startswith(f"{self.page_id}_")
        recipient = {"post_id" if visitor_post else "comment_id": target}
        try:
            answer = self.graph.post(
                f"{self.page_id or 'me'}/messages",
                {"recipient": recipient, "message": {"text": request.text}},
            )
        except GraphRefused as exc:
            if exc.code == ALREADY_REPLIED or "already replied" in str(exc).lower():
                if not retry:
                    raise PublishError(
                        "Meta says this comment was already answered privately (from Meta"
                        " Business Suite or another app), and allows one private reply per"
                        " comment: ours was not sent. Reply publicly instead.",
                        permanent=True,
                        outage=False,
                    ) from None
                # One private reply per comment: this case's, sent before a lost answer.
                log.info(
                    "%s: %s was already answered privately; counted as sent", self.network, target
                )
                return PublishedReply(post_id=f"private:{target}", url="")
            if exc.subcode == OUTSIDE_WINDOW_SUBCODE or "outside of allowed window" in str(exc):
                raise _OutsideWindow(
                    f"Meta allows a private reply only within 7 days of the comment ({exc})",
                    permanent=True,
                    outage=False,
                ) from None
            raise _publish_error(exc, self.network) from None
        except GraphError as exc:
            raise _publish_error(exc, self.network) from None
        message_id = str(answer.get("message_id") or "")
        if not message_id:
            raise PublishError(
                "Meta answered the private reply without a message id",
                permanent=False,
                maybe_posted=True,
            )
        return PublishedReply(post_id=message_id, url="")

    def _thread(self, target: str) -> tuple[str, bool]:
        """Where a reply to `target` goes: threads are two levels deep on both networks, so
        a reply to a reply goes under its top-level comment. (That comment, whether
        `target` was a reply in its thread.)"""
        if self.network == FACEBOOK and self.page_id and target.startswith(f"{self.page_id}_"):
            return target, False  # a post on the page: comments go right under it
        fields = "parent{id}" if self.network == FACEBOOK else "parent_id"
        try:
            found = self.graph.get(target, {"fields": fields})
        except GraphRefused:
            # A post elsewhere has no parent field; a deleted comment: the POST will say so.
            return target, False
        parent = found.get("parent") if self.network == FACEBOOK else found.get("parent_id")
        if isinstance(parent, Mapping):
            parent = parent.get("id")
        return (str(parent), True) if parent else (target, False)

    def _published(self, answer: Mapping[str, Any]) -> PublishedReply:
        post_id = str(answer.get("id") or "")
        if not post_id:
            raise PublishError(
                f"{self.network}: Meta answered without the reply's id",
                permanent=False,
                maybe_posted=True,
            )
        url = f"https://www.facebook.com/{post_id}" if self.network == FACEBOOK else ""
        return PublishedReply(post_id=post_id, url=url)

    def find_existing(self, request: PublishRequest) -> PublishedReply | None:
        """Any reply by the page (Facebook) or the account (Instagram) under the comment.
        A private reply cannot be listed: it is sent again, and Meta's one-per-comment rule
        answers (already replied: the earlier attempt's; sent: it had not gone out)."""
        if request.private:
            try:
                return self._private(request, retry=True)
            except _OutsideWindow:
                # Meta said "too late", not "already replied": nothing went out earlier
                # either. None: the worker fails the case with the window's reason.
                return None
        target = request.in_reply_to_id
        ref = parse_mention_id(target) if self.network == INSTAGRAM else None
        try:
            if ref is not None:
                return self._find_under_mention(ref)
            under, nested = self._thread(target)
            path = f"{under}/comments" if self.network == FACEBOOK else f"{under}/replies"
            # Each node type answers only its own fields (anything else is Graph error 100).
            fields = "id,from{id,name},message" if self.network == FACEBOOK else "id,from,text"
            params: dict[str, object] = {"fields": fields, "limit": 100}
            if self.network == FACEBOOK:
                # Under a post (a visitor post: `{page}_{post}`), only its top-level comments:
                # the page's reply to someone else's comment there is not this case's reply.
                # Under a comment, the whole thread below it.
                is_post = bool(self.page_id) and under.startswith(f"{self.page_id}_")
                params["filter"] = "toplevel" if is_post else "stream"
            after: str | None = None
            for _ in range(FIND_PAGES):
                page = self.graph.get(path, {**params, **({"after": after} if after else {})})
                for item in page.get("data") or []:
                    if not isinstance(item, Mapping) or not self._ours(item):
                        continue
                    # In a thread, the page may have answered others too: only the same words
                    # are this case's reply. Right under the comment, any reply of ours is.
                    words = item.get("message") if self.network == FACEBOOK else item.get("text")
                    if not nested or words == request.text:
                        return self._published(item)
                paging = page.get("paging") or {}
                after = (paging.get("cursors") or {}).get("after")
                if not after or not paging.get("next"):
                    return None
        except GraphError as exc:
            raise PublishError(
                f"cannot check {network_name(self.network)} for an earlier attempt"
                f" ({describe(exc)})",
                permanent=False,
                maybe_posted=True,
            ) from None
        raise PublishError(
            "too many replies under the comment to check them all; checking again",
            permanent=False,
            maybe_posted=True,
        )

    def _find_under_mention(self, ref: MentionRef) -> PublishedReply | None:
        assert self.account_id is not None
        me = self.graph.get(self.account_id, {"fields": "username"})
        if ref.comment_id:
            field = f"mentioned_comment.comment_id({ref.comment_id}){{replies{{id,username}}}}"
            node = self.graph.get(self.account_id, {"fields": field}).get("mentioned_comment")
            items = ((node or {}).get("replies") or {}).get("data") or []
        else:
            field = f"mentioned_media.media_id({ref.media_id}){{comments{{id,username}}}}"
            node = self.graph.get(self.account_id, {"fields": field}).get("mentioned_media")
            items = ((node or {}).get("comments") or {}).get("data") or []
        for item in items:
            if isinstance(item, Mapping) and item.get("username") == me.get("username"):
                return self._published(item)
        return None

    def _ours(self, item: Mapping[str, Any]) -> bool:
        author = item.get("from")
        author = author if isinstance(author, Mapping) else {}
        mine = self.page_id if self.network == FACEBOOK else self.account_id
        return bool(mine) and str(author.get("id") or "") == mine


class _OutsideWindow(PublishError):
    """Meta's refusal of a private reply past its 7 days (permanent)."""


def _publish_error(exc: GraphError, network: str) -> PublishError:
    if isinstance(exc, GraphCredentialRefused):
        return PublishError(
            f"Meta refused the page access token ({exc}); check {TOKEN_VARIABLE}",
            permanent=True,
            outage=True,
        )
    if isinstance(exc, GraphRateLimited):
        return PublishError(
            f"Meta is rate limiting the page ({exc})", permanent=False, retry_after=exc.retry_after
        )
    if isinstance(exc, GraphUnavailable):
        return PublishError(
            f"{network_name(network)} is unavailable ({exc})",
            permanent=False,
            maybe_posted=exc.maybe_done,
        )
    return PublishError(f"Meta refused the reply ({exc})", permanent=True)


class MetaModerator:
    """Hides (or shows again) a comment on Facebook or Instagram (CommentModerator)."""

    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    def set_hidden(self, network: str, comment_id: str, hidden: bool) -> None:
        if network == FACEBOOK:
            fields: dict[str, object] = {"is_hidden": hidden}
        elif network == INSTAGRAM and parse_mention_id(comment_id) is None:
            fields = {"hide": hidden}
        else:
            raise PublishError(
                f"only comments on the brand's own Facebook and Instagram posts can be hidden"
                f" ({network} {comment_id})",
                permanent=True,
                outage=False,
            )
        try:
            answer = self.graph.post(comment_id, fields)
        except GraphRefused as exc:
            # Told on the card as is: say what was refused, and plainly when it is gone.
            gone = "does not exist" in str(exc) or exc.subcode == 33
            raise PublishError(
                f"the comment no longer exists on {network_name(network)} ({exc})"
                if gone
                else f"Meta refused to {'hide' if hidden else 'show'} the comment ({exc})",
                permanent=True,
                outage=False,
            ) from None
        except GraphError as exc:
            raise _publish_error(exc, network) from None
        if answer.get("success") is False:
            raise PublishError(
                f"Meta did not {'hide' if hidden else 'unhide'} the comment",
                permanent=False,
                outage=False,  # Meta answered: retried a few times, not for ever
            )
