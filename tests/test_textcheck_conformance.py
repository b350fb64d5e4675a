"""textcheck against upstream data: twitter-text's mention conformance cases and every RGI emoji."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.textcheck import extract_mentions, extract_mentions_or_lists, invisible_characters

# Vendored from twitter/twitter-text conformance/extract.yml (Apache-2.0); see its _source.
CASES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "twitter_text_mentions.json").read_text(encoding="utf-8")
)


def _cases(section: str) -> list[Any]:
    return [pytest.param(case, id=case["description"]) for case in CASES[section]]


@pytest.mark.parametrize("case", _cases("mentions"))
def test_mentions(case: dict[str, Any]) -> None:
    assert extract_mentions(case["text"]) == case["expected"]


@pytest.mark.parametrize("case", _cases("mentions_with_indices"))
def test_mentions_with_indices(case: dict[str, Any]) -> None:
    found = [m for m in extract_mentions_or_lists(case["text"]) if not m.list_slug]
    assert [{"screen_name": m.screen_name, "indices": [m.start, m.end]} for m in found] == case[
        "expected"
    ]


@pytest.mark.parametrize("case", _cases("mentions_or_lists_with_indices"))
def test_mentions_or_lists_with_indices(case: dict[str, Any]) -> None:
    assert [
        {"screen_name": m.screen_name, "list_slug": m.list_slug, "indices": [m.start, m.end]}
        for m in extract_mentions_or_lists(case["text"])
    ] == case["expected"]


def _emoji_test_sequences() -> list[str]:
    """Every sequence in the emoji-test.txt shipped with twitter-text-parser (Unicode's list)."""
    import twitter_text

    path = Path(twitter_text.__file__).parent / "regexp" / "emoji-test.txt"
    sequences = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and ";" in line:
            code_points = line.split(";")[0].split()
            sequences.append("".join(chr(int(cp, 16)) for cp in code_points))
    return sequences


def test_no_emoji_in_unicodes_test_list_counts_as_hidden() -> None:
    sequences = _emoji_test_sequences()
    assert len(sequences) > 3000 and any("\u200d" in s for s in sequences)
    assert {s: invisible_characters(f"hi {s}!") for s in sequences if invisible_characters(s)} == {}
