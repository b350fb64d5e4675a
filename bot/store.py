"""SQLite through sqlite-utils: schema migrations, WAL, and one write discipline.

Threads: every thread gets its own connection (sqlite3 connections must not cross
threads). All writes go through `Store.write()`, which opens `BEGIN IMMEDIATE` so a
read-then-write never fails to upgrade its lock; other writers wait up to
`busy_timeout`. WAL lets readers run while one writer writes. `synchronous=FULL`
because the outbox is the publish ledger: a committed "sending" must survive power loss.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

BUSY_TIMEOUT_MS = 10_000

migrations = Migrations("socialcare")


@migrations(name="0001_initial")
def _initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE authors (
            network TEXT NOT NULL,
            id TEXT NOT NULL,
            handle TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            followers INTEGER,
            verified INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (network, id)
        );
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            network TEXT NOT NULL,
            mention_id TEXT NOT NULL,
            author_id TEXT NOT NULL,
            conversation_id TEXT,
            department TEXT NOT NULL,
            state TEXT NOT NULL,
            intent TEXT NOT NULL,
            sentiment TEXT NOT NULL,
            priority TEXT NOT NULL,
            needs_reply INTEGER NOT NULL,
            language TEXT NOT NULL,
            classifier TEXT NOT NULL,
            route_reason TEXT NOT NULL,
            mention_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sla_due_at TEXT,
            claimed_by TEXT,
            note TEXT,
            published_id TEXT,
            published_url TEXT,
            first_response_at TEXT,
            closed_at TEXT,
            mention_count INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX cases_author ON cases (network, author_id);
        CREATE INDEX cases_department_state ON cases (department, state);
        CREATE INDEX cases_created ON cases (created_at);
        CREATE TABLE mentions (
            network TEXT NOT NULL,
            id TEXT NOT NULL,
            author_id TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            in_reply_to_id TEXT,
            conversation_id TEXT,
            url TEXT,
            lang TEXT,
            ingested_at TEXT NOT NULL,
            case_id INTEGER NOT NULL REFERENCES cases (id),
            PRIMARY KEY (network, id)
        );
        CREATE INDEX mentions_case ON mentions (case_id);
        CREATE TABLE drafts (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases (id),
            text TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            author TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX drafts_case ON drafts (case_id);
        CREATE TABLE approvals (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases (id),
            draft_id INTEGER NOT NULL REFERENCES drafts (id),
            text_hash TEXT NOT NULL,
            approver TEXT NOT NULL,
            created_at TEXT NOT NULL,
            voided_at TEXT,
            void_reason TEXT
        );
        CREATE INDEX approvals_case ON approvals (case_id);
        CREATE TABLE suggestions (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases (id),
            position INTEGER NOT NULL,
            text TEXT NOT NULL,
            source TEXT NOT NULL,
            prompt_version TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (case_id, position)
        );
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            case_id INTEGER,
            channel TEXT,
            dedupe_key TEXT UNIQUE,
            payload TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            result TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX outbox_due ON outbox (state, kind, next_attempt_at);
        CREATE TABLE chat_messages (
            case_id INTEGER NOT NULL REFERENCES cases (id),
            surface TEXT NOT NULL,
            channel TEXT NOT NULL,
            message_id TEXT NOT NULL,
            posted_at TEXT NOT NULL,
            PRIMARY KEY (case_id, surface)
        );
        CREATE TABLE dry_run_posts (
            id INTEGER PRIMARY KEY,
            attempt_key TEXT NOT NULL UNIQUE,
            network TEXT NOT NULL,
            in_reply_to_id TEXT NOT NULL,
            text TEXT NOT NULL,
            posted_at TEXT NOT NULL
        );
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            case_id INTEGER,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL,
            text_hash TEXT,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_case ON audit (case_id);
        CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TABLE cursors (
            source TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """
    )


