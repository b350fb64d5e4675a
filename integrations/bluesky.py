"""Bluesky through the atproto SDK: the mention source and the reply publisher.

What the SDK does, and what this module adds to it:

- `atproto.Client(base_url=...)` speaks XRPC over httpx to a PDS: `BLUESKY_API_URL`,
  default https://bsky.social, which also proxies the `app.bsky.*` AppView methods.
  `BlueskyClient` logs in on its first call, once (`createSession` allows 30 logins per
  5 minutes), and keeps the session in memory only: it is a secret, never stored or
  logged. The SDK refreshes the access token itself shortly before it expires
  (`refreshSession`); if the server refuses a token anyway (revoked, clocks apart), the
  session is refreshed once more, and only when that fails is the app password used again.
- Notifications and search results are read with `invoke_query` and checked one item at
  a time against the SDK's models: the namespace helpers validate a whole page at once, so
  one malformed notification would hide every other. The raw answer also carries the
  `ratelimit-*` headers that pace the next poll.
- Exactly once: a post is a record in the brand's repo, at
  at://<brand DID>/app.bsky.feed.post/<rkey>, and the writer may choose the record key.
  `record_key(attempt_key)` derives a valid TID from a hash of the attempt key, so every
  retry of one attempt writes to the same address. A repeated `createRecord` cannot add
  a second post (the PDS refuses a key that is taken: today with a 500, in newer
  versions with a named error), and after a crash or a lost answer `getRecord` on that
  address says exactly whether the attempt posted.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import atproto
from atproto import models
from atproto_client import exceptions as xrpc
from atproto_client.utils import facet_detection
from atproto_core.exceptions import AtProtocolError
from pydantic import ValidationError

from bot.errors import CredentialRejected, DependencyUnreachable, PublishError
from bot.health import Health
from bot.models import Mention
from bot.ports import Clock, PublishedReply, PublishRequest
from integrations.polling import back_off, due

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://bsky.social"
POST = "app.bsky.feed.post"
REASONS = ("mention", "reply", "quote")
PAGE_SIZE = 100
MAX_PAGES = 10
PROFILES_PER_CALL = 25
RATE_WINDOW = timedelta(minutes=5)  # Bluesky's rate-limit windows; the wait when none is said
# Errors meaning our credential (app password or session) is refused, not this one call.
AUTH_ERRORS = frozenset(
    {
        "AuthenticationRequired",
        "ExpiredToken",
        "InvalidToken",
        "AccountTakedown",
        "AccountDeactivated",
        "AuthFactorTokenRequired",
    }
)
TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
DELETED = "the post was deleted on Bluesky"
BLOCKED = "the author and the brand's account block each other on Bluesky"


# ------------------------------------------------------------------ the client


class BlueskyClient(atproto.Client):  # type: ignore[misc]  # the SDK ships no type hints
    """An `atproto.Client` that logs in on first use, once, and renews its session.

    Share one between the source and the publisher: one login serves both.
    """

    def __init__(
        self, base_url: str | None, *, handle: str, app_password: str, timeout: float
    ) -> None:
        base = base_url or DEFAULT_API_URL
        # A loopback service (a test) is reached directly, whatever proxy is configured.
        loopback = urlsplit(base).hostname in {"127.0.0.1", "localhost", "::1"}
        super().__init__(base, request=atproto.Request(timeout=timeout, trust_env=not loopback))
        self.handle = handle.lstrip("@")
        self._app_password = app_password
        self._login_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<BlueskyClient @{self.handle}>"

    @property
    def did(self) -> str:
        """The brand account's DID; logs in first when no session is open."""
        with self._login_lock:
            if self._session is None:
                self.login(self.handle, self._app_password, fetch_bsky_profile=False)
            return str(self._session.did)

    def _invoke(self, invoke_type: Any, **kwargs: Any) -> Any:
        if kwargs.get("ignore_session_check"):  # createSession and refreshSession themselves
            return super()._invoke(invoke_type, **kwargs)
        self.did  # noqa: B018  (logs in if needed)
        token = self._session.access_jwt
        try:
            return super()._invoke(invoke_type, **kwargs)
        except (xrpc.UnauthorizedError, xrpc.BadRequestError) as exc:
            if _error(exc) not in TOKEN_ERRORS:
                raise
        self._renew(token)
        return super()._invoke(invoke_type, **kwargs)

    def _renew(self, refused_token: str) -> None:
        """The server refused `refused_token`: refresh the session, else log in again."""
        with self._login_lock:
            if self._session.access_jwt != refused_token:
                return  # another thread renewed it meanwhile
            try:
                self._refresh_and_set_session()
            except (xrpc.UnauthorizedError, xrpc.BadRequestError, xrpc.LoginRequiredError):
                self.login(self.handle, self._app_password, fetch_bsky_profile=False)


