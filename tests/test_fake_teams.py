"""The Teams fakes, exercised through the clients the bot uses: MSAL (over real TLS), the Agents
SDK's ConnectorClient (aiohttp) and MsalAuth, PyJWT's JWKS client, and the SDK's Activity model."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import jwt
import msal
import pytest
import requests
from microsoft_agents.activity import (
    Activity,
    AdaptiveCardInvokeValue,
    Attachment,
    ChannelAccount,
    ConversationParameters,
)
from microsoft_agents.authentication.msal import MsalAuth
from microsoft_agents.hosting.core import AgentAuthConfiguration, AuthTypes
from microsoft_agents.hosting.core.connector.client import ConnectorClient

from tests.fakes import teams as fakes
from tests.fakes.teams import (
    ADAPTIVE_CARD,
    BOT_APP_ID,
    BOTFRAMEWORK_SCOPE,
    CHANNEL_ID,
    TEAM_ID,
    TENANT_ID,
    USER_AAD_ID,
    USER_ID,
    FakeBotConnector,
    FakeBotIssuer,
    FakeEntraLogin,
    FakeTeamsTimeout,
)

# The shareable fixtures, exposed here the way a conftest would.
fake_entra_login = fakes.fake_entra_login
fake_bot_connector = fakes.fake_bot_connector
fake_bot_issuer = fakes.fake_bot_issuer

CARD = {
    "type": "AdaptiveCard",
    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "Case 12 - complaint", "wrap": True}],
    "actions": [
        {"type": "Action.Execute", "title": "Claim", "verb": "claim", "data": {"case": 12}},
        {
            "type": "ActionSet",
            "actions": [
                {"type": "Action.Execute", "verb": "use_reply", "data": {"case": 12, "n": 1}},
                {"type": "Action.Execute", "verb": "use_reply", "data": {"case": 12, "n": 2}},
            ],
        },
    ],
}


@pytest.fixture
def login(fake_entra_login: FakeEntraLogin, monkeypatch: pytest.MonkeyPatch) -> FakeEntraLogin:
    """The login, trusted the way the bot will trust it: through REQUESTS_CA_BUNDLE."""
    assert fake_entra_login.ca_file is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake_entra_login.ca_file)
    monkeypatch.setenv("SSL_CERT_FILE", fake_entra_login.ca_file)
    return fake_entra_login


@pytest.fixture
def connector(login: FakeEntraLogin) -> Iterator[FakeBotConnector]:
    with FakeBotConnector(login) as fake:
        yield fake


def msal_app(
    login: FakeEntraLogin, secret: str | None = None
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        login.client_id,
        client_credential=secret or login.client_secret,
        authority=login.authority,
        instance_discovery=False,  # else MSAL asks login.microsoftonline.com about 127.0.0.1
    )


def card_activity(card: dict[str, Any] = CARD, text: str = "") -> Activity:
    return Activity(
        type="message",
        text=text or None,
        attachments=[Attachment(content_type=ADAPTIVE_CARD, content=card)],
    )


def run_connector(fake: FakeBotConnector, token: str, scenario: Any) -> Any:
    """Run ``scenario(client)`` against the fake with the SDK's own ConnectorClient."""

    async def main() -> Any:
        client = ConnectorClient(fake.service_url, token)
        try:
            return await scenario(client)
        finally:
            await client.close()

    return asyncio.run(main())


# ------------------------------------------------------------------------------ Entra login


def test_msal_gets_a_client_credentials_token_over_https(login: FakeEntraLogin) -> None:
    app = msal_app(login)

    result = app.acquire_token_for_client(scopes=[BOTFRAMEWORK_SCOPE])

    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    assert login.is_valid(result["access_token"])
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://api.botframework.com"
    assert claims["appid"] == login.client_id
    assert claims["tid"] == TENANT_ID
    discovery, token_call = login.calls
    assert (discovery.method, discovery.path) == (
        "GET",
        f"/{TENANT_ID}/v2.0/.well-known/openid-configuration",
    )
    assert (token_call.method, token_call.path, token_call.status) == (
        "POST",
        f"/{TENANT_ID}/oauth2/v2.0/token",
        200,
    )
    assert token_call.form["grant_type"] == "client_credentials"
    assert token_call.form["client_id"] == login.client_id
    assert token_call.form["client_secret"] == login.client_secret
    assert token_call.form["scope"] == BOTFRAMEWORK_SCOPE
    assert login.token_requests() == [token_call]

    again = app.acquire_token_for_client(scopes=[BOTFRAMEWORK_SCOPE])

    assert again["access_token"] == result["access_token"]  # MSAL's cache: no new request
    assert len(login.token_requests()) == 1


