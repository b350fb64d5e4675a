"""Slack in Socket Mode, end to end: the bot's Runtime with the real slack_bolt
AsyncSocketModeHandler (slack_sdk's aiohttp client) against a fake Socket Mode server and a
fake Web API, both on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import Config, Secrets, parse_config
from bot.models import CaseState
from bot.runtime import Runtime
from tests.conftest import START, config_data, mention
from tests.fakes.slack import FakeSlack, start_fake_slack
from tests.fakes.slack_socket import FakeSocketMode, start_fake_socket_mode

BOT_TOKEN = "xoxb-test-bot-token-not-real"
APP_TOKEN = "xapp-test-app-token-not-real"


class RunningClock:
    """Starts at START and moves with real time: the chat worker paces each channel by the
    bot's clock, so a clock that never moves would hold every message after the first."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._t0)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Bounded wait for work Bolt finishes after it has acked (ack comes first by design)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class BotLoop:
    """Runs `runtime.start()` in an asyncio loop on a background thread; stop() runs
    `runtime.shutdown()` there and ends the loop, like `Runtime.serve()` on SIGTERM."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.started = threading.Event()  # set when runtime.start() returned or raised
        self.start_error: BaseException | None = None
        self.error: BaseException | None = None
        self.leftover_tasks: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._aborted = False
        self.thread = threading.Thread(target=self._run, name="socket-bot-loop", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by stop() in the test's thread
            self.error = exc
        finally:
            self.started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main_task = asyncio.current_task()
        self._stop = asyncio.Event()
        try:
            try:
                await self.runtime.start()
            except BaseException as exc:
                self.start_error = exc
                raise
            finally:
                self.started.set()
            await self._stop.wait()
        finally:
            await self.runtime.shutdown()
        await asyncio.sleep(0)  # let the tasks shutdown cancelled finish unwinding
        me = asyncio.current_task()
        self.leftover_tasks = [
            repr(t.get_coro()) for t in asyncio.all_tasks() if t is not me and not t.done()
        ]

    def begin(self) -> None:
        """Start the loop thread without waiting for runtime.start() to finish."""
        self.thread.start()

    def start(self, timeout: float = 10.0) -> None:
        self.begin()
        if not self.started.wait(timeout):
            raise AssertionError("runtime.start() did not finish in time")
        if self.start_error is not None:
            raise self.start_error

    def _request_stop(self) -> None:
        if self.started.is_set():
            assert self._stop is not None
            self._stop.set()
        else:  # runtime.start() is still running: cancel it; shutdown() still runs
            self._aborted = True
            assert self._main_task is not None
            self._main_task.cancel()

    def stop(self, timeout: float = 15.0) -> None:
        loop = self._loop
        if loop is not None and self.thread.is_alive():
            loop.call_soon_threadsafe(self._request_stop)
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the bot's loop thread did not end after shutdown")
        if self.error is None or self.error is self.start_error:
            return  # a failed start was reported by start() or is the test's to check
        if not (self._aborted and isinstance(self.error, asyncio.CancelledError)):
            raise self.error


class SocketHarness:
    def __init__(self, slack: FakeSlack, socket: FakeSocketMode, runtime: Runtime) -> None:
        self.slack = slack
        self.socket = socket
        self.runtime = runtime
        self.service = runtime.service
        self.bot = BotLoop(runtime)
        self.triggers = 0

    def ingest(self, text: str | None = None, **fields: Any) -> int:
        stats = self.service.ingest(mention(text, **fields) if text else mention(**fields))
        return stats.case_ids[0]

    def state(self, case_id: int) -> CaseState:
        return self.service.get_case(case_id).state

    def click_payload(
        self, user: str, action_id: str, value: str, *, trigger: str | None = None
    ) -> dict[str, Any]:
        """A block_actions payload as Slack sends it over Socket Mode (a JSON object)."""
        self.triggers += 1
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": "T0ACME"},
            "api_app_id": self.socket.app_id,
            "token": "verification-token-unused",
            "team": {"id": "T0ACME", "domain": "acme"},
            "channel": {"id": "C0CARE", "name": "care"},
            "trigger_id": trigger or f"socket-trigger-{self.triggers}",
            "response_url": self.slack.response_url(f"click{self.triggers}"),
            "container": {"type": "message", "message_ts": "1700000000.000100"},
            "actions": [
                {"action_id": action_id, "value": value, "type": "button", "action_ts": "1.2"}
            ],
        }

    def command_payload(self, user: str, text: str, *, key: str) -> dict[str, Any]:
        """A slash command over Socket Mode: the form fields, as a JSON object of strings."""
        self.triggers += 1
        return {
            "token": "verification-token-unused",
            "team_id": "T0ACME",
            "team_domain": "acme",
            "channel_id": "C0CARE",
            "channel_name": "care",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/care",
            "text": text,
            "api_app_id": self.socket.app_id,
            "is_enterprise_install": "false",
            "response_url": self.slack.response_url(key),
            "trigger_id": f"socket-trigger-{self.triggers}",
        }

    def claims(self) -> int:
        return int(
            self.service.store.scalar(
                "SELECT count(*) FROM audit WHERE action = 'claim' AND outcome = 'ok'"
            )
            or 0
        )


def socket_config(tmp_path: Path) -> Config:
    data = config_data()
    data["slack"] = {"enabled": True, "mode": "socket", "admins": ["U0ADMIN"], "team_id": "T0ACME"}
    data["slack"]["messages_per_second"] = 5  # Slack's ceiling is ~1; 5 keeps tests quick
    data["server"] = {"host": "127.0.0.1", "port": 0}
    return parse_config(data, base_dir=tmp_path)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[SocketHarness]:
    with start_fake_slack() as slack, start_fake_socket_mode() as socket:
        socket.install(slack)
        secrets = Secrets(
            slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN, slack_api_url=slack.api_url
        )
        runtime = Runtime(socket_config(tmp_path), secrets, clock=RunningClock(START))
        h = SocketHarness(slack, socket, runtime)
        try:
            yield h
        finally:
            if h.bot.thread.is_alive():
                h.bot.stop()
            elif not h.bot.thread.ident:
                runtime.store.close()


@pytest.fixture
def running(harness: SocketHarness) -> SocketHarness:
    """The harness with the bot started and connected (cases seeded before are carded)."""
    harness.bot.start()
    harness.socket.wait_connected()
    return harness


# ------------------------------------------------------------------ connecting


def test_the_app_token_opens_the_connection_and_hello_arrives(harness: SocketHarness) -> None:
    harness.bot.start()
    connection = harness.socket.wait_connected()

    [call] = [c for c in harness.slack.calls if c.method == "apps.connections.open"]
    assert call.headers["authorization"] == f"Bearer {APP_TOKEN}"
    assert call.http_method == "POST"
    [hello] = [f for f in harness.socket.frames if f.direction == "sent" and f.kind == "text"]
    assert hello.connection == connection
    assert hello.data["type"] == "hello"
    assert hello.data["connection_info"]["app_id"] == harness.socket.app_id
    # slack_sdk pings a new connection at once; the fake answers with the same data.
    ping = harness.socket.wait_frame(
        lambda f: f.direction == "received" and f.kind == "ping", what="the first ping"
    )
    assert ping.data.startswith(b"sdk-ping-pong:")
    # Socket Mode needs no public endpoint: the HTTP server has no /slack/events route.
    assert "/slack/events" not in {
        r.resource.canonical for r in harness.runtime.web_app().router.routes() if r.resource
    }
    assert harness.socket.protocol_errors == []


def test_a_bot_token_cannot_open_a_connection(harness: SocketHarness) -> None:
    """The fake is as strict as Slack: apps.connections.open wants the xapp- token."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=BOT_TOKEN, base_url=harness.slack.api_url)
    with pytest.raises(SlackApiError) as raised:
        client.apps_connections_open(app_token=BOT_TOKEN)
    assert raised.value.response["error"] == "not_allowed_token_type"
    ok = client.apps_connections_open(app_token=APP_TOKEN)
    assert ok["url"] == harness.socket.ws_url


