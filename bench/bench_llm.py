"""LLM cost: calls and tokens per 1,000 mentions, the old two-call path against the one call.

Data: the real airline tweets CSV (first 1,000 rows by default). Each row becomes one
mention (network `x`, id = `tweet_id`, author = `name`), ingested with
`CareService(..., ai_enabled=True).ingest_many`; then the enricher's `run_once` is drained
until it returns False. A FixedClock keeps every `ai` item fresh (nothing is skipped as
stale) and the hourly budget is set far above the sample.

The LLM is tests/fakes/openai.py's FakeOpenAI on loopback, reached through the real
openai SDK (integrations.openai_llm.OpenAILLM). Its responder answers by the schema the
request names: a valid reading for `OldReading` (always `needs_reply: true`, so every
case also gets suggestions: an upper bound), three valid suggestions for
`LLMSuggestions`, and both in one object for `LLMAnswer`. Tokens are the fake's
deterministic counts (prompt: message characters // 4; completion: answer characters
// 4 + 1), as recorded by the product in `llm_calls` and checked against the wire; real
tokenizers differ, so read the figures as ratios. "Prefix-cacheable" counts the prompt
tokens of leading messages identical to an earlier request's (the fake's
`cached_tokens`): what a provider's prompt cache could serve at a discount.

Measured in one run, each into a fresh SQLite file, each with the product's result cache:

  two calls   the path before issue 14 (bench/legacy_llm.py): a reading call, then a
              suggestions call, for every mention
  one call, read_everything   the product with `[llm].read_everything = true`: one
              combined call for every mention (same work, fewer tokens)
  one call    the product as built: one combined call, and none for mentions the
              offline reading marks as spam or clearly needing no reply

Checks (exit 1 if one fails): the product's ledger matches the wire; every mention the
one-call runs sent to the LLM ends with exactly the fields the two-call run filled
(reading, summary, the same suggestions); the goals of issue 14 -- at most 1.0 calls per
mention and at least 30 % fewer tokens than the two-call path. Exit 0 with "skipped: data
not found" when the CSV is absent.

    python bench/bench_llm.py [--data PATH] [--limit N] [--campaign N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airline import data_argument, rows_or_skip

if TYPE_CHECKING:
    from bot.ai import AIEnricher
    from bot.models import Mention
    from tests.fakes.openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LIMIT = 1000
MODEL = "bench-model"
START = datetime(2015, 2, 25, 12, 0, tzinfo=UTC)
TOKEN_NOTE = "tokens as counted by the fake server: chars/4; real tokenizers differ"
GOAL_CALLS_PER_MENTION = 1.0
GOAL_TOKEN_RATIO = 0.70  # at least 30 % fewer tokens than the two-call path

READING = {
    "intent": "complaint",
    "sentiment": "negative",
    "priority": "normal",
    "needs_reply": True,
    "language": "en",
    "summary": "Customer reports a problem with a flight.",
}
ROUTING = {"routing_reason": "service issue for customer care"}  # asked by the old path only
SUGGESTIONS = {
    "suggestions": [
        "@customer Sorry to hear that. Please send us a DM and we'll look into it.",
        "@customer We're sorry about this. DM us your details and we'll check right away.",
        "@customer Thanks for letting us know. Send us a DM so we can help.",
    ]
}
ANSWERS = {
    "OldReading": {**READING, **ROUTING},
    "LLMSuggestions": SUGGESTIONS,
    "LLMAnswer": {**READING, **SUGGESTIONS},
}


@dataclass(frozen=True)
class Way:
    """One way of asking, measured on its own database."""

    name: str
    label: str
    legacy: bool = False
    read_everything: bool = False


PATHS = (
    Way("two_calls", "two calls (before)", legacy=True),
    Way("one_call_all", "one call, read_everything", read_everything=True),
    Way("one_call", "one call (as built)"),
)


@dataclass
class Run:
    name: str
    label: str
    mentions: int
    cases: int = 0
    calls_by_kind: dict[str, int] = field(default_factory=dict)
    cached_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cacheable_prompt_tokens: int = 0
    skipped: int = 0
    seconds: float = 0.0
    readings_stored: int = 0
    cases_with_suggestions: int = 0
    filled: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(self.calls_by_kind.values())

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def per_1000(self, value: int) -> float:
        return value * 1000 / self.mentions if self.mentions else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "mentions": self.mentions,
            "cases": self.cases,
            "calls": {**self.calls_by_kind, "total": self.calls},
            "skipped_by_offline_reading": self.skipped,
            "cached_hits": self.cached_hits,
            "prompt_tokens": self.prompt_tokens,
            "prefix_cacheable_prompt_tokens": self.cacheable_prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.tokens,
            "llm_readings_stored": self.readings_stored,
            "cases_with_suggestions": self.cases_with_suggestions,
            "per_1000_mentions": {
                "calls": round(self.per_1000(self.calls), 1),
                "prompt_tokens": round(self.per_1000(self.prompt_tokens)),
                "completion_tokens": round(self.per_1000(self.completion_tokens)),
                "total_tokens": round(self.per_1000(self.tokens)),
            },
            "seconds": round(self.seconds, 2),
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_argument(parser, "airline tweets CSV")
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"use the first N rows (default {DEFAULT_LIMIT}; 0 = all)",
    )
    parser.add_argument(
        "--campaign",
        type=int,
        default=0,
        metavar="N",
        help="add N copies of 5 sample tweets by new authors (a copy-paste campaign)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def with_campaign(rows: list[dict[str, Any]], copies: int) -> list[dict[str, Any]]:
    """The sample plus `copies` reposts of five of its tweets by new authors."""
    originals = rows[:5]
    extra = [
        {
            **originals[i % len(originals)],
            "id": f"campaign-{i}",
            "author_id": f"campaigner{i}",
            "author_handle": f"campaigner{i}",
            "author_name": f"Campaigner {i}",
        }
        for i in range(copies)
    ]
    return rows + extra


def describe_texts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How much of the sample repeats: where a prompt-keyed cache can help at all."""
    by_id: dict[str, str] = {}
    for row in rows:
        by_id.setdefault(row["id"], row["text"].strip())
    counts = Counter(by_id.values())
    return {
        "rows": len(rows),
        "distinct_ids": len(by_id),
        "distinct_texts": len(counts),
        "repeated_texts": sum(n - 1 for n in counts.values() if n > 1),
    }


