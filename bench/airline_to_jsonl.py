"""Write the labelled airline tweets as `socialcare eval` JSONL.

    python bench/airline_to_jsonl.py --held-out [--data PATH] [-o FILE]

The rows and labels are bench_classifier.py's own (its `load_rows`: the same rows kept,
the same author handles, `airline_sentiment` as the `sentiment` label), so
`socialcare eval` on the output prints the figures bench_classifier.py reports for the
same half. `--held-out`: only odd tweet ids, the half the offline rules were never tuned
on; `--tuned`: only even ids; neither: every row. The data stays outside the repository
(see airline.py); write the output outside it too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from airline import data_argument, missing_data_message
from bench_classifier import Row, load_rows


def record(row: Row) -> dict[str, Any]:
    """One labelled mention, as bench_classifier.run_socialcare builds the mention."""
    return {
        "network": "x",
        "id": str(row.tweet_id),
        "author_id": row.author,
        "author_handle": row.author,
        "author_name": row.author,
        "text": row.text,
        "created_at": row.created_at.isoformat(),
        "sentiment": row.label,
    }


def write(rows: Iterable[Row], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(record(row), ensure_ascii=False) + "\n")
        count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    data_argument(parser, "labelled tweets CSV")
    half = parser.add_mutually_exclusive_group()
    half.add_argument("--held-out", action="store_true", help="odd tweet ids only")
    half.add_argument("--tuned", action="store_true", help="even tweet ids only")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(missing_data_message(args.data), file=sys.stderr)
        return 1
    rows = [
        row
        for row in load_rows(args.data)
        if not (args.held_out or args.tuned) or row.held_out == args.held_out
    ]
    if args.output is None:
        count = write(rows, sys.stdout)
    else:
        with args.output.open("w", encoding="utf-8") as out:
            count = write(rows, out)
    print(f"{count} labelled mentions written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