def test_a_refused_app_token_fails_start_up_instead_of_retrying_forever(
    harness: SocketHarness,
) -> None:
    # A revoked (or wrong-workspace) app token: Slack refuses it for good.
    harness.slack.set_handler(
        "apps.connections.open", lambda params: {"ok": False, "error": "invalid_auth"}
    )
    harness.bot.begin()
    harness.slack.wait_for("apps.connections.open")
    # The refusal is final, so start-up should fail now, loudly, not retry in the background.
    assert harness.bot.started.wait(2.0), "runtime.start() is still retrying a refused token"
    assert harness.bot.start_error is not None
    assert harness.socket.connection_count == 0


# ------------------------------------------------------------------ interactivity


def test_a_claim_click_is_acked_and_claims_the_case(harness: SocketHarness) -> None:
    case_id = harness.ingest()
    harness.bot.start()
    harness.socket.wait_connected()
    [card] = harness.slack.wait_for("chat.postMessage")  # the chat worker posts the new card
    assert card["channel"] == "C0CARE"

    envelope_id = harness.socket.send_envelope(
        "interactive", harness.click_payload("U0AGENT1", "claim", str(case_id))
    )
    ack = harness.socket.wait_ack(envelope_id)
    assert ack == {"envelope_id": envelope_id}  # a button's ack carries no payload

    wait_until(lambda: harness.state(case_id) is CaseState.CLAIMED)
    assert harness.service.get_case(case_id).claimed_by == "U0AGENT1"
    [update] = harness.slack.wait_for("chat.update")
    assert update["channel"] == "C0CARE" and update["ts"] == "1700000000.000100"
    assert "U0AGENT1" in json.dumps(update["blocks"])
    posts = harness.slack.wait_for("chat.postMessage", count=2)
    assert posts[1]["thread_ts"] == "1700000000.000100"
    assert posts[1]["text"] == "Claimed by <@U0AGENT1>"
    assert harness.slack.calls_to("chat.postEphemeral") == []
    assert harness.socket.protocol_errors == []


