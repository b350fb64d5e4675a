"""A fake OpenAI-compatible Chat Completions server, driven through the real ``openai`` SDK.

It listens on 127.0.0.1 with an ephemeral port in a background thread, records every request and
answers with scripted replies, a pluggable default responder, HTTP errors, delays or hangs::

    with start_fake_openai() as fake:
        client = OpenAI(base_url=fake.base_url, api_key="test-key-not-real", max_retries=0)
        fake.reply_json({"intent": "complaint"})
        done = client.chat.completions.parse(model="m", messages=[...], response_format=Triage)
        assert done.choices[0].message.parsed == Triage(intent="complaint")
        assert fake.requests[0]["response_format"]["type"] == "json_schema"

How the openai SDK (3.x, on ``httpx2``) talks to it -- respx cannot intercept httpx2, hence a real
socket:

* ``POST {base_url}/chat/completions`` with a JSON body (``model``, ``messages``...). ``parse()``
  also sends ``"stream": false`` and ``response_format = {"type": "json_schema", "json_schema":
  {"name": <Model.__name__>, "schema": <strict schema>, "strict": true}}`` plus the header
  ``x-stainless-helper-method: chat.completions.parse``.
* ``Authorization: Bearer <api_key>``, ``x-stainless-retry-count: <n>`` (0 on the first attempt)
  and ``x-stainless-read-timeout: <client or per-call timeout>``; no idempotency key.
* parse() validates ``message.content`` with ``Model.model_validate_json``: malformed JSON, a
  missing field or an unknown enum value raise ``pydantic.ValidationError`` (not an openai
  error, never retried). ``finish_reason`` "length" / "content_filter" raise
  ``openai.LengthFinishReasonError`` / ``openai.ContentFilterFinishReasonError``; a refusal or
  empty content gives ``parsed=None``.
* Retries (``max_retries``, default 2) happen on connection errors, timeouts and on 408, 409, 429
  and >= 500 -- unless the response says ``x-should-retry: false`` (``true`` forces a retry).
  The wait honours ``retry-after-ms`` then ``retry-after`` (seconds or HTTP date) when it is in
  (0, 120] seconds; otherwise exponential backoff 0.5s * 2**n (max 8s) minus up to 25% jitter.
  A retry-after above 120s disables the retry altogether. Every attempt is recorded here.
* Usage is deterministic: ``prompt_tokens`` = total characters of all message contents, plus
  the compact JSON of ``response_format.json_schema`` when there is one, // 4,
  ``completion_tokens`` = len(reply content) // 4 + 1, and
  ``prompt_tokens_details.cached_tokens`` = the characters of the leading messages that are
  identical (role and content) to the leading messages of an earlier request, // 4 -- a
  provider's prompt cache at message granularity, without a minimum length.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakes.base import LoopbackFake, QuietHandler

__all__ = [
    "CHAT_PATH",
    "Call",
    "FakeOpenAI",
    "FakeOpenAITimeout",
    "Reply",
    "Responder",
    "chat_completion",
    "count_prompt_tokens",
    "fake_openai",
    "message_text",
    "sse_chunks",
    "start_fake_openai",
]

#: Normalised route of the Chat Completions endpoint (see ``_route``).
CHAT_PATH = "chat/completions"
#: ``created`` timestamp of every fake completion (fixed, so snapshots are stable).
CREATED = 1_767_225_600
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")

JsonBody = dict[str, Any] | list[Any] | str | bytes


class FakeOpenAITimeout(AssertionError):
    """wait_for() gave up before enough requests arrived."""


@dataclass(frozen=True)
class Call:
    """One HTTP request the fake received.

    ``path`` is the raw request path (``/v1/chat/completions``), ``route`` the normalised one
    without the ``v1`` prefix (``chat/completions``). ``body`` is the decoded JSON body (``{}``
    when empty, ``{"_raw": "..."}`` when it was not a JSON object). ``headers`` has lower-cased
    keys.
    """

    method: str
    path: str
    route: str
    body: dict[str, Any]
    headers: dict[str, str]
    raw: bytes = b""


@dataclass(frozen=True)
class Reply:
    """A scripted HTTP answer.

    ``content`` (str) makes a chat.completion with that assistant message; otherwise ``body`` is
    sent as is (dict/list as JSON, str as text/plain, bytes as octet-stream) with ``status`` and
    ``headers``. ``refusal`` fills ``message.refusal`` (content then defaults to ``None``).
    """

    status: int = 200
    content: str | None = None
    body: JsonBody | None = None
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str = "stop"
    refusal: str | None = None


#: ``fn(request_body) -> str | dict | Reply``. A str is the assistant message content. A dict
#: with an int ``"status"`` key is an HTTP spec ``{"status", "body", "headers"}``; any other dict
#: is a raw 200 JSON body (e.g. a hand-made chat.completion).
Responder = Callable[[dict[str, Any]], str | dict[str, Any] | Reply]


def message_text(message: Any) -> str:
    """The text of one chat message: a str content, or the text parts of a content list."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def count_prompt_tokens(body: dict[str, Any]) -> int:
    """The fake's deterministic prompt_tokens: characters of the message contents plus the
    structured-output schema (providers bill it as prompt too), // 4."""
    messages = body.get("messages")
    chars = sum(len(message_text(m)) for m in messages) if isinstance(messages, list) else 0
    schema = body.get("response_format")
    if isinstance(schema, dict) and schema.get("type") == "json_schema":
        chars += len(json.dumps(schema.get("json_schema"), separators=(",", ":")))
    return chars // 4


