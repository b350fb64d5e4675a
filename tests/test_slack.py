"""Slack end to end: the real Bolt app and slack_sdk clients against a fake Slack on loopback,
with requests signed by Slack's real signature scheme."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.config import Config, Secrets, parse_config
from bot.models import Actor, CaseState, text_hash
from bot.ports import FixedClock
from bot.runtime import Runtime
from handlers.slack import InjectedClock
from tests.conftest import START, config_data, mention
from tests.fakes.slack import FakeSlack, start_fake_slack

SECRET = "test-signing-secret-not-real"
TOKEN = "xoxb-test-token-not-real"
REPLY = "Sorry for the wait! Please DM us your booking reference and we will check the refund."


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Bounded wait for work Bolt finishes after it has acked (ack comes first by design)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class BotServer:
    """The bot's aiohttp app served from a background event loop on an ephemeral port."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(runtime.web_app())
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def request(
        self,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        method: str = "POST",
    ) -> tuple[int, str]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=body or None,
            headers=headers or {},
            method=method,
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()


class Harness:
    def __init__(self, fake: FakeSlack, runtime: Runtime, clock: FixedClock) -> None:
        self.fake = fake
        self.runtime = runtime
        self.service = runtime.service
        self.clock = clock
        self.server = BotServer(runtime)
        self.chat = runtime.chat_workers[0]
        self.triggers = 0

    def signed_post(self, body: str, *, age: int = 0, secret: str = SECRET) -> tuple[int, str]:
        ts = str(int(self.clock.now().timestamp()) - age)
        signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or "",
        }
        return self.server.request("/slack/events", body.encode(), headers)

    def click(self, user: str, action_id: str, value: str, *, trigger: str | None = None) -> int:
        self.triggers += 1
        payload = {
            "type": "block_actions",
            "user": {"id": user, "team_id": "T0ACME"},
            "team": {"id": "T0ACME"},
            "channel": {"id": "C0CARE"},
            "trigger_id": trigger or f"trigger-{self.triggers}",
            "response_url": self.fake.response_url(f"click{self.triggers}"),
            "container": {"type": "message", "message_ts": "1700000000.000100"},
            "actions": [
                {"action_id": action_id, "value": value, "type": "button", "action_ts": "1.2"}
            ],
        }
        status, _ = self.signed_post("payload=" + urllib.parse.quote(json.dumps(payload)))
        return status

    def submit_view(
        self,
        user: str,
        callback_id: str,
        case_id: int,
        values: dict[str, Any],
        *,
        metadata: str | None = None,
    ) -> tuple[int, str]:
        self.triggers += 1
        payload = {
            "type": "view_submission",
            "user": {"id": user, "team_id": "T0ACME"},
            "team": {"id": "T0ACME"},
            "trigger_id": f"trigger-{self.triggers}",
            "view": {
                "id": "V123",
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": str(case_id) if metadata is None else metadata,
                "state": {"values": values},
            },
        }
        return self.signed_post("payload=" + urllib.parse.quote(json.dumps(payload)))

    def command(self, user: str, text: str) -> int:
        self.triggers += 1
        fields = {
            "command": "/care",
            "text": text,
            "user_id": user,
            "team_id": "T0ACME",
            "channel_id": "C0CARE",
            "trigger_id": f"trigger-{self.triggers}",
            "response_url": self.fake.response_url(f"cmd{self.triggers}"),
        }
        status, body = self.signed_post(urllib.parse.urlencode(fields))
        self.last_answer = json.loads(body) if body.startswith("{") else {"raw": body}
        return status

    def ask(self, user: str, text: str) -> dict[str, Any]:
        """A slash command, and the answer Slack gets back in its own request (the ack)."""
        assert self.command(user, text) == 200
        return self.last_answer

    def ephemerals(self) -> list[str]:
        return [c["text"] for c in self.fake.calls_to("chat.postEphemeral")]

    def state(self, case_id: int) -> CaseState:
        return self.service.get_case(case_id).state

    def ingest(self, text: str | None = None, **fields: Any) -> int:
        stats = self.service.ingest(mention(text, **fields) if text else mention(**fields))
        return stats.case_ids[0]

    def deliver(self) -> None:
        self.chat.drain()


