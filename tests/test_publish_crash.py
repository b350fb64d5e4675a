"""The bot killed with SIGKILL around the publish POST, then restarted: exactly one reply on X."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config
from bot.models import Actor, CaseState, Mention
from bot.ports import SystemClock
from bot.service import CareService
from bot.store import Store
from tests.fakes.x import start_fake_x

CONFIG = """
[bot]
brand = "Acme Air"
database = "crash.db"

[server]
port = 0

[slack]
enabled = false

[[departments]]
id = "care"
name = "Customer Care"
members = ["U0AGENT1"]
managers = ["U0LEAD"]

[sources.x]
enabled = false
user_id = "100"

[publish]
dry_run = false
"""
REPLY = "@maya Sorry! Please DM us your booking reference and we will check your refund."


def _env(fake_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "X_API_URL": fake_url,
        "X_BEARER_TOKEN": "test-bearer-not-real",
        "X_CONSUMER_KEY": "test-consumer-key",
        "X_CONSUMER_SECRET": "test-consumer-secret",
        "X_ACCESS_TOKEN": "100-test-access-token",
        "X_ACCESS_TOKEN_SECRET": "test-access-secret",
    }


def _state(config_path: Path) -> tuple[str, str | None]:
    store = Store(load_config(config_path).database_path)
    try:
        case = store.one("SELECT state FROM cases WHERE id = 1")
        item = store.one("SELECT state FROM outbox WHERE kind = 'publish'")
        assert case is not None
        return case["state"], item["state"] if item else None
    finally:
        store.close()


@pytest.mark.parametrize("kill_point", ["after_post", "before_post"])
def test_sigkill_around_the_publish_post_still_gives_exactly_one_reply(
    tmp_path: Path, kill_point: str
) -> None:
    config_path = tmp_path / "socialcare.toml"
    config_path.write_text(CONFIG)
    with start_fake_x(brand_user_id="100") as fake:
        fake.add_user("7", "maya", "Maya")
        tweet = fake.add_tweet("7", "@AcmeAir my refund is late", mentions_user="100")
        config = load_config(config_path)
        service = CareService(config, Store(config.database_path), clock=SystemClock())
        service.ingest(
            Mention(
                network="x",
                id=tweet,
                author_id="7",
                author_handle="maya",
                text="@AcmeAir my refund is late",
                created_at=datetime.now(UTC),
            )
        )
        service.reply(Actor("U0AGENT1"), 1, REPLY)
        service.approve(Actor("U0LEAD"), 1)
        service.store.close()

        env = _env(fake.url)
        bot: dict[str, Any] = {}

        def kill(_: object) -> None:
            os.kill(bot["proc"].pid, signal.SIGKILL)
            bot["proc"].wait(10)

        if kill_point == "after_post":
            fake.on_post_tweet(after=kill)
        else:
            fake.on_post_tweet(before=kill)
        command = [sys.executable, "-m", "bot", "run", "-c", str(config_path)]
        bot["proc"] = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        assert bot["proc"].wait(timeout=60) == -signal.SIGKILL
        assert _state(config_path) == ("approved", "sending")
        assert len(fake.posted()) == (1 if kill_point == "after_post" else 0)

        fake.on_post_tweet()
        restarted = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while _state(config_path)[0] != "published" and time.monotonic() < deadline:
                time.sleep(0.05)
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(timeout=30) == 0
        finally:
            if restarted.poll() is None:
                restarted.kill()
        assert _state(config_path) == (CaseState.PUBLISHED.value, "done")
        [posted] = fake.posted()
        assert posted["text"] == REPLY
        assert len(fake.calls_to("POST", "/2/tweets")) == (1 if kill_point == "after_post" else 2)


MASTODON_CONFIG = """
[bot]
brand = "Acme Air"
database = "crash.db"

[server]
port = 0

[slack]
enabled = false

[[departments]]
id = "care"
name = "Customer Care"
members = ["U0AGENT1"]
managers = ["U0LEAD"]

[sources.mastodon]
enabled = true
instance = "{instance}"
poll_seconds = 10

[publish]
dry_run = false
"""


def test_sigkill_after_mastodon_stored_the_reply_still_gives_exactly_one(tmp_path: Path) -> None:
    from tests.fakes.mastodon import start_fake_mastodon

    with start_fake_mastodon() as fake:
        ana = fake.add_account("ana", "Ana")
        fake.add_mention(ana, "my refund is late, please help")
        config_path = tmp_path / "socialcare.toml"
        config_path.write_text(MASTODON_CONFIG.format(instance=fake.url))
        env = {**os.environ, "MASTODON_ACCESS_TOKEN": fake.token}
        command = [sys.executable, "-m", "bot", "run", "-c", str(config_path)]
        bot = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                # Plain reads: opening a Store would migrate beside the starting bot.
                try:
                    with sqlite3.connect(tmp_path / "crash.db") as db:
                        if db.execute("SELECT count(*) FROM cases").fetchone()[0]:
                            break
                except sqlite3.Error:
                    pass  # not created or not migrated yet
                time.sleep(0.05)
            config = load_config(config_path)
            service = CareService(config, Store(config.database_path), clock=SystemClock())
            case = service.get_case(1)
            handle = service.view(1).author.handle

            def kill(_: object) -> None:
                os.kill(bot.pid, signal.SIGKILL)
                bot.wait(10)

            fake.on_post_status(after=kill)
            service.reply(Actor("U0AGENT1"), 1, f"@{handle} Sorry! Please DM us your booking ref.")
            service.approve(Actor("U0LEAD"), 1)
            service.store.close()
            assert bot.wait(timeout=60) == -signal.SIGKILL
            assert len(fake.posted()) == 1
            assert case.network == "mastodon"
        finally:
            if bot.poll() is None:
                bot.kill()
        fake.on_post_status(None)
        restarted = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while _state(config_path)[0] != "published" and time.monotonic() < deadline:
                time.sleep(0.05)
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(timeout=30) == 0
        finally:
            if restarted.poll() is None:
                restarted.kill()
        assert _state(config_path) == (CaseState.PUBLISHED.value, "done")
        assert len(fake.posted()) == 1, "the restart found the reply instead of posting again"
