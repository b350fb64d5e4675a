"""FakeSlack, exercised through the real slack_sdk WebClient and AsyncWebClient."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookClient

from tests.fakes import slack as fakes
from tests.fakes.slack import FakeSlack, FakeSlackTimeout, start_fake_slack

TOKEN = "xoxb-test-token"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*New mention*"}}]

# The shareable fixture, exposed here the way a conftest would.
fake_slack = fakes.fake_slack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with start_fake_slack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    # retry_handlers=[] drops the default ConnectionErrorRetryHandler: failures surface at once.
    return WebClient(token=TOKEN, base_url=fake.api_url, timeout=5, retry_handlers=[])


def test_auth_test_returns_the_bot_identity(fake: FakeSlack, client: WebClient) -> None:
    response = client.auth_test()

    assert response["ok"] is True
    assert response["user_id"] == "U0BOT"
    assert response["team_id"] == "T0ACME"
    [call] = fake.calls
    assert call.method == "auth.test"
    assert call.headers["authorization"] == f"Bearer {TOKEN}"


def test_api_url_shape(fake: FakeSlack) -> None:
    assert fake.api_url == f"http://127.0.0.1:{fake.port}/api/"
    assert fake.response_url("abc") == f"http://127.0.0.1:{fake.port}/respond/abc"


def test_post_message_is_recorded_with_blocks_decoded(fake: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C0CARE", text="New mention", blocks=BLOCKS)
    second = client.chat_postMessage(channel="C0CARE", text="again", thread_ts=first["ts"])

    [posted, reply] = fake.calls_to("chat.postMessage")
    assert posted["blocks"] == BLOCKS
    assert posted["channel"] == "C0CARE"
    assert reply["thread_ts"] == first["ts"]
    assert first["channel"] == "C0CARE"
    assert first["message"]["blocks"] == BLOCKS
    assert float(first["ts"]) < float(second["ts"])
    assert fake.calls[0].headers["content-type"].startswith("application/json")


def test_form_encoded_json_strings_are_decoded(fake: FakeSlack, client: WebClient) -> None:
    # api_call(params=...) sends a form body; Slack expects blocks as a JSON string there.
    client.api_call("chat.postMessage", params={"channel": "C1", "blocks": json.dumps(BLOCKS)})

    [call] = fake.calls
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert call.params["blocks"] == json.dumps(BLOCKS)  # raw, as sent
    assert fake.calls_to("chat.postMessage")[0]["blocks"] == BLOCKS  # decoded


def test_calls_without_a_token_are_not_authed(fake: FakeSlack) -> None:
    anonymous = WebClient(base_url=fake.api_url, retry_handlers=[])

    with pytest.raises(SlackApiError) as info:
        anonymous.chat_postMessage(channel="C1", text="hi")

    assert info.value.response["error"] == "not_authed"
    assert "authorization" not in fake.calls[0].headers


def test_queued_429_is_retried_by_the_rate_limit_handler(fake: FakeSlack) -> None:
    # Retry-After "0": the handler sleeps int(header) + random.random(), i.e. under a second.
    fake.queue(
        "chat.postMessage",
        status=429,
        body={"ok": False, "error": "ratelimited"},
        headers={"Retry-After": "0"},
    )
    client = WebClient(
        token=TOKEN,
        base_url=fake.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )

    response = client.chat_postMessage(channel="C1", text="hi")

    assert response["ok"] is True
    assert len(fake.calls_to("chat.postMessage")) == 2


def test_429_without_a_handler_raises_with_status_and_retry_after(
    fake: FakeSlack, client: WebClient
) -> None:
    fake.queue("chat.postMessage", status=429, headers={"Retry-After": "1"})

    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel="C1", text="hi")

    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "1"
    assert info.value.response["error"] == "ratelimited"
    # The queue is one-shot: defaults resume.
    assert client.chat_postMessage(channel="C1", text="hi")["ok"] is True


def test_queue_is_fifo_per_method(fake: FakeSlack, client: WebClient) -> None:
    fake.queue("chat.update", body={"ok": False, "error": "message_not_found"})
    fake.queue("chat.update", body={"ok": False, "error": "cant_update_message"})

    errors = []
    for _ in range(2):
        with pytest.raises(SlackApiError) as info:
            client.chat_update(channel="C1", ts="1.2", text="x")
        errors.append(info.value.response["error"])

    assert errors == ["message_not_found", "cant_update_message"]
    assert client.auth_test()["ok"] is True  # other methods were never affected
    assert client.chat_update(channel="C1", ts="1.2", text="x")["ts"] == "1.2"


def test_fail_all_simulates_an_outage_until_restored(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_all(None, status=503)

    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel="C1", text="hi")
    assert info.value.response.status_code == 503
    with pytest.raises(SlackApiError):
        client.auth_test()

    fake.restore()
    assert client.chat_postMessage(channel="C1", text="hi")["ok"] is True


def test_fail_all_for_one_method(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_all("chat.postMessage", status=500)

    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel="C1", text="hi")

    assert info.value.response.status_code == 500
    assert client.auth_test()["ok"] is True


def test_response_url_post_is_recorded(fake: FakeSlack) -> None:
    webhook = WebhookClient(fake.response_url("abc"))

    response = webhook.send(text="Claimed by <@U0AGENT1>", replace_original=True)

    assert response.status_code == 200
    assert json.loads(response.body) == {"ok": True}
    [call] = fake.calls_to("respond:abc")
    assert call == {"text": "Claimed by <@U0AGENT1>", "replace_original": True}


def test_files_upload_v2_round_trip(fake: FakeSlack, client: WebClient) -> None:
    response = client.files_upload_v2(
        channel="C0CARE", content="case export", filename="case.txt", title="Case"
    )

    assert response["file"]["title"] == "Case"
    [ask] = fake.calls_to("files.getUploadURLExternal")
    assert ask["filename"] == "case.txt"
    file_id = response["file"]["id"]
    [upload] = fake.calls_to(f"upload:{file_id}")
    assert upload["data"] == b"case export"
    [done] = fake.calls_to("files.completeUploadExternal")
    assert done["files"] == [{"id": file_id, "title": "Case"}]
    assert done["channel_id"] == "C0CARE"


def test_views_and_lookups(fake: FakeSlack, client: WebClient) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Reply"}, "blocks": []}

    opened = client.views_open(trigger_id="123.456", view=view)
    updated = client.views_update(view_id=opened["view"]["id"], view=view)
    user = client.users_info(user="U0AGENT1")
    channel = client.conversations_info(channel="C0CARE")
    ephemeral = client.chat_postEphemeral(channel="C1", user="U0AGENT1", text="only you")

    assert opened["view"]["id"] == "V123"
    assert opened["view"]["type"] == "modal"
    assert updated["view"]["id"] == "V123"
    assert user["user"]["id"] == "U0AGENT1"
    assert channel["channel"]["id"] == "C0CARE"
    assert ephemeral["message_ts"]
    assert client.api_call("reactions.add", json={"name": "eyes"})["ok"] is True
    assert fake.calls_to("views.open")[0]["view"] == view


def test_set_handler_overrides_a_default(fake: FakeSlack, client: WebClient) -> None:
    fake.set_handler("users.info", lambda p: {"ok": True, "user": {"id": p["user"], "is_bot": 1}})

    assert client.users_info(user="U9")["user"] == {"id": "U9", "is_bot": 1}

    fake.set_handler("users.info", None)
    assert client.users_info(user="U9")["user"]["is_bot"] is False


def test_wait_for_returns_once_calls_arrive_from_another_thread(
    fake: FakeSlack, client: WebClient
) -> None:
    go = threading.Event()

    def worker() -> None:
        go.wait()
        for n in range(3):
            client.chat_postMessage(channel="C1", text=f"msg {n}")

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert fake.calls_to("chat.postMessage") == []
        go.set()
        calls = fake.wait_for("chat.postMessage", count=3, timeout=5)
    finally:
        thread.join(timeout=5)

    assert [c["text"] for c in calls] == ["msg 0", "msg 1", "msg 2"]


def test_wait_for_times_out_with_a_helpful_message(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    started = time.monotonic()

    with pytest.raises(FakeSlackTimeout, match=r"chat\.postMessage.*auth\.test"):
        fake.wait_for("chat.postMessage", timeout=0.2)

    assert time.monotonic() - started < 2


def test_clear_forgets_calls(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    fake.clear()
    assert fake.calls == []


def test_async_client_against_the_fake(fake: FakeSlack) -> None:
    fake.queue("chat.postMessage", status=429, headers={"Retry-After": "0"})

    async def scenario() -> tuple[str, str, str]:
        client = AsyncWebClient(
            token=TOKEN,
            base_url=fake.api_url,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
        )
        who = await client.auth_test()
        posted = await client.chat_postMessage(channel="C2", text="hi", blocks=BLOCKS)
        # AsyncWebClient really sends GET methods as GET with a query string.
        user = await client.users_info(user="U0AGENT2")
        return who["user_id"], posted["channel"], user["user"]["id"]

    assert asyncio.run(scenario()) == ("U0BOT", "C2", "U0AGENT2")
    assert len(fake.calls_to("chat.postMessage")) == 2
    assert fake.calls_to("chat.postMessage")[-1]["blocks"] == BLOCKS
    users_info = [c for c in fake.calls if c.method == "users.info"]
    assert users_info[0].http_method == "GET"


def test_async_client_outage_raises(fake: FakeSlack) -> None:
    fake.fail_all(status=503)

    async def scenario() -> None:
        client = AsyncWebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[])
        await client.chat_postMessage(channel="C1", text="hi")

    with pytest.raises(SlackApiError) as info:
        asyncio.run(scenario())
    assert info.value.response.status_code == 503


def test_stop_is_clean_and_idempotent() -> None:
    fake = start_fake_slack()
    url = fake.api_url
    fake.stop()
    fake.stop()

    with pytest.raises(OSError):
        urllib.request.urlopen(url + "auth.test", data=b"", timeout=1)


def test_shared_fixture_works(fake_slack: FakeSlack) -> None:
    client = WebClient(token=TOKEN, base_url=fake_slack.api_url)
    assert client.auth_test()["bot_id"] == "B0BOT"