@migrations(name="0002_outbox_case_index")
def _outbox_case_index(db: Database) -> None:
    # Ingest checks for a pending card per case; without this it scans the outbox.
    db.execute("CREATE INDEX outbox_case ON outbox (case_id, kind, state)")


@migrations(name="0003_inbound_seen")
def _inbound_seen(db: Database) -> None:
    # Delivery ids of inbound events and interactions already handled (Slack retries).
    db.execute("CREATE TABLE inbound_seen (key TEXT PRIMARY KEY, seen_at TEXT NOT NULL)")


@migrations(name="0004_llm")
def _llm(db: Database) -> None:
    db.executescript(
        """
        ALTER TABLE cases ADD COLUMN summary TEXT;
        CREATE TABLE llm_calls (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            case_id INTEGER,
            kind TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt_version TEXT NOT NULL,
            cached INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX llm_calls_at ON llm_calls (at);
        CREATE TABLE llm_cache (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            result TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        """
    )


@migrations(name="0005_followup")
def _followup(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE sla_events (
            case_id INTEGER NOT NULL REFERENCES cases (id),
            kind TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (case_id, kind)
        );
        CREATE TABLE job_runs (
            job TEXT NOT NULL,
            period TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (job, period)
        );
        CREATE INDEX cases_mention_at ON cases (mention_at);
        CREATE INDEX cases_open_sla ON cases (state, sla_due_at);
        """
    )


@migrations(name="0006_grouping")
def _grouping(db: Database) -> None:
    db.executescript(
        """
        ALTER TABLE cases ADD COLUMN fingerprint TEXT;
        ALTER TABLE cases ADD COLUMN group_id INTEGER REFERENCES cases (id);
        CREATE INDEX cases_fingerprint ON cases (department, fingerprint, created_at);
        CREATE INDEX cases_group ON cases (group_id);
        """
    )


@migrations(name="0007_inbound_seen_index")
def _inbound_seen_index(db: Database) -> None:
    # Every Slack delivery prunes old keys: keep that from scanning the table.
    db.execute("CREATE INDEX inbound_seen_at ON inbound_seen (seen_at)")


@migrations(name="0008_publish_uncertain")
def _publish_uncertain(db: Database) -> None:
    # Set while a reply may be on the network without the bot knowing (an attempt whose
    # answer was lost): the case can then not change until a check settles it.
    db.execute("ALTER TABLE cases ADD COLUMN publish_uncertain_since TEXT")
    # Attempts an older version left in flight are uncertain from now on.
    db.execute(
        "UPDATE cases SET publish_uncertain_since = updated_at WHERE id IN ("
        " SELECT case_id FROM outbox WHERE kind = 'publish'"
        " AND (state = 'sending' OR (state = 'pending' AND attempts > 0)))"
    )


@migrations(name="0009_surfaces")
def _surfaces(db: Database) -> None:
    db.executescript(
        """
        -- With Slack and Teams both on, each chat item is queued once per surface.
        ALTER TABLE outbox ADD COLUMN surface TEXT;
        -- Where a surface's conversations live (Teams: service URL, tenant, channel and
        -- personal conversation ids captured from its activities), for proactive posts.
        CREATE TABLE chat_references (
            surface TEXT NOT NULL,
            key TEXT NOT NULL,
            data TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (surface, key)
        );
        """
    )


@migrations(name="0010_leases")
def _leases(db: Database) -> None:
    db.executescript(
        """
        -- Which process holds an item it is sending, and until when: with several
        -- processes only an expired lease is taken over (the holder died).
        ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
        ALTER TABLE outbox ADD COLUMN lease_until TEXT;
        CREATE INDEX outbox_lease ON outbox (state, lease_until);
        """
    )


@migrations(name="0012_private_and_hidden")
def _private_and_hidden(db: Database) -> None:
    db.executescript(
        """
        -- A draft may be a private reply (Messenger / Instagram Direct) to the comment.
        ALTER TABLE drafts ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE dry_run_posts ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
        -- Meta allows one private reply per comment: the ones sent, by comment.
        CREATE TABLE private_replies (
            network TEXT NOT NULL,
            comment_id TEXT NOT NULL,
            case_id INTEGER NOT NULL REFERENCES cases (id),
            post_id TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (network, comment_id)
        );
        -- Hiding the case's comment: NULL, 'hiding', 'hidden' or 'unhiding'; by whom, why.
        ALTER TABLE cases ADD COLUMN hidden_state TEXT;
        ALTER TABLE cases ADD COLUMN hidden_by TEXT;
        ALTER TABLE cases ADD COLUMN hidden_reason TEXT;
        -- What the dry-run moderator would have hidden or shown again.
        CREATE TABLE dry_run_moderations (
            id INTEGER PRIMARY KEY,
            network TEXT NOT NULL,
            comment_id TEXT NOT NULL,
            hidden INTEGER NOT NULL,
            at TEXT NOT NULL
        );
        """
    )


@migrations(name="0013_tags")
def _tags(db: Database) -> None:
    db.executescript(
        """
        -- Tags on cases: from [[tag_rules]] and [vip] at ingest (added_by 'rule'), or by
        -- staff (their surface:user id). The audit log keeps who changed what.
        CREATE TABLE case_tags (
            case_id INTEGER NOT NULL REFERENCES cases (id),
            tag TEXT NOT NULL,
            added_by TEXT NOT NULL,
            added_at TEXT NOT NULL,
            PRIMARY KEY (case_id, tag)
        );
        CREATE INDEX case_tags_tag ON case_tags (tag, case_id);
        """
    )


@migrations(name="0014_stale_claims")
def _stale_claims(db: Database) -> None:
    db.executescript(
        """
        -- When the current claim began: a claim with no draft for a while reminds its
        -- holder, then goes back to the queue (bot/stale.py). A re-claim starts afresh.
        ALTER TABLE cases ADD COLUMN claimed_at TEXT;
        -- The group card a copy was shown on before someone took it up (claim), so a
        -- "dismiss all similar" can name the copies it leaves alone.
        ALTER TABLE cases ADD COLUMN left_group_id INTEGER;
        -- Each reminder and release once per claim (keyed by the claim's start).
        CREATE TABLE claim_events (
            case_id INTEGER NOT NULL REFERENCES cases (id),
            claimed_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (case_id, claimed_at, kind)
        );
        CREATE INDEX cases_left_group ON cases (left_group_id);
        -- Claims made before this version count from their last change.
        UPDATE cases SET claimed_at = updated_at WHERE state = 'claimed';
        """
    )


def _connect(path: str) -> Database:
    # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves; sqlite-utils
    # joins an open transaction instead of committing on its own.
    # check_same_thread=False only so close() can run from the thread that shuts down;
    # each connection is still used by the one thread that opened it (Store.db).
    conn = sqlite3.connect(
        path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return Database(conn)


class Store:
    """The one database of a bot. Safe to share between threads (see module docstring).

    SQLite: one process per file (`socialcare run` holds a lock); bot.store_pg is the
    engine for several.
    """

    single_process = True

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._all: list[Database] = []
        self._lock = threading.Lock()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        migrations.apply(self.db)

    @property
    def db(self) -> Database:
        """This thread's connection."""
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = _connect(self.path)
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextmanager
    def write(self) -> Iterator[Database]:
        """A write transaction that holds the write lock from its first statement."""
        db = self.db
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        else:
            db.conn.execute("COMMIT")

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.db.execute(sql, params).fetchone()
        return row[0] if row else None

    def is_writable(self) -> bool:
        """Health probe: can this process take the write lock right now?"""
        try:
            with self.write() as db:
                db.execute("SELECT 1")
        except sqlite3.Error:
            return False
        return True

    def integrity_ok(self) -> bool:
        return bool(self.scalar("PRAGMA integrity_check") == "ok")

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()
