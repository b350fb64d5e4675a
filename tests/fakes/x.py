"""A fake X (Twitter) API v2 server for tests, driven through the real ``tweepy.Client``.

It listens on 127.0.0.1 with an ephemeral port in a background thread, keeps a tiny world of
users and tweets, records every call and answers with X's real JSON shapes::

    with start_fake_x() as fake:
        fake.add_user("200", "jane", "Jane")
        tweet_id = fake.add_tweet("200", "@AcmeAir my bag is lost", mentions_user="100")
        client = tweepy.Client(bearer_token="test-bearer", return_type=requests.Response)
        client.session = redirect_session(fake.url)
        response = client.get_users_mentions(fake.brand_user_id, expansions="author_id")
        assert response.json()["data"][0]["id"] == tweet_id

How tweepy talks to it (tweepy 4.17):

* ``Client.request`` hard-codes ``https://api.twitter.com``; ``redirect_session()`` returns a
  ``requests.Session`` that rewrites that prefix to the fake. The OAuth1 signature is computed
  over the rewritten URL (the fake does not verify signatures, only that they are OAuth1).
* tweepy never passes ``timeout=`` to requests: without a session default a hung X hangs the
  bot forever. ``redirect_session`` applies a default timeout.
* List params (``expansions=["author_id"]``) are sent comma-joined; the fake splits them.
* Error messages: tweepy builds ``str(exc)`` from ``errors[].message`` and, when there are none,
  from the top-level ``detail`` (so a 403 duplicate reads "403 Forbidden\\nYou are not allowed to
  create a Tweet with duplicate content.").
* For OAuth1 user context tweepy derives the user id from the access token's prefix before the
  first "-" (``"100-abc"`` -> ``"100"``) for ``get_users_mentions`` etc.; the fake's brand user is
  ``fake.brand_user_id`` regardless of the token.

Not modelled: weighted tweet length, edits, deletions via the API, OR/parentheses in queries,
start_time/end_time/until_id filters (accepted, ignored), the 7-day window of recent search.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from tests.fakes.base import LoopbackFake, QuietHandler

__all__ = [
    "X_HOST",
    "Call",
    "CannedResponse",
    "FakeX",
    "FakeXTimeout",
    "fake_x",
    "redirect_session",
    "start_fake_x",
    "x_error",
]

X_HOST = "https://api.twitter.com"

Body = dict[str, Any] | list[Any] | str | bytes
BeforeHook = Callable[[dict[str, Any]], None]
AfterHook = Callable[[dict[str, Any]], None]

#: First tweet id handed out; real snowflakes are 19 digits, so all ids have the same length.
FIRST_TWEET_ID = 1_853_000_000_000_000_001
#: created_at of the first tweet when none is given; each later tweet is one minute younger.
EPOCH = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WINDOW_SECONDS = 15 * 60

#: Query params each GET route accepts (tweepy's endpoint_parameters); others are a 400 on X.
_TIMELINE_PARAMS = frozenset(
    {
        "end_time",
        "expansions",
        "max_results",
        "media.fields",
        "pagination_token",
        "place.fields",
        "poll.fields",
        "since_id",
        "start_time",
        "tweet.fields",
        "until_id",
        "user.fields",
    }
)
_SEARCH_PARAMS = (_TIMELINE_PARAMS - {"pagination_token"}) | {"next_token", "query", "sort_order"}
_USER_PARAMS = frozenset({"expansions", "tweet.fields", "user.fields"})

#: Default x-rate-limit-limit per 15-minute window, by route.
_DEFAULT_LIMITS = {"mentions": 450, "search": 450, "tweets": 1500, "user": 300, "me": 75}

_OPTIONAL_USER_FIELDS = (
    "created_at",
    "description",
    "location",
    "profile_image_url",
    "protected",
    "public_metrics",
    "url",
    "verified",
)


class FakeXTimeout(AssertionError):
    """wait_for() gave up before enough calls arrived."""


@dataclass(frozen=True)
class Call:
    """One request the fake received. ``headers`` has lower-cased keys; ``json`` is the parsed
    body (``None`` without one); ``query`` maps each query param to its (last) value."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class CannedResponse:
    status: int = 200
    body: Body | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _Hang(Exception):
    """Internal: do not answer this request."""


@dataclass
class _Bucket:
    limit: int
    remaining: int
    reset: int