def test_msal_discovery_documents_point_back_at_the_fake(login: FakeEntraLogin) -> None:
    config = requests.get(login.openid_configuration_url, timeout=5).json()

    assert config["token_endpoint"] == login.token_url
    assert config["issuer"] == f"{login.authority}/v2.0"
    assert config["authorization_endpoint"].startswith(login.authority)

    # MSAL may also be pointed at the fake's instance discovery endpoint.
    app = msal.ConfidentialClientApplication(
        login.client_id,
        client_credential=login.client_secret,
        authority=login.authority,
        instance_discovery=login.instance_discovery_url,
    )
    assert "access_token" in app.acquire_token_for_client(scopes=[BOTFRAMEWORK_SCOPE])
    [instance] = login.calls_to("GET", "/common/discovery/instance")
    assert instance.query["authorization_endpoint"].endswith(f"/{TENANT_ID}/oauth2/v2.0/authorize")


def test_msal_wrong_secret_gets_invalid_client(login: FakeEntraLogin) -> None:
    result = msal_app(login, secret="not-the-secret").acquire_token_for_client(
        scopes=[BOTFRAMEWORK_SCOPE]
    )

    assert result["error"] == "invalid_client"
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert result["error_codes"] == [7000215]
    [call] = login.token_requests()
    assert call.status == 401
    assert login.tokens == []


