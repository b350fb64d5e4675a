"""`socialcare run` with Facebook and Instagram, as an operator starts it: a signed webhook
delivery becomes a card; SIGKILL after Meta took the reply, then a restart, still gives one
reply; a token Meta refuses stops the start with exit 2 naming the variable."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from bot.config import load_config
from bot.models import Actor, CaseState, Mention
from bot.ports import SystemClock
from bot.service import CareService
from bot.store import Store
from tests.fakes.meta import (
    IG_ACCOUNT_ID,
    PAGE_ID,
    VERIFY_TOKEN,
    FakeGraph,
    delivery,
    feed_comment,
    sign,
    start_fake_graph,
)
from tests.fakes.slack import start_fake_slack

CONFIG = """
[bot]
brand = "Acme Air"
database = "meta.db"

[server]
port = 0

[slack]
enabled = {slack}
mode = "http"

[[departments]]
id = "care"
name = "Customer Care"
slack_channel = "C0CARE"
members = ["U0AGENT1"]
managers = ["U0LEAD"]

[sources.facebook]
enabled = true
page_id = "{page}"
poll_seconds = 10

[sources.instagram]
enabled = true
account_id = "{account}"

[meta]
graph_version = "v23.0"

[publish]
dry_run = false
"""
REPLY = "Sorry Maya! Please DM us your booking reference and we will check your refund."
COMMAND = [sys.executable, "-m", "bot", "run", "-c"]


def write_config(tmp_path: Path, *, slack: bool = False) -> Path:
    path = tmp_path / "socialcare.toml"
    path.write_text(CONFIG.format(slack=str(slack).lower(), page=PAGE_ID, account=IG_ACCOUNT_ID))
    return path


def env_for(fake: FakeGraph, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "META_PAGE_ACCESS_TOKEN": fake.token,
        "META_APP_SECRET": fake.app_secret,
        "META_VERIFY_TOKEN": VERIFY_TOKEN,
        "META_GRAPH_URL": fake.url,
        **extra,
    }


def wait_for_port(stream: IO[str], log: list[str]) -> int:
    for line in stream:
        log.append(line)
        found = re.search(r"running: http://127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))
    raise AssertionError("".join(log))


def case_state(config_path: Path) -> str | None:
    store = Store(load_config(config_path).database_path)
    try:
        return store.scalar("SELECT state FROM cases WHERE id = 1")  # type: ignore[no-any-return]
    finally:
        store.close()


def stop(bot: subprocess.Popen[Any]) -> int:
    bot.send_signal(signal.SIGTERM)
    try:
        return bot.wait(timeout=30)
    finally:
        if bot.poll() is None:
            bot.kill()


def test_a_signed_delivery_becomes_a_card_in_a_running_bot(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, slack=True)
    with start_fake_graph() as fake, start_fake_slack() as slack:
        now = datetime.now(UTC)
        post = fake.add_post("Winter timetable", at=now - timedelta(days=3))
        comment = fake.add_comment(
            post, "my flight was cancelled, refund please", author=("901", "Maya"), at=now
        )
        env = env_for(
            fake,
            SLACK_BOT_TOKEN="xoxb-test-meta-run-not-real",
            SLACK_SIGNING_SECRET="test-signing-secret-not-real",
            SLACK_API_URL=slack.api_url,
        )
        bot = subprocess.Popen(
            [*COMMAND, str(config_path)], env=env, stderr=subprocess.PIPE, text=True
        )
        log: list[str] = []
        try:
            assert bot.stderr is not None
            port = wait_for_port(bot.stderr, log)
            body = delivery(
                "page",
                PAGE_ID,
                [
                    feed_comment(
                        comment,
                        post,
                        "my flight was cancelled, refund please",
                        author=("901", "Maya"),
                        at=now,
                    )
                ],
            )
            sent = urllib.request.Request(
                f"http://127.0.0.1:{port}/meta/webhook",
                data=body,
                headers={"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(sent, timeout=5) as answer:
                assert answer.status == 200
            [card] = slack.wait_for("chat.postMessage", timeout=20)
            assert "my flight was cancelled" in json.dumps(card)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                parts = json.loads(answer.read())["parts"]
            assert parts["facebook"]["state"] == "ok" and parts["instagram"]["state"] == "ok"
            assert stop(bot) == 0
            rest = bot.stderr.read()
        finally:
            if bot.poll() is None:
                bot.kill()
        # The backfill saw the same comment: still one case.
        assert len(slack.calls_to("chat.postMessage")) == 1
        logged = "".join(log) + rest
        assert fake.token not in logged and fake.app_secret not in logged


def test_sigkill_after_meta_took_the_reply_still_gives_exactly_one(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    with start_fake_graph() as fake:
        post = fake.add_post("Winter timetable")
        comment = fake.add_comment(post, "my refund is late", author=("901", "Maya"))
        config = load_config(config_path)
        service = CareService(config, Store(config.database_path), clock=SystemClock())
        service.ingest(
            Mention(
                network="facebook",
                id=comment,
                author_id="901",
                author_handle="901",
                author_name="Maya",
                text="my refund is late",
                created_at=datetime.now(UTC),
                conversation_id=post,
            )
        )
        service.reply(Actor("U0AGENT1"), 1, REPLY)
        service.approve(Actor("U0LEAD"), 1)
        service.store.close()

        env = env_for(fake)
        bot: dict[str, Any] = {}

        def kill(path: str, new_id: str) -> None:
            os.kill(bot["proc"].pid, signal.SIGKILL)
            bot["proc"].wait(10)

        fake.on_post(kill)
        bot["proc"] = subprocess.Popen(
            [*COMMAND, str(config_path)], env=env, stderr=subprocess.DEVNULL
        )
        assert bot["proc"].wait(timeout=60) == -signal.SIGKILL
        assert len(fake.page_replies(comment)) == 1
        assert case_state(config_path) == CaseState.APPROVED.value

        fake.on_post(None)
        restarted = subprocess.Popen(
            [*COMMAND, str(config_path)], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while case_state(config_path) != "published" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert stop(restarted) == 0
        finally:
            if restarted.poll() is None:
                restarted.kill()
        assert case_state(config_path) == CaseState.PUBLISHED.value
        assert [r["message"] for r in fake.page_replies(comment)] == [REPLY]
        assert len(fake.calls_to("POST", f"{comment}/comments")) == 1
        # Nothing secret went into the database either.
        database = b"".join(p.read_bytes() for p in tmp_path.glob("meta.db*"))
        assert fake.token.encode() not in database


def test_a_refused_token_at_run_exits_2_naming_the_variable(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    with start_fake_graph() as fake:
        env = env_for(fake, META_PAGE_ACCESS_TOKEN="EAAexpiredtokennotreal000000")
        done = subprocess.run(
            [*COMMAND, str(config_path)], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    assert "META_PAGE_ACCESS_TOKEN" in done.stderr
    assert "EAAexpiredtokennotreal000000" not in done.stderr


def healthz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as unhealthy:  # 503 carries the same body
        return dict(json.loads(unhealthy.read()))


def test_an_unreachable_graph_api_starts_degraded(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    with start_fake_graph() as fake:
        env = env_for(fake)
    # The fake is gone: nothing answers at its address.
    bot = subprocess.Popen([*COMMAND, str(config_path)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert bot.stderr is not None
        port = wait_for_port(bot.stderr, [])
        parts = healthz(port)["parts"]
        assert parts["facebook"]["state"] == "failing"
        assert parts["instagram"]["state"] == "failing"
        assert "no answer" in parts["facebook"]["last_error"]
    finally:
        assert stop(bot) == 0
