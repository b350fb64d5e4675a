"""Config loading: the example file is valid, every problem is named by its key path."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args, get_origin

import pytest
from pydantic import BaseModel

from bot.cli import main
from bot.config import Config, Secrets, load_config, parse_config
from bot.errors import ConfigError
from tests.conftest import config_data

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"


def _keys(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(section, key) for every leaf key of the config schema."""
    found: list[tuple[str, str]] = []
    for name, field in model.model_fields.items():
        if name == "base_dir":
            continue
        annotation = field.annotation
        inner = get_args(annotation)[0] if get_origin(annotation) is list else annotation
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            found.extend(_keys(inner, f"{prefix}.{name}" if prefix else name))
        else:
            found.append((prefix, name))
    return found


def test_the_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.bot.brand == "Acme Air"
    assert config.default_department.id == "care"
    assert [d.id for d in config.departments] == ["care", "marketing"]


@pytest.mark.parametrize(("section", "key"), _keys(Config))
def test_the_example_config_documents_every_key(section: str, key: str) -> None:
    # Each key appears (set, or commented out as an option) with a comment saying what it does.
    pattern = re.compile(rf"^#? ?{re.escape(key)} = .*#", re.MULTILINE)
    assert pattern.search(EXAMPLE.read_text()), f"[{section}] {key} is not documented"


def test_database_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "socialcare.toml"
    path.parent.mkdir()
    path.write_text(EXAMPLE.read_text())
    assert load_config(path).database_path == path.parent.resolve() / "socialcare.db"


BAD_CASES = [
    ({"bot": {"brand": "A", "timezone": "Mars/Olympus"}}, "bot.timezone: unknown time zone"),
    ({"slack": {"mode": "carrier-pigeon"}}, "slack.mode: Input should be 'socket' or 'http'"),
    ({"server": {"port": 70000}}, "server.port:"),
    ({"digest": {"time": "9am"}}, "digest.time: '9am' is not a time"),
    ({"sla": {"business_days": ["mon", "funday"]}}, "sla.business_days: unknown day"),
    ({"sla": {"business_hours": "17:00-09:00"}}, "sla.business_hours: the start must be before"),
    ({"publish": {"dry_run": "yes please"}}, "publish.dry_run:"),
    ({"surprise": {}}, "surprise: unknown key"),
]


@pytest.mark.parametrize(("override", "expected"), BAD_CASES)
def test_each_problem_names_its_key_path(override: dict, expected: str, tmp_path: Path) -> None:  # type: ignore[type-arg]
    data = config_data()
    for section, values in override.items():
        data[section] = {**data.get(section, {}), **values} if isinstance(values, dict) else values
    with pytest.raises(ConfigError) as caught:
        parse_config(data, base_dir=tmp_path)
    assert any(problem.startswith(expected) for problem in caught.value.problems), (
        caught.value.problems
    )


def test_department_problems_are_all_reported_together(tmp_path: Path) -> None:
    data = config_data()
    data["departments"][0]["intents"] = ["complaint", "gossip"]
    data["departments"][0]["manager"] = ["U0LEAD"]  # typo for managers
    data["departments"][1]["id"] = "Has Spaces"
    with pytest.raises(ConfigError) as caught:
        parse_config(data, base_dir=tmp_path)
    problems = caught.value.problems
    assert any(p.startswith("departments[0].intents[1]:") for p in problems)
    assert any(p.startswith("departments[0].manager: unknown key") for p in problems)
    assert any(p.startswith("departments[1].id:") for p in problems)


def test_duplicate_departments_and_two_defaults_are_refused(tmp_path: Path) -> None:
    data = config_data()
    data["departments"][1]["id"] = "care"
    data["departments"][1]["default"] = True
    with pytest.raises(ConfigError) as caught:
        parse_config(data, base_dir=tmp_path)
    assert caught.value.problems == [
        "departments[1].id: duplicate id 'care': departments[0] has it too",
        "departments[1].default: only one department may have default = true"
        " (departments[0] has it)",
    ]


