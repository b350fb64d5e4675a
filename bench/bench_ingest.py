"""Ingest throughput: mentions/s through the pipeline beside a raw-insert baseline.

Data: the real airline tweets CSV (14,640 rows; 155 tweet ids appear twice). Each row
becomes one mention JSONL line in a temporary directory; nothing is copied into the repo.

Measured in one run, each into a fresh SQLite file:

  baseline  sqlite-utils `insert_all` of the same rows (WAL, synchronous=FULL like the Store,
            INSERT OR IGNORE so repeated ids are skipped)
  (b)       in process: `CareService(...).ingest_many(mentions)` on parsed Mention objects
            (classify, route, case + mention + author + audit + outbox rows per mention)
  (c)       the real CLI end to end: `python -m bot ingest FILE -c CONFIG` (includes
            interpreter start, imports, JSON parsing and validation)
  (d)       the same CLI command again on (c)'s database: every mention is a duplicate

Figures are meant to be read as ratios against the baseline measured in the same run,
not as absolute numbers. Exit 1 if a correctness check fails; exit 0 with
"skipped: data not found" when the CSV is absent.

    python bench/bench_ingest.py [--data PATH] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from airline import DATA_ENV, DEFAULT_DATA, SHARED_DATA, rows_or_skip

# All rows run in about a minute on 2 cores; see the README for measured figures.
DEFAULT_LIMIT: int | None = None
_CLI_SUMMARY = re.compile(
    r"(\d+) new cases, (\d+) joined to open conversations, (\d+) already stored, (\d+) bad lines"
)

CONFIG_TOML = """\
# Written by bench/bench_ingest.py: one default department, no chat surface, no network.
[bot]
brand = "Bench Air"
database = "cli.db"
timezone = "UTC"

[slack]
enabled = false

[[departments]]
id = "care"
name = "Customer Care"
intents = ["complaint", "question"]
first_response_minutes = 60
default = true

