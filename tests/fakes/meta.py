"""A fake Meta Graph API for tests, on 127.0.0.1 with an ephemeral port, driven through the
real `integrations.meta_graph.GraphClient` (plain `requests`).

A tiny world: one Facebook Page (its posts, visitor posts, comments and replies) and one
Instagram professional account (its media, their comments and replies, media it is tagged
or @mentioned in). Every call must carry the page token (``Authorization: Bearer``) and
``appsecret_proof`` (HMAC-SHA256 of the token keyed by the app secret), or it is answered
like Meta does (code 190 for a bad token, code 100 for a bad or missing proof)::

    with start_fake_graph() as fake:
        post = fake.add_post("Our winter timetable is out")
        comment = fake.add_comment(post, "my flight was cancelled!", author=("901", "Maya Okafor"))
        graph = GraphClient(access_token=fake.token, app_secret=fake.app_secret,
                            base_url=fake.url)
        graph.post(f"{comment}/comments", {"message": "Sorry Maya, please DM us"})
        assert [r["message"] for r in fake.page_replies(comment)] == ["Sorry Maya, please DM us"]

Served (under ``/{version}/``):

* ``GET /{page}``, ``GET /{ig-user}`` (``fields`` may expand ``mentioned_media.media_id(X){..}``
  and ``mentioned_comment.comment_id(X){..}``), ``GET /{page}/feed`` (the page's posts and
  visitor posts, with ``updated_time``), ``GET /{page}/tagged`` (``add_elsewhere()``),
  ``GET /{ig-user}/media`` (with ``comments_count``), ``GET /{ig-user}/tags`` (``tag_account()``),
  ``GET /{object}`` for any post, comment or medium
* ``GET /{post-or-comment}/comments`` (``filter=stream``: replies too;
  ``order=reverse_chronological``), ``GET /{ig-media}/comments`` (with ``replies``),
  ``GET /{ig-comment}/replies``
* ``POST /{post-or-comment}/comments`` (replies are by the page), ``POST /{ig-comment}/replies``,
  ``POST /{ig-user}/mentions`` (``media_id``, optional ``comment_id``, ``message``)
* ``POST /{page}/messages`` and ``/me/messages`` (private replies: ``recipient={"comment_id"}``,
  or ``{"post_id"}`` for a visitor post;
  one per comment, else error 10900; older than 7 days by ``fake.now``: code 10, subcode
  2018278)
* ``POST /{comment}`` with ``is_hidden`` (Facebook) or ``hide`` (Instagram)

Paging is Graph's: ``paging.cursors.after`` and ``paging.next`` while more remain (``limit``).
Faults: ``queue()`` (a canned error answer for the next matching call, e.g. a throttle),
``lose_next()`` (the call takes effect, the connection closes without an answer),
``on_post()`` hooks (run after a POST took effect, before its answer), ``calls``.
Field selection is checked as Graph does: asking a node type for a field it does not have
(``username`` on a Facebook comment, ``message`` on an Instagram comment) is error 100
"Tried accessing nonexisting field"; the answer still carries every field.
Not modelled: edits, reactions, attachments.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.base import LoopbackFake, QuietHandler

PAGE_ID = "102030405060708"
IG_ACCOUNT_ID = "17841400000000000"
IG_USERNAME = "acmeair"
TOKEN = "EAAtestpagetoken0000000000000000notreal"
APP_SECRET = "test-app-secret-not-real-0000"
VERIFY_TOKEN = "test-verify-token-not-real"


def graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def proof(token: str, secret: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    """The `X-Hub-Signature-256` header Meta sends with a webhook delivery."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def graph_error(code: int, message: str, *, subcode: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AfakeTrace"
    return {"error": error}


@dataclass
class Call:
    method: str
    path: str  # without the version, e.g. "123_456/comments"
    params: dict[str, str]
    authorization: str


@dataclass
class Node:
    id: str
    kind: str  # fb_post, fb_comment, ig_media, ig_comment
    created: datetime
    text: str
    author_id: str
    author_name: str
    parent: str | None = None  # a comment's parent (post, media or comment)
    root: str | None = None  # the post or media it is under
    hidden: bool = False
    permalink: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# The fields each node type has (a subset of Meta's reference, enough for what the bot asks).
