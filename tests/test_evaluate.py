"""`socialcare eval`: figures on labelled mentions, for the offline classifier and the LLM
(through the real openai SDK against the fake server), bad lines like `ingest`'s, and the
same figures as bench/bench_classifier.py on the same rows."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from tests.fakes.openai import FakeOpenAI, start_fake_openai
from tests.test_ai import good_answer

BENCH = Path(__file__).resolve().parents[1] / "bench"
CONFIG = """\
[bot]
brand = "Acme Air"
database = "care.db"

[slack]
enabled = false

[[departments]]
id = "care"
name = "Customer Care"
default = true

[publish]
dry_run = true
"""
LLM_ON = """
[llm]
enabled = true
model = "eval-model"
timeout_seconds = 2
max_retries = 0
max_concurrency = 1
"""


def line(text: str, n: int, **labels: Any) -> str:
    return json.dumps(
        {
            "network": "x",
            "id": str(n),
            "author_id": f"a{n}",
            "author_handle": f"user{n}",
            "author_name": f"User {n}",
            "text": text,
            "created_at": "2026-11-20T09:00:00Z",
            **labels,
        }
    )


# The offline classifier reads these as (intent, sentiment, needs_reply):
#   1 complaint, negative, yes   2 spam, neutral, no   3 praise, positive, no
#   4 question, neutral, yes     5 complaint, negative, yes
LABELLED = [
    line(
        "@AcmeAir my flight was delayed 3 hours, I want a refund",
        1,
        intent="complaint",
        sentiment="negative",
        needs_reply=True,
    ),
    line("Follow me for a free crypto giveaway, click here", 2, intent="spam", sentiment="neutral"),
    line("@AcmeAir thanks, great flight today!", 3, sentiment="positive", needs_reply=False),
    line(
        "@AcmeAir can I bring my guitar on board?",
        4,
        intent="question",
        sentiment="negative",
        needs_reply=True,
    ),
    line(
        "@AcmeAir the new lounge is nice but the coffee is awful",
        5,
        intent="suggestion",
        sentiment="positive",
    ),
]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "socialcare.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(LABELLED) + "\n")
    return path


@pytest.fixture(autouse=True)
def no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def run_eval(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["eval", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_figures_on_a_tiny_file_match_a_hand_count(
    capsys: pytest.CaptureFixture[str], config: Path, labelled: Path
) -> None:
    code, out, err = run_eval(capsys, str(labelled), "-c", str(config), "--format", "json")
    assert code == 0, err
    fields = json.loads(out)["fields"]
    # sentiment: gold neg neu pos neg pos, read neg neu pos neu neg -> 3 of 5 right.
    # F1 negative: P 1/2, R 1/2 -> 0.5; neutral: P 1/2, R 1 -> 2/3; positive: P 1, R 1/2 -> 2/3.
    assert fields["sentiment"]["labelled"] == 5
    assert fields["sentiment"]["offline"]["accuracy"] == 0.6
    assert fields["sentiment"]["offline"]["macro_f1"] == round((0.5 + 2 / 3 + 2 / 3) / 3, 4)
    assert fields["sentiment"]["offline"]["confusion"]["negative"] == {
        "negative": 1,
        "neutral": 1,
        "positive": 0,
    }
    # intent (lines 1, 2, 4, 5): gold complaint spam question suggestion, read complaint spam
    # question complaint -> 3 of 4; F1 complaint 2/3, question 1, spam 1, suggestion 0.
    assert fields["intent"]["labelled"] == 4
    assert fields["intent"]["offline"]["accuracy"] == 0.75
    assert fields["intent"]["offline"]["macro_f1"] == round((2 / 3 + 1 + 1 + 0) / 4, 4)
    # needs_reply (lines 1, 3, 4): all three right.
    assert fields["needs_reply"]["labelled"] == 3
    assert fields["needs_reply"]["offline"]["accuracy"] == 1.0
    assert (config.parent / "care.db").exists() is False  # no side effects on the database


def test_the_table_shows_each_field_and_a_confusion_table(
    capsys: pytest.CaptureFixture[str], config: Path, labelled: Path
) -> None:
    code, out, _ = run_eval(capsys, str(labelled), "-c", str(config))
    assert code == 0
    assert "5 labelled mentions, 0 bad lines" in out
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if ln.split()}
    assert rows["sentiment"] == ["5", "0.600", "0.611"]
    assert rows["intent"] == ["4", "0.750", "0.667"]
    assert rows["needs_reply"] == ["3", "1.000", "1.000"]
    assert "sentiment, offline: rows = labelled, columns = read as" in out
    assert "suggestion" in out.split("intent, offline:")[1]


def test_bad_lines_are_reported_by_number_and_the_rest_is_scored(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            [
                LABELLED[0],
                "{not json",
                line("@AcmeAir hello", 7, intent="world domination"),
                line("@AcmeAir hello", 8),  # no label
                json.dumps({"network": "x", "id": "9", "sentiment": "neutral"}),  # no text
                line("@AcmeAir hello", 10, needs_reply="yes"),
                LABELLED[2],
            ]
        )
        + "\n"
    )
    code, out, err = run_eval(capsys, str(path), "-c", str(config))
    assert code == 1
    problems = err.splitlines()
    assert [p.split(": ")[0] for p in problems] == [f"{path}:{n}" for n in (2, 3, 4, 5, 6)]
    assert "invalid JSON" in problems[0]
    assert "intent: must be one of complaint" in problems[1]
    assert "no label" in problems[2]
    assert "text: missing" in problems[3]
    assert "needs_reply: must be true or false" in problems[4]
    assert "2 labelled mentions, 5 bad lines" in out
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if ln.split()}
    assert rows["sentiment"] == ["2", "1.000", "1.000"]


@pytest.mark.parametrize("problem", ["missing", "directory"])
def test_a_missing_file_is_bad_usage(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path, problem: str
) -> None:
    target = tmp_path / "nope.jsonl" if problem == "missing" else tmp_path
    code, out, err = run_eval(capsys, str(target), "-c", str(config))
    assert code == 2
    assert out == "" and err.startswith("error: ") and len(err.splitlines()) == 1


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with start_fake_openai() as server:
        yield server


def test_with_llm_on_both_readers_are_shown_side_by_side(
    capsys: pytest.CaptureFixture[str],
    config: Path,
    labelled: Path,
    fake: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config.write_text(CONFIG + LLM_ON)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-real")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    fake.reply_text("{broken")  # line 1's call fails: read as offline, like the bot does
    fake.set_responder(lambda body: json.dumps(good_answer()))  # complaint, negative, reply
    code, out, err = run_eval(capsys, str(labelled), "-c", str(config), "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["readers"] == ["offline", "llm"]
    assert result["llm"] == {
        "model": "eval-model",
        "calls": 5,
        "fallbacks": 1,
        "failures": {"ValidationError": 1},
    }
    assert len(fake.requests) == 5
    assert all(r["response_format"]["json_schema"]["name"] == "LLMAnswer" for r in fake.requests)
    fields = result["fields"]
    # The LLM read every line as a negative complaint needing a reply (line 1 offline: the same).
    assert fields["sentiment"]["llm"]["accuracy"] == 0.4  # lines 1 and 4
    assert fields["intent"]["llm"]["accuracy"] == 0.25  # line 1
    assert fields["needs_reply"]["llm"]["accuracy"] == round(2 / 3, 4)
    assert fields["sentiment"]["offline"]["accuracy"] == 0.6  # unchanged beside it

    fake.reply_text("{broken")
    code, out, _ = run_eval(capsys, str(labelled), "-c", str(config))
    assert "llm: model eval-model, 5 calls, 1 failed (read as offline): ValidationError x1" in out
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if ln.split()}
    # The LLM's sentiment F1: negative P 2/5, R 1 -> 4/7; neutral and positive 0.
    assert rows["sentiment"] == ["5", "0.600", "0.611", "0.400", f"{4 / 7 / 3:.3f}"]
    assert "field        labelled offline accuracy offline macro-F1     llm accuracy" in out


def write_airline_csv(path: Path) -> None:
    """A few rows in the Kaggle file's layout, odd and even tweet ids, every label."""
    rows = [
        (101, "negative", "Late Flight", "my flight is 3 hours late, again. awful"),
        (103, "positive", "", "thanks for the upgrade, lovely crew!"),
        (105, "neutral", "", "what time does boarding start for the 6pm to Boston?"),
        (107, "negative", "Lost Luggage", "you lost my bag and nobody answers the phone"),
        (109, "positive", "", "great flight, smooth landing"),
        (111, "neutral", "", "flying to Denver tomorrow"),
        (113, "negative", "", "worst airline ever, never again"),
        (115, "positive", "", "I hate that I love your snacks"),
        (102, "negative", "", "cancelled flight, no help at all"),
        (104, "positive", "", "best crew ever"),
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            ["tweet_id", "airline_sentiment", "negativereason", "name", "text", "tweet_created"]
        )
        for tweet_id, label, reason, text in rows:
            out.writerow(
                [
                    tweet_id,
                    label,
                    reason,
                    f"flyer {tweet_id}",
                    f"@AcmeAir {text}",
                    "2015-02-24 11:35:52 -0800",
                ]
            )


def test_eval_on_the_held_out_half_equals_bench_classifier(
    capsys: pytest.CaptureFixture[str],
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import airline_to_jsonl
    import bench_classifier

    data = tmp_path / "tweets.csv"
    write_airline_csv(data)
    held_out = tmp_path / "held.jsonl"
    assert airline_to_jsonl.main(["--data", str(data), "--held-out", "-o", str(held_out)]) == 0
    code, out, err = run_eval(capsys, str(held_out), "-c", str(config), "--format", "json")
    assert code == 0, err
    ours = json.loads(out)["fields"]["sentiment"]

    rows = [r for r in bench_classifier.load_rows(data) if r.held_out]
    run = bench_classifier.run_socialcare(rows)
    assert run.predictions is not None
    bench = bench_classifier.scores(rows, run.predictions)
    assert ours["labelled"] == bench["rows"] == 8
    assert ours["offline"]["accuracy"] == round(bench["accuracy"], 4)
    assert ours["offline"]["macro_f1"] == round(bench["macro_f1"], 4)
    assert 0 < bench["accuracy"] < 1  # a sample that tells right from wrong
    assert ours["offline"]["confusion"]["negative"]["positive"] == bench["negative_read_positive"]
