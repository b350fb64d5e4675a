"""`socialcare store copy`: a SQLite database into an empty PostgreSQL one, exactly.

A deployment that outgrows one process moves its history with it. The copy:
- refuses (CopyRefused, exit 2) a source that is not an existing socialcare SQLite file, a
  target that is not a `postgresql://` URL or already holds data, and a SQLite file a
  `socialcare run` holds (the same OS lock on `<file>.lock` that bot.runtime takes; the
  copy keeps holding it, so no run starts meanwhile);
- reads the source in one snapshot and writes the target in one transaction, holding the
  target's write lock (bot.store_pg), so a failure (CopyFailed, exit 1) leaves the target
  without data and no bot on the target writes meanwhile;
- copies every table of the schema, parents before children, values unchanged (ids,
  texts, ISO times, JSON text); the audit log's append-only trigger fires on UPDATE and
  DELETE only, so its INSERTs pass;
- moves each identity sequence past the copied ids, so numbering continues;
- checks before committing: equal row counts per table, and the audit chain verifies on
  the target with the source's head.

The target URL may carry a password: messages show it masked (`mask_url`).
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlite_utils import Database

from bot import audit
from bot.errors import SocialcareError
from bot.store import Store, migrations
from bot.store_pg import PgDb, PostgresStore, is_postgres_url

BATCH_SIZE = 1000
CONNECT_TIMEOUT_S = 10
SQLITE_HEADER = b"SQLite format 3\x00"
# Bookkeeping, not data: SQLite's own tables, and each engine's record of its migrations
# (PostgreSQL's `_socialcare_migrations` is filled when the target is opened).
_NOT_COPIED = "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name != '_sqlite_migrations'"


class CopyRefused(SocialcareError):
    """The copy cannot start as asked (exit 2); nothing was written."""


class CopyFailed(SocialcareError):
    """The copy failed and was rolled back (exit 1): the target holds no data."""


@dataclass(frozen=True)
class TableCopy:
    name: str
    rows: int


@dataclass(frozen=True)
class CopyResult:
    source: Path
    target: str  # masked
    tables: list[TableCopy]
    head: audit.Head

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def mask_url(url: str) -> str:
    """The URL with any password (`user:PASSWORD@`, `?password=`) shown as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _secrets_of(url: str) -> list[str]:
    """The password as written in the URL and as decoded, to scrub from messages."""
    found = []
    try:
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
    except ValueError:
        userinfo = ""
    if ":" in userinfo:
        found.append(userinfo.split(":", 1)[1])
    with suppress(psycopg.Error):
        found.append(str(conninfo_to_dict(url).get("password") or ""))
    found += re.findall(r"(?i)(?:^|[?&])password=([^&]*)", url)
    return sorted({s for s in found if s}, key=len, reverse=True)


def _one_line(exc: BaseException, url: str) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    for secret in _secrets_of(url):
        text = text.replace(secret, "***")
    return text


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_order(conn: sqlite3.Connection) -> list[str]:
    """The tables to copy, each after the tables its foreign keys point to (creation
    order otherwise). A table that points to itself (cases.group_id) is fine: such
    columns are filled in once the whole table is there."""
    names = [
        r[0]
        for r in conn.execute(
            f"SELECT name FROM sqlite_master WHERE type = 'table' AND {_NOT_COPIED} ORDER BY rowid"
        )
    ]
    parents = {name: {fk[2] for fk in _foreign_keys(conn, name)} - {name} for name in names}
    order: list[str] = []
    while len(order) < len(names):
        ready = next(
            (n for n in names if n not in order and parents[n] & set(names) <= set(order)), None
        )
        if ready is None:
            left = sorted(set(names) - set(order))
            raise CopyFailed(f"the foreign keys between {', '.join(left)} form a cycle")
        order.append(ready)
    return order


