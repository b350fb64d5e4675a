"""An operator's first hour with Facebook/Instagram, the care desk and `socialcare eval`:
each mistake they are likely to make gets one true line (no traceback, no secret) and the
exit code of the contract. Real subprocesses against loopback fakes."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fakes.meta import APP_SECRET, IG_ACCOUNT_ID, PAGE_ID, TOKEN, start_fake_graph
from tests.fakes.openai import start_fake_openai
from tests.fakes.slack import start_fake_slack
from tests.test_operator import BASE, DRY_RUN, SLACK_OFF, running, write_config

META_ON = f"""
[sources.facebook]
enabled = true
page_id = "{PAGE_ID}"

[sources.instagram]
enabled = true
account_id = "{IG_ACCOUNT_ID}"
"""
VERIFY_TOKEN = "operator-verify-token-not-real"
OPENAI_KEY = "sk-operator-test-not-real"


def socialcare(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else dict(os.environ),
        timeout=120,
    )


def meta_env(graph_url: str, token: str = TOKEN) -> dict[str, str]:
    return {
        **os.environ,
        "META_GRAPH_URL": graph_url,
        "META_PAGE_ACCESS_TOKEN": token,
        "META_APP_SECRET": APP_SECRET,
        "META_VERIFY_TOKEN": VERIFY_TOKEN,
    }


def mention_line(network: str, ident: str, text: str, **extra: Any) -> str:
    at = datetime.now(UTC) - timedelta(hours=1)
    record = {
        "network": network,
        "id": ident,
        "author_id": f"a{ident}",
        "author_handle": f"user{ident}",
        "author_name": f"User {ident}",
        "text": text,
        "created_at": at.isoformat(),
        **extra,
    }
    return json.dumps(record) + "\n"


def post(port: int, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/meta/webhook", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


# ---------------------------------------------------------------- Facebook / Instagram


def test_a_refused_page_token_is_one_line_for_both_networks(tmp_path: Path) -> None:
    """The page's one token serves Facebook and Instagram: refused, it is one problem."""
    config = write_config(tmp_path, SLACK_OFF, DRY_RUN, META_ON)
    wrong = "EAAoperatorwrongtoken000000000notreal"
    with start_fake_graph() as graph:
        done = socialcare("run", "-c", str(config), env=meta_env(graph.url, token=wrong))
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("config error: META_PAGE_ACCESS_TOKEN: Meta refused")
    assert wrong not in done.stderr and APP_SECRET not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_dead_graph_api_starts_degraded_and_the_webhook_still_guards_its_door(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, SLACK_OFF, DRY_RUN, META_ON)
    with running(config, meta_env("http://127.0.0.1:9")) as bot:
        bot.wait_line(r"facebook is failing: cannot check the Graph API")
        port = bot.port
        status, health = bot.get("/healthz")
        assert health["parts"]["facebook"]["state"] == "failing"
        assert health["parts"]["instagram"]["state"] == "failing"
        assert "no answer" in health["parts"]["facebook"]["last_error"]
        assert post(port, b'{"object": "page"}', {}) == 401
        bad = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
        assert post(port, b'{"object": "page"}', bad) == 403
        assert post(port, b"a" * (2 * 1024 * 1024), bad) == 413
        code, seconds = bot.stop()
    assert code == 0 and seconds < 30
    assert "Traceback" not in bot.log and TOKEN not in bot.log
    with sqlite3.connect(tmp_path / "bot.db") as db:
        [(stored,)] = db.execute("SELECT count(*) FROM outbox WHERE kind = 'meta_delivery'")
    assert stored == 0, "a refused delivery was stored"


