"""One bot watching X, Bluesky and Mastodon at once: mentions from all three land in one
department's queue, and each is answered on its own network, exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands import run_command
from bot.config import Secrets, parse_config
from bot.models import CaseState
from bot.ports import FixedClock
from bot.runtime import Runtime
from tests.conftest import AGENT, LEAD, START, config_data
from tests.fakes.bluesky import start_fake_bluesky
from tests.fakes.mastodon import start_fake_mastodon
from tests.fakes.x import start_fake_x

X_BRAND = "100"
BSKY_BRAND = "acmeair.bsky.social"


def test_mentions_from_three_networks_are_answered_each_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        start_fake_x(brand_user_id=X_BRAND) as x,
        start_fake_bluesky(BSKY_BRAND) as bluesky,
        start_fake_mastodon() as mastodon,
    ):
        x.add_user("7", "maya", "Maya Okafor")
        x.add_tweet("7", "@AcmeAir my refund never arrived", mentions_user=X_BRAND)
        bluesky.add_user("bo.bsky.social", "Bo")
        bluesky.add_post("bo.bsky.social", f"@{BSKY_BRAND} my bag is lost, help")
        ana = mastodon.add_account("ana", "Ana")
        mastodon.add_mention(ana, "my flight was cancelled, refund please")

        data = config_data()
        data["slack"] = {"enabled": False}
        data["departments"][0].pop("slack_channel", None)
        data["departments"][1].pop("slack_channel", None)
        data["sources"] = {
            "x": {"enabled": True, "user_id": X_BRAND, "poll_seconds": 60},
            "bluesky": {"enabled": True, "handle": BSKY_BRAND, "poll_seconds": 30},
            "mastodon": {"enabled": True, "instance": mastodon.url, "poll_seconds": 30},
        }
        data["departments"][0]["keywords"] = ["refund", "lost", "cancelled"]
        data["publish"] = {"dry_run": False}
        config = parse_config(data, base_dir=tmp_path)
        secrets = Secrets(
            x_bearer_token="test-bearer-not-real",
            x_consumer_key="k",
            x_consumer_secret="s",
            x_access_token=f"{X_BRAND}-t",
            x_access_token_secret="ts",
            x_api_url=x.url,
            bluesky_app_password=bluesky.app_password,
            bluesky_api_url=bluesky.url,
            mastodon_access_token=mastodon.token,
        )
        runtime = Runtime(config, secrets, clock=FixedClock(START))
        try:
            runtime.poll_sources()
            service = runtime.service
            queue = run_command(service, LEAD, "queue care").text
            for network in ("x", "bluesky", "mastodon"):
                assert network in queue
            cases = service.queue("care")
            assert sorted(c.network for c in cases) == ["bluesky", "mastodon", "x"]
            for case in cases:
                service.reply(AGENT, case.id, "We are sorry! Please DM us and we will sort it out.")
                service.approve(LEAD, case.id)
            assert runtime.publish_worker.drain() == 3
            assert all(service.get_case(c.id).state is CaseState.PUBLISHED for c in cases)
            assert len(x.posted()) == 1
            assert len(bluesky.posts()) == 1
            assert len(mastodon.posted()) == 1
            assert runtime.publish_worker.drain() == 0  # nothing more, anywhere
        finally:
            runtime.store.close()


def test_check_config_strict_names_the_network_credentials(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    config = tmp_path / "socialcare.toml"
    config.write_text(
        '[bot]\nbrand = "Acme"\n[slack]\nenabled = false\n[publish]\ndry_run = true\n'
        '[[departments]]\nid = "care"\nname = "Care"\n'
        '[sources.bluesky]\nenabled = true\nhandle = "acme.bsky.social"\n'
        '[sources.mastodon]\nenabled = true\ninstance = "https://mastodon.social"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLUESKY_", "MASTODON_"))}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "--strict", "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert "BLUESKY_APP_PASSWORD is not set" in done.stderr
    assert "MASTODON_ACCESS_TOKEN is not set" in done.stderr


def test_report_by_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    from datetime import UTC, datetime

    from bot.cli import main
    from bot.models import Mention
    from bot.ports import SystemClock
    from bot.service import CareService
    from bot.store import Store

    config_path = tmp_path / "socialcare.toml"
    config_path.write_text(
        '[bot]\nbrand = "Acme"\ndatabase = "r.db"\n[slack]\nenabled = false\n'
        '[[departments]]\nid = "care"\nname = "Care"\n'
    )
    from bot.config import load_config

    config = load_config(config_path)
    service = CareService(config, Store(config.database_path), clock=SystemClock())
    now = datetime.now(UTC)
    for i, network in enumerate(["x", "x", "bluesky", "mastodon"]):
        handle = {"x": "maya", "bluesky": "maya.bsky.social", "mastodon": "maya@m.example"}
        service.ingest(
            Mention.model_validate(
                {
                    "network": network,
                    "id": f"m{i}",
                    "author_id": f"a{i}",
                    "author_handle": handle[network],
                    "text": "my bag is lost",
                    "created_at": now,
                }
            )
        )
    service.store.close()
    assert main(["report", "-c", str(config_path), "--by", "network", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    received = {row["network"]: row["received"] for row in report["networks"]}
    assert received["x"] == 2 and received["bluesky"] == 1 and received["mastodon"] == 1