def schema_name(body: dict[str, Any]) -> str:
    return str(((body.get("response_format") or {}).get("json_schema") or {}).get("name"))


def responder(body: dict[str, Any]) -> str | dict[str, Any]:
    """A valid answer for the schema the request names; anything else is a 400."""
    answer = ANSWERS.get(schema_name(body))
    if answer is None:
        message = f"unexpected schema {schema_name(body)!r}"
        return {"status": 400, "body": {"error": {"message": message}}}
    return json.dumps(answer)


def config_data(read_everything: bool) -> dict[str, Any]:
    return {
        "bot": {"brand": "Bench Air", "database": "llm.db", "timezone": "UTC"},
        "slack": {"enabled": False},
        "departments": [
            {
                "id": "care",
                "name": "Customer Care",
                "intents": ["complaint", "question"],
                "first_response_minutes": 60,
                "default": True,
            }
        ],
        "publish": {"dry_run": True},
        "llm": {
            "enabled": True,
            "model": MODEL,
            "timeout_seconds": 10,
            "max_calls_per_hour": 10_000_000,
            "suggestions": 3,
            "read_everything": read_everything,
        },
    }


def enricher_class(path: Way) -> type[AIEnricher]:
    if path.legacy:
        from legacy_llm import TwoCallEnricher

        return TwoCallEnricher
    from bot.ai import AIEnricher

    return AIEnricher


def prefix_cacheable(requests: list[dict[str, Any]]) -> int:
    """Prompt tokens a prefix cache could serve: the fake's cached_tokens, summed."""
    from tests.fakes.openai import message_prefixes

    seen: set[str] = set()
    total = 0
    for body in requests:
        cached = 0
        for fingerprint, chars in message_prefixes(body):
            if fingerprint in seen:
                cached = chars
            seen.add(fingerprint)
        total += cached // 4
    return total


