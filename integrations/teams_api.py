"""Microsoft Teams outbound: the Agents SDK's ConnectorClient with a token from its MSAL
provider, behind a small synchronous facade for the outbox workers.

- Tokens: client credentials for `https://api.botframework.com/.default` from
  `{TEAMS_LOGIN_URL}/{TEAMS_TENANT_ID}` (single-tenant). The SDK's MsalAuth builds MSAL
  without `instance_discovery`, so any authority host other than Microsoft's would
  trigger discovery against login.microsoftonline.com; `TeamsMsalAuth` turns it off for
  such hosts (a loopback test login, a sovereign cloud behind a proxy).
- The connector client is async (aiohttp); the outbox workers are threads. One event
  loop runs in its own thread and every call is handed to it.
- Errors: the SDK raises `aiohttp.ClientResponseError` and retries nothing. 429, 412,
  502, 503 and 504 (and connection errors) become transient DeliveryErrors carrying
  `Retry-After`; 401/403 mean our credential is refused (an outage); other 4xx are
  permanent for that message.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
from microsoft_agents.activity import Activity, ConversationParameters
from microsoft_agents.authentication.msal import MsalAuth
from microsoft_agents.hosting.core.authorization import AgentAuthConfiguration
from microsoft_agents.hosting.core.connector.client import ConnectorClient
from msal import ConfidentialClientApplication

from bot.errors import CredentialRejected, DeliveryError, DependencyUnreachable

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_LOGIN_URL = "https://login.microsoftonline.com"
BOT_SCOPE = "https://api.botframework.com/.default"
BOT_RESOURCE = "https://api.botframework.com"
TRANSIENT_STATUS = frozenset({408, 412, 429, 500, 502, 503, 504})


class TeamsMsalAuth(MsalAuth):
    """The SDK's MSAL token provider, pointed at `login_url` without instance discovery
    when that is not Microsoft's own login host."""

    def __init__(self, *, app_id: str, password: str, tenant_id: str, login_url: str) -> None:
        self.login_url = login_url.rstrip("/")
        super().__init__(
            AgentAuthConfiguration(
                client_id=app_id,
                client_secret=password,
                tenant_id=tenant_id,
                authority=f"{self.login_url}/{tenant_id}",
            )
        )

    def _create_client_application(self, tenant_id: str | None = None) -> Any:
        config = self._msal_configuration
        return ConfidentialClientApplication(
            client_id=config.CLIENT_ID,
            authority=f"{self.login_url}/{tenant_id or config.TENANT_ID}",
            client_credential=config.CLIENT_SECRET,
            instance_discovery=self.login_url == DEFAULT_LOGIN_URL,
        )


