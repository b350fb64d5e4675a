"""`socialcare run` as an operator starts it: serves, posts cards, and exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.fakes.slack import start_fake_slack

CONFIG = """
[bot]
brand = "Acme Air"
database = "run.db"

[server]
host = "127.0.0.1"
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

[publish]
dry_run = true
"""
FAKE_TOKEN = "xoxb-test-run-not-real"


def test_run_serves_posts_cards_and_drains_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "socialcare.toml"
    config.write_text(CONFIG)
    mentions = tmp_path / "m.jsonl"
    mentions.write_text(
        json.dumps(
            {
                "network": "x",
                "id": "1",
                "author_id": "9",
                "author_handle": "maya",
                "text": "my refund is three weeks late",
                "created_at": "2026-11-02T09:00:00Z",
            }
        )
        + "\n"
    )
    with start_fake_slack() as fake:
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": FAKE_TOKEN,
            "SLACK_SIGNING_SECRET": "test-secret-not-real",
            "SLACK_API_URL": fake.api_url,
        }
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "-c", str(config)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        try:
            port = None
            log: list[str] = []
            assert bot.stderr is not None
            for line in bot.stderr:
                log.append(line)
                found = re.search(r"running: http://127\.0\.0\.1:(\d+)", line)
                if found:
                    port = int(found.group(1))
                    break
            assert port, "".join(log)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                assert resp.status == 200
                assert json.loads(resp.read())["status"] == "ok"
            ingest = subprocess.run(
                [sys.executable, "-m", "bot", "ingest", str(mentions), "-c", str(config)],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )
            assert ingest.returncode == 0, ingest.stderr
            [card] = fake.wait_for("chat.postMessage", timeout=15)
            assert card["channel"] == "C0CARE"
            bot.send_signal(signal.SIGTERM)
            assert bot.wait(timeout=30) == 0
            rest = bot.stderr.read()
            assert "stopped cleanly" in rest
            assert FAKE_TOKEN not in "".join(log) + rest
        finally:
            if bot.poll() is None:
                bot.kill()
                bot.wait()