def measure(path: Way, mentions: list[Mention], rows: int, fake: FakeOpenAI, work: Path) -> Run:
    from bot.config import parse_config
    from bot.ports import FixedClock
    from bot.service import CareService
    from bot.store import Store
    from integrations.openai_llm import OpenAILLM
    from tests.fakes.openai import count_prompt_tokens

    base = work / path.name
    base.mkdir()
    config = parse_config(config_data(path.read_everything), base_dir=base)
    service = CareService(
        config, Store(config.database_path), clock=FixedClock(START), ai_enabled=True
    )
    client = OpenAILLM(
        api_key="bench-key-not-real",
        model=MODEL,
        base_url=fake.base_url,
        timeout=10,
        max_retries=0,
    )
    enricher = enricher_class(path)(service, client)
    run = Run(path.name, path.label, rows)
    fake.clear()
    start = time.perf_counter()
    service.ingest_many(mentions)
    while enricher.run_once():
        pass
    run.seconds = time.perf_counter() - start

    store = service.store
    run.cases = int(store.scalar("SELECT count(*) FROM cases"))
    for row in store.query(
        "SELECT kind, cached, count(*) AS n, sum(prompt_tokens) AS p,"
        " sum(completion_tokens) AS c FROM llm_calls GROUP BY kind, cached ORDER BY kind"
    ):
        if row["cached"]:
            run.cached_hits += int(row["n"])
            continue
        run.prompt_tokens += int(row["p"] or 0)
        run.completion_tokens += int(row["c"] or 0)
        run.calls_by_kind[str(row["kind"])] = int(row["n"])
    run.skipped = int(
        store.scalar(
            "SELECT count(*) FROM outbox WHERE kind = 'ai' AND result LIKE '%offline reading%'"
        )
    )
    run.readings_stored = int(
        store.scalar("SELECT count(*) FROM cases WHERE classifier LIKE 'llm:%'")
    )
    run.cases_with_suggestions = int(
        store.scalar("SELECT count(DISTINCT case_id) FROM suggestions")
    )
    run.filled = filled_fields(store)
    requests = fake.requests
    run.cacheable_prompt_tokens = prefix_cacheable(requests)
    by_schema = Counter(schema_name(body) for body in requests)
    wire_prompt_tokens = sum(count_prompt_tokens(body) for body in requests)
    done = int(store.scalar("SELECT count(*) FROM outbox WHERE kind = 'ai' AND state = 'done'"))
    store.close()

    # Correctness: every case handled, and the product's ledger matches the wire.
    if done != run.cases:
        run.problems.append(f"{path.name}: {done} ai items done for {run.cases} cases")
    if sum(by_schema.values()) != run.calls:
        run.problems.append(
            f"{path.name}: the fake saw {dict(by_schema)}, llm_calls recorded {run.calls_by_kind}"
        )
    if wire_prompt_tokens != run.prompt_tokens:
        run.problems.append(
            f"{path.name}: llm_calls recorded {run.prompt_tokens} prompt tokens,"
            f" the fake counted {wire_prompt_tokens}"
        )
    if run.readings_stored + run.skipped != run.cases:
        run.problems.append(
            f"{path.name}: {run.readings_stored} LLM readings + {run.skipped} skipped"
            f" != {run.cases} cases"
        )
    return run


def filled_fields(store: Any) -> dict[str, tuple[Any, ...]]:
    """Per mention: the reading and suggestions the LLM filled (None when it was not asked)."""
    texts: dict[int, list[str]] = {}
    for row in store.query("SELECT case_id, text FROM suggestions ORDER BY case_id, position"):
        texts.setdefault(int(row["case_id"]), []).append(row["text"])
    out: dict[str, tuple[Any, ...]] = {}
    for row in store.query(
        "SELECT m.id AS mention, c.id, c.intent, c.sentiment, c.priority, c.needs_reply,"
        " c.language, c.summary, c.classifier FROM cases c JOIN mentions m ON m.case_id = c.id"
    ):
        if not str(row["classifier"]).startswith("llm:"):
            continue
        out[str(row["mention"])] = (
            row["intent"],
            row["sentiment"],
            row["priority"],
            bool(row["needs_reply"]),
            row["language"],
            row["summary"],
            tuple(texts.get(int(row["id"]), ())),
        )
    return out


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else float("nan")


