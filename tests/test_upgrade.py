"""The upgrade path: a database made by the previous release (migrations 0001-0010) gets
0012-0014 when the new version starts, on SQLite and on PostgreSQL, and its cases, claims,
drafts, queued publish and audit chain carry on; `store copy` of an upgraded file works."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot import audit
from bot.config import Config, parse_config
from bot.delivery import DryRunPublisher, PublishWorker
from bot.models import CaseState, text_hash
from bot.ports import FixedClock
from bot.service import CareService
from bot.stale import StaleClaims
from bot.storage import open_store
from bot.store import Store, migrations
from bot.store_copy import copy_sqlite_to_postgres
from tests.conftest import AGENT, AGENT2, LEAD, START, config_data
from tests.pg import postgres_server_fixture, postgres_url_fixture  # noqa: F401

PREVIOUS_RELEASE = "0010_leases"
DRAFT = "Sorry about the delay! Please DM us your booking reference."
APPROVED = "We're sorry, Jo. A refund is on its way."


def _at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def _old_history(store: Store) -> None:
    """What the previous release left: a new case, a claim, a draft awaiting approval and
    an approved reply still in the outbox, each audited (columns of 0001-0010 only)."""
    with store.write() as db:
        db.execute(
            "INSERT INTO authors (network, id, handle, name, followers, verified,"
            " first_seen, last_seen) VALUES ('x', '42', 'maya', 'Maya', 120, 0, ?, ?)",
            (_at(0), _at(0)),
        )
        states = [
            (1, "new", None),
            (2, "claimed", AGENT.user_id),
            (3, "awaiting_approval", AGENT.user_id),
            (4, "approved", AGENT.user_id),
        ]
        for case_id, state, claimed_by in states:
            db.execute(
                "INSERT INTO cases (id, network, mention_id, author_id, department, state,"
                " intent, sentiment, priority, needs_reply, language, classifier,"
                " route_reason, mention_at, created_at, updated_at, sla_due_at, claimed_by,"
                " mention_count) VALUES (?, 'x', ?, '42', 'care', ?, 'complaint',"
                " 'negative', 'normal', 1, 'en', 'offline', 'intent complaint', ?, ?, ?, ?,"
                " ?, 1)",
                (
                    case_id,
                    f"90{case_id}",
                    state,
                    _at(0),
                    _at(0),
                    _at(5),
                    _at(60),
                    claimed_by,
                ),
            )
            db.execute(
                "INSERT INTO mentions (network, id, author_id, text, created_at, url,"
                " ingested_at, case_id) VALUES ('x', ?, '42', ?, ?, ?, ?, ?)",
                (
                    f"90{case_id}",
                    f"@AcmeAir flight {case_id} was delayed, I want a refund",
                    _at(0),
                    f"https://x.com/maya/status/90{case_id}",
                    _at(0),
                    case_id,
                ),
            )
            audit.append(db, at=START, actor="system:socialcare", action="ingest", case_id=case_id)
        for case_id, text in ((3, DRAFT), (4, APPROVED)):
            db.execute(
                "INSERT INTO drafts (id, case_id, text, text_hash, author, source, created_at)"
                " VALUES (?, ?, ?, ?, ?, 'human', ?)",
                (case_id, case_id, text, text_hash(text), f"slack:{AGENT.user_id}", _at(3)),
            )
            audit.append(
                db,
                at=START,
                actor=f"slack:{AGENT.user_id}",
                action="draft",
                case_id=case_id,
                text_hash=text_hash(text),
            )
        db.execute(
            "INSERT INTO approvals (id, case_id, draft_id, text_hash, approver, created_at)"
            " VALUES (4, 4, 4, ?, ?, ?)",
            (text_hash(APPROVED), f"slack:{LEAD.user_id}", _at(4)),
        )
        db.execute(
            "INSERT INTO outbox (kind, case_id, dedupe_key, payload, next_attempt_at,"
            " created_at, updated_at) VALUES ('publish', 4, 'publish:4:4', ?, ?, ?, ?)",
            (json.dumps({"approval_id": 4, "in_reply_to_id": "904"}), _at(4), _at(4), _at(4)),
        )
        audit.append(db, at=START, actor=f"slack:{LEAD.user_id}", action="approve", case_id=4)


def _previous_release(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database at the previous release's schema, with its history."""
    with monkeypatch.context() as patch:
        cut = [m.name for m in migrations._migrations].index(PREVIOUS_RELEASE) + 1
        patch.setattr(migrations, "_migrations", migrations._migrations[:cut])
        store = open_store(database)
        try:
            _old_history(store)
        finally:
            store.close()


