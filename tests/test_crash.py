"""kill -9 in the middle of an ingest leaves an intact database and loses nothing committed."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bot import audit
from bot.store import Store

CONFIG = """
[bot]
brand = "Acme Air"
database = "crash.db"
[slack]
enabled = false
[[departments]]
id = "care"
name = "Customer Care"
"""
TOTAL = 6000


def _count(db: Path) -> int:
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM cases").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0  # not created yet


def test_sigkill_during_ingest_leaves_the_database_intact(tmp_path: Path) -> None:
    config = tmp_path / "socialcare.toml"
    config.write_text(CONFIG)
    jsonl = tmp_path / "burst.jsonl"
    with jsonl.open("w") as out:
        for i in range(TOTAL):
            out.write(
                json.dumps(
                    {
                        "network": "x",
                        "id": str(10_000 + i),
                        "author_id": str(i % 700),
                        "author_handle": f"user{i % 700}",
                        "text": f"@AcmeAir flight {i} delayed again, where is my refund?",
                        "created_at": "2026-11-02T09:00:00Z",
                    }
                )
                + "\n"
            )
    db = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "ingest", str(jsonl), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Wait (bounded) until some batches are committed, then kill mid-stream.
    deadline = time.monotonic() + 60
    while _count(db) < 400 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    survived = _count(db)
    assert 0 < survived < TOTAL, "the kill must land mid-ingest for this test to mean anything"

    store = Store(db)
    assert store.integrity_ok()
    # Whole batches only: every stored case has its mention, its audit entry and its card.
    assert store.scalar("SELECT count(*) FROM mentions") == survived
    assert store.scalar("SELECT count(*) FROM outbox WHERE kind = 'card'") == survived
    assert survived % 200 == 0
    assert audit.verify(store.db).ok
    store.close()

    again = subprocess.run(
        [sys.executable, "-m", "bot", "ingest", str(jsonl), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert f"{TOTAL - survived} new cases" in again.stdout
    assert f"{survived} already stored" in again.stdout
    assert _count(db) == TOTAL


APPROVER = """
import sys
from pathlib import Path

from bot.config import load_config
from bot.models import Actor
from bot.ports import SystemClock
from bot.service import CareService
from bot.store import Store

config = load_config(sys.argv[1])
service = CareService(config, Store(config.database_path), clock=SystemClock())
for case_id in range(1, int(sys.argv[2]) + 1):
    service.approve(Actor("U0LEAD"), case_id)
    print(case_id, flush=True)  # printed only after the approval committed
"""


def test_sigkill_during_approvals_keeps_every_committed_approval(tmp_path: Path) -> None:
    from bot.config import load_config
    from bot.models import Actor, Mention
    from bot.ports import SystemClock
    from bot.service import CareService

    config_path = tmp_path / "socialcare.toml"
    config_path.write_text(CONFIG + 'members = ["U0AGENT1"]\nmanagers = ["U0LEAD"]\n')
    config = load_config(config_path)
    service = CareService(config, Store(config.database_path), clock=SystemClock())
    total = 250
    service.ingest_many(
        Mention(
            network="x", id=str(i), author_id=str(i), author_handle=f"u{i}",
            text=f"@AcmeAir case {i}: my refund is late", created_at="2026-11-02T09:00:00Z",
        )
        for i in range(total)
    )  # fmt: skip
    for case_id in range(1, total + 1):
        service.reply(Actor("U0AGENT1"), case_id, "Sorry! Please DM us and we will sort it out.")
    service.store.close()
    script = tmp_path / "approver.py"
    script.write_text(APPROVER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(config_path), str(total)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None
    confirmed = [int(proc.stdout.readline()) for _ in range(60)]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    store = Store(config.database_path)
    assert store.integrity_ok()
    approved = {r["case_id"] for r in store.query("SELECT case_id FROM approvals")}
    assert set(confirmed) <= approved, "an approval reported as done was lost"
    assert len(approved) < total, "the kill must land mid-run for this test to mean anything"
    states = {r["id"]: r["state"] for r in store.query("SELECT id, state FROM cases")}
    assert all(states[c] == "approved" for c in approved)
    assert store.scalar("SELECT count(*) FROM outbox WHERE kind = 'publish'") == len(approved)
    assert audit.verify(store.db).ok
    store.close()
