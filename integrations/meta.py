"""Facebook Pages and Instagram through the Graph API: backfill sources and the webhook
inbox worker (replies and moderation: `integrations.meta_publish`). All of it goes through
one `GraphClient` (the page's one token, `appsecret_proof` on every call).

Inbound is the webhook (handlers/meta_webhook.py stores each signed delivery in the outbox
before answering 200); `MetaInbox` turns stored deliveries into mentions. Webhooks are not
redelivered while the bot is down, so `FacebookSource` and `InstagramSource` poll as a
backfill: recent posts' comments, visitor posts and posts tagging the page (Facebook),
recent media's comments and tagged media (Instagram), each object with its own durable
cursor (the newest creation time seen; a post or medium that appeared while the bot was
down is read from its creation, only a first run looks back a fixed day). Both paths use
Meta's ids, so a comment seen twice is stored once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bot.errors import CredentialRejected, DependencyUnreachable
from bot.health import Health
from bot.models import Mention
from bot.outbox import META_DELIVERY, OutboxItem, backoff_seconds
from bot.ports import Clock
from bot.service import CareService
from integrations.meta_graph import (
    TOKEN_VARIABLE,
    GraphClient,
    GraphCredentialRefused,
    GraphError,
    GraphRateLimited,
    GraphRefused,
    describe,
)
from integrations.meta_payloads import (
    FACEBOOK,
    INSTAGRAM,
    MentionRef,
    PayloadError,
    facebook_change,
    facebook_mention,
    graph_time,
    instagram_change,
    instagram_comment,
    instagram_media_mention,
)
from integrations.polling import back_off, due

log = logging.getLogger(__name__)

RECENT_DAYS = 7  # posts and media whose comments are backfilled (Meta's private-reply window)
RECENT_OBJECTS = 25  # at most this many posts or media per poll
FIRST_LOOK_BACK = timedelta(days=1)  # a first run reads this far back, not the whole history
MAX_PAGES = 5  # Graph pages per object per poll; a longer backlog continues next poll
PAGE_SIZE = 50
SAME_SECOND = timedelta(seconds=5)  # Graph times are whole seconds; clocks differ a little

FB_COMMENT_FIELDS = "id,message,from{id,name},created_time,permalink_url,parent{id}"
FB_POST_FIELDS = "id,message,from{id,name},created_time,updated_time,permalink_url"
IG_COMMENT_FIELDS = "id,text,timestamp,username,from{id,username},parent_id"
IG_MEDIA_FIELDS = "id,caption,timestamp,username,permalink"


def make_graph(
    *, access_token: str, app_secret: str, version: str, base_url: str | None
) -> GraphClient:
    return GraphClient(
        access_token=access_token, app_secret=app_secret, version=version, base_url=base_url
    )


# ------------------------------------------------------------------ start-up


def check_credentials(graph: GraphClient, *, page_id: str | None, account_id: str | None) -> str:
    """At start-up: the token works for the page and the Instagram account. Raises
    CredentialRejected naming the variable (or the id) Meta refused, DependencyUnreachable
    when Meta cannot be asked."""
    found: list[str] = []
    for label, object_id, fields in (
        ("Facebook Page", page_id, "id,name"),
        ("Instagram account", account_id, "id,username"),
    ):
        if not object_id:
            continue
        try:
            obj = graph.get(object_id, {"fields": fields})
        except GraphCredentialRefused as exc:
            raise CredentialRejected(
                f"{TOKEN_VARIABLE}: Meta refused the page access token ({exc})"
            ) from None
        except GraphRefused as exc:
            if "appsecret_proof" in str(exc):
                raise CredentialRejected(
                    f"META_APP_SECRET: Meta refused the appsecret_proof made with it ({exc})"
                ) from None
            key = (
                "sources.facebook.page_id"
                if page_id == object_id
                else "sources.instagram.account_id"
            )
            raise CredentialRejected(
                f"{key}: the {label} {object_id} cannot be read with {TOKEN_VARIABLE} ({exc})"
            ) from None
        except GraphError as exc:
            raise DependencyUnreachable(f"cannot check the Graph API ({exc})") from None
        found.append(f"{label} {obj.get('name') or obj.get('username') or object_id}")
    return ", ".join(found) or "no Meta object configured"


# ------------------------------------------------------------------ backfill sources


@dataclass
class Stream:
    key: str
    next_at: datetime | None = None
    failures: int = 0


class _GraphSource:
    """What both backfill sources share: one stream (one poll walks every object), the
    rate-limit hold and the back-off."""

    name = ""

    def __init__(
        self,
        graph: GraphClient,
        *,
        object_id: str,
        poll_seconds: int,
        clock: Clock,
        cursors: Any,
        health: Health | None = None,
    ) -> None:
        self.graph = graph
        self.object_id = object_id
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.cursors = cursors  # CareService: cursor() / set_cursor()
        self.health = health
        self.stream = Stream(f"{self.name}:{object_id}")
        self.held_until: datetime | None = None
        self._reported: set[str] = set()
        # Objects whose backlog is being read in parts: (Graph's `after`, newest time seen).
        self._resume: dict[str, tuple[str | None, datetime]] = {}

    def poll_due(self, ingest: Callable[[list[Mention]], object]) -> bool:
        now = self.clock.now()
        if self.held_until is not None and now < self.held_until:
            return False
        if not due([self.stream], now):
            return False
        self.stream.next_at = now + timedelta(seconds=self.poll_seconds)
        try:
            self.poll(ingest)
        except GraphRateLimited as exc:
            self.held_until = self.clock.now() + timedelta(seconds=math.ceil(exc.retry_after))
            self.stream.next_at = self.held_until
            log.info("%s: Meta rate limit reached; next poll at %s", self.name, self.held_until)
            if self.health is not None:
                self.health.ok(self.name)  # it answered
            return True
        except GraphError as exc:
            back_off(
                self.stream,
                network=self.name,
                problem=describe(exc),
                poll_seconds=self.poll_seconds,
                clock=self.clock,
                health=self.health,
            )
            return True
        self.stream.failures = 0
        if self.health is not None:
            self.health.ok(self.name)
        return True

    def poll(self, ingest: Callable[[list[Mention]], object]) -> int:
        raise NotImplementedError

    def _since(self, key: str, first: datetime | None = None) -> datetime:
        """The object's cursor; for an object never read, `first` (a post that appeared
        while the bot was down: from its creation), else a first run's look back."""
        stored = self.cursors.cursor(key)
        if stored:
            return datetime.fromisoformat(stored)
        return first if first is not None else self.clock.now() - FIRST_LOOK_BACK

    def _created(self, obj: Mapping[str, Any], time_field: str, known: bool) -> datetime | None:
        """When a post or medium was made, if this source has polled before (`known`): its
        comments are read from then on. None on a first run (the usual look back)."""
        if not known:
            return None
        try:
            return graph_time(obj.get(time_field)) - SAME_SECOND
        except (PayloadError, ValueError):
            return None

    def _read_new(self, key: str, path: str, *args: Any, **kwargs: Any) -> int:
        """`_read_pages`, except that an edge Meta refuses for good (a permission the app
        lacks for `/tagged`, a post deleted meanwhile) is reported and skipped: the other
        edges of the poll are still read. Outages and throttles stop the poll as before."""
        try:
            return self._read_pages(key, path, *args, **kwargs)
        except GraphRefused as exc:
            self._skipped(path, exc)
            return 0

    def _skipped(self, path: str, exc: GraphRefused) -> None:
        marker = f"{path}: {exc}"
        level = logging.DEBUG if marker in self._reported else logging.WARNING
        self._reported.add(marker)
        log.log(level, "%s: cannot read %s, skipped this poll: %s", self.name, path, exc)

    def _read_pages(
        self,
        key: str,
        path: str,
        params: dict[str, object],
        time_field: str,
        convert: Callable[[Mapping[str, Any]], Mention | None],
        ingest: Callable[[list[Mention]], object],
        *,
        expand: Callable[[Mapping[str, Any]], list[Mapping[str, Any]]] | None = None,
        whole: bool = False,
        first: datetime | None = None,
    ) -> int:
        """Everything under `path` (newest first, Graph's cursor paging) created at or after
        the object's cursor, ingested page by page; then the cursor moves to the newest time
        seen. The boundary second is read again (the pipeline stores a mention once), so two
        comments in one second are never split. `whole`: read every page, not just down to
        the cursor (Instagram nests new replies under old comments).

        A backlog longer than MAX_PAGES is read in parts: the next poll goes on where this
        one stopped, and the cursor moves only once the backlog is through, so a crash
        re-reads rather than skips.
        """
        since = self._since(key, first)
        after, newest = self._resume.pop(key, (None, since))
        handed = 0
        for _ in range(MAX_PAGES):
            page = self.graph.get(path, {**params, **({"after": after} if after else {})})
            items = [i for i in page.get("data") or [] if isinstance(i, Mapping)]
            older = False
            mentions: list[Mention] = []
            for item in [e for i in items for e in (expand(i) if expand else [i])]:
                try:
                    created = graph_time(item.get(time_field))
                except (PayloadError, ValueError):
                    continue
                if created < since:
                    older = True
                    continue
                newest = max(newest, created)
                mention = self._convert(convert, item)
                if mention is not None:
                    mentions.append(mention)
            if mentions:
                ingest(mentions)
                handed += len(mentions)
            paging = page.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if (older and not whole) or not items or not after or not paging.get("next"):
                break
        else:
            self._resume[key] = (after, newest)
            self.stream.next_at = self.clock.now()  # go on at the next poll
            log.info("%s: more than %d pages new under %s; continuing", self.name, MAX_PAGES, path)
            return handed
        if newest > since or self.cursors.cursor(key) is None:
            self.cursors.set_cursor(key, newest.isoformat())  # only once ingest has them
        return handed

    def _convert(
        self, convert: Callable[[Mapping[str, Any]], Mention | None], item: Mapping[str, Any]
    ) -> Mention | None:
        try:
            return convert(item)
        except ValueError as exc:  # PayloadError and pydantic's ValidationError
            marker = f"{item.get('id')}"
            if marker not in self._reported:
                self._reported.add(marker)
                log.warning(
                    "%s: skipped a malformed item (id %s): %s", self.name, marker, str(exc)[:200]
                )
            return None

    def _recent(
        self, items: Iterable[Mapping[str, Any]], time_field: str
    ) -> list[Mapping[str, Any]]:
        oldest = self.clock.now() - timedelta(days=RECENT_DAYS)
        recent = []
        for item in items:
            try:
                if graph_time(item.get(time_field)) >= oldest and item.get("id"):
                    recent.append(item)
            except (PayloadError, ValueError):
                continue
        return recent[:RECENT_OBJECTS]


