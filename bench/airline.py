"""The airline tweets (../shared/data/airline-tweets.csv) as mention records, for benches.

The data is Kaggle's "Twitter US Airline Sentiment" (its Tweets.csv, CC BY-NC-SA 4.0). It
stays where it is: used for benchmarks, never copied into the repository. Where it is:
`--data PATH`, else `$SOCIALCARE_AIRLINE_CSV`, else ../shared/data/airline-tweets.csv next
to the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

DATA_ENV = "SOCIALCARE_AIRLINE_CSV"
SOURCE = "https://www.kaggle.com/datasets/crowdflower/twitter-airline-sentiment"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "airline-tweets.csv"


def default_data() -> Path:
    """`$SOCIALCARE_AIRLINE_CSV` if set, else the shared copy beside the repository."""
    configured = os.environ.get(DATA_ENV, "").strip()
    return Path(configured).expanduser() if configured else SHARED_DATA


DEFAULT_DATA = default_data()


def data_argument(parser: argparse.ArgumentParser, what: str = "airline tweets CSV") -> None:
    """The `--data PATH` option every airline bench takes."""
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"{what} (default: ${DATA_ENV}, else {SHARED_DATA})",
    )


def missing_data_message(path: Path) -> str:
    """What to do when the CSV is not there: where to get it and how to point at it."""
    return (
        f"skipped: airline data not found at {path}\n"
        '  It is Kaggle\'s "Twitter US Airline Sentiment" (Tweets.csv, CC BY-NC-SA 4.0):\n'
        f"  {SOURCE}\n"
        "  Download it outside the repository (never commit it), then pass --data PATH,\n"
        f"  or set {DATA_ENV}=PATH (e.g. `{DATA_ENV}=PATH make bench`)."
    )


def skip(message: str, *, as_json: bool = False) -> None:
    """Say why a bench is skipped: one message, plain or as one JSON object."""
    print(json.dumps({"skipped": True, "reason": message}) if as_json else message, flush=True)


def handle_of(name: str) -> str:
    """The author's `name` column as a handle socialcare accepts.

    The original file replaced "late" with "Late Flight" everywhere, screen names too
    (`simuLate Flightthis`); undone here, since a handle has no spaces.
    """
    return re.sub(r"\s+", "_", name.replace("Late Flight", "late").strip()) or "someone"


def load_rows(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """CSV rows as mention records (what a source would hand the pipeline); limit 0/None: all."""
    rows: list[dict[str, Any]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            if limit and len(rows) >= limit:
                break
            name = handle_of(record["name"])
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


def rows_or_skip(
    path: Path, limit: int | None = None, *, as_json: bool = False
) -> list[dict[str, Any]] | None:
    """The rows, or None after saying why the bench is skipped (no data is not a failure)."""
    if not path.is_file():
        skip(missing_data_message(path), as_json=as_json)
        return None
    rows = load_rows(path, limit)
    if not rows:
        skip(f"skipped: no rows in {path}", as_json=as_json)
        return None
    return rows
