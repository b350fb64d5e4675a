"""Several `socialcare run` processes: refused on one SQLite file, safe on PostgreSQL
(each card and each reply exactly once, a dead process's work taken over)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bot.models import Actor, Mention
from bot.ports import SystemClock
from bot.service import CareService
from bot.storage import open_store
from tests.fakes.slack import start_fake_slack
from tests.pg import postgres_server_fixture, postgres_url_fixture  # noqa: F401
from tests.test_operator import Bot, until

CONFIG = """
[bot]
brand = "Acme Air"
database = "{database}"

[server]
host = "127.0.0.1"
port = 0
lease_seconds = 3

[slack]
enabled = {slack}
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


def mentions_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "m.jsonl"
    now = datetime.now(UTC)
    path.write_text(
        "".join(
            json.dumps(
                {
                    "network": "x",
                    "id": str(5000 + i),
                    "author_id": str(900 + i),
                    "author_handle": f"customer{i}",
                    "text": f"@AcmeAir problem number {i}: my bag {i} is lost, please help",
                    "created_at": (now - timedelta(minutes=10)).isoformat(),
                }
            )
            + "\n"
            for i in range(n)
        )
    )
    return path


def test_a_second_run_on_one_sqlite_file_is_refused_naming_the_first(tmp_path: Path) -> None:
    config = tmp_path / "socialcare.toml"
    config.write_text(CONFIG.format(database="bot.db", slack="false"))
    first = Bot(config, dict(os.environ))
    try:
        assert first.port
        second = subprocess.run(
            [sys.executable, "-m", "bot", "run", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert (
            f"another socialcare run (pid {first.proc.pid}) is using bot.db;"
            " for several processes use PostgreSQL" in second.stderr
        )
        # Other commands keep working beside the running bot.
        report = subprocess.run(
            [sys.executable, "-m", "bot", "report", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert report.returncode == 0, report.stderr
    finally:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    # A crash releases the lock: the next run starts.
    third = Bot(config, dict(os.environ))
    try:
        assert third.port
        assert third.stop()[0] == 0
    finally:
        third.kill()


def test_two_processes_on_postgres_post_each_card_once(tmp_path: Path, postgres_url: str) -> None:
    config = tmp_path / "socialcare.toml"
    config.write_text(CONFIG.format(database="ignored.db", slack="true"))
    mentions = mentions_file(tmp_path, 30)
    with start_fake_slack() as slack:
        env = {
            **os.environ,
            "DATABASE_URL": postgres_url,
            "SLACK_BOT_TOKEN": "xoxb-test-multi-not-real",
            "SLACK_SIGNING_SECRET": "test-secret-not-real",
            "SLACK_API_URL": slack.api_url,
        }
        one, two = Bot(config, env), Bot(config, env)
        try:
            assert one.port and two.port
            ingest = subprocess.run(
                [sys.executable, "-m", "bot", "ingest", str(mentions), "-c", str(config)],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )
            assert ingest.returncode == 0, ingest.stderr
            until(lambda: len(slack.calls_to("chat.postMessage")) >= 30, timeout=60)

            # Replies approved meanwhile go out once each, whichever process takes them.
            store = open_store(postgres_url)
            from bot.config import load_config

            service = CareService(load_config(config), store, clock=SystemClock())
            for case_id in range(1, 11):
                service.reply(Actor("U0AGENT1"), case_id, f"Sorry, we are on it ({case_id}).")
                service.approve(Actor("U0LEAD"), case_id)
            until(
                lambda: service.store.scalar("SELECT count(*) FROM dry_run_posts") == 10,
                timeout=60,
            )
            store.close()
            codes = [one.stop()[0], two.stop()[0]]
        finally:
            one.kill()
            two.kill()
    assert codes == [0, 0]
    cards = [
        json.dumps(c.get("blocks")) for c in slack.calls_to("chat.postMessage") if "blocks" in c
    ]
    first_lines = [c for c in cards if '"header"' in c]
    assert len(first_lines) == 30, "each case's card was posted exactly once"
    with psycopg.connect(postgres_url) as db:
        posts = db.execute(
            "SELECT in_reply_to_id, count(*) FROM dry_run_posts GROUP BY 1"
        ).fetchall()
        assert len(posts) == 10 and all(n == 1 for _, n in posts)
        owners = {
            r[0]
            for r in db.execute(
                "SELECT DISTINCT claimed_by FROM outbox WHERE claimed_by IS NOT NULL"
            )
        }
    assert owners, "items were leased to the processes that sent them"


def test_work_held_by_a_dead_process_is_taken_over_when_its_lease_lapses(
    tmp_path: Path, postgres_url: str
) -> None:
    config = tmp_path / "socialcare.toml"
    config.write_text(CONFIG.format(database="ignored.db", slack="true"))
    with start_fake_slack() as slack:
        env = {
            **os.environ,
            "DATABASE_URL": postgres_url,
            "SLACK_BOT_TOKEN": "xoxb-test-multi-not-real",
            "SLACK_SIGNING_SECRET": "test-secret-not-real",
            "SLACK_API_URL": slack.api_url,
        }
        store = open_store(postgres_url)
        from bot.config import load_config

        service = CareService(load_config(config), store, clock=SystemClock())
        lines = mentions_file(tmp_path, 1).read_text().splitlines()
        service.ingest_many([Mention.model_validate(json.loads(line)) for line in lines])
        # A process took the card and died before posting it: its lease lapses soon.
        lapse = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        with store.write() as db:
            db.execute(
                "UPDATE outbox SET state = 'sending', attempts = 1, claimed_by = 'dead:1',"
                " lease_until = ? WHERE kind = 'card'",
                (lapse,),
            )
        store.close()
        bot = Bot(config, env)
        try:
            assert bot.port
            # Not before the lease lapses (the holder might be alive), but then at once.
            [card] = slack.wait_for("chat.postMessage", timeout=30)
            assert card["channel"] == "C0CARE"
            assert datetime.now(UTC).isoformat() >= lapse
            assert bot.stop()[0] == 0
        finally:
            bot.kill()
