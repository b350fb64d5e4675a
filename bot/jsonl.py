"""Reading mentions from JSONL files: one object per line, errors by line number."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bot.models import Mention


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


def read_mentions(path: Path) -> Iterator[tuple[int, Mention | BadLine]]:
    """Yield (line number, Mention or BadLine) for each non-blank line. Never raises on content."""
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
            try:
                yield number, Mention.model_validate(data)
            except ValidationError as exc:
                yield number, BadLine(number, _explain(exc))


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