def _foreign_keys(conn: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    # (id, seq, table, from, to, on_update, on_delete, match)
    return list(conn.execute(f"PRAGMA foreign_key_list({_quote(table)})"))


@contextmanager
def _no_running_bot(database: Path) -> Iterator[None]:
    """Hold the lock `socialcare run` holds on a SQLite file (bot.runtime's
    single_process_guard: `<file>.lock`), or refuse naming the running bot's pid."""
    handle = open(f"{database}.lock", "a+")  # noqa: SIM115 (closed below)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            raise CopyRefused(
                f"{database.name} is in use: stop socialcare run (pid {pid}) first"
            ) from None
        # Like the bot: a run started meanwhile names who holds the file.
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def _check_source(path: Path) -> None:
    """An existing SQLite file with socialcare's schema, of this version or older."""
    where = f"{path} ([bot].database)"
    if path.is_dir():
        raise CopyRefused(f"{where}: is a directory, not a SQLite database")
    if not path.is_file():
        raise CopyRefused(f"{where}: no such SQLite database; nothing to copy")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise CopyRefused(f"{where}: cannot read: {exc.strerror}") from None
    if header != SQLITE_HEADER:
        raise CopyRefused(f"{where}: not a SQLite database")
    conn = sqlite3.connect(path)
    try:
        known = {m.name for m in migrations._migrations}
        applied: set[str] = set()
        if conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlite_migrations'"
        ).fetchone():
            applied = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM _sqlite_migrations WHERE migration_set = ?",
                    (migrations.name,),
                )
            }
    except sqlite3.Error as exc:
        raise CopyRefused(f"{where}: unreadable SQLite database: {exc}") from None
    finally:
        conn.close()
    if not applied:
        raise CopyRefused(f"{where}: a SQLite database, but not socialcare's")
    if applied - known:
        newer = ", ".join(sorted(applied - known))
        raise CopyRefused(
            f"{where}: made by a newer socialcare (migrations {newer}); copy with that version"
        )


def copy_sqlite_to_postgres(source: Path, url: str, *, batch_size: int = BATCH_SIZE) -> CopyResult:
    """Copy the socialcare SQLite database at `source` into the empty PostgreSQL
    database at `url`; see the module docstring."""
    masked = mask_url(url)
    if not is_postgres_url(url):
        raise CopyRefused(f"--to {masked}: not a PostgreSQL URL (postgresql://user@host/db)")
    _check_source(source)
    with _no_running_bot(source):
        sqlite_store: Store | None = None
        try:
            # Brings an older file to this version's schema, as every command does.
            sqlite_store = Store(source)
            return _copy(sqlite_store, url, masked, batch_size)
        except (CopyRefused, CopyFailed):
            raise
        except Exception as exc:  # one line, password scrubbed; --debug shows the cause
            raise CopyFailed(_one_line(exc, url)) from exc
        finally:
            if sqlite_store is not None:
                sqlite_store.close()


def _copy(sqlite_store: Store, url: str, masked: str, batch_size: int) -> CopyResult:
    src = sqlite_store.db.conn
    src.execute("BEGIN")  # one read snapshot: `socialcare ingest` may write meanwhile
    try:
        checked = audit.verify(sqlite_store.db)
        if not checked.ok or checked.head is None:
            raise CopyFailed(
                f"the SQLite audit log is TAMPERED at entry {checked.first_bad_seq}:"
                f" {checked.problem}; not copied (see socialcare audit verify)"
            )
        tables = copy_order(src)
        try:
            # Fails fast (the pool would retry for a minute) and without pool warnings.
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
        except psycopg.Error as exc:
            raise CopyFailed(f"cannot connect to {masked}: {_one_line(exc, url)}") from None
        target = PostgresStore(url)  # applies the migrations: an empty schema
        try:
            with target.write() as db:
                pg = cast(PgDb, db)
                _check_target(pg.raw, src, tables, masked)
                copied = []
                for table in tables:
                    try:
                        rows = _copy_table(src, pg.raw, table, batch_size)
                    except psycopg.Error as exc:
                        raise CopyFailed(f"table {table}: {_one_line(exc, url)}") from exc
                    copied.append(TableCopy(table, rows))
                for table in tables:
                    _continue_numbering(src, pg.raw, table)
                _verify(src, pg, copied, checked.head)
        finally:
            target.close()
    finally:
        src.execute("ROLLBACK")
    return CopyResult(Path(sqlite_store.path), masked, copied, checked.head)


def _pg_columns(pg: psycopg.Connection[Any], table: str) -> list[str]:
    return [
        r[0]
        for r in pg.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
    ]


def _sqlite_columns(src: sqlite3.Connection, table: str) -> list[tuple[str, int]]:
    """(name, position in the primary key or 0) per column."""
    return [(r[1], int(r[5])) for r in src.execute(f"PRAGMA table_info({_quote(table)})")]


