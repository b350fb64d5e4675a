"""X (Twitter) through tweepy: the mention source and the reply publisher.

- tweepy hard-codes `https://api.twitter.com` in `Client.request`; `XSession` rewrites
  that prefix to `X_API_URL` (default https://api.x.com) *before* requests applies
  OAuth 1.0a, so signatures cover the URL actually called. It also sets a timeout,
  which tweepy never does.
- Clients use `return_type=requests.Response` so the `x-rate-limit-*` headers are
  visible; payloads are validated here with pydantic.
- `wait_on_rate_limit` is never used: it sleeps in the calling thread and re-sends the
  request, which on the publishing path could post twice.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import tweepy
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.errors import ConfigError, CredentialRejected, DependencyUnreachable, PublishError
from bot.health import Health
from bot.models import Mention
from bot.ports import Clock, PublishedReply, PublishRequest
from integrations.polling import back_off, due

log = logging.getLogger(__name__)

TWEEPY_HOST = "https://api.twitter.com"
DEFAULT_API_URL = "https://api.x.com"
TWEET_FIELDS = [
    "author_id",
    "conversation_id",
    "created_at",
    "in_reply_to_user_id",
    "lang",
    "referenced_tweets",
]
USER_FIELDS = ["name", "username", "public_metrics", "verified"]
MAX_PAGES = 10
SEARCH_WINDOW = timedelta(days=6, hours=23)
_TWEPOCH_MS = 1288834974657


def tweet_time(tweet_id: str) -> datetime:
    """When a tweet was posted, from its snowflake id."""
    return datetime.fromtimestamp(((int(tweet_id) >> 22) + _TWEPOCH_MS) / 1000, tz=UTC)


DUPLICATE = "duplicate content"


class XSession(requests.Session):
    """Sends tweepy's requests to `base_url`, with a timeout on every call."""

    def __init__(self, base_url: str | None, *, timeout: float = 20.0) -> None:
        super().__init__()
        self.base_url = (base_url or DEFAULT_API_URL).rstrip("/")
        self.timeout = timeout

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        target = url.decode() if isinstance(url, bytes) else url
        if target.startswith(TWEEPY_HOST):
            target = self.base_url + target[len(TWEEPY_HOST) :]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, target, *args, **kwargs)


def make_client(
    *,
    base_url: str | None,
    bearer_token: str | None = None,
    consumer_key: str | None = None,
    consumer_secret: str | None = None,
    access_token: str | None = None,
    access_token_secret: str | None = None,
    timeout: float = 20.0,
) -> tweepy.Client:
    client = tweepy.Client(
        bearer_token=bearer_token,
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        access_token=access_token,
        access_token_secret=access_token_secret,
        return_type=requests.Response,
        wait_on_rate_limit=False,
    )
    client.session = XSession(base_url, timeout=timeout)
    return client


# ------------------------------------------------------------------ payloads


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Ref(_Loose):
    type: str
    id: str


class _Metrics(_Loose):
    followers_count: int | None = None


class XUser(_Loose):
    id: str
    username: str
    name: str = ""
    verified: bool = False
    public_metrics: _Metrics | None = None


class XTweet(_Loose):
    id: str
    text: str
    author_id: str | None = None
    created_at: datetime | None = None
    conversation_id: str | None = None
    lang: str | None = None
    referenced_tweets: list[_Ref] = []


class _Includes(_Loose):
    users: list[XUser] = []


class _Meta(_Loose):
    result_count: int = 0
    newest_id: str | None = None
    next_token: str | None = None


class XPage(_Loose):
    data: list[XTweet] = []
    includes: _Includes = _Includes()
    meta: _Meta = _Meta()


def to_mention(tweet: XTweet, users: dict[str, XUser], now: datetime) -> Mention | None:
    """A tweet as a Mention; None for what is not a case (retweets, no author)."""
    if any(ref.type == "retweeted" for ref in tweet.referenced_tweets) or not tweet.author_id:
        return None
    user = users.get(tweet.author_id)
    handle = user.username if user else tweet.author_id
    replied_to = next((r.id for r in tweet.referenced_tweets if r.type == "replied_to"), None)
    return Mention(
        network="x",
        id=tweet.id,
        author_id=tweet.author_id,
        author_handle=handle,
        author_name=user.name if user else "",
        text=html.unescape(tweet.text),  # X sends &amp; &lt; &gt; as entities
        created_at=tweet.created_at or now,
        in_reply_to_id=replied_to,
        conversation_id=tweet.conversation_id,
        url=f"https://x.com/{handle}/status/{tweet.id}",
        author_followers=(
            user.public_metrics.followers_count if user and user.public_metrics else None
        ),
        author_verified=bool(user and user.verified),
        lang=tweet.lang if tweet.lang and tweet.lang not in {"und", "zxx", "qme"} else None,
    )


