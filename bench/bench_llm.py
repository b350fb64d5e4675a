"""LLM cost: calls and tokens per 1,000 mentions with the result cache and without it.

Data: the real airline tweets CSV (first 1,000 rows by default). Each row becomes one
mention (network `x`, id = `tweet_id`, author = `name`), ingested with
`CareService(..., ai_enabled=True).ingest_many`; then `AIEnricher.run_once` is drained
until it returns False. A FixedClock keeps every `ai` item fresh (nothing is skipped as
stale) and the hourly budget is set far above the sample, so every case is enriched.

The LLM is tests/fakes/openai.py's FakeOpenAI on loopback, reached through the real
openai SDK (integrations.openai_llm.OpenAILLM). Its responder answers a valid reading
for `LLMReading` requests (always `needs_reply: true`, so every case also asks for
suggestions: an upper bound on suggestion calls) and three valid suggestions for
`LLMSuggestions` requests. Tokens are the fake's deterministic counts (prompt: message
characters // 4; completion: answer characters // 4 + 1), as recorded by the product in
`llm_calls`; real tokenizers differ, so read the figures as ratios.

Measured in one run, each into a fresh SQLite file:

  baseline  without the cache: an AIEnricher subclass whose `_cached` always returns None
            (every case pays for its own reading and suggestions)
  cached    the product as built: AIEnricher, whose cache is keyed on the rendered
            prompt (model, prompt version, system and user text)

Exit 1 if a correctness check fails; exit 0 with "skipped: data not found" when the CSV
is absent.

    python bench/bench_llm.py [--data PATH] [--limit N] [--json]
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

from airline import DATA_ENV, DEFAULT_DATA, SHARED_DATA, rows_or_skip

if TYPE_CHECKING:
    from bot.ai import AIEnricher
    from bot.models import Mention
    from tests.fakes.openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LIMIT = 1000
MODEL = "bench-model"
START = datetime(2015, 2, 25, 12, 0, tzinfo=UTC)
TOKEN_NOTE = "tokens as counted by the fake server: chars/4; real tokenizers differ"

READING = {
    "intent": "complaint",
    "sentiment": "negative",
    "priority": "normal",
    "needs_reply": True,
    "language": "en",
    "summary": "Customer reports a problem with a flight.",
    "routing_reason": "service issue for customer care",
}
SUGGESTIONS = {
    "suggestions": [
        "@customer Sorry to hear that. Please send us a DM and we'll look into it.",
        "@customer We're sorry about this. DM us your details and we'll check right away.",
        "@customer Thanks for letting us know. Send us a DM so we can help.",
    ]
}


@dataclass
class Run:
    name: str
    label: str
    mentions: int
    cases: int = 0
    reading_calls: int = 0
    suggestion_calls: int = 0
    cached_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    fake_requests: int = 0
    fake_prompt_tokens: int = 0
    ai_items_done: int = 0
    readings_stored: int = 0
    cases_with_suggestions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return self.reading_calls + self.suggestion_calls

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
            "calls": {
                "reading": self.reading_calls,
                "suggestions": self.suggestion_calls,
                "total": self.calls,
            },
            "cached_hits": self.cached_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.tokens,
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
    from bot.redact import redact

    by_id: dict[str, str] = {}
    for row in rows:
        by_id.setdefault(row["id"], row["text"].strip())
    texts = list(by_id.values())
    counts = Counter(texts)
    redacted = {redact(t) for t in texts}
    return {
        "rows": len(rows),
        "distinct_ids": len(by_id),
        "distinct_texts": len(counts),
        "distinct_redacted_texts": len(redacted),
        "repeated_texts": sum(n - 1 for n in counts.values() if n > 1),
        "retweets_rt_at_start": sum(t.startswith("RT @") for t in texts),
        "quoting_rt_anywhere": sum("RT @" in t for t in texts),
        "most_repeated": [[t, n] for t, n in counts.most_common(5) if n > 1],
    }


def responder(body: dict[str, Any]) -> str | dict[str, Any]:
    """A valid answer for the schema the request names; anything else is a 400."""
    schema = (body.get("response_format") or {}).get("json_schema") or {}
    name = schema.get("name")
    if name == "LLMReading":
        return json.dumps(READING)
    if name == "LLMSuggestions":
        return json.dumps(SUGGESTIONS)
    return {"status": 400, "body": {"error": {"message": f"unexpected schema {name!r}"}}}


def schema_name(body: dict[str, Any]) -> str:
    return str(((body.get("response_format") or {}).get("json_schema") or {}).get("name"))


def config_data() -> dict[str, Any]:
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
        },
    }


def enricher_class(cached: bool) -> type[AIEnricher]:
    from bot.ai import AIEnricher

    if cached:
        return AIEnricher

    class UncachedEnricher(AIEnricher):
        """The product with its result cache switched off, for the baseline."""

        def _cached(self, key: str, case_id: int, kind: str, version: str) -> None:
            return None

    return UncachedEnricher


def measure(
    name: str,
    label: str,
    cached: bool,
    mentions: list[Mention],
    rows: int,
    fake: FakeOpenAI,
    work: Path,
) -> Run:
    from bot.config import parse_config
    from bot.ports import FixedClock
    from bot.service import CareService
    from bot.store import Store
    from integrations.openai_llm import OpenAILLM
    from tests.fakes.openai import count_prompt_tokens

    base = work / name
    base.mkdir()
    config = parse_config(config_data(), base_dir=base)
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
    enricher = enricher_class(cached)(service, client)
    run = Run(name, label, rows)
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
        " sum(completion_tokens) AS c FROM llm_calls GROUP BY kind, cached"
    ):
        if row["cached"]:
            run.cached_hits += int(row["n"])
            continue
        run.prompt_tokens += int(row["p"] or 0)
        run.completion_tokens += int(row["c"] or 0)
        if row["kind"] == "reading":
            run.reading_calls += int(row["n"])
        else:
            run.suggestion_calls += int(row["n"])
    run.ai_items_done = int(
        store.scalar("SELECT count(*) FROM outbox WHERE kind = 'ai' AND state = 'done'")
    )
    run.readings_stored = int(
        store.scalar("SELECT count(*) FROM cases WHERE classifier LIKE 'llm:%'")
    )
    run.cases_with_suggestions = int(
        store.scalar("SELECT count(DISTINCT case_id) FROM suggestions")
    )
    requests = fake.requests
    run.fake_requests = len(requests)
    run.fake_prompt_tokens = sum(count_prompt_tokens(body) for body in requests)
    by_schema = Counter(schema_name(body) for body in requests)
    store.close()

    # Correctness: every case enriched, and the product's ledger matches the wire.
    if run.ai_items_done != run.cases:
        run.problems.append(f"{name}: {run.ai_items_done} ai items done for {run.cases} cases")
    if run.readings_stored != run.cases or run.cases_with_suggestions != run.cases:
        run.problems.append(
            f"{name}: {run.readings_stored} LLM readings and {run.cases_with_suggestions} cases"
            f" with suggestions, expected {run.cases} each"
        )
    if (by_schema["LLMReading"], by_schema["LLMSuggestions"]) != (
        run.reading_calls,
        run.suggestion_calls,
    ):
        run.problems.append(
            f"{name}: the fake saw {dict(by_schema)}, llm_calls recorded"
            f" {run.reading_calls} readings and {run.suggestion_calls} suggestions"
        )
    if run.fake_prompt_tokens != run.prompt_tokens:
        run.problems.append(
            f"{name}: llm_calls recorded {run.prompt_tokens} prompt tokens,"
            f" the fake counted {run.fake_prompt_tokens}"
        )
    if run.calls + run.cached_hits != 2 * run.cases:
        run.problems.append(
            f"{name}: {run.calls} calls + {run.cached_hits} cached hits,"
            f" expected {2 * run.cases} (one reading and one suggestion set per case)"
        )
    return run


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else float("nan")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = rows_or_skip(args.data, args.limit, as_json=args.json)
    if rows is None:
        return 0
    if args.campaign:
        rows = with_campaign(rows, args.campaign)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bot.models import Mention
    from tests.fakes.openai import start_fake_openai

    mentions = [Mention.model_validate(row) for row in rows]
    data = describe_texts(rows)

    with (
        tempfile.TemporaryDirectory(prefix="socialcare-bench-llm-") as tmp,
        start_fake_openai() as fake,
    ):
        fake.set_responder(responder)
        work = Path(tmp)
        baseline = measure(
            "baseline", "baseline: cache off", False, mentions, len(rows), fake, work
        )
        cached = measure(
            "cached", "cached: product as built", True, mentions, len(rows), fake, work
        )

    problems = baseline.problems + cached.problems
    if baseline.cached_hits:
        problems.append(f"baseline: {baseline.cached_hits} cached hits with the cache off")
    if cached.calls + cached.cached_hits != baseline.calls:
        problems.append(
            f"cached: {cached.calls} calls + {cached.cached_hits} hits"
            f" != {baseline.calls} baseline calls"
        )
    ratios = {
        "calls": round(ratio(cached.calls, baseline.calls), 4),
        "prompt_tokens": round(ratio(cached.prompt_tokens, baseline.prompt_tokens), 4),
        "completion_tokens": round(ratio(cached.completion_tokens, baseline.completion_tokens), 4),
        "total_tokens": round(ratio(cached.tokens, baseline.tokens), 4),
    }

    if args.json:
        payload = {
            "benchmark": "llm",
            "data": str(args.data),
            "limit": args.limit,
            "python": sys.version.split()[0],
            "token_note": TOKEN_NOTE,
            "sample": data,
            "results": [baseline.as_dict(), cached.as_dict()],
            "ratio_cached_vs_baseline": ratios,
            "checks": {"ok": not problems, "problems": problems},
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print_table(args, data, [baseline, cached], ratios, problems)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


def print_table(
    args: argparse.Namespace,
    data: dict[str, Any],
    runs: list[Run],
    ratios: dict[str, float],
    problems: list[str],
) -> None:
    limit = "all rows" if args.limit <= 0 else f"--limit {args.limit}"
    print(f"LLM calls and tokens: {args.data.name}, {limit}, Python {sys.version.split()[0]}")
    print(
        f"sample: {data['rows']} mentions, {data['distinct_ids']} distinct tweet ids (cases),"
        f" {data['distinct_texts']} distinct texts ({data['distinct_redacted_texts']} after"
        f" redaction); {data['repeated_texts']} repeat an earlier text;"
        f" {data['retweets_rt_at_start']} start with 'RT @', {data['quoting_rt_anywhere']}"
        " contain one"
    )
    header = (
        f"{'measurement':<26} {'reading':>7} {'suggest':>7} {'calls':>6} {'cached':>6}"
        f" {'prompt tok':>10} {'compl tok':>9} {'calls/1k':>8} {'tokens/1k':>9} {'sec':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r.label:<26} {r.reading_calls:>7} {r.suggestion_calls:>7} {r.calls:>6}"
            f" {r.cached_hits:>6} {r.prompt_tokens:>10,} {r.completion_tokens:>9,}"
            f" {r.per_1000(r.calls):>8.1f} {r.per_1000(r.tokens):>9,.0f} {r.seconds:>6.1f}"
        )
    print(
        f"cached / baseline: calls {ratios['calls']:.3f}, prompt tokens"
        f" {ratios['prompt_tokens']:.3f}, completion tokens {ratios['completion_tokens']:.3f},"
        f" total tokens {ratios['total_tokens']:.3f}"
    )
    print(f"{TOKEN_NOTE}; per 1k = per 1,000 mentions (rows, duplicates included)")
    print(
        "the fake's reading always says needs_reply, so every case asks for suggestions"
        " (upper bound); the cache only hits on an identical rendered prompt: same redacted"
        " text (reading), and also the same earlier contacts"
        " (suggestions)"
    )
    if data["most_repeated"]:
        repeated = "; ".join(f"{t!r} x{n}" for t, n in data["most_repeated"])
        print(f"most repeated texts: {repeated}")
    print(f"correctness: {'OK' if not problems else 'FAILED'}")


if __name__ == "__main__":
    sys.exit(main())