def x_error(status: int, detail: str | None = None, title: str | None = None) -> dict[str, Any]:
    """X's problem body: ``{"title", "detail", "type": "about:blank", "status"}``."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {
        "title": title or phrase,
        "detail": detail or phrase,
        "type": "about:blank",
        "status": status,
    }


def _invalid_request(param: str, value: str, message: str) -> CannedResponse:
    return CannedResponse(
        400,
        {
            "errors": [{"parameters": {param: [value]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
    )


def _user_not_found(user_id: str, param: str = "id") -> CannedResponse:
    return CannedResponse(
        200,
        {
            "errors": [
                {
                    "value": user_id,
                    "detail": f"Could not find user with {param}: [{user_id}].",
                    "title": "Not Found Error",
                    "resource_type": "user",
                    "parameter": param,
                    "resource_id": user_id,
                    "type": "https://api.twitter.com/2/problems/resource-not-found",
                }
            ]
        },
    )


def _split(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}


def _prefix_matches(path: str, prefix: str) -> bool:
    """Segment-aware prefix: "/2/users/1" matches "/2/users/1/mentions", not "/2/users/10"."""
    prefix = prefix.rstrip("/") or "/"
    return path == prefix or path.startswith(prefix + "/") or prefix == "/"


def _iso(value: datetime) -> str:
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


# --------------------------------------------------------------------------- search queries

_TOKEN_RE = re.compile(r'(-?)(?:"([^"]*)"|(\S+))')


@dataclass(frozen=True)
class _Term:
    negated: bool
    kind: str  # "text", "is", "from", "to", "lang"
    value: str


def _parse_query(query: str) -> list[_Term]:
    terms: list[_Term] = []
    for match in _TOKEN_RE.finditer(query):
        negated = match.group(1) == "-"
        phrase, word = match.group(2), match.group(3)
        if phrase is not None:
            terms.append(_Term(negated, "text", phrase.lower()))
            continue
        operator, colon, value = word.partition(":")
        if colon and operator.lower() in ("is", "from", "to", "lang") and value:
            terms.append(_Term(negated, operator.lower(), value.lower()))
        elif word.upper() != "OR" and word not in ("(", ")"):
            terms.append(_Term(negated, "text", word.lower()))
    return terms


# --------------------------------------------------------------------------- the HTTP layer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    fake: FakeX

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that vanished mid-request is a normal event in crash tests


class _RequestHandler(QuietHandler):
    server: _Server

    def do_DELETE(self) -> None:
        self.handle_request("DELETE")

    def handle_request(self, method: str) -> None:
        raw = self.read_body()
        headers = self.lower_headers()
        try:
            canned = self.server.fake._dispatch(method, self.path, headers, raw, self.connection)
        except _Hang:
            self.close_connection = True
            return
        except Exception as exc:  # a bug in the fake or a hook: make it loud, not a hang
            canned = CannedResponse(500, x_error(500, f"fake_x_error: {exc!r}"))
        with contextlib.suppress(OSError):  # BrokenPipe/ConnectionReset: the client went away
            self._send(canned)

    def _send(self, canned: CannedResponse) -> None:
        self.send_body(canned.status, canned.body, canned.headers)


def _client_gone(sock: socket.socket, grace: float) -> bool:
    """True when the peer closed the connection (EOF or reset) within ``grace`` seconds."""
    try:
        readable, _, _ = select.select([sock], [], [], grace)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


# --------------------------------------------------------------------------- the fake


class FakeX(LoopbackFake):
    """Fake X API v2 on 127.0.0.1:<ephemeral>: mentions, recent search, user timelines, users,
    and POST /2/tweets as the brand user (``brand_user_id``)."""

    def __init__(
        self,
        brand_user_id: str = "100",
        brand_username: str = "AcmeAir",
        brand_name: str = "Acme Air",
    ) -> None:
        self._init_serving(threading.RLock())
        self._calls: list[Call] = []
        self._queued: deque[tuple[str, str, CannedResponse]] = deque()
        self._hangs: deque[tuple[str, str, bool]] = deque()
        self._limits: dict[tuple[str, str], _Bucket] = {}
        self._default_buckets: dict[str, _Bucket] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._tweets: dict[str, dict[str, Any]] = {}
        self._posted: list[str] = []
        self._ids = itertools.count(FIRST_TWEET_ID)
        self._seq = itertools.count(0)
        self._before: BeforeHook | None = None
        self._after: AfterHook | None = None
        #: The user POST /2/tweets and GET /2/users/me act as. Assignable.
        self.brand_user_id = brand_user_id
        #: Seconds to wait, after a before-hook ran, for a killed client's FIN to arrive.
        self.disconnect_grace = 0.05
        self.add_user(brand_user_id, brand_username, brand_name, followers=12_000, verified=True)

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """Base URL without a trailing slash: ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------- world state

    def add_user(
        self,
        id: str,
        username: str,
        name: str = "",
        followers: int = 0,
        verified: bool = False,
    ) -> dict[str, Any]:
        """Add (or replace) a user; returns a copy of X's full user object."""
        user = {
            "id": str(id),
            "name": name or username,
            "username": username,
            "verified": verified,
            "created_at": "2015-03-01T12:00:00.000Z",
            "description": "",
            "protected": False,
            "public_metrics": {
                "followers_count": followers,
                "following_count": 0,
                "tweet_count": 0,
                "listed_count": 0,
            },
        }
        with self._lock:
            self._users[str(id)] = user
            return self._render_user(str(id), set(_OPTIONAL_USER_FIELDS))

    def user(self, user_id: str) -> dict[str, Any]:
        with self._lock:
            return self._render_user(str(user_id), set(_OPTIONAL_USER_FIELDS))

    def add_tweet(
        self,
        author_id: str,
        text: str,
        *,
        mentions_user: str | None = None,
        in_reply_to: str | None = None,
        retweet_of: str | None = None,
        quote_of: str | None = None,
        conversation_id: str | None = None,
        created_at: str | datetime | None = None,
        lang: str = "en",
    ) -> str:
        """Add a tweet and return its id (decimal string, increasing).

        ``mentions_user`` puts it in that user's mentions timeline. A reply (``in_reply_to``)
        also mentions the parent's author and inherits its conversation_id; a retweet inherits
        the original's mentions plus its author (an empty ``text`` becomes "RT @user: ...").
        Unknown authors are created on the fly as ``user<id>``.
        """
        with self._lock:
            return self._create_tweet(
                str(author_id),
                text,
                mentions=[mentions_user] if mentions_user else [],
                in_reply_to=in_reply_to,
                retweet_of=retweet_of,
                quote_of=quote_of,
                conversation_id=conversation_id,
                created_at=created_at,
                lang=lang,
            )

    def remove_tweet(self, tweet_id: str) -> None:
        """Delete a tweet (e.g. the customer deleted it before we replied)."""
        with self._lock:
            self._tweets.pop(str(tweet_id), None)

    def tweet(self, tweet_id: str) -> dict[str, Any] | None:
        with self._lock:
            stored = self._tweets.get(str(tweet_id))
            return None if stored is None else self._render_tweet(stored)

    def tweets_by(self, author_id: str) -> list[dict[str, Any]]:
        """The author's tweets, oldest first (X's public tweet objects)."""
        with self._lock:
            return [
                self._render_tweet(t)
                for t in self._sorted(oldest_first=True)
                if t["author_id"] == str(author_id)
            ]

    def replies_to(self, tweet_id: str) -> list[dict[str, Any]]:
        """Tweets replying directly to ``tweet_id``, oldest first."""
        with self._lock:
            return [
                self._render_tweet(t)
                for t in self._sorted(oldest_first=True)
                if t.get("_replied_to") == str(tweet_id)
            ]

    def posted(self) -> list[dict[str, Any]]:
        """Tweets created through POST /2/tweets, in creation order."""
        with self._lock:
            return [self._render_tweet(self._tweets[i]) for i in self._posted if i in self._tweets]

    # ----------------------------------------------------------------- recording

    @property
    def calls(self) -> list[Call]:
        """Snapshot of every call received so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, path_prefix: str) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self._calls
                if c.method == method.upper() and _prefix_matches(c.path, path_prefix)
            ]

    def wait_for(
        self, method: str, path_prefix: str, count: int = 1, timeout: float = 5.0
    ) -> list[Call]:
        """Block until at least ``count`` matching calls arrived; return calls_to(...)."""

        def arrived() -> bool:
            return len(self.calls_to(method, path_prefix)) >= count

        with self._changed:
            if not self._changed.wait_for(arrived, timeout=timeout):
                seen = [f"{c.method} {c.path}" for c in self._calls]
                raise FakeXTimeout(
                    f"timed out after {timeout}s waiting for {count} call(s) to "
                    f"{method} {path_prefix}; received: {seen}"
                )
        return self.calls_to(method, path_prefix)

    def clear(self) -> None:
        """Forget recorded calls (state, queued responses and limits stay)."""
        with self._lock:
            self._calls.clear()

    # ----------------------------------------------------------------- scripting

    def queue(
        self,
        method: str,
        path_prefix: str,
        status: int,
        body: Body | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next matching request with this response (FIFO, one-shot each).

        ``body`` defaults to X's problem JSON for errors (``x_error(status)``), to
        ``{"meta": {"result_count": 0}}`` for a 2xx GET and ``{}`` otherwise. GETs still carry
        rate-limit headers unless ``headers`` overrides them. The request has no other effect.
        """
        if body is None:
            if status >= 400:
                body = x_error(status)
            else:
                body = {"meta": {"result_count": 0}} if method.upper() == "GET" else {}
        canned = CannedResponse(status, body, dict(headers or {}))
        with self._lock:
            self._queued.append((method.upper(), path_prefix, canned))

    def hang_next(self, method: str, path_prefix: str, *, after_processing: bool = False) -> None:
        """Never answer the next matching request (its thread blocks until stop()).

        With ``after_processing=True`` the request takes effect first (a POST creates its
        tweet) and only the response is lost: the "X accepted it but we timed out" case.
        """
        with self._lock:
            self._hangs.append((method.upper(), path_prefix, after_processing))

    def set_rate_limit(
        self,
        path_prefix: str,
        remaining: int,
        reset: int | float | None = None,
        *,
        limit: int | None = None,
        method: str = "GET",
    ) -> None:
        """Set the rate-limit window for requests under ``path_prefix`` (longest prefix wins).

        Each request consumes one; once ``remaining`` is 0 the next one gets a 429 with
        ``x-rate-limit-remaining: 0`` and ``x-rate-limit-reset``. ``reset`` is epoch seconds
        (default: 15 minutes from now); after it passes the window refills to ``limit``.
        Only GETs are limited unless ``method="POST"`` is given for a POST route.
        """
        reset_at = int(reset) if reset is not None else int(time.time()) + WINDOW_SECONDS
        bucket = _Bucket(limit if limit is not None else max(remaining, 1), remaining, reset_at)
        with self._lock:
            self._limits[(method.upper(), path_prefix)] = bucket

    def on_post_tweet(
        self, before: BeforeHook | None = None, after: AfterHook | None = None
    ) -> None:
        """Hooks for POST /2/tweets, run on the server thread (``None`` clears one).

        ``before(body)`` runs before the tweet exists. If it raises, or if the client has
        disconnected by the time it returns (e.g. the hook killed the client process), no tweet
        is created and no response is sent. ``after(tweet)`` runs once the tweet exists, before
        the response; if it raises or the client is gone the tweet stays, unanswered.
        """
        with self._lock:
            self._before, self._after = before, after

    # ----------------------------------------------------------------- serving

    def _dispatch(
        self,
        method: str,
        raw_path: str,
        headers: dict[str, str],
        raw: bytes,
        sock: socket.socket,
    ) -> CannedResponse:
        parts = urlsplit(raw_path)
        path = unquote(parts.path).rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")

        with self._changed:
            self._calls.append(Call(method, path, query, body, headers))
            self._changed.notify_all()
            hang = self._take_hang(method, path)
            canned = self._take_queued(method, path)

        if hang is not None and not hang:
            self._hang()
        if canned is not None:
            if method == "GET" and not any(
                k.lower().startswith("x-rate-limit") for k in canned.headers
            ):
                with self._lock:
                    canned = CannedResponse(
                        canned.status,
                        canned.body,
                        {**self._consume(method, path)[1], **canned.headers},
                    )
            return canned

        response = self._route(method, path, query, body, headers, sock)
        if hang:
            self._hang()
        return response

    def _hang(self) -> None:
        self._stopping.wait()
        raise _Hang

    def _take_hang(self, method: str, path: str) -> bool | None:
        for entry in self._hangs:
            if entry[0] == method and _prefix_matches(path, entry[1]):
                self._hangs.remove(entry)
                return entry[2]
        return None

    def _take_queued(self, method: str, path: str) -> CannedResponse | None:
        for entry in self._queued:
            if entry[0] == method and _prefix_matches(path, entry[1]):
                self._queued.remove(entry)
                return entry[2]
        return None

    def _consume(self, method: str, path: str) -> tuple[bool, dict[str, str]]:
        """Take one request from the window; (allowed, rate-limit headers). Lock held."""
        configured = [
            (prefix, bucket)
            for (m, prefix), bucket in self._limits.items()
            if m == method and _prefix_matches(path, prefix)
        ]
        if configured:
            bucket = max(configured, key=lambda item: len(item[0]))[1]
        elif method == "GET":
            bucket = self._default_buckets.setdefault(path, self._new_bucket(path))
        else:
            return True, {}
        now = int(time.time())
        if now >= bucket.reset:
            bucket.remaining, bucket.reset = bucket.limit, now + WINDOW_SECONDS
        allowed = bucket.remaining > 0
        if allowed:
            bucket.remaining -= 1
        return allowed, {
            "x-rate-limit-limit": str(bucket.limit),
            "x-rate-limit-remaining": str(bucket.remaining),
            "x-rate-limit-reset": str(bucket.reset),
        }

    @staticmethod
    def _new_bucket(path: str) -> _Bucket:
        if path.endswith("/mentions"):
            limit = _DEFAULT_LIMITS["mentions"]
        elif path.startswith("/2/tweets/search"):
            limit = _DEFAULT_LIMITS["search"]
        elif path.endswith("/tweets"):
            limit = _DEFAULT_LIMITS["tweets"]
        elif path == "/2/users/me":
            limit = _DEFAULT_LIMITS["me"]
        else:
            limit = _DEFAULT_LIMITS["user"]
        return _Bucket(limit, limit, int(time.time()) + WINDOW_SECONDS)

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
        headers: dict[str, str],
        sock: socket.socket,
    ) -> CannedResponse:
        auth = headers.get("authorization", "")
        scheme, _, credentials = auth.partition(" ")
        is_oauth1 = scheme == "OAuth" and "oauth_consumer_key" in credentials
        is_bearer = scheme == "Bearer" and credentials.strip() not in ("", "None")
        if not (is_oauth1 or is_bearer):
            return CannedResponse(401, x_error(401))

        if method == "POST" and path == "/2/tweets":
            with self._lock:
                allowed, limit_headers = self._consume(method, path)
            if not allowed:
                return CannedResponse(429, x_error(429), limit_headers)
            if not is_oauth1:
                return CannedResponse(
                    403,
                    {
                        "title": "Unsupported Authentication",
                        "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden "
                        "for this endpoint.  Supported authentication types are "
                        "[OAuth 1.0a User Context, OAuth 2.0 User Context].",
                        "type": "https://api.twitter.com/2/problems/unsupported-authentication",
                        "status": 403,
                    },
                    limit_headers,
                )
            response = self._post_tweet(body if isinstance(body, dict) else {}, sock)
            return CannedResponse(response.status, response.body, limit_headers)

        if method != "GET":
            return CannedResponse(404, x_error(404, "Sorry, that page does not exist."))

        with self._lock:
            allowed, limit_headers = self._consume(method, path)
            if not allowed:
                return CannedResponse(429, x_error(429), limit_headers)
            response = self._get(path, query)
        return CannedResponse(response.status, response.body, {**limit_headers, **response.headers})

    # ----------------------------------------------------------------- POST /2/tweets

    def _post_tweet(self, body: dict[str, Any], sock: socket.socket) -> CannedResponse:
        with self._lock:
            before, after = self._before, self._after
        if before is not None:
            try:
                before(body)
            except Exception as exc:
                raise _Hang from exc
            if _client_gone(sock, self.disconnect_grace):
                raise _Hang

        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _invalid_request(
                "text", str(text), "Tweet text is required unless media or a poll is attached."
            )
        reply: dict[str, Any] = body["reply"] if isinstance(body.get("reply"), dict) else {}
        parent_id = (
            str(reply["in_reply_to_tweet_id"]) if reply.get("in_reply_to_tweet_id") else None
        )
        quote_id = str(body["quote_tweet_id"]) if body.get("quote_tweet_id") else None

        with self._lock:
            brand = self.brand_user_id
            if any(t["author_id"] == brand and t["text"] == text for t in self._tweets.values()):
                return CannedResponse(
                    403,
                    {
                        "detail": "You are not allowed to create a Tweet with duplicate content.",
                        "type": "about:blank",
                        "title": "Forbidden",
                        "status": 403,
                    },
                )
            if parent_id is not None and parent_id not in self._tweets:
                return CannedResponse(
                    403,
                    x_error(
                        403,
                        "You attempted to reply to a Tweet that is deleted or not visible to you.",
                        "Forbidden",
                    ),
                )
            tweet_id = self._create_tweet(
                brand,
                text,
                mentions=[],
                in_reply_to=parent_id,
                quote_of=quote_id,
            )
            self._posted.append(tweet_id)
            tweet = self._render_tweet(self._tweets[tweet_id])

        if after is not None:
            try:
                after(tweet)
            except Exception as exc:
                raise _Hang from exc
        if _client_gone(sock, 0):
            raise _Hang
        return CannedResponse(
            201, {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}}
        )

    # ----------------------------------------------------------------- GET routes (lock held)

    def _get(self, path: str, query: dict[str, str]) -> CannedResponse:
        segments = path.strip("/").split("/")
        if path == "/2/tweets/search/recent":
            return self._search(query)
        if path == "/2/users/me":
            return self._user_lookup(self.brand_user_id, query, "id")
        if (
            len(segments) == 5
            and segments[:3] == ["2", "users", "by"]
            and segments[3] == "username"
        ):
            by_name = {u["username"].lower(): uid for uid, u in self._users.items()}
            uid = by_name.get(segments[4].lower())
            if uid is None:
                return self._check_params(query, _USER_PARAMS) or _user_not_found(
                    segments[4], "username"
                )
            return self._user_lookup(uid, query, "username")
        if len(segments) == 3 and segments[:2] == ["2", "users"]:
            return self._user_lookup(segments[2], query, "id")
        if len(segments) == 4 and segments[:2] == ["2", "users"]:
            user_id, kind = segments[2], segments[3]
            if kind == "mentions":
                return self._timeline(
                    query,
                    _TIMELINE_PARAMS,
                    "pagination_token",
                    5,
                    lambda t: user_id in t["_mentions"],
                    user_id,
                )
            if kind == "tweets":
                return self._timeline(
                    query,
                    _TIMELINE_PARAMS | {"exclude"},
                    "pagination_token",
                    5,
                    self._timeline_filter(user_id, query.get("exclude")),
                    user_id,
                )
        return CannedResponse(404, x_error(404, "Sorry, that page does not exist."))

    def _timeline_filter(
        self, user_id: str, exclude: str | None
    ) -> Callable[[dict[str, Any]], bool]:
        excluded = _split(exclude)

        def keep(tweet: dict[str, Any]) -> bool:
            if tweet["author_id"] != user_id:
                return False
            kinds = {ref["type"] for ref in tweet.get("referenced_tweets", [])}
            if "retweets" in excluded and "retweeted" in kinds:
                return False
            return not ("replies" in excluded and "replied_to" in kinds)

        return keep

    def _user_lookup(self, user_id: str, query: dict[str, str], param: str) -> CannedResponse:
        invalid = self._check_params(query, _USER_PARAMS)
        if invalid is not None:
            return invalid
        if user_id not in self._users:
            if user_id == self.brand_user_id:
                return CannedResponse(200, {"data": {"id": user_id, "name": "", "username": ""}})
            return _user_not_found(user_id, param)
        return CannedResponse(
            200, {"data": self._render_user(user_id, _split(query.get("user.fields")))}
        )

    def _search(self, query: dict[str, str]) -> CannedResponse:
        text = query.get("query", "")
        if not text.strip():
            return _invalid_request("query", text, "The `query` query parameter can not be empty")
        terms = _parse_query(text)
        return self._timeline(
            query, _SEARCH_PARAMS, "next_token", 10, lambda t: self._matches(t, terms), None
        )

    def _matches(self, tweet: dict[str, Any], terms: list[_Term]) -> bool:
        body = tweet["text"].lower()
        kinds = {ref["type"] for ref in tweet.get("referenced_tweets", [])}
        author = self._users.get(tweet["author_id"], {}).get("username", "").lower()
        replied_to = self._users.get(tweet.get("in_reply_to_user_id") or "", {})
        for term in terms:
            if term.kind == "text":
                hit = term.value in body
            elif term.kind == "from":
                hit = term.value.lstrip("@") in (author, tweet["author_id"])
            elif term.kind == "to":
                hit = term.value.lstrip("@") in (
                    replied_to.get("username", "").lower(),
                    tweet.get("in_reply_to_user_id"),
                )
            elif term.kind == "lang":
                hit = tweet["lang"] == term.value
            else:  # is:
                hit = {
                    "retweet": "retweeted" in kinds,
                    "reply": "replied_to" in kinds,
                    "quote": "quoted" in kinds,
                    "verified": bool(self._users.get(tweet["author_id"], {}).get("verified")),
                }.get(term.value, True)
            if hit == term.negated:
                return False
        return True

    def _check_params(
        self, query: dict[str, str], allowed: frozenset[str]
    ) -> CannedResponse | None:
        for name, value in query.items():
            if name not in allowed:
                return _invalid_request(
                    name,
                    value,
                    f"The query parameter [{name}] is not one of [{','.join(sorted(allowed))}]",
                )
        return None

    def _timeline(
        self,
        query: dict[str, str],
        allowed: frozenset[str],
        token_param: str,
        min_results: int,
        keep: Callable[[dict[str, Any]], bool],
        user_id: str | None,
    ) -> CannedResponse:
        invalid = self._check_params(query, allowed)
        if invalid is not None:
            return invalid
        if user_id is not None and user_id not in self._users:
            return _user_not_found(user_id)

        raw_max = query.get("max_results", "10")
        if not raw_max.isdigit() or not min_results <= int(raw_max) <= 100:
            return _invalid_request(
                "max_results",
                raw_max,
                f"The `max_results` query parameter value [{raw_max}] is not between "
                f"{min_results} and 100",
            )
        max_results = int(raw_max)

        since_id = query.get("since_id")
        if since_id is not None and not since_id.isdigit():
            return _invalid_request(
                "since_id",
                since_id,
                f"The `since_id` query parameter value [{since_id}] is not valid",
            )
        until_id: int | None = None
        token = query.get(token_param)
        if token is not None:
            until_id = _decode_token(token)
            if until_id is None:
                return _invalid_request(
                    token_param,
                    token,
                    f"The `{token_param}` query parameter value [{token}] is not valid",
                )

        matches = [
            t
            for t in self._sorted(oldest_first=False)
            if keep(t)
            and (since_id is None or int(t["id"]) > int(since_id))
            and (until_id is None or int(t["id"]) < until_id)
        ]
        page = matches[:max_results]
        if not page:
            return CannedResponse(200, {"meta": {"result_count": 0}})

        tweets = [self._render_tweet(t) for t in page]
        payload: dict[str, Any] = {"data": tweets}
        includes = self._includes(tweets, query)
        if includes:
            payload["includes"] = includes
        meta: dict[str, Any] = {
            "newest_id": page[0]["id"],
            "oldest_id": page[-1]["id"],
            "result_count": len(page),
        }
        if len(matches) > max_results:
            meta["next_token"] = _encode_token(int(page[-1]["id"]))
        payload["meta"] = meta
        return CannedResponse(200, payload)

    def _includes(self, tweets: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        expansions = _split(query.get("expansions"))
        user_fields = _split(query.get("user.fields"))
        user_ids: list[str] = []
        ref_tweets: list[dict[str, Any]] = []

        def want_user(uid: str | None) -> None:
            if uid and uid in self._users and uid not in user_ids:
                user_ids.append(uid)

        for tweet in tweets:
            if "author_id" in expansions:
                want_user(tweet["author_id"])
            if "in_reply_to_user_id" in expansions:
                want_user(tweet.get("in_reply_to_user_id"))
            if "entities.mentions.username" in expansions:
                for mention in tweet.get("entities", {}).get("mentions", []):
                    want_user(mention["id"])
            if expansions & {"referenced_tweets.id", "referenced_tweets.id.author_id"}:
                for ref in tweet.get("referenced_tweets", []):
                    stored = self._tweets.get(ref["id"])
                    if stored is None or any(r["id"] == ref["id"] for r in ref_tweets):
                        continue
                    ref_tweets.append(self._render_tweet(stored))
                    if "referenced_tweets.id.author_id" in expansions:
                        want_user(stored["author_id"])
        includes: dict[str, Any] = {}
        if user_ids:
            includes["users"] = [self._render_user(uid, user_fields) for uid in user_ids]
        if ref_tweets and "referenced_tweets.id" in expansions:
            includes["tweets"] = ref_tweets
        return includes

    # ----------------------------------------------------------------- storage (lock held)

    def _sorted(self, *, oldest_first: bool) -> list[dict[str, Any]]:
        return sorted(self._tweets.values(), key=lambda t: int(t["id"]), reverse=not oldest_first)

    def _ensure_user(self, user_id: str) -> dict[str, Any]:
        if user_id not in self._users:
            self.add_user(user_id, f"user{user_id}")
        return self._users[user_id]

    def _create_tweet(
        self,
        author_id: str,
        text: str,
        *,
        mentions: list[str],
        in_reply_to: str | None = None,
        retweet_of: str | None = None,
        quote_of: str | None = None,
        conversation_id: str | None = None,
        created_at: str | datetime | None = None,
        lang: str = "en",
    ) -> str:
        author = self._ensure_user(author_id)
        tweet_id = str(next(self._ids))
        seq = next(self._seq)
        if created_at is None:
            created = _iso(EPOCH + timedelta(minutes=seq))
        elif isinstance(created_at, datetime):
            created = _iso(created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC))
        else:
            created = created_at
        mention_ids = [str(m) for m in mentions]
        for m in mention_ids:
            self._ensure_user(m)
        refs: list[dict[str, str]] = []
        tweet: dict[str, Any] = {
            "id": tweet_id,
            "text": text,
            "author_id": author_id,
            "created_at": created,
            "conversation_id": str(conversation_id) if conversation_id else tweet_id,
            "lang": lang,
        }
        if in_reply_to is not None:
            parent = self._tweets.get(str(in_reply_to))
            refs.append({"type": "replied_to", "id": str(in_reply_to)})
            tweet["_replied_to"] = str(in_reply_to)
            if parent is not None:
                tweet["in_reply_to_user_id"] = parent["author_id"]
                if conversation_id is None:
                    tweet["conversation_id"] = parent["conversation_id"]
                if parent["author_id"] != author_id:
                    mention_ids.append(parent["author_id"])
        if retweet_of is not None:
            original = self._tweets.get(str(retweet_of))
            refs.append({"type": "retweeted", "id": str(retweet_of)})
            if original is not None:
                orig_author = self._users[original["author_id"]]["username"]
                if not text:
                    tweet["text"] = f"RT @{orig_author}: {original['text']}"
                mention_ids.extend([original["author_id"], *original["_mentions"]])
        if quote_of is not None:
            refs.append({"type": "quoted", "id": str(quote_of)})
        if refs:
            tweet["referenced_tweets"] = refs
        tweet["_mentions"] = list(dict.fromkeys(m for m in mention_ids if m != author_id))
        self._tweets[tweet_id] = tweet
        author["public_metrics"]["tweet_count"] += 1
        return tweet_id

    def _render_tweet(self, stored: dict[str, Any]) -> dict[str, Any]:
        tweet = {k: v for k, v in stored.items() if not k.startswith("_")}
        if "referenced_tweets" in tweet:
            tweet["referenced_tweets"] = [dict(ref) for ref in tweet["referenced_tweets"]]
        tweet["edit_history_tweet_ids"] = [stored["id"]]
        mentions = []
        lowered = stored["text"].lower()
        for uid in stored["_mentions"]:
            username = self._users.get(uid, {}).get("username", "")
            start = lowered.find("@" + username.lower()) if username else -1
            if start >= 0:
                end = start + len(username) + 1
                mentions.append({"start": start, "end": end, "username": username, "id": uid})
        if mentions:
            tweet["entities"] = {"mentions": sorted(mentions, key=lambda m: m["start"])}
        return tweet

    def _render_user(self, user_id: str, fields: Iterable[str]) -> dict[str, Any]:
        user = self._users[user_id]
        out = {"id": user["id"], "name": user["name"], "username": user["username"]}
        for name in _OPTIONAL_USER_FIELDS:
            if name in fields and name in user:
                value = user[name]
                out[name] = dict(value) if isinstance(value, dict) else value
        return out


