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