FIELDS = {
    "fb_post": {
        "id", "message", "from", "created_time", "updated_time", "permalink_url",
        "is_hidden", "comments", "attachments", "story", "parent_id",
    },
    "fb_comment": {
        "id", "message", "from", "created_time", "permalink_url", "parent", "is_hidden",
        "comments", "attachment", "like_count", "comment_count", "can_hide", "object",
    },
    "ig_media": {
        "id", "caption", "username", "timestamp", "permalink", "comments_count", "comments",
        "media_type", "media_url", "like_count", "owner",
    },
    "ig_comment": {
        "id", "text", "username", "from", "timestamp", "hidden", "media", "parent_id",
        "replies", "like_count", "user",
    },
}  # fmt: skip


NODE_TYPES = {"fb_post": "Post", "fb_comment": "Comment", "ig_media": "IGMedia"}
NODE_TYPES["ig_comment"] = "IGComment"


def top_level_fields(fields: str) -> list[str]:
    """`a,b{c,d},e.limit(3){f}` -> [a, b, e]: the names at the outermost level."""
    names, depth, current = [], 0, ""
    for char in fields + ",":
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            names.append(re.split(r"[.(]", current.strip(), maxsplit=1)[0])
            current = ""
            continue
        if depth == 0 and char not in "{}":
            current += char
    return [n for n in names if n]