# ------------------------------------------------------------------ source


@dataclass
class Stream:
    """One watched timeline: the brand's mentions, or one recent-search query."""

    key: str
    kind: str  # "mentions" | "search"
    query: str | None = None
    next_at: datetime | None = None
    failures: int = 0
    resume_token: str | None = None  # where a read cut short goes on
    resume_newest: str | None = None  # the newest id of that read, the cursor once done
    calls: list[str] = field(default_factory=list)


class XMentionSource:
    """Polls the mentions timeline and each search query, paced by X's rate-limit headers."""

    name = "x"

    def __init__(
        self,
        client: tweepy.Client,
        *,
        brand_user_id: str | None,
        queries: list[str],
        poll_seconds: int,
        clock: Clock,
        cursors: Any,
        health: Health | None = None,
    ) -> None:
        self.client = client
        self.health = health
        self.brand_user_id = brand_user_id
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.cursors = cursors  # CareService: cursor() / set_cursor()
        self.streams: list[Stream] = []
        if brand_user_id:
            self.streams.append(Stream(f"x:mentions:{brand_user_id}", "mentions"))
        for query in queries:
            self.streams.append(Stream(f"x:search:{query}", "search", query))

    def poll_due(self, ingest: Callable[[list[Mention]], object]) -> bool:
        ready = due(self.streams, self.clock.now())
        for stream in ready:
            self.poll(stream, ingest)
        return bool(ready)

    def poll(self, stream: Stream, ingest: Callable[[list[Mention]], object]) -> int:
        """Fetch everything newer than the stream's cursor; returns mentions handed over.

        A read cut short (page cap, rate limit, error) resumes next poll from the page it
        stopped at, and only a complete read moves the cursor, so no gap is ever skipped.
        """
        since = self.cursors.cursor(stream.key)
        failures_before = stream.failures
        newest, token = stream.resume_newest, stream.resume_token
        collected: list[Mention] = []
        complete = False
        stream.next_at = self.clock.now() + timedelta(seconds=self.poll_seconds)
        for _ in range(MAX_PAGES):
            try:
                response = self._get(stream, since, token)
            except tweepy.TooManyRequests as exc:
                self._wait_for_reset(stream, exc.response, getattr(exc, "reset_time", None))
                break
            except (tweepy.TweepyException, requests.RequestException) as exc:
                self._back_off(stream, exc)
                break
            try:
                page = XPage.model_validate(response.json())
            except (ValidationError, ValueError) as exc:
                self._back_off(stream, exc)
                break
            newest = newest or page.meta.newest_id
            users = {u.id: u for u in page.includes.users}
            now = self.clock.now()
            collected.extend(
                m
                for t in page.data
                if t.author_id != self.brand_user_id and (m := to_mention(t, users, now))
            )
            token = page.meta.next_token
            used_up = self._window_used_up(stream, response)
            # First run: take the latest page only, not the account's whole history.
            if not token or since is None:
                complete = True
                break
            if used_up:
                break  # the next page would only earn a 429
        else:
            log.info("%s: more than %d pages new; continuing next poll", stream.key, MAX_PAGES)
        if collected:
            # X lists newest first; cases are numbered in the order things were said.
            ingest(collected[::-1])
        if self.health is not None and stream.failures == failures_before:
            self.health.ok("x")  # X answered (a 429 is an answer too)
        if complete:
            stream.failures = 0
            stream.resume_token = stream.resume_newest = None
            if newest and (since is None or int(newest) > int(since)):
                self.cursors.set_cursor(stream.key, newest)
        else:
            stream.resume_token, stream.resume_newest = token, newest
        return len(collected)

    def _get(self, stream: Stream, since: str | None, token: str | None) -> requests.Response:
        window_start = self.clock.now() - SEARCH_WINDOW
        if stream.kind == "search" and since and tweet_time(since) < window_start:
            # Recent search refuses a since_id older than its 7-day window (400): after a
            # long downtime or a quiet week, ask for the whole window instead.
            log.info("%s: cursor older than recent search allows; reading 7 days", stream.key)
            since = None
            common_start: dict[str, Any] = {"start_time": window_start}
        else:
            common_start = {}
        common: dict[str, Any] = {
            **common_start,
            "since_id": since,
            "expansions": ["author_id"],
            "tweet_fields": TWEET_FIELDS,
            "user_fields": USER_FIELDS,
        }
        if stream.kind == "mentions":
            assert self.brand_user_id is not None
            response = self.client.get_users_mentions(
                self.brand_user_id, max_results=100, pagination_token=token, **common
            )
        else:
            response = self.client.search_recent_tweets(
                stream.query, max_results=100, next_token=token, **common
            )
        assert isinstance(response, requests.Response)
        return response

    def _window_used_up(self, stream: Stream, response: requests.Response) -> bool:
        """If the window is used up, wait for its reset rather than earn a 429."""
        remaining = response.headers.get("x-rate-limit-remaining")
        if remaining is not None and remaining.strip() == "0":
            self._wait_for_reset(stream, response, None)
            return True
        return False

    def _wait_for_reset(self, stream: Stream, response: Any, reset: int | None) -> None:
        headers = getattr(response, "headers", {}) or {}
        raw = reset if reset is not None else headers.get("x-rate-limit-reset")
        try:
            at = datetime.fromtimestamp(int(str(raw)) + 1, tz=self.clock.now().tzinfo)
        except (TypeError, ValueError):
            at = self.clock.now() + timedelta(minutes=15)
        stream.next_at = max(stream.next_at or at, at)
        log.info("%s: rate limit reached; next poll at %s", stream.key, at.isoformat())

    def _back_off(self, stream: Stream, exc: Exception) -> None:
        back_off(
            stream,
            network="x",
            problem=_describe(exc),
            poll_seconds=self.poll_seconds,
            clock=self.clock,
            health=self.health,
        )


