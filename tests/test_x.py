"""X through the real tweepy client against a fake X API on loopback: watching mentions and
searches, and publishing replies exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from bot.delivery import PublishWorker
from bot.errors import PublishError, Refusal
from bot.models import CaseState
from bot.ports import FixedClock, PublishRequest
from bot.service import CareService
from integrations.x import XMentionSource, XPublisher, make_client
from tests.conftest import AGENT, LEAD, LEAD2, START
from tests.fakes.x import FakeX, start_fake_x

BRAND = "100"
REPLY = "Sorry about this! Please DM us your booking reference and we will look into it."


@pytest.fixture
def fake() -> Iterator[FakeX]:
    with start_fake_x(brand_user_id=BRAND) as server:
        server.add_user("7", "maya", "Maya Okafor", followers=812)
        server.add_user("8", "bo", "Bo", followers=20_000, verified=True)
        yield server


def source(
    fake: FakeX, service: CareService, clock: FixedClock, queries: list[str] | None = None
) -> XMentionSource:
    return XMentionSource(
        make_client(base_url=fake.url, bearer_token="test-bearer-not-real", timeout=5),
        brand_user_id=BRAND,
        queries=queries or [],
        poll_seconds=60,
        clock=clock,
        cursors=service,
    )


def publisher(fake: FakeX, *, timeout: float = 5) -> XPublisher:
    user = make_client(
        base_url=fake.url,
        consumer_key="test-consumer-key",
        consumer_secret="test-consumer-secret",
        access_token=f"{BRAND}-test-access-token",
        access_token_secret="test-access-secret",
        timeout=timeout,
    )
    read = make_client(base_url=fake.url, bearer_token="test-bearer-not-real", timeout=timeout)
    return XPublisher(user, read, brand_user_id=BRAND)


def stored(service: CareService) -> list[tuple[str, str]]:
    rows = service.store.query("SELECT m.id, m.text FROM mentions m ORDER BY m.id")
    return [(r["id"], r["text"]) for r in rows]


# ------------------------------------------------------------------ watching


def test_mentions_and_search_results_become_cases_once_and_cursors_advance(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    first = fake.add_tweet("7", "@AcmeAir my flight is delayed, any news?", mentions_user=BRAND)
    talk = fake.add_tweet("8", "Acme Air lost my bag again", lang="en")
    fake.add_tweet("8", "RT something", retweet_of=talk)
    own = fake.add_tweet(BRAND, "Acme Air: our winter schedule is out")  # not a case
    src = source(fake, service, clock, queries=['"Acme Air" -is:retweet'])
    assert src.poll_due(service.ingest_many)
    assert {t for _, t in stored(service)} == {
        "@AcmeAir my flight is delayed, any news?",
        "Acme Air lost my bag again",
    }
    assert service.cursor(f"x:mentions:{BRAND}") == first
    # The cursor passes the brand's own post too: it is seen, just not a case.
    assert service.cursor('x:search:"Acme Air" -is:retweet') == own

    later = fake.add_tweet("7", "@AcmeAir hello? still waiting", mentions_user=BRAND)
    assert not src.poll_due(service.ingest_many), "nothing is due before poll_seconds pass"
    clock.advance(60)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 3
    last_mentions_call = fake.calls_to("GET", f"/2/users/{BRAND}/mentions")[-1]
    assert last_mentions_call.query["since_id"] == first
    assert service.cursor(f"x:mentions:{BRAND}") == later
    case = service.view(service.store.scalar("SELECT case_id FROM mentions WHERE id = ?", [talk]))
    assert case.author.followers == 20_000 and case.author.verified
    assert case.url == f"https://x.com/bo/status/{talk}"


def test_pagination_is_followed_after_downtime(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    fake.add_tweet("7", "@AcmeAir first", mentions_user=BRAND)
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    # The bot is down while 250 mentions arrive; a restart (a new source) backfills them all.
    for i in range(250):
        fake.add_tweet("7" if i % 2 else "8", f"@AcmeAir complaint number {i}", mentions_user=BRAND)
    restarted = source(fake, service, clock)
    restarted.poll_due(service.ingest_many)
    assert len(stored(service)) == 251
    pages = fake.calls_to("GET", f"/2/users/{BRAND}/mentions")[1:]
    assert len(pages) == 3 and "pagination_token" in pages[1].query
    # Cases are numbered in the order things were said.
    first_two = service.store.query(
        "SELECT m.text FROM cases c JOIN mentions m ON m.id = c.mention_id ORDER BY c.id LIMIT 3"
    )
    assert [r["text"] for r in first_two][1:] == [
        "@AcmeAir complaint number 0",
        "@AcmeAir complaint number 1",
    ]


def test_a_429_waits_until_the_reset_and_loses_nothing(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    fake.add_tweet("7", "@AcmeAir one", mentions_user=BRAND)
    reset = int(START.timestamp()) + 900
    fake.queue(
        "GET",
        f"/2/users/{BRAND}/mentions",
        429,
        headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)},
    )
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    assert stored(service) == []
    clock.advance(600)
    assert not src.poll_due(service.ingest_many), "must not poll before the reset"
    assert len(fake.calls_to("GET", f"/2/users/{BRAND}/mentions")) == 1
    clock.advance(301)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 1


def test_an_exhausted_window_paces_the_next_poll(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    reset = int(datetime.now(UTC).timestamp()) + 3600
    fake.set_rate_limit(f"/2/users/{BRAND}/mentions", remaining=1, reset=reset)
    fake.add_tweet("7", "@AcmeAir one", mentions_user=BRAND)
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    assert src.streams[0].next_at == datetime.fromtimestamp(reset + 1, UTC)


def test_a_reply_in_the_same_conversation_joins_the_open_case(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    root = fake.add_tweet("7", "@AcmeAir my bag is missing", mentions_user=BRAND)
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    fake.add_tweet(
        "7", "@AcmeAir it had my medication in it", in_reply_to=root, mentions_user=BRAND
    )
    clock.advance(60)
    src.poll_due(service.ingest_many)
    assert service.store.scalar("SELECT count(*) FROM cases") == 1
    view = service.view(1)
    assert [p.text for p in view.thread] == ["@AcmeAir it had my medication in it"]


def test_server_errors_back_off_and_keep_the_cursor(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    fake.add_tweet("7", "@AcmeAir one", mentions_user=BRAND)
    fake.queue("GET", f"/2/users/{BRAND}/mentions", 503)
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    assert service.cursor(f"x:mentions:{BRAND}") is None
    clock.advance(119)
    assert not src.poll_due(service.ingest_many)
    clock.advance(1)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 1


# ------------------------------------------------------------------ publishing


def approved(service: CareService, fake: FakeX, clock: FixedClock) -> int:
    fake.add_tweet("7", "@AcmeAir my refund never arrived", mentions_user=BRAND)
    source(fake, service, clock).poll_due(service.ingest_many)
    service.reply(AGENT, 1, REPLY)
    service.approve(LEAD, 1)
    return 1


def test_an_approved_reply_is_posted_once_in_reply_with_the_service_credential(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    case_id = approved(service, fake, clock)
    worker = PublishWorker(service, publisher(fake))
    assert worker.drain() == 1
    [tweet] = fake.posted()
    mention_id = service.get_case(case_id).mention_id
    assert tweet["text"] == f"@maya {REPLY}"
    assert tweet["referenced_tweets"] == [{"type": "replied_to", "id": mention_id}]
    [post] = fake.calls_to("POST", "/2/tweets")
    assert post.headers["authorization"].startswith("OAuth ")
    assert "test-consumer-key" in post.headers["authorization"]
    case = service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED
    assert case.published_url == f"https://x.com/i/web/status/{tweet['id']}"
    assert worker.drain() == 0 and len(fake.posted()) == 1


def test_duplicate_content_means_it_was_already_posted(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    case_id = approved(service, fake, clock)
    mention_id = service.get_case(case_id).mention_id
    earlier = fake.add_tweet(BRAND, f"@maya {REPLY}", in_reply_to=mention_id)
    PublishWorker(service, publisher(fake)).drain()
    case = service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED
    assert case.published_url == f"https://x.com/i/web/status/{earlier}"
    assert len(fake.posted()) == 0


@pytest.mark.parametrize(
    ("status", "state", "note"),
    [
        (401, CaseState.FAILED, "X rejected the service credential"),
        (403, CaseState.FAILED, "X refused the reply"),
        (400, CaseState.FAILED, "X refused the reply"),
        (503, CaseState.APPROVED, None),
        (429, CaseState.APPROVED, None),
    ],
)
def test_publish_errors_lead_to_the_documented_state(
    fake: FakeX,
    service: CareService,
    clock: FixedClock,
    status: int,
    state: CaseState,
    note: str | None,
) -> None:
    case_id = approved(service, fake, clock)
    fake.queue("POST", "/2/tweets", status)
    worker = PublishWorker(service, publisher(fake))
    worker.run_once()
    case = service.get_case(case_id)
    assert case.state is state
    if note:
        assert note in (case.note or "")
        return
    # Transient: retried later. A 5xx may come after X stored the post, so X is checked
    # first; a 429 means nothing was posted, so no check is needed.
    clock.advance(10)
    worker.run_once()
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert len(fake.posted()) == 1
    checked = bool(fake.calls_to("GET", f"/2/users/{BRAND}/tweets"))
    assert checked is (status == 503)


def test_a_timeout_after_x_accepted_the_post_does_not_post_twice(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    case_id = approved(service, fake, clock)
    fake.hang_next("POST", "/2/tweets", after_processing=True)
    worker = PublishWorker(service, publisher(fake, timeout=0.5))
    worker.run_once()
    assert service.get_case(case_id).state is CaseState.APPROVED
    assert "no answer from X" in (
        service.store.scalar("SELECT last_error FROM outbox WHERE kind = 'publish'") or ""
    )
    clock.advance(10)
    worker.run_once()
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert len(fake.posted()) == 1
    assert len(fake.calls_to("POST", "/2/tweets")) == 1


def test_find_existing_accepts_any_brand_reply_to_the_target(fake: FakeX) -> None:
    fake.add_user("7", "maya")
    mention = fake.add_tweet("7", "@AcmeAir hi", mentions_user=BRAND)
    other = fake.add_tweet("7", "@AcmeAir other", mentions_user=BRAND)
    quiet = fake.add_tweet("7", "@AcmeAir anyone?", mentions_user=BRAND)
    edited = fake.add_tweet(BRAND, "@maya different words", in_reply_to=mention)
    fake.add_tweet(BRAND, "@maya thanks, see https://t.co/abc", in_reply_to=other)
    fake.add_tweet("7", "@maya me too", in_reply_to=quiet)  # not the brand's
    pub = publisher(fake)
    text = "@maya thanks, see https://acme.example/help"
    # One public reply per case: a brand reply with other words still settles it.
    found = pub.find_existing(PublishRequest("k", "x", mention, "maya", text))
    assert found is not None and found.post_id == edited
    assert pub.find_existing(PublishRequest("k", "x", other, "maya", text)) is not None
    assert pub.find_existing(PublishRequest("k", "x", quiet, "maya", text)) is None


def test_x_api_url_redirects_tweepy_and_timeouts_apply(fake: FakeX) -> None:
    client = make_client(base_url=fake.url + "/", bearer_token="test-bearer-not-real", timeout=0.5)
    response = client.get_user(id=BRAND)
    assert (
        isinstance(response, requests.Response) and response.json()["data"]["username"] == "AcmeAir"
    )
    fake.hang_next("GET", f"/2/users/{BRAND}")
    with pytest.raises(requests.exceptions.Timeout):
        client.get_user(id=BRAND)


def test_kill_switch_holds_x_publishing(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    from tests.conftest import ADMIN

    service.set_paused(ADMIN, True)
    approved(service, fake, clock)
    worker = PublishWorker(service, publisher(fake))
    assert worker.drain() == 0 and fake.posted() == []
    service.set_paused(ADMIN, False)
    assert worker.drain() == 1 and len(fake.posted()) == 1


def test_a_read_cut_short_resumes_where_it_stopped(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    from integrations import x as xmod

    fake.add_tweet("7", "@AcmeAir first", mentions_user=BRAND)
    src = source(fake, service, clock)
    src.poll_due(service.ingest_many)
    for i in range(350):
        fake.add_tweet("8", f"@AcmeAir backlog {i}", mentions_user=BRAND)
    original = xmod.MAX_PAGES
    xmod.MAX_PAGES = 2  # a small cap, so the backlog takes several polls
    try:
        for _ in range(3):
            clock.advance(60)
            src.poll_due(service.ingest_many)
            fake.add_tweet("7", f"@AcmeAir new while catching up {_}", mentions_user=BRAND)
    finally:
        xmod.MAX_PAGES = original
    clock.advance(60)
    src.poll_due(service.ingest_many)
    assert len(stored(service)) == 1 + 350 + 3


def test_tweet_time_reads_the_snowflake() -> None:
    from integrations.x import tweet_time

    # The example tweet of X's API documentation: created "Wed Oct 10 20:19:24 +0000 2018".
    moment = tweet_time("1050118621198921728")
    assert moment.replace(microsecond=0) == datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)


def test_html_entities_from_x_are_decoded(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    fake.add_tweet("7", "@AcmeAir delayed &amp; lost bag &gt;:(", mentions_user=BRAND)
    source(fake, service, clock).poll_due(service.ingest_many)
    assert stored(service)[0][1] == "@AcmeAir delayed & lost bag >:("


def test_duplicate_words_sent_to_someone_else_fail_the_case(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    case_id = approved(service, fake, clock)
    fake.add_tweet(BRAND, f"@maya {REPLY}")  # the same words, but not a reply to this mention
    PublishWorker(service, publisher(fake)).drain()
    case = service.get_case(case_id)
    assert case.state is CaseState.FAILED
    assert "already posted these exact words" in (case.note or "")


def test_a_lost_answer_then_failing_and_lagging_reads_still_give_one_reply(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    """The first POST reaches X but its answer is lost; X's reads then fail, then lag (the
    re-POST gets "duplicate"). The case stays uncertain, nothing can change it, and the
    reply found at last is recorded: one reply in all."""
    case_id = approved(service, fake, clock)
    timeline = f"/2/users/{BRAND}/tweets"
    fake.hang_next("POST", "/2/tweets", after_processing=True)
    for _ in range(3):
        fake.queue("GET", timeline, 503)  # X reads fail for a while
    fake.queue("GET", timeline, 200)  # the timeline lags: the reply is not listed yet
    fake.queue("GET", timeline, 200)  # still lagging when the "duplicate" is checked
    worker = PublishWorker(service, publisher(fake, timeout=0.5))

    attempts = 0
    while service.get_case(case_id).state is not CaseState.PUBLISHED and attempts < 10:
        worker.run_once()
        attempts += 1
        case = service.get_case(case_id)
        if case.state is CaseState.PUBLISHED:
            break
        # Meanwhile the case is uncertain, never failed, and nobody can change it.
        assert case.state is CaseState.APPROVED and case.publish_uncertain
        for attempt in (
            lambda: service.set_draft(LEAD, case_id, "@maya a different reply"),
            lambda: service.dismiss(LEAD, case_id, "handled elsewhere"),
            lambda: service.reassign(LEAD, case_id, "marketing"),
            lambda: service.approve(LEAD2, case_id),
            lambda: service.retry(LEAD, case_id),
        ):
            with pytest.raises(Refusal) as refused:
                attempt()
            assert refused.value.code == "uncertain"
            assert "may already be on X" in str(refused.value)
        clock.advance(600)

    [reply] = fake.posted()
    assert len(fake.calls_to("POST", "/2/tweets")) == 2  # the lost one, and the "duplicate"
    case = service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED and not case.publish_uncertain
    assert case.published_url == f"https://x.com/i/web/status/{reply['id']}"
    assert (
        service.store.scalar("SELECT published_id FROM cases WHERE id = ?", [case_id])
        == (reply["id"])
    )
    trail = service.audit_trail(case_id)
    actions = [(e["action"], e["outcome"]) for e in trail]
    assert ("publish_uncertain", "ok") in actions
    assert actions.count(("publish_uncertain", "ok")) == 1  # noted once, not per check
    [published] = [e for e in trail if e["action"] == "publish_ok"]
    assert json.loads(published["detail"])["post_id"] == reply["id"]
    assert json.loads(published["detail"])["found_by_check"] is True
    refusals = [e for e in trail if e["outcome"] == "refused:uncertain"]
    assert len(refusals) >= 5
    assert not [e for e in trail if e["action"] == "publish_failed"]


def test_an_unknown_outcome_shows_on_the_card_and_in_the_note(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    case_id = approved(service, fake, clock)
    fake.queue("POST", "/2/tweets", 503)
    fake.queue("GET", f"/2/users/{BRAND}/tweets", 503)
    worker = PublishWorker(service, publisher(fake))
    worker.run_once()
    clock.advance(60)
    worker.run_once()  # the check itself fails: still uncertain, not failed
    case = service.get_case(case_id)
    assert case.state is CaseState.APPROVED and case.publish_uncertain
    assert [c.id for c in service.uncertain_publishes()] == [case_id]
    from handlers.slack_cards import case_card

    card = json.dumps(case_card(service.view(case_id), now=clock.now()))
    assert "Outcome unknown" in card and "may already be on X" in card
    notes = service.store.query(
        "SELECT payload FROM outbox WHERE kind = 'note' AND case_id = ?", [case_id]
    )
    assert any("checking X before anything is posted again" in n["payload"] for n in notes)


def test_a_refusal_after_an_unknown_outcome_does_not_fail_the_case(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    """A 401 on the re-POST says nothing about the first, unanswered attempt."""
    case_id = approved(service, fake, clock)
    fake.queue("POST", "/2/tweets", 503)
    fake.queue("POST", "/2/tweets", 401)
    worker = PublishWorker(service, publisher(fake))
    worker.run_once()
    clock.advance(60)
    worker.run_once()
    case = service.get_case(case_id)
    assert case.state is CaseState.APPROVED and case.publish_uncertain
    clock.advance(600)
    worker.run_once()
    assert service.get_case(case_id).state is CaseState.PUBLISHED
    assert len(fake.posted()) == 1


def test_a_check_that_cannot_reach_the_mention_stays_undecided(fake: FakeX) -> None:
    """A full page of newer brand posts without the reply says nothing about older ones:
    'not found' there must not be taken for 'not posted'."""
    mention = fake.add_tweet("7", "@AcmeAir hi", mentions_user=BRAND)
    for i in range(100):
        fake.add_tweet(BRAND, f"Flight update number {i}")
    with pytest.raises(PublishError) as undecided:
        publisher(fake).find_existing(PublishRequest("k", "x", mention, "maya", "@maya hi"))
    assert undecided.value.maybe_posted and not undecided.value.permanent


def test_a_429_on_publish_waits_for_the_reset_x_names(
    fake: FakeX, service: CareService, clock: FixedClock
) -> None:
    import time
    from datetime import datetime

    case_id = approved(service, fake, clock)
    fake.queue(
        "POST", "/2/tweets", 429, headers={"x-rate-limit-reset": str(int(time.time()) + 900)}
    )
    worker = PublishWorker(service, publisher(fake))
    worker.run_once()
    assert service.get_case(case_id).state is CaseState.APPROVED
    due = service.store.scalar("SELECT next_attempt_at FROM outbox WHERE kind = 'publish'")
    wait = (datetime.fromisoformat(str(due)) - clock.now()).total_seconds()
    assert 850 <= wait <= 901, wait
