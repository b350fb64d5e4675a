"""Facebook and Instagram adapters against the fake Graph API: the Graph layer, the
backfill sources, the publisher (public and private replies), the moderator, config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import Secrets, appsecret_proof, missing_environment, parse_config
from bot.errors import ConfigError, CredentialRejected, DependencyUnreachable, PublishError
from bot.health import Health
from bot.models import Mention
from bot.ports import FixedClock, PublishRequest
from bot.service import CareService
from bot.store import Store
from bot.textcheck import check_reply
from integrations.meta import FacebookSource, InstagramSource, check_credentials
from integrations.meta_graph import (
    GraphClient,
    GraphCredentialRefused,
    GraphRateLimited,
    GraphRefused,
    GraphUnavailable,
)
from integrations.meta_publish import MetaModerator, MetaPublisher
from tests.conftest import START, config_data
from tests.fakes.meta import IG_ACCOUNT_ID, PAGE_ID, FakeGraph, graph_error, start_fake_graph

MAYA = ("901", "Maya Okafor")
BO = ("902", "Bo Lind")


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with start_fake_graph() as fake:
        fake.now = START
        yield fake


def graph(fake: FakeGraph, **kwargs: Any) -> GraphClient:
    values = {"access_token": fake.token, "app_secret": fake.app_secret, **kwargs}
    return GraphClient(base_url=fake.url, timeout=5, **values)


@pytest.fixture
def service(tmp_path: Path, clock: FixedClock) -> Iterator[CareService]:
    config = parse_config(config_data(), base_dir=tmp_path)
    service = CareService(config, Store(config.database_path), clock=clock)
    yield service
    service.store.close()


def stored(service: CareService) -> list[str]:
    return [r["id"] for r in service.store.query("SELECT id FROM mentions ORDER BY id")]


def request(
    target: str, network: str = "facebook", *, private: bool = False, text: str = "Sorry!"
) -> PublishRequest:
    return PublishRequest(
        attempt_key="k1",
        network=network,
        in_reply_to_id=target,
        author_handle="x",
        text=text,
        private=private,
    )


# ------------------------------------------------------------------ the Graph layer


def test_every_call_carries_the_proof_and_the_token_as_graph_documents_it(
    fake: FakeGraph,
) -> None:
    client = graph(fake)
    client.get(PAGE_ID, {"fields": "id,name"})
    post = fake.add_post("hello")
    client.post(f"{post}/comments", {"message": "hi"})
    assert len(fake.calls) == 2
    for call in fake.calls:
        assert call.params["appsecret_proof"] == appsecret_proof(fake.token, fake.app_secret)
        assert call.authorization == f"Bearer {fake.token}"
        assert call.params["access_token"] == fake.token
    assert fake.token not in repr(client)


@pytest.mark.parametrize(
    ("status", "body", "error", "detail"),
    [
        (
            400,
            graph_error(190, "Error validating access token: Session has expired"),
            GraphCredentialRefused,
            "expired",
        ),
        (400, graph_error(4, "Application request limit reached"), GraphRateLimited, "limit"),
        (400, graph_error(17, "User request limit reached"), GraphRateLimited, "limit"),
        (400, graph_error(32, "Page request limit reached"), GraphRateLimited, "limit"),
        (
            400,
            graph_error(613, "Calls to this api have exceeded the rate limit."),
            GraphRateLimited,
            "rate",
        ),
        (429, {"error": {"message": "Too many"}}, GraphRateLimited, "Too many"),
        (
            500,
            {"error": {"message": "An unknown error occurred", "code": 1}},
            GraphUnavailable,
            "unknown",
        ),
        (400, graph_error(2, "Service temporarily unavailable"), GraphUnavailable, "temporarily"),
        (400, graph_error(100, "(#100) Invalid parameter"), GraphRefused, "Invalid parameter"),
    ],
)
def test_graph_errors_are_mapped_with_metas_own_words(
    fake: FakeGraph, status: int, body: dict[str, Any], error: type[Exception], detail: str
) -> None:
    fake.queue("GET", PAGE_ID, status, body)
    with pytest.raises(error) as raised:
        graph(fake).get(PAGE_ID)
    assert detail in str(raised.value)
    assert fake.token not in str(raised.value)


def test_a_throttle_says_when_to_come_back(fake: FakeGraph) -> None:
    usage = json.dumps({PAGE_ID: [{"type": "pages", "estimated_time_to_regain_access": 7}]})
    fake.queue(
        "GET", PAGE_ID, 400, graph_error(80001, "There have been too many calls to this Page")
    )
    with pytest.raises(GraphRateLimited) as default:
        graph(fake).get(PAGE_ID)
    assert default.value.retry_after == 60

    class Answer:
        status_code, reason = 400, "Bad Request"
        headers = {"X-Business-Use-Case-Usage": usage}

        def json(self) -> Any:
            return graph_error(80001, "too many calls")

    from integrations.meta_graph import _answer

    with pytest.raises(GraphRateLimited) as told:
        _answer(Answer(), "GET /x", posting=False)  # type: ignore[arg-type]
    assert told.value.retry_after == 7 * 60


def test_a_lost_post_answer_may_have_posted_and_a_refused_connection_did_not(
    fake: FakeGraph,
) -> None:
    post = fake.add_post("hello")
    fake.lose_next("POST", "/comments")
    with pytest.raises(GraphUnavailable) as lost:
        graph(fake).post(f"{post}/comments", {"message": "hi"})
    assert lost.value.maybe_done
    url = fake.url
    fake.stop()
    with pytest.raises(GraphUnavailable) as refused:
        GraphClient(access_token="t", app_secret="s", base_url=url, timeout=2).post("1/comments")
    assert not refused.value.maybe_done


def test_check_credentials_names_what_meta_refused(fake: FakeGraph) -> None:
    assert "Acme Air" in check_credentials(graph(fake), page_id=PAGE_ID, account_id=IG_ACCOUNT_ID)
    with pytest.raises(CredentialRejected, match="META_PAGE_ACCESS_TOKEN"):
        check_credentials(graph(fake, access_token="EAAbad"), page_id=PAGE_ID, account_id=None)
    with pytest.raises(CredentialRejected, match="META_APP_SECRET"):
        check_credentials(graph(fake, app_secret="wrong"), page_id=PAGE_ID, account_id=None)
    with pytest.raises(CredentialRejected, match="sources.facebook.page_id"):
        check_credentials(graph(fake), page_id="999999999", account_id=None)
    fake.queue("GET", PAGE_ID, 503, {"error": {"message": "down"}})
    with pytest.raises(DependencyUnreachable):
        check_credentials(graph(fake), page_id=PAGE_ID, account_id=None)


# ------------------------------------------------------------------ backfill


def fb_source(
    fake: FakeGraph, service: CareService, clock: FixedClock, health: Health | None = None
) -> FacebookSource:
    return FacebookSource(
        graph(fake), object_id=PAGE_ID, poll_seconds=30, clock=clock, cursors=service, health=health
    )


def ig_source(fake: FakeGraph, service: CareService, clock: FixedClock) -> InstagramSource:
    return InstagramSource(
        graph(fake), object_id=IG_ACCOUNT_ID, poll_seconds=30, clock=clock, cursors=service
    )


def test_facebook_backfill_reads_comments_replies_and_visitor_posts_once(
    fake: FakeGraph, service: CareService, clock: FixedClock
) -> None:
    post = fake.add_post("Winter timetable", at=START - timedelta(days=2))
    old_post = fake.add_post("Summer sale", at=START - timedelta(days=30))
    c1 = fake.add_comment(
        post, "my flight was cancelled", author=MAYA, at=START - timedelta(hours=3)
    )
    reply = fake.add_comment(
        c1, "same here, refund please", author=BO, at=START - timedelta(hours=2)
    )
    fake.add_comment(
        c1, "Sorry, DM us", author=(PAGE_ID, "Acme Air"), at=START - timedelta(hours=1)
    )
    fake.add_comment(old_post, "ancient", author=BO, at=START - timedelta(days=29))
    visitor = fake.add_post("Where is my bag?", author=BO, at=START - timedelta(hours=1))
    elsewhere = fake.add_elsewhere(
        "@Acme Air lost my bag", author=BO, at=START - timedelta(hours=1)
    )
    source = fb_source(fake, service, clock)
    assert source.poll_due(service.ingest_many)
    assert stored(service) == sorted([c1, reply, visitor, elsewhere])
    [joined] = [m for m in service.store.query("SELECT * FROM mentions WHERE id = ?", [reply])]
    assert joined["conversation_id"] == post and joined["in_reply_to_id"] == c1

    # The bot is down for an hour; people keep talking. A new process backfills once.
    clock.advance(3600)
    during = fake.add_comment(post, "still waiting", author=MAYA, at=START + timedelta(minutes=20))
    restarted = fb_source(fake, service, clock)
    restarted.poll_due(service.ingest_many)
    assert stored(service) == sorted([c1, reply, visitor, elsewhere, during])
    clock.advance(60)
    before = service.store.scalar("SELECT count(*) FROM cases")
    reads = len(fake.calls_to("GET", f"{post}/comments"))
    restarted.poll_due(service.ingest_many)
    assert service.store.scalar("SELECT count(*) FROM cases") == before
    # Nothing new under the post (its updated_time says so): its comments are not read.
    assert len(fake.calls_to("GET", f"{post}/comments")) == reads


def test_instagram_backfill_reads_comments_replies_and_tags(
    fake: FakeGraph, service: CareService, clock: FixedClock
) -> None:
    media = fake.add_media("Lisbon!", at=START - timedelta(days=1))
    c1 = fake.add_ig_comment(
        media, "lost bag at LIS", username="bo.travels", at=START - timedelta(hours=2)
    )
    r1 = fake.add_ig_comment(c1, "me too", username="kim", at=START - timedelta(hours=1))
    graph(fake).post(f"{c1}/replies", {"message": "@bo.travels please DM us"})  # the brand
    theirs = fake.add_media("delayed again", owner="lu", at=START - timedelta(hours=1))
    fake.tag_account(theirs)
    ig_source(fake, service, clock).poll_due(service.ingest_many)
    assert stored(service) == sorted([c1, r1, f"mention:{theirs}"])
    view = {m["id"]: m for m in service.store.query("SELECT * FROM mentions")}
    assert view[r1]["in_reply_to_id"] == c1 and view[r1]["conversation_id"] == media
    assert view[c1]["url"] == f"https://www.instagram.com/p/{media}/"


def test_a_backlog_longer_than_a_poll_is_read_in_parts_and_the_cursor_waits(
    fake: FakeGraph, service: CareService, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import integrations.meta as meta

    monkeypatch.setattr(meta, "PAGE_SIZE", 2)
    monkeypatch.setattr(meta, "MAX_PAGES", 2)
    post = fake.add_post("Timetable", at=START - timedelta(days=1))
    said = [
        fake.add_comment(post, f"comment {n}", author=MAYA, at=START - timedelta(minutes=60 - n))
        for n in range(7)
    ]
    source = fb_source(fake, service, clock)
    source.poll_due(service.ingest_many)
    assert len(stored(service)) == 4  # two pages of two, newest first
    assert service.cursor(f"facebook:{PAGE_ID}:comments:{post}") is None  # not through yet
    source.poll_due(service.ingest_many)  # due again at once
    assert stored(service) == sorted(said)
    assert service.cursor(f"facebook:{PAGE_ID}:comments:{post}") is not None


def test_an_instagram_reply_under_an_old_comment_is_backfilled(
    fake: FakeGraph, service: CareService, clock: FixedClock
) -> None:
    media = fake.add_media("Lisbon!", at=START - timedelta(days=2))
    old = fake.add_ig_comment(media, "great", username="kim", at=START - timedelta(days=1))
    for n in range(3):
        fake.add_ig_comment(media, f"newer {n}", username="lu", at=START - timedelta(hours=5 - n))
    source = ig_source(fake, service, clock)
    source.poll_due(service.ingest_many)
    assert len(stored(service)) == 4
    reads = len(fake.calls_to("GET", f"{media}/comments"))
    clock.advance(60)
    source.poll_due(service.ingest_many)  # nothing new: the count is the same, not read
    assert len(fake.calls_to("GET", f"{media}/comments")) == reads
    reply = fake.add_ig_comment(
        old, "actually my bag is lost", username="kim", at=START + timedelta(seconds=30)
    )
    clock.advance(60)
    source.poll_due(service.ingest_many)
    assert reply in stored(service)


def test_a_throttle_holds_the_source_and_loses_nothing(
    fake: FakeGraph, service: CareService, clock: FixedClock
) -> None:
    post = fake.add_post("Timetable", at=START - timedelta(hours=5))
    comment = fake.add_comment(post, "refund?", author=MAYA, at=START - timedelta(hours=1))
    fake.throttle("GET", f"{PAGE_ID}/feed", code=32)
    health = Health(clock)
    source = fb_source(fake, service, clock, health)
    source.poll_due(service.ingest_many)
    assert stored(service) == []
    clock.advance(30)
    assert not source.poll_due(service.ingest_many)  # still held
    clock.advance(60)
    source.poll_due(service.ingest_many)
    assert stored(service) == [comment]


def test_a_refused_token_while_running_fails_health_naming_the_variable(
    fake: FakeGraph, service: CareService, clock: FixedClock
) -> None:
    health = Health(clock)
    source = FacebookSource(
        graph(fake, access_token="EAAexpired"),
        object_id=PAGE_ID,
        poll_seconds=30,
        clock=clock,
        cursors=service,
        health=health,
    )
    source.poll_due(service.ingest_many)
    [state] = health.snapshot()
    assert state.state == "failing" and "META_PAGE_ACCESS_TOKEN" in (state.last_error or "")


# ------------------------------------------------------------------ publishing


def test_instagram_replies_go_under_the_comment_or_to_the_mentioning_media(fake: FakeGraph) -> None:
    publisher = MetaPublisher(graph(fake), network="instagram", account_id=IG_ACCOUNT_ID)
    media = fake.add_media("Lisbon")
    comment = fake.add_ig_comment(media, "lost bag", username="bo")
    reply = publisher.publish(request(comment, "instagram", text="@bo sorry!"))
    assert fake.page_replies(comment) == [{"id": reply.post_id, "message": "@bo sorry!"}]
    theirs = fake.add_media("@acmeair delayed", owner="lu")
    publisher.publish(request(f"mention:{theirs}", "instagram", text="@lu sorry!"))
    assert [r["message"] for r in fake.page_replies(theirs)] == ["@lu sorry!"]
    # After a crash both are found, not posted again.
    assert publisher.find_existing(request(comment, "instagram")) == reply
    assert publisher.find_existing(request(f"mention:{theirs}", "instagram")) is not None
    other = fake.add_ig_comment(media, "thanks", username="kim")
    assert publisher.find_existing(request(other, "instagram")) is None


def test_a_lost_answer_is_found_under_the_comment(fake: FakeGraph) -> None:
    publisher = MetaPublisher(graph(fake), network="facebook", page_id=PAGE_ID)
    post = fake.add_post("Timetable")
    comment = fake.add_comment(post, "refund?", author=MAYA)
    fake.add_comment(comment, "+1", author=BO)
    assert publisher.find_existing(request(comment)) is None
    fake.lose_next("POST", "/comments")
    with pytest.raises(PublishError) as lost:
        publisher.publish(request(comment))
    assert lost.value.maybe_posted and not lost.value.permanent
    [found] = fake.page_replies(comment)
    assert publisher.find_existing(request(comment)).post_id == found["id"]  # type: ignore[union-attr]


@pytest.mark.parametrize("network", ["facebook", "instagram"])
def test_a_reply_in_a_thread_goes_under_its_top_comment_and_is_found_by_its_words(
    fake: FakeGraph, network: str
) -> None:
    if network == "facebook":
        top = fake.add_comment(fake.add_post("Timetable"), "refund?", author=MAYA)
        reply = fake.add_comment(top, "still nothing, 3 weeks now", author=MAYA)
    else:
        top = fake.add_ig_comment(fake.add_media("Lisbon"), "refund?", username="maya")
        reply = fake.add_ig_comment(top, "still nothing, 3 weeks now", username="maya")
    publisher = MetaPublisher(
        graph(fake), network=network, page_id=PAGE_ID, account_id=IG_ACCOUNT_ID
    )
    publisher.publish(request(top, network, text="We are on it"))  # an earlier answer
    assert publisher.find_existing(request(reply, network, text="Sorry, refund sent")) is None
    fake.lose_next("POST", "/comments" if network == "facebook" else "/replies")
    with pytest.raises(PublishError) as lost:
        publisher.publish(request(reply, network, text="Sorry, refund sent"))
    assert lost.value.maybe_posted
    assert [r["message"] for r in fake.page_replies(top)] == ["We are on it", "Sorry, refund sent"]
    found = publisher.find_existing(request(reply, network, text="Sorry, refund sent"))
    assert found is not None and found.post_id == fake.page_replies(top)[1]["id"]


def test_a_visitor_post_counts_only_the_pages_own_top_level_comment(fake: FakeGraph) -> None:
    publisher = MetaPublisher(graph(fake), network="facebook", page_id=PAGE_ID)
    visitor = fake.add_post("Where is my bag?", author=BO)
    other = fake.add_comment(visitor, "mine too", author=MAYA)
    publisher.publish(request(other, text="Sorry Maya"))  # another case's reply, deeper down
    assert publisher.find_existing(request(visitor)) is None
    reply = publisher.publish(request(visitor, text="Sorry Bo"))
    assert publisher.find_existing(request(visitor)) == reply


def test_a_private_reply_once_inside_the_window_and_refused_outside(fake: FakeGraph) -> None:
    publisher = MetaPublisher(graph(fake), network="facebook", page_id=PAGE_ID)
    post = fake.add_post("Timetable", at=START - timedelta(days=10))
    fresh = fake.add_comment(post, "my booking?", author=MAYA, at=START - timedelta(days=1))
    stale = fake.add_comment(post, "old one", author=BO, at=START - timedelta(days=8))
    sent = publisher.publish(request(fresh, private=True, text="Please send your booking ref"))
    assert fake.messages == [
        {"comment_id": fresh, "text": "Please send your booking ref", "message_id": sent.post_id}
    ]
    assert fake.page_replies(fresh) == []  # nothing public
    # The answer was lost: the check sends again, and Meta's "already replied" counts as sent.
    found = publisher.find_existing(request(fresh, private=True))
    assert found is not None and found.post_id == f"private:{fresh}"
    assert len(fake.messages) == 1
    # A first attempt told "already replied": someone else's reply, not ours.
    with pytest.raises(PublishError, match="already answered privately") as taken:
        publisher.publish(request(fresh, private=True, text="Please send your booking ref"))
    assert taken.value.permanent and len(fake.messages) == 1
    # The check after a lost answer that had not gone out: sent now, once.
    other = fake.add_comment(post, "and my bag?", author=BO, at=START - timedelta(hours=1))
    checked = publisher.find_existing(request(other, private=True, text="DM us"))
    assert checked is not None and checked.post_id.startswith("m_")
    assert [m["comment_id"] for m in fake.messages] == [fresh, other]
    with pytest.raises(PublishError, match="within 7 days") as late:
        publisher.publish(request(stale, private=True))
    assert late.value.permanent
    # Instagram private replies go the same way, through the page.
    ig = MetaPublisher(graph(fake), network="instagram", page_id=PAGE_ID, account_id=IG_ACCOUNT_ID)
    media = fake.add_media("Lisbon", at=START - timedelta(days=1))
    comment = fake.add_ig_comment(media, "booking?", username="bo", at=START - timedelta(hours=1))
    ig.publish(request(comment, "instagram", private=True, text="DM us"))
    assert [m["comment_id"] for m in fake.messages] == [fresh, other, comment]


def test_publish_errors_say_whether_to_retry(fake: FakeGraph) -> None:
    publisher = MetaPublisher(graph(fake), network="facebook", page_id=PAGE_ID)
    with pytest.raises(PublishError) as gone:
        publisher.publish(request("1_404"))
    assert gone.value.permanent and "does not exist" in str(gone.value)
    post = fake.add_post("x")
    fake.throttle("POST", "/comments", code=613)
    with pytest.raises(PublishError) as throttled:
        publisher.publish(request(post))
    assert not throttled.value.permanent and not throttled.value.maybe_posted
    refused = MetaPublisher(
        graph(fake, access_token="EAAexpired"), network="facebook", page_id=PAGE_ID
    )
    with pytest.raises(PublishError, match="META_PAGE_ACCESS_TOKEN") as bad:
        refused.publish(request(post))
    assert bad.value.permanent and bad.value.outage
    assert fake.page_replies(post) == []


def test_comments_are_hidden_and_shown_again_on_both_networks(fake: FakeGraph) -> None:
    moderator = MetaModerator(graph(fake))
    comment = fake.add_comment(fake.add_post("x"), "my card number is 4111...", author=MAYA)
    ig_comment = fake.add_ig_comment(fake.add_media("y"), "spam spam", username="bot123")
    moderator.set_hidden("facebook", comment, True)
    moderator.set_hidden("instagram", ig_comment, True)
    assert fake.nodes[comment].hidden and fake.nodes[ig_comment].hidden
    assert fake.calls_to("POST", comment)[-1].params["is_hidden"] == "true"
    assert fake.calls_to("POST", ig_comment)[-1].params["hide"] == "true"
    moderator.set_hidden("facebook", comment, False)
    assert not fake.nodes[comment].hidden
    with pytest.raises(PublishError, match="own"):
        moderator.set_hidden("x", "123", True)
    with pytest.raises(PublishError, match="does not exist"):
        moderator.set_hidden("facebook", "1_404", True)


# ------------------------------------------------------------------ checks and config


def test_reply_checks_follow_each_network() -> None:
    assert check_reply("Sorry Maya, please DM us.", author_handle="901", network="facebook") == []
    assert check_reply("x" * 8000, author_handle="901", network="facebook") == []
    [too_long] = check_reply("x" * 8001, author_handle="901", network="facebook")
    assert "8001 characters as Facebook counts them" in too_long
    [ig_long] = check_reply("@bo " + "x" * 2200, author_handle="bo", network="instagram")
    assert "over the limit of 2200" in ig_long
    assert (
        check_reply(
            "@bo.travels sorry! See acme.com/help", author_handle="bo.travels", network="instagram"
        )
        == []
    )
    [other] = check_reply("@bo sorry, ask @kim.k", author_handle="bo", network="instagram")
    assert "@kim.k" in other
    [tagged] = check_reply("Sorry! Ask @[555] for help", author_handle="901", network="facebook")
    assert "mentions other accounts" in tagged


def meta_data(**sections: Any) -> dict[str, Any]:
    data = config_data()
    data["sources"] = {
        "facebook": {"enabled": True, "page_id": PAGE_ID},
        "instagram": {"enabled": True, "account_id": IG_ACCOUNT_ID},
    }
    data.update(sections)
    return data


def test_config_problems_name_their_keys(tmp_path: Path) -> None:
    config = parse_config({**meta_data(), "meta": {"graph_version": "v23.0"}}, base_dir=tmp_path)
    assert config.sources.facebook.page_id == PAGE_ID and config.meta.graph_version == "v23.0"
    bad = meta_data()
    bad["sources"] = {
        "facebook": {"enabled": True, "poll_seconds": 5},
        "instagram": {"enabled": True, "account_id": "acmeair"},
    }
    bad["meta"] = {"graph_version": "23"}
    with pytest.raises(ConfigError) as problems:
        parse_config(bad, base_dir=tmp_path)
    lines = problems.value.problems
    assert any(line.startswith("sources.facebook.poll_seconds:") for line in lines)
    assert any(line.startswith("sources.facebook.page_id: required") for line in lines)
    assert any(line.startswith("sources.instagram.account_id: must be a numeric") for line in lines)
    assert any(line.startswith("meta.graph_version:") for line in lines)


def test_a_page_token_pasted_into_the_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    token = "EAAGm0PX4ZCpsBA" + "Zb3x9Qk2" * 8
    data = meta_data()
    data["sources"]["facebook"]["token"] = token
    with pytest.raises(ConfigError) as refused:
        parse_config(data, base_dir=tmp_path)
    text = "\n".join(refused.value.problems)
    assert "sources.facebook.token: looks like a Meta access token" in text
    assert "META_PAGE_ACCESS_TOKEN" in text
    assert token not in text and token[:20] not in text


def test_run_needs_the_three_meta_variables(tmp_path: Path) -> None:
    config = parse_config(meta_data(), base_dir=tmp_path)
    missing = missing_environment(config, Secrets(slack_bot_token="x", slack_signing_secret="y"))
    assert [m.split(":")[0] for m in missing if "META_" in m] == ["sources.facebook"] * 3
    assert any("META_VERIFY_TOKEN is not set" in m for m in missing)
    assert not any("X_CONSUMER_KEY" in m for m in missing)  # X is not needed to answer Meta


def test_check_config_strict_names_the_meta_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "socialcare.toml"
    path.write_text(
        '[bot]\nbrand = "Acme"\n[slack]\nenabled = false\n'
        '[[departments]]\nid = "care"\nname = "Care"\n'
        f'[sources.facebook]\nenabled = true\npage_id = "{PAGE_ID}"\n'
        f'[sources.instagram]\nenabled = true\naccount_id = "{IG_ACCOUNT_ID}"\n'
        '[meta]\ngraph_version = "v23.0"\n'
    )
    for name in ("META_PAGE_ACCESS_TOKEN", "META_APP_SECRET", "META_VERIFY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["check-config", "--strict", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    for name in ("META_PAGE_ACCESS_TOKEN", "META_APP_SECRET", "META_VERIFY_TOKEN"):
        assert f"{name} is not set" in err
    assert "[sources.instagram] enabled = true" in err


def test_jsonl_mentions_from_facebook_and_instagram_are_ingested_and_classified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "socialcare.toml"
    path.write_text(
        '[bot]\nbrand = "Acme"\ndatabase = "j.db"\n[slack]\nenabled = false\n'
        '[[departments]]\nid = "care"\nname = "Care"\nnetworks = ["facebook", "instagram"]\n'
        "default = true\n"
    )
    rows = [
        {
            "network": "facebook",
            "id": "1_2",
            "author_id": "901",
            "author_handle": "901",
            "author_name": "Maya Okafor",
            "text": "my refund is late",
            "created_at": "2026-11-02T09:00:00Z",
        },
        {
            "network": "instagram",
            "id": "1789",
            "author_id": "igsid-bo",
            "author_handle": "bo.travels",
            "text": "lost bag at LIS",
            "created_at": "2026-11-02T09:01:00Z",
        },
    ]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["classify", str(jsonl), "-c", str(path)]) == 0
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == ["1_2", "1789"]
    assert main(["ingest", str(jsonl), "-c", str(path)]) == 0
    assert "2 new cases" in capsys.readouterr().out
    store = Store(tmp_path / "j.db")
    try:
        networks = [r["network"] for r in store.query("SELECT network FROM cases ORDER BY id")]
    finally:
        store.close()
    assert networks == ["facebook", "instagram"]


def test_a_mention_id_round_trips() -> None:
    from integrations.meta_payloads import MentionRef, parse_mention_id

    assert parse_mention_id("mention:17:18") == MentionRef("17", "18")
    assert parse_mention_id("mention:17") == MentionRef("17")
    assert parse_mention_id("1789") is None
    mention = Mention(
        network="instagram",
        id=MentionRef("17", "18").mention_id,
        author_id="a",
        author_handle="kim",
        text="hi",
        created_at=START,
    )
    assert parse_mention_id(mention.id) == MentionRef("17", "18")


def test_feed_changes_as_meta_sends_them() -> None:
    from integrations.meta_payloads import NO_TEXT, facebook_change

    sticker = facebook_change(
        {
            "item": "comment",
            "verb": "add",
            "comment_id": "5_6",
            "post_id": f"{PAGE_ID}_5",
            "from": {"id": "901", "name": "Maya"},
        },
        page_id=PAGE_ID,
        time=1_700_000_000,
    )
    assert sticker is not None
    assert sticker.text == NO_TEXT  # a sticker or photo is still someone talking to the brand
    assert sticker.created_at.timestamp() == 1_700_000_000  # when Meta sent it, if not given
    assert (sticker.conversation_id, sticker.in_reply_to_id) == (f"{PAGE_ID}_5", f"{PAGE_ID}_5")
    visitor = facebook_change(
        {
            "item": "status",
            "verb": "add",
            "post_id": f"{PAGE_ID}_9",
            "message": "hello?",
            "created_time": 1_700_000_100,
            "from": {"id": "902", "name": "Bo"},
        },
        page_id=PAGE_ID,
    )
    assert visitor is not None and visitor.id == f"{PAGE_ID}_9"
    assert visitor.conversation_id == visitor.id
    anonymous = facebook_change(
        {
            "item": "comment",
            "verb": "add",
            "comment_id": "5_7",
            "post_id": "5",
            "message": "hi",
            "created_time": 1_700_000_000,
        },
        page_id=PAGE_ID,
    )
    assert anonymous is not None and anonymous.author_id == "unknown-5_7"
    for verb in ("edited", "remove", "hide"):
        assert (
            facebook_change({"item": "comment", "verb": verb, "comment_id": "5_8"}, page_id=PAGE_ID)
            is None
        )
