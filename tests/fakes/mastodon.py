"""A fake Mastodon instance for tests, driven through the real Mastodon.py client.

It listens on 127.0.0.1 with an ephemeral port in a background thread, keeps a tiny world of
accounts, statuses and the brand's notifications, records every call and answers with
Mastodon's JSON shapes (docs.joinmastodon.org/entities), so Mastodon.py parses them as it would
a real instance's (ids, dates, Link headers)::

    with start_fake_mastodon() as fake:
        maya = fake.add_account("maya", "Maya Okafor", followers=812)
        status_id = fake.add_mention(maya, "@AcmeAir my bag is lost")
        client = Mastodon(access_token=fake.token, api_base_url=fake.url,
                          ratelimit_method="throw", version_check_mode="none")
        [note] = client.notifications(types=["mention"])
        assert note.status.id == status_id

Served (the brand, ``fake.brand_id``, is the token's account):

* ``GET /api/v1/accounts/verify_credentials``, ``GET /api/v1/accounts/:id``
* ``GET /api/v1/notifications`` (``types[]``, ``exclude_types[]``, ``max_id``, ``since_id``,
  ``min_id``, ``limit`` up to 80) with ``Link`` headers like the real one
* ``GET /api/v1/timelines/tag/:tag`` (public statuses with the tag; ``limit`` up to 40)
* ``POST /api/v1/statuses`` (form or JSON; ``Idempotency-Key``: the same key within
  ``idempotency_seconds`` returns the same status), ``GET /api/v1/statuses/:id``
* ``GET /api/v1/accounts/:id/statuses`` (newest first; ``exclude_reblogs``, ``exclude_replies``)
* ``GET /api/v2/instance`` and ``GET /api/v1/instance`` (no token needed), with
  ``configuration.statuses.max_characters`` (``fake.max_characters``) and
  ``characters_reserved_per_url`` (23)

Paging follows Mastodon: newest first; ``max_id`` reads older, ``since_id`` the newest above it,
``min_id`` the items immediately above it (still listed newest first); a non-empty page links
``rel="next"`` (``max_id`` = its oldest id) and ``rel="prev"`` (``min_id`` = its newest).

Auth: a bearer token other than ``fake.token`` is a 401 ``{"error": "The access token is
invalid"}`` everywhere; without one, only the instance endpoints answer. Every answer carries
``X-RateLimit-Limit/Remaining/Reset`` (reset as an ISO 8601 time, like Mastodon) from one
per-account window (``set_rate_limit``); a used-up window answers 429.

Scripted faults: ``queue()`` (a canned answer, e.g. a 429 or 5xx), ``hang_next()`` (no answer;
``after_processing=True`` stores the status first, so only the answer is lost),
``on_post_status()`` hooks, ``delete_status()``, ``block_brand()`` (the author blocked the
brand: their statuses are not found for it and replies to them are refused),
``add_raw_notification()`` (anything, e.g. a malformed notification).

Not modelled: edits, media, polls, filters, streaming, grouped notifications (v2), follower-only
visibility beyond "the brand sees what mentions it".
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import re
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest

from tests.fakes.base import LoopbackFake, QuietHandler

__all__ = [
    "IN_REPLY_NOT_FOUND",
    "Call",
    "FakeMastodon",
    "fake_mastodon",
    "start_fake_mastodon",
]

#: First status id handed out (Mastodon ids are snowflakes: 18 digits, increasing).
FIRST_STATUS_ID = 113_500_000_000_000_001
FIRST_NOTIFICATION_ID = 5001
#: created_at of the first status when none is given; each later one is a minute younger.
EPOCH = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
WINDOW_SECONDS = 300  # Mastodon: 300 requests per 5 minutes per account
NOT_FOUND = "Record not found"
IN_REPLY_NOT_FOUND = "The post you are trying to reply to does not appear to exist."
TOKEN_INVALID = "The access token is invalid"
VISIBILITIES = ("public", "unlisted", "private", "direct")

Body = dict[str, Any] | list[Any] | str | bytes
StatusHook = Callable[[dict[str, Any]], None]

_TOKENS = re.compile(
    r"(?P<url>https?://[^\s<>\"]+)"
    r"|(?<![\w/@])@(?P<user>[A-Za-z0-9_]+)(?:@(?P<domain>[A-Za-z0-9.-]*[A-Za-z0-9]))?"
    r"|(?<![\w&/])#(?P<tag>\w+)"
)


@dataclass(frozen=True)
class Call:
    """One request received: ``query`` maps a parameter to its last value, ``params`` to all
    values (``types[]`` repeats); ``body`` is the parsed form or JSON body."""

    method: str
    path: str
    query: dict[str, str]
    params: dict[str, list[str]]
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class _Canned:
    status: int
    body: Body | None
    headers: dict[str, str] = field(default_factory=dict)


class _Hang(Exception):
    """Internal: send no answer."""


def iso(moment: datetime) -> str:
    """Mastodon's timestamps: UTC with milliseconds, e.g. 2026-11-02T09:00:00.000Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def error(status: int, message: str | None = None) -> dict[str, str]:
    """Mastodon's error body: ``{"error": "..."}``."""
    return {"error": message or HTTPStatus(status).phrase}


