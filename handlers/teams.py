"""The Microsoft Teams surface: inbound activities on `POST /api/messages`, and the card
poster the outbox's chat worker drives.

Thin by design, like the Slack surface: a request's bearer token is verified first
(anything else is a 401 and changes nothing); the activity is validated with the Agents
SDK's `Activity` model; a card button (`adaptiveCard/action` invoke) runs one action of
`bot.actions` and is answered in the HTTP response with the card as the person who acted
should see it (a refusal as a red banner on it); a message `care …` (with the bot
@mentioned in a channel) runs the same command parser as `/care`. Cards themselves are
never sent from here: state changes queue card updates in the outbox, and
`TeamsSurface` renders and sends them through the Bot Connector.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol

import aiohttp
import jwt
from aiohttp import web
from microsoft_agents.activity import Activity
from pydantic import ValidationError

from bot.actions import ANSWERED_VERBS, case_of, perform, perform_answered
from bot.commands import run_command
from bot.config import Config
from bot.digest import Digest
from bot.errors import AlreadyDelivered, DeliveryError, Refusal
from bot.health import Health
from bot.models import Actor
from bot.ports import Clock, MessageRef
from bot.service import CareService
from bot.views import CaseView
from handlers.teams_cards import (
    INPUT_FIELD,
    INPUT_ID,
    approval_prompt_card,
    attachment,
    card_bytes,
    case_card,
    digest_card,
    notice_card,
    queue_answer_card,
    refusal_card,
)

log = logging.getLogger(__name__)

BOT_ISSUER = "https://api.botframework.com"
DEFAULT_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_CARD_BYTES = 80_000
# Bot Framework tokens allow five minutes of clock skew.
LEEWAY = timedelta(minutes=5)
_AT = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
# The domain names people as <@id> (Slack's markup): any id, shown by name in Teams.
_USER_MARKUP = re.compile(r"<@([A-Za-z0-9_.:-]{1,64})>")


# ------------------------------------------------------------------ inbound: tokens


class TokenRejected(Exception):
    """The request's bearer token is missing or does not verify (the message says why)."""


