"""The real PostgreSQL test server works, and has the features the store relies on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.pg import PostgresServer, find_bindir, postgres_server_fixture, postgres_url_fixture  # noqa: F401

WAIT = 10.0  # seconds; generous upper bound for anything that should happen "soon"


def _wait_until_blocked_on_lock(observer: psycopg.Connection, pid: int) -> None:
    """Wait until backend `pid` is waiting for a heavyweight lock."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        row = observer.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        if row is not None and row[0] == "Lock":
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} never blocked on a lock")


def test_server_accepts_a_connection(postgres_server: PostgresServer, postgres_url: str) -> None:
    assert postgres_url.startswith(f"postgresql://postgres@127.0.0.1:{postgres_server.port}/")
    with psycopg.connect(postgres_url) as conn:
        assert conn.info.server_version >= 150000
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        # A fresh database per test: no user tables.
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE t (id int)")  # leftovers must not leak into other tests


def test_databases_are_isolated(postgres_server: PostgresServer, postgres_url: str) -> None:
    other_url = postgres_server.create_database("isolation_other")
    try:
        with psycopg.connect(postgres_url) as a, psycopg.connect(other_url) as b:
            a.execute("CREATE TABLE items (name text)")
            a.execute("INSERT INTO items VALUES ('only in a')")
            a.commit()
            assert b.execute("SELECT to_regclass('items')").fetchone() == (None,)
            b.execute("CREATE TABLE items (name text)")
            b.commit()
            assert b.execute("SELECT count(*) FROM items").fetchone() == (0,)
            assert a.execute("SELECT name FROM items").fetchall() == [("only in a",)]
    finally:
        postgres_server.drop_database("isolation_other")
    with psycopg.connect(postgres_server.url()) as admin:
        row = admin.execute("SELECT 1 FROM pg_database WHERE datname = 'isolation_other'")
        assert row.fetchone() is None


def test_drop_database_forces_out_open_connections(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("force_drop")
    conn = psycopg.connect(url)
    try:
        postgres_server.drop_database("force_drop")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()


def test_advisory_xact_lock_blocks_until_commit(postgres_url: str) -> None:
    with (
        psycopg.connect(postgres_url) as holder,
        psycopg.connect(postgres_url) as waiter,
        psycopg.connect(postgres_url, autocommit=True) as observer,
    ):
        holder.execute("SELECT pg_advisory_xact_lock(42)")
        acquired = threading.Event()
        errors: list[BaseException] = []

        def take_lock() -> None:
            try:
                waiter.execute("SELECT pg_advisory_xact_lock(42)")
                acquired.set()
                waiter.commit()
            except BaseException as exc:  # surfaced in the main thread
                errors.append(exc)

        thread = threading.Thread(target=take_lock, daemon=True)
        thread.start()
        _wait_until_blocked_on_lock(observer, waiter.info.backend_pid)
        assert not acquired.is_set()
        # Someone else can't take it either, even without waiting.
        assert observer.execute("SELECT pg_try_advisory_xact_lock(42)").fetchone() == (False,)

        holder.commit()  # releases the transaction-level lock
        assert acquired.wait(WAIT), "second connection never got the lock after commit"
        thread.join(WAIT)
        assert not errors
        # After the waiter's commit the lock is free again.
        assert observer.execute("SELECT pg_try_advisory_xact_lock(42)").fetchone() == (True,)


def test_listen_notify_between_connections(postgres_url: str) -> None:
    with (
        psycopg.connect(postgres_url, autocommit=True) as listener,
        psycopg.connect(postgres_url) as notifier,
    ):
        listener.execute("LISTEN card_events")

        notifier.execute("SELECT pg_notify('card_events', 'card-1 claimed')")
        # Not delivered before the notifying transaction commits.
        assert list(listener.notifies(timeout=0.2, stop_after=1)) == []
        notifier.commit()

        received = list(listener.notifies(timeout=WAIT, stop_after=1))
        assert len(received) == 1
        assert received[0].channel == "card_events"
        assert received[0].payload == "card-1 claimed"
        assert received[0].pid == notifier.info.backend_pid


def test_select_for_update_skip_locked(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as setup:
        setup.execute("CREATE TABLE jobs (id int PRIMARY KEY, state text NOT NULL)")
        setup.execute("INSERT INTO jobs SELECT g, 'pending' FROM generate_series(1, 3) g")
        setup.commit()

    claim = "SELECT id FROM jobs WHERE state = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    with psycopg.connect(postgres_url) as a, psycopg.connect(postgres_url) as b:
        assert a.execute(claim).fetchone() == (1,)
        assert b.execute(claim).fetchone() == (2,)  # row 1 is held by a: skipped
        with pytest.raises(psycopg.errors.LockNotAvailable):
            b.execute("SELECT id FROM jobs WHERE id = 1 FOR UPDATE NOWAIT")
        b.rollback()
        a.rollback()  # releases row 1
        assert b.execute(claim).fetchone() == (1,)
        b.rollback()


def test_missing_binaries_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="apt-get install postgresql"):
        find_bindir(path=str(tmp_path), lib_root=tmp_path / "nothing-here")


def test_binaries_are_found_on_this_machine() -> None:
    bindir = find_bindir()
    assert (bindir / "initdb").exists()
    assert (bindir / "pg_ctl").exists()
