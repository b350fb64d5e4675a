"""`socialcare run` tells an operator the truth: refused credentials stop it with the
variable named, an unreachable Slack degrades it (and /healthz says so) without a 500 or
a traceback, and SIGTERM exits promptly even while a call hangs."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

from tests.fakes.openai import start_fake_openai
from tests.fakes.slack import FakeSlack, start_fake_slack
from tests.fakes.x import start_fake_x
from tests.test_ai import good_answer

SLACK_TOKEN = "xoxb-test-operator-not-real"
SIGNING_SECRET = "test-signing-secret-not-real"
BASE = """
[bot]
brand = "Acme Air"
database = "bot.db"

[server]
host = "127.0.0.1"
port = 0
unhealthy_after_seconds = 1

[[departments]]
id = "care"
name = "Customer Care"
slack_channel = "C0CARE"
members = ["U0AGENT1"]
managers = ["U0LEAD"]
"""
SLACK_ON = '\n[slack]\nenabled = true\nmode = "http"\n'
SLACK_OFF = "\n[slack]\nenabled = false\n"
DRY_RUN = "\n[publish]\ndry_run = true\n"
MENTION = {
    "network": "x",
    "id": "1",
    "author_id": "9",
    "author_handle": "maya",
    "text": "@AcmeAir my refund is three weeks late",
    "created_at": "2026-11-02T09:00:00Z",
}


class Bot:
    """One `socialcare run` subprocess; its stderr is collected as it arrives."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config, self.env = config, env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "-c", str(config)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_line(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r}; log:\n{self.log}")

    @property
    def port(self) -> int:
        return int(self.wait_line(r"running: http://127\.0\.0\.1:(\d+)").group(1))

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def slash(self, user: str, text: str) -> tuple[int, str]:
        body = urllib.parse.urlencode(
            {
                "command": "/care",
                "text": text,
                "user_id": user,
                "team_id": "T0ACME",
                "channel_id": "C0CARE",
                "trigger_id": f"t-{time.monotonic_ns()}",
                "response_url": "http://127.0.0.1:9/respond",
            }
        )
        ts = str(int(time.time()))
        signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/slack/events",
            data=body.encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": signature or "",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def stop(self) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._reader.join(5)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running(config: Path, env: dict[str, str]) -> Iterator[Bot]:
    bot = Bot(config, env)
    try:
        yield bot
    finally:
        bot.kill()


def until(condition: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


def write_config(tmp_path: Path, *parts: str) -> Path:
    path = tmp_path / "socialcare.toml"
    path.write_text(BASE + "".join(parts))
    return path


def slack_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": url,
    }


def run_to_exit(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


# ------------------------------------------------------------------ refused credentials


def test_a_slack_token_slack_refuses_stops_the_bot_naming_the_variable(tmp_path: Path) -> None:
    config = write_config(tmp_path, SLACK_ON, DRY_RUN)
    with start_fake_slack() as fake:
        fake.queue("auth.test", 200, {"ok": False, "error": "invalid_auth"})
        done = run_to_exit(config, slack_env(fake.api_url))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "SLACK_BOT_TOKEN" in line and "invalid_auth" in line
    assert SLACK_TOKEN not in done.stderr


def test_a_token_of_another_workspace_stops_the_bot(tmp_path: Path) -> None:
    pinned = SLACK_ON.replace('mode = "http"\n', 'mode = "http"\nteam_id = "T0OTHER"\n')
    config = write_config(tmp_path, pinned, DRY_RUN)
    with start_fake_slack() as fake:
        done = run_to_exit(config, slack_env(fake.api_url))
    assert done.returncode == 2
    assert "slack.team_id" in done.stderr and "T0OTHER" in done.stderr


X_SOURCE = '\n[sources.x]\nenabled = true\nuser_id = "{user_id}"\npoll_seconds = 60\n'
X_KEYS = {
    "X_BEARER_TOKEN": "test-bearer-not-real",
    "X_CONSUMER_KEY": "test-consumer-key",
    "X_CONSUMER_SECRET": "test-consumer-secret",
    "X_ACCESS_TOKEN": "100-test-access-token",
    "X_ACCESS_TOKEN_SECRET": "test-access-secret",
}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bearer refused", "X_BEARER_TOKEN: X refused the bearer token"),
        ("user context refused", "X refused the service credential"),
        ("another account", "but X_ACCESS_TOKEN belongs to @AcmeAir (id 100)"),
    ],
)
def test_x_credentials_are_checked_before_serving(tmp_path: Path, case: str, expected: str) -> None:
    user_id = "555" if case == "another account" else "100"
    config = write_config(tmp_path, SLACK_OFF, X_SOURCE.format(user_id=user_id))
    with start_fake_x(brand_user_id="100") as fake:
        fake.add_user("555", "someone", "Someone")
        if case == "bearer refused":
            fake.queue("GET", f"/2/users/{user_id}", 401)
        if case == "user context refused":
            fake.queue("GET", "/2/users/me", 401)
        done = run_to_exit(config, {**os.environ, **X_KEYS, "X_API_URL": fake.url})
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(secret in done.stderr for secret in X_KEYS.values())


