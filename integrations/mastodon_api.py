"""Mastodon through Mastodon.py: the mention source and the reply publisher.

(Named `mastodon_api`, not `mastodon`, so it does not shadow the SDK.)

How the SDK is used
- `make_client()` builds `Mastodon(access_token, api_base_url, request_timeout,
  ratelimit_method="throw", version_check_mode="none")`. "throw" makes a 429 raise
  `MastodonRatelimitError` instead of sleeping in the calling thread and re-sending (the SDK's
  default "wait", which on the publishing path could post twice). The SDK still reads every
  answer's `X-RateLimit-Remaining`/`X-RateLimit-Reset` into `client.ratelimit_remaining` and
  `client.ratelimit_reset` (epoch seconds on this machine's clock, corrected by the server's
  `Date`); the source turns them into its next poll time.
- Answers are the SDK's dicts; they are validated here with pydantic, so one malformed
  notification is logged once and skipped instead of stopping the poller.
- Status content is HTML; `plain_text()` reads it with `html.parser` (paragraphs, line
  breaks, the full text of links, mentions and hashtags, entities decoded).

Watching: mention notifications (`types=["mention"]`) and each hashtag timeline, each with a
durable cursor (the newest id seen). A poll reads forward with `min_id` (Mastodon answers the
page just above it), hands each page to `ingest`, and only then moves the cursor, so a crash
or an error re-reads rather than skips. The first run takes only the latest page.

Exactly once, with `PublishWorker`
- `publish()` first looks the mention up (`status(id)`): its visibility decides the reply's
  (a direct mention gets a direct reply), and a deleted mention, or one whose author blocked
  the brand, is a clear refusal before anything is posted.
- The post carries `Idempotency-Key` = the attempt key: the instance answers a repeat of the
  same attempt within about an hour with the same status, not a second one.
- After an unknown outcome (a timeout, a 5xx, a crash) the worker asks `find_existing()`
  before posting again: the brand's own recent statuses are searched for any reply to the
  mention. The key alone is not enough: it lives an hour, and an outage can last longer.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Annotated, Any
from urllib.parse import urlsplit

from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from bot.errors import CredentialRejected, DependencyUnreachable, PublishError
from bot.health import Health
from bot.models import Mention
from bot.ports import Clock, PublishedReply, PublishRequest
from integrations.polling import back_off, due

log = logging.getLogger(__name__)

NETWORK = "mastodon"
DEFAULT_MAX_CHARACTERS = 500
MAX_PAGES = 10  # pages per stream per poll; a longer backlog continues at the next poll
NOTIFICATIONS_LIMIT = 80  # Mastodon's maximum page sizes
TIMELINE_LIMIT = 40
FIND_PAGES = 5  # pages of the brand's own statuses searched for an earlier reply
WINDOW_SECONDS = 300  # Mastodon's rate-limit window, when a 429 does not say when it resets
THREAD_MEMORY = 10_000  # statuses whose conversation is remembered
# The reply is as visible as the mention: a direct mention gets a direct reply. A kind this
# code does not know is answered directly, never more widely.
REPLY_VISIBILITY = {v: v for v in ("public", "unlisted", "private", "direct")}


def make_client(*, instance: str, access_token: str, timeout: float = 20) -> Mastodon:
    """A client for `instance` (e.g. https://mastodon.social) that never sleeps on a rate
    limit and never asks the server for its version."""
    return Mastodon(
        access_token=access_token,
        api_base_url=instance.rstrip("/"),
        request_timeout=timeout,
        ratelimit_method="throw",
        version_check_mode="none",
        user_agent="socialcare",
    )


# ------------------------------------------------------------------ payloads


def plain_text(content: str) -> str:
    """A status' HTML content as the text a person reads."""
    parser = _TextParser()
    parser.feed(content)
    parser.close()
    lines = "".join(parser.parts).split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


class _TextParser(HTMLParser):
    _BLOCKS = frozenset({"p", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4", "h5"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self._end_line(1)
        elif tag in self._BLOCKS:
            self._end_line(2)

    def _end_line(self, newlines: int) -> None:
        """End the text so far with at least `newlines` line breaks (none at the start)."""
        if self.parts:
            tail = "".join(self.parts[-newlines:])
            have = len(tail) - len(tail.rstrip("\n"))
            self.parts.append("\n" * max(0, newlines - have))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _id_text(value: object) -> object:
    # The SDK gives ids as str subclasses or ints; keep them as plain, exact strings.
    if isinstance(value, int | str) and not isinstance(value, bool):
        return str(value)
    return value


Id = Annotated[str, BeforeValidator(_id_text)]
# The SDK sets a field the server left out to None.
Text = Annotated[str, BeforeValidator(lambda v: "" if v is None else v)]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Account(_Loose):
    id: Id
    acct: str
    username: Text = ""
    display_name: Text = ""
    followers_count: int | None = None


class _Status(_Loose):
    id: Id
    created_at: datetime
    account: _Account
    content: Text = ""
    spoiler_text: Text = ""
    visibility: Text = ""
    language: str | None = None
    url: str | None = None
    uri: str | None = None
    in_reply_to_id: Id | None = None
    reblog: dict[str, Any] | None = None


class _Notification(_Loose):
    id: Id
    type: str
    status: _Status | None = None


def _order(item_id: str) -> tuple[int, str]:
    """Sort key of Mastodon ids: decimal strings, so shorter is older."""
    return (len(item_id), item_id)


def _items(result: object) -> list[Mapping[str, Any]]:
    """The SDK's page (a list of dicts); anything else is an empty page."""
    if not isinstance(result, list):
        return []
    return [item for item in result if isinstance(item, Mapping)]


def _item_id(item: Mapping[str, Any]) -> str | None:
    value = _id_text(item.get("id"))
    return value if isinstance(value, str) and value else None


# ------------------------------------------------------------------ errors


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status of an API error (the SDK raises `(text, status, reason, error)`)."""
    if isinstance(exc, MastodonAPIError) and len(exc.args) >= 4 and isinstance(exc.args[1], int):
        return exc.args[1]
    return None


def _describe(exc: BaseException) -> str:
    """One line about an SDK error, in the instance's words where it gave some."""
    if isinstance(exc, MastodonRatelimitError):
        return "HTTP 429: rate limit reached"
    status = _status_code(exc)
    if status is not None:
        detail = exc.args[3] or exc.args[2]
        return f"HTTP {status}: {str(detail)[:300]}"
    if isinstance(exc, MastodonNetworkError):
        cause = exc.__context__
        return f"no answer ({type(cause).__name__})" if cause else "no answer"
    return type(exc).__name__


def _refused_token(exc: BaseException) -> bool:
    return isinstance(exc, MastodonUnauthorizedError) or _status_code(exc) in (401, 403)


def _brief(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors()[:3]
        )
    return str(exc)[:200]


# ------------------------------------------------------------------ start-up


def check_credentials(client: Mastodon) -> str:
    """At start-up: the access token works. Returns "@user@domain (id)"; raises
    CredentialRejected naming MASTODON_ACCESS_TOKEN if the instance refuses it (401/403),
    DependencyUnreachable if the instance cannot be asked."""
    instance = client.api_base_url or "the instance"
    try:
        me = client.account_verify_credentials()
    except MastodonError as exc:
        if _refused_token(exc):
            raise CredentialRejected(
                f"MASTODON_ACCESS_TOKEN: {instance} refused the access token ({_describe(exc)})"
            ) from None
        raise DependencyUnreachable(
            f"cannot check Mastodon at {instance} ({_describe(exc)})"
        ) from None
    domain = urlsplit(instance).hostname or instance
    acct = str(me.get("acct", ""))
    return f"@{acct if '@' in acct else f'{acct}@{domain}'} ({_id_text(me.get('id'))})"


def max_characters(client: Mastodon) -> int:
    """The instance's own status length limit (`configuration.statuses.max_characters` of
    /api/v2/instance, else /api/v1/instance); 500 if it does not say or cannot be asked."""
    for read in (client.instance_v2, client.instance_v1):
        try:
            info: Any = read()
        except MastodonNotFoundError:
            continue  # an older server without /api/v2/instance
        except MastodonError as exc:
            log.warning(
                "cannot read the Mastodon instance's character limit (%s); assuming %d",
                _describe(exc),
                DEFAULT_MAX_CHARACTERS,
            )
            return DEFAULT_MAX_CHARACTERS
        statuses = ((info or {}).get("configuration") or {}).get("statuses") or {}
        limit = statuses.get("max_characters") or (info or {}).get("max_toot_chars")
        if isinstance(limit, int) and limit > 0:
            per_url = statuses.get("characters_reserved_per_url")
            if per_url not in (None, 23):
                log.warning(
                    "this Mastodon instance counts a URL as %s characters; replies are checked"
                    " counting 23",
                    per_url,
                )
            return limit
    return DEFAULT_MAX_CHARACTERS


# ------------------------------------------------------------------ source


@dataclass
class Stream:
    """One watched list: the brand's mention notifications (tag None), or one hashtag."""

    key: str
    tag: str | None = None
    next_at: datetime | None = None
    failures: int = 0


class MastodonMentionSource:
    """Polls the brand's mention notifications and each hashtag timeline.

    A status becomes a Mention: id = the status id, author_handle = the full `user@domain`
    (a local account's `acct` gets the instance's host appended), text = its content as
    plain text (a content warning first, as "CW: ..."). Conversations: a reply to a status
    this source handed over earlier gets that status' conversation id (so it joins the open
    case); any other status starts its own (conversation_id = its id). That memory lasts
    for the process: after a restart, a follow-up to an older mention opens a new case.
    The brand's own statuses and reblogs are not cases.
    """

    name = NETWORK

    def __init__(
        self,
        client: Mastodon,
        *,
        instance: str,
        hashtags: list[str],
        poll_seconds: int,
        clock: Clock,
        cursors: Any,
        health: Health | None = None,
    ) -> None:
        self.client = client
        self.domain = urlsplit(instance).hostname or instance
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.cursors = cursors  # CareService: cursor() / set_cursor()
        self.health = health
        self.streams = [Stream(f"mastodon:{self.domain}:mentions")]
        tags: dict[str, str] = {}  # tags are case-insensitive: one stream each
        for tag in (t.strip().lstrip("#") for t in hashtags):
            if tag:
                tags.setdefault(tag.lower(), tag)
        for lowered, tag in tags.items():
            self.streams.append(Stream(f"mastodon:{self.domain}:tag:{lowered}", tag))
        self.held_until: datetime | None = None  # the account's rate-limit window is used up
        self._brand_id: str | None = None
        self._threads: dict[str, str] = {}  # status id -> conversation id
        self._reported: set[str] = set()  # malformed items already logged

    def poll_due(self, ingest: Callable[[list[Mention]], object]) -> bool:
        now = self.clock.now()
        if self.held_until is not None and now < self.held_until:
            return False
        ready = due(self.streams, now)
        for stream in ready:
            self.poll(stream, ingest)
            if self.held_until is not None and self.clock.now() < self.held_until:
                break  # the rest waits for the window (they stay due)
        return bool(ready)

    def poll(self, stream: Stream, ingest: Callable[[list[Mention]], object]) -> int:
        """Read everything newer than the stream's cursor; returns mentions handed over."""
        stream.next_at = self.clock.now() + timedelta(seconds=self.poll_seconds)
        cursor = self.cursors.cursor(stream.key)
        handed = 0
        try:
            brand = self._brand()
            first_run = cursor is None  # then the latest page only, not the whole history
            for _ in range(MAX_PAGES):
                page = self._fetch(stream, cursor)
                ids = sorted({i for item in page if (i := _item_id(item))}, key=_order)
                mentions = [
                    m
                    for item in sorted(page, key=lambda i: _order(_item_id(i) or ""))
                    if (m := self._mention(stream, item, brand)) is not None
                ]
                if mentions:
                    ingest(mentions)
                    handed += len(mentions)
                if ids:
                    cursor = ids[-1]
                    self.cursors.set_cursor(stream.key, cursor)  # only once ingest has them
                used_up = self.client.ratelimit_remaining <= 0
                if used_up:
                    self._hold(stream)  # rather than earn a 429 with the next request
                if not ids or first_run or used_up:
                    break
            else:
                log.info("%s: more than %d pages new; continuing", stream.key, MAX_PAGES)
                stream.next_at = self.clock.now()
        except MastodonRatelimitError:
            self._hold(stream)
        except MastodonError as exc:
            self._back_off(stream, exc)
            return handed
        stream.failures = 0
        if self.health is not None:
            self.health.ok(NETWORK)  # it answered (a 429 is an answer too)
        return handed

    def _brand(self) -> str:
        if self._brand_id is None:
            self._brand_id = str(_id_text(self.client.account_verify_credentials()["id"]))
        return self._brand_id

    def _fetch(self, stream: Stream, cursor: str | None) -> list[Mapping[str, Any]]:
        if stream.tag is None:
            result: Any = self.client.notifications(
                types=["mention"], min_id=cursor, limit=NOTIFICATIONS_LIMIT
            )
        else:
            result = self.client.timeline_hashtag(stream.tag, min_id=cursor, limit=TIMELINE_LIMIT)
        return _items(result)

    def _mention(self, stream: Stream, item: Mapping[str, Any], brand: str) -> Mention | None:
        """The item as a Mention; None for what is not a case. Malformed: logged once."""
        try:
            if stream.tag is None:
                note = _Notification.model_validate(dict(item))
                if note.type != "mention":
                    return None
                if note.status is None:
                    raise ValueError("a mention notification without its status")
                status = note.status
            else:
                status = _Status.model_validate(dict(item))
            if status.reblog is not None or status.account.id == brand:
                return None
            return self._to_mention(status)
        except ValueError as exc:  # pydantic's ValidationError included
            key = f"{stream.key}:{_item_id(item)}"
            if key not in self._reported:
                self._reported.add(key)
                log.warning(
                    "%s: skipped a malformed item (id %s): %s",
                    stream.key,
                    _item_id(item),
                    _brief(exc),
                )
            return None

    def _to_mention(self, status: _Status) -> Mention:
        acct = status.account.acct
        text = plain_text(status.content)
        if status.spoiler_text.strip():
            text = f"CW: {status.spoiler_text.strip()}\n\n{text}"
        parent = status.in_reply_to_id
        conversation = self._threads.get(parent, status.id) if parent else status.id
        followers = status.account.followers_count
        mention = Mention(
            network=NETWORK,
            id=status.id,
            author_id=status.account.id,
            author_handle=acct if "@" in acct else f"{acct}@{self.domain}",
            author_name=(status.account.display_name or status.account.username)[:200],
            text=text,
            created_at=status.created_at,
            in_reply_to_id=parent,
            conversation_id=conversation,
            url=status.url or status.uri,
            author_followers=followers if followers is not None and followers >= 0 else None,
            lang=status.language or None,
        )
        self._threads[status.id] = conversation
        while len(self._threads) > THREAD_MEMORY:
            del self._threads[next(iter(self._threads))]
        return mention

    def _hold(self, stream: Stream) -> None:
        """Wait for the account's rate-limit window to reset (the last answer says when)."""
        reset = self.client.ratelimit_reset
        seconds = max(0.0, float(reset) - time.time()) if reset is not None else WINDOW_SECONDS
        self.held_until = self.clock.now() + timedelta(seconds=math.ceil(seconds))
        stream.next_at = max(stream.next_at or self.held_until, self.held_until)
        log.info(
            "%s: Mastodon rate limit reached; next poll at %s",
            stream.key,
            self.held_until.isoformat(),
        )

    def _back_off(self, stream: Stream, exc: MastodonError) -> None:
        what = _describe(exc)
        if _refused_token(exc):
            what += "; check MASTODON_ACCESS_TOKEN"
        back_off(
            stream,
            network=NETWORK,
            problem=what,
            poll_seconds=self.poll_seconds,
            clock=self.clock,
            health=self.health,
        )


# ------------------------------------------------------------------ publisher


class MastodonPublisher:
    """Posts approved replies as the brand account (the one MASTODON_ACCESS_TOKEN)."""

    def __init__(self, client: Mastodon, *, brand_account_id: str | None = None) -> None:
        self.client = client
        self.brand_account_id = brand_account_id  # looked up once when not given

    def publish(self, request: PublishRequest) -> PublishedReply:
        try:
            target: Any = self.client.status(request.in_reply_to_id)
        except MastodonError as exc:
            raise _publish_error(exc, posting=False, reset=self.client.ratelimit_reset) from None
        visibility = REPLY_VISIBILITY.get(str(target.get("visibility") or ""), "direct")
        try:
            posted: Any = self.client.status_post(
                request.text,
                in_reply_to_id=request.in_reply_to_id,
                visibility=visibility,
                idempotency_key=request.attempt_key,
            )
        except MastodonError as exc:
            raise _publish_error(exc, posting=True, reset=self.client.ratelimit_reset) from None
        reply = _published(posted)
        if reply is None:
            # Something answered 2xx without a status: it may be posted; check before retrying.
            raise PublishError(
                "Mastodon answered without a status id", permanent=False, maybe_posted=True
            )
        return reply

    def find_existing(self, request: PublishRequest) -> PublishedReply | None:
        """Any status of the brand replying to the mention, among its recent ones.

        Whatever its words: a case gets one reply, and one already there is it. The search
        stops at statuses older than the mention (a reply cannot be older).
        """
        target = request.in_reply_to_id
        try:
            if self.brand_account_id is None:
                me = self.client.account_verify_credentials()
                self.brand_account_id = str(_id_text(me["id"]))
            max_id: str | None = None
            for _ in range(FIND_PAGES):
                page = _items(
                    self.client.account_statuses(
                        self.brand_account_id,
                        max_id=max_id,
                        limit=TIMELINE_LIMIT,
                        exclude_reblogs=True,
                    )
                )
                for status in page:
                    if _id_text(status.get("in_reply_to_id")) == target:
                        return _published(status)
                ids = sorted({i for s in page if (i := _item_id(s))}, key=_order)
                if not ids or (ids[0].isdigit() and target.isdigit() and int(ids[0]) < int(target)):
                    return None
                max_id = ids[0]
        except MastodonError as exc:
            raise PublishError(
                f"cannot check Mastodon for an earlier attempt ({_describe(exc)})",
                permanent=False,
                maybe_posted=True,
            ) from None
        # The pages ran out before reaching the mention: not found is not "not posted".
        raise PublishError(
            "the brand posted too much since the mention to check all of it; checking again",
            permanent=False,
            maybe_posted=True,
        )


def _published(status: Any) -> PublishedReply | None:
    post_id = _id_text(status.get("id")) if isinstance(status, Mapping) else None
    if not isinstance(post_id, str) or not post_id:
        return None
    return PublishedReply(post_id=post_id, url=str(status.get("url") or status.get("uri") or ""))


def _publish_error(
    exc: MastodonError, *, posting: bool, reset: float | None = None
) -> PublishError:
    """The SDK's error as a PublishError. `posting`: it came from the POST itself, so a
    missing answer may hide a stored status. `reset`: when the rate-limit window ends
    (epoch seconds, as the SDK read it from the last answer)."""
    what = _describe(exc)
    if isinstance(exc, MastodonRatelimitError):
        return PublishError(
            f"Mastodon is rate limiting the brand account ({what})",
            permanent=False,
            retry_after=max(1.0, float(reset) - time.time()) if reset else WINDOW_SECONDS,
        )
    if _refused_token(exc):
        return PublishError(
            f"Mastodon refused the access token ({what}); check MASTODON_ACCESS_TOKEN",
            permanent=True,
            outage=True,
        )
    if isinstance(exc, MastodonNotFoundError):
        return PublishError(
            "the post being answered is gone from Mastodon: deleted, or its author blocked"
            f" the brand ({what})",
            permanent=True,
        )
    if isinstance(exc, MastodonServerError):
        return PublishError(
            f"Mastodon is unavailable ({what})", permanent=False, maybe_posted=posting
        )
    if isinstance(exc, MastodonAPIError):
        return PublishError(f"Mastodon refused the reply ({what})", permanent=True)
    return PublishError(f"no answer from Mastodon ({what})", permanent=False, maybe_posted=posting)