def compare(before: Run, after: Run, *, every: bool) -> list[str]:
    """The one-call run filled the same fields as the two-call run for what it sent."""
    problems: list[str] = []
    if every and set(after.filled) != set(before.filled):
        read, expected = len(after.filled), len(before.filled)
        problems.append(f"{after.name}: {read} mentions read, not {expected}")
    differ = [m for m, fields in after.filled.items() if before.filled.get(m) != fields]
    if differ:
        problems.append(f"{after.name}: fields differ from the two-call path for {differ[:5]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = rows_or_skip(args.data, args.limit, as_json=args.json)
    if rows is None:
        return 0
    if args.campaign:
        rows = with_campaign(rows, args.campaign)
    for where in (ROOT, Path(__file__).resolve().parent):
        if str(where) not in sys.path:
            sys.path.insert(0, str(where))
    from bot.models import Mention
    from tests.fakes.openai import start_fake_openai

    mentions = [Mention.model_validate(row) for row in rows]
    with (
        tempfile.TemporaryDirectory(prefix="socialcare-bench-llm-") as tmp,
        start_fake_openai() as fake,
    ):
        fake.set_responder(responder)
        runs = [measure(path, mentions, len(rows), fake, Path(tmp)) for path in PATHS]
    before, everything, built = runs

    problems = [p for run in runs for p in run.problems]
    problems += compare(before, everything, every=True)
    problems += compare(before, built, every=False)
    ratios = {
        run.name: {
            "calls": round(ratio(run.calls, before.calls), 4),
            "total_tokens": round(ratio(run.tokens, before.tokens), 4),
        }
        for run in runs[1:]
    }
    goals = {
        "calls_per_mention": round(ratio(built.calls, built.mentions), 3),
        "calls_per_mention_met": ratio(built.calls, built.mentions) <= GOAL_CALLS_PER_MENTION,
        "token_ratio": ratios["one_call"]["total_tokens"],
        "token_ratio_met": ratios["one_call"]["total_tokens"] <= GOAL_TOKEN_RATIO,
    }
    if not goals["calls_per_mention_met"]:
        problems.append(f"goal: {goals['calls_per_mention']} calls per mention (at most 1.0)")
    if not goals["token_ratio_met"]:
        problems.append(f"goal: {goals['token_ratio']:.3f} of the two-call tokens (at most 0.70)")

    if args.json:
        payload = {
            "benchmark": "llm",
            "data": str(args.data),
            "limit": args.limit,
            "python": sys.version.split()[0],
            "token_note": TOKEN_NOTE,
            "sample": describe_texts(rows),
            "results": [run.as_dict() for run in runs],
            "ratio_vs_two_calls": ratios,
            "goals": goals,
            "checks": {"ok": not problems, "problems": problems},
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print_table(args, describe_texts(rows), runs, ratios, problems)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


def print_table(
    args: argparse.Namespace,
    data: dict[str, Any],
    runs: list[Run],
    ratios: dict[str, dict[str, float]],
    problems: list[str],
) -> None:
    limit = "all rows" if args.limit <= 0 else f"--limit {args.limit}"
    print(f"LLM calls and tokens: {args.data.name}, {limit}, Python {sys.version.split()[0]}")
    print(
        f"sample: {data['rows']} mentions, {data['distinct_ids']} distinct tweet ids (cases),"
        f" {data['distinct_texts']} distinct texts"
    )
    header = (
        f"{'path':<26} {'calls':>6} {'skipped':>7} {'cached':>6} {'prompt tok':>10}"
        f" {'cacheable':>9} {'compl tok':>9} {'calls/1k':>8} {'tokens/1k':>9} {'x tokens':>8}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        share = ratios.get(run.name, {"total_tokens": 1.0})["total_tokens"]
        print(
            f"{run.label:<26} {run.calls:>6} {run.skipped:>7} {run.cached_hits:>6}"
            f" {run.prompt_tokens:>10,} {run.cacheable_prompt_tokens:>9,}"
            f" {run.completion_tokens:>9,} {run.per_1000(run.calls):>8.1f}"
            f" {run.per_1000(run.tokens):>9,.0f} {share:>8.3f}"
        )
    print(
        f"{TOKEN_NOTE}; per 1k = per 1,000 mentions (rows, duplicates included);"
        " x tokens = total tokens relative to the two-call path; cacheable = prompt tokens"
        " a provider's prefix cache could serve (identical leading messages)"
    )
    print(
        "the fake always says needs_reply, so every mention sent gets suggestions (upper"
        " bound); skipped = mentions the offline reading marks as spam or needing no reply"
    )
    print(f"correctness and goals: {'OK' if not problems else 'FAILED'}")


if __name__ == "__main__":
    sys.exit(main())
