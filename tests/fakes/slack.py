"""A fake Slack Web API server for tests, driven through the real slack_sdk clients.

It listens on 127.0.0.1 with an ephemeral port in a background thread, records every call and
answers with plausible defaults, canned one-shot responses, or a simulated outage::

    with start_fake_slack() as fake:
        client = WebClient(token="xoxb-test", base_url=fake.api_url)
        client.chat_postMessage(channel="C1", text="hi", blocks=[...])
        [call] = fake.calls_to("chat.postMessage")
        assert call["blocks"][0]["type"] == "section"

How slack_sdk talks to it:

* ``WebClient`` always POSTs, even for "GET" methods; the body is JSON, form-encoded or
  multipart depending on the method. ``AsyncWebClient`` (aiohttp) honours GET and then sends
  ``params`` in the query string. Both are merged into one params dict here.
* The token travels as ``Authorization: Bearer ...``; header keys are recorded lower-cased
  because urllib capitalises them (``Content-type``) while aiohttp keeps them as given.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.base import LoopbackFake, QuietHandler

__all__ = [
    "Call",
    "CannedResponse",
    "FakeSlack",
    "FakeSlackTimeout",
    "fake_slack",
    "start_fake_slack",
]

Body = dict[str, Any] | list[Any] | str | bytes
Handler = Callable[[dict[str, Any]], dict[str, Any]]

#: Params that Slack clients send as JSON-encoded strings in form bodies; decoded by calls_to().
JSON_FIELDS = frozenset(
    {
        "attachments",
        "blocks",
        "files",
        "metadata",
        "options",
        "unfurls",
        "user_auth_blocks",
        "view",
    }
)

TEAM = {
    "url": "https://acme.slack.com/",
    "team": "Acme",
    "user": "socialcare",
    "team_id": "T0ACME",
    "user_id": "U0BOT",
    "bot_id": "B0BOT",
}


class FakeSlackTimeout(AssertionError):
    """wait_for() gave up before enough calls arrived."""


@dataclass(frozen=True)
class Call:
    """One request the fake received.

    ``method`` is the Web API method ("chat.postMessage"), ``"respond:<key>"`` for a POST to a
    response_url, or ``"upload:<file_id>"`` for a POST to a files upload URL. ``params`` holds the
    request parameters exactly as sent (form values are strings, multipart files are bytes, the
    raw upload body is under ``"data"``). ``headers`` has lower-cased keys.
    """

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    http_method: str = "POST"
    path: str = ""


@dataclass(frozen=True)
class CannedResponse:
    status: int = 200
    body: Body = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)


def decode_params(params: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``params`` with JSON-string fields (``blocks``, ``view``...) parsed."""
    out = dict(params)
    for key in JSON_FIELDS & out.keys():
        value = out[key]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                out[key] = json.loads(value)
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    fake: FakeSlack


class _RequestHandler(QuietHandler):
    server: _Server

    def handle_request(self, http_method: str) -> None:
        raw = self.read_body()
        headers = self.lower_headers()
        try:
            canned = self.server.fake._dispatch(http_method, self.path, headers, raw)
        except Exception as exc:  # a bug in the fake or a handler: make it loud, not a hang
            canned = CannedResponse(500, {"ok": False, "error": f"fake_slack_error: {exc!r}"})
        self._send(canned)

    def _send(self, canned: CannedResponse) -> None:
        self.send_body(canned.status, canned.body, canned.headers)


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        parsed = json.loads(raw)
        return parsed if isinstance(parsed, dict) else {"_json": parsed}
    if ctype == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
        )
        params: dict[str, Any] = {}
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            params[str(name)] = data if part.get_filename() else data.decode()
        return params
    if ctype == "application/x-www-form-urlencoded":
        return _flatten(parse_qs(raw.decode(), keep_blank_values=True))
    return {"data": raw}


def _flatten(query: dict[str, list[str]]) -> dict[str, Any]:
    return {k: v[0] if len(v) == 1 else v for k, v in query.items()}


