"""The command line as an operator uses it: ingest, classify, report, demo, help, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from bot.commands import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
[bot]
brand = "Acme Air"
database = "cli.db"
[slack]
enabled = false
[[departments]]
id = "care"
name = "Customer Care"
intents = ["complaint", "question"]
members = ["U0AGENT1"]
managers = ["U0LEAD"]
default = true
[[departments]]
id = "marketing"
name = "Marketing"
intents = ["praise"]
"""


def line(i: int, text: str = "my flight was delayed, refund please", **extra: object) -> str:
    record = {
        "network": "x",
        "id": str(i),
        "author_id": f"a{i}",
        "author_handle": f"user{i}",
        "text": text,
        "created_at": "2026-11-02T09:00:00Z",
        **extra,
    }
    return json.dumps(record)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "socialcare.toml"
    path.write_text(CONFIG)
    return path


def test_ingest_reports_bad_lines_by_number_and_keeps_the_good_ones(
    tmp_path: Path, config_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    jsonl = tmp_path / "mentions.jsonl"
    jsonl.write_bytes(
        "\n".join(
            [
                line(1),
                "{not json",
                line(2, text="Thanks for the lovely flight!"),
                json.dumps({"network": "x", "id": "3"}),
                "[1, 2]",
                "",
                line(4, created_at="yesterday"),
                line(5),
            ]
        ).encode()
        + b"\n\xff\xfe broken bytes\n"
        + line(1).encode()
        + b"\n"
    )
    assert main(["ingest", str(jsonl), "-c", str(config_path)]) == 1
    out, err = capsys.readouterr()
    errors = err.strip().splitlines()
    assert [re.match(r".*:(\d+): ", e).group(1) for e in errors] == ["2", "4", "5", "7", "9"]  # type: ignore[union-attr]
    assert "invalid JSON" in errors[0]
    assert "author_id: missing" in errors[1]
    assert "expected a JSON object" in errors[2]
    assert "created_at" in errors[3]
    assert "not UTF-8" in errors[4]
    assert "3 new cases" in out and "1 already stored" in out and "5 bad lines" in out
    # Running it again stores nothing twice.
    assert main(["ingest", str(jsonl), "-c", str(config_path)]) == 1
    assert "0 new cases" in capsys.readouterr().out


def test_ingest_of_a_missing_file_is_a_usage_error(config_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["ingest", "/nonexistent.jsonl", "-c", str(config_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_classify_prints_reading_and_routing_without_side_effects(
    tmp_path: Path, config_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    jsonl = tmp_path / "mentions.jsonl"
    jsonl.write_text(line(1) + "\n" + line(2, text="What a lovely crew, thank you!") + "\n")
    assert main(["classify", str(jsonl), "-c", str(config_path)]) == 0
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    fields = ["id", "intent", "sentiment", "priority", "needs_reply", "language", "department"]
    assert all(set(fields + ["reason"]) <= set(r) for r in records)
    assert [(r["id"], r["intent"], r["department"]) for r in records] == [
        ("1", "complaint", "care"),
        ("2", "praise", "marketing"),
    ]
    assert records[0]["needs_reply"] is True and records[1]["needs_reply"] is False
    assert not (tmp_path / "cli.db").exists(), "classify must not create or touch the database"
    assert main(["classify", str(jsonl), "-c", str(config_path), "--format", "table"]) == 0
    assert "marketing" in capsys.readouterr().out


def test_report_csv_matches_the_stored_cases(tmp_path: Path, config_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    jsonl = tmp_path / "mentions.jsonl"
    now = "2026-11-02T09:00:00Z"
    jsonl.write_text(
        "\n".join(
            [
                line(1, created_at=now),
                line(2, created_at=now),
                line(3, text="love it!", created_at=now),
            ]
        )
    )
    assert main(["ingest", str(jsonl), "-c", str(config_path)]) == 0
    capsys.readouterr()
    assert main(["report", "-c", str(config_path), "--since", "2026-11-01", "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("department,received,needs_reply,replied,dismissed,open")
    assert rows[1].startswith("care,2,2,0,0,2,0.0,")
    assert rows[2].startswith("marketing,1,0,0,0,1,,")
    assert main(["report", "-c", str(config_path), "--since", "last tuesday"]) == 2


def test_demo_script_publishes_once_and_shows_the_audit_trail() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--script"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    assert "Case #1 published once (dry run)" in result.stdout
    assert "Audit chain:" in result.stdout and "intact" in result.stdout
    assert "Only managers of Customer Care can approve" in result.stdout


def test_interactive_demo_accepts_commands_and_exits_on_eof() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        input="/care claim 2\nas U0NOBODY\nas U0MKT1\n/care claim 2\nqueue\ndigest\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown demo user" in result.stdout
    assert "You claimed case #2." in result.stdout
    assert "Open cases:" in result.stdout
    assert "Daily digest: Customer Care" in result.stdout


def _commands() -> list[list[str]]:
    parser = build_parser()
    found = []
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():  # type: ignore[union-attr]
            nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
            if nested:
                found.extend([[name, inner] for inner in nested[0].choices])  # type: ignore[union-attr]
            else:
                found.append([name])
    return found


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_every_command_has_help_and_is_in_the_readme(command: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: socialcare" in capsys.readouterr().out
    assert f"socialcare {' '.join(command)}" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("subcommand", list(SUBCOMMANDS))
def test_every_slash_subcommand_is_in_the_readme(subcommand: str) -> None:
    readme = (ROOT / "README.md").read_text().replace("\\|", "|")  # table cells escape pipes
    assert f"/care {subcommand}" in readme


def test_no_command_is_a_usage_error(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_runtime_failures_are_one_line_unless_debug(tmp_path: Path) -> None:
    (tmp_path / "cli.db").mkdir()  # the database path is a directory: SQLite cannot open it
    config = tmp_path / "socialcare.toml"
    config.write_text(CONFIG)
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(line(1) + "\n")
    run = [sys.executable, "-m", "bot", "ingest", str(jsonl), "-c", str(config)]
    plain = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 1
    assert plain.stderr.startswith("error: ") and len(plain.stderr.strip().splitlines()) == 1
    debug = subprocess.run([*run, "--debug"], capture_output=True, text=True, timeout=60)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_check_config_strict_fails_on_tokens_run_needs(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "X_BEARER_TOKEN", "X_CONSUMER_KEY"):
        monkeypatch.delenv(name, raising=False)
    example = ROOT / "config.example.toml"
    assert main(["check-config", "-c", str(example)]) == 0  # tokens are warnings by default
    assert "warning: slack.enabled: SLACK_BOT_TOKEN is not set" in capsys.readouterr().err
    assert main(["check-config", "--strict", "-c", str(example)]) == 2
    err = capsys.readouterr().err
    assert "config error: slack.enabled: SLACK_BOT_TOKEN is not set" in err
    assert "config error: sources.x: X_BEARER_TOKEN is not set" in err


def test_audit_without_an_action_is_bad_usage(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["audit"]) == 2
    assert "usage: socialcare audit verify" in capsys.readouterr().err


def test_a_directory_is_not_a_jsonl_file(tmp_path: Path, config_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["ingest", str(tmp_path), "-c", str(config_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