# ------------------------------------------------------------------ publisher


def _describe(exc: Exception) -> str:
    if isinstance(exc, tweepy.HTTPException):
        detail = "; ".join(str(m) for m in exc.api_messages) or exc.response.reason
        return f"HTTP {exc.response.status_code}: {detail}"
    return exc.__class__.__name__


class XPublisher:
    """Posts approved replies with the single service credential (OAuth 1.0a user context)."""

    def __init__(
        self, user_client: tweepy.Client, read_client: tweepy.Client, *, brand_user_id: str
    ) -> None:
        self.user_client = user_client
        self.read_client = read_client
        self.brand_user_id = brand_user_id

    def publish(self, request: PublishRequest) -> PublishedReply:
        try:
            response = self.user_client.create_tweet(
                text=request.text, in_reply_to_tweet_id=request.in_reply_to_id, user_auth=True
            )
        except tweepy.Forbidden as exc:
            if DUPLICATE in _describe(exc).lower():
                # X refuses identical text from the same account: an earlier attempt may
                # have posted it, or the same words went to someone else. The publish
                # worker knows which (whether an earlier attempt is unaccounted for).
                found = self.find_existing(request)
                if found is not None:
                    return found
                raise PublishError(
                    "X refused the reply as a duplicate: the brand has already posted these"
                    " exact words, and no reply to this post is visible on its timeline",
                    permanent=True,
                ) from None
            raise PublishError(f"X refused the reply ({_describe(exc)})", permanent=True) from None
        except tweepy.Unauthorized as exc:
            raise PublishError(
                f"X rejected the service credential ({_describe(exc)}); check X_CONSUMER_KEY,"
                " X_CONSUMER_SECRET, X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET",
                permanent=True,
                outage=True,
            ) from None
        except (tweepy.BadRequest, tweepy.NotFound) as exc:
            raise PublishError(f"X refused the reply ({_describe(exc)})", permanent=True) from None
        except tweepy.TooManyRequests as exc:
            raise PublishError(
                f"X is busy ({_describe(exc)})", permanent=False, retry_after=_reset_in(exc)
            ) from None
        except tweepy.TwitterServerError as exc:
            # A 5xx may come after X stored the post.
            raise PublishError(
                f"X is unavailable ({_describe(exc)})", permanent=False, maybe_posted=True
            ) from None
        except tweepy.HTTPException as exc:
            raise PublishError(f"X answered {_describe(exc)}", permanent=True) from None
        except requests.RequestException as exc:
            raise PublishError(
                f"no answer from X ({_describe(exc)})", permanent=False, maybe_posted=True
            ) from None
        assert isinstance(response, requests.Response)
        try:
            post_id = str(response.json()["data"]["id"])
        except (ValueError, KeyError, TypeError):
            # Something answered 2xx without a tweet id: it may have been posted; the next
            # attempt checks the brand's timeline before posting again.
            raise PublishError(
                "X answered without a tweet id", permanent=False, maybe_posted=True
            ) from None
        return PublishedReply(post_id=post_id, url=f"https://x.com/i/web/status/{post_id}")

    def find_existing(self, request: PublishRequest) -> PublishedReply | None:
        """Look through the brand's recent posts for a reply to this mention.

        Any reply of the brand to that post settles it, whatever its words: a case gets
        one public reply, and one already there (ours, edited by X, or a person's) is it.
        """
        try:
            response = self.read_client.get_users_tweets(
                self.brand_user_id, max_results=100, tweet_fields=TWEET_FIELDS
            )
            assert isinstance(response, requests.Response)
            page = XPage.model_validate(response.json())
        except (
            tweepy.TweepyException,
            requests.RequestException,
            ValidationError,
            ValueError,
        ) as exc:
            raise PublishError(
                f"cannot check X for an earlier attempt ({_describe(exc)})",
                permanent=False,
                maybe_posted=True,
            ) from None
        for tweet in page.data:
            replies_to = {r.id for r in tweet.referenced_tweets if r.type == "replied_to"}
            if request.in_reply_to_id in replies_to:
                return PublishedReply(
                    post_id=tweet.id, url=f"https://x.com/i/web/status/{tweet.id}"
                )
        oldest = min((int(t.id) for t in page.data if t.id.isdigit()), default=None)
        target = request.in_reply_to_id
        if (
            len(page.data) >= 100
            and oldest is not None
            and target.isdigit()
            and oldest > int(target)
        ):
            # The page ends before the mention was even said: not found is not "not posted".
            raise PublishError(
                "the brand posted too much since the mention to check all of it; checking again",
                permanent=False,
                maybe_posted=True,
            )
        return None