def test_an_llm_key_the_endpoint_refuses_stops_the_bot(tmp_path: Path) -> None:
    config = write_config(tmp_path, SLACK_OFF, DRY_RUN, '\n[llm]\nenabled = true\nmodel = "m"\n')
    with start_fake_openai(api_key="the-right-key-not-real") as fake:
        env = {
            **os.environ,
            "OPENAI_API_KEY": "a-wrong-key-not-real",
            "OPENAI_BASE_URL": fake.base_url,
        }
        done = run_to_exit(config, env)
    assert done.returncode == 2
    assert "OPENAI_API_KEY" in done.stderr and "401" in done.stderr
    assert "a-wrong-key-not-real" not in done.stderr


def test_every_missing_variable_is_named_once(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, SLACK_ON, X_SOURCE.format(user_id="100"), "\n[publish]\ndry_run = false\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "X_"))}
    done = run_to_exit(config, env)
    assert done.returncode == 2
    for variable in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "X_BEARER_TOKEN", "X_ACCESS_TOKEN"):
        assert len(re.findall(rf"\b{variable}\b is not set", done.stderr)) == 1, variable


# ------------------------------------------------------------------ Slack unreachable


def test_an_unreachable_slack_degrades_health_and_commands_still_answer(tmp_path: Path) -> None:
    config = write_config(tmp_path, SLACK_ON, DRY_RUN)
    (tmp_path / "m.jsonl").write_text(json.dumps(MENTION) + "\n")
    fake = FakeSlack().start()
    port = fake.port
    fake.stop()  # Slack is gone: connections are refused
    with running(config, slack_env(f"http://127.0.0.1:{port}/api/")) as bot:
        bot.wait_line(r"slack is failing")
        assert bot.port  # it started anyway
        ingest = subprocess.run(
            [sys.executable, "-m", "bot", "ingest", str(tmp_path / "m.jsonl"), "-c", str(config)],
            capture_output=True,
            text=True,
            env=bot.env,
            timeout=60,
        )
        assert ingest.returncode == 0, ingest.stderr
        until(lambda: bot.get("/healthz")[0] == 503, what="/healthz 503")
        status, report = bot.get("/healthz")
        assert report["parts"]["slack"]["state"] == "failing"
        assert any(p.startswith("slack:") for p in report["problems"])

        status, answer = bot.slash("U0AGENT1", "queue")
        assert status == 200
        assert "Open cases: 1" in json.loads(answer)["text"]

        fake.start(port)  # Slack is back
        try:
            fake.wait_for("chat.postMessage", timeout=30)
            until(lambda: bot.get("/healthz")[0] == 200, what="/healthz 200 again")
            code, _ = bot.stop()
        finally:
            fake.stop()
    assert code == 0
    assert "Traceback" not in bot.log
    assert len(re.findall(r"slack is failing", bot.log)) == 1
    assert len(re.findall(r"slack recovered after", bot.log)) == 1
    assert SLACK_TOKEN not in bot.log