def slack_config(tmp_path: Path) -> Config:
    data = config_data()
    data["slack"] = {"enabled": True, "mode": "http", "admins": ["U0ADMIN"], "team_id": "T0ACME"}
    return parse_config(data, base_dir=tmp_path)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    clock = FixedClock(START)
    with start_fake_slack() as fake:
        secrets = Secrets(
            slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=fake.api_url
        )
        runtime = Runtime(slack_config(tmp_path), secrets, clock=clock)
        h = Harness(fake, runtime, clock)
        try:
            yield h
        finally:
            h.server.stop()
            runtime.store.close()


# ------------------------------------------------------------------ cards


def test_a_mention_becomes_a_card_in_its_departments_channel(harness: Harness) -> None:
    praise = harness.ingest("Thank you @AcmeAir, the crew were wonderful!")
    complaint = harness.ingest("<!channel> my bag is lost and nobody answers, refund me")
    harness.deliver()
    posts = harness.fake.calls_to("chat.postMessage")
    assert [p["channel"] for p in posts] == ["C0MKT", "C0CARE"]
    card = json.dumps(posts[1]["blocks"])
    assert f"#{complaint}" in card and f"#{praise}" in json.dumps(posts[0]["blocks"])
    assert "<!channel>" not in card and "&lt;!channel&gt;" in card
    assert posts[1]["unfurl_links"] is False
    action_ids = [
        e["action_id"] for b in posts[1]["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert "claim" in action_ids and "approve" not in action_ids


def test_claim_draft_submit_approve_publish_updates_card_and_thread(harness: Harness) -> None:
    case_id = harness.ingest()
    harness.deliver()
    assert harness.click("U0AGENT1", "claim", str(case_id)) == 200
    wait_until(lambda: harness.state(case_id) is CaseState.CLAIMED)

    assert harness.click("U0AGENT1", "edit_reply", str(case_id)) == 200
    modal = harness.fake.wait_for("views.open")[0]["view"]
    assert modal["callback_id"] == "edit_reply" and modal["private_metadata"] == str(case_id)

    status, body = harness.submit_view(
        "U0AGENT1", "edit_reply", case_id, {"reply": {"reply_text": {"value": REPLY}}}
    )
    assert status == 200 and "errors" not in body
    assert harness.service.get_case(case_id).draft_text == f"@maya {REPLY}"

    harness.click("U0AGENT1", "submit", str(case_id))
    wait_until(lambda: harness.state(case_id) is CaseState.AWAITING_APPROVAL)
    value = json.dumps({"case": case_id, "hash": text_hash(f"@maya {REPLY}")})
    harness.click("U0LEAD", "approve", value)
    wait_until(lambda: harness.state(case_id) is CaseState.APPROVED)

    assert harness.runtime.publish_worker.drain() == 1
    assert harness.state(case_id) is CaseState.PUBLISHED
    harness.deliver()

    updates = harness.fake.calls_to("chat.update")
    assert updates and all(u["channel"] == "C0CARE" for u in updates)
    assert "dry-run://x/" in json.dumps(updates[-1]["blocks"])
    notes = [p["text"] for p in harness.fake.calls_to("chat.postMessage") if p.get("thread_ts")]
    assert notes[0] == "Claimed by <@U0AGENT1>"
    assert any(n.startswith("Approved by <@U0LEAD>") for n in notes)
    assert notes[-1].startswith("Published: dry-run://x/")
    assert harness.ephemerals() == []


@pytest.mark.parametrize(
    ("user", "action", "setup", "expected"),
    [
        ("U0MKT1", "claim", "new", "Only members of Customer Care"),
        ("U0NOBODY", "claim", "new", "Only members of Customer Care"),
        ("U0AGENT2", "approve", "submitted", "Only managers of Customer Care"),
        ("U0LEAD", "approve", "self", "another manager"),
        ("U0LEAD", "approve", "unknown", "There is no case #999"),
        ("U0AGENT1", "retry", "new", "Cannot retry"),
        ("U0AGENT1", "claim", "bad-value", "does not name a case"),
    ],
)
def test_refusals_are_ephemeral_and_change_nothing(
    harness: Harness, user: str, action: str, setup: str, expected: str
) -> None:
    case_id = harness.ingest()
    if setup == "submitted":
        harness.service.reply(_actor("U0AGENT1"), case_id, REPLY)
    if setup == "self":
        harness.service.reply(_actor("U0LEAD"), case_id, REPLY)
    harness.deliver()
    harness.fake.clear()
    before = harness.service.store.one("SELECT * FROM cases WHERE id = ?", [case_id])
    draft = harness.service.get_case(case_id).draft_text or ""
    value = {
        "unknown": json.dumps({"case": 999, "hash": text_hash("x")}),
        "bad-value": "DROP TABLE cases",
    }.get(
        setup,
        json.dumps({"case": case_id, "hash": text_hash(draft)})
        if action == "approve"
        else str(case_id),
    )
    assert harness.click(user, action, value) == 200
    [refusal] = harness.fake.wait_for("chat.postEphemeral")
    assert refusal["user"] == user and refusal["channel"] == "C0CARE"
    assert expected in refusal["text"]
    assert harness.service.store.one("SELECT * FROM cases WHERE id = ?", [case_id]) == before
    harness.deliver()
    assert harness.fake.calls_to("chat.update") == []


def _actor(user: str):  # type: ignore[no-untyped-def]
    from bot.models import Actor

    return Actor(user, team_id="T0ACME")


def test_a_user_from_another_workspace_is_refused(harness: Harness) -> None:
    case_id = harness.ingest()
    harness.triggers += 1
    payload = {
        "type": "block_actions",
        "user": {"id": "U0AGENT1", "team_id": "T0EVIL"},
        "team": {"id": "T0EVIL"},
        "channel": {"id": "C0CARE"},
        "trigger_id": "trigger-evil",
        "actions": [{"action_id": "claim", "value": str(case_id)}],
    }
    harness.signed_post("payload=" + urllib.parse.quote(json.dumps(payload)))
    harness.fake.wait_for("chat.postEphemeral")
    assert harness.state(case_id) is CaseState.NEW


def test_the_same_delivery_twice_changes_state_once(harness: Harness) -> None:
    case_id = harness.ingest()
    assert harness.click("U0AGENT1", "claim", str(case_id), trigger="same-trigger") == 200
    assert harness.click("U0AGENT1", "claim", str(case_id), trigger="same-trigger") == 200
    wait_until(lambda: harness.state(case_id) is CaseState.CLAIMED)
    assert harness.ephemerals() == []  # the retried delivery was dropped silently
    # A genuine second click (new trigger) by the same person changes nothing, says why.
    harness.click("U0AGENT1", "claim", str(case_id))
    wait_until(lambda: len(harness.ephemerals()) == 1)
    assert harness.ephemerals() == [f"You have already claimed case #{case_id}."]
    outcomes = [
        r["outcome"]
        for r in harness.service.store.query("SELECT outcome FROM audit WHERE action = 'claim'")
    ]
    assert outcomes == ["ok", "refused:no_change"]


def test_a_429_with_retry_after_is_honoured_and_the_card_still_posts(harness: Harness) -> None:
    harness.fake.queue("chat.postMessage", status=429, headers={"Retry-After": "0"})
    harness.ingest()
    harness.deliver()
    posts = harness.fake.calls_to("chat.postMessage")
    assert len(posts) == 2 and posts[0] == posts[1]
    assert harness.service.store.scalar("SELECT count(*) FROM chat_messages") == 1


def test_a_slack_outage_keeps_the_card_queued_until_slack_returns(harness: Harness) -> None:
    harness.fake.fail_all("chat.postMessage", status=503)
    harness.ingest()
    harness.deliver()
    assert harness.service.store.scalar("SELECT state FROM outbox WHERE kind = 'card'") == "pending"
    harness.fake.restore()
    harness.clock.advance(600)
    harness.deliver()
    assert harness.service.store.scalar("SELECT state FROM outbox WHERE kind = 'card'") == "done"


def test_unknown_actions_and_malformed_payloads_get_a_clear_refusal(harness: Harness) -> None:
    harness.click("U0AGENT1", "launch_rockets", "1")
    [refusal] = harness.fake.wait_for("chat.postEphemeral")
    assert "does not know that action" in refusal["text"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "it is empty"),
        ("x" * 400, "over the limit"),
        ("thanks @someoneelse", "other accounts"),
    ],
)
def test_edit_modal_validation_errors_show_inline(harness: Harness, text: str, error: str) -> None:
    case_id = harness.ingest()
    status, body = harness.submit_view(
        "U0AGENT1", "edit_reply", case_id, {"reply": {"reply_text": {"value": text}}}
    )
    assert status == 200
    response = json.loads(body)
    assert response["response_action"] == "errors"
    assert error in response["errors"]["reply"]
    assert harness.service.get_case(case_id).draft_text is None


