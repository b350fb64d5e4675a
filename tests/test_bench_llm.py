"""bench/bench_llm.py on a handful of airline-shaped rows: it runs, its checks pass, and the
one-call path beats the two-call path on calls and tokens (the full figures are in README)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
TWEETS = [
    "@united my flight is 3 hours late and nobody tells us anything",
    "@united thanks, great crew today!",
    "@united can I bring my guitar on board?",
    "Follow me for a free crypto giveaway, click here",
    "@united you lost my bag, where is it?",
    "@united flying to Denver tomorrow",
]


def test_the_bench_compares_both_paths_on_the_same_mentions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "tweets.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["tweet_id", "airline_sentiment", "name", "text", "tweet_created"])
        for n, text in enumerate(TWEETS):
            out.writerow([1000 + n, "neutral", f"flyer{n}", text, "2015-02-24 11:35:52 -0800"])
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_llm

    assert bench_llm.main(["--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checks"] == {"ok": True, "problems": []}
    before, everything, built = report["results"]
    assert before["calls"] == {"reading": 6, "suggestions": 6, "total": 12}
    assert everything["calls"] == {"combined": 6, "total": 6}
    # spam, praise and chatter by the offline reading are not sent
    assert built["skipped_by_offline_reading"] == 3
    assert built["calls"] == {"combined": 3, "total": 3}
    assert everything["total_tokens"] < before["total_tokens"]
    assert report["goals"]["calls_per_mention_met"] and report["goals"]["token_ratio_met"]
