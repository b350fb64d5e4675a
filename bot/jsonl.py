"""Reading mentions from JSONL files: one object per line, errors by line number."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.config import SourcesSection
from bot.models import NETWORK_NAMES, Mention
from bot.reports import format_duration

# The networks the bot has a source for: one `[sources.NAME]` section each, so a network
# is accepted here as soon as its source's config section exists; and the networks of
# the contract (facebook, instagram) whose source sections may come later.
SOURCE_NETWORKS: tuple[str, ...] = tuple(
    dict.fromkeys([*SourcesSection.model_fields, *NETWORK_NAMES])
)
# Clocks drift; further ahead than this, the producer's clock (or time zone) is wrong.
MAX_CLOCK_AHEAD = timedelta(minutes=5)


@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "record"
        message = (
            "missing" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
        )
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def _unfit(mention: Mention, now: datetime | None) -> str | None:
    """Why a well-formed mention still cannot be taken in, if it cannot."""
    if mention.network not in SOURCE_NETWORKS:
        return (
            f"network {mention.network!r} has no source in this bot;"
            f" accepted: {', '.join(SOURCE_NETWORKS)}"
        )
    if now is not None and mention.created_at - now > MAX_CLOCK_AHEAD:
        ahead = format_duration((mention.created_at - now).total_seconds())
        return f"created_at is {ahead} in the future; check the producer's clock"
    return None


def read_objects(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadLine]]:
    """Yield (line number, JSON object or BadLine) for each non-blank line; never raises on
    content. The first half of read_mentions(), for readers with fields of their own."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, BadLine(number, f"not UTF-8 (byte {exc.start})")
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, BadLine(number, f"invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(data, dict):
                yield number, BadLine(number, "expected a JSON object")
                continue
            yield number, data


def to_mention(number: int, data: dict[str, Any], now: datetime | None) -> Mention | BadLine:
    """The mention a decoded line holds, or why it holds none."""
    try:
        mention = Mention.model_validate(data)
    except ValidationError as exc:
        return BadLine(number, _explain(exc))
    problem = _unfit(mention, now)
    return BadLine(number, problem) if problem else mention


def read_mentions(
    path: Path, *, now: datetime | None = None
) -> Iterator[tuple[int, Mention | BadLine]]:
    """Yield (line number, Mention or BadLine) for each non-blank line. Never raises on content.

    `now` is the bot's clock: a `created_at` more than 5 minutes after it is a bad line.
    """
    for number, item in read_objects(path):
        yield number, item if isinstance(item, BadLine) else to_mention(number, item, now)


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