def test_reject_and_dismiss_ask_for_a_reason_in_a_modal(harness: Harness) -> None:
    case_id = harness.ingest()
    harness.service.reply(_actor("U0AGENT1"), case_id, REPLY)
    harness.click("U0LEAD", "reject", str(case_id))
    modal = harness.fake.wait_for("views.open")[0]["view"]
    assert modal["callback_id"] == "reject_reason"
    harness.submit_view(
        "U0LEAD",
        "reject_reason",
        case_id,
        {"reason": {"reason_text": {"value": "Say sorry first"}}},
    )
    case = harness.service.get_case(case_id)
    assert case.state is CaseState.CLAIMED and case.note == "Say sorry first"


def test_reassign_moves_the_case_to_another_department(harness: Harness) -> None:
    case_id = harness.ingest()
    harness.deliver()
    harness.click("U0LEAD", "reassign", str(case_id))
    modal = harness.fake.wait_for("views.open")[0]["view"]
    assert modal["callback_id"] == "reassign"
    values = {"department": {"department_select": {"selected_option": {"value": "marketing"}}}}
    harness.submit_view("U0LEAD", "reassign", case_id, values)
    assert harness.service.get_case(case_id).department == "marketing"
    harness.deliver()
    channels = [
        p["channel"] for p in harness.fake.calls_to("chat.postMessage") if not p.get("thread_ts")
    ]
    assert channels == ["C0CARE", "C0MKT"]


