"""Mastodon through the real Mastodon.py client against a fake instance on loopback: watching
mentions and hashtags, and publishing replies exactly once."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from mastodon import Mastodon
from mastodon import internals as mastodon_internals

from bot.delivery import PublishWorker
from bot.errors import CredentialRejected, DependencyUnreachable, Refusal
from bot.health import FAILING, OK, Health
from bot.models import CaseState
from bot.ports import FixedClock, PublishRequest
from bot.service import CareService
from bot.textcheck import reply_length
from integrations.mastodon_api import (
    MastodonMentionSource,
    MastodonPublisher,
    check_credentials,
    make_client,
    max_characters,
    plain_text,
)
from tests.conftest import AGENT, LEAD
from tests.fakes.mastodon import IN_REPLY_NOT_FOUND, FakeMastodon, start_fake_mastodon

REPLY = "Sorry about this! Please DM us your booking reference and we will look into it."
MENTIONS = "/api/v1/notifications"
TAG = "/api/v1/timelines/tag/AcmeAir"


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    with start_fake_mastodon() as server:
        yield server


@pytest.fixture
def maya(fake: FakeMastodon) -> str:
    return fake.add_account("maya", "Maya Okafor", followers=812)


@pytest.fixture
def bo(fake: FakeMastodon) -> str:
    return fake.add_account("bo", "Bo", domain="other.example", followers=20_000)


def client(fake: FakeMastodon, *, timeout: float = 5, token: str | None = None) -> Mastodon:
    return make_client(instance=fake.url, access_token=token or fake.token, timeout=timeout)


def source(
    fake: FakeMastodon,
    service: CareService,
    clock: FixedClock,
    *,
    hashtags: list[str] | None = None,
    health: Health | None = None,
    token: str | None = None,
) -> MastodonMentionSource:
    return MastodonMentionSource(
        client(fake, token=token),
        instance=fake.url,
        hashtags=hashtags or [],
        poll_seconds=30,
        clock=clock,
        cursors=service,
        health=health,
    )


def publisher(fake: FakeMastodon, *, timeout: float = 5) -> MastodonPublisher:
    return MastodonPublisher(client(fake, timeout=timeout), brand_account_id=fake.brand_id)


def stored(service: CareService) -> list[tuple[str, str]]:
    rows = service.store.query("SELECT id, text FROM mentions ORDER BY id")
    return [(r["id"], r["text"]) for r in rows]


MENTIONS_KEY = "mastodon:127.0.0.1:mentions"


# ------------------------------------------------------------------ watching


def test_mention_notifications_become_cases_once_and_the_cursor_survives_a_restart(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str, bo: str
) -> None:
    first = fake.add_mention(maya, "my refund never arrived & I'm <still> waiting\nday 12")
    direct = fake.add_mention(bo, "@AcmeAir@127.0.0.1 lost bag, see https://example.com/bag/123")
    fake.add_notification("favourite", bo, first)  # not a mention: not a case
    src = source(fake, service, clock)
    assert src.poll_due(service.ingest_many)
    assert stored(service) == [
        (first, "@AcmeAir my refund never arrived & I'm <still> waiting\nday 12"),
        (direct, "@AcmeAir lost bag, see https://example.com/bag/123"),
    ]
    assert fake.calls_to("GET", MENTIONS)[0].params["types[]"] == ["mention"]
    cursor = service.cursor(MENTIONS_KEY)
    assert cursor is not None

    case = service.view(service.store.scalar("SELECT case_id FROM mentions WHERE id = ?", [first]))
    assert case.author.handle == "maya@127.0.0.1"  # a local account, with the instance's domain
    assert case.author.followers == 812
    assert case.url == f"{fake.url}/@maya/{first}"
    remote = service.view(
        service.store.scalar("SELECT case_id FROM mentions WHERE id = ?", [direct])
    )
    assert remote.author.handle == "bo@other.example"

    assert not src.poll_due(service.ingest_many), "nothing is due before poll_seconds pass"
    clock.advance(30)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 2
    assert fake.calls_to("GET", MENTIONS)[-1].query["min_id"] == cursor

    # A restart (a new source) reads on from the stored cursor: nothing again, nothing lost.
    later = fake.add_mention(maya, "hello? still waiting")
    restarted = source(fake, service, clock)
    restarted.poll_due(service.ingest_many)
    assert [i for i, _ in stored(service)] == [first, direct, later]
    assert fake.calls_to("GET", MENTIONS)[-2].query["min_id"] == cursor
    assert service.store.scalar("SELECT count(*) FROM cases") == 3


def test_hashtag_statuses_become_cases_but_not_the_brands_own_or_reblogs(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str, bo: str
) -> None:
    talk = fake.add_status(maya, "#AcmeAir lost my bag again", language="en")
    both = fake.add_mention(bo, "#AcmeAir delayed 3 hours")  # in both streams: one case
    fake.add_status(fake.brand_id, "Our #AcmeAir winter schedule is out")
    src = source(fake, service, clock, hashtags=["#AcmeAir"])
    src.poll_due(service.ingest_many)
    assert sorted(i for i, _ in stored(service)) == sorted([talk, both])
    assert service.cursor("mastodon:127.0.0.1:tag:acmeair") is not None

    # A page with a reblog and a brand status (a tag timeline should not list them; the
    # source does not rely on it): the cursor passes them, no case.
    boost = fake.add_status(bo, "", reblog_of=talk)
    own = fake.add_status(fake.brand_id, "#AcmeAir news")
    fake.queue("GET", TAG, 200, [fake.status_json(own), fake.status_json(boost)])
    clock.advance(30)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 2
    assert service.cursor("mastodon:127.0.0.1:tag:acmeair") == own
    view = service.view(service.store.scalar("SELECT case_id FROM mentions WHERE id = ?", [talk]))
    assert view.text == "#AcmeAir lost my bag again"


def test_first_run_takes_the_latest_page_then_paging_reads_every_backlog_in_order(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str, bo: str
) -> None:
    for i in range(100):
        fake.add_mention(maya, f"old complaint {i}")
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    texts = [t for _, t in stored(service)]
    assert len(texts) == 80 and "@AcmeAir old complaint 99" in texts
    assert "@AcmeAir old complaint 19" not in texts

    # Down while 200 more arrive; a restart backfills them all, oldest first.
    for i in range(200):
        fake.add_mention(bo if i % 2 else maya, f"complaint number {i}")
    before = len(fake.calls_to("GET", MENTIONS))
    source(fake, service, clock).poll_due(service.ingest_many)
    assert len(stored(service)) == 280
    pages = fake.calls_to("GET", MENTIONS)[before:]
    assert len(pages) == 4  # 80 + 80 + 40, then an empty page
    assert all("min_id" in p.query for p in pages)
    new_cases = service.store.query(
        "SELECT m.text FROM cases c JOIN mentions m ON m.id = c.mention_id"
        " ORDER BY c.id LIMIT 2 OFFSET 80"
    )
    assert [r["text"] for r in new_cases] == [
        "@AcmeAir complaint number 0",
        "@AcmeAir complaint number 1",
    ]


def test_a_429_is_waited_out_with_nothing_lost(
    fake: FakeMastodon,
    service: CareService,
    clock: FixedClock,
    maya: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"the SDK slept {seconds}s in the polling thread")

    monkeypatch.setattr(mastodon_internals, "time", SimpleNamespace(time=time.time, sleep=no_sleep))
    health = Health(clock)
    fake.add_mention(maya, "my flight is delayed")
    fake.queue_rate_limited("GET", MENTIONS, seconds=900)
    src = source(fake, service, clock, hashtags=["AcmeAir"], health=health)
    src.poll_due(service.ingest_many)
    assert stored(service) == []
    assert src.held_until is not None
    assert 899 <= (src.held_until - clock.now()).total_seconds() <= 902
    assert fake.calls_to("GET", TAG) == [], "the account's window is used up for every stream"
    calls = len(fake.calls)
    clock.advance(600)
    assert not src.poll_due(service.ingest_many), "must not poll before the reset"
    assert len(fake.calls) == calls
    clock.advance(305)
    assert src.poll_due(service.ingest_many)
    assert len(stored(service)) == 1
    assert [d.state for d in health.snapshot()] == [OK]  # a 429 is an answer, not an outage


def test_a_used_up_window_paces_the_next_poll(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str
) -> None:
    fake.add_mention(maya, "one")
    fake.set_rate_limit(2, reset_in=1200)  # verify_credentials, then the notifications page
    src = source(fake, service, clock, hashtags=["AcmeAir"])
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 1
    assert src.held_until is not None
    assert 1199 <= (src.held_until - clock.now()).total_seconds() <= 1202
    assert fake.calls_to("GET", TAG) == [], "no request that would only earn a 429"


def test_a_malformed_notification_is_logged_once_and_skipped(
    fake: FakeMastodon,
    service: CareService,
    clock: FixedClock,
    maya: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = fake.add_mention(maya, "before the broken ones")
    broken = fake.add_raw_notification({"type": "mention", "created_at": "2026-11-02T09:00:00Z"})
    odd = fake.add_raw_notification(
        {"type": "mention", "status": {"id": "1", "content": "<p>hi</p>"}}
    )
    after = fake.add_mention(maya, "after the broken ones")
    src = source(fake, service, clock)
    service.set_cursor(MENTIONS_KEY, "1")  # not a first run: read everything
    with caplog.at_level(logging.WARNING, logger="integrations.mastodon_api"):
        src.poll_due(service.ingest_many)
        assert [i for i, _ in stored(service)] == [before, after]
        assert int(service.cursor(MENTIONS_KEY) or 0) > int(odd)  # passed them
        # Read again (a cursor moved back): the same items are not logged again.
        service.set_cursor(MENTIONS_KEY, "1")
        clock.advance(30)
        src.poll_due(service.ingest_many)
    warnings = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == 2
    assert f"id {broken}" in warnings[0] and "without its status" in warnings[0]
    assert f"id {odd}" in warnings[1] and "status.created_at" in warnings[1]
    assert len(stored(service)) == 2


def test_a_reply_in_the_thread_joins_the_open_case(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str
) -> None:
    root = fake.add_mention(maya, "my bag is missing")
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    second = fake.add_mention(maya, "it had my medication in it", in_reply_to=root)
    fake.add_mention(maya, "please hurry", in_reply_to=second)
    clock.advance(30)
    src.poll_due(service.ingest_many)
    assert service.store.scalar("SELECT count(*) FROM cases") == 1
    assert [p.text for p in service.view(1).thread] == [
        "@AcmeAir it had my medication in it",
        "@AcmeAir please hurry",
    ]
    rows = service.store.query("SELECT conversation_id, in_reply_to_id FROM mentions ORDER BY id")
    assert [r["conversation_id"] for r in rows] == [root, root, root]
    assert rows[1]["in_reply_to_id"] == root


def test_errors_back_off_keep_the_cursor_and_report_health(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str
) -> None:
    health = Health(clock)
    fake.add_mention(maya, "one")
    fake.queue("GET", MENTIONS, 503)
    src = source(fake, service, clock, health=health)
    src.poll_due(service.ingest_many)
    assert service.cursor(MENTIONS_KEY) is None
    [dep] = health.snapshot()
    assert dep.name == "mastodon" and dep.state == FAILING and "HTTP 503" in (dep.last_error or "")
    clock.advance(59)
    assert not src.poll_due(service.ingest_many)
    clock.advance(1)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 1
    assert health.snapshot()[0].state == OK


def test_a_refused_token_while_running_fails_health_naming_the_variable(
    fake: FakeMastodon, service: CareService, clock: FixedClock
) -> None:
    health = Health(clock)
    src = source(fake, service, clock, health=health, token="revoked-token-not-real")
    src.poll_due(service.ingest_many)
    [dep] = health.snapshot()
    assert dep.state == FAILING
    assert "HTTP 401" in (dep.last_error or "")
    assert "MASTODON_ACCESS_TOKEN" in (dep.last_error or "")


# ------------------------------------------------------------------ publishing


def approved(
    service: CareService, fake: FakeMastodon, clock: FixedClock, author: str, **options: object
) -> tuple[int, str]:
    mention = fake.add_mention(author, "my refund never arrived", **options)
    source(fake, service, clock).poll_due(service.ingest_many)
    case_id = int(service.store.scalar("SELECT case_id FROM mentions WHERE id = ?", [mention]))
    service.reply(AGENT, case_id, REPLY)
    service.approve(LEAD, case_id)
    return case_id, mention


@pytest.mark.parametrize("visibility", ["public", "unlisted", "private", "direct"])
def test_an_approved_reply_is_posted_once_with_the_mentions_visibility(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str, visibility: str
) -> None:
    case_id, mention = approved(service, fake, clock, maya, visibility=visibility)
    worker = PublishWorker(service, publisher(fake))
    assert worker.drain() == 1
    [status] = fake.posted()
    assert status["text"] == f"@maya@127.0.0.1 {REPLY}"
    assert status["in_reply_to_id"] == mention
    assert status["visibility"] == visibility  # a direct mention gets a direct reply
    [post] = fake.calls_to("POST", "/api/v1/statuses")
    assert post.headers["idempotency-key"] == status["idempotency_key"]
    assert f"-case-{case_id}-item-" in status["idempotency_key"]
    assert post.headers["authorization"] == f"Bearer {fake.token}"
    case = service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED
    assert case.published_url == status["url"]
    assert worker.drain() == 0 and len(fake.posted()) == 1


def test_the_answer_lost_after_the_status_was_stored_is_found_by_the_brands_statuses(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str
) -> None:
    case_id, mention = approved(service, fake, clock, maya)
    fake.add_status(fake.brand_id, "An unrelated announcement")
    fake.hang_next("POST", "/api/v1/statuses", after_processing=True)
    worker = PublishWorker(service, publisher(fake, timeout=0.5))
    worker.run_once()
    case = service.get_case(case_id)
    assert case.state is CaseState.APPROVED and case.publish_uncertain
    assert len(fake.posted()) == 1  # the instance has it; we do not know
    fake.expire_idempotency_keys()  # more than an hour later: the key cannot help any more
    clock.advance(600)
    worker.run_once()
    case = service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED and not case.publish_uncertain
    [status] = fake.posted()
    assert case.published_url == status["url"]
    assert len(fake.calls_to("POST", "/api/v1/statuses")) == 1, "nothing posted again"
    assert fake.calls_to("GET", f"/api/v1/accounts/{fake.brand_id}/statuses")


def test_the_same_attempt_posted_twice_within_the_hour_is_one_status(
    fake: FakeMastodon, maya: str
) -> None:
    mention = fake.add_mention(maya, "hi")
    pub = publisher(fake)
    request = PublishRequest("case-1-item-1", "mastodon", mention, "maya@127.0.0.1", "@maya hi")
    first = pub.publish(request)
    again = pub.publish(request)
    assert first == again and len(fake.posted()) == 1


@pytest.mark.parametrize(
    ("status", "state", "note"),
    [
        (401, CaseState.FAILED, "MASTODON_ACCESS_TOKEN"),
        (403, CaseState.FAILED, "MASTODON_ACCESS_TOKEN"),
        (422, CaseState.FAILED, "Mastodon refused the reply (HTTP 422"),
        (503, CaseState.APPROVED, None),
        (429, CaseState.APPROVED, None),
    ],
)
def test_publish_errors_lead_to_the_documented_state(
    fake: FakeMastodon,
    service: CareService,
    clock: FixedClock,
    maya: str,
    status: int,
    state: CaseState,
    note: str | None,
) -> None:
    case_id, _ = approved(service, fake, clock, maya)
    fake.queue("POST", "/api/v1/statuses", status)
    worker = PublishWorker(service, publisher(fake))
    worker.run_once()
    case = service.get_case(case_id)
    assert case.state is state
    if note:
        assert note in (case.note or "")
        return
    # Transient: retried later. A 5xx may come after the instance stored the status, so the
    # brand's statuses are checked first; a 429 means nothing was posted: no check.
    clock.advance(600)
    worker.run_once()
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert len(fake.posted()) == 1
    checked = bool(fake.calls_to("GET", f"/api/v1/accounts/{fake.brand_id}/statuses"))
    assert checked is (status == 503)


def test_a_deleted_mention_fails_the_case_with_the_instances_reason(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str
) -> None:
    case_id, mention = approved(service, fake, clock, maya)
    fake.delete_status(mention)
    PublishWorker(service, publisher(fake)).drain()
    case = service.get_case(case_id)
    assert case.state is CaseState.FAILED
    assert "deleted, or its author blocked the brand" in (case.note or "")
    assert "Record not found" in (case.note or "")
    assert fake.posted() == []


def test_a_blocked_brand_or_a_mention_gone_while_posting_fails_the_case(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str, bo: str
) -> None:
    case_id, _ = approved(service, fake, clock, maya)
    fake.block_brand(maya)
    PublishWorker(service, publisher(fake)).drain()
    assert service.get_case(case_id).state is CaseState.FAILED

    other, _ = approved(service, fake, clock, bo)
    fake.queue("POST", "/api/v1/statuses", 404, {"error": IN_REPLY_NOT_FOUND})
    PublishWorker(service, publisher(fake)).drain()
    case = service.get_case(other)
    assert case.state is CaseState.FAILED
    assert IN_REPLY_NOT_FOUND in (case.note or "")
    assert fake.posted() == []


def test_find_existing_accepts_any_brand_reply_to_the_target(fake: FakeMastodon, maya: str) -> None:
    fake.add_status(fake.brand_id, "An announcement before the mentions")
    mention = fake.add_mention(maya, "hi")
    quiet = fake.add_mention(maya, "anyone?")
    edited = fake.add_status(fake.brand_id, "@maya different words", in_reply_to=mention)
    fake.add_status(maya, "@AcmeAir me too", in_reply_to=quiet)  # not the brand's
    for i in range(100):
        fake.add_status(fake.brand_id, f"later announcement {i}")
    pub = MastodonPublisher(client(fake))  # looks the brand up itself
    found = pub.find_existing(PublishRequest("k", "mastodon", mention, "maya", "@maya hi"))
    assert found is not None and found.post_id == edited
    assert found.url == f"{fake.url}/@AcmeAir/{edited}"
    calls = len(fake.calls_to("GET", f"/api/v1/accounts/{fake.brand_id}/statuses"))
    assert pub.find_existing(PublishRequest("k", "mastodon", quiet, "maya", "x")) is None
    pages = fake.calls_to("GET", f"/api/v1/accounts/{fake.brand_id}/statuses")[calls:]
    assert len(pages) == 3, "stops at statuses older than the mention"


def test_a_failing_check_keeps_the_case_uncertain(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str
) -> None:
    case_id, _ = approved(service, fake, clock, maya)
    fake.queue("POST", "/api/v1/statuses", 502)
    fake.queue("GET", f"/api/v1/accounts/{fake.brand_id}/statuses", 503)
    worker = PublishWorker(service, publisher(fake))
    worker.run_once()
    clock.advance(600)
    worker.run_once()
    case = service.get_case(case_id)
    assert case.state is CaseState.APPROVED and case.publish_uncertain
    with pytest.raises(Refusal):
        service.set_draft(LEAD, case_id, "@maya@127.0.0.1 something else")
    clock.advance(600)
    worker.run_once()
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert len(fake.posted()) == 1


# ------------------------------------------------------------------ limits and start-up


def test_the_instances_character_limit_is_read_and_enforced(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str
) -> None:
    mention = fake.add_mention(maya, "my refund never arrived")
    source(fake, service, clock).poll_due(service.ingest_many)
    case_id = int(service.store.scalar("SELECT case_id FROM mentions WHERE id = ?", [mention]))
    words = "x" * 600
    with pytest.raises(Refusal, match="100 over the limit of 500"):
        service.reply(AGENT, case_id, f"@maya@127.0.0.1 {words[:594]}")  # "@maya" + 595 = 600

    fake.max_characters = 1000
    limit = max_characters(client(fake))
    assert limit == 1000
    service.reply_limits["mastodon"] = limit
    too_long = f"@maya@127.0.0.1 {'y' * 1100}"
    over = reply_length(too_long, "mastodon") - 1000
    with pytest.raises(Refusal, match=f"{over} over the limit of 1000"):
        service.reply(AGENT, case_id, too_long)
    # A URL counts 23 whatever its length; 600 characters are fine on this instance.
    ok = f"@maya@127.0.0.1 {words[:550]} https://acme.example/{'p' * 200}"
    assert service.reply(AGENT, case_id, ok).state is CaseState.AWAITING_APPROVAL
    service.approve(LEAD, case_id)
    PublishWorker(service, publisher(fake)).drain()
    assert service.get_case(case_id).state is CaseState.PUBLISHED


def test_max_characters_falls_back_to_v1_then_to_500(fake: FakeMastodon) -> None:
    fake.max_characters = 640
    fake.queue("GET", "/api/v2/instance", 404)
    assert max_characters(client(fake)) == 640
    fake.queue("GET", "/api/v2/instance", 200, {"domain": "127.0.0.1"})
    fake.queue("GET", "/api/v1/instance", 200, {"uri": "127.0.0.1"})
    assert max_characters(client(fake)) == 500
    fake.queue("GET", "/api/v2/instance", 503)
    assert max_characters(client(fake)) == 500


def test_check_credentials(fake: FakeMastodon) -> None:
    assert check_credentials(client(fake)) == f"@AcmeAir@127.0.0.1 ({fake.brand_id})"
    with pytest.raises(CredentialRejected) as refused:
        check_credentials(client(fake, token="revoked-token-not-real"))
    problem = refused.value.problems[0]
    assert problem.startswith(f"MASTODON_ACCESS_TOKEN: {fake.url} refused the access token")
    assert "The access token is invalid" in problem
    assert "revoked-token-not-real" not in problem
    fake.queue("GET", "/api/v1/accounts/verify_credentials", 403, {"error": "disabled"})
    with pytest.raises(CredentialRejected, match="MASTODON_ACCESS_TOKEN"):
        check_credentials(client(fake))
    fake.queue("GET", "/api/v1/accounts/verify_credentials", 503)
    with pytest.raises(DependencyUnreachable, match="HTTP 503"):
        check_credentials(client(fake))
    url = fake.url
    fake.stop()
    with pytest.raises(DependencyUnreachable, match="no answer"):
        check_credentials(make_client(instance=url, access_token="x", timeout=1))


def test_the_token_never_reaches_the_logs(
    fake: FakeMastodon,
    service: CareService,
    clock: FixedClock,
    maya: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    health = Health(clock)
    fake.add_raw_notification({"type": "mention"})
    source(fake, service, clock, health=health, token="wrong-token-not-real").poll_due(
        service.ingest_many
    )
    case_id, _ = approved(service, fake, clock, maya)
    fake.hang_next("POST", "/api/v1/statuses", after_processing=True)
    worker = PublishWorker(service, publisher(fake, timeout=0.5), health=health)
    worker.run_once()
    clock.advance(600)
    worker.run_once()
    with pytest.raises(CredentialRejected):
        check_credentials(client(fake, token="wrong-token-not-real"))
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert caplog.records, "the flow logs something"
    for secret in (fake.token, "wrong-token-not-real"):
        assert secret not in caplog.text
        assert not service.store.query(
            "SELECT 1 FROM audit WHERE detail LIKE ?", [f"%{secret}%"]
        ), "nor the audit log"


# ------------------------------------------------------------------ text


def test_status_html_becomes_plain_text() -> None:
    content = (
        '<p><span class="h-card" translate="no"><a href="https://mastodon.social/@AcmeAir"'
        ' class="u-url mention">@<span>AcmeAir</span></a></span> my bag &amp; my coat are'
        " lost &lt;3 &quot;great&quot;<br />flight AA12<br>today</p>"
        '<p>see <a href="https://www.example.com/bags/12345/status/very/long/path"'
        ' rel="nofollow noopener" target="_blank"><span class="invisible">https://www.</span>'
        '<span class="ellipsis">example.com/bags/12345/status/</span><span class="invisible">'
        'very/long/path</span></a> <a href="https://mastodon.social/tags/acmeair"'
        ' class="mention hashtag" rel="tag">#<span>AcmeAir</span></a></p>'
    )
    assert plain_text(content) == (
        '@AcmeAir my bag & my coat are lost <3 "great"\nflight AA12\ntoday\n\n'
        "see https://www.example.com/bags/12345/status/very/long/path #AcmeAir"
    )
    assert plain_text("no markup at all") == "no markup at all"
    assert plain_text("<p>a</p><ul><li>one</li><li>two</li></ul>") == "a\n\none\ntwo"


def test_a_content_warning_comes_first(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str
) -> None:
    fake.add_mention(maya, "they lost my dog's crate", spoiler_text="pets, upsetting")
    source(fake, service, clock).poll_due(service.ingest_many)
    assert stored(service)[0][1] == "CW: pets, upsetting\n\n@AcmeAir they lost my dog's crate"


def test_poll_time_is_per_stream(
    fake: FakeMastodon, service: CareService, clock: FixedClock, maya: str
) -> None:
    src = source(fake, service, clock, hashtags=["AcmeAir", "acmeair", "#Other"])
    assert [s.key for s in src.streams] == [
        MENTIONS_KEY,
        "mastodon:127.0.0.1:tag:acmeair",
        "mastodon:127.0.0.1:tag:other",
    ]
    src.poll_due(service.ingest_many)
    assert all(s.next_at == clock.now() + timedelta(seconds=30) for s in src.streams)