def test_token_endpoint_refusals_have_the_entra_shape(login: FakeEntraLogin) -> None:
    def post(**form: str) -> requests.Response:
        body = {
            "grant_type": "client_credentials",
            "client_id": login.client_id,
            "client_secret": login.client_secret,
            "scope": BOTFRAMEWORK_SCOPE,
            **form,
        }
        return requests.post(login.token_url, data=body, timeout=5)

    unknown = post(client_id="11111111-2222-3333-4444-555555555555")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "unauthorized_client"
    assert unknown.json()["error_codes"] == [700016]

    scope = post(scope="https://api.botframework.com")
    assert (scope.status_code, scope.json()["error"]) == (400, "invalid_scope")

    grant = post(grant_type="password")
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")

    other_tenant = requests.post(
        f"{login.url}/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token",
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert other_tenant.status_code == 400
    assert "AADSTS90002" in other_tenant.json()["error_description"]

    basic = requests.post(
        login.token_url,
        data={"grant_type": "client_credentials", "scope": BOTFRAMEWORK_SCOPE},
        auth=(login.client_id, login.client_secret),
        timeout=5,
    )
    assert basic.status_code == 200  # client_secret_basic works too


def test_msal_refuses_an_http_authority() -> None:
    with pytest.raises(ValueError, match="https"):
        msal.ConfidentialClientApplication(
            "app", client_credential="secret", authority=f"http://127.0.0.1:9/{TENANT_ID}"
        )


def test_tls_is_real_an_untrusting_client_is_refused(
    fake_entra_login: FakeEntraLogin, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(requests.exceptions.SSLError):
        requests.get(fake_entra_login.openid_configuration_url, timeout=5)

    trusted = requests.get(
        fake_entra_login.openid_configuration_url, verify=fake_entra_login.ca_file, timeout=5
    )
    assert trusted.status_code == 200


def test_login_outage_and_queued_failure(login: FakeEntraLogin) -> None:
    # MSAL replays a 429/5xx token answer from memory for Retry-After seconds (5 by default)
    # without asking again; Retry-After: 0 lets the same app recover at once.
    login.queue("POST", f"/{TENANT_ID}/oauth2/v2.0/token", 503, headers={"Retry-After": "0"})
    app = msal_app(login)

    with pytest.raises(msal.exceptions.MsalServiceError, match="503"):  # raised, not returned
        app.acquire_token_for_client(scopes=[BOTFRAMEWORK_SCOPE])
    assert "access_token" in app.acquire_token_for_client(scopes=[BOTFRAMEWORK_SCOPE])
    assert [c.status for c in login.token_requests()] == [503, 200]

    login.fail_all(500)
    assert requests.get(login.openid_configuration_url, timeout=5).status_code == 500
    login.restore()
    assert requests.get(login.openid_configuration_url, timeout=5).status_code == 200


class LoopbackMsalAuth(MsalAuth):
    """What PITFALLS prescribes: the SDK's MsalAuth, with MSAL's instance discovery off."""

    def _create_client_application(self, tenant_id: str | None = None) -> Any:
        config = self._msal_configuration
        return msal.ConfidentialClientApplication(
            client_id=config.CLIENT_ID,
            authority=MsalAuth._resolve_authority(config, tenant_id),
            client_credential=config.CLIENT_SECRET,
            instance_discovery=False,
        )


def test_the_sdks_msal_auth_gets_a_token_once_discovery_is_off(login: FakeEntraLogin) -> None:
    config = AgentAuthConfiguration(
        AuthTypes.client_secret,
        client_id=login.client_id,
        tenant_id=login.tenant_id,
        client_secret=login.client_secret,
        authority=login.authority,
    )
    auth = LoopbackMsalAuth(config)

    token = asyncio.run(auth.get_access_token("https://api.botframework.com", [BOTFRAMEWORK_SCOPE]))

    assert login.is_valid(token)


# ------------------------------------------------------------------------------ connector


def test_connector_refuses_calls_without_a_token_from_the_login(
    connector: FakeBotConnector, login: FakeEntraLogin
) -> None:
    url = f"{connector.service_url}v3/conversations/{CHANNEL_ID}/activities"
    activity = {"type": "message", "text": "hi"}

    def post(headers: dict[str, str]) -> requests.Response:
        return requests.post(url, json=activity, headers=headers, timeout=5)

    missing = post({})
    assert missing.status_code == 401
    assert missing.json() == {"message": "Authorization has been denied for this request."}
    assert post({"Authorization": "Bearer made-up"}).status_code == 401
    assert post({"Authorization": f"Basic {login.issue_token()}"}).status_code == 401
    graph = login.issue_token(scope="https://graph.microsoft.com/.default")
    assert post({"Authorization": f"Bearer {graph}"}).status_code == 401  # wrong audience
    expired = login.issue_token(expires_in=-10)
    assert post({"Authorization": f"Bearer {expired}"}).status_code == 401

    good = login.issue_token()
    assert post({"Authorization": f"Bearer {good}"}).status_code == 201
    login.revoke_all()
    assert post({"Authorization": f"Bearer {good}"}).status_code == 401

    assert [c.status for c in connector.calls] == [401, 401, 401, 401, 401, 201, 401]
    assert len(connector.messages(CHANNEL_ID)) == 1  # refused calls change nothing


def test_channel_card_round_trip_through_the_sdk_connector_client(
    connector: FakeBotConnector, login: FakeEntraLogin
) -> None:
    updated = {**CARD, "body": [{"type": "TextBlock", "text": "Case 12 - claimed by Ana"}]}

    async def scenario(client: ConnectorClient) -> tuple[Any, Any, Any]:
        created = await client.conversations.create_conversation(
            ConversationParameters(
                is_group=True,
                channel_data={"channel": {"id": CHANNEL_ID}},
                activity=card_activity(),
                tenant_id=TENANT_ID,
            )
        )
        reply = await client.conversations.reply_to_activity(
            created.id,
            created.activity_id,
            Activity(type="message", text="Claimed by Ana", reply_to_id=created.activity_id),
        )
        update = await client.conversations.update_activity(
            created.id, created.activity_id, card_activity(updated)
        )
        return created, reply, update

    created, reply, update = run_connector(connector, login.issue_token(), scenario)

    assert created.id == f"{CHANNEL_ID};messageid={created.activity_id}"
    assert update.id == created.activity_id
    # The wire: the serviceUrl's path is kept, the body is what Teams expects.
    [create_call] = connector.calls_to("POST", "/v3/conversations")[:1]
    assert create_call.raw_path == "/amer/v3/conversations"
    assert create_call.status == 201
    assert create_call.json["isGroup"] is True
    assert create_call.json["channelData"] == {"channel": {"id": CHANNEL_ID}}
    assert create_call.json["tenantId"] == TENANT_ID
    assert create_call.json["activity"]["attachments"][0]["contentType"] == ADAPTIVE_CARD
    assert create_call.bearer in login.tokens
    put = connector.wait_for("PUT", f"/v3/conversations/{created.id}/activities/")[0]
    assert put.path == f"/v3/conversations/{created.id}/activities/{created.activity_id}"

    # The state: one card (updated in place), one reply in its thread.
    assert connector.cards_in(CHANNEL_ID) == [updated]
    [root] = connector.messages(CHANNEL_ID)
    assert (root.id, root.updates, root.versions[0]["attachments"][0]["content"]) == (
        created.activity_id,
        1,
        CARD,
    )
    [threaded] = connector.replies(created.id)
    assert (threaded.id, threaded.text, threaded.reply_to_id) == (
        reply.id,
        "Claimed by Ana",
        created.activity_id,
    )
    assert [m.id for m in connector.messages(created.id)] == [created.activity_id, reply.id]


def test_send_to_a_channel_starts_a_thread_and_to_a_thread_replies(
    connector: FakeBotConnector, login: FakeEntraLogin
) -> None:
    async def scenario(client: ConnectorClient) -> tuple[str, str, str]:
        convs = client.conversations
        root = await convs.send_to_conversation(CHANNEL_ID, card_activity())
        thread = f"{CHANNEL_ID};messageid={root.id}"
        in_thread = await convs.send_to_conversation(thread, Activity(type="message", text="a"))
        # A reply to a reply lands in the same thread, as in Teams.
        nested = await convs.reply_to_activity(
            CHANNEL_ID, in_thread.id, Activity(type="message", text="b")
        )
        return root.id, in_thread.id, nested.id

    root, first, second = run_connector(connector, login.issue_token(), scenario)

    thread = f"{CHANNEL_ID};messageid={root}"
    assert [m.id for m in connector.replies(thread)] == [first, second]
    assert all(m.conversation_id == thread for m in connector.messages(thread))
    assert [m.id for m in connector.messages(CHANNEL_ID)] == [root]
    # The user's own post (unknown to the connector) can be replied to as well.
    status = requests.post(
        f"{connector.service_url}v3/conversations/{CHANNEL_ID};messageid=42/activities/42",
        json={"type": "message", "text": "Only managers may approve."},
        headers={"Authorization": f"Bearer {login.issue_token()}"},
        timeout=5,
    ).status_code
    assert status == 201
    [refusal] = connector.replies(f"{CHANNEL_ID};messageid=42")
    assert refusal.text == "Only managers may approve."


def test_update_or_delete_of_an_unknown_activity_is_404(
    connector: FakeBotConnector, login: FakeEntraLogin
) -> None:
    async def scenario(client: ConnectorClient) -> aiohttp.ClientResponseError:
        with pytest.raises(aiohttp.ClientResponseError) as caught:
            await client.conversations.update_activity(
                f"{CHANNEL_ID};messageid=1", "1", card_activity()
            )
        return caught.value

    error = run_connector(connector, login.issue_token(), scenario)

    assert error.status == 404
    assert json.loads(error.message)["error"]["code"] == "ActivityNotFoundInConversation"
    token = login.issue_token()
    deleted = requests.delete(
        f"{connector.service_url}v3/conversations/{CHANNEL_ID}/activities/1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert deleted.status_code == 404


def test_personal_conversation_with_a_user(
    connector: FakeBotConnector, login: FakeEntraLogin
) -> None:
    params = ConversationParameters(
        is_group=False,
        members=[ChannelAccount(id=USER_AAD_ID)],
        tenant_id=TENANT_ID,
        channel_data={"tenant": {"id": TENANT_ID}},
    )

    async def scenario(client: ConnectorClient) -> tuple[str, str, str]:
        first = await client.conversations.create_conversation(params)
        again = await client.conversations.create_conversation(params)
        sent = await client.conversations.send_to_conversation(
            first.id, Activity(type="message", text="You can't approve your own draft.")
        )
        return first.id, again.id, sent.id

    first, again, sent = run_connector(connector, login.issue_token(), scenario)

    assert first == again == fakes.personal_conversation_id(USER_AAD_ID)
    assert first.startswith("a:")
    assert connector.conversation_for(USER_AAD_ID) == first
    [message] = connector.personal_messages(USER_AAD_ID)
    assert (message.id, message.text, message.channel_id) == (
        sent,
        "You can't approve your own draft.",
        None,
    )
    create_call = connector.calls_to("POST", "/v3/conversations")[0]
    assert create_call.json["members"] == [{"id": USER_AAD_ID}]
    assert "channelData" in create_call.json and "isGroup" in create_call.json


def test_personal_conversation_needs_the_app_installed(login: FakeEntraLogin) -> None:
    body = {"isGroup": False, "members": [{"id": USER_AAD_ID}], "tenantId": TENANT_ID}
    with FakeBotConnector(login, personal_installs=[]) as connector:

        def create() -> requests.Response:
            return requests.post(
                f"{connector.service_url}v3/conversations",
                json=body,
                headers={"Authorization": f"Bearer {login.issue_token()}"},
                timeout=5,
            )

        refused = create()
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "ForbiddenOperationException"
        connector.install_for(USER_AAD_ID)
        assert create().status_code == 201
        connector.uninstall_for(USER_AAD_ID)
        assert create().status_code == 403


def test_connector_over_tls_shares_the_throwaway_ca(login: FakeEntraLogin) -> None:
    with FakeBotConnector(login, tls=True) as connector:
        assert connector.service_url.startswith("https://127.0.0.1:")
        assert connector.ca_file == login.ca_file

        async def post() -> int:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"{connector.service_url}v3/conversations/{CHANNEL_ID}/activities",
                    json={"type": "message", "text": "hi"},
                    headers={"Authorization": f"Bearer {login.issue_token()}"},
                    ssl=connector.ssl_context(),
                ) as response,
            ):
                return response.status

        assert asyncio.run(post()) == 201


def test_rate_limit_scripting(connector: FakeBotConnector, login: FakeEntraLogin) -> None:
    connector.queue("POST", "/v3/conversations", 429, headers={"Retry-After": "0"})
    params = ConversationParameters(
        is_group=True,
        channel_data={"channel": {"id": CHANNEL_ID}},
        activity=card_activity(),
        tenant_id=TENANT_ID,
    )

    async def scenario(client: ConnectorClient) -> tuple[aiohttp.ClientResponseError, Any]:
        with pytest.raises(aiohttp.ClientResponseError) as caught:
            await client.conversations.create_conversation(params)
        # The SDK does not retry a 429 (PITFALLS): the caller waits Retry-After and tries again.
        retried = await client.conversations.create_conversation(params)
        return caught.value, retried

    throttled, retried = run_connector(connector, login.issue_token(), scenario)

    assert throttled.status == 429
    assert throttled.headers is not None and throttled.headers["Retry-After"] == "0"
    calls = connector.wait_for("POST", "/v3/conversations", count=2, timeout=1)
    assert [c.status for c in calls] == [429, 201]
    assert [m.id for m in connector.messages(CHANNEL_ID)] == [retried.activity_id]


def test_queued_statuses_outages_and_size_limit(
    connector: FakeBotConnector, login: FakeEntraLogin
) -> None:
    headers = {"Authorization": f"Bearer {login.issue_token()}"}
    base = f"{connector.service_url}v3/conversations/{CHANNEL_ID}/activities"
    created = requests.post(base, json=card_activity().model_dump(mode="json"), headers=headers)
    activity_id = created.json()["id"]

    connector.queue("PUT", "/v3/conversations/", 412)
    connector.queue("PUT", "/v3/conversations/", 504, body="gateway timeout")
    first = requests.put(f"{base}/{activity_id}", json={"type": "message"}, headers=headers)
    second = requests.put(f"{base}/{activity_id}", json={"type": "message"}, headers=headers)
    third = requests.put(f"{base}/{activity_id}", json={"type": "message"}, headers=headers)
    assert (first.status_code, first.json()["error"]["code"]) == (412, "PreconditionFailed")
    assert (second.status_code, second.text) == (504, "gateway timeout")
    assert third.status_code == 200
    assert connector.message(activity_id).updates == 1  # failed updates change nothing

    connector.fail_all(502)
    outage = requests.post(base, json={"type": "message", "text": "x"}, headers=headers)
    assert (outage.status_code, outage.json()["error"]["code"]) == (502, "ServiceError")
    connector.restore()
    assert requests.post(base, json={"type": "message"}, headers=headers).status_code == 201

    huge = {"type": "message", "text": "x" * (101 * 1024)}
    too_big = requests.post(base, json=huge, headers=headers)
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "MessageSizeTooBig")

    with pytest.raises(FakeTeamsTimeout):
        connector.wait_for("DELETE", "/v3/", timeout=0.1)


