"""A small typed layer over Meta's Graph API on plain `requests` (see docs/DECISIONS.md 37).

Every call carries the page access token both ways Graph documents it (the
`Authorization` header and the `access_token` parameter: in the form body of a POST, the
query of a GET) and `appsecret_proof` (HMAC-SHA256 of the token keyed by the app secret),
so a leaked token is useless without the app secret. The token is a known secret to the
log filter, and error messages name the method and path only, never the URL's query.
Answers are JSON; a Graph error
(`{"error": {"message", "type", "code", "error_subcode"}}`) becomes one of:

- `GraphCredentialRefused`: code 190 (bad or expired token), 102, or HTTP 401: someone must act;
- `GraphRateLimited`: codes 4, 17, 32, 613, 80001-80009 or HTTP 429 (`retry_after` seconds from
  Meta's usage headers when they say, else a default);
- `GraphUnavailable`: HTTP 5xx, codes 1 and 2 (Meta's "temporary" errors), timeouts, no answer;
  `maybe_done` says whether a POST may have taken effect;
- `GraphRefused`: anything else, with Meta's own message: retrying will not help.

No exception message ever holds the token or the proof: only Meta's words and the path.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import requests

from bot.config import appsecret_proof

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "META_PAGE_ACCESS_TOKEN"
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_TIMEOUT = 15.0
DEFAULT_RETRY_AFTER = 60.0
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80001, 80010)})
TEMPORARY_CODES = frozenset({1, 2})
TOKEN_CODES = frozenset({102, 190})
# Any Meta access token (they start with EAA), also one that is not ours.
META_TOKEN_SHAPE = re.compile(r"\bEAA[A-Za-z0-9]{20,}")


class GraphError(Exception):
    """A Graph API call that did not succeed."""

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None):
        self.code = code
        self.status = status
        super().__init__(message)


class GraphCredentialRefused(GraphError):
    """Meta refused the page access token (or the proof): nothing works until someone acts."""


class GraphRateLimited(GraphError):
    """Meta is throttling the app or the page; `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float, code: int | None, status: int):
        self.retry_after = retry_after
        super().__init__(message, code=code, status=status)


class GraphUnavailable(GraphError):
    """No clear answer (5xx, a temporary error, a timeout); `maybe_done`: a POST may have
    taken effect although we did not hear so."""

    def __init__(self, message: str, *, maybe_done: bool, status: int | None = None):
        self.maybe_done = maybe_done
        super().__init__(message, status=status)


class GraphRefused(GraphError):
    """Meta answered with an error retrying will not fix; the message is Meta's."""

    def __init__(self, message: str, *, code: int | None, subcode: int | None, status: int) -> None:
        self.subcode = subcode
        super().__init__(message, code=code, status=status)


class GraphClient:
    """One page access token, one app secret, one Graph version. Thread-safe enough for
    the bot's use: each call is one request on a shared `requests.Session`."""

    def __init__(
        self,
        *,
        access_token: str,
        app_secret: str,
        version: str = "v23.0",
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self._token = access_token
        self._proof = appsecret_proof(access_token, app_secret)
        self.base = f"{(base_url or DEFAULT_GRAPH_URL).rstrip('/')}/{version}"
        self.timeout = timeout
        self.session = session or requests.Session()

    def __repr__(self) -> str:
        return f"GraphClient({self.base})"

    def get(self, path: str, params: Mapping[str, object] | None = None) -> dict[str, Any]:
        return self._call("GET", path, dict(params or {}))

    def post(self, path: str, data: Mapping[str, object] | None = None) -> dict[str, Any]:
        return self._call("POST", path, dict(data or {}))

    def _call(self, method: str, path: str, fields: dict[str, object]) -> dict[str, Any]:
        where = f"{method} /{path.lstrip('/')}"
        # Nested values (a recipient, a message) travel as JSON strings, as Graph expects.
        values = {
            k: json.dumps(v) if isinstance(v, dict | list) else _text(v) for k, v in fields.items()
        }
        values["access_token"] = self._token
        values["appsecret_proof"] = self._proof
        url = f"{self.base}/{path.lstrip('/')}"
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            if method == "GET":
                response = self.session.get(
                    url, params=values, headers=headers, timeout=self.timeout
                )
            else:
                response = self.session.post(
                    url, data=values, headers=headers, timeout=self.timeout
                )
        except requests.RequestException as exc:
            # A connection that never opened cannot have posted; anything later might have.
            unsent = isinstance(exc, requests.ConnectTimeout) or "NewConnectionError" in repr(exc)
            what = "no answer in time" if isinstance(exc, requests.Timeout) else "no answer"
            raise GraphUnavailable(
                f"{where}: {what} ({type(exc).__name__})",
                maybe_done=method == "POST" and not unsent,
            ) from None
        try:
            return _answer(response, where, posting=method == "POST")
        except GraphError as exc:
            # Meta quotes a token it cannot parse ("Malformed access token EAA..."): its
            # words go to cards and the database, so the token and the proof never do.
            redacted = _redact(str(exc), self._token, self._proof)
            if redacted != str(exc):
                exc.args = (redacted,)
            raise


def _redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return META_TOKEN_SHAPE.sub("[redacted]", text)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _answer(response: requests.Response, where: str, *, posting: bool) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.status_code < 400 and isinstance(body, dict) and "error" not in body:
        return body
    if response.status_code < 400:
        raise GraphUnavailable(f"{where}: an answer that is not Graph JSON", maybe_done=posting)
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    meta_says = str(error.get("message") or response.reason or "no message")[:300]
    status = response.status_code
    what = f"{where}: HTTP {status}" + (f", code {code}" if code is not None else "")
    what += f": {meta_says}"
    if code in TOKEN_CODES or status == 401:
        raise GraphCredentialRefused(what, code=code, status=status)
    if code in RATE_LIMIT_CODES or status == 429:
        raise GraphRateLimited(what, retry_after=_retry_after(response), code=code, status=status)
    if status >= 500 or code in TEMPORARY_CODES or error.get("is_transient") is True:
        raise GraphUnavailable(what, maybe_done=posting and status >= 500, status=status)
    raise GraphRefused(what, code=code, subcode=subcode, status=status)


def _retry_after(response: requests.Response) -> float:
    """Seconds to wait: `Retry-After`, else Meta's business-use-case usage header
    (`estimated_time_to_regain_access`, minutes), else a default."""
    header = response.headers.get("Retry-After")
    if header and header.strip().isdigit():
        return float(header.strip())
    usage = response.headers.get("X-Business-Use-Case-Usage")
    if usage:
        try:
            parsed = json.loads(usage)
            minutes = max(
                (
                    float(entry.get("estimated_time_to_regain_access") or 0)
                    for entries in parsed.values()
                    for entry in entries
                ),
                default=0.0,
            )
        except (ValueError, AttributeError, TypeError):
            minutes = 0.0
        if minutes > 0:
            return minutes * 60
    return DEFAULT_RETRY_AFTER


def describe(exc: GraphError) -> str:
    """One line about a Graph error, naming the variable when the token is at fault."""
    if isinstance(exc, GraphCredentialRefused):
        return f"{exc}; check {TOKEN_VARIABLE}"
    return str(exc)
