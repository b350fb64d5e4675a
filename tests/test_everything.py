"""The whole bot as an operator runs it, every vendor faked on loopback: a mention on X
becomes a Slack card with AI suggestions; staff claim, pick a suggestion and submit;
a manager approves; the reply appears on X once and the card says so."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from slack_sdk.signature import SignatureVerifier

from tests.fakes.openai import start_fake_openai
from tests.fakes.slack import start_fake_slack
from tests.fakes.x import start_fake_x

SECRET = "test-signing-secret-not-real"
CONFIG = """
[bot]
brand = "Acme Air"
database = "bot.db"

[server]
port = 0

[slack]
enabled = true
mode = "http"

[[departments]]
id = "care"
name = "Customer Care"
slack_channel = "C0CARE"
members = ["U0AGENT1"]
managers = ["U0LEAD"]
default = true

[sources.x]
enabled = true
user_id = "100"
queries = []
poll_seconds = 10

[llm]
enabled = true
model = "test-model"
timeout_seconds = 5
max_retries = 0

[publish]
dry_run = false
"""
READING = {
    "intent": "complaint",
    "sentiment": "negative",
    "priority": "high",
    "needs_reply": True,
    "language": "en",
    "summary": "Refund is late.",
}
SUGGESTION = "@customer So sorry for the wait! Please DM us and we will check your refund today."


def wait_until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def post(port: int, body: str) -> int:
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or ""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/events",
        data=body.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def click(port: int, user: str, action_id: str, value: str, trigger: str) -> int:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "team_id": "T0ACME"},
        "team": {"id": "T0ACME"},
        "channel": {"id": "C0CARE"},
        "trigger_id": trigger,
        "actions": [{"action_id": action_id, "value": value, "action_ts": "1"}],
    }
    return post(port, "payload=" + urllib.parse.quote(json.dumps(payload)))


def buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for block in blocks:
        for element in block.get("elements", []) + [block.get("accessory") or {}]:
            if element.get("type") == "button":
                found[element["action_id"]] = element["value"]
    return found


def test_a_mention_travels_from_x_through_slack_back_to_x(tmp_path: Path) -> None:
    config = tmp_path / "socialcare.toml"
    config.write_text(CONFIG)
    with (
        start_fake_slack() as slack,
        start_fake_x(brand_user_id="100") as x,
        start_fake_openai() as llm,
    ):
        x.add_user("7", "maya", "Maya Okafor", followers=812)
        tweet = x.add_tweet("7", "@AcmeAir my refund is three weeks late", mentions_user="100")
        llm.set_responder(lambda body: json.dumps({**READING, "suggestions": [SUGGESTION]}))
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": "xoxb-test-not-real",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url,
            "X_API_URL": x.url,
            "X_BEARER_TOKEN": "test-bearer-not-real",
            "X_CONSUMER_KEY": "test-consumer-key",
            "X_CONSUMER_SECRET": "test-consumer-secret",
            "X_ACCESS_TOKEN": "100-test-access-token",
            "X_ACCESS_TOKEN_SECRET": "test-access-secret",
            "OPENAI_API_KEY": "test-key-not-real",
            "OPENAI_BASE_URL": llm.base_url,
        }
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "-c", str(config)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert bot.stderr is not None
            port = None
            for line in bot.stderr:
                found = re.search(r"running: http://127\.0\.0\.1:(\d+)", line)
                if found:
                    port = int(found.group(1))
                    break
            assert port

            # X -> card, then the AI suggestion updates it.
            def suggested() -> dict[str, str] | None:
                cards = slack.calls_to("chat.postMessage") + slack.calls_to("chat.update")
                for card in reversed(cards):
                    if "use_reply_1" in buttons(card.get("blocks") or []):
                        return buttons(card["blocks"])
                return None

            first = slack.wait_for("chat.postMessage", timeout=30)[0]
            assert first["channel"] == "C0CARE" and "three weeks late" in json.dumps(first)
            found_buttons = wait_until(suggested)
            assert "AI-suggested" in json.dumps(slack.calls_to("chat.update")[-1]["blocks"])

            click(port, "U0AGENT1", "claim", found_buttons["claim"], "t1")
            click(port, "U0AGENT1", "use_reply_1", found_buttons["use_reply_1"], "t2")

            def submittable() -> dict[str, str] | None:
                latest = buttons(slack.calls_to("chat.update")[-1]["blocks"])
                return latest if "submit" in latest else None

            click(port, "U0AGENT1", "submit", wait_until(submittable)["submit"], "t3")

            def approvable() -> dict[str, str] | None:
                latest = buttons(slack.calls_to("chat.update")[-1]["blocks"])
                return latest if "approve" in latest else None

            click(port, "U0LEAD", "approve", wait_until(approvable)["approve"], "t4")

            reply = wait_until(lambda: x.posted())
            assert len(reply) == 1
            assert reply[0]["text"] == (
                "@maya So sorry for the wait! Please DM us and we will check your refund today."
            )
            assert reply[0]["referenced_tweets"] == [{"type": "replied_to", "id": tweet}]
            wait_until(
                lambda: any(
                    n.get("text", "").startswith("Published: https://x.com/i/web/status/")
                    for n in slack.calls_to("chat.postMessage")
                    if n.get("thread_ts")
                )
            )
            assert slack.calls_to("chat.postEphemeral") == []
            assert "refund" in llm.all_request_text()
        finally:
            bot.send_signal(signal.SIGTERM)
            code = bot.wait(timeout=30)
        assert code == 0
        assert len(x.posted()) == 1
