"""Issue 9: check-config reports every problem at once, each with its key path, and a
secret pasted into the file is named (never shown) wherever it is and whatever its shape."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import Secrets, load_config, missing_environment, parse_config
from bot.errors import ConfigError
from tests.conftest import config_data

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"

SLACK_TOKEN = "xoxb-2718281828-3141592653-fakeTokenNotReal"

SIX_PROBLEMS = f"""
[bot]
brand = "Acme Air"
timezone = "Mars/Olympus"

[server]
port = "eighty"

[slack]
admins = ["U0ADMIN"]

[[departments]]
id = "care"
name = "{SLACK_TOKEN}"
slack_channel = "C0CARE"
manager = ["U0LEAD"]
default = true

[[departments]]
id = "care"
name = "Marketing"
slack_channel = "#marketing"
"""


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, base_dir=Path("."))
    return caught.value.problems


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "SOCIALCARE_CONFIG"}


def test_six_problems_give_six_lines_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "socialcare.toml"
    path.write_text(SIX_PROBLEMS)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    # In file order, each on its own line with its key path.
    assert [line.split(": ")[0] for line in lines] == [
        "config error",
    ] * 6, lines
    paths = [line.removeprefix("config error: ").split(": ")[0] for line in lines]
    assert paths == [
        "bot.timezone",
        "server.port",
        "departments[0].name",
        "departments[0].manager",
        "departments[1].id",
        "departments[1].slack_channel",
    ]
    assert "looks like a Slack bot token" in lines[2] and "SLACK_BOT_TOKEN" in lines[2]
    assert "unknown key" in lines[3]
    assert "duplicate id 'care'" in lines[4]
    assert SLACK_TOKEN not in result.stderr + result.stdout
    assert "(top level)" not in result.stderr


# Every shape a secret comes in; none of them is real.
SECRETS = {
    "slack bot": ("xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp", "SLACK_BOT_TOKEN"),
    "slack user": ("xoxp-1234567890-0987654321-AbCdEfGhIjKlMnOp", "SLACK_BOT_TOKEN"),
    "slack app (legacy)": ("xoxa-2-1234567890-AbCdEfGhIjKl", "SLACK_BOT_TOKEN"),
    "slack refresh": ("xoxe-1-My0xLTEyMzQ1Njc4OTAtQWJjZGVm", "SLACK_BOT_TOKEN"),
    "slack session": ("xoxs-1234567890-AbCdEfGhIjKl", "SLACK_BOT_TOKEN"),
    "slack app-level": ("xapp-1-A0123456789-1234567890123-abcdef0123456789", "SLACK_APP_TOKEN"),
    "x bearer": (
        "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76",
        "X_BEARER_TOKEN",
    ),
    "openai": ("sk-AbCdEfGh0123456789AbCdEfGh0123456789AbCdEfGh", "OPENAI_API_KEY"),
    "openai project": ("sk-proj-AbCdEf0123456789_AbCdEf-0123456789", "OPENAI_API_KEY"),
    "jwt": (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        None,
    ),
    "hex": ("8f14e45fceea167a5a36dedd4bea2543", None),
    "base64": ("Q2FyZURlc2tTZWNyZXRLZXkxMjM0NTY3ODkwYWJjZGVm+/Zz==", None),
}


def _with_secret(where: str, secret: str) -> dict[str, Any]:
    data = config_data()
    if where == "bot.brand":  # a top-level string
        data["bot"]["brand"] = secret
    elif where == "slack.admins[1]":  # a string inside a list
        data["slack"]["admins"] = ["U0ADMIN", secret]
    elif where == "departments[0].name":  # a string in an array of tables
        data["departments"][0]["name"] = secret
    elif where == "departments[1].keywords[0]":  # inside a list inside an array of tables
        data["departments"][1]["keywords"] = [f"my key is {secret} ok"]
    return data


@pytest.mark.parametrize(
    "where", ["bot.brand", "slack.admins[1]", "departments[0].name", "departments[1].keywords[0]"]
)
@pytest.mark.parametrize("shape", list(SECRETS))
def test_a_pasted_secret_is_named_by_key_and_never_shown(
    shape: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret, variable = SECRETS[shape]
    problems = _problems(_with_secret(where, secret))
    mine = [p for p in problems if p.startswith(f"{where}: looks like ")]
    assert len(mine) == 1, problems
    assert f"secrets go in the environment ({variable or ''}" in mine[0]
    assert mine[0].endswith("never in the config file")
    # Nothing else is said about that key (a pattern mismatch would only be noise).
    assert [p for p in problems if p.startswith(f"{where}:")] == mine
    assert all(secret not in p and secret.lower() not in p.lower() for p in problems)


def test_the_secret_never_reaches_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "socialcare.toml"
    for secret, _ in SECRETS.values():
        text = EXAMPLE.read_text()
        text = text.replace('brand = "Acme Air"', f'brand = "{secret}"')
        text = text.replace('admins = ["U0ADMIN"]', f'admins = ["U0ADMIN", "{secret}"]')
        text = text.replace('name = "Customer Care"', f'name = "{secret}"')
        path.write_text(text)
        assert main(["check-config", "-c", str(path)]) == 2
        out, err = capsys.readouterr()
        assert secret not in out + err
        lines = err.strip().splitlines()
        assert [line.split(": ")[1] for line in lines] == [
            "bot.brand",
            "slack.admins[1]",
            "departments[0].name",
        ], lines


def test_a_secret_quoted_by_another_message_is_blanked() -> None:
    # business_days lowercases the value and names the unknown days: the secret must not leak.
    data = config_data(sla={"business_days": ["mon", "xoxb-1234-ABCDEF-Secret"]})
    problems = _problems(data)
    assert any(p.startswith("sla.business_days[1]: looks like a Slack bot token") for p in problems)
    assert all("abcdef-secret" not in p.lower() for p in problems), problems


def test_a_database_url_with_a_password_is_refused() -> None:
    data = config_data()
    data["bot"]["database"] = "postgresql://care:hunter2hunter2@db.internal:5432/care"
    problems = _problems(data)
    assert problems == [
        "bot.database: looks like a URL with a password; secrets go in the environment"
        " (DATABASE_URL), never in the config file"
    ]


@pytest.mark.parametrize(
    ("section", "values"),
    [
        ("brand", {"voice": "Customer-Care-And-Complaints-Resolution-Team voice, warm and kind"}),
        ("brand", {"sign_off": "xoxo, the Acme Air team", "dos": ["use the task-list first"]}),
        ("brand", {"forbidden_phrases": ["guarantee", "see https://acme.example/help/faq"]}),
        ("bot", {"brand": "Acme", "database": "/srv/app2/Socialcare/Production/Data/care.db"}),
        ("bot", {"brand": "Acme", "database": "postgresql://care@db.internal:5432/care"}),
        ("teams", {"admins": ["3f2504e0-4f89-11d3-9a0c-0305e82c3301"]}),
        ("sources", {"x": {"enabled": True, "user_id": "1234567890123456789"}}),
    ],
)
def test_ordinary_long_text_ids_and_paths_are_not_taken_for_secrets(
    section: str, values: dict[str, Any], tmp_path: Path
) -> None:
    parse_config(config_data(**{section: values}), base_dir=tmp_path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["departments"][1].update(id="care"),
            "departments[1].id: duplicate id 'care': departments[0] has it too",
        ),
        (
            lambda d: d["departments"][1].update(default=True),
            "departments[1].default: only one department may have default = true",
        ),
        (
            lambda d: d["departments"][1].pop("slack_channel"),
            "departments[1].slack_channel: required while [slack] enabled = true",
        ),
        (
            lambda d: d.update(sources={"x": {"enabled": True}}),
            "sources.x.user_id: required while [sources.x] enabled = true, unless queries",
        ),
    ],
)
def test_cross_field_problems_name_their_key(change: Any, expected: str) -> None:
    data = config_data()
    change(data)
    problems = _problems(data)
    assert any(p.startswith(expected) for p in problems), problems
    assert not any("(top level)" in p for p in problems)


def test_cross_field_problems_show_even_when_fields_are_invalid() -> None:
    # pydantic skips a model validator once any field fails; these checks must not be skipped.
    data = config_data(sources={"x": {"enabled": True}})
    data["bot"]["timezone"] = "Mars/Olympus"
    data["departments"][0]["slack_channel"] = "#care"  # invalid: a name, not an ID
    data["departments"][1].update(id="care", default=True)
    data["departments"][1].pop("slack_channel")
    problems = _problems(data)
    assert [p.split(":")[0] for p in problems] == [
        "bot.timezone",
        "departments[0].slack_channel",
        "departments[1].slack_channel",  # a missing key sorts with its table
        "departments[1].id",
        "departments[1].default",
        "sources.x.user_id",
    ]


def test_values_of_the_wrong_type_do_not_break_the_cross_field_checks() -> None:
    data = config_data(slack="yes", sources={"x": []})
    data["departments"].append("not a table")
    data["departments"][0]["id"] = 7
    problems = _problems(data)
    assert any(p.startswith("slack:") for p in problems)
    assert any(p.startswith("departments[2]:") for p in problems)
    assert any(p.startswith("departments[0].id:") for p in problems)


def test_each_missing_variable_is_listed_once() -> None:
    config = load_config(EXAMPLE)  # Slack on (socket mode), X source on, dry_run = false
    lines = missing_environment(config, Secrets.from_env({"X_ACCESS_TOKEN": "set-here"}))
    assert lines == [
        "slack.enabled: SLACK_BOT_TOKEN is not set (needed by [slack] enabled = true)",
        'slack.mode: SLACK_APP_TOKEN is not set (needed by [slack] mode = "socket")',
        "sources.x: X_BEARER_TOKEN is not set (needed by [sources.x] enabled = true"
        " and [publish] dry_run = false)",
        "publish: X_CONSUMER_KEY is not set (needed by [publish] dry_run = false)",
        "publish: X_CONSUMER_SECRET is not set (needed by [publish] dry_run = false)",
        "publish: X_ACCESS_TOKEN_SECRET is not set (needed by [publish] dry_run = false)",
    ]


def test_nothing_is_missing_when_nothing_is_needed(tmp_path: Path) -> None:
    config = parse_config(
        config_data(slack={"enabled": False}, publish={"dry_run": True}), base_dir=tmp_path
    )
    assert missing_environment(config, Secrets()) == []


def test_the_example_configs_have_no_problems() -> None:
    load_config(EXAMPLE)
    load_config(ROOT / "tests" / "data" / "interface_example.toml")


def test_a_very_short_password_does_not_mangle_the_other_messages() -> None:
    data = config_data()
    data["bot"]["database"] = "postgresql://u:e@db/care"
    data["bot"]["timezone"] = "Europe/Nowhere"
    database, timezone = _problems(data)  # file order: database comes first in config_data
    assert database.startswith("bot.database: looks like a URL with a password")
    assert timezone.startswith("bot.timezone: unknown time zone 'Europe/Nowhere'")