def make_client(
    *, base_url: str | None, handle: str, app_password: str, timeout: float = 20
) -> BlueskyClient:
    """The client for `BLUESKY_API_URL` (None: https://bsky.social); logs in on first use."""
    return BlueskyClient(base_url, handle=handle, app_password=app_password, timeout=timeout)


def check_credentials(client_factory: Callable[[], BlueskyClient]) -> str:
    """At start-up: log in (pass the factory of the client the bot will use, so this is its
    one login). Returns "@handle (did)"; raises CredentialRejected naming
    BLUESKY_APP_PASSWORD, or DependencyUnreachable."""
    client = client_factory()
    try:
        did = client.did
    except AtProtocolError as exc:
        if _refused(exc):
            raise CredentialRejected(
                f"BLUESKY_APP_PASSWORD: Bluesky refused the app password for {client.handle}"
                f" ({_describe(exc)})"
            ) from None
        raise DependencyUnreachable(f"cannot log in to Bluesky ({_describe(exc)})") from None
    return f"@{client.handle} ({did})"


# ------------------------------------------------------------------ errors


def _error(exc: BaseException) -> str:
    """The XRPC error name of a failed call ("" when there is none)."""
    response = getattr(exc, "response", None)
    content = getattr(response, "content", None)
    return str(getattr(content, "error", "") or "")


def _message(exc: BaseException) -> str:
    content = getattr(getattr(exc, "response", None), "content", None)
    return str(getattr(content, "message", "") or "")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, xrpc.RequestErrorBase) and exc.response is not None:
        return f"HTTP {exc}"
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors()[:3]
        )
    # A transport failure says why (refused, timed out); a model error is not quoted, as
    # pydantic would quote the answer, and an answer may hold a session token.
    detail = exc.__cause__ if isinstance(exc, xrpc.NetworkError) else None
    if type(exc) is ValueError:
        detail = exc
    return f"{exc.__class__.__name__}: {detail}" if detail else exc.__class__.__name__


def _refused(exc: BaseException) -> bool:
    """Our credential was refused (the app password or the session), not one request."""
    if isinstance(exc, xrpc.UnauthorizedError):
        return True
    return isinstance(exc, xrpc.BadRequestError) and (
        _error(exc) in AUTH_ERRORS or "password" in _message(exc).lower()
    )


def _blocked(exc: BaseException) -> bool:
    return isinstance(exc, xrpc.BadRequestError) and (
        "Blocked" in _error(exc) or "block" in _message(exc).lower()
    )


def _credential_error(client: BlueskyClient, exc: BaseException) -> PublishError:
    return PublishError(
        f"Bluesky refused the app password for {client.handle} ({_describe(exc)});"
        " check BLUESKY_APP_PASSWORD",
        permanent=True,
        outage=True,
    )