def test_a_slash_command_refusal_travels_back_in_the_ack(running: SocketHarness) -> None:
    running.ingest()
    second = running.ingest("@AcmeAir where is my refund?", author_id="7", author_handle="bo")
    assert second == 2
    running.slack.wait_for("chat.postMessage", count=2)
    before = running.service.store.one("SELECT * FROM cases WHERE id = ?", [second])

    envelope_id = running.socket.send_envelope(
        "slash_commands", running.command_payload("U0NOBODY", f"claim {second}", key="cmd")
    )
    ack = running.socket.wait_ack(envelope_id)
    assert ack is not None and ack["envelope_id"] == envelope_id
    response = ack["payload"]
    assert response["response_type"] == "ephemeral"
    assert "Only members of Customer Care" in response["text"]
    assert running.service.store.one("SELECT * FROM cases WHERE id = ?", [second]) == before
    assert running.state(second) is CaseState.NEW
    assert running.claims() == 0
    assert running.slack.calls_to("chat.update") == []
    assert running.slack.calls_to("respond:cmd") == []  # no Web API call needed
    assert running.socket.protocol_errors == []


def test_the_same_delivery_twice_changes_state_once(running: SocketHarness) -> None:
    case_id = running.ingest()
    payload = running.click_payload("U0AGENT1", "claim", str(case_id), trigger="same-trigger")
    first = running.socket.send_envelope("interactive", payload)
    again = running.socket.send_envelope("interactive", payload)
    assert running.socket.wait_ack(first) == {"envelope_id": first}
    assert running.socket.wait_ack(again) == {"envelope_id": again}

    wait_until(lambda: running.state(case_id) is CaseState.CLAIMED)
    wait_until(lambda: running.claims() == 1)
    assert running.service.store.scalar("SELECT count(*) FROM inbound_seen") == 1
    notes = [p for p in running.slack.wait_for("chat.postMessage", count=2) if p.get("thread_ts")]
    assert [n["text"] for n in notes] == ["Claimed by <@U0AGENT1>"]
    assert running.claims() == 1
    assert running.slack.calls_to("chat.postEphemeral") == []
    assert running.socket.protocol_errors == []


def test_a_modal_submission_error_travels_back_in_the_ack(running: SocketHarness) -> None:
    """What HTTP mode returns as the response body, Socket Mode returns as the ack's payload."""
    case_id = running.ingest()
    payload = {
        "type": "view_submission",
        "user": {"id": "U0AGENT1", "team_id": "T0ACME"},
        "team": {"id": "T0ACME"},
        "trigger_id": "socket-view-1",
        "view": {
            "id": "V123",
            "type": "modal",
            "callback_id": "edit_reply",
            "private_metadata": str(case_id),
            "state": {"values": {"reply": {"reply_text": {"value": ""}}}},
        },
    }
    envelope_id = running.socket.send_envelope("interactive", payload)
    ack = running.socket.wait_ack(envelope_id)
    assert ack["envelope_id"] == envelope_id
    assert ack["payload"]["response_action"] == "errors"
    assert "it is empty" in ack["payload"]["errors"]["reply"]
    assert running.service.get_case(case_id).draft_text is None
    assert running.socket.protocol_errors == []


