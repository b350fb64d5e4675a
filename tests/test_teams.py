"""The Teams surface end to end: the real Agents SDK (Activity, ConnectorClient, MSAL)
against a fake Bot Connector, a fake Microsoft login (HTTPS) and a fake Bot Framework
issuer, with a mention arriving on a fake X and the reply going back to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.config import Secrets, parse_config
from bot.models import CaseState
from bot.ports import FixedClock
from bot.runtime import Runtime
from tests.conftest import START, config_data
from tests.fakes.teams import (
    BOT_APP_ID,
    CHANNEL_ID,
    CLIENT_SECRET,
    TENANT_ID,
    USER_AAD_ID,
    USER_ID,
    FakeBotConnector,
    FakeBotIssuer,
    FakeEntraLogin,
    Message,
    card_action,
    channel_message,
    post_activity,
    press,
)
from tests.fakes.x import FakeX, start_fake_x
from tests.test_slack import BotServer

BRAND = "100"
MANAGER_AAD = "6b1a2c3d-0000-4000-8000-00000000b002"
MANAGER_ID = "29:1LeadTeamsUser-b002"
MEMBER = {"from_id": USER_ID, "aad_object_id": USER_AAD_ID}
MANAGER = {"from_id": MANAGER_ID, "aad_object_id": MANAGER_AAD}
REPLY = "Sorry about the delay! Please DM us your booking reference and we will check."


@dataclass
class Teams:
    runtime: Runtime
    server: BotServer
    connector: FakeBotConnector
    issuer: FakeBotIssuer
    x: FakeX

    @property
    def service(self) -> Any:
        return self.runtime.service

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/api/messages"

    def post(self, activity: dict[str, Any], token: str | None = "default") -> tuple[int, Any]:
        if token == "default":
            token = self.issuer.token(BOT_APP_ID, activity["serviceUrl"])
        return post_activity(self.endpoint, activity, token=token)

    def press(self, verb: str, who: dict[str, str], **kw: Any) -> tuple[int, Any]:
        return self.post(press(self.card_message(), verb, service_url=self.url, **who, **kw))

    @property
    def url(self) -> str:
        return self.connector.service_url

    def card_message(self) -> Message:
        [message] = self.connector.card_messages(CHANNEL_ID)
        return message

    def deliver(self) -> None:
        for worker in self.runtime.chat_workers:
            worker.drain()

    def state(self, case_id: int = 1) -> CaseState:
        return self.service.get_case(case_id).state


def teams_config(tmp_path: Path, *, slack: bool = False) -> Any:
    data = config_data()
    data["slack"] = (
        {"enabled": True, "mode": "http", "admins": ["U0ADMIN"]} if slack else {"enabled": False}
    )
    data["teams"] = {"enabled": True, "admins": []}
    data["departments"][0].update(
        teams_channel=CHANNEL_ID,
        members=["U0AGENT1", USER_AAD_ID],
        managers=["U0LEAD", MANAGER_AAD],
    )
    data["departments"][1]["teams_channel"] = "19:marketing@thread.tacv2"
    data["sources"] = {"x": {"enabled": True, "user_id": BRAND, "poll_seconds": 60}}
    data["publish"] = {"dry_run": False}
    return parse_config(data, base_dir=tmp_path)


@pytest.fixture
def teams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Teams]:
    with (
        FakeEntraLogin() as login,
        FakeBotConnector(login) as connector,
        FakeBotIssuer() as issuer,
        start_fake_x(brand_user_id=BRAND) as x,
    ):
        # MSAL speaks HTTPS only; it trusts the fake login's throwaway CA this way.
        assert login.ca_file is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", login.ca_file)
        x.add_user("7", "maya", "Maya Okafor", followers=812)
        secrets = Secrets(
            teams_app_id=BOT_APP_ID,
            teams_app_password=CLIENT_SECRET,
            teams_tenant_id=TENANT_ID,
            teams_login_url=login.url,
            teams_openid_metadata_url=issuer.metadata_url,
            teams_service_url=connector.service_url,
            x_bearer_token="test-bearer-not-real",
            x_consumer_key="test-consumer-key",
            x_consumer_secret="test-consumer-secret",
            x_access_token=f"{BRAND}-test-access-token",
            x_access_token_secret="test-access-secret",
            x_api_url=x.url,
        )
        runtime = Runtime(teams_config(tmp_path), secrets, clock=FixedClock(START))
        runtime.service.serve_surfaces([w.surface.name for w in runtime.chat_workers])
        server = BotServer(runtime)
        try:
            yield Teams(runtime, server, connector, issuer, x)
        finally:
            server.stop()
            runtime.teams_api.close()
            runtime.store.close()


def test_a_mention_on_x_becomes_a_card_and_the_approved_reply_goes_out_once(
    teams: Teams,
) -> None:
    teams.x.add_tweet("7", "@AcmeAir my refund never arrived", mentions_user=BRAND)
    teams.runtime.poll_sources()
    teams.deliver()
    card = teams.card_message()
    assert "my refund never arrived" in json.dumps(card.card)
    assert teams.connector.wait_for("POST", "/v3/conversations")

    status, answer = teams.press("claim", MEMBER)
    assert status == 200 and answer["statusCode"] == 200
    assert answer["type"] == "application/vnd.microsoft.card.adaptive"
    assert teams.state() is CaseState.CLAIMED
    teams.deliver()
    assert teams.card_message().updates >= 1  # updated in place, not a new card
    assert any(
        "Claimed by" in json.dumps(r.activity)
        for r in teams.connector.replies(card.conversation_id)
    )

    command = channel_message(
        f"<at>socialcare</at> care reply 1 {REPLY}", service_url=teams.url, **MEMBER
    )
    status, _ = teams.post(command)
    assert status == 200
    assert teams.state() is CaseState.AWAITING_APPROVAL
    teams.deliver()

    # A member may not approve: the refusal is on the card shown to them only.
    before = teams.connector.calls_to("PUT")
    status, answer = teams.press("approve", MEMBER)
    assert status == 200 and "Only managers of Customer Care" in json.dumps(answer["value"])
    assert teams.state() is CaseState.AWAITING_APPROVAL
    teams.deliver()
    assert teams.connector.calls_to("PUT") == before

    status, answer = teams.press("approve", MANAGER)
    assert status == 200 and teams.state() is CaseState.APPROVED
    teams.runtime.publish_worker.drain()
    teams.deliver()
    [posted] = teams.x.posted()
    assert posted["text"] == f"@maya {REPLY}"
    assert teams.state() is CaseState.PUBLISHED
    final = json.dumps(teams.card_message().card)
    assert "Published" in final and posted["id"] in final
    notes = [json.dumps(r.activity) for r in teams.connector.replies(card.conversation_id)]
    assert any("Approved by" in n for n in notes) and any("Published" in n for n in notes)


def test_a_replayed_invoke_changes_nothing_and_posts_nothing_more(teams: Teams) -> None:
    teams.service.ingest_many([])
    teams.x.add_tweet("7", "@AcmeAir my bag is lost", mentions_user=BRAND)
    teams.runtime.poll_sources()
    teams.deliver()
    invoke = press(teams.card_message(), "claim", service_url=teams.url, **MEMBER)
    assert teams.post(invoke)[0] == 200
    teams.deliver()
    calls = len(teams.connector.calls)
    audit = teams.service.store.scalar("SELECT count(*) FROM audit")
    status, answer = teams.post(invoke)  # Teams retried the same delivery
    assert status == 200 and answer["type"] == "application/vnd.microsoft.card.adaptive"
    teams.deliver()
    assert len(teams.connector.calls) == calls
    assert teams.service.store.scalar("SELECT count(*) FROM audit") == audit


@pytest.mark.parametrize(
    "forgery",
    ["missing", "wrong audience", "expired", "wrong key", "spoofed serviceurl", "garbage"],
)
def test_a_request_without_a_valid_token_is_refused_and_changes_nothing(
    teams: Teams, forgery: str
) -> None:
    teams.x.add_tweet("7", "@AcmeAir my bag is lost", mentions_user=BRAND)
    teams.runtime.poll_sources()
    teams.deliver()
    invoke = press(teams.card_message(), "claim", service_url=teams.url, **MEMBER)
    issuer = teams.issuer
    token: str | None = {
        "missing": None,
        "wrong audience": issuer.token("another-app", teams.url),
        "expired": issuer.token(BOT_APP_ID, teams.url, expires_in=-3600),
        "wrong key": issuer.token(BOT_APP_ID, teams.url, key=issuer.unpublished_key),
        "spoofed serviceurl": issuer.token(BOT_APP_ID, "https://evil.example/"),
        "garbage": "not-a-jwt",
    }[forgery]
    calls = len(teams.connector.calls)
    status, _ = teams.post(invoke, token=token)
    assert status == 401
    assert teams.state() is CaseState.NEW
    assert len(teams.connector.calls) == calls
    assert teams.service.reference("teams", f"user:{USER_AAD_ID}") is None


def test_a_department_on_slack_and_teams_gets_both_cards_and_acts_from_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.parse

    from slack_sdk.signature import SignatureVerifier

    from tests.fakes.slack import start_fake_slack

    secret = "test-signing-secret-not-real"
    with (
        FakeEntraLogin() as login,
        FakeBotConnector(login) as connector,
        FakeBotIssuer() as issuer,
        start_fake_x(brand_user_id=BRAND) as x,
        start_fake_slack() as slack,
    ):
        assert login.ca_file is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", login.ca_file)
        x.add_user("7", "maya", "Maya Okafor")
        secrets = Secrets(
            slack_bot_token="xoxb-test-both-not-real",
            slack_signing_secret=secret,
            slack_api_url=slack.api_url,
            teams_app_id=BOT_APP_ID,
            teams_app_password=CLIENT_SECRET,
            teams_tenant_id=TENANT_ID,
            teams_login_url=login.url,
            teams_openid_metadata_url=issuer.metadata_url,
            teams_service_url=connector.service_url,
            x_bearer_token="test-bearer-not-real",
            x_consumer_key="k",
            x_consumer_secret="s",
            x_access_token=f"{BRAND}-t",
            x_access_token_secret="ts",
            x_api_url=x.url,
        )
        clock = FixedClock(START)
        runtime = Runtime(teams_config(tmp_path, slack=True), secrets, clock=clock)
        runtime.service.serve_surfaces([w.surface.name for w in runtime.chat_workers])
        server = BotServer(runtime)
        both = Teams(runtime, server, connector, issuer, x)
        try:
            x.add_tweet("7", "@AcmeAir my refund never arrived", mentions_user=BRAND)
            runtime.poll_sources()
            both.deliver()
            [slack_card] = slack.calls_to("chat.postMessage")
            assert slack_card["channel"] == "C0CARE"
            assert both.card_message().card is not None

            # Claimed on Slack ...
            body = urllib.parse.urlencode(
                {
                    "command": "/care",
                    "text": "claim 1",
                    "user_id": "U0AGENT1",
                    "team_id": "T0ACME",
                    "response_url": slack.response_url("cmd"),
                    "trigger_id": "t1",
                }
            )
            ts = str(int(clock.now().timestamp()))
            signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
            status, _ = server.request(
                "/slack/events",
                body.encode(),
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": ts,
                    "X-Slack-Signature": signature or "",
                },
            )
            assert status == 200 and both.state() is CaseState.CLAIMED
            both.deliver()
            # ... shows as claimed on both surfaces.
            assert slack.calls_to("chat.update")
            assert "Claimed" in json.dumps(both.card_message().card)

            # ... and a Teams member other than the claimant is refused there.
            message = both.card_message()
            status, answer = both.post(
                card_action(
                    "claim",
                    {"case": 1},
                    conversation_id=message.conversation_id,
                    reply_to_id=message.id,
                    service_url=both.url,
                    **MEMBER,
                )
            )
            assert "already claimed" in json.dumps(answer["value"])
            updates_before = len(slack.calls_to("chat.update"))
            both.deliver()
            assert len(slack.calls_to("chat.update")) == updates_before  # a refusal changes no card
        finally:
            server.stop()
            runtime.teams_api.close()
            runtime.store.close()


def test_a_reminder_reaches_the_claimants_1_1_chat_and_the_digest_the_channel(
    teams: Teams,
) -> None:
    from datetime import timedelta

    from bot.followup import FollowUp

    teams.x.add_tweet("7", "@AcmeAir my refund never arrived", mentions_user=BRAND)
    teams.runtime.poll_sources()
    teams.deliver()
    assert teams.press("claim", MEMBER)[0] == 200  # Teams now knows Ana's Teams id
    teams.deliver()
    due = teams.service.get_case(1).sla_due_at
    assert due is not None
    followup = FollowUp(teams.service)
    clock = teams.runtime.clock
    assert isinstance(clock, FixedClock)
    clock.advance((due - timedelta(minutes=5) - clock.now()).total_seconds())
    followup.check_sla(clock.now())
    teams.deliver()
    [reminder] = teams.connector.personal_messages(USER_ID)
    assert "Reminder: case #1 is due" in json.dumps(reminder.card)

    followup.send_digests(until=clock.now())
    teams.deliver()
    digests = [
        m for m in teams.connector.card_messages(CHANNEL_ID) if "Daily digest" in json.dumps(m.card)
    ]
    assert digests, "the department's digest was posted in its Teams channel"
    report = teams.runtime.health_report()[1]
    assert report["parts"]["teams"]["state"] == "ok"


def test_a_throttled_connector_is_retried_and_the_card_still_posts(teams: Teams) -> None:
    teams.connector.queue("POST", "/v3/conversations", 429, headers={"Retry-After": "0"})
    teams.x.add_tweet("7", "@AcmeAir my bag is lost", mentions_user=BRAND)
    teams.runtime.poll_sources()
    teams.deliver()
    assert len(teams.connector.card_messages(CHANNEL_ID)) == 1
    assert [c.status for c in teams.connector.calls_to("POST", "/v3/conversations")] == [429, 201]


def test_check_config_strict_names_the_teams_variables(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    config = tmp_path / "socialcare.toml"
    config.write_text(
        '[bot]\nbrand = "Acme"\n[slack]\nenabled = false\n[teams]\nenabled = true\n'
        '[publish]\ndry_run = true\n[[departments]]\nid = "care"\nname = "Care"\n'
        f'teams_channel = "{CHANNEL_ID}"\nmembers = ["{USER_AAD_ID}"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMS_")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "--strict", "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    for variable in ("TEAMS_APP_ID", "TEAMS_APP_PASSWORD", "TEAMS_TENANT_ID"):
        assert f"{variable} is not set" in done.stderr