class TeamsTokenValidator:
    """Verifies Bot Framework tokens: RS256 by a key from the OpenID metadata's `jwks_uri`,
    issuer api.botframework.com, audience our app id, not expired, and a `serviceurl`
    claim equal to the activity's serviceUrl (so a token cannot be replayed to make us
    post somewhere else). The SDK's own middleware honours neither the metadata override
    nor the serviceurl claim, hence this class."""

    def __init__(self, *, app_id: str, metadata_url: str | None, clock: Clock) -> None:
        self.app_id = app_id
        self.metadata_url = metadata_url or DEFAULT_METADATA_URL
        self.clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._refreshing = asyncio.Lock()

    async def _refresh(self) -> None:
        # One fetch at a time, at most once a minute, failures included: an unknown key id
        # in forged requests must not let anyone hammer the identity provider.
        async with self._refreshing:
            if self._fetched_at is not None and time.monotonic() - self._fetched_at < 60:
                return
            self._fetched_at = time.monotonic()
            await self._fetch()

    async def _fetch(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(self.metadata_url) as response:
                response.raise_for_status()
                metadata = await response.json(content_type=None)
            async with session.get(metadata["jwks_uri"]) as response:
                response.raise_for_status()
                jwks = await response.json(content_type=None)
        keys = {}
        for key in jwks.get("keys", []):
            # Bot Framework endorses each key for the channels it may sign for.
            endorsed = key.get("endorsements")
            if key.get("kid") and (endorsed is None or "msteams" in endorsed):
                keys[key["kid"]] = jwt.PyJWK(key).key
        self._keys = keys

    async def validate(self, authorization: str | None, service_url: str | None) -> dict[str, Any]:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise TokenRejected("no bearer token")
        token = authorization.split(None, 1)[1].strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("malformed token") from None
        if header.get("alg") != "RS256":
            raise TokenRejected("not an RS256 token")
        kid = header.get("kid")
        if kid not in self._keys:
            try:
                await self._refresh()
            except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
                raise TokenRejected(
                    f"cannot fetch signing keys ({exc.__class__.__name__})"
                ) from None
        key = self._keys.get(str(kid))
        if key is None:
            raise TokenRejected("signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.app_id,
                issuer=BOT_ISSUER,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud"], "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"{exc.__class__.__name__}") from None
        if not service_url or _norm_url(claims.get("serviceurl")) != _norm_url(service_url):
            raise TokenRejected("the serviceurl claim does not match the activity")
        return claims


def _norm_url(value: object) -> str:
    return str(value or "").rstrip("/").lower()


# ------------------------------------------------------------------ outbound: the surface


class TeamsApiPort(Protocol):
    """What the Teams surface needs from the Bot Connector (integrations.teams_api)."""

    def create_in_channel(
        self, service_url: str, channel_id: str, activity: dict[str, Any]
    ) -> tuple[str, str]: ...

    def create_personal(self, service_url: str, user_id: str) -> str: ...

    def send(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str: ...

    def update(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> None: ...


def _card_activity(card: dict[str, Any], summary: str = "") -> dict[str, Any]:
    return {"attachments": [attachment(card)], **({"summary": summary[:200]} if summary else {})}


class TeamsSurface:
    """Posts and updates cards in Teams channels, and notices in 1:1 chats (ChatSurface)."""

    name = "teams"

    def __init__(
        self,
        api: TeamsApiPort,
        service: CareService,
        *,
        service_url_override: str | None = None,
        chart: Callable[[Digest], bytes | None] | None = None,
    ) -> None:
        self.api = api
        self.service = service
        self.config: Config = service.config
        self.clock = service.clock
        self.override = service_url_override
        self.chart = chart

    # -- where

    def channel_for(self, department_id: str) -> str | None:
        dept = self.config.department(department_id)
        return dept.teams_channel if dept else None

    def target(self, to: str) -> str | None:
        if to == "managers":
            return self.config.teams.managers_channel
        if to.startswith("user:"):
            account = self.config.account_on(to[len("user:") :], "teams")
            return f"user:{account.lower()}" if account else None
        return self.channel_for(to)

    def service_url(self, channel: str) -> str:
        """Where the Bot Connector for a channel lives: the override, else the serviceUrl
        of the latest activity from its team (or tenant), else `[teams].service_url`."""
        if self.override:
            return self.override
        base = channel.split(";", 1)[0]
        for key in (f"channel:{base}", "tenant"):
            ref = self.service.reference("teams", key)
            if ref and ref.get("service_url"):
                return str(ref["service_url"])
        if self.config.teams.service_url:
            return self.config.teams.service_url
        raise DeliveryError(
            "no Teams service URL yet: install the app in the team, or set [teams].service_url"
        )

    def _names(self, view: CaseView) -> dict[str, str]:
        names: dict[str, str] = {}
        for user in (view.case.claimed_by, view.case.draft_by, view.case.approved_by):
            if user:
                names[user] = self.config.display_name(user) or user
        return names

    # -- ChatSurface

    def _case_card(
        self, view: CaseView, error: str | None = None, notice: str | None = None
    ) -> dict[str, Any]:
        departments = [(d.id, d.name) for d in self.config.departments]
        return case_card(
            view,
            now=self.clock.now(),
            tz=self.config.tz,
            error=error,
            notice=notice,
            names=self._names(view),
            departments=departments,
        )

    def post_card(self, channel: str, view: object) -> MessageRef:
        assert isinstance(view, CaseView)
        card = self._case_card(view)
        conversation, activity_id = self.api.create_in_channel(
            self.service_url(channel), channel, _card_activity(card, f"Case #{view.case.id}")
        )
        return MessageRef(conversation, activity_id)

    def update_card(self, ref: MessageRef, view: object) -> None:
        assert isinstance(view, CaseView)
        self.api.update(
            self.service_url(ref.channel),
            ref.channel,
            ref.message_id,
            _card_activity(self._case_card(view), f"Case #{view.case.id}"),
        )

    def post_note(self, ref: MessageRef, text: str) -> None:
        # In a channel, the card's conversation is its thread: a post there is a reply.
        self.api.send(
            self.service_url(ref.channel),
            ref.channel,
            _card_activity(notice_card(self.readable(text))),
        )

    def notify(self, channel: str, text: str) -> None:
        activity = _card_activity(notice_card(self.readable(text)))
        if channel.startswith("user:"):
            self._send_personal(channel[len("user:") :], activity)
        else:
            self.api.create_in_channel(self.service_url(channel), channel, activity)

    def send_digest(self, channel: str, digest: object) -> None:
        assert isinstance(digest, Digest)
        card = digest_card(digest, chart_url=self._chart_uri(digest))
        if card_bytes(card) > MAX_CARD_BYTES:
            card = digest_card(digest)  # the chart does not fit in one message: text only
        self.api.create_in_channel(self.service_url(channel), channel, _card_activity(card))

    def _chart_uri(self, digest: Digest) -> str | None:
        if self.chart is None:
            return None
        try:
            png = self.chart(digest)
        except Exception as exc:  # the chart is decoration: the digest goes out without it
            log.warning("digest chart failed: %s", exc)
            return None
        return f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else None

    def _send_personal(self, aad_id: str, activity: dict[str, Any]) -> None:
        """A 1:1 message: the chat the app has with the person (created if needed)."""
        ref = self.service.reference("teams", f"user:{aad_id}") or {}
        service_url = self.override or ref.get("service_url") or self.service_url("")
        conversation = ref.get("personal_conversation")
        if not conversation:
            if not ref.get("teams_id"):
                raise DeliveryError(
                    "this person has not used socialcare in Teams yet (no 1:1 chat)",
                    permanent=True,
                    outage=False,
                )
            conversation = self.api.create_personal(service_url, str(ref["teams_id"]))
            self.service.remember(
                "teams", f"user:{aad_id}", {"personal_conversation": conversation}
            )
        self.api.send(service_url, str(conversation), activity)

    def readable(self, text: str) -> str:
        """Notes name people by their Slack-style markup: show their names instead."""

        def name(match: re.Match[str]) -> str:
            user = match.group(1)
            return self.config.display_name(user) or user

        return _USER_MARKUP.sub(name, text)


# ------------------------------------------------------------------ inbound: activities


class TeamsHandlers:
    """`POST /api/messages`: verify, validate, dedupe, dispatch."""

    def __init__(
        self,
        service: CareService,
        surface: TeamsSurface,
        validator: TeamsTokenValidator,
        *,
        tenant_id: str | None,
        health: Health | None = None,
    ) -> None:
        self.service = service
        self.surface = surface
        self.validator = validator
        self.tenant_id = tenant_id
        self.health = health
        self.command = service.config.bot.slash_command.lstrip("/")

    async def on_request(self, request: web.Request) -> web.Response:
        try:
            raw = await request.read()
            body = json.loads(raw) if raw else None
            activity = Activity.model_validate(body)
        except (ValueError, ValidationError):
            body = None
            activity = None
        service_url = activity.service_url if activity is not None else None
        try:
            await self.validator.validate(request.headers.get("Authorization"), service_url)
        except TokenRejected as exc:
            log.info("refused a Teams request: %s", exc)
            return web.json_response({"error": "unauthorized"}, status=401)
        if activity is None or not isinstance(body, dict):
            return web.json_response({"error": "not an activity"}, status=400)
        await asyncio.to_thread(self._remember, activity)
        invoke = activity.type == "invoke" and activity.name == "adaptiveCard/action"
        # A card action records its delivery in its own transaction (see _invoke); other
        # activities are deduplicated here.
        if (
            not invoke
            and activity.id
            and not await asyncio.to_thread(self.service.first_delivery, f"teams:{activity.id}")
        ):
            return await self._replayed(activity)
        try:
            if activity.type == "invoke" and activity.name == "adaptiveCard/action":
                return web.json_response(await asyncio.to_thread(self._invoke, activity))
            if activity.type == "message":
                await asyncio.to_thread(self._message, activity)
        except Exception:
            # A bug must not become a 500 that Teams retries (nor the SDK's "The bot
            # encountered an error" in a channel): the transaction rolled back, say so.
            log.exception("a Teams %s could not be handled", activity.type)
            if activity.type == "invoke":
                return web.json_response(
                    self._card_response(
                        refusal_card(
                            "Something went wrong on our side. The card shows what happened"
                            " once it refreshes; try again if nothing did."
                        )
                    )
                )
        return web.Response(status=200)

    # -- references, identity

    def _tenant(self, activity: Activity) -> str | None:
        channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        tenant = (channel_data.get("tenant") or {}).get("id")
        return tenant or (activity.conversation.tenant_id if activity.conversation else None)

    def _remember(self, activity: Activity) -> None:
        """Every verified activity says where its team's connector lives (serviceUrl) and
        who its sender is: kept for proactive posts and 1:1 reminders."""
        service_url = activity.service_url
        channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        tenant = self._tenant(activity)
        if not service_url or (self.tenant_id and tenant != self.tenant_id):
            return
        entries: dict[str, dict[str, Any]] = {
            "tenant": {"service_url": service_url, "tenant": tenant}
        }
        channel = (channel_data.get("channel") or {}).get("id") or channel_data.get(
            "teamsChannelId"
        )
        if channel:
            entries[f"channel:{channel}"] = {"service_url": service_url}
        sender = activity.from_property
        if sender is not None and sender.aad_object_id:
            data = {"teams_id": sender.id, "service_url": service_url, "name": sender.name}
            conversation = activity.conversation
            if conversation is not None and conversation.conversation_type == "personal":
                data["personal_conversation"] = conversation.id
            entries[f"user:{sender.aad_object_id.lower()}"] = data
        self.service.remember_all("teams", entries)

    def _actor(self, activity: Activity) -> Actor | None:
        sender = activity.from_property
        if sender is None or not sender.aad_object_id:
            return None
        tenant = self._tenant(activity)
        if self.tenant_id and tenant != self.tenant_id:
            return None  # another organisation's user: a stranger here
        return Actor(
            sender.aad_object_id.lower(), surface="teams", team_id=tenant, name=sender.name
        )

    # -- card buttons

    def _invoke(self, activity: Activity) -> dict[str, Any]:
        verb, data = _verb_and_data(activity)
        actor = self._actor(activity)
        try:
            if actor is None:
                raise Refusal("socialcare only takes actions from people of this organisation.")
            with self.service.delivery(f"teams:{activity.id}" if activity.id else None):
                if verb in ANSWERED_VERBS:
                    return self._answered(actor, verb, data)
                case = perform(self.service, actor, verb, data)
            return self._card_response(self.surface._case_card(self.service.view(case.id)))
        except AlreadyDelivered:
            # Teams retried the click: answer with the card as it is, change nothing.
            return self._card_response(self._current_card(data))
        except Refusal as refusal:
            return self._card_response(self._refused(data, str(refusal)))

    def _answered(self, actor: Actor, verb: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """A bulk dismissal or "Claim next": the card it concerns, with what was done on
        top for the person who clicked (or only the words, when nothing was claimed)."""
        case, text = perform_answered(self.service, actor, verb, data)
        if case is None:
            return self._card_response(notice_card(self.surface.readable(text)))
        view = self.service.view(case.id)
        card = self.surface._case_card(view, notice=self.surface.readable(text))
        return self._card_response(card)

    def _refused(self, data: Mapping[str, Any], reason: str) -> dict[str, Any]:
        """The card as it is, with the reason on top, for the person who acted only."""
        try:
            view = self.service.view(case_of(data))
        except Refusal:
            return refusal_card(reason)
        return self.surface._case_card(view, error=reason)

    @staticmethod
    def _card_response(card: dict[str, Any]) -> dict[str, Any]:
        # Universal Actions: the answer to Action.Execute is the card itself, in the HTTP
        # response; Teams shows it to the person who clicked.
        return {"statusCode": 200, "type": CARD_TYPE, "value": card}

    async def _replayed(self, activity: Activity) -> web.Response:
        """A delivery seen before changes nothing; an invoke still gets the card."""
        if activity.type == "invoke":
            _, data = _verb_and_data(activity)
            card = await asyncio.to_thread(self._current_card, data)
            return web.json_response(self._card_response(card))
        return web.Response(status=200)

    def _current_card(self, data: Mapping[str, Any]) -> dict[str, Any]:
        if "case" not in data:
            # "Claim next" names no case; its first delivery said which one it claimed.
            return notice_card(
                "Already done: Teams sent this click twice and it was handled once."
                " `care queue` shows the cases you hold."
            )
        try:
            return self.surface._case_card(self.service.view(case_of(data)))
        except Refusal as refusal:
            return refusal_card(str(refusal))

    # -- commands

    def _message(self, activity: Activity) -> None:
        text = _AT.sub(" ", activity.text or "").strip()
        words = text.split(maxsplit=1)
        if not words or words[0].lower().lstrip("/") != self.command:
            return  # not for us (a chat message that merely mentions the bot)
        actor = self._actor(activity)
        if actor is None:
            self._answer(
                activity, refusal_card("socialcare only answers people of this organisation.")
            )
            return
        reply = run_command(
            self.service, actor, words[1] if len(words) > 1 else "", command=self.command
        )
        if reply.approval is not None:
            card = approval_prompt_card(reply.approval, self.surface.readable(reply.text))
        elif reply.ok and reply.offer_next:
            card = queue_answer_card(self.surface.readable(reply.text))
        elif reply.ok:
            card = notice_card(self.surface.readable(reply.text))
        else:
            card = refusal_card(self.surface.readable(reply.text))
        self._answer(activity, card, private=not reply.ok)

    def _answer(self, activity: Activity, card: dict[str, Any], *, private: bool = False) -> None:
        """In the thread or chat the command came from. A refusal goes to the person's 1:1
        chat where the app has one, so only they see it."""
        conversation = activity.conversation
        if conversation is None or not activity.service_url:
            return
        try:
            sender = activity.from_property
            ref = (
                self.service.reference("teams", f"user:{sender.aad_object_id.lower()}")
                if private and sender is not None and sender.aad_object_id
                else None
            )
            target = (ref or {}).get("personal_conversation") or conversation.id
            self.surface.api.send(activity.service_url, str(target), _card_activity(card))
        except DeliveryError as exc:
            if self.health is not None:
                self.health.failed("teams", str(exc))
            else:
                log.warning("could not answer a Teams command: %s", exc)


def _verb_and_data(activity: Activity) -> tuple[str, dict[str, Any]]:
    """An Action.Execute's verb and data (with the card's inputs merged in by Teams)."""
    value = activity.value if isinstance(activity.value, dict) else {}
    action = value.get("action")
    if not isinstance(action, dict):
        return "", {}
    verb = str(action.get("verb", ""))
    data = dict(action["data"]) if isinstance(action.get("data"), dict) else {}
    if verb in INPUT_ID and INPUT_ID[verb] in data:
        data[INPUT_FIELD[verb]] = data.pop(INPUT_ID[verb])
    return verb, data