def test_metrics_show_each_dependency_up_and_its_last_success(tmp_path: Path) -> None:
    config = write_config(tmp_path, SLACK_ON, DRY_RUN)
    with start_fake_slack() as fake, running(config, slack_env(fake.api_url)) as bot:
        with urllib.request.urlopen(f"http://127.0.0.1:{bot.port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert 'socialcare_up{dependency="slack"} 1.0' in text
        assert 'socialcare_last_success_timestamp_seconds{dependency="slack"}' in text
        status, report = bot.get("/healthz")
        assert status == 200 and report["parts"]["slack"]["last_success"]
        assert bot.stop()[0] == 0


# ------------------------------------------------------------------ shutdown


def test_sigterm_during_a_hung_llm_call_exits_fast_and_the_work_is_redone(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path, SLACK_OFF, DRY_RUN, '\n[llm]\nenabled = true\nmodel = "m"\ntimeout_seconds = 60\n'
    )
    (tmp_path / "m.jsonl").write_text(json.dumps(MENTION) + "\n")
    with start_fake_openai() as fake:
        fake.set_responder(lambda body: json.dumps(good_answer()))
        env = {
            **os.environ,
            "OPENAI_API_KEY": "test-key-not-real",
            "OPENAI_BASE_URL": fake.base_url,
        }
        with running(config, env) as bot:
            assert bot.port
            fake.hang_next()  # the next LLM call gets no answer for as long as it waits
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bot",
                    "ingest",
                    str(tmp_path / "m.jsonl"),
                    "-c",
                    str(config),
                ],
                capture_output=True,
                env=env,
                timeout=60,
                check=True,
            )
            fake.wait_for(timeout=30)
            code, took = bot.stop()
        # The hung call would hold a naive shutdown for its whole 60 s timeout; the bot
        # gives up on it after its 4 s grace. The margin is for a loaded 2-core CI box
        # (speed itself is measured in benchmarks, not here).
        assert code == 0 and took < 20, (code, took, bot.log)

        with running(config, env) as again:
            assert again.port

            def suggested() -> bool:
                with sqlite3.connect(tmp_path / "bot.db") as db:
                    return bool(db.execute("SELECT count(*) FROM suggestions").fetchone()[0])

            until(suggested, what="the AI suggestion after the restart")
            assert again.stop()[0] == 0


def test_a_teams_password_the_login_refuses_stops_the_bot(tmp_path: Path) -> None:
    from tests.fakes.teams import BOT_APP_ID, CHANNEL_ID, TENANT_ID, FakeEntraLogin

    config = write_config(
        tmp_path,
        SLACK_OFF,
        DRY_RUN,
        "\n[teams]\nenabled = true\n",
    )
    config.write_text(
        config.read_text().replace(
            'slack_channel = "C0CARE"', f'slack_channel = "C0CARE"\nteams_channel = "{CHANNEL_ID}"'
        )
    )
    with FakeEntraLogin() as login:
        assert login.ca_file is not None
        env = {
            **os.environ,
            "TEAMS_APP_ID": BOT_APP_ID,
            "TEAMS_APP_PASSWORD": "a-wrong-password-not-real",
            "TEAMS_TENANT_ID": TENANT_ID,
            "TEAMS_LOGIN_URL": login.url,
            "REQUESTS_CA_BUNDLE": login.ca_file,
        }
        done = run_to_exit(config, env)
    assert done.returncode == 2, done.stderr
    assert "TEAMS_APP_PASSWORD" in done.stderr and "invalid_client" in done.stderr
    assert "a-wrong-password-not-real" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("case", "variable"),
    [("wrong app", "TEAMS_APP_ID"), ("wrong tenant", "TEAMS_TENANT_ID")],
)
def test_teams_ids_the_login_refuses_are_named(tmp_path: Path, case: str, variable: str) -> None:
    from tests.fakes.teams import BOT_APP_ID, CHANNEL_ID, CLIENT_SECRET, TENANT_ID, FakeEntraLogin

    config = write_config(tmp_path, SLACK_OFF, DRY_RUN, "\n[teams]\nenabled = true\n")
    config.write_text(
        config.read_text().replace(
            'slack_channel = "C0CARE"', f'slack_channel = "C0CARE"\nteams_channel = "{CHANNEL_ID}"'
        )
    )
    with FakeEntraLogin() as login:
        assert login.ca_file is not None
        env = {
            **os.environ,
            "TEAMS_APP_ID": "11111111-2222-4333-8444-555555555555"
            if case == "wrong app"
            else BOT_APP_ID,
            "TEAMS_APP_PASSWORD": CLIENT_SECRET,
            "TEAMS_TENANT_ID": "99999999-9999-4999-8999-999999999999"
            if case == "wrong tenant"
            else TENANT_ID,
            "TEAMS_LOGIN_URL": login.url,
            "REQUESTS_CA_BUNDLE": login.ca_file,
        }
        done = run_to_exit(config, env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"config error: {variable}:")
