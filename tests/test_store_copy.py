"""`socialcare store copy`: a SQLite history moves into an empty PostgreSQL database
exactly, on a real server; the bot carries on there; refusals and failures change nothing
and never print the password."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from bot import audit
from bot.cli import main
from bot.config import Config, parse_config
from bot.delivery import DryRunPublisher, PublishWorker
from bot.errors import Refusal
from bot.ports import FixedClock
from bot.runtime import single_process_guard
from bot.service import CareService
from bot.storage import open_store
from bot.store import Store
from bot.store_copy import copy_order, mask_url
from tests.conftest import ADMIN, AGENT, AGENT2, LEAD, START, config_data, new_case
from tests.pg import postgres_server_fixture, postgres_url_fixture  # noqa: F401

PASSWORD = "Sup3r-s3cret"
REPLY = "Sorry about the delay! Please DM us your booking reference."
CONFIG = """
[bot]
brand = "Acme Air"
database = "{database}"
[slack]
enabled = false
[[departments]]
id = "care"
name = "Customer Care"
intents = ["complaint", "question"]
members = ["U0AGENT1", "U0AGENT2"]
managers = ["U0LEAD"]
default = true
"""

# A row for each table the history below leaves empty (the LLM, chat surfaces, sources and
# scheduler fill them in a running bot). A new table needs a row here, or the test that
# every table is copied fails: an empty table would prove nothing.
FILLERS: dict[str, dict[str, Any]] = {
    "suggestions": {
        "case_id": 2,
        "position": 0,
        "text": "Thank you — we'll pass it on to the crew! 🎉 (100% true)",
        "source": "llm",
        "prompt_version": "suggest-v3",
        "created_at": "2026-11-02T09:05:00+00:00",
    },
    "chat_messages": {
        "case_id": 1,
        "surface": "slack",
        "channel": "C0CARE",
        "message_id": "1730538000.000100",
        "posted_at": "2026-11-02T09:00:01+00:00",
    },
    "cursors": {
        "source": "x:mentions",
        "value": "1853200000000000001",
        "updated_at": "2026-11-02T09:00:00+00:00",
    },
    "inbound_seen": {"key": "slack:Ev0123ABC", "seen_at": "2026-11-02T09:01:00+00:00"},
    "llm_calls": {
        "at": "2026-11-02T09:00:02+00:00",
        "case_id": 1,
        "kind": "classify",
        "model": "gpt-4o-mini",
        "prompt_version": "classify-v2",
        "cached": 0,
        "prompt_tokens": 412,
        "completion_tokens": 38,
    },
    "llm_cache": {
        "key": "classify:9f86d081884c7d65",
        "kind": "classify",
        "result": '{"intent": "complaint", "note": "naïve “quotes”", "p": 0.93}',
        "created_at": "2026-11-02T09:00:02+00:00",
    },
    "sla_events": {"case_id": 2, "kind": "warned", "at": "2026-11-02T09:45:00+00:00"},
    "private_replies": {
        "network": "facebook",
        "comment_id": "1020304050_998877",
        "case_id": 1,
        "post_id": "m_private-1",
        "sent_at": "2026-11-02T09:30:00+00:00",
    },
    "dry_run_moderations": {
        "network": "instagram",
        "comment_id": "17890000000000001",
        "hidden": 1,
        "at": "2026-11-02T09:31:00+00:00",
    },
    "case_tags": {
        "case_id": 1,
        "tag": "lost-bag",
        "added_by": "slack:U0AGENT1",
        "added_at": "2026-11-02T09:03:00+00:00",
    },
    "job_runs": {"job": "digest", "period": "2026-11-02", "at": "2026-11-02T18:00:00+00:00"},
    "claim_events": {
        "case_id": 2,
        "claimed_at": "2026-11-02T09:05:00+00:00",
        "kind": "reminder",
        "at": "2026-11-02T09:35:00+00:00",
    },
    "chat_references": {
        "surface": "teams",
        "key": "channel:care",
        "data": '{"service_url": "https://smba.example/emea/", "tenant": "t-1"}',
        "updated_at": "2026-11-02T09:00:00+00:00",
    },
}


@dataclass
class Source:
    config_path: Path
    database: Path
    config: Config
    head: audit.Head
    states: dict[int, str]


def _history(tmp_path: Path) -> Source:
    """A SQLite database as a day of work leaves it: cases in every stage, a published
    reply, a rejected draft, a dismissed group, refusals, a pause, one row per table."""
    config = parse_config(config_data(), base_dir=tmp_path)
    store = Store(config.database_path)
    clock = FixedClock(START)
    service = CareService(config, store, clock=clock)
    published = new_case(service)
    praise = new_case(
        service, "Thanks for the lovely flight, great crew!", author_id="7", author_handle="bo"
    )
    snacks = "@AcmeAir Bring back the free snacks! #SnackGate https://t.co/abc"
    campaign = new_case(service, snacks, author_id="8", author_handle="cy")
    new_case(service, snacks, author_id="9", author_handle="di")  # grouped under campaign
    rejected = new_case(
        service, "@AcmeAir lost bag at LHR, nobody answers 😡", author_id="10", author_handle="ed"
    )
    clock.advance(300)
    service.claim(AGENT, published)
    service.reply(AGENT, published, REPLY)
    with pytest.raises(Refusal):
        service.approve(AGENT, published)  # an agent cannot approve: refused, audited
    with pytest.raises(Refusal):
        service.claim(AGENT, 999)
    clock.advance(180)
    service.approve(LEAD, published)
    assert PublishWorker(service, DryRunPublisher(store, clock)).drain() == 1
    service.reply(AGENT2, rejected, "We are looking into it")
    service.reject(LEAD, rejected, "say what happens next")
    service.dismiss(AGENT, campaign, "copy-paste campaign")
    service.set_paused(ADMIN, True)
    service.set_paused(ADMIN, False)
    # As an older version could leave a group: its first case pointing at a later one.
    older = new_case(service, "@AcmeAir where is my refund??", author_id="11", author_handle="fa")
    later = new_case(service, "@AcmeAir where is my refund??", author_id="12", author_handle="gu")
    with store.write() as db:
        db.execute("UPDATE cases SET group_id = NULL WHERE id = ?", (later,))
        db.execute("UPDATE cases SET group_id = ? WHERE id = ?", (later, older))
        for table, row in FILLERS.items():
            names = ", ".join(row)
            marks = ", ".join(f":{k}" for k in row)
            db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", row)
    empty = [t for t in copy_order(store.db.conn) if not store.scalar(f"SELECT count(*) FROM {t}")]
    assert not empty, f"add a row for {empty} to FILLERS so the copy test covers them"
    states = {r["id"]: r["state"] for r in store.query("SELECT id, state FROM cases")}
    assert {states[published], states[praise], states[campaign], states[rejected]} == {
        "published",
        "new",
        "dismissed",
        "claimed",
    }
    result = audit.verify(store.db)
    assert result.ok and result.head is not None
    store.close()
    config_path = tmp_path / "socialcare.toml"
    config_path.write_text(CONFIG.format(database=config.database_path.name))
    return Source(config_path, config.database_path, config, result.head, states)


@pytest.fixture
def source(tmp_path: Path) -> Source:
    return _history(tmp_path)


def _with_password(url: str) -> str:
    # The test server trusts local connections, so any password is accepted.
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def _copy(source: Source, url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["store", "copy", "--to", url, "-c", str(source.config_path)])
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    return code, out, err


def _tables(conn: sqlite3.Connection) -> list[str]:
    return copy_order(conn)


def _rows_sqlite(conn: sqlite3.Connection, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in columns)
    return sorted(conn.execute(f'SELECT {cols} FROM "{table}"').fetchall(), key=repr)


def _rows_pg(conn: psycopg.Connection[Any], table: str, columns: list[str]) -> list[Any]:
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(table)
    )
    return sorted((tuple(r) for r in conn.execute(query)), key=repr)


def _pg_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                " AND table_name != '_socialcare_migrations'"
            )
        ]
        return {
            name: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
            ).fetchone()[0]  # type: ignore[index]
            for name in names
        }


def test_every_table_is_copied_exactly_with_a_summary_and_the_password_masked(
    source: Source, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _copy(source, _with_password(postgres_url), capsys)
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert "postgres:***@" in lines[0] and str(source.database) in lines[0]
    src = sqlite3.connect(source.database)
    tables = _tables(src)
    counts = {t: src.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    summary = {line.split()[0]: int(line.split()[1].replace(",", "")) for line in lines[1:-1]}
    assert summary == counts
    total = sum(counts.values())
    assert lines[-1] == f"copied {total} rows; audit chain intact, head {source.head}"
    # Every table the migrations make on PostgreSQL is one the copy filled, row for row.
    assert _pg_counts(postgres_url) == counts
    with psycopg.connect(postgres_url) as pg:
        for table in tables:
            columns = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")')]
            assert _rows_pg(pg, table, columns) == _rows_sqlite(src, table, columns), table
        # Each identity continues after the highest copied id.
        generated = pg.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND is_identity = 'YES'"
        ).fetchall()
        assert {t for t, _ in generated} >= {"cases", "drafts", "outbox"}
        for table, column in generated:
            seq = pg.execute("SELECT pg_get_serial_sequence(%s, %s)", (table, column)).fetchone()
            last, called = pg.execute(f"SELECT last_value, is_called FROM {seq[0]}").fetchone()  # type: ignore[index]
            highest = src.execute(f'SELECT coalesce(max("{column}"), 0) FROM "{table}"')
            assert (last + 1 if called else last) == highest.fetchone()[0] + 1, table
    src.close()


def test_the_bot_carries_on_from_the_copy(
    source: Source, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _copy(source, postgres_url, capsys)
    assert code == 0, err
    data = config_data()
    data["bot"]["database"] = postgres_url
    config = parse_config(data, base_dir=source.database.parent)
    store = open_store(postgres_url)
    try:
        assert not store.single_process
        service = CareService(config, store, clock=FixedClock(START + timedelta(hours=2)))
        assert {r["id"]: r["state"] for r in store.query("SELECT id, state FROM cases")} == (
            source.states
        )
        for case_id, state in source.states.items():
            assert service.get_case(case_id).state.value == state
        verified = audit.verify(store.db)
        assert verified.ok and verified.head == source.head
        # Numbering continues: the next case, its draft and its audit entries.
        case_id = new_case(service, "@AcmeAir my flight is delayed again")
        assert case_id == max(source.states) + 1
        drafts = store.scalar("SELECT max(id) FROM drafts")
        service.reply(AGENT, case_id, REPLY)
        assert store.scalar("SELECT max(id) FROM drafts") == drafts + 1
        service.approve(LEAD, case_id)
        extended = audit.verify(store.db, expect=source.head)
        assert extended.ok and extended.head is not None
        assert extended.head.entries > source.head.entries
    finally:
        store.close()


def test_a_second_copy_into_the_now_filled_target_is_refused_and_changes_nothing(
    source: Source, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _with_password(postgres_url)
    assert _copy(source, url, capsys)[0] == 0
    before = _pg_counts(postgres_url)
    code, out, err = _copy(source, url, capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert "already holds socialcare data" in err and "postgres:***@" in err
    assert _pg_counts(postgres_url) == before
    store = open_store(postgres_url)
    try:
        assert audit.verify(store.db).head == source.head
    finally:
        store.close()


@pytest.mark.parametrize(
    "url", [f"mysql://app:{PASSWORD}@db.example/care", "sqlite:///care.db", "care.db", ""]
)
def test_a_target_that_is_not_a_postgresql_url_is_refused(
    url: str, source: Source, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _copy(source, url, capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "not a PostgreSQL URL" in err


def test_a_running_bot_holding_the_file_is_refused(
    source: Source, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    guard = single_process_guard(source.database)  # what `socialcare run` holds
    try:
        code, out, err = _copy(source, _with_password(postgres_url), capsys)
    finally:
        guard.close()
    assert code == 2 and out == ""
    assert err.strip() == (
        f"error: {source.database.name} is in use: stop socialcare run (pid {os.getpid()}) first"
    )
    with psycopg.connect(postgres_url) as pg:
        assert pg.execute("SELECT to_regclass('cases')").fetchone() == (None,)
    # Released, the copy goes through.
    assert _copy(source, postgres_url, capsys)[0] == 0


def test_a_source_that_is_not_a_socialcare_sqlite_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/nowhere"
    config_path = tmp_path / "socialcare.toml"

    def refused(database: str) -> str:
        config_path.write_text(CONFIG.format(database=database))
        code = main(["store", "copy", "--to", url, "-c", str(config_path)])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and len(err.splitlines()) == 1, err
        assert PASSWORD not in err
        return err

    assert "no such SQLite database" in refused("missing.db")
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "notes.db").write_text("not a database\n")
    assert "not a SQLite database" in refused("notes.db")
    (tmp_path / "dir.db").mkdir()
    assert "is a directory" in refused("dir.db")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    assert "not socialcare's" in refused("other.db")
    other = sqlite3.connect(tmp_path / "other.db")
    assert [r[0] for r in other.execute("SELECT name FROM sqlite_master")] == ["t"]  # untouched
    other.close()
    assert "already a PostgreSQL URL" in refused("postgresql://postgres@127.0.0.1:1/db")


def test_a_failure_midway_rolls_back_and_leaves_the_target_without_data(
    source: Source, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # PostgreSQL text cannot hold NUL, SQLite's can: the copy fails at that late table.
    db = sqlite3.connect(source.database)
    db.execute(
        "INSERT INTO cursors VALUES ('bluesky', ?, '2026-11-02T09:00:00+00:00')", ("a\x00b",)
    )
    db.commit()
    db.close()
    assert copy_order(sqlite3.connect(source.database)).index("cursors") > 5
    code, out, err = _copy(source, _with_password(postgres_url), capsys)
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and "nothing committed" in err
    counts = _pg_counts(postgres_url)
    assert counts and not any(counts.values())  # the schema is there, no data
    # The source is as it was, and a fixed one copies.
    db = sqlite3.connect(source.database)
    db.execute("DELETE FROM cursors WHERE source = 'bluesky'")
    db.commit()
    db.close()
    assert _copy(source, postgres_url, capsys)[0] == 0


def test_a_tampered_source_audit_log_is_not_copied(
    source: Source, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = sqlite3.connect(source.database)
    db.execute("DROP TRIGGER audit_append_only_update")
    db.execute("UPDATE audit SET actor = 'someone else' WHERE seq = 3")
    db.commit()
    db.close()
    code, out, err = _copy(source, _with_password(postgres_url), capsys)
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and "TAMPERED at entry 3" in err
    assert not any(_pg_counts(postgres_url).values())


def test_an_unreachable_target_is_one_line_without_the_password(
    source: Source, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _copy(source, f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/db", capsys)
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and "cannot connect to postgresql://postgres:***@" in err


def test_tables_are_copied_parents_first(source: Source) -> None:
    conn = sqlite3.connect(source.database)
    order = copy_order(conn)
    assert order[:8] == [
        "authors",
        "cases",
        "mentions",
        "drafts",
        "approvals",
        "suggestions",
        "outbox",
        "chat_messages",
    ]
    every = {
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not r[0].startswith("sqlite_") and r[0] != "_sqlite_migrations"
    }
    assert set(order) == every and len(order) == len(every)
    for child in order:
        for fk in conn.execute(f'PRAGMA foreign_key_list("{child}")'):
            assert order.index(fk[2]) <= order.index(child), (child, fk[2])
    conn.close()


def test_store_without_an_action_prints_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store"]) == 2
    assert "socialcare store copy --to URL" in capsys.readouterr().err


def test_the_password_is_masked_wherever_it_is_written() -> None:
    assert mask_url("postgresql://app:p%40ss@db:5432/care") == "postgresql://app:***@db:5432/care"
    assert mask_url("postgresql://db/care?user=app&password=pw&sslmode=require") == (
        "postgresql://db/care?user=app&password=***&sslmode=require"
    )
    assert mask_url("postgresql://app@db/care") == "postgresql://app@db/care"