def _encode_token(oldest_id: int) -> str:
    return "7140dibd" + format(oldest_id, "x")


def _decode_token(token: str) -> int | None:
    if not token.startswith("7140dibd"):
        return None
    try:
        return int(token[len("7140dibd") :], 16)
    except ValueError:
        return None


# --------------------------------------------------------------------------- client side


class _RedirectSession(requests.Session):
    def __init__(self, base_url: str, timeout: float | tuple[float, float] | None) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.default_timeout = timeout

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if isinstance(url, bytes):
            url = url.decode()
        if url.startswith(X_HOST):
            url = self.base_url + url[len(X_HOST) :]
        if kwargs.get("timeout") is None and self.default_timeout is not None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


def redirect_session(
    base_url: str, timeout: float | tuple[float, float] | None = 10.0
) -> requests.Session:
    """A Session for ``tweepy.Client.session`` that sends ``https://api.twitter.com/...`` to
    ``base_url`` instead, with a default ``timeout`` (tweepy never passes one itself).

    Proxy environment variables are ignored for loopback bases so a CI proxy can't swallow them.
    """
    session = _RedirectSession(base_url, timeout)
    host = urlsplit(base_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        session.trust_env = False
    return session


def start_fake_x(brand_user_id: str = "100", brand_username: str = "AcmeAir") -> FakeX:
    """Start a FakeX on an ephemeral port; call ``.stop()`` (or use ``with``) when done."""
    return FakeX(brand_user_id, brand_username).start()


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    """A running FakeX, stopped after the test. Import into a conftest to share it."""
    fake = start_fake_x()
    try:
        yield fake
    finally:
        fake.stop()


FakeX.server_class = _Server
FakeX.handler_class = _RequestHandler
