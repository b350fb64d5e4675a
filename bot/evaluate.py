"""`socialcare eval`: how well a reader (the offline classifier, the LLM) matches labels.

A labelled JSONL line is a mention (the fields `ingest` reads) plus any of `intent`,
`sentiment`, `needs_reply`. Per labelled field and reader: accuracy, macro-F1 (the
unweighted mean of each label's F1, over the labels seen in the gold or the predictions)
and a confusion table. bench/bench_classifier.py scores with the same `score()`, so the
two agree on the same rows.

Nothing here touches the database: readers are plain functions from a mention to a
reading, and the LLM reader asks the same one-call prompt the running bot asks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from threading import Lock
from typing import Any

from bot.ai import LLMAnswer, LLMClient, LLMError, ReplyPrompt, capped_call, prompt_text
from bot.classify import OfflineClassifier
from bot.config import Config
from bot.jsonl import BadLine, read_objects, to_mention
from bot.models import Classification, Intent, Mention, Sentiment
from bot.routing import route

FIELDS: tuple[str, ...] = ("intent", "sentiment", "needs_reply")
# Each field's labels in a fixed order, for tables; a bool is labelled "yes" / "no".
DOMAINS: dict[str, tuple[str, ...]] = {
    "intent": tuple(i.value for i in Intent),
    "sentiment": tuple(s.value for s in Sentiment),
    "needs_reply": ("yes", "no"),
}


@dataclass(frozen=True)
class Labelled:
    line: int
    mention: Mention
    labels: dict[str, str]  # field -> label, only the fields the line gives


@dataclass(frozen=True)
class Scores:
    rows: int
    accuracy: float
    macro_f1: float
    f1: dict[str, float]  # per label
    confusion: dict[tuple[str, str], int]  # (gold, predicted) -> count
    labels: tuple[str, ...]  # the labels macro-F1 averages over, in table order


def score(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None
) -> Scores:
    """Accuracy, per-label F1 and macro-F1 of `predicted` against `gold`.

    `labels`: the labels to average over; by default every label seen in either list.
    """
    confusion = Counter(zip(gold, predicted, strict=True))
    if labels is None:
        seen = set(gold) | set(predicted)
        labels = sorted(seen, key=lambda x: (_order(x), x))
    f1: dict[str, float] = {}
    for label in labels:
        tp = confusion[(label, label)]
        predicted_as = sum(n for (_, p), n in confusion.items() if p == label)
        actually = sum(n for (g, _), n in confusion.items() if g == label)
        precision = tp / predicted_as if predicted_as else 0.0
        recall = tp / actually if actually else 0.0
        f1[label] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    total = len(gold)
    correct = sum(n for (g, p), n in confusion.items() if g == p)
    return Scores(
        rows=total,
        accuracy=correct / total if total else 0.0,
        macro_f1=sum(f1.values()) / len(f1) if f1 else 0.0,
        f1=f1,
        confusion=dict(confusion),
        labels=tuple(labels),
    )


def _order(label: str) -> int:
    for domain in DOMAINS.values():
        if label in domain:
            return domain.index(label)
    return len(DOMAINS["intent"])


# -- reading the file


def _label(field_name: str, value: Any) -> str:
    """The label as a string, or ValueError saying what is accepted."""
    if field_name == "needs_reply":
        if not isinstance(value, bool):
            raise ValueError("needs_reply: must be true or false")
        return "yes" if value else "no"
    if not isinstance(value, str) or value not in DOMAINS[field_name]:
        raise ValueError(f"{field_name}: must be one of {', '.join(DOMAINS[field_name])}")
    return value


def read_labelled(
    path: Path, *, now: datetime | None = None
) -> Iterator[tuple[int, Labelled | BadLine]]:
    """Yield (line number, Labelled or BadLine) per non-blank line; never raises on content."""
    for number, item in read_objects(path):
        if isinstance(item, BadLine):
            yield number, item
            continue
        labels: dict[str, str] = {}
        try:
            for name in FIELDS:
                if item.get(name) is not None:
                    labels[name] = _label(name, item[name])
        except ValueError as exc:
            yield number, BadLine(number, str(exc))
            continue
        if not labels:
            yield number, BadLine(number, f"no label: give at least one of {', '.join(FIELDS)}")
            continue
        mention = to_mention(number, item, now)
        yield number, mention if isinstance(mention, BadLine) else Labelled(number, mention, labels)


# -- readers


@dataclass(frozen=True)
class Reading:
    intent: str
    sentiment: str
    needs_reply: str

    def get(self, field_name: str) -> str:
        value: str = getattr(self, field_name)
        return value


def _reading(intent: Intent, sentiment: Sentiment, needs_reply: bool) -> Reading:
    return Reading(intent.value, sentiment.value, "yes" if needs_reply else "no")


Reader = Callable[[Mention], Reading]


@dataclass
class LLMReader:
    """The running bot's one call per mention, on every line (as with read_everything):
    redacted text, the department the routing picks, no history. A failed call falls
    back to the offline reading, as the bot does, and is counted."""

    config: Config
    client: LLMClient
    offline: OfflineClassifier
    calls: int = 0
    fallbacks: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    _lock: Lock = field(default_factory=Lock)

    def __call__(self, mention: Mention) -> Reading:
        offline = self.offline.classify(mention)
        prompt = ReplyPrompt(self.config)
        department = self.config.department(route(self.config, mention, offline).department)
        system, user = prompt.render(
            department=department.name if department else "",
            history="",
            text=prompt_text(mention.text),
        )
        with self._lock:
            self.calls += 1
        try:
            answer, _ = capped_call(self.client, self.config, system, user, LLMAnswer)
        except LLMError as exc:
            with self._lock:
                self.fallbacks += 1
                # The kind of failure ("APITimeoutError"), never the model's words.
                self.problems[str(exc).split(":")[0].split(" (")[0]] += 1
            return _offline(offline)
        return _reading(answer.intent, answer.sentiment, answer.needs_reply)


def _offline(reading: Classification) -> Reading:
    return _reading(reading.intent, reading.sentiment, reading.needs_reply)


def offline_reader(classifier: OfflineClassifier) -> Reader:
    return lambda mention: _offline(classifier.classify(mention))


# -- the evaluation


@dataclass(frozen=True)
class Evaluation:
    readers: tuple[str, ...]
    labelled: int
    scores: dict[str, dict[str, Scores]]  # field -> reader -> scores (labelled fields only)


def evaluate(
    items: Sequence[Labelled], readers: dict[str, Reader], *, workers: dict[str, int] | None = None
) -> Evaluation:
    """Every reader on every item; scores per field over the items labelled with it."""
    predictions: dict[str, list[Reading]] = {}
    for name, reader in readers.items():
        threads = (workers or {}).get(name, 1)
        mentions = [item.mention for item in items]
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                predictions[name] = list(pool.map(reader, mentions))
        else:
            predictions[name] = [reader(m) for m in mentions]
    scores: dict[str, dict[str, Scores]] = {}
    for name in FIELDS:
        chosen = [i for i, item in enumerate(items) if name in item.labels]
        if not chosen:
            continue
        gold = [items[i].labels[name] for i in chosen]
        scores[name] = {
            reader: score(gold, [predictions[reader][i].get(name) for i in chosen])
            for reader in readers
        }
    return Evaluation(tuple(readers), len(items), scores)


# -- output


def as_json(evaluation: Evaluation) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, by_reader in evaluation.scores.items():
        entry: dict[str, Any] = {"labelled": next(iter(by_reader.values())).rows}
        for reader, s in by_reader.items():
            entry[reader] = {
                "accuracy": round(s.accuracy, 4),
                "macro_f1": round(s.macro_f1, 4),
                "f1": {label: round(value, 4) for label, value in s.f1.items()},
                "confusion": {
                    gold: {pred: s.confusion.get((gold, pred), 0) for pred in s.labels}
                    for gold in s.labels
                },
            }
        fields[name] = entry
    return {
        "labelled_lines": evaluation.labelled,
        "readers": list(evaluation.readers),
        "fields": fields,
    }


def as_table(evaluation: Evaluation) -> list[str]:
    """Plain-text lines: one summary row per field, then a confusion table per field and reader."""
    readers = evaluation.readers
    head = f"{'field':<12} {'labelled':>8}" + "".join(
        f" {r + ' accuracy':>16} {r + ' macro-F1':>16}" for r in readers
    )
    lines = [head, "-" * len(head)]
    for name, by_reader in evaluation.scores.items():
        row = f"{name:<12} {next(iter(by_reader.values())).rows:>8}"
        for reader in readers:
            s = by_reader[reader]
            row += f" {s.accuracy:>16.3f} {s.macro_f1:>16.3f}"
        lines.append(row)
    for name, by_reader in evaluation.scores.items():
        for reader in readers:
            s = by_reader[reader]
            width = max(10, *(len(label) + 1 for label in s.labels))
            lines += ["", f"{name}, {reader}: rows = labelled, columns = read as"]
            lines.append(f"{'':<{width}}" + "".join(f"{label:>{width}}" for label in s.labels))
            for gold in s.labels:
                counts = "".join(f"{s.confusion.get((gold, p), 0):>{width}}" for p in s.labels)
                lines.append(f"{gold:<{width}}{counts}")
    return lines