def test_ingesting_facebook_lines_while_the_source_is_off_says_replies_cannot_go_out(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, SLACK_OFF)  # X publishes; Facebook and Instagram are off
    lines = tmp_path / "mentions.jsonl"
    lines.write_text(
        mention_line("facebook", "1", "where is my refund")
        + mention_line("facebook", "2", "still waiting for my refund")
        + mention_line("instagram", "3", "lost bag again")
        + mention_line("x", "4", "my flight is late")
    )
    done = socialcare("ingest", str(lines), "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert "4 new cases" in done.stdout
    assert (
        "note: 2 facebook mention(s) ingested while [sources.facebook] is off: replies to them"
        " cannot be published" in done.stderr
    )
    assert "note: 1 instagram mention(s)" in done.stderr
    assert "x mention" not in done.stderr

    dry_config = tmp_path / "dry.toml"
    dry_config.write_text(BASE.replace('"bot.db"', '"dry.db"') + SLACK_OFF + DRY_RUN)
    again = socialcare("ingest", str(lines), "-c", str(dry_config))
    assert again.returncode == 0 and "note:" not in again.stderr  # dry run answers every network


# ---------------------------------------------------------------- eval


def labelled(tmp_path: Path, count: int = 6) -> Path:
    path = tmp_path / "labelled.jsonl"
    texts = [("my bag is lost, terrible", "negative"), ("thanks, lovely crew", "positive")]
    path.write_text(
        "".join(
            mention_line("x", str(n), texts[n % 2][0], sentiment=texts[n % 2][1])
            for n in range(count)
        )
    )
    return path


LLM_ON = '\n[llm]\nenabled = true\nmodel = "eval-model"\ntimeout_seconds = 5\nmax_retries = 0\n'


def test_eval_with_an_unreachable_llm_stops_before_calling_it_per_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, SLACK_OFF, LLM_ON)
    env = {**os.environ, "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    started = time.monotonic()
    done = socialcare("eval", str(labelled(tmp_path, 40)), "-c", str(config), env=env)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach the LLM") and "nothing evaluated" in line
    assert time.monotonic() - started < 30
    assert OPENAI_KEY not in done.stderr + done.stdout


def test_eval_with_a_refused_llm_key_names_the_variable(tmp_path: Path) -> None:
    config = write_config(tmp_path, SLACK_OFF, LLM_ON)
    with start_fake_openai(api_key="the-right-key-not-real") as fake:
        env = {**os.environ, "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake.base_url}
        done = socialcare("eval", str(labelled(tmp_path)), "-c", str(config), env=env)
        chat_calls = len(fake.calls_to())
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("config error: OPENAI_API_KEY: the LLM endpoint refused the key")
    assert chat_calls == 0


def test_eval_where_every_llm_call_fails_shows_no_llm_figures(tmp_path: Path) -> None:
    """A column of fallbacks would be the offline reading under the LLM's name."""
    config = write_config(tmp_path, SLACK_OFF, LLM_ON)
    with start_fake_openai() as fake:
        fake.set_responder(lambda body: {"status": 500, "body": {"error": {"message": "down"}}})
        env = {**os.environ, "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake.base_url}
        done = socialcare("eval", str(labelled(tmp_path)), "-c", str(config), env=env)
        chat_calls = len(fake.calls_to())
    assert chat_calls == 6
    assert done.returncode == 1, done.stderr
    assert "error: the LLM (eval-model) answered none of 6 calls" in done.stderr
    assert "offline figures only" in done.stderr
    assert "llm accuracy" not in done.stdout and "sentiment, llm" not in done.stdout
    assert "offline accuracy" in done.stdout
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------- desk config, reports, digest


def test_a_vip_table_without_a_criterion_is_a_warning(tmp_path: Path) -> None:
    config = write_config(tmp_path, SLACK_OFF, DRY_RUN, "\n[vip]\nverified = false\n")
    done = socialcare("check-config", "-c", str(config))
    assert done.returncode == 0
    assert "warning: vip: no criterion (min_followers, verified, handles)" in done.stderr
    assert "config valid (1 department," in done.stdout
    plain = write_config(tmp_path, SLACK_OFF, DRY_RUN)
    assert "vip" not in socialcare("check-config", "-c", str(plain)).stderr


def test_report_by_tag_with_no_tags_says_why_it_is_empty(tmp_path: Path) -> None:
    config = write_config(tmp_path, SLACK_OFF, DRY_RUN)
    lines = tmp_path / "m.jsonl"
    lines.write_text(mention_line("x", "1", "my refund is late"))
    assert socialcare("ingest", str(lines), "-c", str(config)).returncode == 0
    done = socialcare("report", "--by", "tag", "--format", "csv", "-c", str(config))
    assert done.returncode == 0
    assert done.stdout.strip() == "tag"
    assert "note: no tagged cases since" in done.stderr and "[[tag_rules]]" in done.stderr

    tagged = write_config(
        tmp_path, SLACK_OFF, DRY_RUN, '\n[[tag_rules]]\ntag = "refund"\nkeywords = ["refund"]\n'
    )
    lines.write_text(mention_line("x", "2", "where is my refund"))
    assert socialcare("ingest", str(lines), "-c", str(tagged)).returncode == 0
    done = socialcare("report", "--by", "tag", "--format", "csv", "-c", str(tagged))
    assert done.stdout.splitlines()[1].startswith("refund,1,") and "note:" not in done.stderr


def test_digest_needs_only_the_token_that_posts(tmp_path: Path) -> None:
    """A cron box sending digests has SLACK_BOT_TOKEN; the signing secret is for receiving."""
    config = write_config(tmp_path, '\n[slack]\nenabled = true\nmode = "http"\n', DRY_RUN)
    with start_fake_slack() as fake:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"}
        }
        env |= {"SLACK_BOT_TOKEN": "xoxb-operator-digest-not-real", "SLACK_API_URL": fake.api_url}
        done = socialcare("digest", "-c", str(config), env=env)
        posts = fake.calls_to("chat.postMessage")
    assert done.returncode == 0, done.stderr
    assert "sent 1 digest(s)" in done.stderr
    assert [p["channel"] for p in posts] == ["C0CARE"]
    without_token = socialcare("digest", "-c", str(config), env={**env, "SLACK_BOT_TOKEN": ""})
    assert without_token.returncode == 2
    [line] = without_token.stderr.strip().splitlines()
    assert "SLACK_BOT_TOKEN is not set" in line


def test_an_unreachable_postgresql_is_one_line_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, SLACK_OFF, DRY_RUN)
    url = "postgresql://care:pw-not-real@127.0.0.1:9/care"
    started = time.monotonic()
    done = socialcare("report", "-c", str(config), env={**os.environ, "DATABASE_URL": url})
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("config error: DATABASE_URL / [bot].database: cannot connect")
    assert "Connection refused" in line and "pw-not-real" not in line
    assert time.monotonic() - started < 8  # not the pool's 10 s of retries


# ---------------------------------------------------------------- what the docs show

ROOT = Path(__file__).resolve().parents[1]


def test_every_toml_block_in_the_readme_passes_check_config(tmp_path: Path) -> None:
    from bot.config import load_config

    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) >= 3  # Bluesky/Mastodon, Facebook/Instagram, care desk
    for number, block in enumerate(blocks):
        path = tmp_path / f"block{number}.toml"
        path.write_text(BASE + SLACK_OFF + DRY_RUN + "\n" + block)
        load_config(path)  # raises ConfigError naming the key of any problem