# ------------------------------------------------------------------ payloads


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"time without a timezone: {value!r}")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    """Bluesky's own form: UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def post_url(handle: str, uri: str) -> str:
    """The bsky.app page of the post at `uri` (at://did/app.bsky.feed.post/rkey)."""
    return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"


def to_mention(uri: str, author: Any, record: Any, indexed_at: datetime) -> Mention:
    """A post (its at:// URI, author profile view and record) as a Mention.

    Raises ValueError or ValidationError for a record that is not a usable post.
    """
    if not isinstance(record, models.AppBskyFeedPost.Record):
        raise ValueError("the record is not a well-formed app.bsky.feed.post")
    try:
        created = _time(record.created_at)
    except ValueError:
        created = indexed_at
    reply = record.reply
    verification = getattr(author, "verification", None)
    return Mention(
        network="bluesky",
        id=uri,
        author_id=author.did,
        author_handle=author.handle,
        author_name=author.display_name or "",
        text=record.text,
        created_at=created,
        in_reply_to_id=reply.parent.uri if reply else None,
        # The thread's root: a reply in the same thread joins the open case.
        conversation_id=reply.root.uri if reply else uri,
        url=post_url(author.handle, uri),
        author_verified=getattr(verification, "verified_status", None) == "valid",
        lang=record.langs[0] if record.langs else None,
    )


# ------------------------------------------------------------------ source


@dataclass
class Stream:
    """One watched list: the brand's notifications, or one searchPosts query."""

    key: str
    kind: str  # "notifications" | "search"
    query: str | None = None
    next_at: datetime | None = None
    failures: int = 0
    resume_token: str | None = None  # where a read cut short goes on
    resume_newest: datetime | None = None  # the newest time of that read, the cursor once done


class BlueskyMentionSource:
    """Polls the brand's notifications (mentions, replies, quotes) and each search query.

    Each stream's durable cursor is the newest `indexedAt` of its last complete read;
    a read goes back page by page (newest first) until it reaches that time, and only
    then moves the cursor. Items at exactly the cursor's time are handed over again
    (ingest stores a mention once), so nothing at a boundary is skipped.
    """

    name = "bluesky"

    def __init__(
        self,
        client: BlueskyClient,
        *,
        handle: str,
        queries: list[str],
        poll_seconds: int,
        clock: Clock,
        cursors: Any,
        health: Health | None = None,
    ) -> None:
        self.client = client
        self.handle = handle.lstrip("@").lower()
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.cursors = cursors  # CareService: cursor() / set_cursor()
        self.health = health
        self.streams = [Stream(f"bluesky:notifications:{self.handle}", "notifications")]
        self.streams += [Stream(f"bluesky:search:{q}", "search", q) for q in queries]
        self._skipped: set[str] = set()  # malformed items already logged

    def poll_due(self, ingest: Callable[[list[Mention]], object]) -> bool:
        ready = due(self.streams, self.clock.now())
        for stream in ready:
            self.poll(stream, ingest)
        return bool(ready)

    def poll(self, stream: Stream, ingest: Callable[[list[Mention]], object]) -> int:
        """Fetch what is new since the stream's cursor; returns mentions handed over."""
        stored = self.cursors.cursor(stream.key)
        since = _time(stored) if stored else None
        failures_before = stream.failures
        newest, token = stream.resume_newest, stream.resume_token
        collected: list[Mention] = []
        complete = False
        stream.next_at = self.clock.now() + timedelta(seconds=self.poll_seconds)
        for _ in range(MAX_PAGES):
            try:
                response = self._get(stream, stored, token)
                items, count, token = self._page(stream, response.content)
            except xrpc.RateLimitExceededError as exc:
                self._wait_for_reset(stream, exc.response.headers if exc.response else {})
                break
            except (AtProtocolError, ValueError) as exc:
                self._back_off(stream, exc)
                break
            reached_old = False
            for at, mention in items:
                if since is not None and at <= since:
                    reached_old = True  # back at the cursor: no need for older pages
                    if at < since:
                        continue
                newest = at if newest is None else max(newest, at)
                if mention is not None:
                    collected.append(mention)
            used_up = self._window_used_up(stream, response.headers)
            # First run: the latest page only, not the account's whole history.
            if not token or not count or reached_old or since is None:
                complete = True
                break
            if used_up:
                break  # the next page would only earn a 429
        else:
            log.info("%s: more than %d pages new; continuing next poll", stream.key, MAX_PAGES)
        if collected:
            # Newest first on Bluesky; cases are numbered in the order things were said.
            ingest(self._with_followers(collected)[::-1])
        if self.health is not None and stream.failures == failures_before:
            self.health.ok(self.name)  # Bluesky answered (a 429 is an answer too)
        if complete:
            stream.failures = 0
            stream.resume_token = stream.resume_newest = None
            if newest is not None and (since is None or newest > since):
                self.cursors.set_cursor(stream.key, _iso(newest))
        else:
            stream.resume_token, stream.resume_newest = token, newest
        return len(collected)

    def _get(self, stream: Stream, since: str | None, token: str | None) -> Any:
        if stream.kind == "notifications":
            return self.client.invoke_query(
                "app.bsky.notification.listNotifications",
                params=models.AppBskyNotificationListNotifications.Params(
                    limit=PAGE_SIZE, cursor=token, reasons=list(REASONS)
                ),
            )
        return self.client.invoke_query(
            "app.bsky.feed.searchPosts",
            params=models.AppBskyFeedSearchPosts.Params(
                q=stream.query, sort="latest", since=since, limit=PAGE_SIZE, cursor=token
            ),
        )

    def _page(
        self, stream: Stream, content: object
    ) -> tuple[list[tuple[datetime, Mention | None]], int, str | None]:
        """(indexedAt, mention or None) per usable item, the item count, the next cursor."""
        field = "notifications" if stream.kind == "notifications" else "posts"
        raw = content.get(field) if isinstance(content, dict) else None
        if not isinstance(raw, list):
            raise ValueError(f"Bluesky answered without a list of {field}")
        assert isinstance(content, dict)
        cursor = content.get("cursor")
        items: list[tuple[datetime, Mention | None]] = []
        for entry in raw:
            try:
                items.append(self._item(stream, entry))
            except (ValidationError, ValueError, TypeError) as exc:
                self._skip(stream, entry, exc)
        return items, len(raw), cursor if isinstance(cursor, str) and cursor else None

    def _item(self, stream: Stream, entry: object) -> tuple[datetime, Mention | None]:
        if stream.kind == "notifications":
            note = models.AppBskyNotificationListNotifications.Notification.model_validate(entry)
            at = _time(note.indexed_at)
            if note.reason not in REASONS:
                return at, None
            return at, to_mention(note.uri, note.author, note.record, at)
        post = models.AppBskyFeedDefs.PostView.model_validate(entry)
        at = _time(post.indexed_at)
        if post.author.handle.lower() == self.handle:
            return at, None  # the brand's own post: seen, not a case
        return at, to_mention(post.uri, post.author, post.record, at)

    def _skip(self, stream: Stream, entry: object, exc: Exception) -> None:
        """Log a malformed item once; the poll goes on without it."""
        uri = entry.get("uri") if isinstance(entry, dict) else None
        key = str(uri) if uri else repr(entry)[:200]
        if key in self._skipped:
            return
        if len(self._skipped) > 10_000:
            self._skipped.clear()
        self._skipped.add(key)
        kind = "notification" if stream.kind == "notifications" else "search result"
        log.warning("%s: skipped a malformed %s %s: %s", stream.key, kind, key, _describe(exc))

    def _with_followers(self, mentions: list[Mention]) -> list[Mention]:
        """Add follower counts from the authors' profiles; without them if that fails."""
        dids = sorted({m.author_id for m in mentions})
        followers: dict[str, int | None] = {}
        for start in range(0, len(dids), PROFILES_PER_CALL):
            try:
                answer = self.client.app.bsky.actor.get_profiles(
                    models.AppBskyActorGetProfiles.Params(
                        actors=dids[start : start + PROFILES_PER_CALL]
                    )
                )
            except AtProtocolError as exc:
                log.debug("bluesky: no follower counts this time (%s)", _describe(exc))
                continue
            followers.update((p.did, p.followers_count) for p in answer.profiles)
        return [
            m.model_copy(update={"author_followers": followers[m.author_id]})
            if followers.get(m.author_id) is not None
            else m
            for m in mentions
        ]

    def _window_used_up(self, stream: Stream, headers: dict[str, str]) -> bool:
        """If the window is used up, wait for its reset rather than earn a 429."""
        remaining = headers.get("ratelimit-remaining")
        if remaining is not None and remaining.strip() == "0":
            self._wait_for_reset(stream, headers)
            return True
        return False

    def _wait_for_reset(self, stream: Stream, headers: dict[str, str]) -> None:
        try:
            at = datetime.fromtimestamp(int(str(headers.get("ratelimit-reset"))) + 1, tz=UTC)
        except (TypeError, ValueError):
            at = self.clock.now() + RATE_WINDOW
        stream.next_at = max(stream.next_at or at, at)
        log.info("%s: rate limit reached; next poll at %s", stream.key, at.isoformat())

    def _back_off(self, stream: Stream, exc: Exception) -> None:
        back_off(
            stream,
            network=self.name,
            problem=_describe(exc),
            poll_seconds=self.poll_seconds,
            clock=self.clock,
            health=self.health,
        )


# ------------------------------------------------------------------ publisher

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable
_TID_EPOCH_US = 1_672_531_200_000_000  # 2023-01-01T00:00:00Z
_TID_SPAN_US = 1 << 45  # about 407 days


def record_key(attempt_key: str) -> str:
    """The record key (a TID) an attempt's post is written under, the same for every retry.

    A TID is a 64-bit number (top bit 0): microseconds since 1970 in 53 bits, then a
    10-bit clock id, written as 13 base32-sortable characters. Both parts come from
    SHA-256 of the attempt key; the time falls in 2023, so the key is never in the future
    and never equals a key the PDS makes for a post written today.
    """
    digest = int.from_bytes(hashlib.sha256(attempt_key.encode()).digest()[:8], "big")
    micros = _TID_EPOCH_US + (digest >> 10) % _TID_SPAN_US
    value = (micros << 10) | (digest & 0x3FF)
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def _handle_at(handle: str) -> re.Pattern[str]:
    """`@handle` as a whole word (not part of a longer handle or an address)."""
    return re.compile(rf"(?<![\w@.])@{re.escape(handle)}(?![\w-]|\.[\w-])", re.IGNORECASE)


class BlueskyPublisher:
    """Posts approved replies as the brand's account, exactly once (see the module doc)."""

    network = "bluesky"

    def __init__(self, client: BlueskyClient, *, handle: str) -> None:
        self.client = client
        self.handle = handle.lstrip("@")

    def publish(self, request: PublishRequest) -> PublishedReply:
        rkey = record_key(request.attempt_key)
        record = self._reply_record(request)  # may refuse; nothing is posted before this
        try:
            created = self.client.com.atproto.repo.create_record(
                models.ComAtprotoRepoCreateRecord.Data(
                    repo=self.client.did, collection=POST, rkey=rkey, record=record
                )
            )
        except xrpc.RateLimitExceededError as exc:
            raise PublishError(f"Bluesky is busy ({_describe(exc)})", permanent=False) from None
        except AtProtocolError as exc:
            if _refused(exc):
                raise _credential_error(self.client, exc) from None
            # Whatever went wrong (the key already taken, a lost answer, a 5xx after the
            # write), the record's address says whether this attempt is on Bluesky.
            try:
                found = self.find_existing(request)
            except PublishError:
                found = None
            if found is not None:
                return found
            taken = (
                _error(exc) == "RecordAlreadyExists" or "already exists" in _message(exc).lower()
            )
            if isinstance(exc, xrpc.BadRequestError) and not taken:
                reason = BLOCKED if _blocked(exc) else f"Bluesky refused the reply ({exc})"
                raise PublishError(reason, permanent=True) from None
            raise PublishError(
                f"no clear answer from Bluesky ({_describe(exc)})",
                permanent=False,
                maybe_posted=True,
            ) from None
        return self._published(str(created.uri), rkey)

    def find_existing(self, request: PublishRequest) -> PublishedReply | None:
        """An exact look at the attempt's own address: posted or not."""
        rkey = record_key(request.attempt_key)
        try:
            found = self.client.com.atproto.repo.get_record(
                models.ComAtprotoRepoGetRecord.Params(
                    repo=self.client.did, collection=POST, rkey=rkey
                )
            )
        except AtProtocolError as exc:
            if _error(exc) == "RecordNotFound":
                return None
            raise PublishError(
                f"cannot check Bluesky for an earlier attempt ({_describe(exc)})",
                permanent=False,
                maybe_posted=True,
            ) from None
        return self._published(str(found.uri), rkey)

    def _published(self, uri: str, rkey: str) -> PublishedReply:
        return PublishedReply(
            post_id=uri, url=f"https://bsky.app/profile/{self.handle}/post/{rkey}"
        )

    def _reply_record(self, request: PublishRequest) -> Any:
        """The post record: text, facets, and strong refs to the thread's root and parent."""
        try:
            parent = self._parent(request.in_reply_to_id)
            facets = self._facets(request, parent)
        except xrpc.RateLimitExceededError as exc:
            raise PublishError(f"Bluesky is busy ({_describe(exc)})", permanent=False) from None
        except AtProtocolError as exc:
            if _refused(exc):
                raise _credential_error(self.client, exc) from None
            if _blocked(exc):
                raise PublishError(BLOCKED, permanent=True) from None
            if isinstance(exc, xrpc.BadRequestError):
                if "not found" in str(exc).lower():
                    raise PublishError(DELETED, permanent=True) from None
                raise PublishError(f"Bluesky refused the reply ({exc})", permanent=True) from None
            raise PublishError(
                f"cannot read the post being answered on Bluesky ({_describe(exc)})",
                permanent=False,
            ) from None
        parent_ref = models.ComAtprotoRepoStrongRef.Main(uri=parent.uri, cid=parent.cid)
        thread = (
            parent.record.reply
            if isinstance(parent.record, models.AppBskyFeedPost.Record)
            else None
        )
        return models.AppBskyFeedPost.Record(
            text=request.text,
            created_at=_iso(datetime.now(UTC)),
            reply=models.AppBskyFeedPost.ReplyRef(
                root=thread.root if thread else parent_ref, parent=parent_ref
            ),
            facets=facets or None,
        )

    def _parent(self, uri: str) -> Any:
        answer = self.client.app.bsky.feed.get_posts(models.AppBskyFeedGetPosts.Params(uris=[uri]))
        parent = next((p for p in answer.posts if p.uri == uri), None)
        if parent is None:
            raise PublishError(DELETED, permanent=True)
        viewer = parent.author.viewer
        if viewer is not None and (viewer.blocked_by or viewer.blocking):
            raise PublishError(BLOCKED, permanent=True)
        if parent.viewer is not None and parent.viewer.reply_disabled:
            raise PublishError(
                "the author of the post limits who may reply to it on Bluesky", permanent=True
            )
        return parent

    def _facets(self, request: PublishRequest, parent: Any) -> list[Any]:
        """Links and tags as the SDK detects them, and the author's @handle as a mention
        (by DID: that is what notifies them). Offsets count UTF-8 bytes."""
        text = request.text
        facets: list[Any] = list(facet_detection.detect_facets(text))
        handle = request.author_handle.lstrip("@")
        did = self._did_of(handle, parent)
        for match in _handle_at(handle).finditer(text) if did else ():
            facets.append(
                models.AppBskyRichtextFacet.Main(
                    features=[models.AppBskyRichtextFacet.Mention(did=did)],
                    index=models.AppBskyRichtextFacet.ByteSlice(
                        byte_start=len(text[: match.start()].encode()),
                        byte_end=len(text[: match.end()].encode()),
                    ),
                )
            )
        return sorted(facets, key=lambda facet: facet.index.byte_start)

    def _did_of(self, handle: str, parent: Any) -> str | None:
        if parent.author.handle.lower() == handle.lower():
            return str(parent.author.did)
        try:
            return str(
                self.client.com.atproto.identity.resolve_handle(
                    models.ComAtprotoIdentityResolveHandle.Params(handle=handle)
                ).did
            )
        except xrpc.BadRequestError as exc:
            if _refused(exc):
                raise
            log.info("bluesky: @%s does not resolve (%s); posting without a mention", handle, exc)
            return None