# ------------------------------------------------------------------------------ issuer


def fetch_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_signed_token_verifies_against_the_jwks_from_the_metadata(
    fake_bot_issuer: FakeBotIssuer,
) -> None:
    service_url = "https://smba.trafficmanager.net/amer/"
    metadata = fetch_json(fake_bot_issuer.metadata_url)
    assert metadata["issuer"] == "https://api.botframework.com"
    assert metadata["jwks_uri"] == fake_bot_issuer.jwks_url
    [key] = fetch_json(metadata["jwks_uri"])["keys"]
    assert key["endorsements"] == ["msteams"]
    assert (key["kty"], key["use"], key["kid"]) == ("RSA", "sig", fake_bot_issuer.kid)
    jwks = jwt.PyJWKClient(metadata["jwks_uri"])

    def verify(token: str) -> dict[str, Any]:
        return jwt.decode(
            token,
            jwks.get_signing_key_from_jwt(token).key,
            algorithms=metadata["id_token_signing_alg_values_supported"],
            audience=BOT_APP_ID,
            issuer=metadata["issuer"],
        )

    claims = verify(fake_bot_issuer.token(BOT_APP_ID, service_url))
    assert claims["serviceurl"] == service_url
    assert claims["aud"] == BOT_APP_ID

    forged = fake_bot_issuer.token(BOT_APP_ID, service_url, key=fake_bot_issuer.unpublished_key)
    assert jwt.get_unverified_header(forged)["kid"] == fake_bot_issuer.kid
    with pytest.raises(jwt.InvalidSignatureError):
        verify(forged)
    unknown_kid = fake_bot_issuer.token(
        BOT_APP_ID,
        service_url,
        key=fake_bot_issuer.unpublished_key,
        kid=fake_bot_issuer.unpublished_kid,
    )
    with pytest.raises(jwt.PyJWKClientError):
        verify(unknown_kid)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(fake_bot_issuer.token(BOT_APP_ID, service_url, expires_in=-600))
    with pytest.raises(jwt.InvalidAudienceError):
        verify(fake_bot_issuer.token("another-app", service_url))
    with pytest.raises(jwt.InvalidIssuerError):
        verify(fake_bot_issuer.token(BOT_APP_ID, service_url, issuer="https://evil.example"))
    no_service_url = verify(fake_bot_issuer.token(BOT_APP_ID, service_url, serviceurl=None))
    assert "serviceurl" not in no_service_url

    fetched = [c.path for c in fake_bot_issuer.calls]
    assert fetched[:2] == ["/v1/.well-known/openidconfiguration", "/v1/.well-known/keys"]