class FacebookSource(_GraphSource):
    """Backfills a Facebook Page: visitor posts in its feed, and comments (and replies)
    under its recent posts, each post with its own cursor."""

    name = FACEBOOK

    def __init__(self, graph: GraphClient, **kwargs: Any) -> None:
        super().__init__(graph, **kwargs)
        self._read_at: dict[str, datetime] = {}  # when this process last read each post

    def poll(self, ingest: Callable[[list[Mention]], object]) -> int:
        page = self.object_id
        feed = (
            self.graph.get(f"{page}/feed", {"fields": FB_POST_FIELDS, "limit": RECENT_OBJECTS}).get(
                "data"
            )
            or []
        )
        posts = self._recent([p for p in feed if isinstance(p, Mapping)], "created_time")
        # Polled before: a post without a cursor appeared since (maybe while the bot was down).
        known = self.cursors.cursor(f"facebook:{page}:visitor-posts") is not None
        handed = self._read_new(
            f"facebook:{page}:visitor-posts",
            f"{page}/feed",
            {"fields": FB_POST_FIELDS, "limit": PAGE_SIZE},
            "created_time",
            lambda obj: facebook_mention(obj, page_id=page),
            ingest,
        )
        handed += self._read_new(
            f"facebook:{page}:tagged",
            f"{page}/tagged",  # posts by others that @mention the page
            {"fields": FB_POST_FIELDS, "limit": PAGE_SIZE},
            "created_time",
            lambda obj: facebook_mention(obj, page_id=page),
            ingest,
        )
        for post in posts:
            post_id = str(post["id"])
            key = f"facebook:{page}:comments:{post_id}"
            if self._unchanged(post, key):
                continue
            self._read_at[key] = self.clock.now()
            handed += self._read_new(
                key,
                f"{post_id}/comments",
                {
                    "fields": FB_COMMENT_FIELDS,
                    "filter": "stream",  # replies too, not only top-level comments
                    "order": "reverse_chronological",
                    "limit": PAGE_SIZE,
                },
                "created_time",
                partial(facebook_mention, page_id=page, post_id=post_id),
                ingest,
                first=self._created(post, "created_time", known),
            )
        return handed

    def _unchanged(self, post: Mapping[str, Any], key: str) -> bool:
        """A post's `updated_time` moves with every new comment: one older than the post's
        cursor has nothing new, and its comments need not be read (a call saved per post).
        Equal to it (the newest comment seen) is unchanged only if this process read the
        post after that second was over: a comment later in the same second still counts."""
        stored = self.cursors.cursor(key)
        try:
            updated = graph_time(post.get("updated_time"))
        except (PayloadError, ValueError):
            return False
        if stored is None:
            return False
        cursor = datetime.fromisoformat(stored)
        read_at = self._read_at.get(key)
        settled = read_at is not None and read_at > updated + SAME_SECOND
        return updated < cursor or (updated == cursor and settled)