[publish]
network = "x"
dry_run = true
"""


@dataclass
class Result:
    name: str
    label: str
    rows: int
    seconds: float
    baseline_seconds: float
    peak_rss_mb: float | None = None

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")

    @property
    def time_ratio(self) -> float:
        """How many times the baseline's wall time this took (higher is slower)."""
        return self.seconds / self.baseline_seconds if self.baseline_seconds else float("inf")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["baseline_seconds"]
        data["mentions_per_second"] = round(self.per_second, 1)
        data["seconds"] = round(self.seconds, 4)
        if self.peak_rss_mb is not None:
            data["peak_rss_mb"] = round(self.peak_rss_mb, 1)
        data["time_ratio_vs_baseline"] = round(self.time_ratio, 2)
        data["throughput_ratio_vs_baseline"] = round(1 / self.time_ratio, 4)
        return data


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"airline tweets CSV (default: ${DATA_ENV}, else {SHARED_DATA})",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help="use the first N rows (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def children_peak_rss_mb() -> float:
    """Peak RSS of any waited-for child so far (KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_baseline(path: Path, rows: list[dict[str, Any]]) -> tuple[float, int]:
    from sqlite_utils import Database

    db = Database(path)
    db.enable_wal()
    db.execute("PRAGMA synchronous = FULL")
    table = db.table("mentions")
    seconds, _ = timed(lambda: table.insert_all(rows, pk=("network", "id"), ignore=True))
    stored = db.execute("SELECT count(*) FROM mentions").fetchone()[0]
    db.close()
    return seconds, stored


def run_pipeline(config_path: Path, db_path: Path, jsonl: Path) -> tuple[float, int, Any]:
    from bot.config import load_config
    from bot.jsonl import BadLine, read_mentions
    from bot.ports import SystemClock
    from bot.service import CareService
    from bot.store import Store

    mentions = []
    for number, item in read_mentions(jsonl):
        if isinstance(item, BadLine):
            raise SystemExit(f"{jsonl}:{number}: {item.problem}")
        mentions.append(item)
    service = CareService(load_config(config_path), Store(db_path), clock=SystemClock())
    service.read(mentions[0])  # load the classifier's models outside the timing
    seconds, stats = timed(lambda: service.ingest_many(mentions))
    cases = service.store.scalar("SELECT count(*) FROM cases")
    service.store.close()
    return seconds, cases, stats


def run_cli(config_path: Path, jsonl: Path, cwd: Path) -> tuple[float, dict[str, int]]:
    """Time the CLI; return its summary line as counts (new, joined, stored, bad)."""
    command = [sys.executable, "-m", "bot", "ingest", str(jsonl), "-c", str(config_path)]
    seconds, proc = timed(
        lambda: subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    )
    if proc.returncode != 0:
        raise SystemExit(f"CLI failed ({proc.returncode}): {proc.stderr.strip()}")
    match = _CLI_SUMMARY.search(proc.stdout)
    if not match:
        raise SystemExit(f"CLI printed no summary: {proc.stdout.strip()!r}")
    new, joined, stored, bad = (int(n) for n in match.groups())
    return seconds, {"new": new, "joined": joined, "stored": stored, "bad": bad}


def count_cases(db_path: Path) -> int:
    from sqlite_utils import Database

    db = Database(db_path)
    try:
        return int(db.execute("SELECT count(*) FROM cases").fetchone()[0])
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = rows_or_skip(args.data, args.limit, as_json=args.json)
    if rows is None:
        return 0
    distinct = len({row["id"] for row in rows})
    problems: list[str] = []

    with tempfile.TemporaryDirectory(prefix="socialcare-bench-") as tmp:
        work = Path(tmp)
        jsonl = work / "mentions.jsonl"
        with jsonl.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        config_path = work / "socialcare.toml"
        config_path.write_text(CONFIG_TOML, encoding="utf-8")

        base_s, base_stored = run_baseline(work / "baseline.db", rows)
        if base_stored != distinct:
            problems.append(f"baseline stored {base_stored} rows, expected {distinct}")

        pipe_s, pipe_cases, stats = run_pipeline(config_path, work / "inprocess.db", jsonl)
        if pipe_cases != distinct or stats.duplicates != len(rows) - distinct:
            problems.append(
                f"in-process: {pipe_cases} cases, {stats.duplicates} duplicates;"
                f" expected {distinct} cases, {len(rows) - distinct} duplicates"
            )

        cli_s, first = run_cli(config_path, jsonl, work)
        cli_rss = children_peak_rss_mb()
        cli_cases = count_cases(work / "cli.db")
        if cli_cases != distinct or first["new"] != distinct or first["bad"]:
            problems.append(
                f"CLI: {cli_cases} cases in the database, printed {first};"
                f" expected {distinct} cases and {distinct} new"
            )

        again_s, again = run_cli(config_path, jsonl, work)
        again_rss = children_peak_rss_mb()
        again_cases = count_cases(work / "cli.db")
        if (
            again_cases != distinct
            or again["new"]
            or again["joined"]
            or again["stored"] != len(rows)
        ):
            problems.append(
                f"re-ingest: {again_cases} cases in the database, printed {again};"
                f" expected {distinct} cases and {len(rows)} already stored"
            )

    results = [
        Result("baseline", "baseline: sqlite-utils insert_all", len(rows), base_s, base_s),
        Result("inprocess", "(b) in-process ingest_many", len(rows), pipe_s, base_s),
        Result("cli", "(c) CLI end to end", len(rows), cli_s, base_s, cli_rss),
        # RUSAGE_CHILDREN is a running maximum: only report (d) if it went above (c).
        Result(
            "cli_reingest",
            "(d) CLI re-ingest, all duplicates",
            len(rows),
            again_s,
            base_s,
            again_rss if again_rss > cli_rss else None,
        ),
    ]
    checks = {
        "rows": len(rows),
        "distinct_ids": distinct,
        "cases_inprocess": pipe_cases,
        "cases_cli": cli_cases,
        "cases_after_reingest": again_cases,
        "ok": not problems,
        "problems": problems,
    }

    if args.json:
        payload = {
            "benchmark": "ingest",
            "data": str(args.data),
            "limit": args.limit,
            "python": sys.version.split()[0],
            "results": [r.as_dict() for r in results],
            "checks": checks,
        }
        print(json.dumps(payload, indent=2))
    else:
        print_table(args, results, checks)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


def print_table(args: argparse.Namespace, results: list[Result], checks: dict[str, Any]) -> None:
    limit = "all rows" if args.limit is None else f"--limit {args.limit}"
    print(f"ingest throughput: {args.data.name}, {limit}, Python {sys.version.split()[0]}")
    header = f"{'measurement':<36} {'rows':>6} {'seconds':>8} {'mentions/s':>11} {'x baseline':>10}"
    print(header + f" {'peak RSS':>9}")
    print("-" * (len(header) + 10))
    for r in results:
        rss = f"{r.peak_rss_mb:.0f} MB" if r.peak_rss_mb is not None else "-"
        print(
            f"{r.label:<36} {r.rows:>6} {r.seconds:>8.3f} {r.per_second:>11,.0f}"
            f" {r.time_ratio:>9.1f}x {rss:>9}"
        )
    print(
        "x baseline = wall time / baseline wall time (higher is slower);"
        " peak RSS = ru_maxrss of the CLI subprocess"
    )
    status = "OK" if checks["ok"] else "FAILED"
    print(
        f"correctness: {checks['rows']} rows, {checks['distinct_ids']} distinct tweet ids;"
        f" cases in-process {checks['cases_inprocess']}, CLI {checks['cases_cli']},"
        f" after re-ingest {checks['cases_after_reingest']} -> {status}"
    )


if __name__ == "__main__":
    sys.exit(main())
