"""FakeBluesky, exercised through the plain atproto.Client: the SDK's own models must accept
every answer, and its errors must be the ones the real service gives."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import atproto
import pytest
from atproto import models
from atproto_client import exceptions as xrpc

from tests.fakes import bluesky as fakes
from tests.fakes.bluesky import FakeBluesky, start_fake_bluesky, tid

BRAND = "acmeair.bsky.social"
JANE = "jane.bsky.social"
POST = "app.bsky.feed.post"

fake_bluesky = fakes.fake_bluesky  # the shareable fixture, exposed as a conftest would


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    with start_fake_bluesky(BRAND) as server:
        server.add_user(JANE, "Jane Doe", followers=42)
        yield server


def logged_in(fake: FakeBluesky, *, timeout: float = 5) -> atproto.Client:
    client = atproto.Client(base_url=fake.url, request=atproto.Request(timeout=timeout))
    client.login(BRAND, fake.app_password)
    return client


def test_the_shared_fixture_serves(fake_bluesky: FakeBluesky) -> None:
    client = logged_in(fake_bluesky)
    assert client.me is not None and client.me.handle == "acmeair.bsky.social"


def test_login_profile_and_refused_passwords(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    assert client.me is not None and client.me.did == fake.brand_did
    assert client.me.followers_count == 12_000
    assert fake.sessions_created == 1
    with pytest.raises(xrpc.UnauthorizedError) as refused:
        atproto.Client(base_url=fake.url).login(BRAND, "not-the-password")
    assert refused.value.response is not None
    assert refused.value.response.content.error == "AuthenticationRequired"
    assert fake.sessions_created == 1


def test_the_login_rate_limit(fake: FakeBluesky) -> None:
    fake.session_limit = 3
    for _ in range(3):
        logged_in(fake)
    with pytest.raises(xrpc.RateLimitExceededError) as limited:
        logged_in(fake)
    assert limited.value.remaining == 0 and limited.value.reset_at is not None
    assert fake.sessions_created == 3


def test_refresh_rotates_tokens_and_revoked_ones_are_refused(fake: FakeBluesky) -> None:
    fake.access_ttl = 60  # the SDK refreshes any token closer than 15 minutes to expiry
    client = logged_in(fake)
    client.com.atproto.server.get_session()
    assert fake.refreshes >= 1 and fake.sessions_created == 1
    fake.access_ttl = 3600
    client.com.atproto.server.get_session()  # one more refresh, to a long-lived token
    fake.revoke_sessions()
    with pytest.raises(xrpc.BadRequestError) as refused:
        client.com.atproto.server.get_session()
    assert refused.value.response.content.error == "ExpiredToken"


def test_notifications_page_newest_first_with_a_cursor(fake: FakeBluesky) -> None:
    uris = [fake.add_post(JANE, f"@{BRAND} complaint {i}") for i in range(5)]
    fake.add_post(JANE, "no mention here")
    client = logged_in(fake)
    params = models.AppBskyNotificationListNotifications.Params
    first = client.app.bsky.notification.list_notifications(params(limit=3))
    assert [n.uri for n in first.notifications] == uris[:1:-1]
    assert {n.reason for n in first.notifications} == {"mention"}
    assert first.notifications[0].author.handle == JANE
    assert isinstance(first.notifications[0].record, models.AppBskyFeedPost.Record)
    second = client.app.bsky.notification.list_notifications(params(limit=3, cursor=first.cursor))
    assert [n.uri for n in second.notifications] == uris[1::-1]
    last = client.app.bsky.notification.list_notifications(params(cursor=second.cursor))
    assert last.notifications == [] and last.cursor is None
    only = client.app.bsky.notification.list_notifications(params(reasons=["reply"]))
    assert only.notifications == []


def test_replies_and_quotes_of_the_brand_notify_it(fake: FakeBluesky) -> None:
    ours = fake.add_post(BRAND, "Our winter schedule")
    reply = fake.reply(JANE, ours, "Where is Lisbon?")
    deeper = fake.reply(JANE, reply, "Hello?")
    quote = fake.add_post(JANE, "Look at this", quote=ours)
    client = logged_in(fake)
    notes = client.app.bsky.notification.list_notifications().notifications
    assert [(n.uri, n.reason) for n in notes] == [
        (quote, "quote"),
        (deeper, "reply"),
        (reply, "reply"),
    ]
    record = notes[1].record
    assert record.reply.root.uri == ours and record.reply.parent.uri == reply


def test_search_posts_by_phrase_and_time(fake: FakeBluesky) -> None:
    old = fake.add_post(JANE, "Acme Air lost my bag")
    new = fake.add_post(JANE, "acme air was great today")
    fake.add_post(JANE, "Air Acme is not a phrase match")
    client = logged_in(fake)
    params = models.AppBskyFeedSearchPosts.Params
    found = client.app.bsky.feed.search_posts(params(q='"Acme Air"'))
    assert [p.uri for p in found.posts] == [new, old] and found.hits_total == 2
    since = fake.post(new)["indexed_at"].isoformat()  # type: ignore[index]
    assert [
        p.uri for p in client.app.bsky.feed.search_posts(params(q='"acme air"', since=since)).posts
    ] == [new]
    assert client.app.bsky.feed.search_posts(params(q='"Acme Air" -great')).posts[0].uri == old


def test_posts_profiles_and_handles(fake: FakeBluesky) -> None:
    uri = fake.add_post(JANE, f"hi @{BRAND}")
    gone = fake.add_post(JANE, "soon deleted")
    fake.delete_post(gone)
    fake.block_brand(JANE)
    client = logged_in(fake)
    [post] = client.app.bsky.feed.get_posts(
        models.AppBskyFeedGetPosts.Params(uris=[uri, gone])
    ).posts
    assert post.uri == uri and post.author.viewer.blocked_by is True
    [facet] = post.record.facets
    assert facet.features[0].did == fake.brand_did and facet.index.byte_start == 3
    profiles = client.app.bsky.actor.get_profiles(
        models.AppBskyActorGetProfiles.Params(actors=[JANE, "nobody.bsky.social"])
    )
    assert [(p.handle, p.followers_count) for p in profiles.profiles] == [(JANE, 42)]
    assert client.resolve_handle(JANE).did == fake.did_of(JANE)
    with pytest.raises(xrpc.BadRequestError):
        client.resolve_handle("nobody.bsky.social")


def _create(client: atproto.Client, fake: FakeBluesky, rkey: str, text: str = "hi") -> object:
    return client.com.atproto.repo.create_record(
        models.ComAtprotoRepoCreateRecord.Data(
            repo=fake.brand_did,
            collection=POST,
            rkey=rkey,
            record=models.AppBskyFeedPost.Record(
                text=text, created_at=client.get_current_time_iso()
            ),
        )
    )


def test_create_record_honours_the_key_and_refuses_it_twice(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    key = tid(1_700_000_000_000_000, 7)
    created = _create(client, fake, key)
    assert created.uri == f"at://{fake.brand_did}/{POST}/{key}"  # type: ignore[attr-defined]
    with pytest.raises(xrpc.RequestException) as taken:
        _create(client, fake, key, "again")
    assert taken.value.response.status_code == 500  # what the reference PDS answers today
    fake.duplicate_answer = (409, "RecordAlreadyExists", "Record already exists")
    with pytest.raises(xrpc.NetworkError):  # the SDK's class for a 409
        _create(client, fake, key, "again")
    [post] = fake.posts()
    assert post["record"]["text"] == "hi"
    params = models.ComAtprotoRepoGetRecord.Params
    found = client.com.atproto.repo.get_record(params(repo=BRAND, collection=POST, rkey=key))
    assert found.uri == created.uri and found.value.text == "hi"  # type: ignore[attr-defined]
    with pytest.raises(xrpc.BadRequestError) as missing:
        client.com.atproto.repo.get_record(params(repo=BRAND, collection=POST, rkey=tid(1)))
    assert missing.value.response.content.error == "RecordNotFound"


def test_create_record_checks_key_and_record(fake: FakeBluesky) -> None:
    client = logged_in(fake)
    with pytest.raises(xrpc.BadRequestError):
        _create(client, fake, "not-a-tid")
    with pytest.raises(xrpc.BadRequestError) as long:
        _create(client, fake, tid(1_700_000_000_000_001), "👍" * 301)
    assert "300 graphemes" in str(long.value)
    _create(client, fake, tid(1_700_000_000_000_002), "👍" * 300)
    assert len(fake.posts()) == 1


def test_scripted_answers_rate_limit_headers_and_hangs(fake: FakeBluesky) -> None:
    client = logged_in(fake, timeout=0.5)
    answer = client.invoke_query("app.bsky.notification.listNotifications")
    assert int(answer.headers["ratelimit-remaining"]) < int(answer.headers["ratelimit-limit"])
    fake.queue("app.bsky.notification.listNotifications", 429, headers={"ratelimit-reset": "99"})
    with pytest.raises(xrpc.RateLimitExceededError) as limited:
        client.app.bsky.notification.list_notifications()
    assert limited.value.reset_at is not None and limited.value.reset_at.timestamp() == 99
    fake.set_rate_limit("app.bsky.feed.searchPosts", remaining=1)
    client.app.bsky.feed.search_posts(models.AppBskyFeedSearchPosts.Params(q="x"))
    with pytest.raises(xrpc.RateLimitExceededError):
        client.app.bsky.feed.search_posts(models.AppBskyFeedSearchPosts.Params(q="x"))
    fake.hang_next("com.atproto.repo.createRecord", after_processing=True)
    with pytest.raises(xrpc.InvokeTimeoutError):
        _create(client, fake, tid(1_700_000_000_000_003))
    assert len(fake.posts()) == 1  # stored; only the answer was lost
    fake.hang_next("com.atproto.repo.createRecord")
    with pytest.raises(xrpc.InvokeTimeoutError):
        _create(client, fake, tid(1_700_000_000_000_004))
    assert len(fake.posts()) == 1


def test_stop_releases_a_hung_request(fake: FakeBluesky) -> None:
    client = logged_in(fake, timeout=10)
    fake.hang_next("app.bsky.feed.getPosts")
    errors: list[Exception] = []

    def call() -> None:
        try:
            client.app.bsky.feed.get_posts(models.AppBskyFeedGetPosts.Params(uris=[]))
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    fake.stop()
    worker.join(timeout=5)
    assert not worker.is_alive() and errors