class _Lost(Exception):
    """Close the connection without an answer."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


class _Handler(QuietHandler):
    def handle_request(self, method: str) -> None:
        fake: FakeGraph = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        body = self.read_body().decode()
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if method == "POST":
            params.update({k: v[-1] for k, v in parse_qs(body).items()})
        path = parts.path.strip("/").split("/", 1)[1] if "/" in parts.path.strip("/") else ""
        try:
            status, answer = fake.answer(
                method, path, params, self.headers.get("Authorization", "")
            )
        except _Lost:
            return  # HTTP/1.0: the connection closes with nothing written
        self.send_body(status, answer, {})


class FakeGraph(LoopbackFake):
    server_class = _Server
    handler_class = _Handler

    def __init__(
        self,
        *,
        token: str = TOKEN,
        app_secret: str = APP_SECRET,
        page_id: str = PAGE_ID,
        ig_account_id: str = IG_ACCOUNT_ID,
        ig_username: str = IG_USERNAME,
        version: str = "v23.0",
    ) -> None:
        self._init_serving(threading.RLock())
        self.token, self.app_secret, self.version = token, app_secret, version
        self.page_id, self.ig_account_id, self.ig_username = page_id, ig_account_id, ig_username
        self.page_name = "Acme Air"
        self.now = datetime.now(UTC)  # the private-reply window is counted from this
        self.nodes: dict[str, Node] = {}
        self.tagged: list[str] = []  # foreign media the account is tagged in
        self.page_tagged: list[str] = []  # posts elsewhere that @mention the page
        self.messages: list[dict[str, Any]] = []  # private replies sent
        self.calls: list[Call] = []
        self._ids = itertools.count(1000)
        self._canned: deque[tuple[str, str, int, dict[str, Any]]] = deque()
        self._lose: deque[tuple[str, str]] = deque()
        self._hooks: list[Callable[[str, str], None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------- the world

    def _new_id(self) -> str:
        return str(next(self._ids))

    def add_post(
        self, text: str, *, at: datetime | None = None, author: tuple[str, str] | None = None
    ) -> str:
        """A post in the page's feed: the page's own, or a visitor's (`author`=(id, name))."""
        with self._lock:
            post_id = f"{self.page_id}_{self._new_id()}"
            who = author or (self.page_id, self.page_name)
            self.nodes[post_id] = Node(
                post_id,
                "fb_post",
                at or datetime.now(UTC),
                text,
                who[0],
                who[1],
                permalink=f"https://www.facebook.com/{post_id}",
            )
            return post_id

    def add_elsewhere(
        self, text: str, *, author: tuple[str, str], at: datetime | None = None
    ) -> str:
        """A post on someone's own timeline that @mentions the page (`GET /{page}/tagged`)."""
        with self._lock:
            post_id = f"{author[0]}_{self._new_id()}"
            self.nodes[post_id] = Node(
                post_id,
                "fb_post",
                at or datetime.now(UTC),
                text,
                author[0],
                author[1],
                permalink=f"https://www.facebook.com/{post_id}",
            )
            self.page_tagged.append(post_id)
            return post_id

    def add_comment(
        self, parent: str, text: str, *, author: tuple[str, str], at: datetime | None = None
    ) -> str:
        """A Facebook comment on a post, or a reply to a comment."""
        with self._lock:
            return self._fb_comment(parent, text, author, at or datetime.now(UTC))

    def _fb_comment(self, parent: str, text: str, author: tuple[str, str], at: datetime) -> str:
        node = self.nodes[parent]
        root = node.id if node.kind == "fb_post" else (node.root or node.id)
        comment_id = f"{root.split('_')[-1]}_{self._new_id()}"
        self.nodes[comment_id] = Node(
            comment_id,
            "fb_comment",
            at,
            text,
            author[0],
            author[1],
            parent=parent,
            root=root,
            permalink=f"https://www.facebook.com/{comment_id}",
        )
        return comment_id

    def add_media(
        self, caption: str = "", *, at: datetime | None = None, owner: str | None = None
    ) -> str:
        """Instagram media: the account's own, or someone else's (`owner` a username)."""
        with self._lock:
            media_id = self._new_id()
            self.nodes[media_id] = Node(
                media_id,
                "ig_media",
                at or datetime.now(UTC),
                caption,
                self.ig_account_id if owner is None else f"igsid-{owner}",
                owner or self.ig_username,
                permalink=f"https://www.instagram.com/p/{media_id}/",
            )
            return media_id

    def tag_account(self, media_id: str) -> None:
        with self._lock:
            self.tagged.append(media_id)

    def add_ig_comment(
        self, parent: str, text: str, *, username: str, at: datetime | None = None
    ) -> str:
        """An Instagram comment on media, or a reply to a comment."""
        with self._lock:
            return self._ig_comment(
                parent, text, f"igsid-{username}", username, at or datetime.now(UTC)
            )

    def _ig_comment(
        self, parent: str, text: str, author_id: str, username: str, at: datetime
    ) -> str:
        node = self.nodes[parent]
        root = node.id if node.kind == "ig_media" else (node.root or node.id)
        comment_id = self._new_id()
        self.nodes[comment_id] = Node(
            comment_id, "ig_comment", at, text, author_id, username, parent=parent, root=root
        )
        return comment_id

    def page_replies(self, target: str) -> list[dict[str, Any]]:
        """What the page (or the Instagram account) posted under `target`."""
        with self._lock:
            mine = {self.page_id, self.ig_account_id}
            return [
                {"id": n.id, "message": n.text}
                for n in self.nodes.values()
                if n.parent == target and n.author_id in mine
            ]

    def queue(self, method: str, path: str, status: int, body: dict[str, Any]) -> None:
        """Answer the next call matching (method, path suffix) with `body`, doing nothing."""
        with self._lock:
            self._canned.append((method.upper(), path, status, body))

    def throttle(self, method: str = "GET", path: str = "", *, code: int = 4) -> None:
        self.queue(method, path, 400, graph_error(code, "Application request limit reached"))

    def lose_next(self, method: str, path: str) -> None:
        """The next matching call takes effect, but its answer is lost."""
        with self._lock:
            self._lose.append((method.upper(), path))

    def on_post(self, hook: Callable[[str, str], None] | None) -> None:
        """`hook(path, new_id)` runs after a POST took effect, before the answer."""
        with self._lock:
            self._hooks = [hook] if hook else []

    def calls_to(self, method: str, suffix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.path.endswith(suffix)]

    # ----------------------------------------------------------------- serving

    def answer(
        self, method: str, path: str, params: dict[str, str], authorization: str
    ) -> tuple[int, Any]:
        with self._lock:
            self.calls.append(Call(method, path, dict(params), authorization))
            # Graph takes the token as `access_token` or in the header; both, if sent,
            # must be right.
            given = {params.get("access_token"), authorization.removeprefix("Bearer ") or None}
            given.discard(None)
            if given != {self.token}:
                return 400, graph_error(
                    190, "Invalid OAuth access token - Cannot parse access token"
                )
            if params.get("appsecret_proof") != proof(self.token, self.app_secret):
                return 400, graph_error(100, "Invalid appsecret_proof provided in the API argument")
            for entry in self._canned:
                if entry[0] == method and path.endswith(entry[1]):
                    self._canned.remove(entry)
                    return entry[2], entry[3]
            lose = next((e for e in self._lose if e[0] == method and path.endswith(e[1])), None)
            if lose is not None:
                self._lose.remove(lose)
            status, body = (self._get if method == "GET" else self._post)(path, params)
        if method == "POST" and status == 200:
            for hook in list(self._hooks):
                hook(path, str(body.get("id") or body.get("message_id") or ""))
        if lose is not None:
            raise _Lost
        return status, body

    def _missing(self, object_id: str) -> tuple[int, Any]:
        return 400, graph_error(
            100,
            f"Unsupported request. Object with ID '{object_id}' does not exist, cannot be"
            " loaded due to missing permissions, or does not support this operation",
        )

    def _page(self, items: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
        limit = int(params.get("limit") or 25)
        start = int(params.get("after") or 0)
        chunk = items[start : start + limit]
        body: dict[str, Any] = {"data": chunk}
        if chunk:
            body["paging"] = {"cursors": {"before": str(start), "after": str(start + len(chunk))}}
            if start + limit < len(items):
                body["paging"]["next"] = f"{self.url}/next"
        return body

    def _children(self, parent: str, *, deep: bool = False) -> list[Node]:
        found = [n for n in self.nodes.values() if n.parent == parent]
        if deep:
            found += [n for c in list(found) for n in self._children(c.id, deep=True)]
        return found

    def _fb(self, node: Node) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": node.id,
            "message": node.text,
            "from": {"id": node.author_id, "name": node.author_name},
            "created_time": graph_time(node.created),
            "permalink_url": node.permalink,
        }
        if node.kind == "fb_post":  # moves with every comment under it, as on Facebook
            under = [node, *self._children(node.id, deep=True)]
            out["updated_time"] = graph_time(max(n.created for n in under))
        if node.kind == "fb_comment":
            out["is_hidden"] = node.hidden
            if node.parent and self.nodes[node.parent].kind == "fb_comment":
                out["parent"] = {"id": node.parent}
        return out

    def _ig(self, node: Node, *, replies: bool = False) -> dict[str, Any]:
        if node.kind == "ig_media":
            return {
                "id": node.id,
                "caption": node.text,
                "username": node.author_name,
                "timestamp": graph_time(node.created),
                "permalink": node.permalink,
                "comments_count": len(self._children(node.id, deep=True)),
            }
        out: dict[str, Any] = {
            "id": node.id,
            "text": node.text,
            "username": node.author_name,
            "from": {"id": node.author_id, "username": node.author_name},
            "timestamp": graph_time(node.created),
            "hidden": node.hidden,
            "media": {"id": node.root, "permalink": self.nodes[node.root or ""].permalink},
        }
        if node.parent != node.root:
            out["parent_id"] = node.parent
        if replies:
            kids = sorted(self._children(node.id), key=lambda n: n.created)
            out["replies"] = {"data": [self._ig(k) for k in kids]}
        return out

    def _nonexisting(self, kind: str, params: dict[str, str]) -> tuple[int, Any] | None:
        """Graph's answer to a field the node type does not have (None: all exist)."""
        for name in top_level_fields(params.get("fields", "")):
            if name not in FIELDS[kind]:
                return 400, graph_error(
                    100,
                    f"(#100) Tried accessing nonexisting field ({name}) on node type"
                    f" ({NODE_TYPES[kind]})",
                )
        return None

    def _get(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        object_id, _, edge = path.partition("/")
        answered = self._kind_asked(object_id, edge)
        if answered is not None:
            refused = self._nonexisting(answered, params)
            if refused is not None:
                return refused
        return self._get_fields_ok(object_id, edge, params)

    def _kind_asked(self, object_id: str, edge: str) -> str | None:
        """The node type whose fields a GET asks for (None: a page or account node)."""
        if object_id == self.page_id:
            return "fb_post" if edge in ("feed", "tagged") else None
        if object_id == self.ig_account_id:
            return "ig_media" if edge in ("media", "tags") else None
        node = self.nodes.get(object_id)
        if node is None:
            return None
        if not edge:
            return node.kind
        if edge == "comments":
            return "fb_comment" if node.kind.startswith("fb") else "ig_comment"
        if edge == "replies":
            return "ig_comment"
        return None

    def _get_fields_ok(self, object_id: str, edge: str, params: dict[str, str]) -> tuple[int, Any]:
        newest_first = lambda nodes: sorted(nodes, key=lambda n: n.created, reverse=True)  # noqa: E731
        if object_id == self.page_id and not edge:
            return 200, {"id": self.page_id, "name": self.page_name}
        if object_id == self.ig_account_id and not edge:
            return self._ig_user(params.get("fields", ""))
        if object_id == self.page_id and edge == "tagged":
            posts = newest_first(self.nodes[p] for p in self.page_tagged)
            return 200, self._page([self._fb(p) for p in posts], params)
        if object_id == self.page_id and edge == "feed":
            posts = newest_first(
                n
                for n in self.nodes.values()
                if n.kind == "fb_post" and n.id.startswith(f"{self.page_id}_")
            )
            return 200, self._page([self._fb(p) for p in posts], params)
        if object_id == self.ig_account_id and edge == "media":
            media = newest_first(
                n
                for n in self.nodes.values()
                if n.kind == "ig_media" and n.author_id == self.ig_account_id
            )
            return 200, self._page([self._ig(m) for m in media], params)
        if object_id == self.ig_account_id and edge == "tags":
            media = newest_first(self.nodes[m] for m in self.tagged)
            return 200, self._page([self._ig(m) for m in media], params)
        node = self.nodes.get(object_id)
        if node is None:
            return self._missing(object_id)
        if edge == "comments" and node.kind in ("fb_post", "fb_comment"):
            kids = self._children(object_id, deep=params.get("filter") == "stream")
            ordered = sorted(
                kids,
                key=lambda n: n.created,
                reverse=params.get("order") == "reverse_chronological",
            )
            return 200, self._page([self._fb(k) for k in ordered], params)
        if edge == "comments" and node.kind == "ig_media":
            kids = newest_first(self._children(object_id))
            return 200, self._page([self._ig(k, replies=True) for k in kids], params)
        if edge == "replies" and node.kind == "ig_comment":
            kids = sorted(self._children(object_id), key=lambda n: n.created)
            return 200, self._page([self._ig(k) for k in kids], params)
        if not edge:
            return 200, self._fb(node) if node.kind.startswith("fb") else self._ig(node)
        return self._missing(f"{object_id}/{edge}")

    def _ig_user(self, fields: str) -> tuple[int, Any]:
        out: dict[str, Any] = {"id": self.ig_account_id, "username": self.ig_username}
        media = re.search(r"mentioned_media\.media_id\((\d+)\)", fields)
        comment = re.search(r"mentioned_comment\.comment_id\((\d+)\)", fields)
        if media:
            node = self.nodes.get(media.group(1))
            if node is None:
                return self._missing(media.group(1))
            out["mentioned_media"] = {
                **self._ig(node),
                "comments": {"data": [self._ig(k) for k in self._children(node.id)]},
            }
        if comment:
            node = self.nodes.get(comment.group(1))
            if node is None:
                return self._missing(comment.group(1))
            out["mentioned_comment"] = self._ig(node, replies=True)
        return 200, out

    def _post(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        object_id, _, edge = path.partition("/")
        if edge == "messages" and object_id in (self.page_id, "me"):
            return self._private_reply(params)
        if object_id == self.ig_account_id and edge == "mentions":
            target = params.get("comment_id") or params.get("media_id") or ""
            if target not in self.nodes:
                return self._missing(target)
            return 200, {
                "id": self._ig_comment(
                    target,
                    params["message"],
                    self.ig_account_id,
                    self.ig_username,
                    datetime.now(UTC),
                )
            }
        node = self.nodes.get(object_id)
        if node is None:
            return self._missing(object_id)
        if edge == "comments" and node.kind in ("fb_post", "fb_comment"):
            if not params.get("message"):
                return 400, graph_error(100, "(#100) Missing message or attachment")
            if node.kind == "fb_comment" and node.parent != node.root:
                object_id = node.parent or object_id  # threads are two deep, as on Facebook
            return 200, {
                "id": self._fb_comment(
                    object_id, params["message"], (self.page_id, self.page_name), datetime.now(UTC)
                )
            }
        if edge == "replies" and node.kind == "ig_comment":
            if node.parent != node.root:
                return 400, graph_error(100, "(#100) Replies to replies are not supported")
            return 200, {
                "id": self._ig_comment(
                    object_id,
                    params["message"],
                    self.ig_account_id,
                    self.ig_username,
                    datetime.now(UTC),
                )
            }
        if not edge and node.kind == "fb_comment" and "is_hidden" in params:
            node.hidden = params["is_hidden"] == "true"
            return 200, {"success": True}
        if not edge and node.kind == "ig_comment" and "hide" in params:
            node.hidden = params["hide"] == "true"
            return 200, {"success": True}
        return self._missing(path)

    def _private_reply(self, params: dict[str, str]) -> tuple[int, Any]:
        recipient = json.loads(params.get("recipient") or "{}")
        message = json.loads(params.get("message") or "{}")
        # A comment by `comment_id`; a visitor post on the page by `post_id`, as Meta takes them.
        kinds = ("fb_post",) if "post_id" in recipient else ("fb_comment", "ig_comment")
        target = str(recipient.get("post_id") or recipient.get("comment_id"))
        comment = self.nodes.get(target)
        if comment is None or comment.kind not in kinds or comment.author_id == self.page_id:
            return self._missing(target)
        if any(m["comment_id"] == comment.id for m in self.messages):
            return 400, graph_error(10900, "Activity already replied to")
        if self.now - comment.created > timedelta(days=7):
            return 400, graph_error(
                10, "This message is sent outside of allowed window.", subcode=2018278
            )
        message_id = f"m_{self._new_id()}"
        self.messages.append(
            {"comment_id": comment.id, "text": message.get("text"), "message_id": message_id}
        )
        return 200, {"recipient_id": comment.author_id, "message_id": message_id}


@contextmanager
def start_fake_graph(**kwargs: Any) -> Iterator[FakeGraph]:
    fake = FakeGraph(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()


def delivery(
    obj: str, entry_id: str, changes: list[dict[str, Any]], *, time: int = 1_700_000_000
) -> bytes:
    """A webhook delivery body as Meta sends it."""
    return json.dumps(
        {"object": obj, "entry": [{"id": entry_id, "time": time, "changes": changes}]}
    ).encode()


def feed_comment(
    comment_id: str,
    post_id: str,
    text: str,
    *,
    author: tuple[str, str],
    at: datetime,
    verb: str = "add",
) -> dict[str, Any]:
    """A Page `feed` change for a comment, as Meta delivers it."""
    return {
        "field": "feed",
        "value": {
            "from": {"id": author[0], "name": author[1]},
            "post": {"id": post_id, "status_type": "added_photos", "is_published": True},
            "message": text,
            "post_id": post_id,
            "comment_id": comment_id,
            "created_time": int(at.timestamp()),
            "item": "comment",
            "parent_id": post_id,
            "verb": verb,
        },
    }
