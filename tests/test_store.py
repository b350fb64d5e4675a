"""The store: pragmas, migrations, rollback, and many threads writing at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bot.config import Config
from bot.ports import FixedClock
from bot.service import CareService
from bot.store import Store
from tests.conftest import mention


def test_pragmas_and_migrations(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert store.scalar("PRAGMA synchronous") == 2  # FULL
    assert store.scalar("PRAGMA foreign_keys") == 1
    assert store.scalar("PRAGMA busy_timeout") == 10_000
    applied = store.scalar("SELECT count(*) FROM _sqlite_migrations")
    store.close()
    again = Store(tmp_path / "s.db")  # opening again applies nothing twice
    assert again.scalar("SELECT count(*) FROM _sqlite_migrations") == applied
    again.close()


def test_a_failed_write_rolls_back_whole(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    with pytest.raises(RuntimeError), store.write() as db:
        db.execute("INSERT INTO settings (key, value, updated_at) VALUES ('a', 'b', 'c')")
        raise RuntimeError("boom")
    assert store.scalar("SELECT count(*) FROM settings") == 0
    store.close()


def test_many_threads_write_at_once_without_losing_anything(
    config: Config, store: Store, clock: FixedClock
) -> None:
    service = CareService(config, store, clock=clock)
    errors: list[BaseException] = []

    def ingest(worker: int) -> None:
        try:
            for batch in range(10):
                service.ingest_many(
                    [
                        mention(
                            f"@AcmeAir thread {worker} batch {batch} item {i} refund",
                            id=f"{worker}-{batch}-{i}",
                        )
                        for i in range(20)
                    ]
                )
                service.first_delivery(f"key-{worker}-{batch}")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert store.scalar("SELECT count(*) FROM cases") == 4 * 10 * 20
    assert store.scalar("SELECT count(*) FROM inbound_seen") == 40
    assert store.integrity_ok()