def _tables(store: Store) -> set[str]:
    if isinstance(store, Store) and store.single_process:
        rows = store.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = store.query(
            "SELECT table_name AS name FROM information_schema.tables"
            " WHERE table_schema = current_schema()"
        )
    return {r["name"] for r in rows}


def _check_upgraded(config: Config, database: str) -> None:
    store = open_store(database)
    try:
        assert {"private_replies", "case_tags", "claim_events"} <= _tables(store)
        clock = FixedClock(START + timedelta(minutes=10))
        service = CareService(config, store, clock=clock)
        assert audit.verify(store.db).ok

        # Every case is where the previous release left it.
        assert [service.get_case(n).state for n in (1, 2, 3, 4)] == [
            CaseState.NEW,
            CaseState.CLAIMED,
            CaseState.AWAITING_APPROVAL,
            CaseState.APPROVED,
        ]
        claimed = service.get_case(2)
        assert claimed.claimed_by == AGENT.user_id
        waiting = service.get_case(3)
        assert waiting.draft_text == DRAFT and not waiting.draft_private

        # The approved reply queued before the upgrade goes out, publicly, once.
        worker = PublishWorker(service, DryRunPublisher(store, clock))
        assert worker.drain() == 1
        published = service.get_case(4)
        assert published.state is CaseState.PUBLISHED
        posts = store.query("SELECT in_reply_to_id, text, private FROM dry_run_posts")
        assert posts == [{"in_reply_to_id": "904", "text": APPROVED, "private": 0}]

        # The draft written before the upgrade is approved and published.
        service.approve(LEAD, 3)
        assert worker.drain() == 1
        assert service.get_case(3).state is CaseState.PUBLISHED

        # An old claim counts from its last change: reminded, not released at once.
        stale = StaleClaims(service)
        assert stale.check(START + timedelta(minutes=40)) == {"reminder": 1, "release": 0}
        assert service.get_case(2).state is CaseState.CLAIMED

        # New work on old cases: a claim and a draft.
        service.claim(AGENT2, 1)
        service.reply(AGENT2, 1, DRAFT)
        assert service.get_case(1).state is CaseState.AWAITING_APPROVAL
        assert audit.verify(store.db).ok
    finally:
        store.close()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse_config(config_data(), base_dir=tmp_path)


def test_a_sqlite_file_of_the_previous_release_is_upgraded_and_carries_on(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = str(tmp_path / "old.db")
    _previous_release(database, monkeypatch)
    _check_upgraded(config, database)
    names = [r["name"] for r in Store(database).query("SELECT name FROM _sqlite_migrations")]
    assert names == [m.name for m in migrations._migrations]


def test_a_postgresql_database_of_the_previous_release_is_upgraded_and_carries_on(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = config_data()
    data["bot"]["database"] = postgres_url
    config = parse_config(data, base_dir=tmp_path)
    _previous_release(postgres_url, monkeypatch)
    _check_upgraded(config, postgres_url)


def test_an_upgraded_sqlite_file_copies_to_postgresql_with_its_audit_chain(
    tmp_path: Path, config: Config, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "old.db"
    _previous_release(str(database), monkeypatch)
    _check_upgraded(config, str(database))
    result = copy_sqlite_to_postgres(database, postgres_url)
    copied = open_store(postgres_url)
    try:
        assert audit.verify(copied.db).ok
        assert audit.head(copied.db) == result.head
        assert copied.scalar("SELECT count(*) FROM cases") == 4
        assert copied.scalar("SELECT count(*) FROM claim_events") == 1
    finally:
        copied.close()


def test_a_previous_release_file_copies_to_postgresql_directly(
    tmp_path: Path, config: Config, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "old.db"
    _previous_release(str(database), monkeypatch)
    copy_sqlite_to_postgres(database, postgres_url)  # upgrades the file, then copies it
    _check_upgraded(config, postgres_url)
