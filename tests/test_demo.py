"""The local demo as a first-time user sees it: piped at 80 columns, people by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from bot.demo import DEMO_NAMES, DEMO_USERS, sample_mentions
from handlers.console import audit_table, show_people

# The demo's one customer post that carries Slack markup on purpose (it shows that a tweet
# cannot ping anyone): a customer's words are shown exactly as posted.
CUSTOMER_MARKUP = "read this <@U0LEAD> my refund"
ECHO = re.compile(r"^(?P<who>.+\((?P<user>U0[A-Z0-9]+), [^)]*\))> (?P<line>/care .*)$")


def _demo(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )


@pytest.fixture(scope="module")
def script() -> subprocess.CompletedProcess[str]:
    return _demo("--script")


def test_script_exits_0_and_echoes_each_command_once_on_one_line(
    script: subprocess.CompletedProcess[str],
) -> None:
    assert script.returncode == 0, script.stderr
    lines = script.stdout.splitlines()
    echoes = [m for line in lines if (m := ECHO.match(line))]
    typed = [m["line"] for m in echoes]
    assert len(typed) == 9, typed
    # Two people may type the same words (both agents claim #1): one echo each, by name.
    assert len({m[0] for m in echoes}) == len(echoes)
    for command in set(typed):
        assert sum(line.endswith(f"> {command}") for line in lines) == typed.count(command)
    assert "/care reply 1 Sorry for the long wait, Maya." in typed[2]
    assert re.fullmatch(r"/care approve 1 [0-9a-f]{8}", typed[5])
    for echo in echoes:
        assert echo["who"].startswith(DEMO_USERS[echo["user"]].name + " (")


def test_script_shows_people_by_name_never_as_slack_markup(
    script: subprocess.CompletedProcess[str],
) -> None:
    out = script.stdout
    assert out.count("<@U") == out.count(CUSTOMER_MARKUP) == 1
    assert "<@W" not in out
    assert "Claimed by Jo" in out  # the card line and the thread note
    assert "Case #1 is already claimed by Jo." in out  # a refusal
    assert "Reply of case #1, by Jo, exactly as it would be posted" in out  # an answer
    assert "Approved by Morgan" in out
    # The terminal has no Approve button: only the code to type is offered.
    assert "click Approve" not in out
    assert re.search(r"type `/care approve 1 [0-9a-f]{8}`", out)


def test_script_cuts_nothing_at_80_columns(script: subprocess.CompletedProcess[str]) -> None:
    out = script.stdout
    assert "…" not in out
    assert not re.search(r"\d{4}-\d{2}-\d{0,2}…", out)
    table = out[out.index("Audit trail of case #1") :]
    assert re.search(r"^\s*1\s+\d{2}:\d{2}:\d{2}\s+socialcare\s+case\.created\s+ok", table, re.M)
    assert "refused: wrong state" in table and "refused: not allowed" in table
    assert all(len(line) <= 80 for line in table.splitlines())


def test_script_stats_count_the_sample_mentions(
    script: subprocess.CompletedProcess[str],
) -> None:
    found = re.search(r"Since [^:]+ \d\d:\d\d: (\d+) mentions", script.stdout)
    assert found, script.stdout[-2000:]
    # Samples are dated relative to now, the newest of Customer Care's about 16 minutes ago;
    # just after midnight (the demo's time zone) they still belong to yesterday.
    london = datetime.now(ZoneInfo("Europe/London"))
    if london - london.replace(hour=0, minute=0, second=0, microsecond=0) > timedelta(hours=2):
        assert int(found[1]) == 8  # every sample Customer Care owns


def test_samples_keep_their_spacing_and_the_newest_arrived_minutes_ago() -> None:
    now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    original = sample_mentions()
    moved = sample_mentions(now)
    assert max(m.created_at for m in moved) == now - timedelta(minutes=2)
    shifts = {b.created_at - a.created_at for a, b in zip(original, moved, strict=True)}
    assert len(shifts) == 1


def test_interactive_demo_shows_each_typed_line_once() -> None:
    result = _demo(stdin="/care claim 1\nas U0LEAD\nqueue\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("/care claim 1") == 1
    assert "Jo (U0AGENT1)> /care claim 1" in out
    assert "Morgan (U0LEAD)> queue" in out
    assert "Claimed by Jo" in out and "<@U0AGENT1>" not in out


def test_show_people_names_known_users_and_strips_markup_from_the_rest() -> None:
    text = "Claimed by <@U0AGENT1>; approved by <@W0OTHER|sam>; see <@U0GHOST>"
    assert show_people(text, DEMO_NAMES) == "Claimed by Jo; approved by sam; see U0GHOST"
    assert show_people(text) == "Claimed by U0AGENT1; approved by sam; see U0GHOST"
    assert show_people("no people here, <!channel> stays") == "no people here, <!channel> stays"


def test_audit_table_over_several_days_shows_a_short_date() -> None:
    rows: list[dict[str, object]] = [
        {
            "seq": n,
            "at": (
                datetime(2026, 12, 1, 23, 58, 30, tzinfo=UTC) + timedelta(minutes=n)
            ).isoformat(),
            "actor": actor,
            "action": "claim",
            "outcome": "ok",
            "case_id": 3,
            "text_hash": None,
        }
        for n, actor in ((1, "slack:U0AGENT1"), (2, "system:socialcare"))
    ]
    out = StringIO()
    Console(file=out, width=80).print(audit_table(rows, names=DEMO_NAMES))
    text = out.getvalue()
    assert "01 Dec 23:" in text and "02 Dec 00:" in text
    assert "Jo" in text and "socialcare" in text and "…" not in text