# ------------------------------------------------------------------ slash command


def test_slash_commands_answer_privately(harness: Harness) -> None:
    first = harness.ingest()
    harness.ingest("@AcmeAir where is my refund?", author_id="7", author_handle="bo")
    responses = [
        harness.ask("U0AGENT1", f"claim #{first}"),
        harness.ask("U0AGENT1", "queue care"),
        harness.ask("U0AGENT2", "approve 1"),
        harness.ask("U0LEAD", "pause"),
    ]
    assert harness.state(first) is CaseState.CLAIMED
    # Answered in the ack itself: no Web API call, nothing via response_url.
    assert [c for c in harness.fake.calls if c.method.startswith("respond:")] == []
    assert all(r["response_type"] == "ephemeral" for r in responses)
    assert responses[0]["text"] == f"You claimed case #{first}."
    assert (
        "Open cases in care: 2" in responses[1]["text"]
        and "&lt;@U0AGENT1&gt;" not in responses[1]["text"]
    )
    assert "Cannot approve" in responses[2]["text"] or "Only managers" in responses[2]["text"]
    assert "Only admins" in responses[3]["text"]


# ------------------------------------------------------------------ request verification


def test_slacks_documented_signature_example_verifies() -> None:
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect"
        "&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554"
        "%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )

    class At:
        def now(self) -> Any:
            from datetime import UTC, datetime

            return datetime.fromtimestamp(1531420618, UTC)

    verifier = SignatureVerifier("8f742231b10e8888abcd99yyyzzz85a5", clock=InjectedClock(At()))
    assert verifier.is_valid(
        body, "1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )
    assert not verifier.is_valid(
        body + "x",
        "1531420618",
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    )


@pytest.mark.parametrize("tamper", ["body", "signature", "old", "future", "missing"])
def test_bad_signatures_get_401_and_change_nothing(harness: Harness, tamper: str) -> None:
    case_id = harness.ingest()
    body = urllib.parse.urlencode(
        {
            "command": "/care",
            "text": f"claim {case_id}",
            "user_id": "U0AGENT1",
            "team_id": "T0ACME",
            "trigger_id": "t-sig",
            "response_url": harness.fake.response_url("sig"),
        }
    )
    ts = int(harness.clock.now().timestamp())
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=str(ts), body=body) or ""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if tamper == "body":
        headers |= {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": signature}
        body = body.replace("claim", "dismiss")
    elif tamper == "signature":
        headers |= {
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature[:-1] + ("1" if signature.endswith("0") else "0"),
        }
    elif tamper in {"old", "future"}:
        moved = ts - 301 if tamper == "old" else ts + 301
        resigned = (
            SignatureVerifier(SECRET).generate_signature(timestamp=str(moved), body=body) or ""
        )
        headers |= {"X-Slack-Request-Timestamp": str(moved), "X-Slack-Signature": resigned}
    status, _ = harness.server.request("/slack/events", body.encode(), headers)
    assert status == 401
    assert harness.state(case_id) is CaseState.NEW
    assert harness.fake.calls_to("respond:sig") == []
    # The same request signed properly and in time is accepted.
    assert harness.signed_post(body.replace("dismiss", "claim"))[0] == 200


# ------------------------------------------------------------------ health and metrics


def test_healthz_and_metrics(harness: Harness) -> None:
    status, body = harness.server.request("/healthz", method="GET")
    # Workers are not started in this harness, so health honestly says unhealthy.
    report = json.loads(body)
    assert status == 503 and report["parts"]["store"]["state"] == "ok"
    assert report["problems"] == ["workers: not running"]
    harness.click("U0MKT1", "claim", str(harness.ingest()))
    harness.fake.wait_for("chat.postEphemeral")
    status, text = harness.server.request("/metrics", method="GET")
    assert status == 200
    assert 'socialcare_actions_total{kind="claim",outcome="not_allowed"} 1.0' in text
    assert 'socialcare_outbox_depth{kind="card"} 1.0' in text
    assert "socialcare_ack_latency_seconds_count 1.0" in text
    assert "socialcare_mentions_stored 1.0" in text
    assert "socialcare_uncertain_publishes 0.0" in text
    case_id = harness.ingest("@AcmeAir where is my refund for booking 123?")
    harness.service.begin_publish_attempt(case_id)  # an attempt whose answer was lost
    assert (
        "socialcare_uncertain_publishes 1.0" in harness.server.request("/metrics", method="GET")[1]
    )
    status, body = harness.server.request("/api/messages", b"{}")
    assert status == 404 and "not enabled" in body


def test_a_forged_request_is_refused_before_the_bot_calls_slack(harness: Harness) -> None:
    status, _ = harness.signed_post("command=%2Fcare&text=help&user_id=U0AGENT1", secret="wrong")
    assert status == 401
    assert harness.fake.calls == []  # not even auth.test


def test_slash_command_text_is_unescaped_before_it_becomes_a_reply(harness: Harness) -> None:
    case_id = harness.ingest()
    harness.ask("U0AGENT1", f"reply {case_id} Sorry &amp; thanks for waiting &lt;3")
    assert harness.service.get_case(case_id).draft_text == "@maya Sorry & thanks for waiting <3"


def test_slash_approve_shows_the_words_and_a_changed_draft_is_refused(harness: Harness) -> None:
    agent = Actor("U0AGENT1", team_id="T0ACME")
    case_id = harness.ingest()
    harness.service.reply(agent, case_id, "Sorry about your bag, we are on it.")
    prompt = harness.ask("U0LEAD", f"approve {case_id}")
    shown = harness.service.get_case(case_id).draft_text
    assert shown is not None and shown in prompt["text"]
    assert harness.state(case_id) is CaseState.AWAITING_APPROVAL  # nothing approved yet
    [button] = [e for b in prompt["blocks"] if b["type"] == "actions" for e in b["elements"]]
    code = text_hash(shown)[:8]
    assert f"approve {case_id} {code}" in prompt["text"]

    # The agent changes the words after the manager saw them.
    harness.service.reply(agent, case_id, "Sorry! Send us your card number by DM.")
    typed = harness.ask("U0LEAD", f"approve {case_id} {code}")
    assert "changed since you saw it" in typed["text"]
    assert harness.click("U0LEAD", "approve", button["value"]) == 200
    wait_until(lambda: len(harness.ephemerals()) == 1)
    assert "changed since you saw it" in harness.ephemerals()[0]
    assert harness.state(case_id) is CaseState.AWAITING_APPROVAL
    refusals = [e for e in harness.service.audit_trail(case_id) if e["action"] == "approve"]
    assert [e["outcome"] for e in refusals] == ["refused:stale", "refused:stale"]

    # Shown again, the new words are approved with their own code.
    again = harness.ask("U0LEAD", f"approve {case_id}")
    current = harness.service.get_case(case_id).draft_text or ""
    assert current in again["text"]
    harness.command("U0LEAD", f"approve {case_id} {text_hash(current)[:8]}")
    wait_until(lambda: harness.state(case_id) is CaseState.APPROVED)


def test_a_stranger_cannot_list_or_count_cases(harness: Harness) -> None:
    harness.ingest()
    harness.ingest("Thank you @AcmeAir, the crew were wonderful!")  # marketing
    answers = [
        harness.ask(user, text)["text"]
        for user, text in [
            ("U0NOBODY", "queue"),
            ("U0NOBODY", "stats"),
            ("U0AGENT1", "queue"),
            ("U0AGENT1", "queue marketing"),
            ("U0ADMIN", "queue"),
        ]
    ]
    assert "Only members and managers" in answers[0] and "#1" not in answers[0]
    assert "Only members and managers" in answers[1] and "mentions" not in answers[1]
    assert "Open cases: 1" in answers[2] and "#2" not in answers[2]
    assert "Only members and managers of marketing" in answers[3]
    assert "Open cases: 2" in answers[4]
    refused = harness.service.store.query(
        "SELECT actor, action FROM audit WHERE outcome = 'refused:not_allowed' ORDER BY seq"
    )
    assert [(r["actor"], r["action"]) for r in refused] == [
        ("slack:U0NOBODY", "queue"),
        ("slack:U0NOBODY", "stats"),
        ("slack:U0AGENT1", "queue"),
    ]


def test_a_form_slack_cannot_open_is_reported_to_the_person(harness: Harness) -> None:
    case_id = harness.ingest()
    harness.fake.fail_all("views.open", status=503)
    assert harness.click("U0AGENT1", "dismiss", str(case_id)) == 200
    [told] = harness.fake.wait_for(f"respond:click{harness.triggers}")
    assert told["response_type"] == "ephemeral"
    assert "could not open the form" in told["text"] and "nothing was changed" in told["text"]
    assert harness.state(case_id) is CaseState.NEW
