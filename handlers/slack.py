"""The Slack surface: Bolt listeners for buttons, modals and `/care`, and the card poster.

Thin by design: each listener acks first, reads the payload, calls one use case of
`bot.service` in a worker thread (SQLite is synchronous), and shows refusals as
ephemeral messages. Cards are never posted from here directly: state changes queue a
card update in the outbox, and `SlackSurface` (driven by the outbox's chat worker)
renders and sends it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.middleware.request_verification.async_request_verification import (
    AsyncRequestVerification,
)
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.actions import perform, perform_answered
from bot.bulk import seen_upto, untouched
from bot.commands import SUBCOMMANDS, CommandReply, run_command
from bot.config import Config
from bot.digest import Digest
from bot.errors import DeliveryError, Refusal
from bot.health import Health
from bot.meta_rules import private_channel
from bot.metrics import Metrics
from bot.models import Actor
from bot.ports import Clock, MessageRef
from bot.service import CareService
from bot.views import CaseView
from handlers.slack_cards import (
    approval_prompt_blocks,
    case_card,
    edit_reply_modal,
    group_dismiss_modal,
    note_text,
    parse_approve_value,
    queue_answer_blocks,
    reason_modal,
    reassign_modal,
    summary_modal,
)
from handlers.slack_desk import (
    SAVED_REPLY_ACTION,
    TAGS_ACTION,
    TAGS_CALLBACK,
    parse_saved_reply_value,
    parse_tags_value,
    tags_modal,
)
from handlers.slack_digest import digest_message

log = logging.getLogger(__name__)

# Whatever a Slack Web API call can fail with once the request has left our hands.
SLACK_CALL_ERRORS = (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError, OSError)
UNREACHABLE = (
    "socialcare can't reach Slack right now; your action was not taken. Try again shortly."
)
# A slash command answered within this time goes back in Slack's own request (no Web API
# call needed, so answers work while Slack's API is down); slower ones follow by respond().
COMMAND_ANSWER_SECONDS = 2.0

# ------------------------------------------------------------------ outbound: cards


class SlackApiPort(Protocol):
    """What the card poster needs from Slack (integrations.slack_api.SlackApi)."""

    def post_message(
        self, channel: str, payload: dict[str, Any], *, thread_ts: str | None = None
    ) -> str: ...

    def update_message(self, channel: str, ts: str, payload: dict[str, Any]) -> None: ...

    def upload_file(
        self, channel: str, content: bytes, *, filename: str, title: str, thread_ts: str | None
    ) -> None: ...


class SlackSurface:
    """ChatSurface for Slack: one card per case in its department's channel."""

    name = "slack"

    def __init__(
        self,
        api: SlackApiPort,
        config: Config,
        clock: Clock,
        *,
        chart: Callable[[Digest], bytes] | None = None,
    ) -> None:
        self.api = api
        self.config = config
        self.clock = clock
        self.chart = chart

    def channel_for(self, department_id: str) -> str | None:
        dept = self.config.department(department_id)
        return dept.slack_channel if dept else None

    def _card(self, view: object) -> dict[str, Any]:
        assert isinstance(view, CaseView)
        return case_card(view, now=self.clock.now(), tz=self.config.tz)

    def post_card(self, channel: str, view: object) -> MessageRef:
        return MessageRef(channel, self.api.post_message(channel, self._card(view)))

    def update_card(self, ref: MessageRef, view: object) -> None:
        self.api.update_message(ref.channel, ref.message_id, self._card(view))

    def post_note(self, ref: MessageRef, text: str) -> None:
        payload = {"text": note_text(text), "unfurl_links": False, "unfurl_media": False}
        self.api.post_message(ref.channel, payload, thread_ts=ref.message_id)

    def target(self, to: str) -> str | None:
        if to == "managers":
            return self.config.digest.managers_channel
        if to.startswith("user:"):
            # A user ID posts to the app's DM with them; a [[people]] id or a Teams id
            # reaches the same person's Slack account, if they have one.
            return self.config.account_on(to.removeprefix("user:"), "slack")
        return self.channel_for(to)

    def notify(self, channel: str, text: str) -> None:
        payload = {"text": note_text(text), "unfurl_links": False, "unfurl_media": False}
        self.api.post_message(channel, payload)

    def send_digest(self, channel: str, digest: object) -> None:
        assert isinstance(digest, Digest)
        ts = self.api.post_message(
            channel, {**digest_message(digest), "unfurl_links": False, "unfurl_media": False}
        )
        if self.chart is None:
            return
        try:
            self.api.upload_file(
                channel,
                self.chart(digest),
                filename="digest.png",
                title=f"{digest.title}: volume and first response by hour",
                thread_ts=ts,
            )
        except DeliveryError as exc:
            # The figures are out already; retrying the item would post them twice.
            log.warning("digest chart not uploaded to %s: %s", channel, exc)