def test_post_activity_sends_what_teams_sends(fake_bot_issuer: FakeBotIssuer) -> None:
    token = fake_bot_issuer.token()
    status, body = fakes.post_activity(
        f"{fake_bot_issuer.url}/api/messages", fakes.personal_message("hi"), token=token
    )

    assert (status, body) == (404, {"error": "not_found"})
    [call] = fake_bot_issuer.calls
    assert call.bearer == token
    assert call.json["type"] == "message"


# ------------------------------------------------------------------------------ activities


def test_channel_message_mentions_the_bot_and_parses_in_the_sdk() -> None:
    service_url = "http://127.0.0.1:1/amer/"
    raw = fakes.channel_message("care queue", service_url=service_url)

    assert raw["text"] == "<at>socialcare</at> care queue"
    assert raw["conversation"]["conversationType"] == "channel"
    assert raw["conversation"]["id"] == f"{CHANNEL_ID};messageid={raw['id']}"
    assert raw["channelData"]["teamsChannelId"] == CHANNEL_ID
    assert raw["channelData"]["teamsTeamId"] == TEAM_ID
    assert raw["channelData"]["tenant"] == {"id": TENANT_ID}
    activity = Activity.model_validate(raw)
    [mention] = activity.get_mentions()
    assert mention.mentioned.id == f"28:{BOT_APP_ID}"
    assert activity.recipient.id == f"28:{BOT_APP_ID}"
    assert activity.from_property.aad_object_id == USER_AAD_ID
    assert activity.service_url == service_url

    reply = fakes.channel_message("care approve 12", thread_root_id="1700000000001")
    assert reply["conversation"]["id"] == f"{CHANNEL_ID};messageid=1700000000001"
    assert reply["replyToId"] == "1700000000001"
    plain = fakes.channel_message("hello", mention_bot=False)
    assert plain["text"] == "hello" and all(e["type"] != "mention" for e in plain["entities"])