# ------------------------------------------------------------------ start-up check


def check_credentials(
    *,
    read_client: tweepy.Client | None,
    user_client: tweepy.Client | None,
    brand_user_id: str | None,
) -> str:
    """At start-up: the bearer token reads, and the user-context tokens are the brand
    account's. Returns "@handle (id)"; raises CredentialRejected naming the variable, a
    ConfigError for a wrong `[sources.x].user_id`, DependencyUnreachable otherwise."""
    who = ""
    if read_client is not None and brand_user_id:
        data = _check_call(
            lambda: read_client.get_user(id=brand_user_id),
            rejected="X_BEARER_TOKEN: X refused the bearer token",
        )
        if data is None:
            raise ConfigError([f"sources.x.user_id: X has no account with id {brand_user_id}"])
        who = f"@{data.get('username')} ({brand_user_id})"
    if user_client is not None:
        me = _check_call(
            lambda: user_client.get_me(user_auth=True),
            rejected="X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN, X_ACCESS_TOKEN_SECRET:"
            " X refused the service credential",
        )
        me_id = str((me or {}).get("id", ""))
        if brand_user_id and me_id != brand_user_id:
            raise ConfigError(
                [
                    f"sources.x.user_id: is {brand_user_id}, but X_ACCESS_TOKEN belongs to"
                    f" @{(me or {}).get('username')} (id {me_id}); replies would come from the"
                    " wrong account. Generate the access token while logged in as the brand"
                    " account, or fix user_id."
                ]
            )
        who = who or f"@{(me or {}).get('username')} ({me_id})"
    return who


def _check_call(call: Callable[[], Any], *, rejected: str) -> dict[str, Any] | None:
    """The `data` object of one X call, None if X answered without one."""
    try:
        response = call()
    except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
        raise CredentialRejected(f"{rejected} ({_describe(exc)})") from None
    except (tweepy.TweepyException, requests.RequestException) as exc:
        raise DependencyUnreachable(f"cannot check X ({_describe(exc)})") from None
    try:
        body = response.json()
    except ValueError:
        raise DependencyUnreachable("X answered with something that is not JSON") from None
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else None


def _reset_in(exc: tweepy.HTTPException) -> float | None:
    """Seconds until X's rate-limit window resets (`x-rate-limit-reset`, epoch seconds)."""
    reset = getattr(exc.response, "headers", {}).get("x-rate-limit-reset")
    try:
        return max(1.0, float(reset) - time.time()) if reset else None
    except ValueError:
        return None