# ------------------------------------------------------------------ reconnecting and stopping


def test_a_disconnect_request_makes_the_client_reconnect(running: SocketHarness) -> None:
    first = running.socket.open_connections[0]
    running.socket.send_disconnect("refresh_requested")
    second = running.socket.wait_connected(count=2)
    assert second != first
    running.socket.wait_open_requests(2)
    running.socket.wait_closed(first)
    assert running.socket.open_connections == [second]

    case_id = running.ingest()
    envelope_id = running.socket.send_envelope(
        "interactive", running.click_payload("U0AGENT1", "claim", str(case_id))
    )
    assert running.socket.wait_ack(envelope_id) == {"envelope_id": envelope_id}
    assert running.socket.envelope(envelope_id).connection == second
    wait_until(lambda: running.state(case_id) is CaseState.CLAIMED)
    assert running.socket.protocol_errors == []


def test_shutdown_closes_the_websocket_cleanly(running: SocketHarness) -> None:
    [connection] = running.socket.open_connections
    running.bot.stop()

    assert not running.bot.thread.is_alive()
    assert running.socket.wait_closed(connection) == 1000  # a normal close, from the client
    closes = [f for f in running.socket.frames if f.kind == "close"]
    assert [(f.direction, f.data) for f in closes] == [("received", 1000)]
    assert running.socket.connection_count == 1  # closed for good: no reconnect
    assert len([c for c in running.slack.calls if c.method == "apps.connections.open"]) == 1
    assert running.runtime.stop_event.is_set()
    assert not any(w.is_alive() for w in running.runtime.workers)
    assert running.bot.leftover_tasks == []
    assert running.socket.protocol_errors == []


# ------------------------------------------------------------------ the fake itself


def test_the_fake_flags_acks_that_break_the_protocol() -> None:
    """A bare aiohttp client: the fake must notice unknown, repeated and misplaced acks."""
    import aiohttp

    with start_fake_socket_mode() as socket:

        async def client() -> None:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(socket.ws_url, autoping=False) as ws,
            ):
                hello = await ws.receive_json(timeout=5)
                assert hello["type"] == "hello" and hello["num_connections"] == 1
                await ws.ping(b"sdk-ping-pong:1")
                pongs, envelopes = 0, 0
                while pongs < 1 or envelopes < 2:  # the pong and the envelopes, in any order
                    msg = await ws.receive(timeout=5)
                    if msg.type == aiohttp.WSMsgType.PONG:
                        assert msg.data == b"sdk-ping-pong:1"
                        pongs += 1
                        continue
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    envelopes += 1
                    ack = {"envelope_id": json.loads(msg.data)["envelope_id"], "payload": {"x": 1}}
                    await ws.send_json(ack)
                    await ws.send_json(ack)
                await ws.send_json({"envelope_id": "nope"})
                await ws.send_str("not json")
                await ws.receive(timeout=5)  # the fake closes the socket when it stops

        failures: list[BaseException] = []

        def run_client() -> None:
            try:
                asyncio.run(client())
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=run_client, daemon=True)
        thread.start()
        try:
            socket.wait_connected()
            command = socket.send_envelope("slash_commands", {"command": "/care"})
            event = socket.send_envelope("events_api", {"type": "event_callback"})
            assert socket.envelope(event).message["accepts_response_payload"] is False
            assert socket.envelope(event).message["retry_attempt"] == 0
            assert socket.wait_ack(command) == {"envelope_id": command, "payload": {"x": 1}}
            socket.wait_frame(lambda f: f.data == "not json", what="the last frame")
            errors = socket.protocol_errors
        finally:
            socket.stop()
            thread.join(5)
    assert len(errors) == 6, errors  # the event had a payload in both its acks
    assert f"envelope {command} acked again" in errors
    assert f"envelope {event} acked again" in errors
    assert any(e.startswith(f"envelope {event} accepts no response payload") for e in errors)
    assert any("unknown envelope" in e for e in errors)
    assert any("not an ack: 'not json'" in e for e in errors)
    assert not thread.is_alive() and failures == []
