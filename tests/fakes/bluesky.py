"""A fake Bluesky XRPC service (PDS and AppView in one) for tests, driven through the real
``atproto.Client``.

It listens on 127.0.0.1 with an ephemeral port in a background thread, keeps a tiny world of
accounts, posts and the brand's notifications, records every call and answers with the
shapes of the lexicons (so the SDK's pydantic models accept them)::

    with start_fake_bluesky() as fake:
        fake.add_user("maya.bsky.social", "Maya Okafor", followers=812)
        uri = fake.add_post("maya.bsky.social", "@acmeair.bsky.social my bag is lost")
        client = atproto.Client(base_url=fake.url)
        client.login(fake.brand_handle, fake.app_password)
        page = client.app.bsky.notification.list_notifications()
        assert page.notifications[0].uri == uri

What it models, as the reference PDS and AppView behave:

* Sessions: ``createSession`` (the brand's handle or DID and ``app_password``; a wrong one is
  401 ``AuthenticationRequired: Invalid identifier or password``; more than
  ``session_limit`` attempts in 5 minutes is 429), ``refreshSession`` (rotates both tokens),
  ``getSession``. Tokens are JWTs whose ``exp`` the SDK reads to refresh in time;
  ``revoke_sessions()`` makes the server refuse them (400 ``ExpiredToken``).
* Reads: ``listNotifications`` (newest first, keyset cursor on every non-empty page,
  ``reasons`` filter), ``searchPosts`` (words and "phrases", ``since``/``until`` on
  indexedAt), ``getPosts`` (deleted posts are left out), ``getProfile(s)``,
  ``resolveHandle``, ``getRecord`` (400 ``RecordNotFound``).
* ``createRecord`` in the brand's repo: honours ``rkey`` (a post's key must be a TID), checks
  the record (300 graphemes, strong refs, facet byte ranges), and answers a key already taken
  as the reference PDS does today: 500 ``InternalServerError`` (``duplicate_answer`` sets
  another, e.g. the proposed 409 ``RecordAlreadyExists``).
* Every answer has ``ratelimit-*`` headers (3000 per 5 minutes per method unless
  ``set_rate_limit`` says otherwise); ``queue()`` scripts the next answer of a method and
  ``hang_next()`` never answers (optionally after doing the work: the post is stored and the
  answer lost).

Not modelled: labels, embeds in views, threadgates, likes and reposts, other accounts' logins.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import regex

from tests.fakes.base import LoopbackFake, QuietHandler

__all__ = [
    "Call",
    "CannedResponse",
    "FakeBluesky",
    "fake_bluesky",
    "start_fake_bluesky",
    "tid",
    "xrpc_error",
]

EPOCH = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # the first post's time; later ones a minute apart
WINDOW = 300  # rate-limit window, seconds
DEFAULT_LIMIT = 3000
POST = "app.bsky.feed.post"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_ERROR_NAMES = {
    400: "InvalidRequest",
    401: "AuthenticationRequired",
    403: "Forbidden",
    404: "NotFound",
    429: "RateLimitExceeded",
    500: "InternalServerError",
    501: "MethodNotImplemented",
    502: "UpstreamFailure",
    503: "NotEnoughResources",
    504: "UpstreamTimeout",
}


def xrpc_error(status: int, error: str | None = None, message: str | None = None) -> dict[str, Any]:
    """An XRPC error body: ``{"error": name, "message": text}``."""
    name = error or _ERROR_NAMES.get(status, "InternalServerError")
    return {"error": name, "message": message or re.sub(r"(?<!^)(?=[A-Z])", " ", name)}


def tid(micros: int, clock_id: int = 0) -> str:
    """A TID: 53 bits of microseconds and a 10-bit clock id, base32-sortable."""
    value = (micros << 10) | (clock_id & 0x3FF)
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cid(data: object) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")[:52]


def _did_for(handle: str) -> str:
    digest = hashlib.sha256(handle.lower().encode()).digest()
    return "did:plc:" + base64.b32encode(digest).decode().lower()[:24]


def _jwt(payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    digest = hashlib.sha256(json.dumps(payload).encode()).digest()
    signature = base64.urlsafe_b64encode(digest).decode().rstrip("=")  # not checked by anyone
    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part(payload)}.{signature}"


@dataclass(frozen=True)
class Call:
    """One request: ``query`` maps each parameter to its values (repeated keys kept)."""

    method: str
    nsid: str
    query: dict[str, list[str]]
    json: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class CannedResponse:
    status: int = 200
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _Hang(Exception):
    """Internal: do not answer this request."""


@dataclass
class _Bucket:
    limit: int
    remaining: int
    reset: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeBluesky

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that timed out and left is a normal event here


class _Handler(QuietHandler):
    server: _Server

    def handle_request(self, method: str) -> None:
        raw = self.read_body()
        try:
            canned = self.server.fake._dispatch(method, self.path, self.lower_headers(), raw)
        except _Hang:
            self.close_connection = True
            return
        except Exception as exc:  # a bug in the fake: loud, not a hang
            canned = CannedResponse(500, xrpc_error(500, message=f"fake_bluesky: {exc!r}"))
        with contextlib.suppress(OSError):
            self.send_body(canned.status, canned.body, canned.headers)


class FakeBluesky(LoopbackFake):
    """Fake XRPC service on 127.0.0.1:<ephemeral>; the brand is ``brand_handle``."""

    def __init__(
        self,
        brand_handle: str = "acmeair.bsky.social",
        app_password: str = "fake-bsky-app-pass",
    ) -> None:
        self._init_serving(threading.RLock())
        self.brand_handle = brand_handle
        self.app_password = app_password
        #: Login attempts allowed per 5 minutes (Bluesky: 30), then 429.
        self.session_limit = 30
        #: Seconds an access token lives; under 15 minutes the SDK refreshes before each call.
        self.access_ttl = 2 * 3600
        #: Status, error and message for createRecord with a key already taken.
        self.duplicate_answer = (500, "InternalServerError", "Internal Server Error")
        self.sessions_created = 0
        self.refreshes = 0
        self._login_times: list[float] = []
        self._access: dict[str, str] = {}  # token -> did
        self._refresh: dict[str, str] = {}
        self._revoked: set[str] = set()
        self._issued: list[str] = []
        self._calls: list[Call] = []
        self._queued: deque[tuple[str, CannedResponse]] = deque()
        self._hangs: deque[tuple[str, bool]] = deque()
        self._buckets: dict[str, _Bucket] = {}
        self._users: dict[str, dict[str, Any]] = {}  # did -> account
        self._posts: dict[str, dict[str, Any]] = {}  # uri -> stored post
        self._notes: list[dict[str, Any]] = []  # the brand's notifications
        self._created: list[str] = []  # uris written through createRecord
        self._seq = itertools.count(1)
        self._minute = itertools.count(0)
        self.brand_did = self.add_user(brand_handle, "Acme Air", followers=12_000)

    @property
    def url(self) -> str:
        """Base URL without a trailing slash (the SDK appends /xrpc)."""
        return f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------- world state

    def add_user(
        self,
        handle: str,
        name: str = "",
        *,
        followers: int = 0,
        did: str | None = None,
        verified: bool = False,
    ) -> str:
        """Add (or replace) an account; returns its DID."""
        did = did or _did_for(handle)
        with self._lock:
            self._users[did] = {
                "did": did,
                "handle": handle,
                "displayName": name,
                "followers": followers,
                "verified": verified,
                "blocks_brand": False,
            }
        return did

    def did_of(self, actor: str) -> str:
        with self._lock:
            found = self._actor(actor)
            if found is None:
                raise KeyError(actor)
            return found

    def add_post(
        self,
        author: str,
        text: str,
        *,
        reply_to: str | None = None,
        quote: str | None = None,
        created_at: datetime | None = None,
        langs: tuple[str, ...] = ("en",),
        notify: bool | None = None,
    ) -> str:
        """Add a post by ``author`` (handle or DID; unknown handles are created) and return
        its at:// URI. ``@handle`` of a known account becomes a mention facet. The brand is
        notified of a reply in its thread ("reply"), a quote of its post ("quote") or a
        mention ("mention"), unless ``notify`` says otherwise."""
        with self._lock:
            did = self._actor(author) or self.add_user(author)
            at = created_at or EPOCH + timedelta(minutes=next(self._minute))
            record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": _iso(at)}
            if langs:
                record["langs"] = list(langs)
            facets = self._mention_facets(text)
            if facets:
                record["facets"] = facets
            parent = self._posts.get(reply_to) if reply_to else None
            if reply_to and parent is None:
                raise KeyError(f"no post {reply_to}")
            if parent is not None:
                parent_ref = {"uri": parent["uri"], "cid": parent["cid"]}
                root = parent["record"].get("reply", {}).get("root", parent_ref)
                record["reply"] = {"root": root, "parent": parent_ref}
            quoted = self._posts.get(quote) if quote else None
            if quoted is not None:
                record["embed"] = {
                    "$type": "app.bsky.embed.record",
                    "record": {"uri": quoted["uri"], "cid": quoted["cid"]},
                }
            seq = next(self._seq)
            uri = f"at://{did}/{POST}/{tid(int(at.timestamp() * 1_000_000), seq)}"
            post = self._store(uri, did, record, at)
            reason, subject = self._reason(post, parent, quoted)
            if reason and did != self.brand_did and notify is not False or notify:
                self._notes.append(
                    {
                        "seq": seq,
                        "at": at,
                        "uri": uri,
                        "reason": reason or "mention",
                        "subject": subject,
                    }
                )
            return uri

    def reply(self, author: str, parent: str, text: str, **kwargs: Any) -> str:
        return self.add_post(author, text, reply_to=parent, **kwargs)

    def add_notification(self, body: dict[str, Any], *, at: datetime | None = None) -> None:
        """A raw notification as given (e.g. malformed), listed at ``at``."""
        with self._lock:
            when = at or EPOCH + timedelta(minutes=next(self._minute))
            self._notes.append({"seq": next(self._seq), "at": when, "raw": body})

    def delete_post(self, uri: str) -> None:
        with self._lock:
            self._posts.pop(uri, None)

    def block_brand(self, author: str) -> None:
        """``author`` blocks the brand's account."""
        with self._lock:
            did = self._actor(author)
            assert did is not None
            self._users[did]["blocks_brand"] = True

    def post(self, uri: str) -> dict[str, Any] | None:
        """A stored post: ``uri``, ``cid``, ``did``, ``rkey``, ``record``, ``indexed_at``."""
        with self._lock:
            stored = self._posts.get(uri)
            return None if stored is None else dict(stored)

    def posts(self) -> list[dict[str, Any]]:
        """Posts written through createRecord (the brand's replies), in order."""
        with self._lock:
            return [dict(self._posts[u]) for u in self._created if u in self._posts]

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token handed out (to check none leaks)."""
        with self._lock:
            return list(self._issued)

    def revoke_sessions(self, *, refresh_too: bool = False) -> None:
        """The server refuses today's access tokens (and refresh tokens with refresh_too)."""
        with self._lock:
            self._revoked.update(self._access)
            if refresh_too:
                self._revoked.update(self._refresh)

    # ----------------------------------------------------------------- recording

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, nsid: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.nsid == nsid]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    # ----------------------------------------------------------------- scripting

    def queue(
        self,
        nsid: str,
        status: int,
        body: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next call of ``nsid`` with this (FIFO, once each; nothing else
        happens). ``body`` defaults to the XRPC error for the status, or ``{}``."""
        if body is None:
            body = xrpc_error(status) if status >= 400 else {}
        with self._lock:
            self._queued.append((nsid, CannedResponse(status, body, dict(headers or {}))))

    def hang_next(self, nsid: str, *, after_processing: bool = False) -> None:
        """Never answer the next call of ``nsid``; with ``after_processing`` it takes effect
        first (createRecord stores the post) and only the answer is lost."""
        with self._lock:
            self._hangs.append((nsid, after_processing))

    def set_rate_limit(
        self, nsid: str, remaining: int, reset: int | None = None, *, limit: int | None = None
    ) -> None:
        """Calls left for ``nsid`` until ``reset`` (epoch seconds; default 5 minutes on)."""
        with self._lock:
            self._buckets[nsid] = _Bucket(
                limit or max(remaining, 1), remaining, reset or int(time.time()) + WINDOW
            )

    # ----------------------------------------------------------------- serving

    def _dispatch(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> CannedResponse:
        parts = urlsplit(raw_path)
        nsid = parts.path.removeprefix("/xrpc/").strip("/")
        query = parse_qs(parts.query, keep_blank_values=True)
        body = json.loads(raw) if raw else None
        with self._changed:
            self._calls.append(Call(method, nsid, query, body, headers))
            self._changed.notify_all()
            hang = next((h for h in self._hangs if h[0] == nsid), None)
            if hang is not None:
                self._hangs.remove(hang)
            canned = next((q for q in self._queued if q[0] == nsid), None)
            if canned is not None:
                self._queued.remove(canned)
            allowed, limits = self._consume(nsid)
        if hang is not None and not hang[1]:
            self._hang()
        if canned is not None:
            return CannedResponse(canned[1].status, canned[1].body, {**limits, **canned[1].headers})
        if not allowed:
            return CannedResponse(429, xrpc_error(429, "RateLimitExceeded"), limits)
        answer = self._route(method, nsid, query, body, headers)
        if hang is not None:
            self._hang()
        return CannedResponse(answer.status, answer.body, {**limits, **answer.headers})

    def _hang(self) -> None:
        self._stopping.wait()
        raise _Hang

    def _consume(self, nsid: str) -> tuple[bool, dict[str, str]]:
        now = int(time.time())
        bucket = self._buckets.setdefault(nsid, _Bucket(DEFAULT_LIMIT, DEFAULT_LIMIT, now + WINDOW))
        if now >= bucket.reset:
            bucket.remaining, bucket.reset = bucket.limit, now + WINDOW
        allowed = bucket.remaining > 0
        bucket.remaining = max(0, bucket.remaining - 1)
        return allowed, {
            "ratelimit-limit": str(bucket.limit),
            "ratelimit-remaining": str(bucket.remaining),
            "ratelimit-reset": str(bucket.reset),
            "ratelimit-policy": f"{bucket.limit};w={WINDOW}",
        }

    def _route(
        self,
        method: str,
        nsid: str,
        query: dict[str, list[str]],
        body: Any,
        headers: dict[str, str],
    ) -> CannedResponse:
        routes: dict[str, tuple[str, Callable[..., CannedResponse], bool]] = {
            "com.atproto.server.createSession": ("POST", self._create_session, False),
            "com.atproto.server.refreshSession": ("POST", self._refresh_session, False),
            "com.atproto.server.getSession": ("GET", self._get_session, True),
            "app.bsky.notification.listNotifications": ("GET", self._list_notifications, True),
            "app.bsky.feed.searchPosts": ("GET", self._search_posts, True),
            "app.bsky.feed.getPosts": ("GET", self._get_posts, True),
            "app.bsky.actor.getProfile": ("GET", self._get_profile, True),
            "app.bsky.actor.getProfiles": ("GET", self._get_profiles, True),
            "com.atproto.identity.resolveHandle": ("GET", self._resolve_handle, False),
            "com.atproto.repo.createRecord": ("POST", self._create_record, True),
            "com.atproto.repo.getRecord": ("GET", self._get_record, False),
        }
        if nsid not in routes:
            return CannedResponse(501, xrpc_error(501, "MethodNotImplemented"))
        verb, handler, needs_auth = routes[nsid]
        if verb != method:
            return CannedResponse(400, xrpc_error(400, message=f"Incorrect HTTP method ({method})"))
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            if nsid == "com.atproto.server.refreshSession":
                return handler(token)
            if not needs_auth:
                return handler(query, body)
            if not token:
                return CannedResponse(401, xrpc_error(401, message="Authentication Required"))
            if token in self._revoked:
                return CannedResponse(400, xrpc_error(400, "ExpiredToken", "Token has expired"))
            did = self._access.get(token)
            if did is None:
                return CannedResponse(400, xrpc_error(400, "InvalidToken", "Malformed token"))
            return handler(query, body, did)

    # ----------------------------------------------------------------- sessions

    def _tokens(self, did: str) -> dict[str, Any]:
        now = int(time.time())
        seq = next(self._seq)
        access = _jwt(
            {
                "scope": "com.atproto.appPass",
                "sub": did,
                "aud": "did:web:127.0.0.1",
                "iat": now,
                "exp": now + self.access_ttl,
                "jti": f"a{seq}",
            }
        )
        refresh = _jwt(
            {
                "scope": "com.atproto.refresh",
                "sub": did,
                "aud": "did:web:127.0.0.1",
                "jti": f"r{seq}",
                "iat": now,
                "exp": now + 90 * 86400,
            }
        )
        self._access[access] = self._refresh[refresh] = did
        self._issued += [access, refresh]
        user = self._users[did]
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": user["handle"],
            "did": did,
            "email": "care@acme.example",
            "emailConfirmed": True,
            "active": True,
        }

    def _create_session(self, query: dict[str, list[str]], body: Any) -> CannedResponse:
        now = time.time()
        self._login_times = [t for t in self._login_times if now - t < WINDOW]
        if len(self._login_times) >= self.session_limit:
            reset = int(self._login_times[0] + WINDOW)
            return CannedResponse(
                429,
                xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded"),
                {
                    "ratelimit-limit": str(self.session_limit),
                    "ratelimit-remaining": "0",
                    "ratelimit-reset": str(reset),
                    "ratelimit-policy": f"{self.session_limit};w={WINDOW}",
                },
            )
        self._login_times.append(now)
        body = body if isinstance(body, dict) else {}
        identifier = str(body.get("identifier", "")).lower()
        if (
            identifier not in {self.brand_handle.lower(), self.brand_did}
            or body.get("password") != self.app_password
        ):
            return CannedResponse(
                401, xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
            )
        self.sessions_created += 1
        return CannedResponse(200, self._tokens(self.brand_did))

    def _refresh_session(self, token: str) -> CannedResponse:
        did = self._refresh.pop(token, None)
        if did is None or token in self._revoked:
            return CannedResponse(400, xrpc_error(400, "ExpiredToken", "Token has been revoked"))
        self.refreshes += 1
        return CannedResponse(200, self._tokens(did))

    def _get_session(self, query: dict[str, list[str]], body: Any, did: str) -> CannedResponse:
        user = self._users[did]
        return CannedResponse(200, {"handle": user["handle"], "did": did, "active": True})

    # ----------------------------------------------------------------- reads

    def _list_notifications(
        self, query: dict[str, list[str]], body: Any, did: str
    ) -> CannedResponse:
        limit, problem = _limit(query, 50)
        if problem:
            return problem
        notes = self._notes if did == self.brand_did else []
        reasons = set(query.get("reasons", []))
        rendered = []
        for note in notes:
            if "raw" in note:
                rendered.append((note, note["raw"]))
            elif note["uri"] in self._posts and (not reasons or note["reason"] in reasons):
                rendered.append((note, self._notification(note)))
        page, cursor = _keyset(rendered, _first(query, "cursor"), limit)
        return CannedResponse(
            200,
            {"notifications": page, **({"cursor": cursor} if cursor else {}), "priority": False},
        )

    def _search_posts(self, query: dict[str, list[str]], body: Any, did: str) -> CannedResponse:
        q = _first(query, "q")
        if not q:
            return CannedResponse(
                400, xrpc_error(400, message='Error: Params must have the property "q"')
            )
        limit, problem = _limit(query, 25)
        if problem:
            return problem
        since, until = _first(query, "since"), _first(query, "until")
        terms = _terms(q)
        hits = []
        for post in self._posts.values():
            if since and post["indexed_at"] < _parse_time(since):
                continue
            if until and post["indexed_at"] >= _parse_time(until):
                continue
            if _matches(post["record"].get("text", ""), terms):
                hits.append(({"seq": post["seq"], "at": post["indexed_at"]}, self._post_view(post)))
        page, cursor = _keyset(hits, _first(query, "cursor"), limit)
        return CannedResponse(
            200, {"posts": page, "hitsTotal": len(hits), **({"cursor": cursor} if cursor else {})}
        )

    def _get_posts(self, query: dict[str, list[str]], body: Any, did: str) -> CannedResponse:
        uris = query.get("uris", [])
        if len(uris) > 25:
            return CannedResponse(
                400, xrpc_error(400, message="uris must not have more than 25 elements")
            )
        posts = [self._post_view(self._posts[u]) for u in uris if u in self._posts]
        return CannedResponse(200, {"posts": posts})

    def _get_profile(self, query: dict[str, list[str]], body: Any, did: str) -> CannedResponse:
        found = self._actor(_first(query, "actor") or "")
        if found is None:
            return CannedResponse(400, xrpc_error(400, message="Profile not found"))
        return CannedResponse(200, self._profile(found, detailed=True))

    def _get_profiles(self, query: dict[str, list[str]], body: Any, did: str) -> CannedResponse:
        actors = query.get("actors", [])
        if len(actors) > 25:
            return CannedResponse(
                400, xrpc_error(400, message="actors must not have more than 25 elements")
            )
        found = [d for a in actors if (d := self._actor(a)) is not None]
        return CannedResponse(200, {"profiles": [self._profile(d, detailed=True) for d in found]})

    def _resolve_handle(self, query: dict[str, list[str]], body: Any) -> CannedResponse:
        handle = (_first(query, "handle") or "").lower()
        did = next((d for d, u in self._users.items() if u["handle"].lower() == handle), None)
        if did is None:
            return CannedResponse(400, xrpc_error(400, message="Unable to resolve handle"))
        return CannedResponse(200, {"did": did})

    def _get_record(self, query: dict[str, list[str]], body: Any) -> CannedResponse:
        did = self._actor(_first(query, "repo") or "")
        if did is None:
            return CannedResponse(
                400, xrpc_error(400, message=f"Could not find repo: {_first(query, 'repo')}")
            )
        uri = f"at://{did}/{_first(query, 'collection')}/{_first(query, 'rkey')}"
        post = self._posts.get(uri)
        if post is None:
            return CannedResponse(
                400, xrpc_error(400, "RecordNotFound", f"Could not locate record: {uri}")
            )
        return CannedResponse(200, {"uri": uri, "cid": post["cid"], "value": post["record"]})

    # ----------------------------------------------------------------- writes

    def _create_record(self, query: dict[str, list[str]], body: Any, did: str) -> CannedResponse:
        body = body if isinstance(body, dict) else {}
        if self._actor(str(body.get("repo", ""))) != did:
            return CannedResponse(
                401, xrpc_error(401, "AuthenticationRequired", "Authentication Required")
            )
        collection, record = body.get("collection"), body.get("record")
        if collection != POST:
            return CannedResponse(400, xrpc_error(400, message=f"fake: only {POST} is supported"))
        rkey = body.get("rkey") or tid(int(time.time() * 1_000_000), next(self._seq))
        if not _TID_RE.match(str(rkey)):
            return CannedResponse(400, xrpc_error(400, message=f"Invalid record key: {rkey}"))
        problem = _check_post(record)
        if problem:
            return CannedResponse(
                400, xrpc_error(400, "InvalidRecord", f"Invalid {POST} record: {problem}")
            )
        uri = f"at://{did}/{POST}/{rkey}"
        if uri in self._posts:
            status, error, message = self.duplicate_answer
            return CannedResponse(status, xrpc_error(status, error, message))
        at = EPOCH + timedelta(minutes=next(self._minute))
        post = self._store(uri, did, dict(record), at)
        self._created.append(uri)
        return CannedResponse(
            200,
            {
                "uri": uri,
                "cid": post["cid"],
                "commit": {"cid": _cid(["commit", uri]), "rev": tid(int(time.time() * 1e6))},
                "validationStatus": "valid",
            },
        )

    # ----------------------------------------------------------------- rendering

    def _actor(self, actor: str) -> str | None:
        if actor in self._users:
            return actor
        wanted = actor.lstrip("@").lower()
        return next((d for d, u in self._users.items() if u["handle"].lower() == wanted), None)

    def _store(self, uri: str, did: str, record: dict[str, Any], at: datetime) -> dict[str, Any]:
        post = {
            "uri": uri,
            "cid": _cid([uri, record]),
            "did": did,
            "rkey": uri.rsplit("/", 1)[-1],
            "record": record,
            "indexed_at": at,
            "seq": next(self._seq),
        }
        self._posts[uri] = post
        return post

    def _mention_facets(self, text: str) -> list[dict[str, Any]]:
        facets = []
        for match in re.finditer(r"(?<![\w@])@([a-zA-Z0-9.-]+[a-zA-Z0-9])", text):
            did = self._actor(match.group(1))
            if did is None:
                continue
            facets.append(
                {
                    "$type": "app.bsky.richtext.facet",
                    "index": {
                        "byteStart": len(text[: match.start()].encode()),
                        "byteEnd": len(text[: match.end()].encode()),
                    },
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
                }
            )
        return facets

    def _reason(
        self, post: dict[str, Any], parent: dict[str, Any] | None, quoted: dict[str, Any] | None
    ) -> tuple[str | None, str | None]:
        if parent is not None:
            root_uri = post["record"]["reply"]["root"]["uri"]
            root = self._posts.get(root_uri)
            if parent["did"] == self.brand_did:
                return "reply", parent["uri"]
            if root is not None and root["did"] == self.brand_did:
                return "reply", root_uri
        if quoted is not None and quoted["did"] == self.brand_did:
            return "quote", quoted["uri"]
        mentioned = {
            f["did"] for facet in post["record"].get("facets", []) for f in facet["features"]
        }
        return ("mention", None) if self.brand_did in mentioned else (None, None)

    def _profile(self, did: str, *, detailed: bool = False) -> dict[str, Any]:
        user = self._users[did]
        out: dict[str, Any] = {
            "did": did,
            "handle": user["handle"],
            "displayName": user["displayName"],
            "createdAt": "2024-02-06T12:00:00.000Z",
            "labels": [],
            "viewer": {"muted": False, "blockedBy": bool(user["blocks_brand"])},
        }
        if user["verified"]:
            out["verification"] = {
                "verifications": [],
                "verifiedStatus": "valid",
                "trustedVerifierStatus": "none",
            }
        if detailed:
            out.update(
                indexedAt="2024-02-06T12:00:00.000Z",
                description="",
                followersCount=user["followers"],
                followsCount=10,
                postsCount=sum(1 for p in self._posts.values() if p["did"] == did),
            )
        return out

    def _post_view(self, post: dict[str, Any]) -> dict[str, Any]:
        return {
            "$type": "app.bsky.feed.defs#postView",
            "uri": post["uri"],
            "cid": post["cid"],
            "author": self._profile(post["did"]),
            "record": post["record"],
            "replyCount": 0,
            "repostCount": 0,
            "likeCount": 0,
            "quoteCount": 0,
            "indexedAt": _iso(post["indexed_at"]),
            "labels": [],
            "viewer": {"threadMuted": False, "embeddingDisabled": False},
        }

    def _notification(self, note: dict[str, Any]) -> dict[str, Any]:
        post = self._posts[note["uri"]]
        out = {
            "uri": post["uri"],
            "cid": post["cid"],
            "author": {**self._profile(post["did"]), "indexedAt": "2024-02-06T12:00:00.000Z"},
            "reason": note["reason"],
            "record": post["record"],
            "isRead": False,
            "indexedAt": _iso(note["at"]),
            "labels": [],
        }
        if note["subject"]:
            out["reasonSubject"] = note["subject"]
        return out


# --------------------------------------------------------------------------- helpers


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _limit(query: dict[str, list[str]], default: int) -> tuple[int, CannedResponse | None]:
    raw = _first(query, "limit")
    limit = int(raw) if raw and raw.isdigit() else default
    if not 1 <= limit <= 100:
        return limit, CannedResponse(400, xrpc_error(400, message="limit must be <= 100"))
    return limit, None


def _keyset(
    items: list[tuple[dict[str, Any], dict[str, Any]]], cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first by (time, seq); the cursor is the last key given, as the AppView's
    "<ms>::<seq>". Every non-empty page has one, like the real service."""

    def key(meta: dict[str, Any]) -> tuple[int, int]:
        return int(meta["at"].timestamp() * 1000), int(meta["seq"])

    ordered = sorted(items, key=lambda item: key(item[0]), reverse=True)
    if cursor:
        ms, _, seq = cursor.partition("::")
        after = (int(ms), int(seq or 0))
        ordered = [item for item in ordered if key(item[0]) < after]
    page = ordered[:limit]
    if not page:
        return [], None
    last = key(page[-1][0])
    return [body for _, body in page], f"{last[0]}::{last[1]}"


_TERM = re.compile(r'(-?)(?:"([^"]*)"|(\S+))')


def _terms(q: str) -> list[tuple[bool, str]]:
    return [
        (m.group(1) == "-", (m.group(2) if m.group(2) is not None else m.group(3)).lower())
        for m in _TERM.finditer(q)
    ]


def _matches(text: str, terms: list[tuple[bool, str]]) -> bool:
    lowered = text.lower()
    return all((term in lowered) != negated for negated, term in terms if term)


def _check_post(record: Any) -> str | None:
    """What the lexicon check of app.bsky.feed.post would refuse, or None."""
    if not isinstance(record, dict):
        return "Record must be an object"
    if record.get("$type", POST) != POST:
        return f"Invalid $type: must be {POST}"
    text = record.get("text")
    if not isinstance(text, str):
        return 'Record must have the property "text"'
    if len(regex.findall(r"\X", text)) > 300:
        return "Record/text must not be longer than 300 graphemes"
    if not isinstance(record.get("createdAt"), str):
        return 'Record must have the property "createdAt"'
    reply = record.get("reply")
    if reply is not None:
        for part in ("root", "parent"):
            ref = reply.get(part) if isinstance(reply, dict) else None
            if not (isinstance(ref, dict) and isinstance(ref.get("uri"), str) and ref.get("cid")):
                return f'Record/reply must have the property "{part}" with uri and cid'
    size = len(text.encode())
    for facet in record.get("facets") or []:
        index = facet.get("index", {})
        start, end = index.get("byteStart"), index.get("byteEnd")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
            return "Record/facets/index is out of range"
        if not facet.get("features"):
            return "Record/facets/features must not be empty"
    return None


def start_fake_bluesky(brand_handle: str = "acmeair.bsky.social") -> FakeBluesky:
    """Start a FakeBluesky on an ephemeral port; ``.stop()`` (or ``with``) when done."""
    return FakeBluesky(brand_handle).start()


@pytest.fixture
def fake_bluesky() -> Iterator[FakeBluesky]:
    """A running FakeBluesky, stopped after the test."""
    fake = start_fake_bluesky()
    try:
        yield fake
    finally:
        fake.stop()


FakeBluesky.server_class = _Server
FakeBluesky.handler_class = _Handler