def test_the_example_care_desk_uncommented_is_valid_and_tags(tmp_path: Path) -> None:
    """An operator uncommenting the whole care-desk block gets rules that work."""
    text = (ROOT / "config.example.toml").read_text()
    head, desk = text.split("# -- Care desk", 1)
    lines = [line[2:] if line.startswith("# ") else "" for line in desk.splitlines()[1:]]
    config = tmp_path / "socialcare.toml"
    config.write_text(head + "\n".join(lines) + "\n")
    checked = socialcare("check-config", "-c", str(config))
    assert checked.returncode == 0, checked.stderr
    mentions = tmp_path / "m.jsonl"
    mentions.write_text(
        mention_line("x", "1", "@AcmeAir I want a refund", author_followers=10)
        + mention_line("x", "2", "@AcmeAir my bag is lost, missing luggage again")
        + mention_line("x", "3", "hello", author_handle="bigjournalist")
    )
    done = socialcare("classify", str(mentions), "-c", str(config))
    tags = {row["id"]: row["tags"] for row in map(json.loads, done.stdout.splitlines())}
    assert tags["1"] == ["refund"]
    assert "vip" in tags["3"]


def test_a_page_id_too_short_or_a_name_is_explained(tmp_path: Path) -> None:
    for page_id in ("999", "acmeair"):
        config = write_config(
            tmp_path,
            SLACK_OFF,
            DRY_RUN,
            f'\n[sources.facebook]\nenabled = true\npage_id = "{page_id}"\n',
        )
        done = socialcare("check-config", "-c", str(config))
        assert done.returncode == 2
        assert done.stderr.strip() == (
            "config error: sources.facebook.page_id: must be a numeric Graph API id of 5 to 25"
            " digits, e.g. 102030405060708"
        )