def test_personal_message_shape() -> None:
    raw = fakes.personal_message("care approve 12")
    activity = Activity.model_validate(raw)

    assert activity.text == "care approve 12"
    assert activity.conversation.conversation_type == "personal"
    assert activity.conversation.id == fakes.personal_conversation_id(USER_ID)
    assert activity.get_mentions() == []


def test_pressing_a_recorded_card_makes_the_universal_action_invoke(
    connector: FakeBotConnector, login: FakeEntraLogin
) -> None:
    async def scenario(client: ConnectorClient) -> Any:
        return await client.conversations.create_conversation(
            ConversationParameters(
                is_group=True,
                channel_data={"channel": {"id": CHANNEL_ID}},
                activity=card_activity(),
                tenant_id=TENANT_ID,
            )
        )

    created = run_connector(connector, login.issue_token(), scenario)
    [message] = connector.card_messages(CHANNEL_ID)

    raw = fakes.press(message, "use_reply", match={"n": 2}, service_url=connector.service_url)

    assert raw["type"] == "invoke"
    assert raw["name"] == "adaptiveCard/action"
    assert raw["value"] == {
        "action": {"type": "Action.Execute", "verb": "use_reply", "data": {"case": 12, "n": 2}},
        "trigger": "manual",
    }
    assert raw["conversation"]["id"] == created.id
    assert raw["replyToId"] == created.activity_id
    assert raw["conversation"]["conversationType"] == "channel"
    activity = Activity.model_validate(raw)
    value = AdaptiveCardInvokeValue.model_validate(activity.value)
    assert (value.action.verb, value.action.data) == ("use_reply", {"case": 12, "n": 2})
    claim = fakes.press(message, "claim", from_id="29:other", aad_object_id="aad-other")
    assert claim["value"]["action"]["title"] == "Claim"
    assert claim["from"]["aadObjectId"] == "aad-other"
    with pytest.raises(LookupError, match="approve"):
        fakes.press(message, "approve")

    direct = fakes.card_action(
        "approve",
        {"case": 12},
        conversation_id=fakes.personal_conversation_id(USER_ID),
        reply_to_id="1700000000009",
    )
    assert direct["conversation"]["conversationType"] == "personal"
    assert "team" not in direct["channelData"]


def test_bot_added_to_a_team_events() -> None:
    update = fakes.conversation_update()
    activity = Activity.model_validate(update)
    assert activity.type == "conversationUpdate"
    assert [m.id for m in activity.members_added] == [f"28:{BOT_APP_ID}"]
    assert activity.recipient.id == f"28:{BOT_APP_ID}"
    assert update["channelData"]["eventType"] == "teamMemberAdded"
    assert update["channelData"]["team"]["id"] == TEAM_ID
    assert update["conversation"]["id"] == CHANNEL_ID

    install = fakes.installation_update()
    assert Activity.model_validate(install).action == "add"
    assert install["channelData"]["team"]["id"] == TEAM_ID
    personal = fakes.installation_update(personal=True, action="remove")
    assert personal["conversation"]["conversationType"] == "personal"
    assert personal["action"] == "remove"
