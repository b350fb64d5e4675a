"""The app manifests in docs/ keep up with the commands and what the features need."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.commands import SUBCOMMANDS

DOCS = Path(__file__).resolve().parent.parent / "docs"
SLACK_MANIFESTS = ["slack-manifest.yaml", "slack-manifest-socket.yaml"]
SUBCOMMAND_NAMES = sorted({key.split()[0] for key in SUBCOMMANDS})


def _line(text: str, key: str) -> str:
    found = re.search(rf"^\s*{key}:\s*(.*)$", text, re.MULTILINE)
    assert found, key
    return found.group(1).strip().strip('"')


@pytest.mark.parametrize("name", SLACK_MANIFESTS)
def test_slack_usage_hint_names_every_subcommand(name: str) -> None:
    hint = _line((DOCS / name).read_text(encoding="utf-8"), "usage_hint")
    words = {part.split()[0] for part in hint.split("|") if part.strip()}
    assert set(SUBCOMMAND_NAMES) <= words, sorted(set(SUBCOMMAND_NAMES) - words)
    assert len(hint) <= 1000  # Slack's limit for a slash command's usage hint


@pytest.mark.parametrize("name", SLACK_MANIFESTS)
def test_slack_manifest_lets_the_bot_reach_people_in_its_messages_tab(name: str) -> None:
    """Stale-claim reminders and refusals without a channel go to the person's DM with the
    app (chat.postMessage to the user id): that needs the App Home messages tab."""
    text = (DOCS / name).read_text(encoding="utf-8")
    for scope in ("chat:write", "commands", "files:write"):
        assert re.search(rf"^\s*- {re.escape(scope)}\b", text, re.MULTILINE), scope
    assert _line(text, "messages_tab_enabled") == "true"
    assert _line(text, "messages_tab_read_only_enabled") == "true"


def test_teams_command_menu_is_valid_and_offers_the_desk_commands() -> None:
    manifest = json.loads((DOCS / "teams-manifest" / "manifest.json").read_text("utf-8"))
    (bot,) = manifest["bots"]
    for command_list in bot["commandLists"]:
        commands = command_list["commands"]
        assert len(commands) <= 10  # the Teams schema's limit per list
        titles = [c["title"] for c in commands]
        assert len(titles) == len(set(titles))
        for command in commands:
            assert len(command["title"]) <= 32 and len(command["description"]) <= 128
            word = command["title"].removeprefix("care ").split()[0]
            assert word in SUBCOMMAND_NAMES, command["title"]
        for wanted in ("care help", "care next", "care claim", "care reply", "care saved"):
            assert wanted in titles, wanted
