"""Meta's webhook through the real runtime: its aiohttp routes, the inbox worker, the
pipeline, a fake Slack for cards and a fake Graph API for replies."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Secrets, appsecret_proof, parse_config
from bot.models import CaseState
from bot.ports import FixedClock
from bot.runtime import Runtime
from tests.conftest import AGENT, LEAD, START, config_data
from tests.fakes.meta import (
    IG_ACCOUNT_ID,
    PAGE_ID,
    VERIFY_TOKEN,
    FakeGraph,
    delivery,
    feed_comment,
    sign,
    start_fake_graph,
)
from tests.fakes.slack import FakeSlack, start_fake_slack
from tests.pg import postgres_server_fixture, postgres_url_fixture  # noqa: F401

SLACK_TOKEN = "xoxb-test-meta-not-real"
MAYA = ("901", "Maya Okafor")
REPLY = "Sorry Maya! Please send us your booking reference by private message."


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with start_fake_graph() as fake:
        fake.now = START
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with start_fake_slack() as fake:
        yield fake


def make_runtime(tmp_path: Path, graph: FakeGraph, slack: FakeSlack, **secrets: str) -> Runtime:
    data = config_data()
    data["sources"] = {
        "facebook": {"enabled": True, "page_id": PAGE_ID, "poll_seconds": 30},
        "instagram": {"enabled": True, "account_id": IG_ACCOUNT_ID, "poll_seconds": 30},
    }
    data["publish"] = {"dry_run": False}
    config = parse_config(data, base_dir=tmp_path)
    values: dict[str, Any] = {
        "slack_bot_token": SLACK_TOKEN,
        "slack_signing_secret": "test-signing-secret-not-real",
        "slack_api_url": slack.api_url,
        "meta_page_access_token": graph.token,
        "meta_app_secret": graph.app_secret,
        "meta_verify_token": VERIFY_TOKEN,
        "meta_graph_url": graph.url,
        **secrets,
    }
    return Runtime(config, Secrets(**values), clock=FixedClock(START))


@pytest.fixture
def runtime(tmp_path: Path, graph: FakeGraph, slack: FakeSlack) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path, graph, slack)
    yield runtime
    runtime.store.close()


def http(runtime: Runtime, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
    """One request to the runtime's own aiohttp application."""

    async def go() -> tuple[int, str]:
        async with TestClient(TestServer(runtime.web_app())) as client:
            response = await client.request(method, path, **kwargs)
            return response.status, await response.text()

    return asyncio.run(go())


