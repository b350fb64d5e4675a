"""The care desk through Teams: the real Agents SDK against the fake Bot Connector. The
card's saved-reply choice and tag field are Action.Execute verbs like its buttons."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Secrets, parse_config
from bot.models import CaseState
from bot.ports import FixedClock
from bot.runtime import Runtime
from tests.conftest import START
from tests.fakes.teams import (
    BOT_APP_ID,
    CLIENT_SECRET,
    TENANT_ID,
    FakeBotConnector,
    FakeBotIssuer,
    FakeEntraLogin,
)
from tests.fakes.x import start_fake_x
from tests.test_desk import desk_data
from tests.test_slack import BotServer
from tests.test_teams import BRAND, MANAGER, MEMBER, Teams, teams_config


@pytest.fixture
def teams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Teams]:
    """tests/test_teams.py's harness, with the desk's saved replies, tag rules and VIPs."""
    data = teams_config(tmp_path).model_dump(exclude={"base_dir"}, mode="json")
    desk = desk_data()
    data.update({key: desk[key] for key in ("saved_replies", "tag_rules", "vip")})
    config = parse_config(data, base_dir=tmp_path)
    with (
        FakeEntraLogin() as login,
        FakeBotConnector(login) as connector,
        FakeBotIssuer() as issuer,
        start_fake_x(brand_user_id=BRAND) as x,
    ):
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
        runtime = Runtime(config, secrets, clock=FixedClock(START))
        runtime.service.serve_surfaces([w.surface.name for w in runtime.chat_workers])
        server = BotServer(runtime)
        try:
            yield Teams(runtime, server, connector, issuer, x)
        finally:
            server.stop()
            runtime.teams_api.close()
            runtime.store.close()


def test_saved_reply_and_tags_from_the_teams_card(teams: Teams) -> None:
    teams.x.add_tweet("7", "@AcmeAir my refund never arrived", mentions_user=BRAND)
    teams.runtime.poll_sources()
    teams.deliver()
    card = json.dumps(teams.card_message().card, ensure_ascii=False)
    assert "🏷️ Tags: " in card and "refund" in card and '"verb": "saved_reply"' in card

    status, answer = teams.press("saved_reply", MEMBER, inputs={"saved_reply": "sorry"})
    assert status == 200 and answer["statusCode"] == 200
    case = teams.service.get_case(1)
    # Teams sends the person's display name ("Ana Agent"): it signs the reply.
    assert case.draft_text == (
        "@maya Hi Maya, we're sorry. Please DM us your booking ref (case 1). Ana"
    )
    assert case.state is CaseState.CLAIMED

    status, answer = teams.press("saved_reply", MEMBER, inputs={"saved_reply": "long"})
    assert status == 200 and "over the limit of 280" in json.dumps(answer["value"])
    assert teams.service.get_case(1).draft_text == case.draft_text

    status, answer = teams.press("tag", MEMBER, inputs={"tags": "refund lost-bag"})
    assert status == 200 and "lost-bag" in json.dumps(answer["value"])
    assert teams.service.view(1).tags == ["lost-bag", "refund"]
    status, answer = teams.press("tag", MANAGER, inputs={"tags": "Not A Tag!"})
    assert "a tag is lower-case" in json.dumps(answer["value"])
    assert teams.service.view(1).tags == ["lost-bag", "refund"]