class TeamsApi:
    """The Bot Connector calls the Teams surface makes, synchronous, errors translated."""

    def __init__(
        self,
        *,
        app_id: str,
        password: str,
        tenant_id: str,
        login_url: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.app_id = app_id
        self.tenant_id = tenant_id
        self.timeout = timeout
        self.auth = TeamsMsalAuth(
            app_id=app_id,
            password=password,
            tenant_id=tenant_id,
            login_url=login_url or DEFAULT_LOGIN_URL,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="teams-connector", daemon=True
        )
        self._thread.start()

    # -- the loop thread

    def _run(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=self.timeout + 5)
        except TimeoutError:
            future.cancel()
            raise DeliveryError(f"{what}: no answer from Teams") from None

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    # -- token

    async def _token(self) -> str:
        try:
            return await self.auth.get_access_token(BOT_RESOURCE, [BOT_SCOPE])
        except Exception as exc:  # MSAL reports refusals as plain exceptions with a code
            refused = _refusal(str(exc))
            if refused:
                raise DeliveryError(refused, permanent=True, outage=True) from None
            raise DeliveryError(f"cannot get a Teams token ({exc.__class__.__name__})") from None

    def check(self) -> str:
        """At start-up: the app id and password get a token from the tenant."""
        try:
            self._run(self._token(), "token")
        except DeliveryError as exc:
            if exc.permanent:
                raise CredentialRejected(str(exc)) from None
            raise DependencyUnreachable(str(exc)) from None
        return f"app {self.app_id} in tenant {self.tenant_id}"

    async def _call(self, service_url: str, what: str, call: Any) -> Any:
        token = await self._token()
        session = aiohttp.ClientSession(
            base_url=service_url if service_url.endswith("/") else service_url + "/",
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        client = ConnectorClient(service_url, token, session=session)
        try:
            return await call(client.conversations)
        except aiohttp.ClientResponseError as exc:
            raise _delivery_error(what, exc) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"{what}: {exc.__class__.__name__}") from None
        finally:
            await client.close()

    # -- operations

    def create_in_channel(
        self, service_url: str, channel_id: str, activity: dict[str, Any]
    ) -> tuple[str, str]:
        """A new conversation (a thread) in a channel, starting with `activity`:
        (conversation id `19:…;messageid=N`, the first activity's id)."""
        params = ConversationParameters.model_validate(
            {
                "isGroup": True,
                "channelData": {"channel": {"id": channel_id}, "tenant": {"id": self.tenant_id}},
                "activity": {"type": "message", **activity},
                "tenantId": self.tenant_id,
                "bot": {"id": f"28:{self.app_id}"},
            }
        )

        async def call(conversations: Any) -> Any:
            return await conversations.create_conversation(params)

        answer = self._run(self._call(service_url, "create conversation", call), "create")
        activity_id = answer.activity_id or answer.id.rsplit("messageid=", 1)[-1]
        return str(answer.id), str(activity_id)

    def create_personal(self, service_url: str, user_id: str) -> str:
        """The 1:1 conversation with a user (their `29:` id): its conversation id."""
        params = ConversationParameters.model_validate(
            {
                "isGroup": False,
                "members": [{"id": user_id}],
                "bot": {"id": f"28:{self.app_id}"},
                "tenantId": self.tenant_id,
                "channelData": {"tenant": {"id": self.tenant_id}},
            }
        )

        async def call(conversations: Any) -> Any:
            return await conversations.create_conversation(params)

        answer = self._run(self._call(service_url, "create 1:1 conversation", call), "create")
        return str(answer.id)

    def send(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str:
        """Post into a conversation (in a channel thread: a reply in that thread)."""
        body = Activity.model_validate({"type": "message", **activity})

        async def call(conversations: Any) -> Any:
            return await conversations.send_to_conversation(conversation_id, body)

        answer = self._run(self._call(service_url, "send", call), "send")
        return str(getattr(answer, "id", "") or "")

    def update(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> None:
        """Replace a message in place (a card after a state change)."""
        body = Activity.model_validate({"type": "message", "id": activity_id, **activity})

        async def call(conversations: Any) -> Any:
            return await conversations.update_activity(conversation_id, activity_id, body)

        self._run(self._call(service_url, "update", call), "update")


def _refusal(text: str) -> str | None:
    """Which variable the Microsoft login refused, from its error code; None if none."""
    if "invalid_client" in text or "AADSTS7000215" in text:
        return "TEAMS_APP_PASSWORD: the Microsoft login refused the secret (invalid_client)"
    if "unauthorized_client" in text or "AADSTS700016" in text:
        return (
            "TEAMS_APP_ID: the Microsoft login knows no such app in the tenant"
            " (unauthorized_client)"
        )
    # MSAL's tenant discovery answered, and knows no such tenant.
    if "AADSTS90002" in text or "Unable to get authority configuration" in text:
        return "TEAMS_TENANT_ID: the Microsoft login knows no such tenant (AADSTS90002)"
    return None


def _delivery_error(what: str, exc: aiohttp.ClientResponseError) -> DeliveryError:
    status = exc.status
    retry_after = None
    headers: Any = exc.headers or {}
    raw = headers.get("Retry-After")
    if raw is not None:
        try:
            retry_after = float(raw)
        except ValueError:
            retry_after = None
    if status in TRANSIENT_STATUS:
        return DeliveryError(f"{what}: HTTP {status}", retry_after=retry_after)
    body = str(exc.message or "")
    if status == 403 and "BotNotInConversationRoster" in body:
        # This chat or team does not have the app: one message refused, not an outage.
        return DeliveryError(f"{what}: the app is not installed there (HTTP 403)", permanent=True)
    if status in (401, 403):
        code = next((c for c in ("BotDisabledByAdmin", "BotNotRegistered") if c in body), "refused")
        return DeliveryError(
            f"{what}: Teams refused the bot (HTTP {status}, {code})", permanent=True, outage=True
        )
    return DeliveryError(f"{what}: HTTP {status}", permanent=True)