class InstagramSource(_GraphSource):
    """Backfills an Instagram professional account: comments (and replies) on its recent
    media, each medium with its own cursor, and media it is tagged in."""

    name = INSTAGRAM

    def poll(self, ingest: Callable[[list[Mention]], object]) -> int:
        account = self.object_id
        media = (
            self.graph.get(
                f"{account}/media",
                {"fields": "id,timestamp,permalink,comments_count", "limit": RECENT_OBJECTS},
            ).get("data")
            or []
        )
        handed = 0
        known = self.cursors.cursor(f"instagram:{account}:tags") is not None
        for medium in self._recent([m for m in media if isinstance(m, Mapping)], "timestamp"):
            media_id, permalink = str(medium["id"]), medium.get("permalink")
            key = f"instagram:{account}:comments:{media_id}"
            # Media have no updated_time; their comment count says whether anything changed.
            count = medium.get("comments_count")
            if count == 0 or (
                count is not None and self.cursors.cursor(f"{key}:count") == str(count)
            ):
                continue
            try:
                handed += self._read_pages(
                    key,
                    f"{media_id}/comments",
                    {
                        "fields": f"{IG_COMMENT_FIELDS},replies{{{IG_COMMENT_FIELDS}}}",
                        "limit": PAGE_SIZE,
                    },
                    "timestamp",
                    partial(self._comment, media_id=media_id, permalink=permalink),
                    ingest,
                    expand=_with_replies,
                    whole=True,
                    first=self._created(medium, "timestamp", known),
                )
            except GraphRefused as exc:
                self._skipped(f"{media_id}/comments", exc)
                continue  # the count is not recorded: read again next poll
            if count is not None and key not in self._resume:
                self.cursors.set_cursor(f"{key}:count", str(count))
        handed += self._read_new(
            f"instagram:{account}:tags",
            f"{account}/tags",
            {"fields": IG_MEDIA_FIELDS, "limit": PAGE_SIZE},
            "timestamp",
            lambda obj: instagram_media_mention(obj, MentionRef(str(obj.get("id")))),
            ingest,
        )
        return handed

    def _comment(self, obj: Mapping[str, Any], media_id: str, permalink: object) -> Mention | None:
        link = permalink if isinstance(permalink, str) else None
        return instagram_comment(obj, account_id=self.object_id, media_id=media_id, permalink=link)