def count_completion_tokens(content: str | None) -> int:
    """The fake's deterministic completion_tokens: len(content) // 4 + 1."""
    return len(content or "") // 4 + 1


def message_prefixes(body: dict[str, Any]) -> list[tuple[str, int]]:
    """(fingerprint, characters) of each leading run of messages: messages[:1], [:2], ..."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    out: list[tuple[str, int]] = []
    chars = 0
    for end in range(1, len(messages) + 1):
        chars += len(message_text(messages[end - 1]))
        out.append((json.dumps(messages[:end], sort_keys=True), chars))
    return out


def chat_completion(
    request: dict[str, Any],
    content: str | None,
    *,
    completion_id: str = "chatcmpl-fake-000001",
    finish_reason: str = "stop",
    refusal: str | None = None,
    cached_tokens: int = 0,
) -> dict[str, Any]:
    """A valid ``chat.completion`` object answering ``request`` with ``content``."""
    prompt_tokens = count_prompt_tokens(request)
    completion_tokens = count_completion_tokens(content if content is not None else refusal)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": str(request.get("model") or "fake-model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": min(cached_tokens, prompt_tokens)},
        },
        "system_fingerprint": "fp_fake",
    }


def sse_chunks(completion: dict[str, Any], request: dict[str, Any]) -> bytes:
    """``completion`` as a ``stream=True`` answer: role+content chunk, finish chunk, [DONE].

    A usage-only chunk is added when the request had ``stream_options.include_usage``.
    """
    choice = completion["choices"][0]
    message = choice["message"]
    base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    delta: dict[str, Any] = {"role": "assistant", "content": message["content"]}
    if message["refusal"] is not None:
        delta["refusal"] = message["refusal"]
    events: list[dict[str, Any]] = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
        },
    ]
    options = request.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        events.append({**base, "choices": [], "usage": completion["usage"]})
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error envelope for ``status``."""
    kinds: dict[int, tuple[str, str | None, str]] = {
        400: ("invalid_request_error", None, "Bad request."),
        401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
        403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
        404: ("invalid_request_error", "unknown_url", "Not found."),
        408: ("timeout", None, "Request timed out."),
        409: ("invalid_request_error", "conflict", "Conflict."),
        422: ("invalid_request_error", None, "Unprocessable entity."),
        429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    }
    kind, code, default = kinds.get(
        status, ("server_error", None, "The server had an error while processing your request.")
    )
    return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    fake: FakeOpenAI


class _RequestHandler(QuietHandler):
    json_content_type = "application/json"
    server: _Server

    def do_DELETE(self) -> None:
        self.handle_request("DELETE")

    def handle_request(self, http_method: str) -> None:
        raw = self.read_body()
        headers = self.lower_headers()
        fake = self.server.fake
        try:
            answer = fake._dispatch(http_method, self.path, headers, raw)
        except Exception as exc:  # a bug in the fake or a responder: make it loud, not a hang
            answer = _Answer(500, error_body(500, f"fake_openai_error: {exc!r}"))
        if answer is None:  # the fake was stopped while this request hung
            return
        with contextlib.suppress(OSError):  # client gave up (timeout) or the server is stopping
            self._send(answer)

    def _send(self, answer: _Answer) -> None:
        self.send_body(answer.status, answer.body, answer.headers)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: JsonBody
    headers: dict[str, str] = field(default_factory=dict)


def _route(path: str) -> str:
    route = urlsplit(path).path.strip("/")
    if route == "v1" or route.startswith("v1/"):
        route = route[2:].lstrip("/")
    return route


def _decode_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"_raw": raw.decode(errors="replace")}
    return parsed if isinstance(parsed, dict) else {"_json": parsed}