def deliver(runtime: Runtime, body: bytes, signature: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    headers["X-Hub-Signature-256"] = sign(body) if signature is None else signature
    if signature == "":
        del headers["X-Hub-Signature-256"]
    return http(runtime, "POST", "/meta/webhook", data=body, headers=headers)


def counts(runtime: Runtime) -> tuple[int, int]:
    store = runtime.store
    return (
        int(store.scalar("SELECT count(*) FROM mentions") or 0),
        int(store.scalar("SELECT count(*) FROM outbox WHERE kind = 'meta_delivery'") or 0),
    )


def comment_delivery(
    graph: FakeGraph, text: str = "my flight was cancelled, refund please"
) -> tuple[str, bytes]:
    post = graph.add_post("Our winter timetable is out", at=START - timedelta(hours=2))
    comment = graph.add_comment(post, text, author=MAYA, at=START)
    return comment, delivery(
        "page", PAGE_ID, [feed_comment(comment, post, text, author=MAYA, at=START)]
    )


def test_a_signed_comment_becomes_a_card_and_its_approved_reply_is_posted_once(
    runtime: Runtime, graph: FakeGraph, slack: FakeSlack
) -> None:
    comment, body = comment_delivery(graph)
    assert deliver(runtime, body) == (200, "EVENT_RECEIVED")
    assert runtime.meta_inbox.drain() == 1
    [chat] = runtime.chat_workers
    chat.drain()
    [card] = slack.calls_to("chat.postMessage")
    shown = json.dumps(card)
    assert "my flight was cancelled" in shown
    assert "Facebook" in shown
    assert card["channel"] == "C0CARE"
    # Facebook gives no usernames: the card names the person, not a page-scoped id.
    assert "Maya Okafor" in shown and "@901" not in shown

    service = runtime.service
    [case] = service.queue("care")
    assert (case.network, case.mention_id) == ("facebook", comment)
    service.claim(AGENT, case.id)
    service.reply(AGENT, case.id, REPLY)
    service.approve(LEAD, case.id)
    assert runtime.publish_worker.drain() == 1
    assert service.get_case(case.id).state is CaseState.PUBLISHED
    assert [r["message"] for r in graph.page_replies(comment)] == [REPLY]
    assert runtime.publish_worker.drain() == 0
    assert len(graph.page_replies(comment)) == 1


def test_bad_missing_and_replayed_deliveries_change_nothing(
    runtime: Runtime, graph: FakeGraph
) -> None:
    _, body = comment_delivery(graph)
    assert deliver(runtime, body, signature="")[0] == 401
    assert deliver(runtime, body, signature="sha256=" + "0" * 64)[0] == 403
    assert deliver(runtime, body, signature=sign(body, "another-app-secret"))[0] == 403
    # A body changed after signing fails too.
    assert (
        deliver(runtime, body.replace(b"cancelled", b"CANCELLED"), signature=sign(body))[0] == 403
    )
    assert counts(runtime) == (0, 0)

    assert deliver(runtime, body)[0] == 200
    runtime.meta_inbox.drain()
    assert counts(runtime) == (1, 1)
    assert deliver(runtime, body) == (200, "ALREADY_RECEIVED")  # the same delivery again
    # Meta's retry of the same change in a new envelope: stored, read, but no second case.
    assert deliver(runtime, body.replace(b"1700000000", b"1700000099"))[0] == 200
    runtime.meta_inbox.drain()
    assert counts(runtime) == (1, 2)
    assert len(runtime.service.queue("care")) == 1


def test_the_handshake_needs_the_verify_token(runtime: Runtime) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    ok = http(runtime, "GET", "/meta/webhook", params={**query, "hub.verify_token": VERIFY_TOKEN})
    assert ok == (200, "1158201444")
    wrong = http(runtime, "GET", "/meta/webhook", params={**query, "hub.verify_token": "guess"})
    assert wrong[0] == 403 and "1158201444" not in wrong[1]
    assert http(runtime, "GET", "/meta/webhook", params={"hub.challenge": "1"})[0] == 403
    assert counts(runtime) == (0, 0)


def test_edits_removals_and_the_pages_own_comments_are_no_cases(
    runtime: Runtime, graph: FakeGraph
) -> None:
    post = graph.add_post("Timetable", at=START - timedelta(hours=1))
    changes = [
        feed_comment("1_1", post, "edited text", author=MAYA, at=START, verb="edited"),
        feed_comment("1_2", post, "gone", author=MAYA, at=START, verb="remove"),
        feed_comment("1_3", post, "Thanks all!", author=(PAGE_ID, "Acme Air"), at=START),
        {"field": "feed", "value": {"item": "reaction", "verb": "add", "post_id": post}},
        {"field": "feed", "value": {"item": "comment", "verb": "add"}},  # malformed: no id
        feed_comment("1_4", post, "where is my bag", author=MAYA, at=START),
    ]
    assert deliver(runtime, delivery("page", PAGE_ID, changes))[0] == 200
    runtime.meta_inbox.drain()
    assert [c.mention_id for c in runtime.service.queue("care")] == ["1_4"]


def test_a_page_mention_is_read_and_becomes_a_case(runtime: Runtime, graph: FakeGraph) -> None:
    theirs = graph.add_elsewhere("@Acme Air cancelled my flight, no refund", author=MAYA, at=START)
    change = {
        "field": "mention",
        "value": {"post_id": theirs, "item": "post", "verb": "add", "sender_id": MAYA[0]},
    }
    assert deliver(runtime, delivery("page", PAGE_ID, [change]))[0] == 200
    runtime.meta_inbox.drain()
    [case] = runtime.service.queue("care")
    assert case.mention_id == theirs
    assert runtime.service.view(case.id).author.name == "Maya Okafor"


def test_instagram_comments_and_mentions_become_cases(runtime: Runtime, graph: FakeGraph) -> None:
    media = graph.add_media("New routes to Lisbon", at=START - timedelta(hours=3))
    comment = graph.add_ig_comment(media, "lost bag at LIS, help", username="bo.travels", at=START)
    theirs = graph.add_media("@acmeair delayed 3 hours again", owner="kim", at=START)
    other = graph.add_media("holiday pics", owner="lu", at=START)
    in_comment = graph.add_ig_comment(other, "@acmeair my refund?", username="lu", at=START)
    changes = [
        {
            "field": "comments",
            "value": {
                "from": {"id": "igsid-bo.travels", "username": "bo.travels"},
                "media": {"id": media, "media_product_type": "FEED"},
                "id": comment,
                "text": "lost bag at LIS, help",
            },
        },
        {"field": "mentions", "value": {"media_id": theirs}},
        {"field": "mentions", "value": {"media_id": other, "comment_id": in_comment}},
    ]
    assert deliver(runtime, delivery("instagram", IG_ACCOUNT_ID, changes))[0] == 200
    runtime.meta_inbox.drain()
    cases = {c.mention_id: c for c in runtime.service.queue("care")}
    assert set(cases) == {comment, f"mention:{theirs}", f"mention:{other}:{in_comment}"}
    assert {runtime.service.view(c.id).author.handle for c in cases.values()} == {
        "bo.travels",
        "kim",
        "lu",
    }


def test_a_delivery_is_kept_until_meta_can_be_asked(runtime: Runtime, graph: FakeGraph) -> None:
    theirs = graph.add_media("@acmeair delayed again", owner="kim", at=START)
    body = delivery(
        "instagram", IG_ACCOUNT_ID, [{"field": "mentions", "value": {"media_id": theirs}}]
    )
    graph.queue("GET", IG_ACCOUNT_ID, 500, {"error": {"message": "temporarily down", "code": 2}})
    assert deliver(runtime, body)[0] == 200
    assert runtime.meta_inbox.run_once()
    assert counts(runtime) == (0, 1)  # not read yet, still queued
    runtime.clock.advance(600)  # type: ignore[attr-defined]
    assert runtime.meta_inbox.drain() == 1
    assert counts(runtime)[0] == 1


def test_backfill_then_the_late_webhook_changes_nothing(runtime: Runtime, graph: FakeGraph) -> None:
    post = graph.add_post("Timetable", at=START - timedelta(days=1))
    said = graph.add_comment(
        post, "refund still missing", author=MAYA, at=START - timedelta(hours=1)
    )
    runtime.poll_sources()
    assert [c.mention_id for c in runtime.service.queue("care")] == [said]
    body = delivery(
        "page", PAGE_ID, [feed_comment(said, post, "refund still missing", author=MAYA, at=START)]
    )
    assert deliver(runtime, body)[0] == 200
    runtime.meta_inbox.drain()
    assert counts(runtime)[0] == 1


def test_healthz_knows_both_networks(runtime: Runtime) -> None:
    runtime.preflight()
    status, text = http(runtime, "GET", "/healthz")
    parts = json.loads(text)["parts"]
    assert parts["facebook"]["state"] == "ok"
    assert parts["instagram"]["state"] == "ok"
    assert status in (200, 503)  # no workers are running in this test


def test_a_refused_token_at_start_names_the_variable(
    tmp_path: Path, graph: FakeGraph, slack: FakeSlack
) -> None:
    from bot.errors import ConfigError

    runtime = make_runtime(
        tmp_path, graph, slack, meta_page_access_token="EAAexpiredtoken00000000000"
    )
    try:
        with pytest.raises(ConfigError) as refused:
            runtime._checks()["facebook"]()
        assert "META_PAGE_ACCESS_TOKEN" in str(refused.value)
    finally:
        runtime.store.close()


def test_no_token_or_proof_in_logs_cards_or_the_database(
    tmp_path: Path, graph: FakeGraph, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.logs import RedactSecrets

    runtime = make_runtime(tmp_path, graph, slack)
    redact = RedactSecrets(runtime.secrets.values())
    caplog.handler.addFilter(redact)  # as `socialcare run` installs it on its handler
    caplog.set_level(logging.DEBUG)  # urllib3 logs each URL (with the proof) at DEBUG
    try:
        comment, body = comment_delivery(graph)
        deliver(runtime, body)
        runtime.meta_inbox.drain()
        runtime.poll_sources()
        graph.lose_next("POST", "/comments")
        [case] = runtime.service.queue("care")
        runtime.service.reply(AGENT, case.id, REPLY)
        runtime.service.approve(LEAD, case.id)
        runtime.publish_worker.drain()  # the answer is lost: uncertain
        runtime.clock.advance(600)  # type: ignore[attr-defined]
        runtime.publish_worker.drain()  # found by reconciliation
        assert runtime.service.get_case(case.id).state is CaseState.PUBLISHED
        assert len(graph.page_replies(comment)) == 1
        runtime.chat_workers[0].drain()
        cards = json.dumps([c.params for c in slack.calls])
    finally:
        runtime.store.close()
    proof = appsecret_proof(graph.token, graph.app_secret)
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    database = b"".join(p.read_bytes() for p in tmp_path.glob("test.db*"))
    for secret in (graph.token, graph.app_secret, proof, VERIFY_TOKEN):
        assert secret not in logged
        assert secret not in cards
        assert secret.encode() not in database
    # The fake saw the proof on every call: it refuses calls without it.
    assert graph.calls and all(c.params.get("appsecret_proof") == proof for c in graph.calls)


def test_deliveries_are_stored_once_and_read_on_postgresql(
    tmp_path: Path, graph: FakeGraph, postgres_url: str
) -> None:
    from aiohttp import web

    from bot.service import CareService
    from bot.storage import open_store
    from handlers.meta_webhook import MetaWebhook
    from integrations.meta import MetaInbox
    from integrations.meta_graph import GraphClient

    data = config_data()
    data["bot"]["database"] = postgres_url
    config = parse_config(data, base_dir=tmp_path)
    service = CareService(config, open_store(config.database_target()), clock=FixedClock(START))
    hook = MetaWebhook(service, app_secret=graph.app_secret, verify_token=VERIFY_TOKEN)
    client = GraphClient(access_token=graph.token, app_secret=graph.app_secret, base_url=graph.url)
    inbox = MetaInbox(service, client, page_id=PAGE_ID, account_id=None)
    app = web.Application()
    app.router.add_post("/meta/webhook", hook.deliver)
    comment, body = comment_delivery(graph)

    async def post_twice() -> list[str]:
        async with TestClient(TestServer(app)) as http_client:
            answers = []
            for _ in range(2):
                sent = await http_client.post(
                    "/meta/webhook", data=body, headers={"X-Hub-Signature-256": sign(body)}
                )
                answers.append(await sent.text())
            return answers

    try:
        assert asyncio.run(post_twice()) == ["EVENT_RECEIVED", "ALREADY_RECEIVED"]
        assert inbox.drain() == 1
        [case] = service.queue("care")
        assert (case.network, case.mention_id) == ("facebook", comment)
    finally:
        service.store.close()
