"""The airline tweets (../shared/data/airline-tweets.csv) as mention records, for benches.

The data stays where it is (CC BY-NC-SA: used for benchmarks, never copied in).
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "airline-tweets.csv"


def load_rows(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """CSV rows as mention records (what a source would hand the pipeline); limit 0/None: all."""
    rows: list[dict[str, Any]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            if limit and len(rows) >= limit:
                break
            name = record["name"]
            created = datetime.strptime(record["tweet_created"], "%Y-%m-%d %H:%M:%S %z")
            rows.append(
                {
                    "network": "x",
                    "id": record["tweet_id"],
                    "author_id": name,
                    "author_handle": name,
                    "author_name": name,
                    "text": record["text"],
                    "created_at": created.isoformat(),
                }
            )
    return rows


def rows_or_skip(path: Path, limit: int | None = None) -> list[dict[str, Any]] | None:
    """The rows, or None after saying why the bench is skipped (no data is not a failure)."""
    if not path.is_file():
        print("skipped: data not found")
        return None
    rows = load_rows(path, limit)
    if not rows:
        print("skipped: no rows")
        return None
    return rows