def _with_replies(item: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An Instagram comment and the replies nested under it (`replies{...}`)."""
    replies = (item.get("replies") or {}).get("data") or []
    return [item] + [
        {**reply, "parent_id": reply.get("parent_id") or item.get("id")}
        for reply in replies
        if isinstance(reply, Mapping)
    ]


# ------------------------------------------------------------------ webhook inbox


def unreadable(body: Mapping[str, Any]) -> str | None:
    """Why a signed delivery cannot hold anything the bot reads; None if its shape is
    right (it may still hold nothing new: an edit, a removal, the page's own comment)."""
    if body.get("object") not in ("page", "instagram"):
        return f"object {str(body.get('object'))[:40]!r} (expected page or instagram)"
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries:
        return "no entry list"
    changes = [
        change
        for entry in entries
        if isinstance(entry, Mapping)
        for change in (entry.get("changes") or [])
        if isinstance(change, Mapping) and isinstance(change.get("value"), Mapping)
    ]
    if not changes:
        return (
            "no changes with a value (a messaging subscription? socialcare reads feed,"
            " mention, comments and mentions)"
        )
    return None


class MetaInbox:
    """Turns stored webhook deliveries into mentions, oldest first. An Instagram @mention
    arrives as ids only and is fetched here; if Meta cannot be asked, the delivery waits
    in the outbox and is retried, so an acknowledged delivery is never lost."""

    def __init__(
        self,
        service: CareService,
        graph: GraphClient | None,
        *,
        page_id: str | None,
        account_id: str | None,
        ingest: Callable[[list[Mention]], object] | None = None,
        health: Health | None = None,
    ) -> None:
        self.service = service
        self.graph = graph
        self.page_id = page_id
        self.account_id = account_id
        self.ingest = ingest or service.ingest_many
        self.health = health

    def run_once(self) -> bool:
        item = self.service.outbox.claim([META_DELIVERY])
        if item is None:
            return False
        # Acknowledged to Meta already: a surprise (the database blinked) puts it back.
        with self.service.outbox.released_on_error(item):
            self._work(item)
        return True

    def _work(self, item: OutboxItem) -> None:
        try:
            mentions = self.mentions(item.payload.get("body") or {})
        except GraphError as exc:
            delay = (
                exc.retry_after
                if isinstance(exc, GraphRateLimited)
                else backoff_seconds(item.attempts)
            )
            if self.health is not None:
                network = (
                    FACEBOOK
                    if (item.payload.get("body") or {}).get("object") == "page"
                    else INSTAGRAM
                )
                self.health.failed(network, f"reading a webhook mention: {describe(exc)}")
            self.service.outbox.retry_later(item.id, describe(exc), delay)
            return
        if mentions:
            self.ingest(mentions)
        else:
            problem = unreadable(item.payload.get("body") or {})
            if problem:
                # Signed by Meta, so not an attack: a subscription or an API version the
                # bot does not read. Say so, or the operator never learns it.
                log.warning("meta webhook: delivery #%s has nothing to read: %s", item.id, problem)
        self.service.outbox.done(item.id, {"mentions": len(mentions)})

    def drain(self, limit: int = 1000) -> int:
        done = 0
        while done < limit and self.run_once():
            done += 1
        return done

    def mentions(self, body: Mapping[str, Any]) -> list[Mention]:
        """The mentions in one delivery (`object` page or instagram, `entry[].changes[]`)."""
        kind = body.get("object")
        found: list[Mention] = []
        for entry in body.get("entry") or []:
            if not isinstance(entry, Mapping):
                continue
            for change in entry.get("changes") or []:
                if not isinstance(change, Mapping) or not isinstance(change.get("value"), Mapping):
                    continue
                mention = self._mention(kind, entry, change)
                if mention is not None:
                    found.append(mention)
        return found

    def _mention(
        self, kind: object, entry: Mapping[str, Any], change: Mapping[str, Any]
    ) -> Mention | None:
        field, value = change.get("field"), change["value"]
        try:
            if kind == "page" and field in ("feed", "mention"):
                if self.page_id is None or str(entry.get("id")) != self.page_id:
                    return None  # another page subscribed to the same app
                if field == "mention":
                    return self._fetch_page_mention(value)
                return facebook_change(value, page_id=self.page_id, time=entry.get("time"))
            if kind == "instagram" and isinstance(field, str):
                if str(entry.get("id")) != self.account_id:
                    return None
                got = instagram_change(
                    field, value, account_id=self.account_id, time=entry.get("time")
                )
                return self._fetch(got) if isinstance(got, MentionRef) else got
        except ValueError as exc:  # PayloadError and pydantic's ValidationError
            log.warning("meta webhook: skipped a malformed %s change: %s", field, str(exc)[:200])
        return None

    def _fetch_page_mention(self, value: Mapping[str, Any]) -> Mention | None:
        """The page @mentioned in someone's post or comment: the change names it only by
        id, so it is read (as the backfill reads `/{page}/tagged`)."""
        if value.get("verb") != "add" or self.graph is None or self.page_id is None:
            return None
        comment = value.get("comment_id") if value.get("item") == "comment" else None
        post = str(value.get("post_id") or "")
        target = str(comment or post)
        if not target:
            raise PayloadError("a mention without post_id")
        try:
            obj = self.graph.get(
                target, {"fields": FB_COMMENT_FIELDS if comment else FB_POST_FIELDS}
            )
        except GraphRefused as exc:
            log.info("facebook: the mention %s cannot be read (%s); skipped", target, exc)
            return None
        return facebook_mention(obj, page_id=self.page_id, post_id=post if comment else None)

    def _fetch(self, ref: MentionRef) -> Mention | None:
        if self.graph is None or self.account_id is None:
            return None
        try:
            obj = fetch_mentioned(self.graph, self.account_id, ref)
        except GraphRefused as exc:
            # Deleted since, or not visible to the brand: nothing to answer.
            log.info("instagram: the mention %s cannot be read (%s); skipped", ref.mention_id, exc)
            return None
        return instagram_media_mention(obj, ref)


def fetch_mentioned(graph: GraphClient, account_id: str, ref: MentionRef) -> Mapping[str, Any]:
    """The media or comment an Instagram @mention is in (Graph's mentioned_* fields)."""
    if ref.comment_id:
        # `username` is an IG Comment field, but Meta's mentioned_comment reference lists
        # only id, like_count, media, text, timestamp: if it refuses the field (#100), the
        # comment is read without it rather than lost.
        found = None
        for who in ("username,", ""):
            field = (
                f"mentioned_comment.comment_id({ref.comment_id})"
                f"{{id,text,timestamp,{who}media{{id,permalink}}}}"
            )
            try:
                found = graph.get(account_id, {"fields": field}).get("mentioned_comment")
                break
            except GraphRefused as exc:
                if not who or exc.code != 100:
                    raise
    else:
        field = f"mentioned_media.media_id({ref.media_id}){{{IG_MEDIA_FIELDS}}}"
        answer = graph.get(account_id, {"fields": field})
        found = answer.get("mentioned_media")
    if not isinstance(found, Mapping):
        raise GraphRefused("the mention is not visible", code=None, subcode=None, status=200)
    return found