class FakeOpenAI(LoopbackFake):
    """Fake OpenAI-compatible API on 127.0.0.1:<ephemeral>; use ``base_url`` with ``OpenAI()``.

    ``api_key``: if set, requests whose bearer token differs get a 401 (``AuthenticationError``);
    otherwise any non-empty bearer is accepted and a missing one gets a 401.
    """

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self._init_serving(threading.Lock())
        self._calls: list[Call] = []
        self._replies: deque[Reply] = deque()
        self._delays: deque[float] = deque()
        self._responder: Responder | None = None
        self._ids = itertools.count(1)
        self._seen_prefixes: set[str] = set()

    # ----------------------------------------------------------------- lifecycle

    # ----------------------------------------------------------------- addresses

    @property
    def url(self) -> str:
        """Root URL without a trailing slash: ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Pass as ``OpenAI(base_url=...)``: ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    # ----------------------------------------------------------------- recording

    @property
    def calls(self) -> list[Call]:
        """Snapshot of every request received so far (all paths), in arrival order."""
        with self._lock:
            return list(self._calls)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """JSON bodies of every chat-completions request (each retry attempt counts)."""
        with self._lock:
            return [c.body for c in self._calls if c.route == CHAT_PATH]

    @property
    def last_request(self) -> dict[str, Any]:
        """The latest chat-completions request body; AssertionError if there was none."""
        requests = self.requests
        if not requests:
            raise AssertionError("FakeOpenAI received no chat completions request")
        return requests[-1]

    def calls_to(self, path: str = CHAT_PATH) -> list[Call]:
        """Every request to ``path`` ("chat/completions", "/v1/chat/completions", "models")."""
        route = _route(path)
        with self._lock:
            return [c for c in self._calls if c.route == route]

    def wait_for(self, count: int = 1, timeout: float = 5.0, path: str = CHAT_PATH) -> list[Call]:
        """Block until at least ``count`` requests to ``path`` arrived; return calls_to(path)."""
        route = _route(path)

        def arrived() -> bool:
            return sum(c.route == route for c in self._calls) >= count

        with self._changed:
            if not self._changed.wait_for(arrived, timeout=timeout):
                seen = [f"{c.method} {c.path}" for c in self._calls]
                raise FakeOpenAITimeout(
                    f"timed out after {timeout}s waiting for {count} request(s) to {route!r}; "
                    f"received: {seen}"
                )
        return self.calls_to(path)

    def all_request_text(self) -> str:
        """Every message content of every chat request, joined with newlines.

        For asserting that (redacted) data never reached the model. See also
        all_request_json() for fields outside ``messages``.
        """
        texts: list[str] = []
        for body in self.requests:
            messages = body.get("messages")
            if isinstance(messages, list):
                texts.extend(message_text(m) for m in messages)
        return "\n".join(texts)

    def all_request_json(self) -> str:
        """Every request body (all paths) re-serialised with ``ensure_ascii=False``, joined."""
        return "\n".join(json.dumps(c.body, ensure_ascii=False) for c in self.calls)

    def clear(self) -> None:
        """Forget recorded requests and the prompt cache (replies, delays, responder stay)."""
        with self._lock:
            self._calls.clear()
            self._seen_prefixes.clear()

    def _cache(self, body: dict[str, Any]) -> int:
        """Cached characters of this request's prompt; remembers its prefixes for later ones."""
        cached = 0
        with self._lock:
            for fingerprint, chars in message_prefixes(body):
                if fingerprint in self._seen_prefixes:
                    cached = chars
                self._seen_prefixes.add(fingerprint)
        return cached // 4

    # ----------------------------------------------------------------- scripting

    def queue(self, reply: Reply) -> None:
        """Answer the next chat-completions request with ``reply`` (FIFO, one-shot each)."""
        with self._lock:
            self._replies.append(reply)

    def reply_text(self, text: str, *, finish_reason: str = "stop") -> None:
        """Queue an assistant message with content ``text``."""
        self.queue(Reply(content=text, finish_reason=finish_reason))

    def reply_json(self, obj: Any, *, finish_reason: str = "stop") -> None:
        """Queue an assistant message whose content is ``json.dumps(obj)``."""
        self.reply_text(json.dumps(obj), finish_reason=finish_reason)

    def reply_refusal(self, refusal: str) -> None:
        """Queue an assistant message with ``content=None`` and ``refusal`` set."""
        self.queue(Reply(refusal=refusal))

    def reply_raw(
        self, body: JsonBody, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        """Queue a raw HTTP answer: ``body`` as is (dict/list JSON, str text, bytes octets)."""
        self.queue(Reply(status=status, body=body, headers=dict(headers or {})))

    def fail(
        self,
        status: int,
        body: JsonBody | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue an HTTP error; ``body`` defaults to an OpenAI-style ``{"error": {...}}``.

        E.g. ``fail(429, headers={"retry-after-ms": "10"})`` or ``fail(500)``; add
        ``{"x-should-retry": "false"}`` to stop the SDK retrying.
        """
        self.reply_raw(error_body(status) if body is None else body, status, headers)

    def delay_next(self, seconds: float) -> None:
        """Make the next chat-completions answer wait ``seconds`` (cut short by stop())."""
        with self._lock:
            self._delays.append(float(seconds))

    def hang_next(self) -> None:
        """Never answer the next chat-completions request (until stop(): then drop it)."""
        with self._lock:
            self._delays.append(math.inf)

    def set_responder(self, fn: Responder | None) -> None:
        """Default answer when no reply is queued; ``None`` restores the built-in one.

        ``fn(request_body)`` runs on a server thread and returns a str (assistant content), a
        dict (with int ``"status"``: an HTTP spec ``{"status", "body", "headers"}``; otherwise a
        raw 200 JSON body) or a Reply.
        """
        with self._lock:
            self._responder = fn

    def pending(self) -> int:
        """How many queued replies are still unused."""
        with self._lock:
            return len(self._replies)

    # ----------------------------------------------------------------- serving

    def _dispatch(
        self, http_method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> _Answer | None:
        route = _route(path)
        body = _decode_json(raw)
        call = Call(http_method, urlsplit(path).path, route, body, headers, raw)
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

        if not self._authorised(headers):
            return _Answer(401, error_body(401))
        if route == CHAT_PATH and http_method == "POST":
            return self._chat(body)
        if route == "models" and http_method == "GET":
            data = [self._model(name) for name in DEFAULT_MODELS]
            return _Answer(200, {"object": "list", "data": data})
        if route.startswith("models/") and http_method == "GET":
            return _Answer(200, self._model(route[len("models/") :]))
        return _Answer(404, error_body(404, f"Unknown request URL: {http_method} {call.path}"))

    def _authorised(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return self.api_key is None or token.strip() == self.api_key

    def _chat(self, body: dict[str, Any]) -> _Answer | None:
        with self._lock:
            reply = self._replies.popleft() if self._replies else None
            delay = self._delays.popleft() if self._delays else 0.0
            responder = self._responder
            completion_id = f"chatcmpl-fake-{next(self._ids):06d}"
        if delay > 0:
            self._stopping.wait(None if math.isinf(delay) else delay)
            if math.isinf(delay) or self._stopping.is_set():
                return None
        if reply is None:
            reply = self._respond(responder, body)
        headers = {"x-request-id": f"req_{completion_id}", **reply.headers}
        if reply.body is not None:
            return _Answer(reply.status, reply.body, headers)
        completion = chat_completion(
            body,
            reply.content,
            completion_id=completion_id,
            finish_reason=reply.finish_reason,
            refusal=reply.refusal,
            cached_tokens=self._cache(body),
        )
        if body.get("stream") is True and reply.status == 200:
            headers.setdefault("Content-Type", "text/event-stream")
            return _Answer(200, sse_chunks(completion, body), headers)
        return _Answer(reply.status, completion, headers)

    @staticmethod
    def _respond(responder: Responder | None, body: dict[str, Any]) -> Reply:
        if responder is None:
            return Reply(content="OK")
        result = responder(body)
        if isinstance(result, Reply):
            return result
        if isinstance(result, str):
            return Reply(content=result)
        if isinstance(result, dict):
            if isinstance(result.get("status"), int):
                return Reply(
                    status=result["status"],
                    body=result.get("body", error_body(result["status"])),
                    headers=dict(result.get("headers") or {}),
                )
            return Reply(body=result)
        raise TypeError(f"responder must return str, dict or Reply, not {type(result).__name__}")

    @staticmethod
    def _model(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": CREATED, "owned_by": "fake-openai"}


def start_fake_openai(*, api_key: str | None = None) -> FakeOpenAI:
    """Start a FakeOpenAI on an ephemeral port; call ``.stop()`` (or use ``with``) when done."""
    return FakeOpenAI(api_key=api_key).start()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running FakeOpenAI, stopped after the test. Import into a conftest to share it."""
    fake = start_fake_openai()
    try:
        yield fake
    finally:
        fake.stop()


FakeOpenAI.server_class = _Server
FakeOpenAI.handler_class = _RequestHandler