def test_check_config_names_a_postgresql_database_as_a_url_without_its_password(
    tmp_path: Path,
) -> None:
    in_file = BASE.replace('"bot.db"', '"postgresql://care@db.internal:5432/care"')
    config = tmp_path / "pg.toml"
    config.write_text(in_file + SLACK_OFF + DRY_RUN)
    done = socialcare("check-config", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert "database postgresql://care@db.internal:5432/care)" in done.stdout

    plain = write_config(tmp_path, SLACK_OFF, DRY_RUN)
    url = "postgresql://care:pw-not-real@db.internal:5432/care"
    done = socialcare("check-config", "-c", str(plain), env={**os.environ, "DATABASE_URL": url})
    assert "database postgresql://care:***@db.internal:5432/care (DATABASE_URL))" in done.stdout
    assert "pw-not-real" not in done.stdout + done.stderr


def test_a_digest_slack_refuses_or_cannot_take_is_not_reported_as_sent(tmp_path: Path) -> None:
    config = write_config(tmp_path, '\n[slack]\nenabled = true\nmode = "http"\n', DRY_RUN)
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-operator-digest-not-real"}
    with start_fake_slack() as fake:
        fake.queue("chat.postMessage", 200, {"ok": False, "error": "channel_not_found"})
        refused = socialcare(
            "digest", "-c", str(config), env={**env, "SLACK_API_URL": fake.api_url}
        )
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "sent 0 digest(s)",
        "error: digest for care refused: chat.postMessage: channel_not_found",
    ]

    down = socialcare(
        "digest", "-c", str(config), env={**env, "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    )
    assert down.returncode == 1
    assert "sent 0 digest(s)" in down.stderr
    assert "not sent now (chat.postMessage: URLError" in down.stderr
    assert "it stays queued and `socialcare run` sends it" in down.stderr
    assert "will retry in" not in down.stderr  # the command exits; it retries nothing itself
    assert "xoxb-operator-digest-not-real" not in down.stderr


def test_an_endpoint_override_that_is_not_a_url_stops_run_naming_it(tmp_path: Path) -> None:
    """`META_GRAPH_URL=localhost:9` would start a bot "degraded" for ever."""
    config = write_config(tmp_path, SLACK_OFF, DRY_RUN, META_ON)
    env = meta_env("localhost:9")
    done = socialcare("run", "-c", str(config), env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "config error: META_GRAPH_URL: 'localhost:9' is not an http(s) URL with a host,"
        " e.g. https://host:443/"
    )
    checked = socialcare("check-config", "--strict", "-c", str(config), env=env)
    assert checked.returncode == 2 and "META_GRAPH_URL: 'localhost:9'" in checked.stderr
    assert TOKEN not in done.stderr + checked.stderr
