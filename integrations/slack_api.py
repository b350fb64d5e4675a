"""slack_sdk clients pointed at Slack (or `SLACK_API_URL`), with Slack errors translated.

The outbox worker is synchronous and runs in a thread, so it uses `WebClient`; Bolt's
listeners use the `AsyncWebClient` built here too. A short 429 is retried in place by
slack_sdk's RateLimitErrorRetryHandler; anything still failing becomes a DeliveryError
that the outbox reschedules (with Slack's Retry-After when given), so nothing is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import CredentialRejected, DeliveryError, DependencyUnreachable

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
# Errors retrying cannot fix: the card is marked failed instead of blocking its channel.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "invalid_blocks",
        "msg_too_long",
        "msg_blocks_too_long",
        "message_not_found",
        "cant_update_message",
        "restricted_action",
    }
)


# Our token no longer works: nothing will post until someone fixes it.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


def api_url(configured: str | None) -> str:
    url = configured or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


def make_web_client(token: str, base_url: str | None, *, timeout: int = 15) -> WebClient:
    return WebClient(
        token=token,
        base_url=api_url(base_url),
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=1),
            RateLimitErrorRetryHandler(max_retry_count=1),
        ],
    )


def make_async_web_client(
    token: str | None, base_url: str | None, *, timeout: int = 15
) -> AsyncWebClient:
    from slack_sdk.http_retry.builtin_async_handlers import (
        AsyncConnectionErrorRetryHandler,
        AsyncRateLimitErrorRetryHandler,
    )

    return AsyncWebClient(
        token=token,
        base_url=api_url(base_url),
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=1),
        ],
    )


class SlackApi:
    """The few Web API calls the card worker makes, with errors as DeliveryError."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def post_message(
        self, channel: str, payload: dict[str, Any], *, thread_ts: str | None = None
    ) -> str:
        response = self._call("chat.postMessage", channel=channel, thread_ts=thread_ts, **payload)
        return str(response["ts"])

    def update_message(self, channel: str, ts: str, payload: dict[str, Any]) -> None:
        fields = {k: v for k, v in payload.items() if k not in {"unfurl_links", "unfurl_media"}}
        self._call("chat.update", channel=channel, ts=ts, **fields)

    def upload_file(
        self, channel: str, content: bytes, *, filename: str, title: str, thread_ts: str | None
    ) -> None:
        """files.uploadV2 (slack_sdk's three-step upload), shared into the channel."""
        try:
            self.client.files_upload_v2(
                channel=channel,
                content=content,
                filename=filename,
                title=title,
                thread_ts=thread_ts,
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            raise DeliveryError(
                f"files.uploadV2: {error}", permanent=error in PERMANENT_ERRORS
            ) from None
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"files.uploadV2: {exc.__class__.__name__}") from None

    def _call(self, method: str, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        try:
            return self.client.api_call(method, json=params)
        except SlackApiError as exc:
            response = exc.response
            error = (
                str(response.get("error", "unknown_error")) if response is not None else "unknown"
            )
            status = getattr(response, "status_code", 0)
            if status == 429 or error == "ratelimited":
                retry_after = _retry_after(response)
                raise DeliveryError(f"{method}: rate limited", retry_after=retry_after) from None
            if error in PERMANENT_ERRORS:
                raise DeliveryError(
                    f"{method}: {error}", permanent=True, outage=error in AUTH_ERRORS
                ) from None
            raise DeliveryError(f"{method}: {error} (HTTP {status})") from None
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"{method}: {exc.__class__.__name__}: {exc}") from None


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError):
                return None
    return None


@dataclass(frozen=True)
class SlackIdentity:
    """Who the bot token is: from `auth.test`."""

    team_id: str | None
    enterprise_id: str | None
    bot_user_id: str | None
    bot_id: str | None
    team_name: str | None


def check_token(token: str, base_url: str | None, *, timeout: int = 5) -> SlackIdentity:
    """`auth.test` once at start-up: the identity, or CredentialRejected naming the
    variable, or DependencyUnreachable (the bot then starts degraded)."""
    client = WebClient(token=token, base_url=api_url(base_url), timeout=timeout)
    try:
        response = client.auth_test()
    except SlackApiError as exc:
        error = str((exc.response or {}).get("error", "unknown_error"))
        if error in AUTH_ERRORS:
            raise CredentialRejected(
                f"SLACK_BOT_TOKEN: Slack refused the bot token ({error}); use the Bot User"
                " OAuth Token (xoxb-…) of the installed app"
            ) from None
        raise DependencyUnreachable(f"Slack auth.test failed ({error})") from None
    except (SlackClientError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise DependencyUnreachable(
            f"cannot reach Slack at {api_url(base_url)} ({reason})"[:300]
        ) from None
    return SlackIdentity(
        team_id=response.get("team_id"),
        enterprise_id=response.get("enterprise_id") or None,
        bot_user_id=response.get("user_id"),
        bot_id=response.get("bot_id"),
        team_name=response.get("team"),
    )