def test_a_token_pasted_into_the_file_is_refused(tmp_path: Path) -> None:
    data = config_data()
    data["slack"]["admins"] = ["U0ADMIN"]
    data["bot"]["brand"] = "xoxb-0000-fake-token"
    with pytest.raises(ConfigError) as caught:
        parse_config(data, base_dir=tmp_path)
    assert caught.value.problems == [
        "bot.brand: looks like a Slack bot token; secrets go in the environment"
        " (SLACK_BOT_TOKEN), never in the config file"
    ]


def test_check_config_exits_2_with_one_line_per_problem(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.toml"
    path.write_text(
        '[bot]\nbrand = "Acme"\ntimezone = "Nowhere/Land"\n'
        '[[departments]]\nid = "care"\nname = "Care"\nslack_channel = "C1"\nmanagers = ["bob"]\n'
        '[slack]\nmode = "telepathy"\n'
    )
    assert main(["check-config", "-c", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3
    assert err[0].startswith("config error: bot.timezone:")
    assert any("departments[0].managers[0]" in line for line in err)
    assert any("slack.mode" in line for line in err)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "config file not found"),
        ("[bot\nbrand=", "invalid TOML"),
        ("[bot]\n", "bot.brand: required key is missing"),
    ],
)
def test_unreadable_configs_exit_2(
    tmp_path: Path, capsys, content: str | None, expected: str
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "socialcare.toml"
    if content is not None:
        path.write_text(content)
    assert main(["check-config", "-c", str(path)]) == 2
    assert expected in capsys.readouterr().err


def test_config_path_falls_back_to_env_then_cwd(tmp_path: Path) -> None:
    (tmp_path / "socialcare.toml").write_text(EXAMPLE.read_text())
    env_path = tmp_path / "other.toml"
    env_path.write_text(EXAMPLE.read_text().replace('brand = "Acme Air"', 'brand = "Env Air"'))
    run = [sys.executable, "-m", "bot", "check-config"]
    from_cwd = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, env=_env())
    assert from_cwd.returncode == 0 and "Acme Air" in from_cwd.stdout
    from_env = subprocess.run(
        run,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**_env(), "SOCIALCARE_CONFIG": str(env_path)},
    )
    assert from_env.returncode == 0 and "Env Air" in from_env.stdout


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "SOCIALCARE_CONFIG"}


def test_secrets_come_from_env_and_never_show_in_repr() -> None:
    secrets = Secrets.from_env(
        {"SLACK_BOT_TOKEN": "xoxb-test-not-real", "X_API_URL": "http://127.0.0.1:9"}
    )
    assert secrets.slack_bot_token == "xoxb-test-not-real"
    assert "xoxb-test-not-real" not in repr(secrets)
    assert secrets.values() == ["xoxb-test-not-real"]


def test_every_environment_variable_of_the_interface_is_read() -> None:
    names = [
        "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "X_BEARER_TOKEN",
        "X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET",
        "OPENAI_API_KEY", "TEAMS_APP_ID", "TEAMS_APP_PASSWORD", "TEAMS_TENANT_ID",
        "SLACK_API_URL", "X_API_URL", "OPENAI_BASE_URL",
    ]  # fmt: skip
    secrets = Secrets.from_env({name: f"value-of-{name.lower()}" for name in names})
    for name in names:
        assert getattr(secrets, name.lower()) == f"value-of-{name.lower()}"
    readme = (ROOT / "README.md").read_text()
    assert all(name in readme for name in names)


def test_the_interface_contract_example_is_valid() -> None:
    config = load_config(ROOT / "tests" / "data" / "interface_example.toml")
    assert [d.id for d in config.departments] == ["care", "marketing"]
    assert config.slack.mode == "socket" and config.publish.allow_self_approval is False
