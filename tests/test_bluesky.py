"""Bluesky through the real atproto client against a fake XRPC service on loopback: watching
notifications and searches, and publishing replies exactly once."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.delivery import PublishWorker
from bot.errors import CredentialRejected, DependencyUnreachable, Refusal
from bot.health import FAILING, OK, Health
from bot.models import CaseState
from bot.ports import FixedClock, PublishRequest
from bot.service import CareService
from integrations.bluesky import (
    BLOCKED,
    DELETED,
    BlueskyClient,
    BlueskyMentionSource,
    BlueskyPublisher,
    check_credentials,
    make_client,
    record_key,
)
from tests.conftest import AGENT, LEAD, START
from tests.fakes.bluesky import FakeBluesky, start_fake_bluesky

BRAND = "acmeair.bsky.social"
MAYA = "maya.bsky.social"
NOTIFICATIONS = "app.bsky.notification.listNotifications"
CREATE = "com.atproto.repo.createRecord"
REPLY = "Sorry about this! Please DM us your booking reference and we will look into it."


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    with start_fake_bluesky(BRAND) as server:
        server.add_user(MAYA, "Maya Okafor", followers=812)
        server.add_user("bo.bsky.social", "Bo", followers=20_000, verified=True)
        yield server


def client(fake: FakeBluesky, *, timeout: float = 5, password: str | None = None) -> BlueskyClient:
    return make_client(
        base_url=fake.url,
        handle=BRAND,
        app_password=fake.app_password if password is None else password,
        timeout=timeout,
    )


def source(
    fake: FakeBluesky,
    service: CareService,
    clock: FixedClock,
    *,
    queries: list[str] | None = None,
    shared: BlueskyClient | None = None,
    health: Health | None = None,
) -> BlueskyMentionSource:
    return BlueskyMentionSource(
        shared or client(fake),
        handle=BRAND,
        queries=queries or [],
        poll_seconds=30,
        clock=clock,
        cursors=service,
        health=health,
    )


def publisher(fake: FakeBluesky, *, timeout: float = 5) -> BlueskyPublisher:
    return BlueskyPublisher(client(fake, timeout=timeout), handle=BRAND)


def stored(service: CareService) -> list[str]:
    return [r["text"] for r in service.store.query("SELECT text FROM mentions ORDER BY rowid")]


def approved(service: CareService, fake: FakeBluesky, clock: FixedClock, text: str = REPLY) -> int:
    fake.add_post(MAYA, f"@{BRAND} my refund never arrived")
    source(fake, service, clock).poll_due(service.ingest_many)
    service.claim(AGENT, 1)
    service.reply(AGENT, 1, text)
    service.approve(LEAD, 1)
    return 1


# ------------------------------------------------------------------ watching


def test_a_mention_becomes_a_case_once_and_the_cursor_survives_a_restart(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    first = fake.add_post(MAYA, f"@{BRAND} my flight is delayed, any news?", langs=("en",))
    src = source(fake, service, clock)
    assert src.poll_due(service.ingest_many)
    assert stored(service) == [f"@{BRAND} my flight is delayed, any news?"]
    case = service.view(1)
    assert case.case.network == "bluesky" and case.case.mention_id == first
    assert case.author.handle == MAYA and case.author.followers == 812
    assert case.url == f"https://bsky.app/profile/{MAYA}/post/{first.rsplit('/', 1)[-1]}"
    row = service.store.one("SELECT * FROM mentions WHERE id = ?", [first])
    assert row is not None and row["conversation_id"] == first and row["lang"] == "en"
    cursor_key = f"bluesky:notifications:{BRAND}"
    assert service.cursor(cursor_key) == fake.post(first)["record"]["createdAt"]  # type: ignore[index]

    assert not src.poll_due(service.ingest_many), "nothing is due before poll_seconds pass"
    clock.advance(30)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 1

    # A restart (a new source and client): no re-read of what is stored, nothing skipped.
    later = fake.add_post("bo.bsky.social", f"@{BRAND} lost bag at LHR, help")
    fake.clear()
    restarted = source(fake, service, clock)
    restarted.poll_due(service.ingest_many)
    assert stored(service)[1:] == [f"@{BRAND} lost bag at LHR, help"]
    assert service.store.scalar("SELECT count(*) FROM cases") == 2
    assert len(fake.calls_to(NOTIFICATIONS)) == 1, "one page reaches back to the cursor"
    assert service.cursor(cursor_key) == fake.post(later)["record"]["createdAt"]  # type: ignore[index]
    bo = service.view(2).author
    assert bo.followers == 20_000 and bo.verified


def test_a_reply_in_the_same_thread_joins_the_open_case(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    root = fake.add_post(MAYA, f"@{BRAND} my bag is missing")
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    follow_up = fake.reply(MAYA, root, f"@{BRAND} it had my medication in it")
    clock.advance(30)
    src.poll_due(service.ingest_many)
    assert service.store.scalar("SELECT count(*) FROM cases") == 1
    assert [p.text for p in service.view(1).thread] == [f"@{BRAND} it had my medication in it"]
    row = service.store.one("SELECT * FROM mentions WHERE id = ?", [follow_up])
    assert row is not None
    assert row["in_reply_to_id"] == root and row["conversation_id"] == root


def test_replies_to_the_brand_and_quotes_are_cases_and_search_skips_the_brand(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    announcement = fake.add_post(BRAND, "Acme Air: our winter schedule is out")
    fake.reply("bo.bsky.social", announcement, "Where is the Lisbon route?")
    fake.add_post(MAYA, "Acme Air lost my bag, again. Not impressed", quote=announcement)
    fake.add_post("carol.bsky.social", "Flying Acme Air tomorrow, any tips?")
    src = source(fake, service, clock, queries=['"Acme Air"'])
    src.poll_due(service.ingest_many)
    assert sorted(stored(service)) == [
        "Acme Air lost my bag, again. Not impressed",
        "Flying Acme Air tomorrow, any tips?",
        "Where is the Lisbon route?",
    ]
    assert service.cursor('bluesky:search:"Acme Air"') is not None


def test_a_malformed_notification_is_logged_once_and_skipped(
    fake: FakeBluesky, service: CareService, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    bad = "at://did:plc:bad/app.bsky.feed.post/3kbad"
    fake.add_notification({"uri": bad, "reason": "mention", "indexedAt": "2026-11-02T09:00:00Z"})
    fake.add_post(MAYA, f"@{BRAND} refund please")
    src = source(fake, service, clock)
    with caplog.at_level(logging.WARNING, logger="integrations.bluesky"):
        src.poll_due(service.ingest_many)
        clock.advance(30)
        fake.add_post(MAYA, f"@{BRAND} hello?")
        src.poll_due(service.ingest_many)
    assert stored(service) == [f"@{BRAND} refund please", f"@{BRAND} hello?"]
    warnings = [r.getMessage() for r in caplog.records if bad in r.getMessage()]
    assert len(warnings) == 1 and "malformed notification" in warnings[0]


def test_a_429_is_waited_out_and_nothing_is_lost(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    fake.add_post(MAYA, f"@{BRAND} one")
    reset = int(START.timestamp()) + 900
    fake.queue(
        NOTIFICATIONS,
        429,
        headers={"ratelimit-remaining": "0", "ratelimit-reset": str(reset)},
    )
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    assert stored(service) == []
    assert src.streams[0].next_at == datetime.fromtimestamp(reset + 1, UTC)
    assert service.cursor(f"bluesky:notifications:{BRAND}") is None
    clock.advance(600)
    assert not src.poll_due(service.ingest_many), "must not poll before the reset"
    assert len(fake.calls_to(NOTIFICATIONS)) == 1
    clock.advance(301)
    src.poll_due(service.ingest_many)
    assert stored(service) == [f"@{BRAND} one"]


def test_an_exhausted_window_paces_the_next_poll(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    reset = int(datetime.now(UTC).timestamp()) + 3600
    fake.set_rate_limit(NOTIFICATIONS, remaining=1, reset=reset)
    fake.add_post(MAYA, f"@{BRAND} one")
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 1
    assert src.streams[0].next_at == datetime.fromtimestamp(reset + 1, UTC)


def test_a_backlog_is_paged_back_to_the_cursor(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    fake.add_post(MAYA, f"@{BRAND} first")
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    for i in range(250):  # the bot was down
        fake.add_post(MAYA if i % 2 else "bo.bsky.social", f"@{BRAND} complaint number {i}")
    clock.advance(30)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 251
    pages = fake.calls_to(NOTIFICATIONS)[1:]
    assert len(pages) == 3 and "cursor" in pages[1].query
    # Cases are numbered in the order things were said.
    assert stored(service)[1:3] == [f"@{BRAND} complaint number 0", f"@{BRAND} complaint number 1"]


def test_the_first_run_takes_only_the_latest_page(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    for i in range(150):  # the account's history before the bot existed
        fake.add_post(MAYA, f"@{BRAND} old message {i}")
    source(fake, service, clock).poll_due(service.ingest_many)
    assert len(stored(service)) == 100 and len(fake.calls_to(NOTIFICATIONS)) == 1
    assert stored(service)[-1] == f"@{BRAND} old message 149"


def test_server_errors_back_off_keep_the_cursor_and_show_in_health(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    health = Health(clock)
    fake.add_post(MAYA, f"@{BRAND} one")
    fake.queue(NOTIFICATIONS, 502)
    src = source(fake, service, clock, health=health)
    src.poll_due(service.ingest_many)
    assert service.cursor(f"bluesky:notifications:{BRAND}") is None
    [dep] = health.snapshot()
    assert dep.name == "bluesky" and dep.state == FAILING and "502" in (dep.last_error or "")
    clock.advance(59)
    assert not src.poll_due(service.ingest_many)
    clock.advance(1)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 1
    assert health.snapshot()[0].state == OK


# ------------------------------------------------------------------ publishing


def test_claim_reply_approve_publishes_exactly_one_post_in_the_thread(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    root = fake.add_post(MAYA, f"@{BRAND} my refund never arrived")
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    latest = fake.reply(MAYA, root, f"@{BRAND} it has been six weeks")
    clock.advance(30)
    src.poll_due(service.ingest_many)
    text = f"Désolé 😔 @{MAYA} {REPLY} https://acme.example/refunds"
    service.claim(AGENT, 1)
    service.reply(AGENT, 1, text)
    service.approve(LEAD, 1)
    worker = PublishWorker(service, publisher(fake))
    assert worker.drain() == 1

    [post] = fake.posts()
    record = post["record"]
    assert record["text"] == text
    root_post, parent_post = fake.post(root), fake.post(latest)
    assert root_post is not None and parent_post is not None
    refs = {k: (record["reply"][k]["uri"], record["reply"][k]["cid"]) for k in ("root", "parent")}
    assert refs == {"root": (root, root_post["cid"]), "parent": (latest, parent_post["cid"])}
    [mention] = [f for f in record["facets"] if "mention" in f["features"][0]["$type"]]
    start = len("Désolé 😔 ".encode())
    index = mention["index"]
    assert (index["byteStart"], index["byteEnd"]) == (start, start + len(f"@{MAYA}"))
    assert mention["features"][0]["did"] == fake.did_of(MAYA)
    encoded = text.encode()
    assert encoded[start : start + len(MAYA) + 1].decode() == f"@{MAYA}"
    [link] = [f for f in record["facets"] if "link" in f["features"][0]["$type"]]
    span = encoded[link["index"]["byteStart"] : link["index"]["byteEnd"]]
    assert span.decode() == "https://acme.example/refunds"

    attempt = service.store.scalar("SELECT id FROM outbox WHERE kind = 'publish'")
    assert post["rkey"] == record_key(f"{service.install_id()}-case-1-item-{attempt}")
    case = service.get_case(1)
    assert case.state is CaseState.PUBLISHED
    assert case.published_url == f"https://bsky.app/profile/{BRAND}/post/{post['rkey']}"
    assert service.store.scalar("SELECT published_id FROM cases WHERE id = 1") == post["uri"]
    assert worker.drain() == 0 and len(fake.posts()) == 1


def test_the_answer_lost_after_the_post_was_stored_is_found_by_get_record(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    case_id = approved(service, fake, clock)
    fake.hang_next(CREATE, after_processing=True)
    fake.queue("com.atproto.repo.getRecord", 503)  # and the look right after fails too
    worker = PublishWorker(service, publisher(fake, timeout=0.5))
    worker.run_once()
    case = service.get_case(case_id)
    assert case.state is CaseState.APPROVED and case.publish_uncertain
    assert len(fake.posts()) == 1  # on Bluesky, though we never heard
    clock.advance(60)
    worker.run_once()
    case = service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED and not case.publish_uncertain
    [post] = fake.posts()
    assert case.published_url == f"https://bsky.app/profile/{BRAND}/post/{post['rkey']}"
    assert len(fake.calls_to(CREATE)) == 1, "the retry looked, and posted nothing more"
    assert len(fake.calls_to("com.atproto.repo.getRecord")) == 2


def test_a_lost_answer_is_settled_by_a_look_in_the_same_attempt(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    case_id = approved(service, fake, clock)
    fake.hang_next(CREATE, after_processing=True)
    PublishWorker(service, publisher(fake, timeout=0.5)).run_once()
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert len(fake.posts()) == 1 and len(fake.calls_to(CREATE)) == 1


@pytest.mark.parametrize(
    "answer",
    [
        (500, "InternalServerError", "Internal Server Error"),  # the reference PDS today
        (409, "RecordAlreadyExists", "Record already exists"),
    ],
)
def test_a_taken_record_key_means_the_attempt_already_posted(
    fake: FakeBluesky, answer: tuple[int, str, str]
) -> None:
    fake.duplicate_answer = answer
    uri = fake.add_post(MAYA, f"@{BRAND} hi")
    pub = publisher(fake)
    request = PublishRequest("case-7-item-9", "bluesky", uri, MAYA, f"@{MAYA} hello")
    first = pub.publish(request)
    again = pub.publish(request)
    assert again == first and len(fake.posts()) == 1
    assert pub.find_existing(request) == first
    other = PublishRequest("case-8-item-10", "bluesky", uri, MAYA, f"@{MAYA} hello")
    assert pub.find_existing(other) is None


@pytest.mark.parametrize(
    ("status", "error", "state", "note"),
    [
        (401, "AuthenticationRequired", CaseState.FAILED, "BLUESKY_APP_PASSWORD"),
        (400, "InvalidRequest", CaseState.FAILED, "Bluesky refused the reply"),
        (503, "NotEnoughResources", CaseState.APPROVED, None),
        (429, "RateLimitExceeded", CaseState.APPROVED, None),
    ],
)
def test_publish_errors_lead_to_the_documented_state(
    fake: FakeBluesky,
    service: CareService,
    clock: FixedClock,
    status: int,
    error: str,
    state: CaseState,
    note: str | None,
) -> None:
    case_id = approved(service, fake, clock)
    fake.queue(CREATE, status, {"error": error, "message": "no"})
    worker = PublishWorker(service, publisher(fake))
    worker.run_once()
    case = service.get_case(case_id)
    assert case.state is state
    if note:
        assert note in (case.note or "") and fake.posts() == []
        return
    # Transient: a 5xx may come after the write, so the retry looks first; a 429 posted nothing.
    assert case.publish_uncertain is (status == 503)
    clock.advance(60)
    worker.run_once()
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert len(fake.posts()) == 1


def test_an_over_long_reply_is_refused_as_bluesky_counts(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    fake.add_post(MAYA, f"@{BRAND} my refund never arrived")
    source(fake, service, clock).poll_due(service.ingest_many)
    service.claim(AGENT, 1)
    prefix = f"@{MAYA} "
    with pytest.raises(Refusal) as refused:
        service.reply(AGENT, 1, prefix + "👍" * (301 - len(prefix)))  # 301 graphemes
    assert "1 over the limit of 300" in str(refused.value)
    service.reply(AGENT, 1, prefix + "👍" * (300 - len(prefix)))  # 300 is fine
    service.approve(LEAD, 1)
    assert PublishWorker(service, publisher(fake)).drain() == 1
    assert len(fake.posts()) == 1


def test_a_deleted_post_fails_the_case_with_the_reason(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    case_id = approved(service, fake, clock)
    fake.delete_post(service.get_case(case_id).mention_id)
    PublishWorker(service, publisher(fake)).drain()
    case = service.get_case(case_id)
    assert case.state is CaseState.FAILED and DELETED in (case.note or "")
    assert fake.posts() == [] and not fake.calls_to(CREATE)


def test_a_blocked_brand_fails_the_case_with_the_reason(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    case_id = approved(service, fake, clock)
    fake.block_brand(MAYA)
    PublishWorker(service, publisher(fake)).drain()
    case = service.get_case(case_id)
    assert case.state is CaseState.FAILED and BLOCKED in (case.note or "")
    assert fake.posts() == []


# ------------------------------------------------------------------ the session


def test_one_login_serves_many_calls_and_a_refused_token_is_refreshed(
    fake: FakeBluesky, service: CareService, clock: FixedClock
) -> None:
    shared = client(fake)
    src = source(fake, service, clock, queries=['"Acme Air"'], shared=shared)
    for i in range(5):
        fake.add_post(MAYA, f"@{BRAND} message {i} about Acme Air")
        src.poll_due(service.ingest_many)
        clock.advance(30)
    service.claim(AGENT, 1)
    service.reply(AGENT, 1, REPLY)
    service.approve(LEAD, 1)
    fake.revoke_sessions()  # the server refuses the access token: refreshed, not a new login
    assert PublishWorker(service, BlueskyPublisher(shared, handle=BRAND)).drain() == 1
    assert len(fake.calls) > 15
    assert fake.sessions_created == 1 and fake.refreshes == 1
    fake.revoke_sessions(refresh_too=True)  # both refused: only now the app password again
    src.poll_due(service.ingest_many)
    assert fake.sessions_created == 2


def test_check_credentials_logs_in_once_and_names_the_variable(fake: FakeBluesky) -> None:
    shared = client(fake)
    assert check_credentials(lambda: shared) == f"@{BRAND} ({fake.brand_did})"
    BlueskyPublisher(shared, handle=BRAND).find_existing(
        PublishRequest("k", "bluesky", "at://x/app.bsky.feed.post/3k", MAYA, "hi")
    )
    assert fake.sessions_created == 1
    with pytest.raises(CredentialRejected) as refused:
        check_credentials(lambda: client(fake, password="wrong-pass-word"))
    message = str(refused.value)
    assert message.startswith(f"BLUESKY_APP_PASSWORD: Bluesky refused the app password for {BRAND}")
    assert "Invalid identifier or password" in message and "wrong-pass-word" not in message


def test_an_unreachable_service_is_not_a_credential_error() -> None:
    fake = start_fake_bluesky(BRAND)
    url = fake.url
    fake.stop()
    with pytest.raises(DependencyUnreachable):
        check_credentials(
            lambda: make_client(base_url=url, handle=BRAND, app_password="x", timeout=1)
        )


def test_no_app_password_or_token_reaches_logs_or_the_database(
    fake: FakeBluesky, service: CareService, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    case_id = approved(service, fake, clock)
    fake.revoke_sessions(refresh_too=True)
    fake.queue(CREATE, 503)
    worker = PublishWorker(service, publisher(fake))
    worker.run_once()
    clock.advance(60)
    worker.run_once()
    with pytest.raises(CredentialRejected):
        check_credentials(lambda: client(fake, password="wrong-" + fake.app_password))
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    secrets = [fake.app_password, *fake.issued_tokens()]
    assert len(secrets) > 3 and caplog.records
    dump = caplog.text + repr(
        [service.store.query(f"SELECT * FROM {t}") for t in ("cursors", "audit", "outbox", "cases")]
    )
    leaked = [s[:12] for s in secrets if s in dump]
    assert not leaked


def test_record_keys_are_valid_stable_tids() -> None:
    keys = {record_key(f"case-{n}-item-{n}") for n in range(2000)}
    assert len(keys) == 2000
    assert record_key("case-1-item-1") == record_key("case-1-item-1")
    tid = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    for key in keys:
        assert tid.match(key)
        value = 0
        for ch in key:
            value = value * 32 + alphabet.index(ch)
        moment = datetime.fromtimestamp((value >> 10) / 1e6, UTC)
        assert datetime(2023, 1, 1, tzinfo=UTC) <= moment < datetime(2024, 3, 1, tzinfo=UTC)