# ------------------------------------------------------------------ inbound payloads


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Id(_Loose):
    id: str


class _User(_Loose):
    id: str
    team_id: str | None = None
    name: str | None = None


class _Action(_Loose):
    action_id: str
    value: str | None = None
    action_ts: str | None = None


class ActionPayload(_Loose):
    """The parts of a block_actions payload the handlers use, validated once."""

    user: _User
    team: _Id | None = None
    enterprise: _Id | None = None
    channel: _Id | None = None
    actions: list[_Action]
    trigger_id: str | None = None
    response_url: str | None = None


def actor_of(user: _User, team: _Id | None, enterprise: _Id | None = None) -> Actor:
    return Actor(
        user.id,
        surface="slack",
        team_id=user.team_id or (team.id if team else None),
        enterprise_id=enterprise.id if enterprise else None,
        name=user.name,
    )


def _unescape_slack(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _selected_value(body: dict[str, Any]) -> str | None:
    """The chosen option's value of a select or overflow click, if it has one."""
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    option = first.get("selected_option") if isinstance(first, dict) else None
    value = option.get("value") if isinstance(option, dict) else None
    return value if isinstance(value, str) else None


def _case_id(value: str | None) -> int:
    if value is None or not re.fullmatch(r"\d{1,9}", value):
        raise Refusal("This button does not name a case.", code="bad_payload")
    return int(value)


# ------------------------------------------------------------------ middleware


@dataclass
class BotIdentity:
    """Who the bot is in Slack: filled from `auth.test` at start-up, when Slack answers.

    Bolt's own single-team authorization calls `auth.test` inside the first request, so
    with Slack unreachable every command failed with HTTP 500; ours never calls Slack.
    """

    bot_token: str
    team_id: str | None = None
    enterprise_id: str | None = None
    bot_user_id: str | None = None
    bot_id: str | None = None

    def authorizer(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        """Bolt's `authorize` function (a plain function: Bolt passes it arguments by the
        names in its signature, which a bound method's `self` would confuse)."""

        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            return AuthorizeResult(
                enterprise_id=self.enterprise_id or enterprise_id,
                team_id=self.team_id or team_id,
                bot_token=self.bot_token,
                bot_id=self.bot_id,
                bot_user_id=self.bot_user_id,
            )

        return authorize


class InjectedClock(SlackClock):
    """slack_sdk's verifier clock, read from the bot's clock (tests move it by hand)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def now(self) -> float:
        return self.clock.now().timestamp()


class DedupeDeliveries(AsyncMiddleware):
    """Drops a request Slack delivers again (same event_id or trigger_id) before listeners run."""

    def __init__(self, service: CareService) -> None:
        self.service = service

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        body = req.body or {}
        key = body.get("event_id") or body.get("trigger_id")
        if key and not await asyncio.to_thread(self.service.first_delivery, f"slack:{key}"):
            log.info("ignoring a repeated Slack delivery %s", key)
            return BoltResponse(status=200, body="")
        return await next()


class MarkReceived(AsyncMiddleware):
    """Stamps the arrival time so listeners can report ack latency."""

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        req.context["received_at"] = time.perf_counter()
        return await next()


# ------------------------------------------------------------------ listeners


class SlackHandlers:
    """Registers every listener of the Slack surface on a Bolt AsyncApp."""

    def __init__(
        self,
        service: CareService,
        *,
        metrics: Metrics | None = None,
        health: Health | None = None,
    ) -> None:
        self.service = service
        self.config = service.config
        self.metrics = metrics
        self.health = health

    def register(self, app: AsyncApp) -> None:
        for verb in ("claim", "submit", "retry"):
            app.action(verb)(self._simple_action(verb))
        app.action("unhide_comment")(self._simple_action("unhide"))
        app.action(re.compile(r"^use_reply_[1-3]$"))(self.on_use_reply)
        app.action("approve")(self.on_approve)
        app.action("edit_reply")(self.on_edit_reply)
        app.action("reply_private")(self.on_edit_reply)
        app.action("hide_comment")(self._open_modal("hide"))
        app.action("reject")(self._open_modal("reject"))
        app.action("dismiss")(self._open_modal("dismiss"))
        app.action("reassign")(self._open_modal("reassign"))
        app.view("edit_reply")(self.on_edit_submitted)
        app.view("reply_private")(self.on_edit_submitted)
        app.view("hide_reason")(self._reason_submitted("hide"))
        app.view("reject_reason")(self._reason_submitted("reject"))
        app.view("dismiss_reason")(self._reason_submitted("dismiss"))
        app.view("reassign")(self.on_reassign_submitted)
        app.action("dismiss_group")(self.on_dismiss_group)
        app.view("dismiss_group_reason")(self.on_dismiss_group_submitted)
        app.action("claim_next")(self.on_claim_next)
        app.action(SAVED_REPLY_ACTION)(self.on_saved_reply)
        app.action(TAGS_ACTION)(self.on_edit_tags)
        app.view(TAGS_CALLBACK)(self.on_tags_submitted)
        app.command(self.config.bot.slash_command)(self.on_command)
        # Registered last: anything the buttons above did not match is refused clearly.
        app.action(re.compile(".*"))(self.on_unknown_action)

    # -- helpers

    async def _ack(self, ack: AsyncAck, context: dict[str, Any], **kwargs: Any) -> None:
        await ack(**kwargs)
        received = context.get("received_at")
        if self.metrics is not None and received is not None:
            self.metrics.ack_latency.observe(time.perf_counter() - received)

    def _count(self, kind: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.actions.labels(kind=kind, outcome=outcome).inc()

    async def _refuse(
        self, client: AsyncWebClient, payload: ActionPayload | None, body: dict[str, Any], text: str
    ) -> None:
        """Tell only the person who acted; nothing else changes."""
        user = payload.user.id if payload else (body.get("user") or {}).get("id")
        channel = payload.channel.id if payload and payload.channel else None
        channel = channel or (body.get("channel") or {}).get("id")
        try:
            if channel and user:
                await client.chat_postEphemeral(channel=channel, user=user, text=text)
            elif user:
                await client.chat_postMessage(channel=user, text=text)
        except SLACK_CALL_ERRORS as exc:
            self._slack_failed("chat.postEphemeral", exc)
            return
        self._slack_ok()

    def _slack_failed(self, method: str, exc: BaseException) -> None:
        """One line per outage (the health registry), not a traceback per click."""
        if isinstance(exc, SlackApiError):
            detail = str((exc.response or {}).get("error", "error"))
        else:
            detail = f"{exc.__class__.__name__}: {exc}"[:200]
        if self.health is not None:
            self.health.failed("slack", f"{method}: {detail}")
        else:
            log.warning("%s failed: %s", method, detail)

    def _slack_ok(self) -> None:
        if self.health is not None:
            self.health.ok("slack")

    async def _run_action(
        self,
        kind: str,
        body: dict[str, Any],
        client: AsyncWebClient,
        work: Callable[[ActionPayload, Actor], object],
    ) -> None:
        try:
            payload = ActionPayload.model_validate(body)
        except ValidationError:
            self._count(kind, "malformed")
            await self._refuse(client, None, body, "Sorry, that action could not be read.")
            return
        actor = actor_of(payload.user, payload.team, payload.enterprise)
        try:
            await asyncio.to_thread(work, payload, actor)
        except Refusal as refusal:
            self._count(kind, refusal.code)
            await self._refuse(client, payload, body, str(refusal))
            return
        self._count(kind, "ok")

    def _simple_action(self, verb: str) -> Callable[..., Awaitable[None]]:
        async def listener(
            ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
        ) -> None:
            await self._ack(ack, context)
            await self._run_action(
                verb,
                body,
                client,
                lambda p, a: perform(self.service, a, verb, {"case": p.actions[0].value}),
            )

        listener.__name__ = f"on_{verb}"
        return listener

    # -- buttons

    async def on_use_reply(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        await self._ack(ack, context)

        def work(payload: ActionPayload, actor: Actor) -> object:
            position = payload.actions[0].action_id.rsplit("_", 1)[1]
            data = {"case": payload.actions[0].value, "n": position}
            return perform(self.service, actor, "use_reply", data)

        await self._run_action("use_reply", body, client, work)

    async def on_saved_reply(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        """The card's "Saved reply" picker: the chosen reply, filled in, becomes the draft."""
        await self._ack(ack, context)
        parsed = parse_saved_reply_value(_selected_value(body) or "")

        def work(payload: ActionPayload, actor: Actor) -> object:
            if parsed is None:
                raise Refusal("This picker does not name a saved reply.", code="bad_payload")
            case, reply_id = parsed
            return perform(
                self.service, actor, "saved_reply", {"case": case, "saved_reply": reply_id}
            )

        await self._run_action("saved_reply", body, client, work)

    async def on_edit_tags(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        """The tags overflow: "Edit tags…" opens a modal, "Remove all tags" clears them."""
        await self._ack(ack, context)
        parsed = parse_tags_value(_selected_value(body) or "")
        if parsed is not None and parsed[0] == "clear":
            data = {"case": parsed[1], "tags": ""}
            await self._run_action(
                "tag", body, client, lambda p, a: perform(self.service, a, "tag", data)
            )
            return

        def work(payload: ActionPayload, actor: Actor) -> object:
            if parsed is None:
                raise Refusal("This menu does not name a case.", code="bad_payload")
            view = self.service.view(_case_id(parsed[1]))
            return tags_modal(view.case.id, view.tags)

        await self._with_modal("edit_tags", body, client, work)

    async def on_tags_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]
    ) -> None:
        metadata = str((body.get("view") or {}).get("private_metadata", ""))

        def work(actor: Actor, case_id: int, values: dict[str, Any]) -> object:
            text = values.get("tags", {}).get("tags_text", {}).get("value") or ""
            data: dict[str, Any] = {"case": case_id, "tags": text}
            if ":" in metadata:  # the tags the form showed (older forms carry none)
                data["shown"] = metadata.partition(":")[2]
            return perform(self.service, actor, "tag", data)

        await self._submitted("edit_tags", ack, body, context, "tags", work)

    async def on_approve(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        await self._ack(ack, context)

        def work(payload: ActionPayload, actor: Actor) -> object:
            parsed = parse_approve_value(payload.actions[0].value or "")
            if parsed is None:
                raise Refusal("This button does not name a case.", code="bad_payload")
            case_id, seen_hash = parsed
            return perform(self.service, actor, "approve", {"case": case_id, "hash": seen_hash})

        await self._run_action("approve", body, client, work)

    async def on_edit_reply(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        await self._ack(ack, context)

        # "Reply privately", or "Edit reply" of a private draft: the private form.
        kind = str((body.get("actions") or [{}])[0].get("action_id") or "edit_reply")

        def work(payload: ActionPayload, actor: Actor) -> object:
            case_id = _case_id(payload.actions[0].value)
            view = self.service.view(case_id)
            private = kind == "reply_private" or view.case.draft_private
            self.service.check_may_draft(actor, case_id, private=private)
            return edit_reply_modal(
                case_id,
                view.case.draft_text or (view.suggestions or [""])[0],
                view.author.handle,
                private_via=private_channel(view.case.network) if private else None,
            )

        await self._with_modal(kind, body, client, work)

    def _open_modal(self, kind: str) -> Callable[..., Awaitable[None]]:
        async def listener(
            ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
        ) -> None:
            await self._ack(ack, context)

            def work(payload: ActionPayload, actor: Actor) -> object:
                case = self.service.get_case(_case_id(payload.actions[0].value))
                if kind == "reassign":
                    departments = [(d.id, d.name) for d in self.config.departments]
                    return reassign_modal(case.id, departments, case.department)
                if kind == "hide":
                    self.service.check_may_hide(actor, case.id)  # before the form opens
                return reason_modal(case.id, kind)

            await self._with_modal(kind, body, client, work)

        listener.__name__ = f"on_{kind}"
        return listener

    async def _with_modal(
        self,
        kind: str,
        body: dict[str, Any],
        client: AsyncWebClient,
        build: Callable[[ActionPayload, Actor], object],
    ) -> None:
        """Build a modal off the event loop, then open it (the trigger expires in 3 s)."""
        modal: dict[str, Any] = {}

        def work(payload: ActionPayload, actor: Actor) -> object:
            built = build(payload, actor)
            assert isinstance(built, dict)
            modal.update(built)
            return built

        await self._run_action(kind, body, client, work)
        trigger = body.get("trigger_id")
        if modal and trigger:
            try:
                await client.views_open(trigger_id=trigger, view=modal)
            except SLACK_CALL_ERRORS as exc:
                self._slack_failed("views.open", exc)
                # The form never opened, so nothing was done: say so rather than go quiet.
                await self._tell(
                    body,
                    UNREACHABLE
                    if not isinstance(exc, SlackApiError)
                    else "Slack could not open the form"
                    f" ({(exc.response or {}).get('error', 'error')}); nothing was changed."
                    " Try again.",
                )
                return
            self._slack_ok()

    async def _tell(self, body: dict[str, Any], text: str) -> None:
        """Best effort: a private answer through the click's response_url."""
        url = body.get("response_url")
        if not url:
            return
        from slack_sdk.webhook.async_client import AsyncWebhookClient

        try:
            await AsyncWebhookClient(url, timeout=5).send(
                text=text, response_type="ephemeral", replace_original=False
            )
        except SLACK_CALL_ERRORS as exc:
            self._slack_failed("response_url", exc)

    async def on_unknown_action(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        await self._ack(ack, context)
        self._count("unknown", "refused")
        await self._refuse(client, None, body, "Sorry, this bot does not know that action.")

    async def on_dismiss_group(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        """ "Dismiss all N similar": one modal, one reason, for the whole group."""
        await self._ack(ack, context)

        def work(payload: ActionPayload, actor: Actor) -> object:
            view = self.service.view(_case_id(payload.actions[0].value))
            count = len(untouched(view))
            if not count:
                raise Refusal(
                    f"Nothing on the card of #{view.case.id} is left to dismiss.", code="no_change"
                )
            return group_dismiss_modal(view.case.id, count, seen_upto(view))

        await self._with_modal("dismiss_group", body, client, work)

    async def on_claim_next(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        """ "Claim next" under the queue answer: claim the most urgent case, say which."""
        await self._ack(ack, context)
        answer: list[str] = []

        def work(payload: ActionPayload, actor: Actor) -> object:
            _, text = perform_answered(self.service, actor, "claim_next", {})
            answer.append(text)
            return text

        await self._run_action("claim_next", body, client, work)
        if answer:
            # Only the person who clicked sees it, like the queue answer the button sat in;
            # escaped like a typed command's answer (it quotes the customer's post).
            await self._refuse(client, None, body, note_text(answer[0]))

    # -- modal submissions

    async def on_dismiss_group_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]
    ) -> None:
        """The modal turns into the one summary answer (or shows the refusal in place)."""
        summary: list[str] = []

        metadata = str((body.get("view") or {}).get("private_metadata", ""))

        def work(actor: Actor, case_id: int, values: dict[str, Any]) -> object:
            reason = values.get("reason", {}).get("reason_text", {}).get("value") or ""
            data = {"case": case_id, "reason": reason, "upto": metadata.partition(":")[2]}
            _, text = perform_answered(self.service, actor, "dismiss_group", data)
            summary.append(text)
            return text

        await self._submitted("dismiss_group", ack, body, context, "reason", work, answered=summary)

    async def _submitted(
        self,
        kind: str,
        ack: AsyncAck,
        body: dict[str, Any],
        context: dict[str, Any],
        block_id: str,
        work: Callable[[Actor, int, dict[str, Any]], object],
        *,
        answered: list[str] | None = None,
    ) -> None:
        """Run a modal's use case; a refusal shows on the modal's field. With `answered`
        filled by `work`, the modal is replaced by that answer instead of closing."""
        view = body.get("view") or {}
        user = body.get("user") or {}
        actor = Actor(
            str(user.get("id", "")),
            surface="slack",
            team_id=user.get("team_id") or (body.get("team") or {}).get("id"),
            enterprise_id=(body.get("enterprise") or {}).get("id"),
            name=user.get("name") or user.get("username"),
        )
        values = (view.get("state") or {}).get("values") or {}
        try:
            # `CASE` or `CASE:EXTRA` (a modal that binds more, e.g. "Dismiss all similar").
            case_id = _case_id(str(view.get("private_metadata", "")).partition(":")[0])
            await asyncio.to_thread(work, actor, case_id, values)
        except Refusal as refusal:
            self._count(kind, refusal.code)
            await self._ack(
                ack, context, response_action="errors", errors={block_id: str(refusal)[:150]}
            )
            return
        self._count(kind, "ok")
        if answered:
            done = summary_modal("Done", answered[0])
            await self._ack(ack, context, response_action="update", view=done)
            return
        await self._ack(ack, context)

    async def on_edit_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]
    ) -> None:
        kind = str((body.get("view") or {}).get("callback_id") or "edit_reply")
        verb = "reply_private" if kind == "reply_private" else "edit"

        def work(actor: Actor, case_id: int, values: dict[str, Any]) -> object:
            text = values.get("reply", {}).get("reply_text", {}).get("value") or ""
            return perform(self.service, actor, verb, {"case": case_id, "reply_text": text})

        await self._submitted(kind, ack, body, context, "reply", work)

    def _reason_submitted(self, kind: str) -> Callable[..., Awaitable[None]]:
        async def listener(ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
            def work(actor: Actor, case_id: int, values: dict[str, Any]) -> object:
                reason = values.get("reason", {}).get("reason_text", {}).get("value") or ""
                return perform(self.service, actor, kind, {"case": case_id, "reason": reason})

            await self._submitted(kind, ack, body, context, "reason", work)

        listener.__name__ = f"on_{kind}_submitted"
        return listener

    async def on_reassign_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]
    ) -> None:
        def work(actor: Actor, case_id: int, values: dict[str, Any]) -> object:
            selected = values.get("department", {}).get("department_select", {})
            department = (selected.get("selected_option") or {}).get("value") or ""
            data = {"case": case_id, "department": department}
            return perform(self.service, actor, "reassign", data)

        await self._submitted("reassign", ack, body, context, "department", work)

    # -- slash command

    async def on_command(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        context: dict[str, Any],
    ) -> None:
        actor = Actor(
            str(body.get("user_id", "")),
            surface="slack",
            team_id=body.get("team_id"),
            enterprise_id=body.get("enterprise_id") or None,
            name=body.get("user_name") or None,
        )
        # Slack escapes &, < and > in slash-command text; the words typed are what we keep.
        text = _unescape_slack(str(body.get("text", "")))
        running = asyncio.ensure_future(
            asyncio.to_thread(
                run_command, self.service, actor, text, command=self.config.bot.slash_command
            )
        )
        # The answer rides on the ack when it is ready in time: no Slack API call, so it
        # reaches the user even while Slack's Web API is down.
        done, _ = await asyncio.wait({running}, timeout=COMMAND_ANSWER_SECONDS)
        if not done:
            await self._ack(ack, context, text="Working on it…", response_type="ephemeral")
        try:
            reply = await running
        except Exception:
            # A bug must not leave the person with no answer at all.
            log.exception("a slash command could not be handled")
            reply = CommandReply("Something went wrong on our side; nothing was changed.", ok=False)
        name = (text.split() or ["help"])[0].lower()
        # Known subcommands only: typed words must not mint new metric series.
        known = {key.split()[0] for key in SUBCOMMANDS}
        self._count(
            f"command:{name if name in known else 'unknown'}", "ok" if reply.ok else "refused"
        )
        answer: dict[str, Any] = {"text": note_text(reply.text), "response_type": "ephemeral"}
        if reply.approval is not None:
            answer["blocks"] = approval_prompt_blocks(reply.approval, reply.text)
        elif reply.offer_next:
            answer["blocks"] = queue_answer_blocks(reply.text)
        if done:
            await self._ack(ack, context, **answer)
            return
        try:
            await respond(**answer)
        except SLACK_CALL_ERRORS as exc:
            self._slack_failed("response_url", exc)


def build_app(
    service: CareService,
    *,
    client: AsyncWebClient,
    signing_secret: str | None,
    clock: Clock,
    metrics: Metrics | None = None,
    health: Health | None = None,
    identity: BotIdentity | None = None,
) -> AsyncApp:
    """The Bolt app. HTTP mode verifies signatures against the bot's clock (Socket Mode
    connections are authenticated by the app token instead). Requests are authorized
    from `identity` (filled at start-up), never by calling Slack inside a request."""
    verification = None
    if signing_secret:
        verification = AsyncRequestVerification(signing_secret)
        # Bolt builds its verifier lazily from the real clock; give it ours instead.
        verification._verifier = SignatureVerifier(signing_secret, clock=InjectedClock(clock))
    identity = identity or BotIdentity(bot_token=client.token or "")
    # Bolt copies this logger's level to its own loggers: its notes about set-up choices
    # made here on purpose (our own authorize, a client without a token) stay quiet.
    bolt_log = logging.getLogger("socialcare.bolt")
    bolt_log.setLevel(
        logging.DEBUG if logging.getLogger().level == logging.DEBUG else logging.ERROR
    )
    app = AsyncApp(
        logger=bolt_log,
        client=client,
        signing_secret=signing_secret or "unused-in-socket-mode",
        request_verification_enabled=False,
        process_before_response=False,
        # Checked before authorization, so a forged request never makes us call Slack.
        before_authorize=verification,
        authorize=identity.authorizer(),
    )
    app.use(MarkReceived())
    app.use(DedupeDeliveries(service))
    SlackHandlers(service, metrics=metrics, health=health).register(app)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        # A listener that failed after its ack: one line, not a traceback per request.
        if isinstance(error, SLACK_CALL_ERRORS):
            if health is not None:
                health.failed("slack", f"{error.__class__.__name__}: {error}"[:200])
            else:
                log.warning("a Slack call failed: %s", error)
        else:
            log.error("a Slack request failed: %s: %s", error.__class__.__name__, error)
        return BoltResponse(
            status=200, body=UNREACHABLE if isinstance(error, SLACK_CALL_ERRORS) else ""
        )

    return app