class FakeSlack(LoopbackFake):
    """Fake Slack Web API + response_url + file upload endpoints on 127.0.0.1:<ephemeral>."""

    def __init__(self) -> None:
        self._init_serving(threading.Lock())
        self._calls: list[Call] = []
        self._queued: dict[str, deque[CannedResponse]] = defaultdict(deque)
        self._outages: dict[str | None, CannedResponse] = {}
        self._handlers: dict[str, Handler] = {}
        self._counter = itertools.count(1)
        self._uploads: dict[str, dict[str, Any]] = {}

    # ----------------------------------------------------------------- lifecycle

    # ----------------------------------------------------------------- addresses

    @property
    def url(self) -> str:
        """Root URL with a trailing slash: ``http://127.0.0.1:PORT/``."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        """Pass as ``WebClient(base_url=...)``; the trailing slash matters (urljoin)."""
        return self.url + "api/"

    def response_url(self, key: str) -> str:
        """A response_url whose POSTs are recorded as method ``"respond:<key>"``."""
        return f"{self.url}respond/{key}"

    # ----------------------------------------------------------------- recording

    @property
    def calls(self) -> list[Call]:
        """Snapshot of every call received so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """Params of every call to ``method``, with JSON-string fields decoded."""
        with self._lock:
            return [decode_params(c.params) for c in self._calls if c.method == method]

    def methods(self) -> list[str]:
        """Method names of all calls, in arrival order."""
        with self._lock:
            return [c.method for c in self._calls]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` calls to ``method`` arrived; return calls_to(method)."""

        def arrived() -> bool:
            return sum(c.method == method for c in self._calls) >= count

        with self._changed:
            if not self._changed.wait_for(arrived, timeout=timeout):
                seen = [c.method for c in self._calls]
                raise FakeSlackTimeout(
                    f"timed out after {timeout}s waiting for {count} call(s) to {method!r}; "
                    f"received: {seen}"
                )
        return self.calls_to(method)

    def clear(self) -> None:
        """Forget recorded calls (canned responses, outages and handlers stay)."""
        with self._lock:
            self._calls.clear()

    # ----------------------------------------------------------------- scripting

    def queue(
        self,
        method: str,
        status: int = 200,
        body: Body | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next call to ``method`` with this response (FIFO, one-shot each).

        ``body`` defaults to ``{"ok": True}`` for 200 and ``{"ok": False, "error": ...}`` otherwise.
        Dict/list bodies are sent as JSON, str as text/plain, bytes as octet-stream.
        """
        canned = CannedResponse(
            status, _default_body(status) if body is None else body, dict(headers or {})
        )
        with self._lock:
            self._queued[method].append(canned)

    def fail_all(
        self,
        method: str | None = None,
        status: int = 503,
        body: Body | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Until restore(): answer every call (or every call to ``method``) with ``status``.

        ``None`` covers all endpoints, including response_urls and upload URLs. An outage wins
        over queued responses, which stay queued.
        """
        canned = CannedResponse(
            status, _default_body(status) if body is None else body, dict(headers or {})
        )
        with self._lock:
            self._outages[method] = canned

    def restore(self) -> None:
        """End every outage started with fail_all()."""
        with self._lock:
            self._outages.clear()

    def set_handler(self, method: str, handler: Handler | None) -> None:
        """Replace the default response for ``method``: ``handler(decoded_params) -> body``.

        The handler runs on a server thread. Pass ``None`` to go back to the built-in default.
        """
        with self._lock:
            if handler is None:
                self._handlers.pop(method, None)
            else:
                self._handlers[method] = handler

    def next_ts(self) -> str:
        """A unique, increasing Slack message ts: ``1700000000.000100``, ``.000200``..."""
        micros = next(self._counter) * 100
        return f"{1_700_000_000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    # ----------------------------------------------------------------- serving

    def _dispatch(
        self, http_method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> CannedResponse:
        parts = urlsplit(path)
        params = _flatten(parse_qs(parts.query, keep_blank_values=True))
        route = parts.path.strip("/")
        if not route.startswith("upload/"):
            # An upload body is raw file bytes (urllib labels it form data): never parse it.
            params.update(_parse_body(headers.get("content-type", ""), raw))
        if route.startswith("api/"):
            method, kind = route[len("api/") :], "api"
        elif route.startswith("respond/"):
            method, kind = "respond:" + route[len("respond/") :], "respond"
        elif route.startswith("upload/"):
            method, kind = "upload:" + route[len("upload/") :], "upload"
            params = {"data": raw}
        else:
            method, kind = route or "/", "unknown"

        with self._changed:
            self._calls.append(Call(method, params, headers, http_method, parts.path))
            self._changed.notify_all()
            outage = self._outages.get(method) or self._outages.get(None)
            if outage is not None:
                return outage
            if kind == "unknown":
                return CannedResponse(404, {"ok": False, "error": "unknown_method"})
            if kind == "api" and not _has_token(headers, params):
                return CannedResponse(200, {"ok": False, "error": "not_authed"})
            queued = self._queued.get(method)
            if queued:
                return queued.popleft()
            handler = self._handlers.get(method)

        decoded = decode_params(params)
        if handler is not None:
            return CannedResponse(200, handler(decoded))
        if kind == "respond":
            return CannedResponse(200, {"ok": True})
        if kind == "upload":
            file_id = method.split(":", 1)[1]
            with self._lock:
                if file_id not in self._uploads:
                    return CannedResponse(404, "unknown upload url")
                self._uploads[file_id]["length"] = len(raw)
            return CannedResponse(200, "OK")
        return CannedResponse(200, self._default(method, decoded))

    def _default(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, **TEAM}
        if method == "chat.postMessage":
            ts = self.next_ts()
            message: dict[str, Any] = {
                "type": "message",
                "user": TEAM["user_id"],
                "bot_id": TEAM["bot_id"],
                "text": p.get("text", ""),
                "ts": ts,
            }
            for key in ("blocks", "attachments", "thread_ts", "metadata"):
                if key in p:
                    message[key] = p[key]
            return {"ok": True, "channel": p.get("channel"), "ts": ts, "message": message}
        if method == "chat.update":
            return {
                "ok": True,
                "channel": p.get("channel"),
                "ts": p.get("ts"),
                "text": p.get("text", ""),
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self.next_ts()}
        if method in ("chat.delete",):
            return {"ok": True, "channel": p.get("channel"), "ts": p.get("ts")}
        if method in ("views.open", "views.update", "views.push", "views.publish"):
            view = p.get("view") if isinstance(p.get("view"), dict) else {}
            view_id = p.get("view_id") or "V123"
            return {"ok": True, "view": {**view, "id": view_id, "hash": f"h{view_id}"}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._counter):08d}"
            with self._lock:
                self._uploads[file_id] = {"filename": p.get("filename"), "length": None}
            return {"ok": True, "upload_url": f"{self.url}upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = p.get("files") if isinstance(p.get("files"), list) else []
            with self._lock:
                out = [
                    {
                        "id": f.get("id"),
                        "title": f.get("title"),
                        "name": self._uploads.get(f.get("id"), {}).get("filename"),
                        "size": self._uploads.get(f.get("id"), {}).get("length"),
                    }
                    for f in files
                    if isinstance(f, dict)
                ]
            return {"ok": True, "files": out}
        if method == "conversations.info":
            channel = str(p.get("channel", "C0UNKNOWN"))
            return {
                "ok": True,
                "channel": {
                    "id": channel,
                    "name": channel.lower(),
                    "is_channel": True,
                    "is_private": False,
                    "is_member": True,
                },
            }
        if method == "users.info":
            user = str(p.get("user", "U0UNKNOWN"))
            return {
                "ok": True,
                "user": {
                    "id": user,
                    "team_id": TEAM["team_id"],
                    "name": user.lower(),
                    "real_name": f"User {user}",
                    "is_bot": False,
                    "deleted": False,
                    "tz": "Europe/London",
                    "profile": {"display_name": user.lower(), "real_name": f"User {user}"},
                },
            }
        return {"ok": True}


def _has_token(headers: dict[str, str], params: dict[str, Any]) -> bool:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "basic") and credentials.strip():
        return True
    return bool(params.get("token"))  # Slack also accepts token= in the body


def _default_body(status: int) -> dict[str, Any]:
    if status == 200:
        return {"ok": True}
    if status == 429:
        return {"ok": False, "error": "ratelimited"}
    return {"ok": False, "error": f"http_{status}"}


def start_fake_slack() -> FakeSlack:
    """Start a FakeSlack on an ephemeral port; call ``.stop()`` (or use ``with``) when done."""
    return FakeSlack().start()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A running FakeSlack, stopped after the test. Import into a conftest to share it."""
    fake = start_fake_slack()
    try:
        yield fake
    finally:
        fake.stop()


FakeSlack.server_class = _Server
FakeSlack.handler_class = _RequestHandler
