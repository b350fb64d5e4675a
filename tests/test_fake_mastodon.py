"""FakeMastodon, exercised through the real Mastodon.py client: the shapes it parses, paging,
auth, idempotency, rate limits and scripted faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServiceUnavailableError,
    MastodonUnauthorizedError,
)

from tests.fakes import mastodon as fakes
from tests.fakes.mastodon import IN_REPLY_NOT_FOUND, FakeMastodon, start_fake_mastodon

fake_mastodon = fakes.fake_mastodon  # the shareable fixture, as a conftest would expose it


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    with start_fake_mastodon() as server:
        yield server


def client(fake: FakeMastodon, token: str | None = "", timeout: float = 5) -> Mastodon:
    return Mastodon(
        access_token=fake.token if token == "" else token,
        api_base_url=fake.url,
        request_timeout=timeout,
        ratelimit_method="throw",
        version_check_mode="none",
    )


def test_fixture_url_and_credentials(fake_mastodon: FakeMastodon) -> None:
    assert fake_mastodon.url == f"http://127.0.0.1:{fake_mastodon.port}"
    me = client(fake_mastodon).account_verify_credentials()
    assert str(me.id) == fake_mastodon.brand_id and me.acct == "AcmeAir"
    assert me.display_name == "Acme Air" and me.followers_count == 12_000
    assert isinstance(me.created_at, datetime)


def test_auth_is_by_bearer_token(fake: FakeMastodon) -> None:
    with pytest.raises(MastodonUnauthorizedError) as refused:
        client(fake, token="wrong").account_verify_credentials()
    assert refused.value.args[1] == 401 and refused.value.args[3] == "The access token is invalid"
    with pytest.raises(MastodonUnauthorizedError) as refused:
        client(fake, token="wrong").notifications()
    # (Mastodon.py reads the error text of list endpoints as a list, and so loses it.)
    assert refused.value.args[1:3] == (401, "Unauthorized")
    with pytest.raises(MastodonUnauthorizedError):
        client(fake, token=None).account_verify_credentials()
    # The instance answers anyone, with a valid token or none.
    assert client(fake, token=None).instance_v2().domain == "127.0.0.1"


def test_notification_and_status_shapes_parse(fake: FakeMastodon) -> None:
    maya = fake.add_account("maya", "Maya", followers=5)
    bo = fake.add_account("bo", "Bo", domain="other.example")
    sid = fake.add_mention(
        maya, "bag lost & late\n\nsee https://example.com/x #AcmeAir @bo@other.example"
    )
    [note] = client(fake).notifications(types=["mention"])
    assert note.type == "mention" and isinstance(note.created_at, datetime)
    status = note.status
    assert str(status.id) == sid and status.visibility == "public" and status.language == "en"
    assert status.account.acct == "maya" and status.account.followers_count == 5
    assert status.url == f"{fake.url}/@maya/{sid}"
    assert [str(m.id) for m in status.mentions] == [fake.brand_id, bo]
    assert [m.acct for m in status.mentions] == ["AcmeAir", "bo@other.example"]
    assert [t.name for t in status.tags] == ["acmeair"]
    assert status.content.startswith('<p><span class="h-card" translate="no"><a href=')
    assert 'bag lost &amp; late</p><p>see <a href="https://example.com/x"' in status.content
    assert isinstance(status.created_at, datetime) and status.created_at.tzinfo is not None


def test_notifications_filter_by_type_and_page_like_mastodon(fake: FakeMastodon) -> None:
    maya = fake.add_account("maya")
    ids = [fake.add_mention(maya, f"n{i}") for i in range(5)]
    fake.add_notification("favourite", maya, ids[0])
    c = client(fake)
    assert len(c.notifications()) == 6
    first = c.notifications(types=["mention"], limit=2)
    assert [str(n.status.id) for n in first] == [ids[4], ids[3]]  # newest first
    older = c.fetch_next(first)  # Link rel="next": max_id
    assert older is not None and [str(n.status.id) for n in older] == [ids[2], ids[1]]
    newer = c.fetch_previous(older)  # Link rel="prev": min_id
    assert newer is not None and [str(n.status.id) for n in newer] == [ids[4], ids[3]]
    notes = c.notifications(types=["mention"])
    oldest = str(notes[-1].id)
    # min_id: the ones just above it (still newest first); since_id: the newest above it.
    above = c.notifications(types=["mention"], min_id=oldest, limit=2)
    assert [str(n.status.id) for n in above] == [ids[2], ids[1]]
    latest = c.notifications(types=["mention"], since_id=oldest, limit=2)
    assert [str(n.status.id) for n in latest] == [ids[4], ids[3]]
    assert c.notifications(types=["mention"], min_id=str(notes[0].id)) == []
    assert len(c.notifications(exclude_types=["mention"])) == 1
    assert fake.calls[-1].params["exclude_types[]"] == ["mention"]


def test_limits_are_clamped_and_a_deleted_status_takes_its_notification(
    fake: FakeMastodon,
) -> None:
    maya = fake.add_account("maya")
    ids = [fake.add_mention(maya, f"n{i}") for i in range(100)]
    assert len(client(fake).notifications(limit=500)) == 80
    fake.delete_status(ids[-1])
    assert str(client(fake).notifications(limit=1)[0].status.id) == ids[-2]
    with pytest.raises(MastodonNotFoundError):
        client(fake).status(ids[-1])


def test_hashtag_timeline(fake: FakeMastodon) -> None:
    maya = fake.add_account("maya")
    public = fake.add_status(maya, "#AcmeAir late again")
    fake.add_status(maya, "#acmeair quietly", visibility="unlisted")
    fake.add_status(maya, "#AcmeAir secret", visibility="direct")
    fake.add_status(maya, "", reblog_of=public)
    fake.add_status(maya, "#Other thing")
    found = client(fake).timeline_hashtag("acmeair")
    assert [str(s.id) for s in found] == [public]
    assert fake.calls_to("GET", "/api/v1/timelines/tag/acmeair")


def test_posting_honours_the_idempotency_key(fake: FakeMastodon) -> None:
    maya = fake.add_account("maya")
    mention = fake.add_mention(maya, "hi", visibility="direct")
    c = client(fake)
    first = c.status_post(
        "@maya hello", in_reply_to_id=mention, visibility="direct", idempotency_key="k-1"
    )
    again = c.status_post(
        "@maya hello", in_reply_to_id=mention, visibility="direct", idempotency_key="k-1"
    )
    assert first.id == again.id and len(fake.posted()) == 1
    assert first.visibility == "direct" and str(first.in_reply_to_id) == mention
    assert first.account.acct == "AcmeAir"
    fake.expire_idempotency_keys()  # an hour later, the same key is a new status
    third = c.status_post("@maya hello", in_reply_to_id=mention, idempotency_key="k-1")
    assert third.id != first.id
    assert [p["idempotency_key"] for p in fake.posted()] == ["k-1", "k-1"]
    assert fake.posted()[1]["visibility"] == "public"
    assert [str(s.id) for s in c.account_statuses(fake.brand_id)] == [third.id, first.id]


def test_post_refusals(fake: FakeMastodon) -> None:
    maya = fake.add_account("maya")
    gone = fake.add_mention(maya, "hi")
    fake.delete_status(gone)
    c = client(fake)
    with pytest.raises(MastodonNotFoundError) as missing:
        c.status_post("@maya hi", in_reply_to_id=gone)
    assert missing.value.args[3] == IN_REPLY_NOT_FOUND
    with pytest.raises(MastodonAPIError) as long:
        c.status_post("x" * 501)
    assert long.value.args[1] == 422
    assert long.value.args[3] == "Validation failed: Text character limit of 500 exceeded"
    # A URL counts 23, a remote mention only its @user part.
    c.status_post("@maya@127.0.0.1 " + "y" * 470 + " https://example.com/" + "z" * 100)
    blocked = fake.add_mention(maya, "hello")
    fake.block_brand(maya)
    with pytest.raises(MastodonNotFoundError):
        c.status(blocked)
    with pytest.raises(MastodonNotFoundError):
        c.status_post("@maya hi", in_reply_to_id=blocked)
    assert fakes.mastodon_length("@bo@other.example see https://a.example/long/path") == 31


def test_direct_statuses_are_visible_only_when_they_concern_the_brand(fake: FakeMastodon) -> None:
    maya = fake.add_account("maya")
    bo = fake.add_account("bo")
    to_brand = fake.add_mention(maya, "psst", visibility="direct")
    to_bo = fake.add_status(maya, "@bo psst", visibility="direct")
    c = client(fake)
    assert c.status(to_brand).visibility == "direct"
    with pytest.raises(MastodonNotFoundError):
        c.status(to_bo)
    assert c.account(bo).username == "bo"


def test_account_statuses_page_newest_first(fake: FakeMastodon) -> None:
    maya = fake.add_account("maya")
    target = fake.add_mention(maya, "hi")
    ids = [fake.add_status(fake.brand_id, f"post {i}") for i in range(5)]
    reply = fake.add_status(fake.brand_id, "@maya hi", in_reply_to=target)
    fake.add_status(fake.brand_id, "", reblog_of=target)
    c = client(fake)
    page = c.account_statuses(fake.brand_id, limit=3, exclude_reblogs=True)
    assert [str(s.id) for s in page] == [reply, ids[4], ids[3]]
    rest = c.fetch_next(page)
    assert rest is not None and [str(s.id) for s in rest] == [ids[2], ids[1], ids[0]]
    assert len(c.account_statuses(fake.brand_id)) == 7
    assert [str(s.id) for s in c.account_statuses(fake.brand_id, exclude_replies=True)][:1] != [
        reply
    ]
    assert c.account_statuses(fake.brand_id, pinned=True) == []


def test_instance_configuration(fake: FakeMastodon) -> None:
    fake.max_characters = 1000
    c = client(fake)
    v2 = c.instance_v2()
    assert v2.configuration.statuses.max_characters == 1000
    assert v2.configuration.statuses.characters_reserved_per_url == 23
    v1 = c.instance_v1()
    assert v1.uri == "127.0.0.1" and v1.configuration.statuses.max_characters == 1000


def test_rate_limit_headers_and_a_used_up_window(fake: FakeMastodon) -> None:
    c = client(fake)
    c.account_verify_credentials()
    assert c.ratelimit_limit == 300 and c.ratelimit_remaining == 299
    assert c.ratelimit_reset is not None and c.ratelimit_reset > time.time()
    fake.set_rate_limit(1, reset_in=600)
    c.account_verify_credentials()
    assert c.ratelimit_remaining == 0
    with pytest.raises(MastodonRatelimitError):
        c.notifications()
    assert 590 < c.ratelimit_reset - time.time() <= 601


def test_queued_answers_are_one_shot(fake: FakeMastodon) -> None:
    c = client(fake)
    fake.queue_rate_limited("GET", "/api/v1/notifications", 900)
    with pytest.raises(MastodonRatelimitError):
        c.notifications()
    assert 890 < c.ratelimit_reset - time.time() <= 901
    fake.queue("GET", "/api/v1/notifications", 503)
    with pytest.raises(MastodonServiceUnavailableError):
        c.notifications()
    assert c.notifications() == []


def test_a_hang_after_processing_keeps_the_status_and_loses_the_answer(fake: FakeMastodon) -> None:
    maya = fake.add_account("maya")
    mention = fake.add_mention(maya, "hi")
    c = client(fake, timeout=0.5)
    fake.hang_next("POST", "/api/v1/statuses", after_processing=True)
    with pytest.raises(MastodonNetworkError):
        c.status_post("@maya hi", in_reply_to_id=mention, idempotency_key="k")
    assert len(fake.posted()) == 1
    fake.hang_next("POST", "/api/v1/statuses")  # before processing: nothing stored
    with pytest.raises(MastodonNetworkError):
        c.status_post("@maya other", in_reply_to_id=mention)
    assert len(fake.posted()) == 1
    # The retry with the same key gets the stored status back.
    assert str(c.status_post("@maya hi", idempotency_key="k").id) == fake.posted()[0]["id"]


def test_a_post_hook_sees_the_stored_status(fake: FakeMastodon) -> None:
    seen: list[str] = []
    fake.on_post_status(lambda status: seen.append(status["id"]))
    posted = client(fake).status_post("hello")
    assert seen == [str(posted.id)]

    def fail(status: dict[str, object]) -> None:
        raise RuntimeError("crash")

    fake.on_post_status(fail)
    with pytest.raises(MastodonNetworkError):
        client(fake).status_post("again")
    assert len(fake.posted()) == 2


def test_raw_notifications_are_served_as_given(fake: FakeMastodon) -> None:
    nid = fake.add_raw_notification({"type": "mention", "account": None})
    [note] = client(fake).notifications()
    assert str(note.id) == nid and note.type == "mention" and note.get("status") is None
