"""Which store a deployment uses: SQLite for a path (the embedded default, one process),
PostgreSQL for a `postgresql://` URL (several processes)."""

from __future__ import annotations

from pathlib import Path

from bot.store import Store
from bot.store_pg import PostgresStore, is_postgres_url


def open_store(target: str | Path) -> Store:
    """The store for a SQLite path, or for a PostgreSQL URL."""
    if isinstance(target, str) and is_postgres_url(target):
        return PostgresStore(target)
    return Store(target)