def _check_target(
    pg: psycopg.Connection[Any], src: sqlite3.Connection, tables: list[str], masked: str
) -> None:
    """Same tables and columns as the source, and not a row in any of them."""
    for table in tables:
        theirs = set(_pg_columns(pg, table))
        if not theirs:
            raise CopyFailed(f"{masked} has no table {table}; is it another socialcare version?")
        ours = {name for name, _ in _sqlite_columns(src, table)}
        if ours != theirs:
            raise CopyFailed(
                f"table {table} differs: only in SQLite {sorted(ours - theirs)},"
                f" only in PostgreSQL {sorted(theirs - ours)}"
            )
    held: dict[str, int] = {}
    for table in tables:
        count = pg.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        row = count.fetchone()
        if row and row[0]:
            held[table] = int(row[0])
    if held:
        # The tables that tell most first (cases, outbox, audit), then any other.
        named = sorted(held, key=lambda t: (t not in ("cases", "outbox", "audit"), tables.index(t)))
        shown = ", ".join(f"{t}: {held[t]}" for t in named[:3]) + (", ..." if named[3:] else "")
        raise CopyRefused(
            f"{masked} already holds socialcare data ({sum(held.values())} rows; {shown});"
            " copy only into an empty database"
        )


def _copy_table(
    src: sqlite3.Connection, pg: psycopg.Connection[Any], table: str, batch_size: int
) -> int:
    """Insert every row in batches; columns pointing into the same table are set after
    the whole table is in, whatever the order of its rows."""
    columns = _sqlite_columns(src, table)
    names = [name for name, _ in columns]
    key = [name for name, pk in sorted(columns, key=lambda c: c[1]) if pk]
    self_refs = [fk[3] for fk in _foreign_keys(src, table) if fk[2] == table]
    if self_refs and not key:
        raise CopyFailed(f"table {table} points to itself but has no primary key")
    order = ", ".join(_quote(k) for k in key) if key else "rowid"
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(n) for n in names),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
    )
    later_at = [names.index(c) for c in self_refs]
    key_at = [names.index(k) for k in key]
    later: list[list[Any]] = []
    rows = 0
    reader = src.execute(
        f"SELECT {', '.join(_quote(n) for n in names)} FROM {_quote(table)} ORDER BY {order}"
    )
    with pg.cursor() as cursor:
        while batch := reader.fetchmany(batch_size):
            if later_at:
                values = [list(row) for row in batch]
                for row in values:
                    if any(row[i] is not None for i in later_at):
                        later.append([row[i] for i in later_at] + [row[i] for i in key_at])
                        for i in later_at:
                            row[i] = None
                cursor.executemany(insert, values)
            else:
                cursor.executemany(insert, batch)
            rows += len(batch)
        if later:
            update = sql.SQL("UPDATE {} SET {} WHERE {}").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in self_refs),
                sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in key),
            )
            cursor.executemany(update, later)
    return rows


def _continue_numbering(src: sqlite3.Connection, pg: psycopg.Connection[Any], table: str) -> None:
    """Each identity (or serial) column's next value: past the highest copied id, and past
    the highest SQLite ever handed out (AUTOINCREMENT never reuses a number)."""
    generated = pg.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s"
        " AND (is_identity = 'YES' OR column_default LIKE 'nextval(%%')",
        (table,),
    ).fetchall()
    for (column,) in generated:
        highest = src.execute(f"SELECT max({_quote(column)}) FROM {_quote(table)}").fetchone()
        used = int(highest[0]) if highest and highest[0] is not None else 0
        if src.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
        ).fetchone():
            handed = src.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
            row = handed.fetchone()
            if row and row[0] is not None:
                used = max(used, int(row[0]))
        pg.execute(
            "SELECT setval(pg_get_serial_sequence(%s, %s), %s, false)",
            (sql.Identifier(table).as_string(pg), column, used + 1),
        )


def _verify(src: sqlite3.Connection, pg: PgDb, copied: list[TableCopy], head: audit.Head) -> None:
    """Before committing: every count matches, and the chain verifies to the same head."""
    for table in copied:
        theirs = pg.raw.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name))
        ).fetchone()
        ours = src.execute(f"SELECT count(*) FROM {_quote(table.name)}").fetchone()
        if not (theirs and ours and theirs[0] == ours[0] == table.rows):
            raise CopyFailed(
                f"table {table.name}: {ours and ours[0]} rows in SQLite,"
                f" {theirs and theirs[0]} in PostgreSQL"
            )
    result = audit.verify(cast(Database, pg))
    if not result.ok:
        raise CopyFailed(
            f"the copied audit log does not verify at entry {result.first_bad_seq}:"
            f" {result.problem}"
        )
    if result.head != head:
        raise CopyFailed(f"the copied audit log ends at {result.head}, the SQLite one at {head}")
