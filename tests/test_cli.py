"""The command line as an operator uses it: ingest, classify, report, demo, help, exit codes."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from bot.commands import SUBCOMMANDS
from bot.jsonl import SOURCE_NETWORKS
from bot.models import NETWORK_NAMES

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


# A network the bot has no source for (every network it names has one since Meta's).
UNSOURCED = next((n for n in NETWORK_NAMES if n not in SOURCE_NETWORKS), "tiktok")
JSONL_FIELDS = [
    "network",
    "id",
    "author_id",
    "author_handle",
    "author_name",
    "text",
    "created_at",
    "in_reply_to_id",
    "conversation_id",
    "url",
    "author_followers",
    "author_verified",
    "lang",
]


def _ahead(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def test_ingest_refuses_networks_without_a_source_and_clocks_ahead(
    tmp_path: Path, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = tmp_path / "mentions.jsonl"
    jsonl.write_text(
        "\n".join(
            [
                line(1),
                line(2, network=UNSOURCED),
                line(3, network="X"),  # names are not case-sensitive
                line(4, created_at=_ahead(hours=3)),
                line(5, created_at=_ahead(minutes=2)),  # clocks drift a little
                line(6, network="myspace", created_at=_ahead(days=1)),
            ]
        )
        + "\n"
    )
    assert main(["ingest", str(jsonl), "-c", str(config_path)]) == 1
    out, err = capsys.readouterr()
    accepted = ", ".join(SOURCE_NETWORKS)
    assert err.splitlines() == [
        f"{jsonl}:2: network {UNSOURCED!r} has no source in this bot; accepted: {accepted}",
        f"{jsonl}:4: created_at is 3 h 00 min in the future; check the producer's clock",
        f"{jsonl}:6: network 'myspace' has no source in this bot; accepted: {accepted}",
    ]
    assert "3 new cases" in out and "3 bad lines" in out
    # classify reads the same way.
    assert main(["classify", str(jsonl), "-c", str(config_path)]) == 1
    out, err = capsys.readouterr()
    assert [json.loads(x)["id"] for x in out.splitlines()] == ["1", "3", "5"]
    assert [e.split(": ", 1)[0] for e in err.splitlines()] == [f"{jsonl}:{n}" for n in (2, 4, 6)]


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


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = (), listed: str | None = None
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """Every (sub)command, nested ones too: its words, its parser, its help in the list above."""
    yield path, parser, listed
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name), helps.get(name))


COMMANDS = [path for path, _, _ in _parsers(build_parser()) if path]


def _commands_section() -> str:
    """README.md's "## Commands" section, up to the next second-level heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Commands\n", 1)[1]
    return re.split(r"^## ", section, flags=re.MULTILINE)[0].replace("\\|", "|")


def test_every_command_has_a_description_and_every_argument_a_help_text() -> None:
    for path, parser, listed in _parsers(build_parser()):
        where = " ".join(("socialcare", *path))
        if path:
            assert listed and listed != argparse.SUPPRESS, f"{where}: no help line in its list"
            assert parser.description, f"{where}: no description"
        for action in parser._actions:
            name = "/".join(action.option_strings) or action.metavar or action.dest
            assert action.help and action.help != argparse.SUPPRESS, f"{where} {name}: no help"


def test_every_command_and_option_is_in_the_readme() -> None:
    section = _commands_section()
    for path, parser, _ in _parsers(build_parser()):
        where = " ".join(("socialcare", *path))
        assert where in section, f"{where} is missing from the README's Commands section"
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            for word in action.option_strings or [str(action.metavar)]:
                assert re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", section), (
                    f"{where} {word} is missing from the README's Commands section"
                )


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_working_help(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert f"usage: socialcare {' '.join(command)}" in capsys.readouterr().out


def test_ingest_help_lists_the_jsonl_fields(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    out = capsys.readouterr().out
    for field in JSONL_FIELDS:
        assert re.search(rf"^  {field} ", out, flags=re.MULTILINE), field
    assert f"network           {', '.join(SOURCE_NETWORKS)} " in out  # the epilog kept its layout


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
    err = capsys.readouterr().err
    assert "usage: socialcare audit verify" in err and "socialcare audit head" in err


def test_a_directory_is_not_a_jsonl_file(tmp_path: Path, config_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["ingest", str(tmp_path), "-c", str(config_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
