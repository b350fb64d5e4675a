"""Benchmark: socialcare's offline classifier against two named sentiment baselines.

Run from the repository root:

    .venv/bin/python bench/bench_classifier.py [--data PATH] [--json]

Data: the public "Twitter US Airline Sentiment" file (14,640 labelled tweets; Kaggle,
CC BY-NC-SA 4.0): `--data PATH`, else `$SOCIALCARE_AIRLINE_CSV`, else
../shared/data/airline-tweets.csv next to the repository. It is read, never copied.
The offline classifier's rules were tuned looking only at rows with an even tweet id;
rows with an odd tweet id are held out and reported separately.

Compared, on the same rows in the same run:

* socialcare  - bot.classify.OfflineClassifier (full classify(): sentiment, intent,
  priority, needs-reply, language detection);
* VADER plain - vaderSentiment compound score, standard thresholds (>= 0.05 positive,
  <= -0.05 negative);
* TextBlob    - textblob's default PatternAnalyzer polarity, thresholds +-0.05
  (a dev dependency; reported as n/a when not installed).

The baselines only give sentiment; for them "needs reply" means "predicted negative".
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airline import data_argument, handle_of, missing_data_message, skip

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("negative", "neutral", "positive")
SERVICE_REASONS = frozenset(
    {"Customer Service Issue", "Lost Luggage", "Cancelled Flight", "Late Flight"}
)
BASELINE_THRESHOLD = 0.05


@dataclass(frozen=True)
class Row:
    tweet_id: int
    label: str
    reason: str
    text: str
    author: str
    created_at: datetime

    @property
    def held_out(self) -> bool:
        return self.tweet_id % 2 == 1


@dataclass(frozen=True)
class Prediction:
    sentiment: str
    needs_reply: bool
    intent: str = ""


@dataclass
class Run:
    name: str
    predictions: list[Prediction] | None
    seconds: float = 0.0
    note: str = ""


def load_rows(path: Path) -> list[Row]:
    rows: list[Row] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            text = (record.get("text") or "").strip()
            label = (record.get("airline_sentiment") or "").strip()
            if not text or label not in CLASSES:
                continue
            try:
                created = datetime.strptime(record.get("tweet_created", ""), "%Y-%m-%d %H:%M:%S %z")
            except ValueError:
                created = datetime(2015, 2, 1, tzinfo=UTC)
            rows.append(
                Row(
                    tweet_id=int(record["tweet_id"]),
                    label=label,
                    reason=(record.get("negativereason") or "").strip(),
                    text=text,
                    author=handle_of(record.get("name") or ""),
                    created_at=created,
                )
            )
    return rows


def three_way(score: float) -> str:
    if score >= BASELINE_THRESHOLD:
        return "positive"
    if score <= -BASELINE_THRESHOLD:
        return "negative"
    return "neutral"


def timed(name: str, rows: Sequence[Row], predict: Callable[[Row], Prediction]) -> Run:
    start = time.perf_counter()
    predictions = [predict(row) for row in rows]
    return Run(name, predictions, time.perf_counter() - start)


def run_socialcare(rows: Sequence[Row]) -> Run:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bot.classify import OfflineClassifier
    from bot.models import Mention

    classifier = OfflineClassifier()
    mentions = [
        Mention(
            network="x",
            id=str(row.tweet_id),
            author_id=row.author,
            author_handle=row.author,
            text=row.text,
            created_at=row.created_at,
        )
        for row in rows
    ]
    classifier.classify(mentions[0])  # load VADER and the language model outside the clock
    start = time.perf_counter()
    readings = [classifier.classify(mention) for mention in mentions]
    seconds = time.perf_counter() - start
    predictions = [Prediction(r.sentiment.value, r.needs_reply, r.intent.value) for r in readings]
    return Run("socialcare", predictions, seconds)


def run_vader(rows: Sequence[Row]) -> Run:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()

    def predict(row: Row) -> Prediction:
        label = three_way(float(analyzer.polarity_scores(row.text)["compound"]))
        return Prediction(label, label == "negative")

    return timed("VADER plain", rows, predict)


def run_textblob(rows: Sequence[Row]) -> Run:
    try:
        from textblob import TextBlob
        from textblob.sentiments import PatternAnalyzer
    except ImportError:
        return Run("TextBlob", None, note="n/a (textblob not installed)")
    analyzer = PatternAnalyzer()

    def predict(row: Row) -> Prediction:
        polarity = float(TextBlob(row.text, analyzer=analyzer).sentiment.polarity)
        label = three_way(polarity)
        return Prediction(label, label == "negative")

    return timed("TextBlob", rows, predict)


def scores(rows: Sequence[Row], predictions: Sequence[Prediction]) -> dict[str, float]:
    # The same scoring as `socialcare eval` (bot/evaluate.py), over the three sentiments.
    from bot.evaluate import score

    sentiment = score([r.label for r in rows], [p.sentiment for p in predictions], CLASSES)
    f1s = [sentiment.f1[cls] for cls in CLASSES]

    def reply_share(keep: Callable[[Row], bool]) -> float:
        chosen = [p.needs_reply for row, p in zip(rows, predictions, strict=True) if keep(row)]
        return sum(chosen) / len(chosen) if chosen else 0.0

    return {
        "rows": sentiment.rows,
        "accuracy": sentiment.accuracy,
        "macro_f1": sentiment.macro_f1,
        "f1_negative": f1s[0],
        "f1_neutral": f1s[1],
        "f1_positive": f1s[2],
        "negative_needs_reply": reply_share(lambda r: r.label == "negative"),
        "positive_needs_reply": reply_share(lambda r: r.label == "positive"),
        "neutral_no_question_needs_reply": reply_share(
            lambda r: r.label == "neutral" and "?" not in r.text
        ),
        "negative_read_positive": sentiment.confusion.get(("negative", "positive"), 0),
    }


def subset(rows: Sequence[Row], run: Run, keep: Callable[[Row], bool]) -> dict[str, float]:
    assert run.predictions is not None
    pairs = [(row, p) for row, p in zip(rows, run.predictions, strict=True) if keep(row)]
    return scores([r for r, _ in pairs], [p for _, p in pairs])


def build_report(rows: Sequence[Row], runs: Sequence[Run], data: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "data": str(data),
        "rows": len(rows),
        "held_out_rows": sum(r.held_out for r in rows),
        "baseline_needs_reply": "predicted negative",
        "classifiers": {},
    }
    for run in runs:
        if run.predictions is None:
            report["classifiers"][run.name] = {"available": False, "note": run.note}
            continue
        report["classifiers"][run.name] = {
            "available": True,
            "mentions_per_second": len(rows) / run.seconds if run.seconds else 0.0,
            "held_out": subset(rows, run, lambda r: r.held_out),
            "all": subset(rows, run, lambda r: True),
        }
    ours = runs[0].predictions
    assert ours is not None
    intents = Counter(p.intent for p in ours)
    report["socialcare_intents"] = {
        k: intents[k] for k in sorted(intents, key=lambda k: -intents[k])
    }
    for name, keep in (("held_out", lambda r: r.held_out), ("all", lambda r: True)):
        service = [
            p.intent == "complaint"
            for row, p in zip(rows, ours, strict=True)
            if keep(row) and row.label == "negative" and row.reason in SERVICE_REASONS
        ]
        report.setdefault("service_reasons_read_as_complaint", {})[name] = {
            "rows": len(service),
            "share": sum(service) / len(service) if service else 0.0,
        }
    return report


def print_report(report: dict[str, Any]) -> None:
    print(f"Data: {report['data']}")
    print(
        f"{report['rows']} labelled tweets; held out (odd tweet id, not looked at while tuning): "
        f"{report['held_out_rows']}"
    )
    print("Baselines give sentiment only: for them needs_reply = predicted negative.\n")
    header = (
        f"{'rows':<9} {'classifier':<12} {'accuracy':>8} {'macro-F1':>8} {'neg->reply':>10} "
        f"{'pos->reply':>10} {'neu(no ?)->reply':>16} {'neg->pos':>8} {'mentions/s':>10}"
    )
    print(header)
    print("-" * len(header))
    for part, title in (("held_out", "held-out"), ("all", "all")):
        for name, entry in report["classifiers"].items():
            if not entry["available"]:
                print(f"{title:<9} {name:<12} {entry['note']}")
                continue
            s = entry[part]
            print(
                f"{title:<9} {name:<12} {s['accuracy']:>8.3f} {s['macro_f1']:>8.3f} "
                f"{s['negative_needs_reply']:>10.1%} {s['positive_needs_reply']:>10.1%} "
                f"{s['neutral_no_question_needs_reply']:>16.1%} {s['negative_read_positive']:>8} "
                f"{entry['mentions_per_second']:>10,.0f}"
            )
    print("\nneg->reply: share of negative tweets marked needs_reply; pos->reply and")
    print("neu(no ?)->reply: the same for praise and for neutral tweets without a question mark;")
    print("neg->pos: negative tweets read as positive.")
    total = sum(report["socialcare_intents"].values())
    print("\nsocialcare intents (all rows):")
    for intent, count in report["socialcare_intents"].items():
        print(f"  {intent:<11} {count:>6}  {count / total:6.1%}")
    print(
        "\nNegative tweets whose reason is Customer Service Issue / Lost Luggage / "
        "Cancelled Flight / Late Flight, read as intent complaint:"
    )
    for part, title in (("held_out", "held-out"), ("all", "all")):
        entry = report["service_reasons_read_as_complaint"][part]
        print(f"  {title:<9} {entry['share']:.1%} of {entry['rows']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    data_argument(parser, "labelled tweets CSV")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    data: Path = args.data
    if not data.is_file():
        skip(missing_data_message(data), as_json=args.json)
        return 0
    rows = load_rows(data)
    if not rows:
        skip(f"skipped: no labelled rows in {data}", as_json=args.json)
        return 0
    runs = [run_socialcare(rows), run_vader(rows), run_textblob(rows)]
    report = build_report(rows, runs, data)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=False))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