def mastodon_length(text: str, reserved_per_url: int = 23) -> int:
    """How Mastodon counts a status: a URL is ``reserved_per_url``, a remote mention only
    counts its ``@user`` part."""
    count = 0
    last = 0
    for match in _TOKENS.finditer(text):
        count += len(text[last : match.start()])
        if match["url"]:
            count += reserved_per_url
        elif match["user"]:
            count += 1 + len(match["user"])
        else:
            count += len(match.group(0))
        last = match.end()
    return count + len(text[last:])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeMastodon

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that went away mid-request is normal in timeout tests


class _Handler(QuietHandler):
    server: _Server

    def do_DELETE(self) -> None:
        self.handle_request("DELETE")

    def handle_request(self, method: str) -> None:
        raw = self.read_body()
        try:
            canned = self.server.fake._dispatch(
                method, self.path, self.lower_headers(), raw, self.connection
            )
        except _Hang:
            self.close_connection = True
            return
        except Exception as exc:  # a bug in the fake: loud, not a hang
            canned = _Canned(500, error(500, f"fake_mastodon_error: {exc!r}"))
        with contextlib.suppress(OSError):
            self.send_body(canned.status, canned.body, canned.headers)


class FakeMastodon(LoopbackFake):
    """Fake Mastodon on 127.0.0.1:<ephemeral>; the brand account acts through ``token``."""

    def __init__(
        self,
        *,
        brand_username: str = "AcmeAir",
        brand_name: str = "Acme Air",
        token: str = "test-mastodon-token-not-real",
        max_characters: int = 500,
    ) -> None:
        self._init_serving(threading.RLock())
        self.token = token
        #: The instance's status limit, as /api/v2/instance and /api/v1/instance report it.
        self.max_characters = max_characters
        #: How long an Idempotency-Key is remembered (Mastodon: about an hour).
        self.idempotency_seconds = 3600.0
        self.domain = "127.0.0.1"
        self._calls: list[Call] = []
        self._queued: deque[tuple[str, str, _Canned]] = deque()
        self._hangs: deque[tuple[str, str, bool]] = deque()
        self._accounts: dict[str, dict[str, Any]] = {}
        self._statuses: dict[str, dict[str, Any]] = {}
        self._notifications: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, tuple[str, float]] = {}
        self._posted: list[str] = []
        self._blocking: set[str] = set()
        self._status_ids = itertools.count(FIRST_STATUS_ID)
        self._notification_ids = itertools.count(FIRST_NOTIFICATION_ID)
        self._account_ids = itertools.count(109_000_000_000_000_001)
        self._minutes = itertools.count(0)
        self._limit, self._remaining, self._reset = 300, 300, time.time() + WINDOW_SECONDS
        self._after: StatusHook | None = None
        self.brand_id = self.add_account(brand_username, brand_name, followers=12_000)

    @property
    def url(self) -> str:
        """Base URL without a trailing slash: ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def _base(self) -> str:
        return self.url if self._server is not None else "http://127.0.0.1"

    # ----------------------------------------------------------------- world state

    def add_account(
        self,
        username: str,
        display_name: str = "",
        *,
        domain: str | None = None,
        followers: int = 0,
        account_id: str | None = None,
    ) -> str:
        """Add an account (local, or remote on ``domain``) and return its id."""
        with self._lock:
            account_id = account_id or str(next(self._account_ids))
            self._accounts[account_id] = {
                "id": account_id,
                "username": username,
                "domain": domain,
                "display_name": display_name,
                "followers_count": followers,
            }
            return account_id

    def add_status(
        self,
        account_id: str,
        text: str,
        *,
        visibility: str = "public",
        in_reply_to: str | None = None,
        language: str | None = "en",
        spoiler_text: str = "",
        content_html: str | None = None,
        reblog_of: str | None = None,
        created_at: datetime | None = None,
    ) -> str:
        """Add a status and return its id. ``@user``/``@user@domain`` and ``#tag`` in ``text``
        become mentions and tags (and links in the HTML content, as Mastodon renders them);
        a status mentioning the brand notifies it, unless the author blocks it.
        ``content_html`` replaces the rendered content verbatim."""
        with self._lock:
            return self._create(
                account_id,
                text,
                visibility=visibility,
                in_reply_to=in_reply_to,
                language=language,
                spoiler_text=spoiler_text,
                content_html=content_html,
                reblog_of=reblog_of,
                created_at=created_at,
            )

    def add_mention(self, account_id: str, text: str, **options: Any) -> str:
        """A status that mentions the brand (``@AcmeAir`` is put in front if absent)."""
        brand = self._accounts[self.brand_id]["username"]
        if f"@{brand}".lower() not in text.lower():
            text = f"@{brand} {text}"
        return self.add_status(account_id, text, **options)

    def add_notification(self, kind: str, account_id: str, status_id: str | None = None) -> str:
        """A notification of another kind (``favourite``, ``follow``, ...) for the brand."""
        with self._lock:
            return self._notify(kind, account_id, status_id)

    def add_raw_notification(self, body: dict[str, Any]) -> str:
        """A notification served exactly as ``body`` (its ``id`` is set): for malformed ones."""
        with self._lock:
            nid = str(next(self._notification_ids))
            self._notifications[nid] = {"id": nid, "raw": {**body, "id": nid}}
            return nid

    def delete_status(self, status_id: str) -> None:
        """The author deleted it: not found from now on (its notifications go too)."""
        with self._lock:
            self._statuses[str(status_id)]["deleted"] = True

    def block_brand(self, account_id: str) -> None:
        """``account_id`` blocks the brand: its statuses are not found for the brand."""
        with self._lock:
            self._blocking.add(str(account_id))

    def status_json(self, status_id: str) -> dict[str, Any]:
        """The status as the API renders it (e.g. to queue a hand-made page)."""
        with self._lock:
            return self._render_status(self._statuses[str(status_id)])

    def posted(self) -> list[dict[str, Any]]:
        """Statuses the brand created through POST /api/v1/statuses, in order: ``id``,
        ``text`` (as sent), ``visibility``, ``in_reply_to_id``, ``idempotency_key``, ``url``."""
        with self._lock:
            out = []
            for sid in self._posted:
                status = self._statuses[sid]
                out.append(
                    {
                        "id": sid,
                        "text": status["text"],
                        "visibility": status["visibility"],
                        "in_reply_to_id": status["in_reply_to_id"],
                        "idempotency_key": status["idempotency_key"],
                        "url": self._status_url(status),
                    }
                )
            return out

    def expire_idempotency_keys(self) -> None:
        """As if more than an hour passed: every Idempotency-Key is forgotten."""
        with self._lock:
            self._keys.clear()

    # ----------------------------------------------------------------- recording

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, path: str) -> list[Call]:
        """Calls whose path is ``path`` or under it (segment-aware)."""
        prefix = path.rstrip("/")
        with self._lock:
            return [
                c
                for c in self._calls
                if c.method == method.upper()
                and (c.path == prefix or c.path.startswith(prefix + "/"))
            ]

    # ----------------------------------------------------------------- scripting

    def queue(
        self,
        method: str,
        path: str,
        status: int,
        body: Body | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next matching request with this (FIFO, one-shot) and do nothing else.
        ``body`` defaults to ``{"error": ...}`` for an error and ``[]`` otherwise; a 429 gets
        ``X-RateLimit-Remaining: 0`` and a reset 5 minutes away unless ``headers`` say."""
        if body is None:
            body = error(status) if status >= 400 else []
        extra = dict(headers or {})
        if status == 429:
            extra = {
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": iso(datetime.now(UTC) + timedelta(seconds=WINDOW_SECONDS)),
                **extra,
            }
        with self._lock:
            self._queued.append((method.upper(), path.rstrip("/"), _Canned(status, body, extra)))

    def queue_rate_limited(self, method: str, path: str, seconds: float) -> None:
        """A 429 whose window resets ``seconds`` from now (by the real clock)."""
        reset = datetime.now(UTC) + timedelta(seconds=seconds)
        self.queue(
            method, path, 429, error(429, "Too many requests"), {"X-RateLimit-Reset": iso(reset)}
        )

    def hang_next(self, method: str, path: str, *, after_processing: bool = False) -> None:
        """Send no answer to the next matching request (until the client gives up or the fake
        stops). ``after_processing=True``: the request takes effect first (a POST stores its
        status), only the answer is lost."""
        with self._lock:
            self._hangs.append((method.upper(), path.rstrip("/"), after_processing))

    def set_rate_limit(self, remaining: int, *, reset_in: float = WINDOW_SECONDS) -> None:
        """The account's window: ``remaining`` requests until ``reset_in`` seconds from now."""
        with self._lock:
            self._remaining, self._reset = remaining, time.time() + reset_in

    def on_post_status(self, after: StatusHook | None) -> None:
        """``after(status_json)`` runs on the server thread once a POSTed status is stored,
        before the answer; if it raises, the status stays and no answer is sent."""
        with self._lock:
            self._after = after

    # ----------------------------------------------------------------- world internals

    def _create(
        self,
        account_id: str,
        text: str,
        *,
        visibility: str,
        in_reply_to: str | None,
        language: str | None,
        spoiler_text: str = "",
        content_html: str | None = None,
        reblog_of: str | None = None,
        created_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        if account_id not in self._accounts:
            raise KeyError(f"no account {account_id}; add_account() first")
        sid = str(next(self._status_ids))
        minute = next(self._minutes)
        mentions, tags = self._entities(text)
        parent = self._statuses.get(str(in_reply_to)) if in_reply_to else None
        self._statuses[sid] = {
            "id": sid,
            "account_id": account_id,
            "text": text,
            "html": content_html,
            "created_at": created_at or EPOCH + timedelta(minutes=minute),
            "visibility": visibility,
            "in_reply_to_id": str(in_reply_to) if in_reply_to else None,
            "in_reply_to_account_id": parent["account_id"] if parent else None,
            "language": language,
            "spoiler_text": spoiler_text,
            "mentions": mentions,
            "tags": tags,
            "reblog_of": str(reblog_of) if reblog_of else None,
            "deleted": False,
            "idempotency_key": idempotency_key,
        }
        notifies = account_id not in (self.brand_id, *self._blocking) and not reblog_of
        if self.brand_id in mentions and notifies:
            self._notify("mention", account_id, sid)
        return sid

    def _notify(self, kind: str, account_id: str, status_id: str | None) -> str:
        nid = str(next(self._notification_ids))
        self._notifications[nid] = {
            "id": nid,
            "type": kind,
            "account_id": account_id,
            "status_id": status_id,
            "created_at": datetime.now(UTC),
        }
        return nid

    def _find_account(self, username: str, domain: str | None) -> str | None:
        domain = None if domain in (None, self.domain) else domain
        for account in self._accounts.values():
            if account["username"].lower() == username.lower() and account["domain"] == domain:
                return str(account["id"])
        return None

    def _entities(self, text: str) -> tuple[list[str], list[str]]:
        mentions: list[str] = []
        tags: list[str] = []
        for match in _TOKENS.finditer(text):
            if match["user"]:
                found = self._find_account(match["user"], match["domain"])
                if found and found not in mentions:
                    mentions.append(found)
            elif match["tag"] and match["tag"].lower() not in [t.lower() for t in tags]:
                tags.append(match["tag"])
        return mentions, tags

    def _visible(self, status: dict[str, Any] | None) -> bool:
        """Whether the brand can see the status."""
        if status is None or status["deleted"] or status["account_id"] in self._blocking:
            return False
        if status["visibility"] in ("public", "unlisted"):
            return True
        return status["account_id"] == self.brand_id or self.brand_id in status["mentions"]

    # ----------------------------------------------------------------- rendering

    def _acct(self, account: dict[str, Any]) -> str:
        domain = account["domain"]
        return f"{account['username']}@{domain}" if domain else str(account["username"])

    def _account_url(self, account: dict[str, Any]) -> str:
        host = f"https://{account['domain']}" if account["domain"] else self._base
        return f"{host}/@{account['username']}"

    def _render_account(self, account_id: str) -> dict[str, Any]:
        account = self._accounts[account_id]
        url = self._account_url(account)
        count = sum(1 for s in self._statuses.values() if s["account_id"] == account_id)
        return {
            "id": account_id,
            "username": account["username"],
            "acct": self._acct(account),
            "display_name": account["display_name"],
            "locked": False,
            "bot": False,
            "discoverable": True,
            "indexable": True,
            "group": False,
            "created_at": "2024-03-01T00:00:00.000Z",
            "note": "",
            "url": url,
            "uri": url.replace("/@", "/users/"),
            "avatar": f"{self._base}/avatars/original/missing.png",
            "avatar_static": f"{self._base}/avatars/original/missing.png",
            "header": f"{self._base}/headers/original/missing.png",
            "header_static": f"{self._base}/headers/original/missing.png",
            "followers_count": account["followers_count"],
            "following_count": 0,
            "statuses_count": count,
            "last_status_at": "2026-11-02",
            "hide_collections": None,
            "noindex": False,
            "emojis": [],
            "roles": [],
            "fields": [],
        }

    def _status_url(self, status: dict[str, Any]) -> str:
        return f"{self._account_url(self._accounts[status['account_id']])}/{status['id']}"

    def _content(self, status: dict[str, Any]) -> str:
        """Mastodon's HTML for a plain text: paragraphs, <br />, linked URLs, mentions, tags."""
        if status["html"] is not None:
            return str(status["html"])
        paragraphs = []
        for block in re.split(r"\n{2,}", status["text"].strip()):
            parts: list[str] = []
            last = 0
            for match in _TOKENS.finditer(block):
                parts.append(html.escape(block[last : match.start()], quote=False))
                parts.append(self._link(match))
                last = match.end()
            parts.append(html.escape(block[last:], quote=False))
            paragraphs.append("<p>" + "".join(parts).replace("\n", "<br />") + "</p>")
        return "".join(paragraphs)

    def _link(self, match: re.Match[str]) -> str:
        if match["url"]:
            url = match["url"]
            scheme, _, rest = url.partition("://")
            prefix = scheme + "://" + ("www." if rest.startswith("www.") else "")
            shown = url[len(prefix) :]
            visible, hidden = shown[:30], shown[30:]
            return (
                f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener"'
                f' translate="no"><span class="invisible">{html.escape(prefix)}</span>'
                f'<span class="{"ellipsis" if hidden else ""}">{html.escape(visible)}</span>'
                f'<span class="invisible">{html.escape(hidden)}</span></a>'
            )
        if match["user"]:
            found = self._find_account(match["user"], match["domain"])
            if found is None:
                return html.escape(match.group(0))
            account = self._accounts[found]
            return (
                f'<span class="h-card" translate="no"><a href="{self._account_url(account)}"'
                f' class="u-url mention">@<span>{html.escape(account["username"])}</span></a>'
                "</span>"
            )
        tag = match["tag"]
        return (
            f'<a href="{self._base}/tags/{tag.lower()}" class="mention hashtag" rel="tag">'
            f"#<span>{html.escape(tag)}</span></a>"
        )

    def _render_status(self, status: dict[str, Any]) -> dict[str, Any]:
        reblog = self._statuses.get(status["reblog_of"] or "")
        url = self._status_url(status)
        return {
            "id": status["id"],
            "created_at": iso(status["created_at"]),
            "in_reply_to_id": status["in_reply_to_id"],
            "in_reply_to_account_id": status["in_reply_to_account_id"],
            "sensitive": bool(status["spoiler_text"]),
            "spoiler_text": status["spoiler_text"],
            "visibility": status["visibility"],
            "language": status["language"],
            "uri": url.replace("/@", "/users/").rsplit("/", 1)[0] + f"/statuses/{status['id']}",
            "url": url,
            "replies_count": sum(
                1 for s in self._statuses.values() if s["in_reply_to_id"] == status["id"]
            ),
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": None,
            "favourited": False,
            "reblogged": False,
            "muted": False,
            "bookmarked": False,
            "pinned": False,
            "content": "" if reblog else self._content(status),
            "filtered": [],
            "reblog": self._render_status(reblog) if reblog else None,
            "application": {"name": "Web", "website": None},
            "account": self._render_account(status["account_id"]),
            "media_attachments": [],
            "mentions": [
                {
                    "id": aid,
                    "username": self._accounts[aid]["username"],
                    "url": self._account_url(self._accounts[aid]),
                    "acct": self._acct(self._accounts[aid]),
                }
                for aid in status["mentions"]
            ],
            "tags": [
                {"name": t.lower(), "url": f"{self._base}/tags/{t.lower()}"} for t in status["tags"]
            ],
            "emojis": [],
            "card": None,
            "poll": None,
        }

    def _render_notification(self, note: dict[str, Any]) -> dict[str, Any]:
        if "raw" in note:
            return dict(note["raw"])
        status = self._statuses.get(note["status_id"] or "")
        return {
            "id": note["id"],
            "type": note["type"],
            "created_at": iso(note["created_at"]),
            "group_key": f"ungrouped-{note['id']}",
            "account": self._render_account(note["account_id"]),
            **({"status": self._render_status(status)} if status else {}),
        }

    def _instance(self, version: int) -> dict[str, Any]:
        statuses = {
            "max_characters": self.max_characters,
            "max_media_attachments": 4,
            "characters_reserved_per_url": 23,
        }
        common = {
            "title": "Fake Mastodon",
            "version": "4.3.2",
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "A fake instance for tests",
            "languages": ["en"],
            "rules": [],
        }
        if version == 1:
            return {
                **common,
                "uri": self.domain,
                "short_description": "",
                "email": "admin@example.com",
                "urls": {"streaming_api": "wss://127.0.0.1"},
                "stats": {"user_count": len(self._accounts), "status_count": 0, "domain_count": 1},
                "thumbnail": None,
                "registrations": False,
                "approval_required": False,
                "invites_enabled": False,
                "configuration": {"statuses": statuses},
                "contact_account": None,
            }
        return {
            **common,
            "domain": self.domain,
            "usage": {"users": {"active_month": len(self._accounts)}},
            "thumbnail": {"url": f"{self._base}/thumbnail.png"},
            "configuration": {
                "urls": {"streaming": "wss://127.0.0.1"},
                "accounts": {"max_featured_tags": 10},
                "statuses": statuses,
                "media_attachments": {"supported_mime_types": ["image/png"]},
                "polls": {"max_options": 4},
                "translation": {"enabled": False},
                "timelines_access": {
                    "live_feeds": {"local": "public", "remote": "public"},
                    "hashtag_feeds": {"local": "public", "remote": "public"},
                    "trending_link_feeds": {"local": "public", "remote": "public"},
                },
            },
            "registrations": {"enabled": False, "approval_required": False, "message": None},
            "api_versions": {"mastodon": 2},
            "contact": {"email": "admin@example.com", "account": None},
        }

    # ----------------------------------------------------------------- serving

    def _dispatch(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes, sock: socket.socket
    ) -> _Canned:
        parts = urlsplit(raw_path)
        path = unquote(parts.path).rstrip("/") or "/"
        params = parse_qs(parts.query, keep_blank_values=True)
        body: dict[str, Any] = {}
        if raw:
            if headers.get("content-type", "").startswith("application/json"):
                loaded = json.loads(raw)
                body = loaded if isinstance(loaded, dict) else {}
            else:
                body = {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        query = {k: v[-1] for k, v in params.items()}
        with self._changed:
            self._calls.append(Call(method, path, query, params, body, headers))
            self._changed.notify_all()
            hang = self._take(self._hangs, method, path)
            canned = self._take(self._queued, method, path)
            allowed, limits = self._window(consume=canned is None)
        if hang is False:
            self._hang(sock)
        if canned is not None:
            return _Canned(canned.status, canned.body, {**limits, **canned.headers})
        if not allowed:
            return _Canned(429, error(429, "Too many requests"), limits)
        response = self._route(method, path, query, params, body, headers)
        if hang:
            self._hang(sock)
        return _Canned(response.status, response.body, {**limits, **response.headers})

    def _hang(self, sock: socket.socket) -> None:
        while not self._stopping.wait(0.05):
            with contextlib.suppress(OSError):
                readable, _, _ = select.select([sock], [], [], 0)
                if readable and sock.recv(1, socket.MSG_PEEK) == b"":
                    break  # the client gave up
        raise _Hang

    @staticmethod
    def _take(entries: deque[tuple[str, str, Any]], method: str, path: str) -> Any:
        for entry in entries:
            if entry[0] == method and (path == entry[1] or path.startswith(entry[1] + "/")):
                entries.remove(entry)
                return entry[2]
        return None

    def _window(self, *, consume: bool) -> tuple[bool, dict[str, str]]:
        """Take one request from the account's window: (allowed, X-RateLimit-* headers)."""
        now = time.time()
        if now >= self._reset:
            self._remaining, self._reset = self._limit, now + WINDOW_SECONDS
        allowed = self._remaining > 0
        if consume and allowed:
            self._remaining -= 1
        return allowed, {
            "X-RateLimit-Limit": str(self._limit),
            "X-RateLimit-Remaining": str(self._remaining),
            "X-RateLimit-Reset": iso(datetime.fromtimestamp(self._reset, UTC)),
        }

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        params: dict[str, list[str]],
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> _Canned:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        authorized = scheme.lower() == "bearer" and token.strip() == self.token
        if headers.get("authorization") and not authorized:
            return _Canned(401, error(401, TOKEN_INVALID))
        with self._lock:
            if path in ("/api/v2/instance", "/api/v1/instance") and method == "GET":
                return _Canned(200, self._instance(2 if "/v2/" in path else 1))
            if not authorized:
                return _Canned(401, error(401, TOKEN_INVALID))
            segments = path.strip("/").split("/")
            if method == "POST" and path == "/api/v1/statuses":
                return self._post_status(body, headers)
            if method != "GET" or segments[:2] != ["api", "v1"]:
                return _Canned(404, error(404, NOT_FOUND))
            rest = segments[2:]
            if rest == ["accounts", "verify_credentials"]:
                account = self._render_account(self.brand_id)
                return _Canned(200, {**account, "source": {"privacy": "public", "note": ""}})
            if rest == ["notifications"]:
                return self._notifications_page(path, params)
            if len(rest) == 3 and rest[:2] == ["timelines", "tag"]:
                tag = rest[2].lower()
                items = [
                    s
                    for s in self._statuses.values()
                    if tag in [t.lower() for t in s["tags"]]
                    and s["visibility"] == "public"
                    and not s["reblog_of"]
                    and self._visible(s)
                ]
                return self._page(path, params, items, 20, self._render_status)
            if len(rest) == 2 and rest[0] == "statuses":
                status = self._statuses.get(rest[1])
                if not self._visible(status):
                    return _Canned(404, error(404, NOT_FOUND))
                assert status is not None
                return _Canned(200, self._render_status(status))
            if len(rest) == 2 and rest[0] == "accounts" and rest[1] in self._accounts:
                return _Canned(200, self._render_account(rest[1]))
            if len(rest) == 3 and rest[0] == "accounts" and rest[2] == "statuses":
                return self._account_statuses(path, params, rest[1], query)
        return _Canned(404, error(404, NOT_FOUND))

    def _notifications_page(self, path: str, params: dict[str, list[str]]) -> _Canned:
        types = set(params.get("types[]", []))
        excluded = set(params.get("exclude_types[]", []))
        items = []
        for note in self._notifications.values():
            if "raw" in note:
                items.append(note)
                continue
            if (types and note["type"] not in types) or note["type"] in excluded:
                continue
            status = self._statuses.get(note["status_id"] or "")
            if note["status_id"] and (status is None or status["deleted"]):
                continue  # Mastodon removes the notifications of a deleted status
            items.append(note)
        return self._page(path, params, items, 40, self._render_notification)

    def _account_statuses(
        self, path: str, params: dict[str, list[str]], account_id: str, query: dict[str, str]
    ) -> _Canned:
        if account_id not in self._accounts:
            return _Canned(404, error(404, NOT_FOUND))
        truthy = ("1", "true")
        if query.get("pinned") in truthy or query.get("only_media") in truthy:
            return _Canned(200, [])
        items = [
            s
            for s in self._statuses.values()
            if s["account_id"] == account_id
            and self._visible(s)
            and not (query.get("exclude_reblogs") in truthy and s["reblog_of"])
            and not (query.get("exclude_replies") in truthy and s["in_reply_to_id"])
        ]
        return self._page(path, params, items, 20, self._render_status)

    def _page(
        self,
        path: str,
        params: dict[str, list[str]],
        items: list[dict[str, Any]],
        default_limit: int,
        render: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> _Canned:
        """Mastodon's id paging over ``items`` (any order), newest first, with Link headers."""
        query = {k: v[-1] for k, v in params.items()}
        try:
            limit = min(abs(int(query.get("limit") or default_limit)), default_limit * 2) or 1
            bounds = {k: int(query[k]) for k in ("max_id", "since_id", "min_id") if query.get(k)}
        except ValueError:
            return _Canned(400, error(400, "invalid paging parameter"))
        ordered = sorted(items, key=lambda i: int(i["id"]), reverse=True)
        if "max_id" in bounds:
            ordered = [i for i in ordered if int(i["id"]) < bounds["max_id"]]
        if "since_id" in bounds:
            ordered = [i for i in ordered if int(i["id"]) > bounds["since_id"]]
        if "min_id" in bounds:
            ordered = [i for i in ordered if int(i["id"]) > bounds["min_id"]]
            page = ordered[-limit:]  # the ones immediately above min_id
        else:
            page = ordered[:limit]
        headers: dict[str, str] = {}
        if page:
            keep = [
                (k, v) for k, vs in params.items() if k not in bounds for v in vs if k != "limit"
            ]
            keep.append(("limit", str(limit)))
            older = urlencode([*keep, ("max_id", page[-1]["id"])])
            newer = urlencode([*keep, ("min_id", page[0]["id"])])
            headers["Link"] = (
                f'<{self.url}{path}?{older}>; rel="next", <{self.url}{path}?{newer}>; rel="prev"'
            )
        return _Canned(200, [render(i) for i in page], headers)

    def _post_status(self, body: dict[str, Any], headers: dict[str, str]) -> _Canned:
        key = headers.get("idempotency-key")
        if key and key in self._keys:
            sid, at = self._keys[key]
            if time.time() - at < self.idempotency_seconds:
                return _Canned(200, self._render_status(self._statuses[sid]))
        text = str(body.get("status") or "")
        if not text.strip():
            return _Canned(422, error(422, "Validation failed: Text can't be blank"))
        parent_id = str(body["in_reply_to_id"]) if body.get("in_reply_to_id") else None
        if parent_id is not None and not self._visible(self._statuses.get(parent_id)):
            return _Canned(404, error(404, IN_REPLY_NOT_FOUND))
        visibility = str(body.get("visibility") or "public")
        if visibility not in VISIBILITIES:
            return _Canned(422, error(422, "Validation failed: Visibility is not included"))
        if mastodon_length(text) > self.max_characters:
            return _Canned(
                422,
                error(
                    422,
                    f"Validation failed: Text character limit of {self.max_characters} exceeded",
                ),
            )
        sid = self._create(
            self.brand_id,
            text,
            visibility=visibility,
            in_reply_to=parent_id,
            language=str(body.get("language") or "en"),
            spoiler_text=str(body.get("spoiler_text") or ""),
            idempotency_key=key,
        )
        self._posted.append(sid)
        if key:
            self._keys[key] = (sid, time.time())
        rendered = self._render_status(self._statuses[sid])
        if self._after is not None:
            try:
                self._after(rendered)
            except Exception as exc:
                raise _Hang from exc
        return _Canned(200, rendered)


FakeMastodon.server_class = _Server
FakeMastodon.handler_class = _Handler


def start_fake_mastodon(**options: Any) -> FakeMastodon:
    """Start a FakeMastodon on an ephemeral port; ``.stop()`` it (or use ``with``)."""
    return FakeMastodon(**options).start()


@pytest.fixture
def fake_mastodon() -> Iterator[FakeMastodon]:
    """A running FakeMastodon, stopped after the test."""
    fake = start_fake_mastodon()
    try:
        yield fake
    finally:
        fake.stop()
